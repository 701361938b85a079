"""Ordering a proposal into a DAG: the dependencies it must keep, the ones it must drop, and plan errors."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "domains"))
from tests_support import small_fleet  # noqa: E402

from presplit.model.domains import RUNNING
from presplit.plan import MergeDomains, MigrateGuest, MoveGuest, PatchDomain, PlaceGuest, PowerOn, SplitDomain
from presplit.plan.ordering import ActionPlan, Limits, PlanError, PlannedAction, order_actions, validate_plan


@pytest.fixture
def placed():
    s = small_fleet(n_hosts=3, guests=((2, 4096.0),) * 4, racks=2)
    dom = np.array([0, 0, 1, 2], np.int64)
    return s.evolve(guest_domain=dom, guest_status=np.full(4, RUNNING, np.int8))


def deps(plan):
    return {pa.index: set(pa.deps) for pa in plan.actions}


def test_guest_out_before_its_domain_is_patched(placed):
    plan = order_actions([MigrateGuest(0, 1), MigrateGuest(1, 2), PatchDomain(0)], Limits(), placed)
    assert deps(plan) == {0: set(), 1: set(), 2: {0, 1}}


def test_domain_exists_before_a_guest_moves_in(placed):
    # domain 3 is created by the split (ids continue after the 3 existing domains)
    plan = order_actions([SplitDomain(1, ((2000.0, 8192.0),)), MoveGuest(2, 3), MigrateGuest(0, 3)], Limits(), placed)
    assert deps(plan)[1] == {0} and deps(plan)[2] == {0}


def test_independent_migrations_run_together_and_caps_are_data(placed):
    plan = order_actions([MigrateGuest(0, 2), MigrateGuest(1, 2), MigrateGuest(3, 1)], Limits(per_host=1, total=4),
                         placed)
    assert all(not d for d in deps(plan).values())
    assert plan.limits.per_host == 1 and plan.actions[0].hosts == (0, 2)
    assert plan.actions[0].link == ("hosts", 0, 2)  # hosts 0 and 2 share rack r0


def test_taking_room_waits_for_room_freed_and_same_guest_is_serialised(placed):
    plan = order_actions([MoveGuest(0, 0), MigrateGuest(2, 0), MigrateGuest(2, 2)], Limits(), placed)
    d = deps(plan)
    assert d[2] == {1}  # same guest twice
    plan = order_actions([MigrateGuest(2, 0), PlaceGuest(3, 1)], Limits(), placed)
    assert deps(plan)[1] == {0}  # room in domain 1 freed by guest 2 leaving


def test_power_on_before_guests_go_to_the_host_and_merge_after_moves(placed):
    s = placed.evolve(host_on=np.array([True, True, False]))
    plan = order_actions([PowerOn(2), MigrateGuest(0, 2)], Limits(), s)
    assert deps(plan)[1] == {0}
    plan = order_actions([SplitDomain(0, ((1000.0, 4096.0),)), MoveGuest(0, 3), MergeDomains((0, 3))], Limits(), placed)
    assert deps(plan)[2] >= {0, 1}


@pytest.mark.parametrize("action, words", [
    (MigrateGuest(99, 1), "guest 99"),
    (MigrateGuest(0, 42), "domain 42"),
    (PowerOn(7), "host 7"),
])
def test_names_that_do_not_exist_are_plan_errors(placed, action, words):
    with pytest.raises(PlanError, match=words) as err:
        order_actions([PlaceGuest(3, 1), action], Limits(), placed)
    assert err.value.index == 1 and "does not exist" in str(err.value)


@pytest.mark.parametrize("caps", [dict(per_host=-1), dict(total=0), dict(per_link=1.5)])
def test_bad_caps(caps):
    with pytest.raises(PlanError, match="cap"):
        Limits(**caps)


def test_cycles_and_unknown_dependencies_are_named(placed):
    a = [PlannedAction(0, MigrateGuest(0, 1), (2,)), PlannedAction(1, MigrateGuest(1, 2), (0,)),
         PlannedAction(2, PatchDomain(0), (1,))]
    with pytest.raises(PlanError, match=r"cyclic dependencies: 0 -> 2 -> 1 -> 0"):
        validate_plan(ActionPlan(tuple(a)), placed)
    with pytest.raises(PlanError, match="action 9, which is not in the plan"):
        validate_plan(ActionPlan((PlannedAction(0, PatchDomain(0), (9,)),)), placed)
