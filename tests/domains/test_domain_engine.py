"""The domain engine: a tiny patch scenario under evacuate, metrics by hand, a do-nothing policy."""

from __future__ import annotations

import numpy as np
import pytest

from tests_support import small_fleet
from presplit.model.domains import PatchWindowSim
from presplit.plan import PatchDomain, PlaceGuest
from presplit.policies.evacuate import EvacuatePolicy
from presplit.sim.domain_engine import DomainWorkload, run_domains


def tiny(steps=48, n_guests=6, window=(1800.0, 1800.0 + 7200.0)):
    state = small_fleet(n_hosts=3, guests=((2, 4096.0),) * n_guests, arrived=False)
    state = state.evolve(patch_windows=(PatchWindowSim(0, *window, 1800.0),))
    cpu = np.full((n_guests, steps), 0.5)
    return state, DomainWorkload(cpu, None, np.zeros(n_guests, np.int64))


def test_evacuate_meets_the_window_with_cross_host_migrations():
    state, work = tiny()
    result = run_domains(state, work, EvacuatePolicy(), check_invariants=True)
    m = result.metrics
    assert m["patch_windows_total"] == 1 and m["patch_windows_met"] == 1
    assert m["cross_host_migrations"] > 0 and m["fabric_gb"] > 0
    assert m["intra_host_moves"] == 0 and m["splits"] == 0
    # Stop-and-copy pauses only: milliseconds, not the patch's half hour.
    assert 0 < m["guest_downtime_s"] < 1.0
    reasons = [e.action.reason for e in result.events if e.outcome.ok]
    assert any("maintenance" in r for r in reasons) and any("patch" in r for r in reasons)


class PlaceThenPatch:
    """Place every guest in domain 0 at t=0, patch it at t=1800 with the guests inside."""

    def propose(self, state, forecasts, now):
        if now == 0:
            return [PlaceGuest(int(g), 0) for g in state.pending_guests()]
        if now == 1800:
            return [PatchDomain(0, 1800.0, reason="patch with guests inside")]
        return []


def test_patch_with_guests_inside_is_downtime_and_sla_violation():
    state, work = tiny(steps=36, n_guests=2)
    m = run_domains(state, work, PlaceThenPatch()).metrics
    assert m["guest_downtime_s"] == pytest.approx(2 * 1800.0)
    assert m["patch_windows_met"] == 1
    # 2 guests x 1000 MIPS for 36 steps requested; 1800 s of 10800 s lost.
    assert m["overall_sla_violation"] == pytest.approx(1800.0 / 10800.0)
    assert m["cross_host_migrations"] == 0 and m["pdm"] == 0.0


def test_energy_of_idle_fleet_by_hand():
    state, work = tiny(steps=12, n_guests=1)

    class Nothing:
        def propose(self, state, forecasts, now):
            return []

    m = run_domains(state, work, Nothing()).metrics
    # Three hosts on, each running only its services (1250 of 8000 MIPS = 15.625 %): P = 130 + 0.5625 x 20.
    watts = 130.0 + 0.5625 * 20.0
    assert m["energy_kwh"] == pytest.approx(3 * watts * 12 * 300 / 3.6e6)
    assert m["overall_sla_violation"] == pytest.approx(1.0)  # never placed
