"""A dry run an operator can use: only the newest recommendation is open, stale ones are refused with the reason,
an approval is answered at once and applied in the background, and ``presplit state`` shows what waits."""

from __future__ import annotations

import json
import re
import time

from click.testing import CliRunner
from service_support import Served

DONE = {"succeeded", "partially_failed", "failed", "cancelled"}


def _plans(c, **params) -> list[dict]:
    return c.get("/api/plans", params={"limit": 1000, **params}).json()


def _approve_newest(s: Served, note: str | None = None):
    """Approve the newest recommendation; a tick may supersede it between the read and the call: try again."""
    c = s.client
    deadline = time.time() + 30
    while time.time() < deadline:
        rec = _plans(c, status="recommended")
        if not rec:
            time.sleep(0.05)
            continue
        pid = rec[0]["id"]
        t0 = time.perf_counter()
        r = c.post(f"/api/plans/{pid}/approve", json={"note": note} if note else None, headers=s.auth())
        took = time.perf_counter() - t0
        if r.status_code == 409 and "superseded" in r.text:
            continue
        return pid, r, took
    raise AssertionError("no recommendation stayed the newest long enough to approve it")


def _wait_done(s: Served, pid: int, timeout: float = 60.0) -> dict:
    return s.wait_for(lambda: (p := s.client.get(f"/api/plans/{pid}").json())["status"] in DONE and p, timeout)


def test_only_the_newest_recommendation_is_open_and_stale_ones_are_refused(tmp_path):
    s = Served(tmp_path, dry_run=True, pace_s=0.1)
    c = s.client
    try:
        s.wait_for(lambda: len(_plans(c)) >= 4, 60)
        plans = _plans(c)
        by_source: dict = {}
        for p in plans:
            by_source.setdefault(p["source"], []).append(p)
        for source, ps in by_source.items():
            # newest first: at most the newest is still recommended; the older ones were superseded
            assert [p["status"] for p in ps[1:]] == ["superseded"] * (len(ps) - 1), (source, ps)
            assert ps[0]["status"] in ("recommended", "superseded")
        old = plans[-1]
        assert old["status"] == "superseded" and set(old["actions"]) == {"cancelled"}
        newer = old["summary"]["superseded_by"]
        assert newer > old["id"] and old["summary"]["superseded_at"] > old["tick"]
        detail = c.get(f"/api/plans/{old['id']}").json()
        assert {a["status"] for a in detail["action_list"]} == {"cancelled"}
        events = c.get(f"/api/plans/{old['id']}/events").json()
        sup = [e for e in events if e["event"] == "superseded"]
        assert len(sup) == len(detail["action_list"]) and all(f"superseded by plan {newer}" in e["detail"]
                                                              for e in sup)
        assert any(e["event"] == "plan_superseded" for e in events)
        assert c.get("/api/guests", params={"status": "running"}).json() == []  # nothing applied

        # approving the stale plan: refused, with the reason and what to do
        r = c.post(f"/api/plans/{old['id']}/approve", headers=s.auth())
        assert r.status_code == 409, r.text
        msg = r.json()["detail"]
        assert re.search(rf"plan {old['id']} was superseded by plan {newer} at t=\d+; "
                         r"approve the newest recommendation", msg), msg
        assert c.get(f"/api/plans/{old['id']}").json()["status"] == "superseded"  # the refusal changed nothing

        # presplit state: the newest recommendation is open, awaiting approval
        from presplit.cli.state_cmd import state  # the command 'presplit state' runs

        out = CliRunner().invoke(state, ["--db", s.db, "--json", "-"])
        assert out.exit_code == 0, out.output
        st = json.loads(out.output)
        assert st["open_plans"] == [] and len(st["recommended_plans"]) == 1
        statuses = {p["id"]: p["status"] for p in st["plans"]}
        assert statuses[st["recommended_plans"][0]] == "recommended"
        out = CliRunner().invoke(state, ["--db", s.db])
        assert out.exit_code == 0, out.output
        assert "recommended (awaiting approval): " in out.output and "open plans: none" not in out.output

        # approving the newest: 202 at once, applied in the background by the loop
        pid, r, took = _approve_newest(s, note="looks right")
        assert r.status_code == 202, r.text
        assert took < 1.0, f"approve took {took:.2f} s"
        assert r.json()["id"] == pid and r.json()["status"] in {"running"} | DONE
        final = _wait_done(s, pid)
        assert final["status"] in ("succeeded", "partially_failed"), final
        assert final["actions"].get("succeeded", 0) >= 1
        assert c.get("/api/guests", params={"status": "running"}).json()  # the placements ran
        events = c.get(f"/api/plans/{pid}/events").json()
        assert any(e["event"] == "approved" and "looks right" in (e["detail"] or "") for e in events)
        r = c.post(f"/api/plans/{pid}/approve", headers=s.auth())
        assert r.status_code == 409 and f"plan {pid} is {final['status']}" in r.json()["detail"]
    finally:
        s.close()


