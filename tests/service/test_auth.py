"""Mutations without a valid token are refused (401) and change nothing; reads from other addresses need it."""

from __future__ import annotations

import httpx
import pytest
from service_support import TOKEN, Served, journal_rows, world_changes

MUTATIONS = [
    ("POST", "/api/guests", {"id": "intruder", "vcpus": 1}),
    ("POST", "/api/windows", {"host": 0, "start_in": "10m", "duration": "1h"}),
    ("PUT", "/api/profile", {"policies": [{"name": "evacuate"}]}),
    ("POST", "/api/plans/1/approve", None),
    ("POST", "/api/plans/1/reject", None),
    ("POST", "/api/plans/1/cancel", None),
    # invalid bodies too: the token is checked first, so they are 401, not 422
    ("POST", "/api/guests", {"vcpus": -5}),
    ("PUT", "/api/profile", {"policies": "all of them"}),
]


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong-token"}, {"Authorization": "Basic " + TOKEN},
                                     {"Authorization": "Bearer " + TOKEN + "x"}, {"Authorization": TOKEN}],
                         ids=["missing", "wrong", "basic-scheme", "longer", "no-scheme"])
def test_mutations_without_a_valid_token_are_refused_and_change_nothing(served, headers):
    c = served.client
    served.wait_for(lambda: c.get("/api/status").json()["ticks"] >= 1)
    before = (world_changes(served), c.get("/api/profile").json(), len(c.get("/api/guests").json()),
              c.get("/api/windows", params={"past": True}).json())
    journal_before = journal_rows(served)
    for method, path, body in MUTATIONS:
        r = c.request(method, path, json=body, headers=headers)
        assert r.status_code == 401, (method, path, r.status_code, r.text)
        assert r.headers["www-authenticate"] == "Bearer"
        assert TOKEN not in r.text
    after = (world_changes(served), c.get("/api/profile").json(), len(c.get("/api/guests").json()),
             c.get("/api/windows", params={"past": True}).json())
    assert after == before
    plans_before, decisions_before, profile_before = journal_before
    plans_after, decisions_after, profile_after = journal_rows(served)
    assert decisions_after == decisions_before and profile_after == profile_before
    # plans that existed keep their status (the loop may have added new ones meanwhile)
    assert plans_after[:len(plans_before)] == plans_before
    assert "intruder" not in {g["id"] for g in c.get("/api/guests").json()}


def test_without_a_configured_token_mutations_are_disabled(tmp_path):
    s = Served(tmp_path, token=None)
    try:
        r = s.client.post("/api/guests", json={"vcpus": 1}, headers=s.auth())
        assert r.status_code == 401 and "disabled" in r.json()["detail"]
        assert s.client.get("/api/hosts").status_code == 200
    finally:
        s.close()


def test_reads_from_other_addresses_need_the_token(served):
    import asyncio

    from presplit.service.app import create_app
    from presplit.service.auth import Auth

    async def go(open_reads: bool):
        app = create_app(runner=served.runner, auth=Auth(TOKEN, open_reads=open_reads), manage_runner=False)
        transport = httpx.ASGITransport(app=app, client=("10.1.2.3", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://presplit") as c:
            return ((await c.get("/api/hosts")).status_code,
                    (await c.get("/api/hosts", headers={"Authorization": f"Bearer {TOKEN}"})).status_code,
                    (await c.get("/metrics")).status_code)

    assert asyncio.run(go(False)) == (401, 200, 401)
    assert asyncio.run(go(True)) == (200, 200, 200)


def test_the_token_file_is_read_and_never_shown(tmp_path):
    from presplit.service.auth import Auth, TokenError, load_token

    f = tmp_path / "token"
    f.write_text("  s3cret-token \n")
    assert load_token(str(f), env={}) == "s3cret-token"
    assert load_token(None, env={"PRESPLIT_API_TOKEN": "from-env"}) == "from-env"
    assert load_token(None, env={}) is None
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(TokenError, match="empty"):
        load_token(str(tmp_path / "empty"), env={})
    assert "s3cret" not in repr(Auth("s3cret-token"))
