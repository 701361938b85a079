"""The applier: honest plan status, revert on failure, dependents stopped, cancel, bad plans apply nothing."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "domains"))
from tests_support import small_fleet  # noqa: E402

from presplit.apply import Applier, Journal, submit_plan
from presplit.backends.base import BackendError
from presplit.backends.sim_world import FaultyBackend, SimWorld
from presplit.control.clock import SimClock
from presplit.errors import StoreError
from presplit.model.domains import PENDING, RUNNING
from presplit.plan import MigrateGuest, PatchDomain, PlaceGuest
from presplit.plan.invariants import violations
from presplit.plan.ordering import ActionPlan, Limits, PlanError, PlannedAction, order_actions
from presplit.sim.domain_engine import DomainWorkload


def world(tmp_path, n_hosts=4, n_guests=12, placed=True):
    s = small_fleet(n_hosts=n_hosts, guests=((1, 2048.0),) * n_guests, racks=2)
    if placed:
        s = s.evolve(guest_domain=np.arange(n_guests, dtype=np.int64) % n_hosts,
                     guest_status=np.full(n_guests, RUNNING, np.int8))
    work = DomainWorkload(np.full((n_guests, 4), 0.3), None, np.zeros(n_guests, np.int64), 300.0)
    return SimWorld(tmp_path / "world.db", initial=s, workload=work)


def setup(tmp_path, backend=None, **kw):
    w = world(tmp_path, **kw)
    b = backend(w) if backend else w
    clock = SimClock(w.observe().now)
    clock.on_advance(w.advance)
    journal = Journal(f"sqlite:///{tmp_path / 'j.db'}")
    return w, b, clock, journal, Applier(b, journal, clock)


def migrations(state, n):
    """n cross-host migrations, each guest to the next host's domain."""
    return [MigrateGuest(g, (int(state.guest_domain[g]) + 1) % state.n_hosts, reason="test") for g in range(n)]


def test_a_plan_of_migrations_succeeds_and_guests_land(tmp_path):
    w, b, clock, journal, applier = setup(tmp_path)
    acts = migrations(w.observe(), 8)
    pid = journal.record_plan(order_actions(acts, Limits(per_host=1, total=3), w.observe()), tick=0.0)
    result = applier.run(pid)
    assert result.status == "succeeded" and result.counts == {"succeeded": 8}
    s = w.observe()
    assert [int(s.guest_domain[a.guest]) for a in acts] == [a.to_domain for a in acts]
    assert not violations(s) and clock.now() > 0  # simulated time moved to the migrations' ends
    kinds = [e["event"] for e in journal.events(pid) if e["idx"] == 0]
    assert kinds == ["intent", "started", "finished"]


@pytest.mark.parametrize("seed", range(12))
def test_status_is_never_succeeded_when_an_action_failed(tmp_path, seed):
    w, b, clock, journal, applier = setup(tmp_path, backend=lambda w: FaultyBackend(w, 0.3, seed=seed))
    acts = migrations(w.observe(), 10) + [PatchDomain(0)]
    pid = journal.record_plan(order_actions(acts, Limits(per_host=2, total=4), w.observe()), tick=0.0)
    result = applier.run(pid)
    rows = journal.actions_of(pid)
    failed = [r for r in rows if r["status"] in ("failed", "reverted", "revert_failed", "skipped")]
    plan_row = journal.plans()[0]
    assert plan_row["status"] == result.status
    if failed or b.injected:
        assert result.status in ("partially_failed", "failed") and result.status != "succeeded"
    else:
        assert result.status == "succeeded"
    assert (result.status == "succeeded") == all(r["status"] == "succeeded" for r in rows)
    s = w.observe()
    assert not violations(s)
    assert set(np.unique(s.guest_status[:12])) <= {RUNNING, 4}  # running (or down inside the patched domain)


