"""presplit on split-domain fleets: patching without evacuation, placement, balancing, guards."""

from __future__ import annotations

import numpy as np
import pytest

from tests_support import small_fleet
from presplit.model.domains import PatchWindowSim
from presplit.policies import make_policy
from presplit.policies.evacuate import EvacuatePolicy
from presplit.policies.presplit.domains import DomainPresplit
from presplit.sim.domain_engine import DomainWorkload, run_domains
from presplit.sim.forecast_feed import ObservedForecasts


def fleet(n_guests=6, steps=48, cpu=0.5, windows=((0, 1800.0, 9000.0),), n_hosts=3):
    state = small_fleet(n_hosts=n_hosts, guests=((2, 4096.0),) * n_guests, arrived=False)
    state = state.evolve(patch_windows=tuple(PatchWindowSim(h, a, b, 1800.0) for h, a, b in windows))
    demand = np.full((n_guests, steps), cpu) if np.isscalar(cpu) else np.asarray(cpu, dtype=float)
    return state, DomainWorkload(demand, None, np.zeros(n_guests, np.int64))


def run(state, work, policy):
    return run_domains(state, work, policy, forecasts=ObservedForecasts(state.n_guests), check_invariants=True)


def test_patch_window_met_by_splitting_and_re_pinning_no_guest_leaves_the_host():
    state, work = fleet()
    result = run(state, work, DomainPresplit())
    m = result.metrics
    assert m["patch_windows_total"] == 1 and m["patch_windows_met"] == 1
    assert m["cross_host_migrations"] == 0 and m["fabric_gb"] == 0
    assert m["guest_downtime_s"] == 0
    assert m["splits"] == 1 and m["merges"] == 1 and m["intra_host_moves"] > 0
    kinds = [e.action.kind for e in result.events if e.outcome.ok and e.time >= 1200]
    # Split ahead of the window, patch the new domain, re-pin, patch the old one, merge.
    order = [k for k in kinds if k in ("SplitDomain", "PatchDomain", "MoveGuest", "MergeDomains")]
    assert order[0] == "SplitDomain" and order[1] == "PatchDomain" and order[-1] == "MergeDomains"
    assert order.count("PatchDomain") == 2
    split = next(e for e in result.events if e.action.kind == "SplitDomain")
    assert split.time < 1800.0, "the split happens before the window opens"


def test_evacuate_needs_the_fabric_for_the_same_window():
    state, work = fleet()
    m = run(state, work, EvacuatePolicy()).metrics
    assert m["patch_windows_met"] == 1 and m["cross_host_migrations"] > 0


def test_every_guest_starts_where_cpu_headroom_is_largest():
    state, work = fleet(n_guests=6, windows=())
    result = run(state, work, DomainPresplit())
    placed = [e.action.domain for e in result.events if e.action.kind == "PlaceGuest"]
    assert sorted(np.bincount(placed, minlength=3)) == [2, 2, 2]  # spread, not packed on one host
    assert all("headroom" in e.action.reason for e in result.events if e.action.kind == "PlaceGuest")


def test_a_domain_forecast_over_capacity_is_relieved_by_one_migration_with_a_reason():
    steps = 48
    cpu = np.full((5, steps), 0.1)
    cpu[[0, 1], 12:] = 1.0  # the two guests placed on host 0 ramp to their full 2 vCPUs
    state, work = fleet(n_guests=5, cpu=cpu, windows=(), n_hosts=3)
    policy = DomainPresplit(relief=0.5, target=0.4)
    result = run(state, work, policy)
    moves = [e for e in result.events if e.action.kind == "MigrateGuest" and e.outcome.ok]
    assert 1 <= len(moves) <= 3
    assert all("forecast" in e.action.reason and e.action.details["forecast_mips"] > 0 for e in moves)
    # The cool-down keeps a migrated guest where it is: no ping-pong.
    assert result.migrations_per_guest.max() == 1


def test_presplit_refuses_to_run_without_forecasts():
    state, work = fleet()
    with pytest.raises(ValueError, match="needs observed forecasts"):
        run_domains(state, work, DomainPresplit())


def test_the_name_presplit_builds_the_engine_s_policy():
    assert isinstance(make_policy("presplit", engine="domains"), DomainPresplit)
    assert not isinstance(make_policy("presplit"), DomainPresplit)


def test_a_hot_guest_that_no_host_can_take_is_fenced_in_its_own_domain_then_merged_back():
    steps = 60
    cpu = np.full((4, steps), 0.3)
    cpu[:3, 12:36] = 1.0  # three guests run hot for two hours on a host nobody else can help
    state = small_fleet(n_hosts=1, guests=((1, 4096.0),) * 4, cores=8, arrived=False)
    work = DomainWorkload(cpu, None, np.zeros(4, np.int64))
    result = run(state, work, DomainPresplit(relief=0.4, target=0.3))
    ok = [e for e in result.events if e.outcome.ok]
    kinds = [e.action.kind for e in ok]
    assert "SplitDomain" in kinds and "MergeDomains" in kinds
    fence = next(e for e in ok if e.action.kind == "MoveGuest")
    assert "fence" in fence.action.reason and fence.action.carry_mips > 0
    merge = next(e for e in ok if e.action.kind == "MergeDomains")
    assert merge.time > fence.time and "as one domain" in merge.action.reason
    assert result.metrics["cross_host_migrations"] == 0


def test_migrations_per_tick_are_capped_in_total_and_per_link():
    steps = 36
    cpu = np.full((12, steps), 0.1)
    cpu[:6, 12:] = 1.0  # three domains need relief at the same tick
    state, work = fleet(n_guests=12, cpu=cpu, windows=(), n_hosts=12)
    roomy = dict(relief=0.3, target=0.4, spare_hosts=12, mem_fill=0.1)  # room on many hosts

    def most_in_one_tick(policy):
        result = run(state, work, policy)
        ticks = [int(e.time // 300) for e in result.events if e.action.kind == "MigrateGuest" and e.outcome.ok]
        return np.bincount(ticks, minlength=steps).max()

    assert most_in_one_tick(DomainPresplit(**roomy)) >= 3  # uncapped, several move at once
    assert most_in_one_tick(DomainPresplit(**roomy, max_total=1)) == 1
    assert most_in_one_tick(DomainPresplit(**roomy, max_per_link=2)) == 2  # one rack: one link
