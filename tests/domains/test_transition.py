"""Hand-computed cases of the transition: pre-copy, re-pin, patch downtime, refusals."""

from __future__ import annotations

import pytest

from tests_support import small_fleet
from presplit.model.domains import DOWN, MIGRATING, RUNNING
from presplit.plan import (
    MigrateGuest, MoveGuest, PatchDomain, PlaceGuest, PowerOff, PowerOn, SplitDomain, action_cost, advance,
    apply_action, precopy,
)


def test_precopy_hand_computed():
    # 1000 MB at 100 MB/s: round 0 takes 10 s; 80 Mbit/s = 10 MB/s dirties 100 MB -> round 1 takes 1 s;
    # it dirties 10 MB, sendable in 0.1 s <= 0.3 s: stop-and-copy. 11.1 s, 0.1 s down, 1110 MB.
    pc = precopy(1000.0, 80.0, 100.0)
    assert pc.duration_s == pytest.approx(11.1)
    assert pc.downtime_s == pytest.approx(0.1)
    assert pc.mb == pytest.approx(1110.0)
    assert pc.rounds == 2


def test_precopy_that_never_converges_stops_after_max_rounds():
    # Dirtying 200 MB/s over a 100 MB/s link: every round re-sends the whole RAM.
    pc = precopy(1000.0, 1600.0, 100.0, max_rounds=5)
    assert pc.rounds == 5
    assert pc.downtime_s == pytest.approx(10.0)
    assert pc.mb == pytest.approx(6000.0)


def test_migration_uses_the_fabric_share():
    state = small_fleet(n_hosts=2, guests=((2, 4096.0),))
    state, _ = apply_action(state, PlaceGuest(0, 0))
    cost = action_cost(state, MigrateGuest(0, 1))
    # 25 Gbit/s x 0.5 = 1562.5 MB/s; 80 Mbit/s dirty = 10 MB/s.
    expected = precopy(4096.0, 80.0, 1562.5)
    assert cost.seconds == pytest.approx(expected.duration_s)
    assert cost.fabric_gb == pytest.approx(expected.mb / 1000)
    new, out = apply_action(state, MigrateGuest(0, 1))
    assert out.ok and new.guest_status[0] == MIGRATING and new.reserved[1, 1] == 4096.0
    done, _ = advance(new, new.now + 60)
    assert done.guest_domain[0] == 1 and done.guest_status[0] == RUNNING and done.reserved[0, 1] == 0


def test_patch_with_guest_inside_causes_downtime_and_none_after_repin():
    state = small_fleet(n_hosts=1, guests=((1, 2048.0),))
    state, _ = apply_action(state, PlaceGuest(0, 0))
    state, out = apply_action(state, SplitDomain(0, ((4000.0, 16384.0),)))
    sibling = out.details["new_domains"][0]
    state, _ = advance(state, 60.0)
    patched, out = apply_action(state, PatchDomain(0, 1800.0))
    assert out.ok and out.cost.downtime_s == 1800.0 and patched.guest_status[0] == DOWN
    moved, out = apply_action(state, MoveGuest(0, sibling))
    assert out.ok and out.cost.seconds == pytest.approx(0.02) and out.cost.fabric_gb == 0.0
    patched, out = apply_action(moved, PatchDomain(0, 1800.0))
    assert out.ok and out.cost.downtime_s == 0.0 and patched.guest_status[0] == RUNNING
    # The sibling cannot take the patch domain's guests back while it is patching.
    _, refused = apply_action(patched, MoveGuest(0, 0))
    assert not refused.ok and "patching" in refused.reason
    back, _ = advance(patched, 60.0 + 1800.0)
    assert back.domains[0].state == "active"


def test_refusals_are_values_and_leave_state_alone():
    state = small_fleet(n_hosts=2, guests=((4, 4096.0),))
    state, _ = apply_action(state, PlaceGuest(0, 0))
    for action, words in [(MoveGuest(0, 1), "same host"), (MigrateGuest(0, 0), "another host"),
                          (PowerOff(0), "still has"), (PowerOn(1), "not a switched-off"),
                          (PlaceGuest(0, 1), "not pending"), (SplitDomain(0, ((7000.0, 1000.0),)), "would hold")]:
        new, out = apply_action(state, action)
        assert new is state and not out.ok and words in out.reason, out


def test_power_on_boots_before_taking_guests():
    state = small_fleet(n_hosts=2, guests=((1, 1024.0),))
    state, out = apply_action(state, PowerOff(1))
    assert out.ok
    state, out = apply_action(state, PowerOn(1))
    assert out.ok and out.cost.seconds == 120.0
    _, refused = apply_action(state, PlaceGuest(0, 1))
    assert "booting" in refused.reason
    state, _ = advance(state, 120.0)
    _, out = apply_action(state, PlaceGuest(0, 1))
    assert out.ok
