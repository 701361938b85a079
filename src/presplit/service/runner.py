"""The service's runner: one facade over the loop's thread, the snapshots and the timeline.

The routes and the operator commands (:mod:`presplit.service.ops`) talk to a
:class:`Runner`; it holds three parts, each with one job:

- :class:`~presplit.service.loop_thread.LoopThread`: the control loop in its
  thread -- lease, world, loop (start, stop, revive after an error), the
  operator's command queue and the approved plans' queue;
- :class:`~presplit.service.snapshot.Snapshots`: the newest snapshot the read
  endpoints serve, the per-tick history and the forecast-error scores;
- :class:`~presplit.service.timeline.Timeline`: the journal's plans as the
  action timeline and per-guest moves, counted once in the metrics.

The runner is the glue: after every tick and every command the loop's thread
calls :meth:`Runner.refresh` (a new snapshot, a history frame, newly finished
actions into the timeline and the metrics, one live event). What the routes
read from the loop's side (``loop``, ``world``, ``profile``, ``running`` ...)
it forwards to the loop thread.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from presplit.service import schemas as S
from presplit.service.errors import ServiceError
from presplit.service.loop_thread import LoopThread
from presplit.service.snapshot import Snapshots, status_of
from presplit.service.timeline import Timeline

log = logging.getLogger("presplit.service")

__all__ = ["Runner", "ServiceConfig", "ServiceError"]


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


def _forwarded(name: str, *, settable: bool = False) -> property:
    """An attribute of the loop thread, read (and set) through the runner."""

    def get(self):
        return getattr(self.loop_thread, name)

    def put(self, value) -> None:
        setattr(self.loop_thread, name, value)

    return property(get, put if settable else None, doc=f"The loop thread's ``{name}``.")


class Runner:
    def __init__(self, cfg: ServiceConfig, *, metrics=None, hub=None) -> None:
        from presplit.apply.journal import Journal

        self.cfg, self.hub = cfg, hub
        self.reader = Journal(cfg.db)  # the API's own connections (reads, and decisions on plans)
        self.ticks = 0
        self._failed_seen = 0  # failed ticks already counted in the metrics
        self.loop_thread = LoopThread(cfg, self.reader, self)
        self.views = Snapshots(cfg.history)
        self.timeline = Timeline(self.reader, cfg.timeline, self._observe)
        self.metrics = metrics

    @property
    def metrics(self):
        return self._metrics

    @metrics.setter
    def metrics(self, metrics) -> None:
        # The app sets them after building the runner; the parts that count in them get them too.
        self._metrics = self.views.metrics = self.timeline.metrics = metrics

    # what the routes and the commands read from the loop's side
    loop = _forwarded("loop")
    world = _forwarded("world")
    kind = _forwarded("kind")
    running = _forwarded("running")
    revive = _forwarded("revive")
    wake = _forwarded("wake")
    profile = _forwarded("profile", settable=True)  # a new profile (PUT /api/profile) is set here

    @property
    def snapshot(self):
        return self.views.snapshot

    @property
    def history(self):
        return self.views.history

    @property
    def fleet_history(self):
        return self.views.fleet_history

    @property
    def observed_feed(self):
        """The observed-demand window the dashboard and the API show (None before the loop's first look)."""
        return self.loop.forecasts.window if self.loop is not None else None

    # ------------------------------------------------------------ life and commands (the loop thread's)
    def start(self, timeout: float = 60.0) -> None:
        self.loop_thread.start(timeout)

    def stop(self, timeout: float = 30.0) -> None:
        self.loop_thread.stop(timeout)
        self.reader.close()

    def submit(self, fn):
        """Run ``fn()`` on the loop's thread between two ticks; the Future holds its result."""
        return self.loop_thread.submit(fn)

    def drain(self) -> None:
        self.loop_thread.drain()

    def queue_approved(self, plan_id: int) -> None:
        self.loop_thread.queue_approved(plan_id)

    def withdraw_approved(self, plan_id: int) -> bool:
        return self.loop_thread.withdraw_approved(plan_id)

    def _world_path(self) -> Path:
        return self.loop_thread.world_path()

    # ------------------------------------------------------------ hooks the loop's thread calls
    def loop_built(self) -> None:
        """The journal's recent plans into the timeline, shown but not counted (they ran before this start)."""
        self.timeline.ingest_new(initial=True)

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
        snap = self.views.take(state, feed, self.status(state), tick=tick)
        new = self.timeline.ingest_new()
        if tick is not None:
            try:
                self.views.fleet_history.record(state, self.timeline.moves_done)
            except Exception:  # noqa: BLE001 - the charts must not stop the loop
                log.exception("fleet history frame failed")
        if self.hub is not None:
            if new:
                self.hub.publish("actions", [e.model_dump() for e in new])
            self.hub.publish("tick", {"seq": snap.seq, "now": snap.status.now, "last_tick": snap.status.last_tick,
                                      "ticks": self.ticks})

    def refresh_plan(self, plan_id: int) -> None:
        """One plan an operator decided on (or an approved plan that ran) into the timeline, published."""
        new = self.timeline.ingest_plan(plan_id)
        if new and self.hub is not None:
            self.hub.publish("actions", [e.model_dump() for e in new])

    # ------------------------------------------------------------ reads
    def status(self, state=None) -> S.Status:
        return status_of(self.loop_thread, self.reader, ticks=self.ticks, state=state)

    def recent_timeline(self, limit: int, kinds: set[str] | None = None) -> list[S.TimelineEntry]:
        return self.timeline.recent(limit, kinds)

    def moves_of(self, guest: int) -> list[S.Move]:
        return self.timeline.moves_of(guest)

    def _observe(self):
        return self.world.observe() if self.world is not None else None
