"""Forecasts a simulated policy may use: computed from the demand observed so far, never the future.

The domain engine reveals each guest's demand one tick at a time; this feed
keeps the last ``window`` samples (newest first) and answers the engine's
:class:`presplit.policies.api.DomainForecasts` protocol with the presplit
outlook (a window quantile plus the short-term trend, see
:mod:`presplit.forecast.outlook`). It also hands out the raw recent
series, so a policy can form correlation-aware outlooks of *sets* of guests
(a domain, a host) from their summed series: CPU always, and disk and
network IO when the scenario's services carry IO (kept only then: the IO
window costs as much memory as the CPU one, twice).

:func:`make_feed` is the one constructor of a feed (the simulator, the tick
benchmark and the control loop all call it); :class:`LoopFeed` is the feed a
control loop owns (built by :mod:`presplit.control.assemble`): built on the
first tick that needs it, optionally refilled from what a restarted
controller had observed before, and rebuilt when the forecaster's name
changes (a new profile in ``presplit serve``).
"""

from __future__ import annotations

import numpy as np

from typing import Callable

from presplit.model.cluster import ClusterState
from presplit.forecast.outlook import OutlookParams, upper


class ObservedForecasts:
    def __init__(self, n_guests: int, window: int = 36, params: OutlookParams | None = None) -> None:
        self.params = params or OutlookParams()
        self.series = np.zeros((n_guests, window))  # MIPS, newest first
        self.io: np.ndarray | None = None  # [guests, window, 2] disk and network MB/s, newest first
        self.samples = 0

    def __call__(self, step: int, state: ClusterState) -> "ObservedForecasts":
        """Record the demand the engine set for this tick; the engine calls this every tick."""
        grow = state.n_guests - self.series.shape[0]
        if grow > 0:  # guests launched while the loop runs: no history yet
            self.series = np.vstack([self.series, np.zeros((grow, self.series.shape[1]))])
            if self.io is not None:
                self.io = np.concatenate([self.io, np.zeros((grow, *self.io.shape[1:]))])
        self.series[:, 1:] = self.series[:, :-1]
        self.series[:, 0] = state.demand_mips
        if state.model.io_modelled:
            if self.io is None:
                self.io = np.zeros((*self.series.shape, 2))
            self.io[:, 1:] = self.io[:, :-1]
            self.io[:, 0] = state.demand_io
        self.samples = min(self.samples + 1, self.series.shape[1])
        return self

    def recent_io(self, guests: np.ndarray) -> np.ndarray:
        """[guests, samples, 2] of observed disk and network IO (MB/s), newest first (zeros before any)."""
        if self.io is None:
            return np.zeros((len(guests), max(self.samples, 1), 2))
        return self.io[guests, :max(self.samples, 1)]

    def io_upper(self, guests: np.ndarray) -> np.ndarray:
        """Correlation-aware upper forecast of the summed disk and network IO of ``guests`` (MB/s, shape [2])."""
        if len(guests) == 0:
            return np.zeros(2)
        return upper(self.recent_io(guests).sum(axis=0).T, self.params)

    def recent(self, guests: np.ndarray | None = None) -> np.ndarray:
        """[guests, samples] of observed demand, newest first."""
        s = self.series[:, :max(self.samples, 1)]
        return s if guests is None else s[guests]

    def guest_quantile(self, q: float, horizon_steps: int) -> np.ndarray:
        params = OutlookParams(window=max(self.params.window, horizon_steps), quantile=q,
                               lead_steps=float(horizon_steps), trend_samples=self.params.trend_samples)
        return upper(self.recent(), params)

    def set_upper(self, guests: np.ndarray, q: float | None = None) -> float:
        """Correlation-aware upper forecast of the summed demand of ``guests`` (MIPS)."""
        if len(guests) == 0:
            return 0.0
        params = self.params if q is None else OutlookParams(self.params.window, q, self.params.lead_steps,
                                                              self.params.trend_samples)
        return float(upper(self.recent(guests).sum(axis=0), params))


