"""Recommend-only mode: plans wait as 'recommended'; approve applies one, reject and cancel close them."""

from __future__ import annotations

from service_support import Served


def test_approve_reject_and_cancel_recommended_plans(tmp_path):
    s = Served(tmp_path, dry_run=True, pace_s=0.1)
    c = s.client
    try:
        plans = s.wait_for(lambda: len(c.get("/api/plans", params={"status": "recommended"}).json()) >= 3 and
                           c.get("/api/plans", params={"status": "recommended"}).json(), 30)
        assert all(p["dry_run"] and set(p["actions"]) == {"recommended"} for p in plans)
        assert c.get("/api/guests", params={"status": "running"}).json() == []  # nothing applied
        first, second, third = plans[-1], plans[-2], plans[-3]
        r = c.post(f"/api/plans/{first['id']}/approve", json={"note": "looks right"}, headers=s.auth())
        assert r.status_code == 200, r.text
        assert r.json()["status"] in ("succeeded", "partially_failed")
        assert c.get("/api/guests", params={"status": "running"}).json()  # the placements ran
        events = c.get(f"/api/plans/{first['id']}/events").json()
        assert any(e["event"] == "approved" and "looks right" in (e["detail"] or "") for e in events)
        r = c.post(f"/api/plans/{second['id']}/reject", headers=s.auth())
        assert r.status_code == 200 and r.json()["status"] == "rejected"
        assert set(r.json()["actions"]) == {"cancelled"}
        r = c.post(f"/api/plans/{third['id']}/cancel", headers=s.auth())
        assert r.status_code == 200 and r.json()["status"] == "cancelled"
        for pid, verb in ((first["id"], "approve"), (second["id"], "approve"), (third["id"], "reject"),
                          (first["id"], "cancel")):
            r = c.post(f"/api/plans/{pid}/{verb}", headers=s.auth())
            assert r.status_code == 409, (pid, verb, r.text)
        assert c.post("/api/plans/987654/approve", headers=s.auth()).status_code == 404
        tl = {(e["plan_id"], e["status"]) for e in c.get("/api/timeline", params={"limit": 1000}).json()}
        assert (second["id"], "cancelled") in tl
    finally:
        s.close()
