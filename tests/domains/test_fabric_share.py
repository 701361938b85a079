"""The fabric adapting to observed traffic: each host's bandwidth split between guest traffic and migrations."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tests_support import journal_round_trip, small_fleet
from test_services import IO_MODEL, io_run
from presplit.model.domains import MIGRATING, RUNNING, DomainModel, Service
from presplit.plan import MigrateGuest, PlaceGuest, SetMigrationShare, apply_action
from presplit.plan.ordering import order_actions
from presplit.policies.presplit.domains import DomainPresplit
from presplit.sim.domain_metrics import DomainMetrics


def two_hosts(model=IO_MODEL):
    state = small_fleet(n_hosts=2, guests=((1, 4096.0),) * 2, model=model)
    for g in range(2):
        state, out = apply_action(state, PlaceGuest(g, 0))
        assert out.ok
    return state


def test_share_starts_at_the_model_default_and_is_bounded():
    state = two_hosts()
    assert state.host_mig_share.tolist() == [IO_MODEL.migration_bw_share] * 2
    new, out = apply_action(state, SetMigrationShare(1, 0.9))
    assert out.ok and new.host_mig_share.tolist() == [0.5, 0.9] and out.details["was"] == 0.5
    for bad in (0.0, 0.99, -1.0):
        same, out = apply_action(state, SetMigrationShare(0, bad))
        assert not out.ok and "within" in out.reason and same is state
    _, out = apply_action(state, SetMigrationShare(5, 0.5))
    assert not out.ok


def test_a_migration_runs_at_the_smaller_share_of_its_two_ends():
    state = two_hosts()
    _, slow = apply_action(state, MigrateGuest(0, 1))
    one_end = apply_action(state, SetMigrationShare(1, 0.9))[0]
    _, same = apply_action(one_end, MigrateGuest(0, 1))
    both = apply_action(one_end, SetMigrationShare(0, 0.9))[0]
    _, fast = apply_action(both, MigrateGuest(0, 1))
    assert same.cost.seconds == pytest.approx(slow.cost.seconds)  # the source still gives half
    assert fast.cost.seconds < slow.cost.seconds * 0.6
    assert fast.cost.downtime_s < slow.cost.downtime_s
    assert fast.details["share"] == 0.9 and slow.details["share"] == 0.5


def test_later_migrations_on_the_host_wait_for_the_share_change():
    state = two_hosts()
    plan = order_actions([SetMigrationShare(1, 0.9), MigrateGuest(0, 1), MigrateGuest(1, 1)], state=state)
    assert plan.actions[1].deps == (0,) and 0 in plan.actions[2].deps


def test_quiet_hosts_give_migrations_more_and_busy_ones_protect_guest_traffic():
    # 4 guests on a 25 Gbit/s (3125 MB/s) host: first 4 x 10 MB/s of network, then 4 x 600 MB/s.
    net = np.concatenate([np.full(20, 10.0), np.full(20, 600.0)])
    result = io_run(np.zeros(40), DomainPresplit(), net=net)
    changes = [e for e in result.events if isinstance(e.action, SetMigrationShare) and e.outcome.ok]
    assert changes[0].time == 0 and changes[0].action.share == pytest.approx(DomainPresplit().max_migration_share)
    busy = [e for e in changes if e.time >= 20 * 300]
    assert busy, "the share should drop once guest traffic rises"
    # Guests keep room for 2400 MB/s at target 0.8 of 3125 MB/s: migrations get at most 4 %, floored at 10 %.
    assert busy[0].action.share == pytest.approx(DomainPresplit().min_migration_share)
    assert result.final_state.host_mig_share[0] == pytest.approx(0.1)


def test_without_observed_traffic_the_share_stays_static():
    state = small_fleet(n_hosts=2, guests=((1, 4096.0),) * 2)  # services carry no IO: traffic not observed
    from presplit.sim.domain_engine import DomainWorkload, run_domains
    from presplit.sim.forecast_feed import ObservedForecasts

    work = DomainWorkload(np.full((2, 6), 0.3), None, np.zeros(2, np.int64))
    result = run_domains(state.evolve(guest_status=np.zeros(2, np.int8)), work, DomainPresplit(),
                         forecasts=ObservedForecasts(2))
    assert not any(isinstance(e.action, SetMigrationShare) for e in result.events)


def test_guest_traffic_beyond_what_a_migration_leaves_of_the_nic_is_unserved():
    wide = DomainModel(minimal_services=(Service("vmm", 1000.0, 2048.0, disk_mb_s=1e4, net_mb_s=1e4),))
    state = two_hosts(wide)  # the VMM carries all the IO: only the NIC can run short
    state = apply_action(state, SetMigrationShare(0, 0.9))[0]
    state, out = apply_action(state, MigrateGuest(0, 1))
    assert out.ok and state.guest_status[0] == MIGRATING and state.guest_status[1] == RUNNING
    # Guest 1 stays on host 0 and sends 400 MB/s; the NIC is 3125 MB/s, the migration takes 90 % of it
    # while it copies (out.cost.seconds of the 300 s step): 312.5 MB/s left for 400 MB/s of guest traffic.
    io = np.array([[0.0, 0.0], [0.0, 400.0]])
    state = state.evolve(demand_io=io, demand_mips=np.zeros(2))
    m = DomainMetrics(state)
    m.step(state, 300.0)
    frac = out.cost.seconds / 300.0
    assert 0 < frac < 1
    assert m.io_unserved == pytest.approx((400.0 - 312.5) * frac * 300.0)
    assert m.io_requested == pytest.approx(400.0 * 300.0)


def test_share_change_is_journalled_checked_and_reverted():
    action = SetMigrationShare(1, 0.8, reason="quiet host")
    decoded, _, after, unchanged, (back, ok, why) = journal_round_trip(two_hosts(), action)
    assert decoded == action
    assert after[0] == "done"
    assert unchanged[1] == "share unchanged"
    assert ok, why
    assert back.host_mig_share[1] == 0.5


def test_a_smaller_pause_limit_buys_a_shorter_pause_with_more_rounds():
    state = two_hosts()
    _, default = apply_action(state, MigrateGuest(0, 1))
    _, short = apply_action(state, MigrateGuest(0, 1, max_downtime_s=0.001))
    assert short.cost.downtime_s <= 0.001 < default.cost.downtime_s
    assert short.details["rounds"] > default.details["rounds"]
    assert short.cost.seconds >= default.cost.seconds - default.cost.downtime_s
    # The switchover part of a pause stays whatever the limit.
    slow_switch = state.evolve(model=dataclasses.replace(state.model, switchover_s=0.005))
    _, floor = apply_action(slow_switch, MigrateGuest(0, 1, max_downtime_s=0.001))
    assert floor.cost.downtime_s == pytest.approx(short.cost.downtime_s + 0.005)
    _, bad = apply_action(state, MigrateGuest(0, 1, max_downtime_s=0.0))
    assert not bad.ok and "positive" in bad.reason
