"""One bad tick never stops the controller: it is journaled with its traceback and the loop goes on."""

from __future__ import annotations

import numpy as np
from click.testing import CliRunner

from presplit.apply import Journal
from presplit.backends.sim_world import create_world
from presplit.cli.main import cli
from presplit.control.clock import SimClock
from presplit.control.assemble import assemble
from presplit.control.profile import Profile, PolicySpec, build_policies
from presplit.model.domains import Guest
from presplit.scenarios import load_scenario
from presplit.service.demo import demo_scenario


class Flaky:
    """The presplit policy, except that it raises at the ticks in ``bad``."""

    def __init__(self, bad: set[float]) -> None:
        self.inner = build_policies(Profile((PolicySpec("presplit"),)), "domains")[0]
        self.bad = bad
        self.kind, self.name, self.needs_forecasts = "domains", "flaky", True

    def propose(self, state, forecasts, now):
        if now in self.bad:
            raise ZeroDivisionError(f"a policy bug at t={now:g}")
        return self.inner.propose(state, forecasts, now)


def _loop(tmp_path, policy, until_s=3600.0):
    scen = load_scenario(str(demo_scenario(tmp_path / "scen")))
    world = create_world(tmp_path / "w.db", scen)
    journal = Journal(f"sqlite:///{tmp_path / 'j.db'}")
    loop = assemble(world, journal, SimClock(world.observe().now), [policy], Profile((PolicySpec("x"),)).limits,
                    interval_s=300.0, until_s=until_s)
    return loop, journal, world


def test_a_failing_tick_is_journaled_and_the_loop_goes_on(tmp_path):
    loop, journal, world = _loop(tmp_path, Flaky({600.0, 1200.0}))
    report = loop.run()
    assert report.ticks == 13 and report.failed_ticks == 2
    assert journal.get_meta("last_tick") == 3600.0
    failed = [e for e in journal.events() if e["event"] == "tick_failed"]
    assert [e["t"] for e in failed] == [600.0, 1200.0]
    assert "ZeroDivisionError: a policy bug at t=600" in failed[0]["detail"] and "Traceback" in failed[0]["detail"]
    err = journal.get_meta("last_error")
    assert err["tick"] == 1200.0 and "a policy bug" in err["error"] and err["failed_ticks"] == 2
    assert report.statuses.get("succeeded", 0) >= 1
    assert all(p["status"] == "succeeded" for p in journal.plans())
    assert not journal.open_plans()
    res = CliRunner().invoke(cli, ["state", "--db", str(tmp_path / "j.db")])
    assert res.exit_code == 0 and "a policy bug at t=1200" in res.output and "Traceback" in res.output


def test_max_failed_ticks_ends_a_loop_that_only_fails(tmp_path):
    loop, journal, _ = _loop(tmp_path, Flaky({k * 300.0 for k in range(100)}))
    loop.max_failed_ticks = 3
    report = loop.run()
    assert report.failed_ticks == 3 and report.ticks == 3


def test_guests_that_cannot_be_placed_are_reported(tmp_path):
    policy = build_policies(Profile((PolicySpec("presplit"),)), "domains")[0]
    loop, journal, world = _loop(tmp_path, policy, until_s=900.0)
    state = world.observe()
    host_mb = max(h.ram_mb for h in state.hosts)
    world.launch_guest(Guest("huge", 1, 1000.0, host_mb * 0.99, reserve_mips=100.0), np.array([0.1]))
    report = loop.run()
    assert report.failed_ticks == 0
    events = [e for e in journal.events() if e["event"] == "guests_unplaced"]
    assert events and "huge" in events[-1]["detail"]
    assert loop.unplaced >= 1


def test_run_warns_about_unplaced_guests_at_the_end(tmp_path):
    scen = demo_scenario(tmp_path / "scen")
    text = scen.read_text().replace("ram_gb: 32", "ram_gb: 5")  # 4 GB guests: one per host, 24 guests, 8 hosts
    scen.write_text(text)
    res = CliRunner().invoke(cli, ["run", "--scenario", str(scen), "--db", str(tmp_path / "j.db"), "--until", "1h"])
    assert res.exit_code == 0, res.output
    assert "could not be placed" in res.output
