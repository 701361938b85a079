"""Forecasts a simulated policy may use: computed from the demand observed so far, never the future.

The domain engine reveals each guest's demand one tick at a time; this feed
keeps the last ``window`` samples (newest first) and answers the engine's
:class:`presplit.sim.domain_engine.Forecasts` protocol with the presplit
outlook (a window quantile plus the short-term trend, see
:mod:`presplit.policies.presplit.outlook`). It also hands out the raw recent
series, so a policy can form correlation-aware outlooks of *sets* of guests
(a domain, a host) from their summed series: CPU always, and disk and
network IO when the scenario's services carry IO (kept only then: the IO
window costs as much memory as the CPU one, twice).
"""

from __future__ import annotations

import numpy as np

from presplit.model.cluster import ClusterState
from presplit.policies.presplit.outlook import OutlookParams, upper


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
