"""The control loop in a background thread, paced for people, with a door for operator commands.

:class:`LoopThread` owns one thread. It takes the journal's lease, opens the
world (the simulated world in its own store, or a registered real backend),
and runs :class:`ServiceLoop` -- the ordinary control loop, assembled by
:func:`presplit.control.assemble.assemble` -- on a :class:`PacedClock`:
simulated time that advances at ``pace_s`` wall seconds per tick, so the
dashboard shows motion (``pace_s=0``: as fast as it goes).

Everything that touches the world runs on that thread (the world's SQLite
connection is the thread's). Operator commands -- launch a guest, add a
window, swap the profile, approve, reject or cancel a plan -- are queued with
:meth:`LoopThread.submit` and run *between two ticks* (while the clock waits for
the next one), never in the middle of a plan; the caller gets a
:class:`concurrent.futures.Future`. Cancelling the plan being applied is the
one exception: it goes straight to the applier (:meth:`ServiceApplier.cancel_plan`).

An approved recommendation (dry run) is recorded by the API's thread and
queued (:meth:`LoopThread.queue_approved`); the loop's thread applies the queued
plans one at a time between two ticks, running the commands that came
meanwhile between two plans, so the approval is answered at once and a
cancel of a queued plan takes it out of the queue (:meth:`LoopThread.withdraw_approved`).

What the thread tells the rest of the service goes through ``hooks`` (the
:class:`~presplit.service.runner.Runner`): ``refresh(tick=None)`` after every
tick, command and approved plan, ``refresh_plan(plan_id)`` after an approved
plan, ``tick_done(t, report, own_s)``, ``plan_done(plan_id, status, wall_s,
sim_s)`` and ``loop_built()`` once the loop exists.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
import time
import traceback
from collections import deque
from concurrent.futures import Future
from pathlib import Path

from presplit.apply.applier import Applier
from presplit.backends.base import Closes
from presplit.control.assemble import assemble
from presplit.control.clock import SimClock
from presplit.control.loop import ControlLoop
from presplit.errors import PresplitError
from presplit.service.errors import ServiceError
from presplit.service.views import DEMO_START_EPOCH_S

log = logging.getLogger("presplit.service")


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
    """The loop, running the operator's commands before each tick (``drain``) and telling ``tick_done`` after it."""

    def __init__(self, *a, drain, tick_done, **kw) -> None:
        super().__init__(*a, **kw)
        self.drain, self.tick_done = drain, tick_done

    def tick(self, t: float, report) -> None:
        clock = self.clock
        if hasattr(clock, "between_ticks"):
            clock.between_ticks = False
        self.drain()
        busy0 = self.applier.busy_s
        t0 = time.perf_counter()
        try:
            super().tick(t, report)
        finally:
            own = time.perf_counter() - t0 - (self.applier.busy_s - busy0)
            self.tick_done(t, report, own)
            if hasattr(clock, "between_ticks"):
                clock.between_ticks = True



# ------------------------------------------------------------------ the thread
class LoopThread:
    """The loop's thread and what only it may touch (see the module docstring); ``reader``: the API's journal
    connection, ``hooks``: the runner."""

    def __init__(self, cfg, reader, hooks) -> None:
        self.cfg, self.reader, self.hooks = cfg, reader, hooks
        self.commands: queue.Queue = queue.Queue()
        self.wake = threading.Event()
        self.stopped = threading.Event()
        self.ready = threading.Event()
        self.error: str | None = None
        self.running = False
        self.leader = False
        self.loop: ServiceLoop | None = None
        self.world = None
        self.profile = None
        self.kind = "domains"
        self.start_epoch_s: float | None = None  # Unix time of the world's t=0 (see _start_epoch)
        self.revive = threading.Event()  # set by a new profile while the loop is down after an error
        self._draining = False
        self._approved: deque[int] = deque()  # approved plans waiting for the loop's thread (queue_approved)
        self._approved_lock = threading.Lock()
        self._applying = False
        self.thread = threading.Thread(target=self._main, name="presplit-loop", daemon=True)

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
            if isinstance(self.world, Closes):
                self.world.close()
            if journal is not None:
                journal.close()

    def _run_loop(self, journal) -> bool:
        """Run the loop until it ends; True when it ended on an error (and may be revived)."""
        failed = False
        try:
            self.running = True
            self.error = None
            self.hooks.refresh()
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
                self.hooks.refresh()
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
        world_path = self.world_path() if cfg.backend == "sim" else None
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
                             keep_window=True, applier=ServiceApplier, applier_kw={"on_done": self.hooks.plan_done},
                             loop=ServiceLoop, loop_kw={"drain": self.drain, "tick_done": self.hooks.tick_done},
                             max_plan_age_s=max_age,
                             supersede=cfg.dry_run)
        self.hooks.loop_built()

    def _scenario(self):
        from presplit.scenarios import load_scenario

        name = self.cfg.scenario
        if name is None:
            from presplit.service.demo import demo_scenario

            folder = Path(self.cfg.state_dir) if self.cfg.state_dir else self.world_path().parent
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

    def world_path(self) -> Path:
        from presplit.control.stores import world_path_for

        return world_path_for(self.cfg.db, self.cfg.world)

    def _forecaster_name(self) -> str | None:
        """The forecaster the policies decide on: the option's, else the current profile's (None: the outlook)."""
        return self.cfg.forecaster or (self.profile.forecaster if self.profile is not None else None)

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
                self.hooks.refresh_plan(pid)
                self.hooks.refresh()
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
                    self.hooks.refresh()
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