class DecisionFeed(ObservedForecasts):
    """The observed window, with the policy's rows and bounds from a decision forecaster
    (:mod:`presplit.forecast.decision`): ``recent`` hands out the forecaster's additive rows and
    ``bound`` its upper bound, so the split-domain policy decides on any forecaster the way the
    CloudSim-engine one does. Disk and network IO stay on the observed window.

    ``future(step)`` gives the trace's samples from ``step`` on, [guests, >= horizon + 1] in MIPS,
    for the oracle (a simulation knows its trace; a stored world or real hosts do not).
    """

    def __init__(self, n_guests: int, forecaster, future=None, window: int = 36,
                 params: OutlookParams | None = None) -> None:
        super().__init__(n_guests, window, params)
        self.forecaster, self.future = forecaster, future
        self.tick = None

    def __call__(self, step: int, state: ClusterState) -> "DecisionFeed":
        super().__call__(step, state)
        fc = self.forecaster
        ahead = None
        if getattr(fc, "simulation_only", False):
            if self.future is None:
                from presplit.forecast.base import ForecastError

                raise ForecastError(f"the {fc.name} forecaster needs the trace's future: presplit simulate only")
            ahead = self.future(step)
        self.tick = fc.at(super().recent(), step, future=ahead)
        return self

    @property
    def name(self) -> str:
        return self.tick.name if self.tick is not None else self.forecaster.name

    def recent(self, guests: np.ndarray | None = None) -> np.ndarray:
        rows = self.tick.rows()
        return rows if guests is None else rows[guests]

    def bound(self, rows: np.ndarray) -> np.ndarray:
        return self.tick.upper(rows)

    def guest_quantile(self, q: float, horizon_steps: int) -> np.ndarray:
        return self.bound(self.recent())

    def set_upper(self, guests: np.ndarray, q: float | None = None) -> float:
        if len(guests) == 0:
            return 0.0
        return float(self.bound(self.recent(guests).sum(axis=0)))


def make_feed(n_guests: int, forecaster: str | None = None, *, horizon: int = 12, future=None,
              interval_s: int = 300) -> ObservedForecasts:
    """The feed a split-domain policy decides on: the observed outlook, or the named decision forecaster."""
    if forecaster is None or forecaster == "outlook":
        return ObservedForecasts(n_guests)
    from presplit.forecast.decision import make_forecaster

    return DecisionFeed(n_guests, make_forecaster(forecaster, horizon=horizon, interval_s=interval_s), future)


class LoopFeed:
    """The forecasts a control loop hands its policies every tick.

    ``name``: the decision forecaster (None or ``outlook``: the observed outlook), or a callable returning it
    (read every tick, so a new profile may name another). ``history(now, n)``: what the loop had observed at
    its last ``n`` ticks before ``now``, as (tick, CPU MIPS per guest, disk/network IO or None), oldest first;
    a feed built at ``now`` first sees those again, so a restarted controller decides as one that never
    stopped. ``keep_window``: keep the observed window every tick even when no policy needs forecasts (what
    a dashboard shows, :meth:`observed`); without it nothing is recorded until a policy needs forecasts.
    """

    def __init__(self, interval_s: float, name: str | Callable[[], str | None] | None = None, *,
                 history: Callable[[float, int], list] | None = None, keep_window: bool = False) -> None:
        self.interval_s = float(interval_s)
        self.name, self.history, self.keep_window = name, history, keep_window
        self.window: ObservedForecasts | None = None  # the observed outlook
        self.decide: DecisionFeed | None = None  # the named decision forecaster's feed, when one is named
        self._decide_name: str | None = None

    def current_name(self) -> str | None:
        return self.name() if callable(self.name) else self.name

    def observed(self, state: ClusterState) -> ObservedForecasts:
        """The observed window, built (and fed ``state``) on first use."""
        if self.window is None:
            self.window = self._new(state, None, state.now)
            self.window(0, state)
        return self.window

    def __call__(self, state: ClusterState, now: float, policies) -> ObservedForecasts | None:
        """Record this tick's demand and return the forecasts the policies decide on (None when none needs any)."""
        step = int(now // self.interval_s)
        needed = any(getattr(p, "needs_forecasts", False) for p in policies)
        name = self.current_name() if needed else None
        outlook = name in (None, "outlook")
        if self.keep_window or (needed and outlook):  # the observed window is fed once a tick at most
            if self.window is None:
                self.window = self._new(state, None, now)
            self.window(step, state)
        if not needed:
            return None
        if outlook:
            return self.window
        if self.decide is None or self._decide_name != name:  # a new profile may name another
            self.decide, self._decide_name = self._new(state, name, now), name
        return self.decide(step, state)

    def _new(self, state: ClusterState, name: str | None, now: float) -> ObservedForecasts:
        feed = make_feed(state.n_guests, name, interval_s=int(self.interval_s))
        if self.history is not None:
            from types import SimpleNamespace

            for past, cpu, io in self.history(now, feed.series.shape[1]):
                feed(int(past // self.interval_s), SimpleNamespace(n_guests=len(cpu), demand_mips=cpu,
                                                                   demand_io=io, model=state.model))
        return feed
