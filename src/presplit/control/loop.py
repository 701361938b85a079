"""The control loop: every tick, observe -> forecast -> plan -> apply, on an injected clock.

One loop for the simulator and for real hosts: the clock decides whether
"sleep until the next tick" is a jump in simulated time (:class:`SimClock`,
which also advances a simulated backend) or a real wait (:class:`WallClock`).

A run starts by *reconciling* (the journal's open plans are checked against
what the backend observes, finished or reverted, then resumed), and carries on
from the tick after the last one the journal recorded, so a restarted
controller neither loses nor repeats a tick. Each tick:

1. ``state = backend.observe()``;
2. forecasts: the loop's feed records the observed demand and hands the
   same forecasts to every policy that takes them (``needs_forecasts``);
3. every policy of the profile proposes; the actions are ordered into an
   :class:`~presplit.plan.ordering.ActionPlan` under the profile's caps
   (a bad proposal is journaled as a failed tick and nothing is applied);
4. the plan is journaled, then applied -- or, with ``dry_run``, only journaled
   as ``recommended``; with ``supersede`` too (``presplit serve --dry-run``),
   the recommendations of the same source still waiting for an operator become
   ``superseded`` in the same transaction, so only the newest is open;
5. the tick and a summary of the observed state go to the journal's
   ``meta`` (what ``presplit state`` prints), and so do the run's metrics
   so far when the backend keeps them (``metrics_row()``: a simulated world,
   keyed as ``presplit simulate``'s rows; the whole run's, restarts
   included, since the world keeps them -- see ``docs/control-plane.md``).

``stop()`` (the SIGTERM handler) lets the running action finish, cancels the
rest of the plan, and ends the loop.

A tick that raises -- a policy, a forecast, the ordering or the applier with a
bug, or a world that refuses to be observed -- does not end the loop: the
exception and its traceback are journaled (event ``tick_failed``, meta
``last_error``, what ``presplit state`` and ``/api/status`` show), the tick is
counted in ``LoopReport.failed_ticks`` and the loop goes on to the next one.
A plan the failure left ``running`` is reconciled at once, so no guest is left
half-moved. ``max_failed_ticks`` consecutive failures end the loop (default:
never), for a batch run that should not spin on a broken profile.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from dataclasses import dataclass, field

import numpy as np

from presplit.apply.applier import Applier
from presplit.apply.reconcile import reconcile
from presplit.apply.status import PlanStatus
from presplit.backends.base import Advances, Finishes, KeepsMetrics, Orders, Summarises
from presplit.model.cluster import ClusterState
from presplit.plan.ordering import PlanError, order_actions

log = logging.getLogger("presplit.control")


@dataclass
class LoopReport:
    ticks: int = 0
    plans: int = 0
    actions: int = 0
    statuses: dict = field(default_factory=dict)
    stopped: bool = False
    wall_s: float = 0.0
    metrics: dict | None = None
    failed_ticks: int = 0
    last_error: dict | None = None
    metrics_row: dict | None = None  # the run's metrics keyed as ``presplit simulate``'s rows (simulated worlds)


def observed_summary(state, backend=None) -> dict:
    """Hosts, domains and guests as the controller last saw them (JSON-able); a backend may say it itself."""
    if isinstance(backend, Summarises):
        return backend.summary()
    from presplit.model.domains import GUEST_STATES

    free = [state.free(d.id) if d.live else (0.0, 0.0) for d in state.domains]
    return {
        "now": float(state.now),
        "hosts": [{"id": h, "name": s.name, "on": bool(state.host_on[h]), "ready": state.host_ready(h),
                   "rack": s.rack} for h, s in enumerate(state.hosts)],
        "domains": [{"id": d.id, "host": d.host, "state": d.state, "cpu_mips": d.cpu_mips, "mem_mb": d.mem_mb,
                     "free_mips": free[d.id][0], "free_mb": free[d.id][1]} for d in state.domains],
        "guests": [{"id": g.id, "index": i, "domain": int(state.guest_domain[i]),
                    "status": GUEST_STATES[int(state.guest_status[i])]} for i, g in enumerate(state.guests)],
    }


class ControlLoop:
    """The loop; built by :func:`presplit.control.assemble.assemble`, the one place that wires a controller.

    ``applier``: the :class:`~presplit.apply.applier.Applier` (or a subclass) that runs the plans, built
    beside the loop on the same backend, journal and clock. ``forecasts``: the feed the loop owns
    (:class:`~presplit.sim.forecast_feed.LoopFeed`), called every tick with the observed state and the
    policies, which all get what it returns (None: no forecasts).
    """

    def __init__(self, backend, journal, clock, policies, limits, *, applier: Applier, interval_s: float,
                 until_s: float | None, dry_run: bool = False, source: str = "", forecasts=None,
                 summary_every: int = 1, max_plan_age_s: float | None = None,
                 max_failed_ticks: int | None = None, supersede: bool = False) -> None:
        self.backend, self.journal, self.clock = backend, journal, clock
        self.policies, self.limits = list(policies), limits
        self.interval, self.until = float(interval_s), until_s
        self.dry_run, self.source, self.forecasts = dry_run, source, forecasts
        self.supersede = supersede  # dry run: a new recommendation closes the source's older open ones
        self.summary_every = summary_every
        self.max_plan_age_s = max_plan_age_s
        self.max_failed_ticks = max_failed_ticks
        self.failed_in_a_row = 0
        self.failed_ticks = 0
        self.last_error: dict | None = None
        self.unplaced = 0  # guests pending after the last tick's plan
        self.applier = applier
        self.stopping = threading.Event()
        if isinstance(backend, Advances):  # simulated time: the clock moves the world
            clock.on_advance(backend.advance)

    def stop(self) -> None:
        self.stopping.set()
        self.applier.cancel()
        stop = getattr(self.clock, "stop", None)
        if stop is not None:
            stop.set()

    def first_tick(self) -> float:
        caps = self.backend.capabilities()
        t = caps.start_s
        last = self.journal.get_meta("last_tick")
        now = self.clock.now()
        # A simulated clock runs every tick after the journal's last, as a loop that never stopped would (a
        # tick whose time a long plan ran past runs late, at once): a restart -- whose reconciliation may
        # finish such a plan before the first tick -- must not skip them. A wall clock skips the ticks it
        # missed while the controller was down.
        catch_up = last is not None and getattr(self.clock, "simulated", False)
        # Repeated addition, as the CloudSim engine steps, so tick times are bit-identical to its.
        while (last is not None and t <= last) or (not catch_up and t < now - 1e-9):
            t = t + self.interval
        return t

    def run(self) -> LoopReport:
        started = self._started = time.perf_counter()
        report = LoopReport()
        rec = reconcile(self.applier, max_age_s=self.max_plan_age_s)
        for r in rec.results:
            report.statuses[r.status] = report.statuses.get(r.status, 0) + 1
        t = self.first_tick()
        while not self.stopping.is_set() and (self.until is None or t <= self.until):
            self.clock.sleep_until(t)
            if self.stopping.is_set():
                break
            self.tick(t, report)
            if self.max_failed_ticks is not None and self.failed_in_a_row >= self.max_failed_ticks:
                break
            t = t + self.interval
        report.stopped = self.stopping.is_set()
        if isinstance(self.backend, Finishes) and not report.stopped:
            report.metrics = self.backend.finish()
            report.metrics_row = self._write_metrics()
        report.wall_s = time.perf_counter() - started
        return report

    def tick(self, t: float, report: LoopReport) -> None:
        """One tick; an exception in it is journaled and the loop goes on (see the module docstring)."""
        report.ticks += 1
        try:
            self._tick(t, report)
        except Exception as exc:  # noqa: BLE001 - one bad tick must not stop the controller
            self._tick_failed(t, report, exc)
        else:
            self.failed_in_a_row = 0

    def _tick_failed(self, t: float, report: LoopReport, exc: Exception) -> None:
        report.failed_ticks += 1
        self.failed_ticks += 1
        self.failed_in_a_row += 1
        tb = "".join(traceback.format_exception(exc))
        error = {"tick": t, "error": f"{type(exc).__name__}: {exc}", "at": time.time(), "traceback": tb,
                 "failed_ticks": self.failed_ticks}
        report.last_error = self.last_error = error
        log.error("tick t=%s failed: %s", t, error["error"])
        try:
            self.journal.record_event("tick_failed", t=t, detail=tb)
            self.journal.set_meta("last_error", error)
            self.journal.set_meta("last_tick", t)  # a restart does not retry the failed tick forever
            if self.journal.open_plans():  # a plan the failure interrupted: finish or revert it now
                reconcile(self.applier, max_age_s=self.max_plan_age_s)
        except Exception:  # noqa: BLE001 - the journal itself failing is logged; the next tick tries again
            log.exception("could not journal the failed tick t=%s", t)

    def _tick(self, t: float, report: LoopReport) -> None:
        state = self.backend.observe()
        forecasts = self.forecasts(state, t, self.policies) if self.forecasts is not None else None
        proposal = []
        for policy in self.policies:
            proposal.extend(policy.propose(state, forecasts, t) or ())
        if proposal:
            try:
                order = self.backend.order if isinstance(self.backend, Orders) else order_actions
                plan = order(proposal, self.limits, state if isinstance(state, ClusterState) else None)
            except PlanError as exc:
                self.journal.set_meta("last_error", {"tick": t, "error": str(exc)})
                plan = None
            if plan is not None:
                pid = self.journal.record_plan(plan, tick=t, dry_run=self.dry_run, source=self.source, last_tick=t,
                                               supersede=self.supersede)
                report.plans += 1
                report.actions += len(plan)
                status = PlanStatus.RECOMMENDED
                if not self.dry_run:
                    status = self.applier.run(pid).status
                report.statuses[status] = report.statuses.get(status, 0) + 1
        self.journal.set_meta("last_tick", t)
        after = self.backend.observe()
        self._note_unplaced(after, t)
        if report.ticks % self.summary_every == 0 or self.stopping.is_set():
            self.journal.set_meta("observed", observed_summary(after, self.backend))
            self._write_metrics()

    def _write_metrics(self) -> dict | None:
        """The backend's run metrics so far (if it keeps them) to the journal's ``meta`` as ``metrics``."""
        if not isinstance(self.backend, KeepsMetrics):
            return None
        import resource

        row = dict(self.backend.metrics_row())
        row.setdefault("policy", self.source)
        row.setdefault("wall_s", time.perf_counter() - getattr(self, "_started", time.perf_counter()))
        row.setdefault("peak_rss_mb", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0)
        self.journal.set_meta("metrics", row)
        return row

    def _note_unplaced(self, state, t: float) -> None:
        """Guests still pending after the tick's plan could not be placed: an event whenever their number changes."""
        if not isinstance(state, ClusterState):  # the CloudSim engine has no pending guests of this kind
            return
        from presplit.model.domains import PENDING

        pending = np.flatnonzero(state.guest_status == PENDING)
        if len(pending) != self.unplaced:
            self.unplaced = len(pending)
            if len(pending):
                ids = ", ".join(state.guests[i].id for i in pending[:10]) + (" ..." if len(pending) > 10 else "")
                self.journal.record_event("guests_unplaced", t=t,
                                          detail=f"{len(pending)} guest(s) pending after the tick's plan: {ids}")
