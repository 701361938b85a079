"""Operators' changes through the API never stop the loop, on every shipped domain scenario and the demo fleet.

Each scenario runs behind a real uvicorn server: guests are launched (with
and without ids, with a demand series), a window is added, the profile is
swapped, bad profiles are refused; the loop must keep ticking with no error.
Afterwards ``presplit run`` replays the same store (every change the API
accepted is a change kind the world knows) and ticks on.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from service_support import Served

from presplit.cli.main import cli
from presplit.scenarios.loader import shipped_scenarios


def _domain_scenarios() -> list[str | None]:
    from presplit.scenarios import load_scenario

    names = [None]  # the demo fleet
    for name in shipped_scenarios():
        try:
            if load_scenario(name).engine == "domains":
                names.append(name)
        except Exception:  # noqa: BLE001 - a scenario that cannot load fails below, by name
            names.append(name)
    return names


def _ticks(s: Served) -> dict:
    return s.client.get("/api/status").json()


def _advances(s: Served, by: int = 3, timeout: float = 120.0) -> dict:
    start = _ticks(s)["ticks"]
    return s.wait_for(lambda: (st := _ticks(s))["ticks"] >= start + by and st, timeout=timeout)


@pytest.mark.parametrize("scenario", _domain_scenarios(), ids=lambda n: n or "demo")
def test_api_changes_never_stop_the_loop(tmp_path, scenario):
    s = Served(tmp_path, pace_s=0.02, scenario=scenario)
    try:
        st = _advances(s, 1)
        assert st["running"] and st["last_error"] is None
        h = s.auth()
        launched = [s.client.post("/api/guests", json={"id": "web-1"}, headers=h),
                    s.client.post("/api/guests", json={}, headers=h),
                    s.client.post("/api/guests", json={"id": "batch-1", "vcpus": 4, "ram_mb": 2048,
                                                       "cpu_util": [0.1, 0.9, 0.5]}, headers=h)]
        assert [r.status_code for r in launched] == [202, 202, 202], [r.text for r in launched]
        assert s.client.post("/api/guests", json={"id": "web-1"}, headers=h).status_code == 422  # taken
        w = s.client.post("/api/windows", json={"host": 0, "start_in": "30m", "duration": "2h"}, headers=h)
        assert w.status_code == 201, w.text
        for bad in ({"policies": [{"name": "presplit", "args": {"needs_forecasts": False}}]},
                    {"policies": [{"name": "presplit", "args": {"target": -5}}]},
                    {"policies": [{"name": "presplit", "args": {"max_total": 2.5}}]},
                    {"policies": [{"name": "presplit", "args": {"spare_hosts": -10}}]},
                    {"policies": [{"name": "evacuate", "args": {"high": -1}}]},
                    {"policies": [{"name": "presplit"}], "interval": "nan"}):
            r = s.client.put("/api/profile", json=bad, headers=h)
            assert r.status_code == 422, (bad, r.text)
        good = s.client.put("/api/profile", json={"policies": [{"name": "presplit", "args": {"target": 0.75}}]},
                            headers=h)
        assert good.status_code == 200, good.text
        st = _advances(s, 3)
        assert st["running"] and st["last_error"] is None and st["failed_ticks"] == 0, st
        assert st["counts"]["guests"] >= 3
        for gid in ("web-1", "batch-1"):
            assert s.client.get(f"/api/guests/{gid}").status_code == 200
        now = st["now"]
    finally:
        s.close()
    # The same store, replayed by the batch controller: it knows every change the API made.
    args = ["run", "--scenario", scenario or str(next((tmp_path / "presplit-demo").glob("*.yaml"))), "--db", s.db,
            "--until", f"{now + 1800:.0f}", "--quiet"]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert "ticks=" in res.output
    state = CliRunner().invoke(cli, ["state", "--db", s.db, "--json", "-"])
    assert '"web-1"' in state.output and '"batch-1"' in state.output


def test_a_good_profile_revives_a_loop_that_died(tmp_path, monkeypatch):
    from presplit.control import loop as loop_mod

    real_run = loop_mod.ControlLoop.run
    calls = []

    def dies_once(self):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("the loop died outside a tick")
        return real_run(self)

    monkeypatch.setattr(loop_mod.ControlLoop, "run", dies_once)
    s = Served(tmp_path, pace_s=0.02)
    try:
        st = s.wait_for(lambda: (x := _ticks(s))["last_error"] and x)
        assert not st["running"] and "died outside a tick" in st["last_error"]
        r = s.client.put("/api/profile", json={"policies": [{"name": "presplit"}]}, headers=s.auth())
        assert r.status_code == 200, r.text
        st = s.wait_for(lambda: (x := _ticks(s))["running"] and x["ticks"] >= 2 and x)
        assert st["last_error"] is None
        events = s.client.get("/api/events", params={"limit": 500}).json()
        assert "loop_failed" in {e["event"] for e in events} and "profile_changed" in {e["event"] for e in events}
    finally:
        s.close()


def test_the_api_refuses_a_policy_named_by_file_or_module(served):
    """A profile over the API may name built-in policies and installed entry points only: never code to import."""
    before = served.client.get("/api/profile").json()
    for name in ("examples/threshold_policy.py:Threshold", "my-policy.py:C", "os:system", "pkg.mod:Cls"):
        r = served.client.put("/api/profile", json={"policies": [{"name": name}]}, headers=served.auth())
        assert r.status_code == 422, (name, r.text)
        assert "not accepted over the API" in r.text
    assert served.client.get("/api/profile").json() == before


def test_the_profile_names_the_forecaster_the_policies_decide_on(served):
    h = served.auth()
    r = served.client.put("/api/profile", json={"policies": [{"name": "presplit"}], "forecaster": "oracle"}, headers=h)
    assert r.status_code == 422 and "future" in r.text
    r = served.client.put("/api/profile", json={"policies": [{"name": "presplit"}], "forecaster": "nonesuch"},
                          headers=h)
    assert r.status_code == 422 and "forecaster" in r.text
    r = served.client.put("/api/profile", json={"policies": [{"name": "presplit"}], "forecaster": "reactive"},
                          headers=h)
    assert r.status_code == 200, r.text
    assert served.client.get("/api/profile").json()["forecaster"] == "reactive"
    start = served.client.get("/api/status").json()["ticks"]
    st = served.wait_for(lambda: (x := served.client.get("/api/status").json())["ticks"] >= start + 2 and x)
    assert st["running"] and st["failed_ticks"] == 0
    decide = served.runner.loop.forecasts.decide
    assert decide is not None and decide.name == "reactive"
    r = served.client.put("/api/profile", json={"policies": [{"name": "presplit"}]}, headers=h)
    assert r.status_code == 200 and r.json()["forecaster"] == "outlook"
