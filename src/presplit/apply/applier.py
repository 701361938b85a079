"""The applier: runs one journaled plan against a backend, with honest status.

For every action, in dependency order and within the plan's caps:

1. check the pre-condition on a fresh observation (refused: the action
   *fails* without running, its dependents are skipped);
2. journal ``started`` with what the world looked like before (the capture a
   revert and a reconciliation need) -- *before* calling the backend;
3. ``backend.execute``; a refusal or a :class:`BackendError` fails the action;
4. observe until the post-condition holds (``done``: journal ``succeeded``),
   sleeping on the injected clock until the backend's ``ready_at`` (a
   simulated clock jumps there; a wall clock sleeps);
5. on failure (post-condition false, backend error, timeout): revert what the
   world shows happened (``reverting`` -> ``reverted``/``revert_failed``),
   skip every action that depends on it, keep going with the rest.

Invariants (:func:`presplit.plan.invariants.violations`) are checked on every
observation that completed an action; a violation stops launching and fails
the plan. The plan's status is computed from its actions only: it is
``succeeded`` if and only if every action succeeded. ``cancel()`` (SIGTERM)
stops launching new actions, waits for the running ones, and marks the rest
``cancelled``.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field

from presplit.apply.conditions import conditions_for
from presplit.plan.actions import Verdict
from presplit.apply.journal import Journal
from presplit.apply.status import FAILED_STATES, ActionStatus, PlanStatus
from presplit.backends.base import BackendError, ReportsReady


@dataclass
class PlanResult:
    plan_id: int
    status: str
    counts: dict = field(default_factory=dict)
    failed: list = field(default_factory=list)  # (index, kind, error)


def submit_plan(journal: Journal, plan, state=None, *, tick: float = 0.0, dry_run: bool = False,
                source: str = "") -> int:
    """Validate a plan (built by hand or loaded from elsewhere) and journal it; a bad plan raises
    :class:`~presplit.plan.ordering.PlanError` and nothing is written or applied."""
    from presplit.plan.ordering import validate_plan

    validate_plan(plan, state)
    return journal.record_plan(plan, tick=tick, dry_run=dry_run, source=source)


def plan_status(statuses) -> PlanStatus:
    """succeeded only if every action succeeded; failures outrank cancellation."""
    c = Counter(statuses)
    if not c or c[ActionStatus.SUCCEEDED] == sum(c.values()):
        return PlanStatus.SUCCEEDED
    if any(c[s] for s in FAILED_STATES) or c[ActionStatus.SKIPPED]:
        return PlanStatus.PARTIALLY_FAILED if c[ActionStatus.SUCCEEDED] else PlanStatus.FAILED
    if c[ActionStatus.CANCELLED]:
        return PlanStatus.CANCELLED
    return PlanStatus.RUNNING


class Applier:
    def __init__(self, backend, journal: Journal, clock, *, poll_s: float = 1.0, action_timeout_s: float = 3600.0,
                 check_invariants: bool = True) -> None:
        self.backend, self.journal, self.clock = backend, journal, clock
        self.cond = conditions_for(backend)
        self.poll_s, self.timeout = poll_s, action_timeout_s
        self.check_invariants = check_invariants
        self._cancel = threading.Event()
        caps = backend.capabilities()
        self.reversible = set(caps.reversible)
        self.backend_cap = caps.max_concurrent

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    # ------------------------------------------------------------ the run
    def run(self, plan_id: int) -> PlanResult:
        jp = self.journal.load_plan(plan_id)
        plan, status, before = jp.plan, dict(jp.status), jp.before
        by_idx = {pa.index: pa for pa in plan.actions}
        dependents = plan.dependents()
        lim = plan.limits
        total_cap = min(x for x in (lim.total, self.backend_cap, 1 << 30) if x is not None)
        running: dict[int, float] = {i: self.clock.now() for i, s in status.items() if s == ActionStatus.STARTED}
        started_at = dict.fromkeys(running, self.clock.now())
        look = not self._resume(plan_id, by_idx, running, started_at)
        broken: str | None = None
        # Problems the world had before this plan are not this plan's doing (they are reported, not blamed).
        baseline = set(self.cond.invariants(self.backend.observe())) if self.check_invariants else set()
        while True:
            state = self.backend.observe()
            completed = False
            just_done = []
            for i in list(running) if look else ():
                a = by_idx[i].action
                verdict, why = self.cond.postcondition(state, a, before.get(i, {}))
                if verdict == Verdict.DONE:
                    self._mark(plan_id, i, status, ActionStatus.SUCCEEDED, event="finished", detail=why)
                    just_done.append(i)
                elif verdict == Verdict.PENDING and self.clock.now() - started_at[i] <= self.timeout:
                    continue
                else:
                    why = why if verdict != Verdict.PENDING else f"timed out after {self.timeout:g} s: {why}"
                    self._fail(plan_id, i, a, status, before, why, state, verdict)
                    state = self.backend.observe()
                del running[i]
                completed = True
            if completed and self.check_invariants and not broken:
                problems = [p for p in self.cond.invariants(state) if p not in baseline]
                if problems:
                    text = "; ".join(problems)
                    self.journal.mark(plan_id, -1, ActionStatus.FAILED, event="invariant_violation", detail=text)
                    # The actions that completed in this observation broke it: they fail and are reverted,
                    # so the plan's status follows its actions. Launching stops if the world stays broken.
                    for i in just_done:
                        self._fail(plan_id, i, by_idx[i].action, status, before,
                                   f"invariant violated after it: {text}", state, Verdict.DONE)
                    state = self.backend.observe()
                    if [p for p in self.cond.invariants(state) if p not in baseline]:
                        broken = text
            self._skip_dependents(plan_id, status, dependents)
            if not self.cancelled and not broken:
                state = self._launch(plan_id, plan, status, before, running, started_at, state, total_cap)
            if not running:
                if self.cancelled or broken or not self._launchable(plan, status):
                    break
                continue
            self._wait(running, state)
            look = True
        self._skip_dependents(plan_id, status, dependents)
        for i, s in status.items():
            if s == ActionStatus.PLANNED:
                self._mark(plan_id, i, status, ActionStatus.CANCELLED,
                           detail="plan stopped: " + ("cancel requested" if self.cancelled else "invariant violated"
                                                      if broken else "not reachable"))
        final = plan_status(status.values())
        if broken and final == PlanStatus.SUCCEEDED:  # a violation no completed action can be blamed for
            final = PlanStatus.FAILED
        failed = [(i, by_idx[i].action.kind, s) for i, s in sorted(status.items()) if s in FAILED_STATES]
        counts = dict(Counter(status.values()))
        summary = {"counts": counts, "failed": [f[0] for f in failed]}
        if broken:
            summary["error"] = f"invariant violated: {broken}"
            self.journal.set_meta("last_error", {"plan": plan_id, "error": summary["error"], "tick": jp.tick})
        self.journal.finish_plan(plan_id, final, summary)
        return PlanResult(plan_id, final, counts, failed)

    def _resume(self, plan_id, by_idx, running, started_at) -> bool:
        """A plan resumed after a restart, on a world that can say when each action it carried out is ready
        (``backend.ready_at``, the simulated world): the running actions wait for exactly that and keep their
        start times, as in the applier that died, so the resumed plan runs on the same schedule. Returns True
        when the restart cut a wave of launches short (the world has not moved since the plan's last launch):
        the resumed run then completes the wave before it looks again, as the one that died would have.
        Without ``ready_at`` nothing changes (a running action is polled)."""
        if not running or not isinstance(self.backend, ReportsReady):
            return False
        for i in running:
            r = self.backend.ready_at(by_idx[i].action)
            if r is not None:
                running[i] = r
        starts = {e["idx"]: e["t"] for e in self.journal.events(plan_id) if e["event"] == "started"
                  and e["t"] is not None}
        for i in running:
            started_at[i] = starts.get(i, started_at[i])
        return bool(starts) and self.clock.now() <= max(starts.values())

    # ------------------------------------------------------------ steps
    def _launchable(self, plan, status) -> bool:
        return any(status[pa.index] == ActionStatus.PLANNED
                   and all(status[d] == ActionStatus.SUCCEEDED for d in pa.deps)
                   for pa in plan.actions)

    def _launch(self, plan_id, plan, status, before, running, started_at, state, total_cap):
        per_host: Counter = Counter()
        per_link: Counter = Counter()
        by_idx = {pa.index: pa for pa in plan.actions}
        for i in running:
            per_host.update(by_idx[i].hosts)
            if by_idx[i].link is not None:
                per_link[by_idx[i].link] += 1
        lim = plan.limits
        for pa in plan.actions:
            if len(running) >= total_cap or self.cancelled:
                break
            i = pa.index
            if status[i] != ActionStatus.PLANNED or any(status[d] != ActionStatus.SUCCEEDED for d in pa.deps):
                continue
            if lim.per_host is not None and any(per_host[h] >= lim.per_host for h in pa.hosts):
                continue
            if lim.per_link is not None and pa.link is not None and per_link[pa.link] >= lim.per_link:
                continue
            why = self.cond.precondition(state, pa.action)
            if why is not None:
                self._mark(plan_id, i, status, ActionStatus.FAILED, event="precondition_failed",
                           error=f"pre-condition: {why}")
                continue
            before[i] = self.cond.capture(state, pa.action)
            self._mark(plan_id, i, status, ActionStatus.STARTED, before=before[i])
            try:
                receipt = self.backend.execute(pa.action)
                error = None if receipt.ok else f"refused: {receipt.reason}"
            except BackendError as exc:
                receipt, error = None, f"backend error: {exc}"
            state = self.backend.observe()
            if error is not None:
                self._fail(plan_id, i, pa.action, status, before, error, state, None)
                state = self.backend.observe()
                continue
            running[i] = receipt.ready_at
            started_at[i] = self.clock.now()
            per_host.update(pa.hosts)
            if pa.link is not None:
                per_link[pa.link] += 1
        return state

    def _wait(self, running, state) -> None:
        now = self.clock.now()
        due = min(running.values())
        simulated = getattr(self.clock, "simulated", False)
        if simulated:
            # Jump to the next completion; a backend that gave no ready_at moves a poll step.
            self.clock.sleep_until(due if due > now else now + self.poll_s)
        else:
            self.clock.sleep_until(min(max(due, now + 0.01), now + self.poll_s))

    def _skip_dependents(self, plan_id, status, dependents) -> None:
        bad = [i for i, s in status.items()
               if s in FAILED_STATES or s in (ActionStatus.SKIPPED, ActionStatus.CANCELLED)]
        while bad:
            i = bad.pop()
            for j in dependents.get(i, ()):
                if status[j] == ActionStatus.PLANNED:
                    self._mark(plan_id, j, status, ActionStatus.SKIPPED,
                               detail=f"depends on action {i}, which did not succeed")
                    bad.append(j)

    def _fail(self, plan_id, i, action, status, before, why, state, verdict) -> None:
        self._mark(plan_id, i, status, ActionStatus.FAILED, error=why)
        if verdict is None:
            verdict, _ = self.cond.postcondition(state, action, before.get(i, {}))
        if verdict == Verdict.NOT_RUN:
            return  # nothing happened in the world: nothing to revert
        if action.kind not in self.reversible:
            self._mark(plan_id, i, status, ActionStatus.REVERT_FAILED, detail=f"{action.kind} cannot be reverted")
            return
        self._mark(plan_id, i, status, ActionStatus.REVERTING)
        try:
            r = self.backend.revert(action, before.get(i, {}))
            ok, reason = r.ok, r.reason
        except BackendError as exc:
            ok, reason = False, str(exc)
        self._mark(plan_id, i, status, ActionStatus.REVERTED if ok else ActionStatus.REVERT_FAILED,
                   detail=reason or None)

    def _mark(self, plan_id, i, status, new, **kw) -> None:
        status[i] = new
        self.journal.mark(plan_id, i, new, t=self.clock.now(), **kw)
