"""ResizeGuest, the worked example of adding an action kind: apply, refusals, capture, post-condition,
revert, the journal's encoding and the ordering -- all declared in ``plan/actions/resize_guest.py``."""

from __future__ import annotations

import pytest

from tests_support import journal_round_trip, placed
from presplit.model.domains import DOWN, Guest
from presplit.plan import MigrateGuest, PlaceGuest, ResizeGuest, action_cost, apply_action, precopy
from presplit.plan.actions import ACTION_KINDS, REVERSIBLE_KINDS, Verdict
from presplit.plan.invariants import violations
from presplit.plan.ordering import order_actions


def _placed(n_hosts=1, guests=((2, 4096.0), (2, 4096.0)), **kw):
    """Guests placed in their host's domain, round-robin over the hosts (8,000 MIPS, 2,560 MB of services)."""
    return placed(n_hosts, guests, **kw)


def test_a_registered_reversible_kind():
    assert "ResizeGuest" in ACTION_KINDS and "ResizeGuest" in REVERSIBLE_KINDS


def test_shrink_then_grow_updates_the_guest_and_its_domain():
    state = _placed()
    assert state.guest_reserve[0].tolist() == [2000.0, 4096.0] and state.reserved[0].tolist() == [4000.0, 8192.0]
    small, out = apply_action(state, ResizeGuest(0, 1000.0, 2048.0, reason="right-size"))
    assert out.ok and out.guests == (0,) and out.cost.seconds == pytest.approx(0.02)
    assert out.details == {"domain": 0, "was": (2000.0, 4096.0), "delta": (-1000.0, -2048.0)}
    assert small.guest_reserve[0].tolist() == [1000.0, 2048.0] and small.guests[0].ram_mb == 2048.0
    assert small.reserved[0].tolist() == [3000.0, 6144.0] and violations(small) == []
    assert state.guest_reserve[0].tolist() == [2000.0, 4096.0], "the old state is untouched"
    big, out = apply_action(small, ResizeGuest(0, 2000.0, 8192.0))
    assert out.ok and big.reserved[0].tolist() == [4000.0, 12288.0] and violations(big) == []


def test_a_migration_after_a_resize_copies_the_new_memory():
    state = _placed(n_hosts=2, guests=((2, 4096.0),))
    small, _ = apply_action(state, ResizeGuest(0, 2000.0, 1024.0))
    cost = action_cost(small, MigrateGuest(0, 1))
    assert cost.fabric_gb == pytest.approx(precopy(1024.0, 80.0, 1562.5).mb / 1000)


@pytest.mark.parametrize("action, why", [
    (ResizeGuest(0, 2000.0, 4096.0 + 6000.0), "guest 0 grows by 0 MIPS / 6000 MB, domain 0 has 2750 MIPS / "
                                              "5632 MB free"),
    (ResizeGuest(0, 2500.0, 4096.0), "guest 0 can use at most 2000 MIPS (2 vCPUs), not reserve 2500"),
    (ResizeGuest(0, 0.0, 4096.0), "a reservation must be positive, got 0 MIPS / 4096 MB"),
    (ResizeGuest(2, 1000.0, 1024.0), "guest 2 is pending, not running"),
    (ResizeGuest(9, 1000.0, 1024.0), "no guest 9"),
])
def test_refusals_name_the_reason_and_change_nothing(action, why):
    state = _placed(guests=((2, 4096.0), (2, 4096.0)), ram_mb=16384.0)
    state = state.with_guest(Guest("late", 1, 1000.0, 1024.0))
    new, out = apply_action(state, action)
    assert not out.ok and out.reason == why and new is state


def test_memory_below_what_the_guest_uses_now_is_refused():
    state = _placed()
    state = state.evolve(demand_mem_mb=state.demand_mem_mb.copy() + [3000.0, 0.0])
    _, out = apply_action(state, ResizeGuest(0, 2000.0, 2048.0))
    assert not out.ok and out.reason == "guest 0 uses 3000 MB now, more than 2048 MB"
    _, out = apply_action(state, ResizeGuest(0, 2000.0, 3000.0))
    assert out.ok, "exactly what it uses is enough"


def test_a_guest_that_is_down_cannot_be_resized():
    state = _placed()
    down = state.guest_status.copy()
    down[0] = DOWN
    state = state.evolve(guest_status=down)
    _, out = apply_action(state, ResizeGuest(0, 1000.0, 1024.0))
    assert not out.ok and out.reason == "guest 0 is down, not running"