def test_a_failed_action_is_reverted_and_its_dependents_skipped(tmp_path):
    w, _, clock, journal, _ = setup(tmp_path)
    faulty = FaultyBackend(w, 1.0, seed=1, modes=("after",))
    applier = Applier(faulty, journal, clock)
    s = w.observe()
    pid = journal.record_plan(order_actions([MigrateGuest(0, 1), PatchDomain(0)], Limits(), s), tick=0.0)
    result = applier.run(pid)
    rows = {r["idx"]: r for r in journal.actions_of(pid)}
    assert rows[0]["status"] == "reverted" and "reply was lost" in rows[0]["error"]
    assert rows[1]["status"] == "skipped"
    assert result.status == "failed" and result.failed[0][:2] == (0, "MigrateGuest")
    s = w.observe()
    assert int(s.guest_domain[0]) == 0 and int(s.guest_status[0]) == RUNNING and int(s.guest_dest[0]) == -1
    assert s.domains[0].state == "active"  # the patch never ran
    events = [e["event"] for e in journal.events(pid) if e["idx"] == 0]
    assert events == ["intent", "started", "failed", "reverting", "reverted"]


def test_a_refused_precondition_fails_without_running(tmp_path):
    w, b, clock, journal, applier = setup(tmp_path, placed=False)
    s = w.observe()
    s = w.state = s.evolve(guest_status=np.full(s.n_guests, PENDING, np.int8))
    too_big = PlaceGuest(0, 0)
    plan = ActionPlan((PlannedAction(0, MigrateGuest(0, 1)), PlannedAction(1, too_big, (0,)),
                       PlannedAction(2, PlaceGuest(1, 1))))
    pid = journal.record_plan(plan, tick=0.0)
    result = applier.run(pid)
    rows = {r["idx"]: r for r in journal.actions_of(pid)}
    assert rows[0]["status"] == "failed" and rows[0]["error"].startswith("pre-condition: guest 0 is pending")
    assert rows[1]["status"] == "skipped" and rows[2]["status"] == "succeeded"
    assert result.status == "partially_failed"


def test_cancel_stops_launching_and_waits_for_running(tmp_path):
    w, b, clock, journal, applier = setup(tmp_path)
    pid = journal.record_plan(order_actions(migrations(w.observe(), 8), Limits(per_host=None, total=2), w.observe()),
                              tick=0.0)
    original = b.execute
    calls = []

    def execute(action):
        calls.append(action)
        if len(calls) == 3:
            applier.cancel()
        return original(action)

    b.execute = execute
    result = applier.run(pid)
    assert result.status == "cancelled" and result.counts == {"succeeded": 3, "cancelled": 5}
    assert not [r for r in journal.actions_of(pid) if r["status"] == "started"]


def test_bad_plans_are_refused_with_nothing_applied(tmp_path):
    w, b, clock, journal, applier = setup(tmp_path)
    before = w.seq
    cyclic = ActionPlan((PlannedAction(0, MigrateGuest(0, 1), (1,)), PlannedAction(1, MigrateGuest(1, 2), (0,))))
    with pytest.raises(PlanError, match="cyclic"):
        submit_plan(journal, cyclic, w.observe())
    ghost = ActionPlan((PlannedAction(0, MigrateGuest(0, 1)), PlannedAction(1, MigrateGuest(57, 2))))
    with pytest.raises(PlanError, match="action 1 \\(MigrateGuest\\): names guest 57, which does not exist"):
        submit_plan(journal, ghost, w.observe())
    assert journal.plans() == [] and w.seq == before


def test_the_world_survives_reopening(tmp_path):
    w, b, clock, journal, applier = setup(tmp_path)
    pid = journal.record_plan(order_actions(migrations(w.observe(), 4), Limits(), w.observe()), tick=0.0)
    applier.run(pid)
    again = SimWorld(tmp_path / "world.db")
    assert np.array_equal(again.observe().guest_domain, w.observe().guest_domain)
    assert again.observe().now == w.observe().now
    with pytest.raises(StoreError, match="no simulated world here yet"):
        SimWorld(tmp_path / "empty.db")