def test_a_recommendation_older_than_its_max_age_is_refused(tmp_path):
    """A profile switch leaves the old profile's recommendation open (another source supersedes nothing of it);
    once it is older than the max age (default: 3 ticks in dry run) its approval is refused."""
    s = Served(tmp_path, dry_run=True, pace_s=0.05)
    c = s.client
    try:
        s.wait_for(lambda: _plans(c, status="recommended"), 60)
        r = c.put("/api/profile", json={"policies": [{"name": "evacuate"}]}, headers=s.auth())
        assert r.status_code == 200, r.text
        # the profile is switched between two ticks: from then on no 'presplit' plan is recommended
        last = s.wait_for(lambda: [p for p in _plans(c, status="recommended") if p["source"] == "presplit"], 30)[0]
        interval = c.get("/api/status").json()["interval_s"]
        s.wait_for(lambda: c.get("/api/status").json()["now"] - last["tick"] > 3 * interval, 60)
        r = c.post(f"/api/plans/{last['id']}/approve", headers=s.auth())
        assert r.status_code == 409, r.text
        msg = r.json()["detail"]
        assert re.search(rf"plan {last['id']} was made at t={last['tick']:g}, \d+ s ago, more than its max age of "
                         rf"{3 * interval:g} s", msg), msg
        assert c.get(f"/api/plans/{last['id']}").json()["status"] == "recommended"
        assert c.get("/api/guests", params={"status": "running"}).json() == []
    finally:
        s.close()


def test_an_approved_plan_waiting_for_the_loop_can_be_cancelled(tmp_path):
    """The approval does not wait for a busy loop; a cancel before the loop starts the plan closes it unapplied."""
    s = Served(tmp_path, dry_run=True, pace_s=0.1)
    c = s.client
    try:
        s.wait_for(lambda: _plans(c, status="recommended"), 60)
        busy = s.runner.submit(lambda: time.sleep(1.5))  # the loop's thread is busy with a (slow) command
        time.sleep(0.2)
        pid, r, took = _approve_newest(s)
        assert r.status_code == 202 and r.json()["status"] == "running", r.text
        assert took < 1.0, f"approve took {took:.2f} s while the loop was busy"
        r = c.post(f"/api/plans/{pid}/cancel", json={"note": "changed my mind"}, headers=s.auth())
        assert r.status_code == 200, r.text
        busy.result(10)
        p = r.json()
        assert p["status"] == "cancelled" and set(p["actions"]) == {"cancelled"}, p
        events = c.get(f"/api/plans/{pid}/events").json()
        assert not any(e["event"] == "started" for e in events)
        assert any(e["event"] == "cancelled" and "changed my mind" in (e["detail"] or "") for e in events)
        time.sleep(0.5)  # the loop had its chance: it did not apply the withdrawn plan
        assert c.get(f"/api/plans/{pid}").json()["status"] == "cancelled"
        assert c.get("/api/guests", params={"status": "running"}).json() == []
    finally:
        s.close()