def test_capture_postcondition_revert_and_the_journal():
    state = _placed()
    action = ResizeGuest(0, 1000.0, 2048.0, reason="right-size", details={"p95_mb": 1500.0})
    decoded, new, after, on_old, (reverted, ok, why) = journal_round_trip(state, action)
    assert decoded == action and decoded.reason == "right-size" and decoded.details == {"p95_mb": 1500.0}
    assert after == (Verdict.DONE, "guest 0 reserves 1000 MIPS / 2048 MB")
    assert on_old == (Verdict.NOT_RUN, "guest 0's reservation unchanged")
    assert ok and why == "undone by ResizeGuest"
    assert reverted.guest_reserve[0].tolist() == [2000.0, 4096.0] and reverted.reserved[0].tolist() == [4000.0, 8192.0]
    assert violations(reverted) == []
    # a verdict is its string: journals and JSON hold "done"
    assert after[0] == "done" and f"{after[0]}" == "done"


def test_revert_is_targeted_and_can_be_refused():
    state = _placed(ram_mb=16384.0)
    before = ResizeGuest(0, 1000.0, 2048.0).capture(state)
    assert before["guest_reserve"] == [2000.0, 4096.0]
    small, _ = apply_action(state, ResizeGuest(0, 1000.0, 2048.0))
    # resized again since: this revert leaves the newer reservation alone
    other, _ = apply_action(small, ResizeGuest(0, 1500.0, 3072.0))
    assert ResizeGuest(0, 1000.0, 2048.0).revert(other, before) == (other, True, "reservation not as this resize "
                                                                              "set it: nothing to undo")
    # the room it freed was taken: growing back is refused, the guest keeps what it has
    full, out = apply_action(small, ResizeGuest(1, 2000.0, 4096.0 + 5632.0 + 2048.0))
    assert out.ok
    reverted, ok, why = ResizeGuest(0, 1000.0, 2048.0).revert(full, before)
    assert not ok and reverted is full and why.startswith("ResizeGuest refused: guest 0 grows by")
    assert ResizeGuest(0, 1.0, 1.0).revert(state, {}) == (state, False, "no reservation recorded before the resize")


def test_ordering_a_growth_waits_for_room_and_a_shrink_frees_it():
    state = _placed(n_hosts=2, guests=((2, 4096.0), (2, 4096.0), (2, 4096.0)))  # guests 0, 2 on host 0
    plan = order_actions([MigrateGuest(2, 1), ResizeGuest(0, 2000.0, 8192.0)], state=state)
    assert plan.actions[1].deps == (0,), "the growth takes room the migration frees"
    assert plan.actions[1].hosts == (0,)
    late = state.with_guest(Guest("late", 1, 1000.0, 1024.0))
    plan = order_actions([ResizeGuest(0, 1000.0, 2048.0), PlaceGuest(3, 0)], state=late)
    assert plan.actions[1].deps == (0,), "a placement waits for the room a shrink frees"
    plan = order_actions([ResizeGuest(0, 1000.0, 2048.0), ResizeGuest(1, 1000.0, 2048.0)], state=state)
    assert plan.actions[1].deps == (), "resizes of different guests on different hosts run together"


def test_the_simulated_world_does_it_through_the_kind_and_keeps_it_across_a_reopen(tmp_path):
    """Nothing in backends/sim_world.py knows ResizeGuest: execute and revert go through the kind."""
    import numpy as np

    from presplit.backends.sim_world import SimWorld
    from presplit.sim.domain_engine import DomainWorkload

    state = _placed()
    work = DomainWorkload(np.full((2, 4), 0.2), None, np.zeros(2, np.int64), 300.0)
    world = SimWorld(tmp_path / "world.db", initial=state, workload=work)
    try:
        action = ResizeGuest(0, 1000.0, 2048.0, reason="right-size")
        before = action.capture(world.observe())
        r = world.execute(action)
        assert r.ok, r.reason
        assert world.observe().guest_reserve[0].tolist() == [1000.0, 2048.0]
        assert action.postcondition(world.observe(), before)[0] == Verdict.DONE
    finally:
        world.close()
    world = SimWorld(tmp_path / "world.db", initial=state, workload=work)  # what the store kept
    try:
        assert world.observe().reserved[0].tolist() == [3000.0, 6144.0]
        r = world.revert(action, before)
        assert r.ok and r.reason == "undone by ResizeGuest"
        assert world.observe().guest_reserve[0].tolist() == [2000.0, 4096.0] and violations(world.observe()) == []
    finally:
        world.close()
