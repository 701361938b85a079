"""Reconciliation: after a restart (or a take-over), make the journal agree with the world.

A controller can die at any instant: before an action's ``started`` is
written (the action never ran), between ``started`` and the backend call,
during it, between the call and ``succeeded``, or in a revert. The journal
holds, for each action that was started, what the world looked like before
(``before``), so the post-condition on a fresh observation decides, per
action left ``started``:

==============  ==========================================================
post-condition  what reconciliation does
==============  ==========================================================
``done``        journal ``succeeded`` (it finished while we were away)
``pending``     leave it ``started``: the resumed plan waits for it
``not_run``     back to ``planned``: the resumed plan runs it if its
                pre-condition still holds
``failed``      journal ``failed`` and revert it (the applier's rule)
==============  ==========================================================

An action left ``reverting`` is reverted again (reverts check the world
first, so doing one twice is harmless). Then every plan that was running is
*resumed* by the applier -- unless it is older than ``max_age_s`` on the
controller's clock, in which case its remaining actions are cancelled (a plan
made for a world long gone should not run). Every decision is an event
``reconciled`` in the journal.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from presplit.apply.applier import Applier, PlanResult
from presplit.plan.actions import Verdict
from presplit.apply.status import ActionStatus
from presplit.backends.base import ReportsReady


@dataclass
class ReconcileReport:
    plans: list[int] = field(default_factory=list)
    decisions: list[tuple[int, int, str]] = field(default_factory=list)  # plan, action, what
    results: list[PlanResult] = field(default_factory=list)


def reconcile(applier: Applier, *, max_age_s: float | None = None, resume: bool = True) -> ReconcileReport:
    journal, backend = applier.journal, applier.backend
    cond, clock = applier.cond, applier.clock
    report = ReconcileReport()
    # A world that says when each action it carried out is ready (the simulated one) lets the resumed plan
    # wait as the applier that died would have: an action found done stays ``started`` and the resumed
    # applier takes it as done when it looks (see ``Applier._resume``), so the schedule does not change.
    precise = resume and isinstance(backend, ReportsReady)
    for pid in journal.open_plans():
        report.plans.append(pid)
        jp = journal.load_plan(pid)
        state = backend.observe()
        by_idx = {pa.index: pa.action for pa in jp.plan.actions}
        status = dict(jp.status)
        for i, s in sorted(jp.status.items()):
            a, before = by_idx[i], jp.before.get(i, {})
            if s == ActionStatus.STARTED:
                verdict, why = cond.postcondition(state, a, before)
                if verdict == Verdict.DONE and precise and not (max_age_s is not None
                                                        and clock.now() - jp.tick > max_age_s):
                    journal.mark(pid, i, ActionStatus.STARTED, event="reconciled", t=clock.now(),
                                 detail=f"finished while the controller was away: {why}; the resumed plan "
                                        "takes it as done when it looks")
                elif verdict == Verdict.DONE:
                    journal.mark(pid, i, ActionStatus.SUCCEEDED, event="reconciled", t=clock.now(),
                                 detail=f"finished while the controller was away: {why}")
                elif verdict == Verdict.PENDING:
                    journal.mark(pid, i, ActionStatus.STARTED, event="reconciled", t=clock.now(),
                                 detail=f"still running: {why}")
                elif verdict == Verdict.NOT_RUN:
                    journal.mark(pid, i, ActionStatus.PLANNED, event="reconciled", t=clock.now(),
                                 detail=f"never ran before the crash: {why}")
                else:
                    applier._fail(pid, i, a, status, jp.before, f"found after restart: {why}", state, verdict)
                    state = backend.observe()
                report.decisions.append((pid, i, verdict))
            elif s == ActionStatus.REVERTING:
                r = backend.revert(a, before)
                done = ActionStatus.REVERTED if r.ok else ActionStatus.REVERT_FAILED
                journal.mark(pid, i, done, event="reconciled", t=clock.now(),
                             detail=f"revert finished after restart: {r.reason}")
                report.decisions.append((pid, i, done))
                state = backend.observe()
        stale = max_age_s is not None and clock.now() - jp.tick > max_age_s
        if resume and not stale:
            report.results.append(applier.run(pid))
        else:
            jp = journal.load_plan(pid)
            for i, s in jp.status.items():
                if s == ActionStatus.PLANNED:
                    journal.mark(pid, i, ActionStatus.CANCELLED, event="reconciled", t=clock.now(),
                                 detail="plan too old to resume after restart")
            report.results.append(applier.run(pid))  # waits for in-flight ones, writes the honest status
    return report
