"""The API through HTTP: reads, launches placed by the policy, windows, profiles, moves with reasons, SSE."""

from __future__ import annotations

import httpx


def test_reads_show_the_fleet(served):
    c = served.client
    st = c.get("/api/status").json()
    assert st["backend"] == "sim" and st["running"] and st["leader"] and st["profile"] == "presplit"
    served.wait_for(lambda: c.get("/api/status").json()["ticks"] >= 3)
    hosts = c.get("/api/hosts").json()
    assert len(hosts) == 8 and {"utilisation", "forecast_utilisation", "domains", "window"} <= set(hosts[0])
    assert all(0 < h["migration_share"] < 1 for h in hosts)
    doms = c.get("/api/domains").json()
    assert doms and all(d["state"] != "merged" for d in doms)
    assert all(len(d["io_mb_s"]) == 2 and "vmm" in d["services"] for d in doms)
    assert set(c.get("/api/domains/0").json()["forecast_mips"]) == {"p05", "p50", "p95"}
    guests = c.get("/api/guests").json()
    assert len(guests) >= 24
    running = c.get("/api/guests", params={"status": "running"}).json()
    assert running and all(g["status"] == "running" and g["host"] is not None for g in running)
    g = c.get(f"/api/guests/{running[0]['id']}").json()
    assert g["moves"] and g["moves"][0]["kind"] == "PlaceGuest" and g["moves"][0]["reason"]
    fab = c.get("/api/fabric").json()
    assert {n["kind"] for n in fab["nodes"]} == {"host", "switch"} and fab["links"]
    fleet = c.get("/api/fleet").json()
    assert set(fleet) == {"status", "hosts", "domains", "guests"}
    plans = c.get("/api/plans", params={"limit": 5}).json()
    assert plans and plans == sorted(plans, key=lambda p: -p["id"])
    detail = c.get(f"/api/plans/{plans[-1]['id']}").json()
    assert detail["action_list"] and all(a["reason"] for a in detail["action_list"])
    assert c.get(f"/api/plans/{plans[-1]['id']}/events").json()[0]["event"] == "intent"
    assert c.get("/api/events", params={"limit": 3}).status_code == 200
    tl = c.get("/api/timeline", params={"limit": 10}).json()
    assert tl and all(e["reason"] for e in tl)
    series = c.get("/api/hosts/0/forecast").json()
    assert series["points"] and series["next"] is not None
    assert c.get(f"/api/guests/{running[0]['id']}/forecast").json()["id"] == running[0]["id"]
    assert c.get(f"/api/domains/{doms[0]['id']}/forecast").status_code == 200


def test_unknown_things_are_404_and_bad_queries_422(served):
    c = served.client
    assert c.get("/api/hosts/999").status_code == 404
    assert c.get("/api/domains/99999").status_code == 404
    r = c.get("/api/guests/nobody")
    assert r.status_code == 404 and "nobody" in r.json()["detail"]
    assert c.get("/api/plans/999999").status_code == 404
    r = c.get("/api/plans", params={"limit": 0})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "limit"]
    r = c.get("/api/guests", params={"status": "sleeping"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "status"]


def test_a_launched_guest_is_placed_by_the_policy(served):
    c = served.client
    r = c.post("/api/guests", json={"id": "web-1", "vcpus": 2, "ram_mb": 2048, "cpu_util": 0.3},
               headers=served.auth())
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "pending" and r.json()["domain"] is None

    def placed():
        g = c.get("/api/guests/web-1").json()
        return g if g["status"] == "running" else None

    g = served.wait_for(placed, 20)
    assert g["moves"][-1]["kind"] == "PlaceGuest" and "headroom" in g["moves"][-1]["reason"]
    assert g["host"] is not None
    # a second guest with the same id is refused, precisely
    r = c.post("/api/guests", json={"id": "web-1"}, headers=served.auth())
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "id"]
    assert "taken" in r.json()["detail"][0]["msg"]
    r = c.post("/api/guests", json={"ram_mb": 10 ** 7}, headers=served.auth())
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "ram_mb"]
    r = c.post("/api/guests", json={"cpu_util": [0.2, 1.5]}, headers=served.auth())
    assert r.status_code == 422 and "between 0 and 1" in r.json()["detail"][0]["msg"]
    r = c.post("/api/guests", json={"vcpus": 2, "colour": "red"}, headers=served.auth())
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "colour"]


