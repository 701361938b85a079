"""What the read endpoints serve: the newest snapshot, the per-tick history, the status line, forecast scores.

:class:`Snapshots` is refreshed on the loop's thread after every tick, command
and approved plan (:meth:`Snapshots.take`): a new immutable
:class:`~presplit.service.views.Snapshot` built from the observed state and
the loop's observed-demand window, and -- at a tick -- a history frame for
the charts and the forecast-error scores (this tick's loads against the
forecasts of the tick before) in the Prometheus metrics. :func:`status_of`
is the status line every snapshot carries (``/api/status``).
"""

from __future__ import annotations

import numpy as np

from presplit.service import schemas as S
from presplit.service.views import FleetHistory, History, Snapshot, build_snapshot, forecasts_of


class Snapshots:
    def __init__(self, history: int, *, metrics=None) -> None:
        self.metrics = metrics
        self.snapshot: Snapshot | None = None
        self.seq = 0
        self.history = History(history)
        self.fleet_history = FleetHistory(max(history, 2016))  # fleet aggregates per tick (/api/history)
        self.route_cache: dict = {}

    def take(self, state, feed, status: S.Status, *, tick: float | None) -> Snapshot:
        """A new snapshot of ``state`` (forecasts from ``feed``); at a ``tick``, a history frame and the scores."""
        self.seq += 1
        snap = build_snapshot(self.seq, state, forecasts_of(state, feed), status, self.route_cache)
        self.snapshot = snap
        if tick is not None:
            prev, _ = self.history.last_two()
            self.history.record(float(state.now), snap)
            self._score(prev, snap)
        return snap

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


def status_of(loop_thread, reader, *, ticks: int, state=None) -> S.Status:
    """The status line: backend, loop and leadership, counts of ``state`` (None: before the world is open)."""
    t = loop_thread
    counts: dict[str, int] = {}
    now = None
    loop = t.loop
    if state is not None:
        from presplit.model.domains import GUEST_STATES

        now = float(state.now)
        counts = {"hosts": state.n_hosts, "hosts_on": int(np.sum(state.host_on)),
                  "domains": int(state.domain_arrays["live"].sum()), "guests": state.n_guests}
        st = np.bincount(state.guest_status.astype(np.int64), minlength=len(GUEST_STATES))
        for name, n in zip(GUEST_STATES, st):
            counts[f"guests_{name}"] = int(n)
        counts["guests_unplaced"] = loop.unplaced if loop is not None else 0
    cfg = t.cfg
    pace = cfg.pace_s if cfg.backend == "sim" else None
    last = reader.get_meta("last_tick") if state is not None else None
    err = loop.last_error if loop is not None else None
    tick_error = None if err is None else {k: v for k, v in err.items() if k != "traceback"}  # traceback: events
    return S.Status(backend=cfg.backend, running=t.running, leader=t.leader, dry_run=cfg.dry_run,
                    now=now, last_tick=last, ticks=ticks,
                    interval_s=float(loop.interval) if loop else 0.0, pace_s=pace,
                    profile=t.profile.label if t.profile else "", counts=counts,
                    last_error=t.error or tick_error, failed_ticks=loop.failed_ticks if loop else 0,
                    start_epoch_s=t.start_epoch_s)
