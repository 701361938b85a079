"""Recommend-only mode: plans wait as 'recommended'; approve applies one, reject and cancel close them.

Only the newest recommendation of a source is open (a newer one supersedes it), so each decision here is taken
on the newest recommendation of its moment; an approval is answered at once (202) and applied in the background.
"""

from __future__ import annotations

import time

from service_support import Served

DONE = {"succeeded", "partially_failed", "failed", "cancelled"}


def _decide_newest(s: Served, verb: str, body: dict | None = None, exclude=()):
    """``verb`` on the newest recommendation; a tick may supersede it between the read and the call: try again."""
    c = s.client
    deadline = time.time() + 30
    while time.time() < deadline:
        rec = [p for p in c.get("/api/plans", params={"status": "recommended"}).json() if p["id"] not in exclude]
        if not rec:
            time.sleep(0.1)
            continue
        r = c.post(f"/api/plans/{rec[0]['id']}/{verb}", json=body, headers=s.auth())
        if r.status_code == 409 and ("superseded" in r.text or "only recommended plans" in r.text):
            continue
        return rec[0], r
    raise AssertionError(f"no recommendation stayed the newest long enough to {verb} it")


def test_approve_reject_and_cancel_recommended_plans(tmp_path):
    s = Served(tmp_path, dry_run=True, pace_s=0.1)
    c = s.client
    try:
        plans = s.wait_for(lambda: c.get("/api/plans", params={"status": "recommended"}).json(), 30)
        assert all(p["dry_run"] and set(p["actions"]) == {"recommended"} for p in plans)
        assert c.get("/api/guests", params={"status": "running"}).json() == []  # nothing applied
        first, r = _decide_newest(s, "approve", {"note": "looks right"})
        assert r.status_code == 202, r.text
        assert r.json()["status"] in {"running"} | DONE
        done = s.wait_for(lambda: (p := c.get(f"/api/plans/{first['id']}").json())["status"] in DONE and p, 30)
        assert done["status"] in ("succeeded", "partially_failed")
        assert c.get("/api/guests", params={"status": "running"}).json()  # the placements ran
        events = c.get(f"/api/plans/{first['id']}/events").json()
        assert any(e["event"] == "approved" and "looks right" in (e["detail"] or "") for e in events)
        second, r = _decide_newest(s, "reject", exclude={first["id"]})
        assert r.status_code == 200 and r.json()["status"] == "rejected", r.text
        assert set(r.json()["actions"]) == {"cancelled"}
        third, r = _decide_newest(s, "cancel", exclude={first["id"], second["id"]})
        assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text
        for pid, verb in ((first["id"], "approve"), (second["id"], "approve"), (third["id"], "reject"),
                          (first["id"], "cancel")):
            r = c.post(f"/api/plans/{pid}/{verb}", headers=s.auth())
            assert r.status_code == 409, (pid, verb, r.text)
        assert c.post("/api/plans/987654/approve", headers=s.auth()).status_code == 404
        tl = {(e["plan_id"], e["status"]) for e in c.get("/api/timeline", params={"limit": 1000}).json()}
        assert (second["id"], "cancelled") in tl
    finally:
        s.close()