def test_a_maintenance_window_is_added_and_validated(served):
    c = served.client
    r = c.post("/api/windows", json={"host": "h-05", "start_in": "30m", "duration": "1h"}, headers=served.auth())
    assert r.status_code == 201, r.text
    w = r.json()
    assert w["host"] == 5 and w["end"] - w["start"] == 3600 and w["state"] == "upcoming"
    assert any(x["host"] == 5 and x["start"] == w["start"] for x in c.get("/api/windows").json())
    for body, loc, words in [({"host": 99}, ["body", "host"], "no host 99"),
                             ({"host": "h-nope"}, ["body", "host"], "no host named"),
                             ({"host": 1, "start": 0.5}, ["body", "start"], "in the past"),
                             ({"host": 1, "duration": "soon"}, ["body", "duration"], "cannot read duration"),
                             ({"host": 1, "start": 10 ** 9, "start_in": "1h"}, ["body", "start_in"], "not both")]:
        r = c.post("/api/windows", json=body, headers=served.auth())
        assert r.status_code == 422, (body, r.text)
        d = r.json()["detail"][0]
        assert d["loc"] == loc and words in d["msg"], (body, d)


def test_the_profile_is_swapped_between_ticks_and_validated(served):
    c = served.client
    before = c.get("/api/profile").json()
    assert before["label"] == "presplit"
    body = {"policies": [{"name": "presplit", "args": {"target": 0.75}}], "caps": {"per_host": 3, "total": 6}}
    r = c.put("/api/profile", json=body, headers=served.auth())
    assert r.status_code == 200, r.text
    after = c.get("/api/profile").json()
    assert after["policies"][0]["args"] == {"target": 0.75} and after["caps"]["per_host"] == 3
    bad = [({"policies": [{"name": "nonesuch"}]}, ["body", "policies", 0, "name"], "unknown policy"),
           ({"policies": [{"name": "presplit", "args": {"bogus": 1}}]}, ["body", "policies", 0, "args", "bogus"],
            "has no argument 'bogus'"),
           ({"policies": [{"name": "presplit"}], "caps": {"per_host": 0}}, ["body", "caps", "per_host"],
            "not a positive whole number"),
           ({"policies": [{"name": "presplit"}], "interval": "-5m"}, ["body", "interval"], "interval"),
           ({"policies": []}, ["body", "policies"], "at least 1")]
    for payload, loc, words in bad:
        r = c.put("/api/profile", json=payload, headers=served.auth())
        assert r.status_code == 422, (payload, r.text)
        d = r.json()["detail"][0]
        assert d["loc"] == loc and words in d["msg"], (payload, d)
    assert c.get("/api/profile").json() == after
    r = c.put("/api/profile", json={"policies": [{"name": "presplit"}]}, headers=served.auth())
    assert r.status_code == 200


def test_a_migration_is_journaled_with_its_reason_and_counted(served):
    c = served.client

    def migrated():
        tl = c.get("/api/timeline", params={"limit": 500, "kind": "MigrateGuest"}).json()
        return [e for e in tl if e["status"] == "succeeded"]

    moves = served.wait_for(migrated, 60)
    e = moves[-1]
    assert e["guest"] and e["from_domain"] is not None and e["to_domain"] is not None
    assert "migrate" in e["reason"] and e["details"]["forecast_mips"] > 0
    g = c.get(f"/api/guests/{e['guest']}").json()
    assert any(m["kind"] == "MigrateGuest" and m["reason"] == e["reason"] for m in g["moves"])
    text = c.get("/metrics").text
    assert 'presplit_migrations_total{kind="live",outcome="succeeded"}' in text
    live = [line for line in text.splitlines() if line.startswith('presplit_migrations_total{kind="live",outcome="succ')]
    assert float(live[0].split()[-1]) >= 1


def test_metrics_carry_the_series_the_issue_names(served):
    served.wait_for(lambda: served.client.get("/api/status").json()["ticks"] >= 3)
    text = served.client.get("/metrics").text
    for name in ("presplit_host_cpu_utilisation{", "presplit_host_cpu_forecast_utilisation{",
                 "presplit_domain_cpu_utilisation{", "presplit_domain_cpu_forecast_utilisation{",
                 "presplit_actions_total{", "presplit_migrations_total{", "presplit_plan_duration_seconds_bucket{",
                 "presplit_forecast_abs_error_ratio_bucket{", "presplit_control_loop_duration_seconds_bucket{",
                 "presplit_ticks_total", "presplit_guests{"):
        assert name in text, name
    assert 'quantile="0.95"' in text


def test_live_events_arrive(served):
    with httpx.stream("GET", served.url + "/api/live", timeout=10) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        seen = []
        for line in r.iter_lines():
            seen.append(line)
            if line.startswith("event: tick"):
                break
    assert any(x.startswith("event: tick") for x in seen)


def test_the_dashboard_and_openapi_are_served(served):
    c = served.client
    r = c.get("/", follow_redirects=True)
    assert r.status_code == 200 and "presplit" in r.text and "/dashboard/app.js" in r.text
    assert "EventSource" in c.get("/dashboard/app.js").text
    doc = c.get("/openapi.json").json()
    assert "/api/guests" in doc["paths"] and "post" in doc["paths"]["/api/guests"]
    assert "HTTPBearer" in str(doc["components"]["securitySchemes"])
