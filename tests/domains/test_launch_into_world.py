"""A guest added to a running world grows every per-guest array, and the world and the policy take it."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from tests_support import MINIMAL, small_fleet

from presplit.apply import Applier, Journal
from presplit.backends.base import BackendError
from presplit.backends.sim_world import SimWorld
from presplit.control.clock import SimClock
from presplit.model.domains import PENDING, DomainModel, Guest, PatchWindowSim, Service
from presplit.plan import PlaceGuest
from presplit.plan.ordering import Limits, order_actions
from presplit.policies import make_policy
from presplit.sim.domain_engine import DomainWorkload
from presplit.sim.forecast_feed import ObservedForecasts

IO_MODEL = DomainModel(minimal_services=(*MINIMAL[:1], Service("io", 250.0, 512.0, disk_mb_s=200.0, net_mb_s=200.0)))


def _per_guest_arrays(state) -> dict[str, np.ndarray]:
    n = state.n_guests
    return {f.name: getattr(state, f.name) for f in dataclasses.fields(state)
            if isinstance(getattr(state, f.name), np.ndarray) and getattr(state, f.name).shape[:1] == (n,)}


def test_with_guest_grows_every_per_guest_array():
    state = small_fleet(model=IO_MODEL)
    before = _per_guest_arrays(state)
    assert "demand_io" in before and "guest_status" in before
    new = state.with_guest(Guest("late", 2, 1000.0, 2048.0), demand_mips=500.0, demand_io=(3.0, 4.0))
    after = _per_guest_arrays(new)
    assert set(after) == set(before)
    for name, arr in after.items():
        assert arr.shape[0] == state.n_guests + 1, name
        assert arr.dtype == before[name].dtype, name
        assert not arr.flags.writeable, name
    assert new.guest_status[-1] == PENDING and new.guest_domain[-1] == -1
    assert new.demand_io[-1].tolist() == [3.0, 4.0] and new.guest_reserve.shape == (5, 2)


def _world(tmp_path, *, io: bool):
    state = small_fleet(model=IO_MODEL if io else None)
    n, steps = state.n_guests, 24
    work = DomainWorkload(np.full((n, steps), 0.4), None, np.zeros(n, np.int64), 300.0,
                          np.full((n, steps, 2), 5.0) if io else None)
    return SimWorld(tmp_path / "w.db", initial=state, workload=work)


def test_a_launched_guest_is_fed_placed_and_replayed(tmp_path):
    world = _world(tmp_path, io=True)
    world.advance(300.0)
    assert world.observe().demand_io[0].tolist() == [5.0, 5.0]  # the stored world feeds IO like the simulator
    idx = world.launch_guest(Guest("late", 1, 1000.0, 1024.0), np.array([0.5, 1.0]))
    world.add_window(PatchWindowSim(1, 3600.0, 7200.0, 600.0, "api"))
    policy = make_policy("presplit", engine="domains")
    feed = ObservedForecasts(world.observe().n_guests - 1)  # built before the launch: it must grow
    journal = Journal(f"sqlite:///{tmp_path / 'j.db'}")
    applier = Applier(world, journal, SimClock(world.observe().now))
    for t in (600.0, 900.0):
        world.advance(t)
        state = world.observe()
        proposal = policy.propose(state, feed(int(t // 300), state), t)
        if proposal:
            applier.run(journal.record_plan(order_actions(proposal, Limits(), state), tick=t))
    state = world.observe()
    assert state.guest_status[idx] != PENDING and state.guest_domain[idx] >= 0
    assert state.demand_mips[idx] in (500.0, 1000.0)
    again = SimWorld(tmp_path / "w.db")  # replay: the launch and the window are changes it knows
    assert again.observe().n_guests == state.n_guests and len(again.observe().patch_windows) == 1
    assert np.array_equal(again.observe().guest_domain, state.guest_domain)
    assert again.workload.cpu.shape[0] == state.n_guests and again.workload.io_mb_s.shape[0] == state.n_guests


def test_a_launch_the_world_refuses_writes_nothing(tmp_path):
    world = _world(tmp_path, io=False)
    seq = world.seq
    with pytest.raises(BackendError, match="taken"):
        world.launch_guest(Guest("g0", 1, 1000.0, 1024.0), np.array([0.5]))
    with pytest.raises(BackendError, match="no host 9"):
        world.add_window(PatchWindowSim(9, 0.0, 10.0, 5.0))
    assert world.seq == seq and world.changes == seq


def test_an_action_that_breaks_an_invariant_fails_and_is_reverted(tmp_path, monkeypatch):
    world = _world(tmp_path, io=False)
    journal = Journal(f"sqlite:///{tmp_path / 'j.db'}")
    applier = Applier(world, journal, SimClock(world.observe().now))
    real = applier.cond.invariants

    def broken_after_placing(state):  # the world's own invariants, plus one that guest 0's placement breaks
        return real(state) + (["guest 0 must stay unplaced"] if state.guest_domain[0] >= 0 else [])

    monkeypatch.setattr(applier.cond, "invariants", broken_after_placing)
    plan = order_actions([PlaceGuest(0, 0, reason="test"), PlaceGuest(1, 1, reason="test")], Limits(),
                         world.observe())
    pid = journal.record_plan(plan, tick=0.0)
    result = applier.run(pid)
    statuses = {a["idx"]: a["status"] for a in journal.actions_of(pid)}
    assert result.status in ("failed", "partially_failed")
    assert "reverted" in statuses.values(), statuses
    assert world.observe().guest_domain[0] == -1  # reverted
    assert any("invariant violated" in (a["error"] or "") for a in journal.actions_of(pid))
