"""The control loop in a background thread, paced for people, with a door for operator commands.

:class:`Runner` owns one thread. It takes the journal's lease, opens the
world (the simulated world in its own store, or a registered real backend),
and runs :class:`ServiceLoop` -- the ordinary :class:`ControlLoop` -- on a
:class:`PacedClock`: simulated time that advances at ``pace_s`` wall seconds
per tick, so the dashboard shows motion (``pace_s=0``: as fast as it goes).

Everything that touches the world runs on that thread (the world's SQLite
connection is the thread's). Operator commands -- launch a guest, add a
window, swap the profile, approve, reject or cancel a plan -- are queued with
:meth:`Runner.submit` and run *between two ticks* (while the clock waits for
the next one), never in the middle of a plan; the caller gets a
:class:`concurrent.futures.Future`. Cancelling the plan being applied is the
one exception: it goes straight to the applier (:meth:`ServiceApplier.cancel_plan`).

An approved recommendation (dry run) is recorded by the API's thread and
queued (:meth:`Runner.queue_approved`); the loop's thread applies the queued
plans one at a time between two ticks, running the commands that came
meanwhile between two plans, so the approval is answered at once and a
cancel of a queued plan takes it out of the queue (:meth:`Runner.withdraw_approved`).

After every tick and every command the thread builds a new
:class:`~presplit.service.views.Snapshot` (what the read endpoints serve),
records a history frame for the charts, folds newly finished actions into the
timeline and the metrics, and publishes a live event.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
import time
import traceback
from collections import OrderedDict, deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from presplit.apply.applier import Applier
from presplit.control.clock import SimClock
from presplit.control.assemble import assemble
from presplit.control.loop import ControlLoop
from presplit.errors import PresplitError
from presplit.service import schemas as S
from presplit.service.views import History, Snapshot, build_snapshot, forecasts_of
from presplit.service.views import DEMO_START_EPOCH_S, MOVE_KINDS, FleetHistory

log = logging.getLogger("presplit.service")

GUEST_KINDS = ("PlaceGuest", "MoveGuest", "MigrateGuest")
TERMINAL = {"succeeded", "failed", "reverted", "revert_failed", "skipped", "cancelled"}


class ServiceError(PresplitError):
    """A command the world or the journal refuses; ``status`` is the HTTP status it maps to."""

    def __init__(self, status: int, message: str, loc: tuple = ()) -> None:
        super().__init__(message)
        self.status, self.message, self.loc = status, message, loc


# ------------------------------------------------------------------ clock, feed, applier, loop
class PacedClock(SimClock):
    """Simulated time, waiting ``pace_s`` wall seconds per ``interval_s`` simulated; runs ``idle`` while waiting
    between ticks. A stop request makes every wait instant (time still advances, so a plan in flight can end)."""

    def __init__(self, start: float, *, pace_s: float, interval_s: float, stop: threading.Event,
                 wake: threading.Event, idle=None) -> None:
        super().__init__(start)
        self.pace_s, self.interval_s = pace_s, interval_s
        self.stop, self.wake, self.idle = stop, wake, idle
        self.between_ticks = True

    def sleep_until(self, t: float) -> None:
        if t < self._now:
            return
        if self.pace_s > 0 and self.interval_s > 0:
            deadline = time.monotonic() + (t - self._now) * self.pace_s / self.interval_s
            while not self.stop.is_set():
                if self.between_ticks and self.idle is not None:
                    self.idle()
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.wake.wait(min(left, 0.25))
                self.wake.clear()
        elif self.between_ticks and self.idle is not None:
            self.idle()
        super().sleep_until(t)


class ServiceApplier(Applier):
    """The applier with a door for the operator: cancel the plan being applied (:meth:`cancel_plan`), or one
    about to be (:meth:`reserve`); ``on_done`` hears of every plan it finished (the metrics).

    A cancel of one plan is forgotten once that plan ends; a stop (:meth:`cancel`, the loop's ``stop()``) is
    not: ``stopping`` stays set until the runner revives the loop."""

    def __init__(self, *a, on_done=None, **kw) -> None:
        super().__init__(*a, **kw)
        self.stopping, self.on_done = threading.Event(), on_done
        self.current: int | None = None
        self._lock = threading.Lock()
        self.busy_s = 0.0

    def run(self, plan_id: int):
        with self._lock:
            self.current = plan_id
        t0, s0 = time.perf_counter(), self.clock.now()
        try:
            result = super().run(plan_id)
        finally:
            with self._lock:
                self.current = None
                if not self.stopping.is_set():
                    self._cancel.clear()
            wall = time.perf_counter() - t0
            self.busy_s += wall
        if self.on_done is not None:
            self.on_done(plan_id, result.status, wall, self.clock.now() - s0)
        return result

    def cancel(self) -> None:
        self.stopping.set()  # first: a plan ending meanwhile must not forget the stop
        super().cancel()

    def cancel_plan(self, plan_id: int) -> bool:
        with self._lock:
            if self.current != plan_id:
                return False
            self._cancel.set()
            return True

    def reserve(self, plan_id: int | None) -> None:
        """Mark ``plan_id`` as the plan being applied before :meth:`run` starts (None: release it), so a cancel
        that comes in between is not lost."""
        with self._lock:
            self.current = plan_id
            if plan_id is None and not self.stopping.is_set():
                self._cancel.clear()


class ServiceLoop(ControlLoop):
    """The loop, running the operator's commands before each tick and telling the runner after it."""

    def __init__(self, *a, runner: "Runner", **kw) -> None:
        super().__init__(*a, **kw)
        self.runner = runner

    def tick(self, t: float, report) -> None:
        clock = self.clock
        if hasattr(clock, "between_ticks"):
            clock.between_ticks = False
        self.runner.drain()
        busy0 = self.applier.busy_s
        t0 = time.perf_counter()
        try:
            super().tick(t, report)
        finally:
            own = time.perf_counter() - t0 - (self.applier.busy_s - busy0)
            self.runner.tick_done(t, report, own)
            if hasattr(clock, "between_ticks"):
                clock.between_ticks = True


# ------------------------------------------------------------------ the runner
@dataclass
class ServiceConfig:
    db: str
    backend: str = "sim"
    scenario: str | None = None          # None: the demo fleet (presplit.service.demo)
    world: str | None = None
    trace: str | None = None
    profile_path: str | None = None
    dry_run: bool = False
    interval_s: float | None = None
    until_s: float | None = None
    pace_s: float = 0.5                  # wall seconds per tick (simulated backend)
    history: int = 288
    timeline: int = 500
    state_dir: str | None = None         # where the demo scenario is written (default: beside the world)
    new_journal: bool = False            # discard the journal's history and move the world store aside
    forecaster: str | None = None        # the decision forecaster (else the profile's `forecaster:`, else outlook)
    max_plan_age_s: float | None = None  # None: 3 ticks in dry run (approvals of older plans are refused), else none
    extra: dict = field(default_factory=dict)


class Runner:
    def __init__(self, cfg: ServiceConfig, *, metrics=None, hub=None) -> None:
        from presplit.apply.journal import Journal

        self.cfg = cfg
        self.metrics, self.hub = metrics, hub
        self.reader = Journal(cfg.db)  # the API's own connections (reads, and decisions on plans)
        self.commands: queue.Queue = queue.Queue()
        self.wake = threading.Event()
        self.stopped = threading.Event()
        self.ready = threading.Event()
        self.error: str | None = None
        self.snapshot: Snapshot | None = None
        self.history = History(cfg.history)
        self.fleet_history = FleetHistory(max(cfg.history, 2016))  # fleet aggregates per tick (/api/history)
        self.moves_done = {"live": 0, "repin": 0}  # live migrations and re-pins that succeeded (running totals)
        self._moves_counted: set[tuple[int, int]] = set()
        self.start_epoch_s: float | None = None  # Unix time of the world's t=0 (see _start_epoch)
        self.timeline: OrderedDict[tuple[int, int], S.TimelineEntry] = OrderedDict()
        self.moves: dict[int, dict[tuple[int, int], S.Move]] = {}
        self.counted: set[tuple[int, int]] = set()
        self.counted_plans: set[tuple[int, str]] = set()
        self.last_plan = 0
        self.ticks = 0
        self.seq = 0
        self.running = False
        self.leader = False
        self.loop: ServiceLoop | None = None
        self.world = None
        self.profile = None
        self.kind = "domains"
        self.route_cache: dict = {}
        self.revive = threading.Event()  # set by a new profile while the loop is down after an error
        self._failed_seen = 0  # failed ticks already counted in the metrics
        self._draining = False
        self._approved: deque[int] = deque()  # approved plans waiting for the loop's thread (queue_approved)
        self._approved_lock = threading.Lock()
        self._applying = False
        self.thread = threading.Thread(target=self._main, name="presplit-loop", daemon=True)
        self.lock = threading.Lock()

    # ------------------------------------------------------------ life
    def start(self, timeout: float = 60.0) -> None:
        self.thread.start()
        if not self.ready.wait(timeout):
            raise RuntimeError("the control loop did not start in time")
        if self.error:
            raise RuntimeError(self.error)

    def stop(self, timeout: float = 30.0) -> None:
        self.stopped.set()
        if self.loop is not None:
            self.loop.stop()
        self.wake.set()
        if self.thread.is_alive():
            self.thread.join(timeout)
        self.reader.close()

    def _main(self) -> None:
        from presplit.apply.journal import Journal
        from presplit.apply.lease import lease_for, wait_for_lease

        cfg = self.cfg
        journal = lease = None
        try:
            journal = Journal(cfg.db, controller=f"{socket.gethostname()}:{os.getpid()}:serve")
            lease = lease_for(journal)
            self.ready.set()  # the API serves (an empty fleet) while a standby waits for the lease
            wait_for_lease(lease, stop=self.stopped)
            if self.stopped.is_set():
                return
            self.leader = True
            journal.set_meta("leader", {"controller": journal.controller, "since": time.time()})
            self._build_loop(journal)
        except Exception as exc:  # reported by /api/status; the API keeps serving what it has
            log.exception("the control loop could not start")
            self.error = f"{type(exc).__name__}: {exc}"
            self.ready.set()
        try:
            while self.loop is not None and not self.stopped.is_set():
                if not self._run_loop(journal):
                    break
                # Down after an error: commands still run; a new profile (PUT /api/profile) revives the loop.
                while not self.stopped.is_set() and not self.revive.is_set():
                    self.drain()
                    self.wake.wait(0.25)
                    self.wake.clear()
                self.revive.clear()
            while not self.stopped.is_set():  # the loop ended (--until): commands still work
                self.drain()
                self.wake.wait(0.25)
                self.wake.clear()
        finally:
            self._fail_pending("the service is shutting down")
            if lease is not None:
                lease.release()
            if self.world is not None and hasattr(self.world, "close"):
                self.world.close()
            if journal is not None:
                journal.close()

    def _run_loop(self, journal) -> bool:
        """Run the loop until it ends; True when it ended on an error (and may be revived)."""
        failed = False
        try:
            self.running = True
            self.error = None
            self.refresh()
            self.loop.run()
        except Exception as exc:  # noqa: BLE001 - a tick's own errors are caught in the loop; this is the rest
            log.exception("control loop failed")
            self.error = f"{type(exc).__name__}: {exc}"
            failed = True
            try:
                journal.record_event("loop_failed", detail="".join(traceback.format_exception(exc)))
                journal.set_meta("last_error", {"tick": None, "error": self.error, "at": time.time()})
            except Exception:  # noqa: BLE001
                log.exception("could not journal the loop's failure")
        finally:
            self.running = False
            try:
                self.refresh()
            except Exception:  # noqa: BLE001
                log.exception("refresh after the loop ended failed")
        if failed:
            self.loop.stopping.clear()
            self.loop.applier.stopping.clear()
        return failed

    def _build_loop(self, journal) -> None:
        from presplit.backends.base import backend_factory
        from presplit.control.clock import WallClock
        from presplit.control.profile import build_policies, default_profile, load_profile
        from presplit.control.stores import bind, check_journal, open_bound, scenario_inputs, start_afresh

        cfg = self.cfg
        scen = None
        if cfg.backend == "sim":
            scen = self._scenario()
        profile = load_profile(cfg.profile_path) if cfg.profile_path else default_profile(self.kind)
        policies = build_policies(profile, self.kind)
        inputs = scenario_inputs(cfg.scenario or "demo", scen, cfg.trace)
        world_path = self._world_path() if cfg.backend == "sim" else None
        if cfg.new_journal:
            start_afresh(journal, world_path)
        if cfg.backend == "qemu":
            check_journal(journal, inputs)
            bind(journal, inputs)
            backend = backend_factory("qemu")(scenario=scen, profile=profile)
            clock = WallClock(stop=self.stopped)
            tick = cfg.interval_s or profile.interval_s or backend.capabilities().interval_s
        else:
            from presplit.backends.sim_world import create_world

            backend = open_bound(journal, inputs, world_path,
                                 lambda path: create_world(path, scen, cfg.trace, cycle=True))
            tick = cfg.interval_s or profile.interval_s or backend.capabilities().interval_s
            clock = PacedClock(backend.observe().now, pace_s=cfg.pace_s, interval_s=tick, stop=self.stopped,
                               wake=self.wake, idle=self.drain)
        self.world, self.profile = backend, profile
        self.start_epoch_s = self._start_epoch(scen, clock)
        until = cfg.until_s
        if cfg.backend == "qemu" and until is not None:
            until = clock.now() + until
        max_age = cfg.max_plan_age_s if cfg.max_plan_age_s is not None else 3 * tick if cfg.dry_run else None
        # keep_window: the observed window is what the dashboard shows, whatever the policies need; no replay
        # of the journal's past (a restarted service starts its window afresh, as it always has).
        self.loop = assemble(backend, journal, clock, policies, profile.limits, interval_s=tick, until_s=until,
                             dry_run=cfg.dry_run, source=profile.label, forecaster=self._forecaster_name,
                             keep_window=True, applier=ServiceApplier, applier_kw={"on_done": self.plan_done},
                             loop=ServiceLoop, loop_kw={"runner": self}, max_plan_age_s=max_age,
                             supersede=cfg.dry_run)
        self._ingest_plans(initial=True)

    def _scenario(self):
        from presplit.scenarios import load_scenario

        name = self.cfg.scenario
        if name is None:
            from presplit.service.demo import demo_scenario

            folder = Path(self.cfg.state_dir) if self.cfg.state_dir else self._world_path().parent
            folder.mkdir(parents=True, exist_ok=True)
            name = str(demo_scenario(folder / "presplit-demo"))
        scen = load_scenario(name)
        if scen.engine == "cloudsim":
            from presplit.scenarios import ScenarioError

            raise ScenarioError(f"scenario {name!r} runs on the CloudSim engine; presplit serve needs a domain "
                                "scenario (e.g. bighost-patch, or none for the demo fleet)")
        return scen

    def _start_epoch(self, scen, clock) -> float:
        """Unix time of the world's t=0: the scenario's ``start``, else its trace's first sample (as the patch
        calendar reads it), else the demo's start; a real backend's clock starts with the loop."""
        if not getattr(clock, "simulated", True) or self.cfg.backend != "sim":
            return time.time() - clock.now()
        if scen is not None and scen.start is not None:
            return float(scen.start.timestamp())
        try:
            from presplit.scenarios.build import _load

            epoch = _load(scen, self.cfg.trace).start_epoch_s if scen is not None else None
        except Exception:  # noqa: BLE001 - a date for the dashboard is not worth failing the start over
            log.exception("could not read the trace's start time; dates count from the demo's start")
            epoch = None
        return float(epoch) if epoch else DEMO_START_EPOCH_S

    def _world_path(self) -> Path:
        from presplit.control.stores import world_path_for

        return world_path_for(self.cfg.db, self.cfg.world)

    def _forecaster_name(self) -> str | None:
        """The forecaster the policies decide on: the option's, else the current profile's (None: the outlook)."""
        return self.cfg.forecaster or (self.profile.forecaster if self.profile is not None else None)

    @property
    def observed_feed(self):
        """The observed-demand window the dashboard and the API show (None before the loop's first look)."""
        return self.loop.forecasts.window if self.loop is not None else None

    # ------------------------------------------------------------ commands
    def submit(self, fn) -> Future:
        """Run ``fn()`` on the loop's thread between two ticks; the Future holds its result."""
        fut: Future = Future()
        if self.stopped.is_set() or not self.thread.is_alive():
            fut.set_exception(ServiceError(503, "the control loop is not running"))
            return fut
        self.commands.put((fn, fut))
        self.wake.set()
        return fut

    def drain(self) -> None:
        """Run the queued commands, then apply the approved plans (on the loop's thread, between two ticks)."""
        self._run_commands()
        self._apply_approved()

    # ------------------------------------------------------------ approved plans (dry run)
    def queue_approved(self, plan_id: int) -> None:
        """A plan just approved (journaled ``running``): the loop's thread applies it at its next chance."""
        with self._approved_lock:
            self._approved.append(plan_id)
        self.wake.set()

    def withdraw_approved(self, plan_id: int) -> bool:
        """Take an approved plan out of the queue before the loop starts it; False if it is not waiting there."""
        with self._approved_lock:
            if plan_id in self._approved:
                self._approved.remove(plan_id)
                return True
        return False

    def _next_approved(self) -> int | None:
        loop = self.loop
        with self._approved_lock:
            if not self._approved:
                return None
            pid = self._approved.popleft()
            loop.applier.reserve(pid)  # from here a cancel reaches the applier, not the (empty) queue
        return pid

    def _apply_approved(self) -> None:
        """Apply the queued approved plans one at a time; the commands that came meanwhile run between two plans.

        The plan runs as a tick's plan does: the clock waits without running commands (never in the middle of
        a plan), a cancel goes straight to the applier. A plan no longer ``running`` (reconciled meanwhile) is
        skipped; one the stop request catches before it starts stays ``running`` for the next start's
        reconciliation.
        """
        loop = self.loop
        if loop is None or self._applying or self._draining:
            return
        from presplit.service.routes.common import plan_row

        while not self.stopped.is_set() and not loop.stopping.is_set():
            pid = self._next_approved()
            if pid is None:
                return
            clock = loop.clock
            between = getattr(clock, "between_ticks", None)
            self._applying = self._draining = True  # a drain from inside the plan (a clock wait) does nothing
            try:
                if between is not None:
                    clock.between_ticks = False
                row = plan_row(self.reader, pid)
                if row is not None and row["status"] == "running" and not loop.stopping.is_set():
                    loop.applier.run(pid)
            except Exception as exc:  # noqa: BLE001 - journaled; the plan is reconciled so nothing is left half-done
                log.exception("applying approved plan %s failed", pid)
                try:
                    loop.journal.record_event("command_failed", t=clock.now(),
                                              detail=f"applying approved plan {pid}: "
                                                     + "".join(traceback.format_exception(exc)))
                    from presplit.apply.reconcile import reconcile

                    reconcile(loop.applier, max_age_s=loop.max_plan_age_s)
                except Exception:  # noqa: BLE001
                    log.exception("could not journal or reconcile approved plan %s", pid)
            finally:
                loop.applier.reserve(None)
                self._applying = self._draining = False
                if between is not None:
                    clock.between_ticks = between
            try:
                self.refresh_plan(pid)
                self.refresh()
            except Exception:  # noqa: BLE001
                log.exception("refresh after approved plan %s failed", pid)
            self._run_commands()

    def _run_commands(self) -> None:
        """Run the queued commands (on the loop's thread), refresh the snapshot, then answer the callers."""
        if self._draining:
            return
        clock = self.loop.clock if self.loop is not None else None
        between = getattr(clock, "between_ticks", None)
        done = []
        self._draining = True
        try:
            if between is not None:
                clock.between_ticks = False  # a command that waits on the clock must not run commands itself
            while True:
                try:
                    fn, fut = self.commands.get_nowait()
                except queue.Empty:
                    break
                if not fut.set_running_or_notify_cancel():
                    continue
                try:
                    done.append((fut, fn(), None))
                except ServiceError as exc:
                    done.append((fut, None, exc))
                except PresplitError as exc:  # the world refused the change: nothing was written
                    done.append((fut, None, ServiceError(409, f"refused: {exc}")))
                except Exception as exc:  # noqa: BLE001 - a bug: journaled, handed to the caller (500)
                    log.exception("an operator command failed")
                    if self.loop is not None:
                        try:
                            self.loop.journal.record_event("command_failed",
                                                           detail="".join(traceback.format_exception(exc)))
                        except Exception:  # noqa: BLE001
                            log.exception("could not journal the failed command")
                    done.append((fut, None, exc))
            if done:
                try:
                    self.refresh()
                except Exception:
                    log.exception("refresh after a command failed")
        finally:
            self._draining = False
            if between is not None:
                clock.between_ticks = between
            for fut, result, exc in done:
                if exc is None:
                    fut.set_result(result)
                else:
                    fut.set_exception(exc)

    def _fail_pending(self, why: str) -> None:
        while True:
            try:
                _, fut = self.commands.get_nowait()
            except queue.Empty:
                return
            if fut.set_running_or_notify_cancel():
                fut.set_exception(ServiceError(503, why))

    # ------------------------------------------------------------ after ticks and plans
    def tick_done(self, t: float, report, own_s: float) -> None:
        self.ticks = report.ticks
        if self.metrics is not None:
            self.metrics.loop_duration.observe(max(own_s, 0.0))
            self.metrics.ticks.inc()
            failed = self.loop.failed_ticks if self.loop is not None else 0
            if failed > self._failed_seen:
                self.metrics.tick_failures.inc(failed - self._failed_seen)
                self._failed_seen = failed
        self.refresh(tick=t)

    def plan_done(self, plan_id: int, status: str, wall_s: float, sim_s: float) -> None:
        if self.metrics is not None:
            self.metrics.plan_duration.labels(status).observe(wall_s)
            self.metrics.plan_sim_duration.labels(status).observe(max(sim_s, 0.0))

    def refresh(self, tick: float | None = None) -> None:
        """New snapshot, history frame, timeline and metrics; one live event."""
        if self.world is None:
            return
        state = self.world.observe()
        feed = self.loop.forecasts.observed(state) if self.loop is not None else None
        fc = forecasts_of(state, feed)
        self.seq += 1
        snap = build_snapshot(self.seq, state, fc, self.status(state), self.route_cache)
        self.snapshot = snap
        if tick is not None:
            prev, _ = self.history.last_two()
            self.history.record(float(state.now), snap)
            self._score(prev, snap)
        new = self._ingest_plans()
        if tick is not None:
            try:
                self.fleet_history.record(state, self.moves_done)
            except Exception:  # noqa: BLE001 - the charts must not stop the loop
                log.exception("fleet history frame failed")
        if self.hub is not None:
            if new:
                self.hub.publish("actions", [e.model_dump() for e in new])
            self.hub.publish("tick", {"seq": snap.seq, "now": snap.status.now, "last_tick": snap.status.last_tick,
                                      "ticks": self.ticks})

    def status(self, state=None) -> S.Status:
        counts: dict[str, int] = {}
        now = None
        if state is not None:
            from presplit.model.domains import GUEST_STATES

            now = float(state.now)
            counts = {"hosts": state.n_hosts, "hosts_on": int(np.sum(state.host_on)),
                      "domains": int(state.domain_arrays["live"].sum()), "guests": state.n_guests}
            st = np.bincount(state.guest_status.astype(np.int64), minlength=len(GUEST_STATES))
            for name, n in zip(GUEST_STATES, st):
                counts[f"guests_{name}"] = int(n)
            counts["guests_unplaced"] = self.loop.unplaced if self.loop is not None else 0
        loop = self.loop
        pace = self.cfg.pace_s if self.cfg.backend == "sim" else None
        last = self.reader.get_meta("last_tick") if state is not None else None
        return S.Status(backend=self.cfg.backend, running=self.running, leader=self.leader, dry_run=self.cfg.dry_run,
                        now=now, last_tick=last, ticks=self.ticks,
                        interval_s=float(loop.interval) if loop else 0.0, pace_s=pace,
                        profile=self.profile.label if self.profile else "", counts=counts,
                        last_error=self.error or self._tick_error(), failed_ticks=loop.failed_ticks if loop else 0,
                        start_epoch_s=self.start_epoch_s)

    def _tick_error(self) -> dict | None:
        """The last failed tick's error (without its traceback: that is in the journal's events)."""
        err = self.loop.last_error if self.loop is not None else None
        return None if err is None else {k: v for k, v in err.items() if k != "traceback"}

    def _score(self, prev, snap: Snapshot) -> None:
        """Forecast error: this tick's loads against the forecasts of the tick before."""
        if self.metrics is None or prev is None:
            return
        for level, rows in (("domain", [(d.id, d.demand_mips, d.capacity_mips) for d in snap.domains]),
                            ("host", [(h.id, h.demand_mips, h.cpu_mips) for h in snap.hosts if h.on])):
            errors, covered = [], []
            for key, load, cap in rows:
                if level == "domain":
                    before = prev.domain.get(key)
                elif key < prev.host.shape[1]:
                    before = prev.host[:, key]
                else:
                    before = None
                if before is None or cap <= 0 or (load == 0 and before[3] == 0):
                    continue
                errors.append(abs(load - before[3]) / cap)
                covered.append(load <= before[4] + 1e-9)
            self.metrics.forecast_scored(level, errors, covered)

    # ------------------------------------------------------------ the journal into the timeline
    def _ingest_plans(self, initial: bool = False) -> list[S.TimelineEntry]:
        plans = self.reader.plans(50 if initial else 20)
        new = [p for p in reversed(plans) if p["id"] > self.last_plan]
        out = []
        for p in new:
            out.extend(self._ingest(p, count=not initial))
            self.last_plan = max(self.last_plan, p["id"])
        return out

    def refresh_plan(self, plan_id: int) -> None:
        from presplit.service.routes.common import plan_row

        row = plan_row(self.reader, plan_id)
        if row is not None:
            new = self._ingest(row, count=True)
            if new and self.hub is not None:
                self.hub.publish("actions", [e.model_dump() for e in new])

    def _ingest(self, plan: dict, *, count: bool) -> list[S.TimelineEntry]:
        from presplit.service.routes.common import action_entry

        state = self.world.observe() if self.world is not None else None
        out = []
        if count and self.metrics is not None and (plan["id"], plan["status"]) not in self.counted_plans \
                and plan["status"] != "running":
            self.counted_plans.add((plan["id"], plan["status"]))
            self.metrics.plans.labels(plan["status"]).inc()
        for row in self.reader.actions_of(plan["id"]):
            entry = action_entry(row, plan["tick"], state)
            key = (entry.plan_id, entry.idx)
            old = self.timeline.get(key)
            if old is not None and old.status == entry.status:
                continue
            with self.lock:
                self.timeline[key] = entry
                while len(self.timeline) > self.cfg.timeline:
                    self.timeline.popitem(last=False)
            out.append(entry)
            if count and entry.status == "succeeded" and entry.kind in MOVE_KINDS and key not in self._moves_counted:
                self._moves_counted.add(key)
                self.moves_done[MOVE_KINDS[entry.kind]] += 1
            if count and self.metrics is not None and entry.status in TERMINAL and key not in self.counted:
                self.counted.add(key)
                self.metrics.action_finished(entry.kind, entry.status)
            g = row["action"]["args"].get("guest")
            if entry.kind in GUEST_KINDS and isinstance(g, int):
                self.moves.setdefault(g, {})[key] = S.Move(
                    plan_id=entry.plan_id, idx=entry.idx, t=entry.t, kind=entry.kind, from_domain=entry.from_domain,
                    to_domain=entry.to_domain, status=entry.status, reason=entry.reason, details=entry.details)
        return out

    def recent_timeline(self, limit: int, kinds: set[str] | None = None) -> list[S.TimelineEntry]:
        with self.lock:
            items = list(self.timeline.values())
        items.sort(key=lambda e: (e.t, e.plan_id, e.idx), reverse=True)
        if kinds:
            items = [e for e in items if e.kind in kinds]
        return items[:limit]

    def moves_of(self, guest: int) -> list[S.Move]:
        with self.lock:
            items = list(self.moves.get(guest, {}).values())
        return sorted(items, key=lambda m: (m.t, m.plan_id, m.idx))
