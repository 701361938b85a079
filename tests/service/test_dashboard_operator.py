"""An operator runs a dry-run fleet from the dashboard alone (headless Chromium driven by playwright-core).

Fleet charts with dated time axes, the plans list, the token asked once, a click on Approve and the plan seen
running to its end, the Hosts and Timeline tabs; no request leaves the server.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

from service_support import TOKEN, Served

HERE = Path(__file__).parent


def test_an_operator_approves_a_recommendation_from_the_dashboard(setup_tools, tmp_path):
    node = shutil.which("node")
    assert node, "node is needed (scripts/setup-service-tests.sh installs it)"
    (tmp_path / "srv").mkdir()
    shots = tmp_path / "shots"
    shots.mkdir()
    # 1 s per tick: a recommendation stays the newest for a second, long enough to click it
    s = Served(tmp_path / "srv", dry_run=True, pace_s=1.0)
    try:
        env = {**os.environ, "PRESPLIT_CHROME_DIR": str(tmp_path / "chrome-profile"), "NODE_PATH": str(setup_tools)}
        out = subprocess.run([node, str(HERE / "dashboard_operator.mjs"), s.url + "/dashboard/", TOKEN, str(shots)],
                             capture_output=True, text=True, timeout=240, env=env, cwd=str(HERE))
        assert out.returncode == 0, out.stderr[-3000:]
        seen = json.loads(out.stdout.strip().splitlines()[-1])
        plan = s.client.get(f"/api/plans/{seen.get('approved')}").json() if seen.get("approved") else None
        events = s.client.get(f"/api/plans/{seen['approved']}/events").json() if plan else []
        status = s.client.get("/api/status").json()
    finally:
        s.close()
    assert seen["errors"] == [], seen
    assert seen["external_requests"] == [], seen

    # Fleet: six charts on canvases, every time axis with a date (a year), the clock a date
    assert seen["fleet_canvases"] >= 6, seen
    assert [c["chart"] for c in seen["fleet_charts"]] == ["cpu", "mem", "hosts", "power", "moves", "sla"]
    assert seen["x_labels_with_year"] == 6, seen["fleet_charts"]
    assert all("2011" in c["xlabels"] for c in seen["fleet_charts"])  # the demo's start: 2011-03-03
    captions = {c["chart"]: c["caption"] for c in seen["fleet_charts"]}
    assert re.search(r"CPU \d+ %", captions["cpu"]) and re.search(r"Memory \d+ %", captions["mem"]), captions
    assert re.search(r"Power [\d.]+ k?W", captions["power"]) and re.search(r"Hosts on \d+ of 8", captions["hosts"])
    assert re.search(r"\b2011\b", seen["clock"]) and "Mar" in seen["clock"], seen["clock"]
    assert "2011" in seen["range"]
    assert status["start_epoch_s"] == 1299110400.0  # 2011-03-03T00:00Z, the demo's start
    assert "Recommend-only" in seen["banner"], seen["banner"]

    # Plans: listed; the token asked once and kept in the tab's sessionStorage
    assert seen["plans_listed"] >= 1 and seen["token_asked"] is True
    assert "token set" in seen["token_state"] and seen["token_in_session"] is True

    # the click approved a plan: 202 and running at once, then it ran to its end in the background
    assert seen["approved"] and seen["final_status"] in ("succeeded", "partially_failed"), seen
    assert seen["status_after_click"] in ("running", "succeeded", "partially_failed"), seen
    assert plan["status"] == seen["final_status"], plan
    assert any(e["event"] == "approved" for e in events), events
    assert seen["detail_actions"] >= 1 and all(r.strip() for r in seen["detail_reasons"]), seen
    assert "succeeded" in seen["detail_statuses"], seen

    # Hosts: a host's history with its forecast band and the note on the forecaster's horizon; rack labels
    assert seen["host_chart_title"].startswith("h-"), seen
    assert "next tick" in seen["host_chart_note"] and "2011" in (seen["host_chart_xlabels"] or ""), seen
    assert seen["fabric_hosts"] == 8 and len(seen["rack_labels"]) == 2, seen
    assert all(t.startswith("rack ") for t in seen["rack_labels"])

    # Timeline: one click away, at the top of the page
    assert seen["timeline_items"] >= 1 and seen["timeline_top"] < 200, seen

    for name in ("fleet", "plans", "hosts", "timeline"):
        assert (shots / f"{name}.png").stat().st_size > 20_000, name
    keep = os.environ.get("PRESPLIT_SCREENSHOT_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        for png in shots.glob("*.png"):
            shutil.copy(png, Path(keep) / png.name)


def test_the_fleet_history_the_charts_draw(tmp_path):
    """GET /api/history: one point per tick with the fleet's CPU, memory, hosts on, power, moves and unserved demand;
    the moves add up to the timeline's; /api/status carries the world's start date."""
    s = Served(tmp_path, pace_s=0.05)
    c = s.client
    try:
        def moved():
            h = c.get("/api/history", params={"limit": 1000}).json()
            return h if sum(p["repins"] + p["live_migrations"] for p in h["points"]) >= 2 else None

        h = s.wait_for(moved, 90, 0.5)
        status = c.get("/api/status").json()
        timeline = c.get("/api/timeline", params={"limit": 1000}).json()
        assert len(c.get("/api/history", params={"limit": 3}).json()["points"]) == 3
        assert c.get("/api/history", params={"limit": 0}).status_code == 422
        doc = c.get("/openapi.json").json()
    finally:
        s.close()
    assert status["start_epoch_s"] == h["start_epoch_s"] == 1299110400.0
    assert h["interval_s"] == 300.0 and h["forecast_horizon_s"] == 300.0  # the outlook looks one tick ahead
    P = h["points"]
    assert len(P) >= 10 and all(a["t"] < b["t"] for a, b in zip(P, P[1:]))
    for p in P:
        assert p["hosts"] == 8 and 0 < p["hosts_on"] <= 8
        assert 0 <= p["cpu_utilisation"] <= 2 and 0 <= p["mem_utilisation"] <= 1 and 0 <= p["unserved_share"] <= 1
        # 8 demo hosts draw 100-300 W each while on (nothing while off in the demo's model)
        assert 100 * p["hosts_on"] - 1e-6 <= p["power_w"] <= 300 * p["hosts_on"] + 1e-6, p
        assert p["capacity_mips"] == 8000 * p["hosts_on"]
    done = {k: sum(1 for e in timeline if e["kind"] == k and e["status"] == "succeeded")
            for k in ("MigrateGuest", "MoveGuest")}
    assert sum(p["live_migrations"] for p in P) <= done["MigrateGuest"]
    assert sum(p["repins"] for p in P) <= done["MoveGuest"]
    assert sum(p["repins"] + p["live_migrations"] for p in P) >= 2
    assert "/api/history" in doc["paths"] and "start_epoch_s" in doc["components"]["schemas"]["Status"]["properties"]
