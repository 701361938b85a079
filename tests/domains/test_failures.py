"""Failures and recovery on the split-domain engine: every failure kind, restarts, the reserve, seeds, specs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from click.testing import CliRunner

from tests_support import journal_round_trip, small_fleet
from tests_support import placed as placed_round_robin
from presplit.cli.main import cli
from presplit.errors import InputError
from presplit.model.domains import DOWN, MIGRATING, RUNNING
from presplit.plan import MigrateGuest, PlaceGuest, PowerOff, RestartGuest, SplitDomain, advance, apply_action
from presplit.plan.failures import crash_domain, crash_host, fail_links, fail_migration, failed, repair_links
from presplit.plan.invariants import violations
from presplit.policies import recovery
from presplit.policies.evacuate import EvacuatePolicy
from presplit.policies.presplit.domains import DomainPresplit
from presplit.scenarios.loader import ScenarioFileError
from presplit.sim.domain_engine import DomainWorkload, run_domains
from presplit.sim.failures import FailureSpec, TimedFailure, generate, parse_failures, parse_rate_spec
from presplit.sim.forecast_feed import ObservedForecasts


def placed(n_hosts=3, n_guests=6, racks=1, ram=4096.0):
    """Guest g running in domain g % n_hosts (one domain per host)."""
    return placed_round_robin(n_hosts, ((1, ram),) * n_guests, racks=racks)


def on_host(state, h):
    return set(np.flatnonzero(state.domain_arrays["host"][state.guest_domain] == h).tolist())


# ----------------------------------------------------------------- every failure kind
def test_host_crash_stops_exactly_its_guests_until_repaired():
    state = placed()
    crashed, details = crash_host(state, 0, 100.0, repair_s=3600.0)
    assert violations(crashed) == []
    assert set(np.flatnonzero(failed(crashed)).tolist()) == on_host(state, 0) == {0, 3}
    assert (crashed.guest_status[[1, 2, 4, 5]] == RUNNING).all()
    assert (crashed.guest_down_start[[0, 3]] == 100.0).all() and np.isinf(crashed.guest_down_end[[0, 3]]).all()
    assert not crashed.host_ready(0) and details["ready_at"] == 100.0 + 3600.0 + 120.0
    # Its domains are gone until the host is back: nothing restarts there, nothing wakes by itself.
    _, refused = apply_action(crashed, RestartGuest(0, 0))
    assert not refused.ok and "not active" in refused.reason
    later, _ = advance(crashed, 100.0 + 3600.0 + 120.0 + crashed.model.provision_s)
    assert later.domains[0].state == "active" and later.host_ready(0) and failed(later)[[0, 3]].all()
    # A restart elsewhere moves the guest's booking; it is down until it has booted.
    moved, out = apply_action(crashed, RestartGuest(0, 1))
    assert out.ok and moved.guest_domain[0] == 1 and moved.guest_status[0] == DOWN
    assert moved.guest_down_end[0] == 100.0 + moved.model.guest_boot_s and violations(moved) == []
    up, _ = advance(moved, 100.0 + moved.model.guest_boot_s)
    assert up.guest_status[0] == RUNNING


def test_domain_crash_stops_exactly_that_domains_guests():
    state = small_fleet(n_hosts=1, guests=((1, 2048.0),) * 4)
    state, out = apply_action(state, SplitDomain(0, ((3500.0, 16384.0),)))
    sibling = out.details["new_domains"][0]
    state, _ = advance(state, 60.0)
    for g, d in enumerate((0, sibling, 0, sibling)):
        state, out = apply_action(state, PlaceGuest(g, d))
        assert out.ok, out
    crashed, details = crash_domain(state, sibling, 120.0, restart_s=60.0)
    assert violations(crashed) == []
    assert np.flatnonzero(failed(crashed)).tolist() == [1, 3] == details["guests_stopped"]
    assert (crashed.guest_status[[0, 2]] == RUNNING).all() and crashed.host_ready(0)
    assert crashed.domains[sibling].state == "provisioning" and crashed.domains[0].state == "active"
    # Its services are back after the restart time; the guests restart in place.
    back, _ = advance(crashed, 180.0)
    back, out = apply_action(back, RestartGuest(1, sibling))
    assert out.ok and back.guest_domain[1] == sibling and violations(back) == []


def test_link_failure_fails_migrations_over_it_and_the_fabric_routes_around_it():
    state = placed(n_hosts=4, n_guests=4, racks=2)  # hosts 0, 2 in r0; 1, 3 in r1; a mesh inside each rack
    state, out = apply_action(state, MigrateGuest(0, 1))  # cross-rack: 0 -> tor:r0 -> spine -> tor:r1 -> 1
    assert out.ok and state.guest_status[0] == MIGRATING
    uplink = next(x for x in state.fabric.links if "spine" in (x.a, x.b) and "tor:r0" in (x.a, x.b))
    cut, details = fail_links(state, (uplink,), state.now + 1.0)
    assert details["migrations_failed"] == [0] and violations(cut) == []
    assert cut.guest_status[0] == RUNNING and cut.guest_domain[0] == 0 and cut.guest_dest[0] == -1
    assert cut.reserved[1, 1] == 4096.0  # the destination's booking is released (only guest 1 there)
    _, refused = apply_action(cut, MigrateGuest(0, 1))
    assert not refused.ok and "no fabric path" in refused.reason
    # Inside the rack the mesh still carries it.
    _, out = apply_action(cut, MigrateGuest(0, 2))
    assert out.ok
    back, _ = repair_links(cut, (uplink,), cut.now + 60.0)
    assert apply_action(back, MigrateGuest(0, 1))[1].ok
    # A host's NIC (its link to the top-of-rack switch) fails: the mesh routes around it, one hop longer.
    nic = tuple(x for x in state.fabric.links if 0 in (x.a, x.b) and "tor:r0" in (x.a, x.b))
    before = state.fabric.path(0, 3)
    routed, details = fail_links(placed(n_hosts=4, n_guests=4, racks=2), nic, 1.0)
    assert routed.fabric.path(0, 3).hops == before.hops + 1 and details["migrations_failed"] == []


def test_failed_migration_leaves_the_guest_at_its_source():
    state = placed(n_hosts=2, n_guests=2)
    state, _ = apply_action(state, MigrateGuest(0, 1))
    end = float(state.guest_mig_end[0])
    out, details = fail_migration(state, 0, state.now + 0.5)
    assert details["failed"] and violations(out) == []
    assert out.guest_status[0] == RUNNING and out.guest_domain[0] == 0 and out.guest_dest[0] == -1
    later, _ = advance(out, end + 10.0)
    assert later.guest_domain[0] == 0 and later.guest_status[0] == RUNNING


def tiny_work(n, steps=24, cpu=0.3):
    return DomainWorkload(np.full((n, steps), cpu), None, np.zeros(n, np.int64))


def test_every_migration_failing_keeps_evacuated_guests_home():
    from presplit.model.domains import PatchWindowSim

    state = small_fleet(n_hosts=3, guests=((2, 4096.0),) * 4, arrived=False)
    state = state.evolve(patch_windows=(PatchWindowSim(0, 1800.0, 9000.0, 1800.0),))
    m = run_domains(state, tiny_work(4, steps=36), EvacuatePolicy(), check_invariants=True,
                    failures=FailureSpec(migration_p=1.0, seed=1)).metrics
    assert m["cross_host_migrations"] > 0 and m["migrations_failed"] == m["cross_host_migrations"]
    assert m["guests_lost"] == 0


# ----------------------------------------------------------------- recovery
@pytest.mark.parametrize("make, forecasts", [(DomainPresplit, True), (EvacuatePolicy, False)])
def test_recovery_restarts_every_stopped_guest(make, forecasts):
    state = placed()
    spec = FailureSpec(events=(TimedFailure(1000.0, "host", host="h0"), TimedFailure(2500.0, "domain", domain=1)),
                       seed=1)
    fc = ObservedForecasts(state.n_guests) if forecasts else None
    result = run_domains(state, tiny_work(6), make(), forecasts=fc, check_invariants=True, failures=spec)
    m = result.metrics
    assert m["failures_injected"] == 2 and m["guests_lost"] == 0
    crashes = [e for e in result.events if e.action.kind in ("HostCrash", "DomainCrash")]
    assert [set(e.outcome.guests) for e in crashes][0] == {0, 3}  # host h0's guests, then domain 1's
    stopped = sum(len(e.outcome.guests) for e in crashes)
    assert m["failover_restarts"] == stopped >= 4
    # Detected after 30 s, restarted at once where there is room, booted in 60 s.
    assert m["failover_max_s"] == pytest.approx(90.0) and m["failure_downtime_s"] == pytest.approx(stopped * 90.0)
    final = result.final_state
    assert (final.guest_status == RUNNING).all() and violations(final) == []
    restarts = [e for e in result.events if e.action.kind == "RestartGuest"]
    assert len(restarts) == stopped and all(e.outcome.ok and "failed at" in e.action.reason for e in restarts)
    assert all(e.time == 900.0 and e.outcome.time == pytest.approx(1030.0) for e in restarts[:2])
    if forecasts:
        assert all("forecast" in e.action.reason for e in restarts)


def test_restart_priorities_then_size():
    state = small_fleet(n_hosts=2, guests=((1, 2048.0), (1, 8192.0), (1, 4096.0), (1, 1024.0)))
    for g in range(4):
        state, _ = apply_action(state, PlaceGuest(g, 0))
    crashed, _ = crash_host(state, 0, 0.0, 3600.0)
    assert recovery.restart_order(crashed, np.arange(4)).tolist() == [1, 2, 0, 3]  # the largest first
    assert recovery.restart_order(crashed, np.arange(4), (("g3", 5), ("g0", 1))).tolist() == [3, 0, 1, 2]
    later, _ = advance(crashed, 30.0)
    actions, _ = recovery.restart_first_fit(later, priorities=(("g3", 5),))
    assert [a.guest for a in actions] == [3, 1, 2, 0] and all(a.to_domain == 1 for a in actions)
    assert recovery.restart_first_fit(advance(crashed, 29.0)[0])[0] == []  # not detected yet


def test_restart_guest_journal_round_trip():
    state = placed()
    crashed, _ = crash_host(state, 0, 0.0, 3600.0)
    decoded, new, after, on_old, (reverted, ok, why) = journal_round_trip(crashed, RestartGuest(0, 1, reason="t"))
    assert decoded == RestartGuest(0, 1, reason="t")
    assert after[0] == "pending" and on_old[0] == "not_run"
    assert ok and reverted.guest_domain[0] == 0 and failed(reverted)[0] and violations(reverted) == []


# ----------------------------------------------------------------- failover capacity
def test_reserve_short_is_counted_and_presplit_keeps_the_reserve():
    # Two hosts on, each half full: neither can take the other's guests plus its own -> short.
    state = small_fleet(n_hosts=3, guests=((1, 20000.0),) * 4)
    for g in range(4):
        state, _ = apply_action(state, PlaceGuest(g, g % 2))
    state, _ = apply_action(state, PowerOff(2))
    assert recovery.reserve_short(state)

    class Nothing:
        def propose(self, state, forecasts, now):
            return []

    m = run_domains(state, tiny_work(4, steps=6), Nothing()).metrics
    assert m["failover_capacity_short"] == 6
    fc = ObservedForecasts(state.n_guests)(0, state)
    wake, keep = recovery.failover_reserve(state, fc, hosts_lost=1, target=0.8)
    assert [a.host for a in wake] == [2] and "failover capacity" in wake[0].reason
    assert recovery.failover_reserve(state, fc, hosts_lost=0)[0] == []
    m = run_domains(state, tiny_work(4, steps=6), DomainPresplit(), forecasts=ObservedForecasts(4)).metrics
    assert m["failover_capacity_short"] <= 1  # short until the woken host has booted (120 s < one tick)


# ----------------------------------------------------------------- seeds and specs
def test_a_seed_gives_the_same_failures_and_the_same_run():
    spec = parse_rate_spec("host=8/day,domain=20/day,link=10/day,migration=0.3,host_repair=20m,seed=5")
    assert generate(spec, 86400.0) == generate(spec, 86400.0)
    assert generate(spec, 86400.0) != generate(parse_rate_spec("host=30/day,domain=30/day,link=20/day,seed=6"),
                                               86400.0)
    # One stream per kind: adding link failures leaves the host crashes where they were.
    hosts = [d for d in generate(spec, 86400.0) if d.kind == "host"]
    assert hosts == [d for d in generate(parse_rate_spec("host=8/day,seed=5"), 86400.0)]

    def once():
        state = placed(n_hosts=4, n_guests=8, racks=2)
        result = run_domains(state, tiny_work(8, steps=96), DomainPresplit(), forecasts=ObservedForecasts(8),
                             failures=spec, check_invariants=True)
        m = dict(result.metrics)
        m.pop("wall_s")
        return m, [(e.action.kind, e.outcome.ok, e.outcome.guests) for e in result.events]

    first, again = once(), once()
    assert first == again and first[0]["failures_injected"] > 5 and first[0]["guests_lost"] == 0


@pytest.mark.parametrize("spec, words", [
    ("host=2/fortnight", "host: unknown unit 'fortnight'"),
    ("hots=2/day", "hots: unknown key"),
    ("host=-1/day", "host: cannot read '-1/day' as a rate"),
    ("migration=1.5", "migration: '1.5' is outside 0..1"),
    ("seed=x", "seed: 'x' is not a seed"),
    ("host=2/day,host=3/day", "host: given twice"),
    ("host_repair=soon", "host_repair: cannot read 'soon' as a duration"),
    ("host2/day", "no such file, and not a RATE-SPEC"),
    ("host=2/day,,domain", "domain: not key=value"),
])
def test_rate_spec_errors_are_one_clear_line(spec, words):
    with pytest.raises(InputError) as err:
        parse_failures(spec)
    text = str(err.value)
    assert "\n" not in text and text.startswith("--failures") and words in text, text
    assert "expected" in text or "RATE-SPEC" in text


def test_rate_spec_and_file_read_the_same(tmp_path):
    spec = parse_failures("host=2/day, domain=12/h, link=1, migration=1%, seed=3, guest_boot=90s, host_repair=2h")
    assert (spec.host_per_day, spec.domain_per_day, spec.link_per_day, spec.migration_p, spec.seed) == \
        (2.0, 288.0, 1.0, 0.01, 3)
    assert spec.guest_boot_s == 90.0 and spec.host_repair_s == 7200.0
    path = tmp_path / "f.yaml"
    path.write_text("failures:\n  host: 2/day\n  events: [{at: 1h, kind: host, host: h1, for: 30m}]\n"
                    "  priorities: {'db-*': 3}\n")
    spec = parse_failures(str(path))
    assert spec.host_per_day == 2.0 and spec.events == (TimedFailure(3600.0, "host", host="h1", duration_s=1800.0),)
    assert spec.priorities == (("db-*", 3),)
    path.write_text("failures:\n  events: [{at: 1h, kind: volcano}]\n")
    with pytest.raises(InputError, match=r"failures.events\[0\].kind: 'volcano'"):
        parse_failures(str(path))


def test_cli_refuses_a_bad_spec_before_running_and_scenario_keys_are_checked(tmp_path):
    result = CliRunner().invoke(cli, ["simulate", "--scenario", "bighost-patch", "--failures", "host=lots"])
    assert result.exit_code == 2 and "--failures 'host=lots': host: cannot read 'lots' as a rate" in result.output
    assert len(result.output.strip().splitlines()) == 1
    cloud = CliRunner().invoke(cli, ["simulate", "--scenario", "cloudsim", "--failures", "domain=1/day"])
    assert cloud.exit_code == 2 and "one domain per host" in cloud.output
    from presplit.scenarios.loader import load_scenario_file

    path = tmp_path / "s.yaml"
    path.write_text("base: bighost-patch\nfailures: {host: 2/day, domain_restart: 2m, seed: 4}\n")
    scen = load_scenario_file(path)
    assert scen.failures.host_per_day == 2.0 and scen.failures.domain_restart_s == 120.0
    path.write_text("base: bighost-patch\nfailures: {hots: 2/day}\n")
    with pytest.raises(ScenarioFileError) as err:
        load_scenario_file(path)
    assert err.value.key == "failures.hots" and str(path) in str(err.value)


def test_a_failure_naming_an_unknown_target_is_refused_at_start():
    spec = FailureSpec(events=(TimedFailure(10.0, "host", host="nope"),))
    with pytest.raises(InputError, match="host 'nope'"):
        run_domains(placed(), tiny_work(6, steps=2), EvacuatePolicy(), failures=spec)
    assert math.isfinite(parse_rate_spec("link=1/day").link_per_day)
