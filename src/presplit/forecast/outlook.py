"""Correlation-aware demand outlook of a set of guests on a host.

The question every decision asks is "would this host, with these guests, stay
under its limit for the next few steps, at a high quantile?". Summing the
guests' own upper quantiles overstates the peak (their peaks rarely coincide);
assuming independence understates it (PlanetLab guests rise together in the
daytime). So the outlook works on the *host's* demand series: the sum of its
guests' recent samples, step by step, keeps exactly the co-movement that
happened. Its upper quantile over a recent window, plus the trend of the last
samples carried over the lead time a move needs, is the host's upper
forecast. Adding a guest adds its series before the quantile is taken.

It lives in the forecast layer because it is a forecast (pure numpy over
observed series): the decision forecasters (:mod:`presplit.forecast.decision`),
the simulator's feed, the service's views and presplit's policies all use it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class OutlookParams:
    window: int = 12          # samples of history the quantile looks at (1 h at 5 min)
    quantile: float = 0.95    # what splitting and balancing act on
    lead_steps: float = 1.0   # steps ahead a decision must hold (a migration ends within one)
    trend_samples: int = 4    # samples the short-term slope is fitted on


def quantile_last_axis(x: np.ndarray, q: float) -> np.ndarray:
    """``np.quantile(x, q, axis=-1)`` (linear interpolation) for short windows, without its overhead."""
    n = x.shape[-1]
    xs = np.sort(x, axis=-1)
    pos = (n - 1) * q
    lo = int(np.floor(pos))
    hi = min(lo + 1, n - 1)
    return xs[..., lo] + (xs[..., hi] - xs[..., lo]) * (pos - lo)


def next_upper(series: np.ndarray, params: OutlookParams) -> np.ndarray:
    """Upper forecast of the next step: the last value plus the ``quantile`` of the
    series' own one-step changes over the window (a conformal naive forecast).

    For a host's summed series this is where the correlation lives: the changes
    are those of the sum, so guests that rise together widen the margin.
    """
    n = series.shape[-1]
    if n < 2:
        return series[..., 0]
    w = min(params.window, n - 1)
    changes = series[..., :w] - series[..., 1:w + 1]
    margin = quantile_last_axis(changes, params.quantile)
    return series[..., 0] + np.maximum(margin, 0.0) * params.lead_steps


def group_series(guest_domain: np.ndarray, guest_dest: np.ndarray, values: np.ndarray,
                 group_of_domain: np.ndarray, n_groups: int) -> np.ndarray:
    """Summed series [groups, samples] of the guests of each group (a domain, a host).

    ``values`` is [guests, samples]; ``group_of_domain`` maps domain ids to
    group ids. A guest migrating out no longer counts where it is leaving,
    only where it goes.
    """
    width = values.shape[1]
    out = np.zeros(n_groups * width)
    staying = np.where(guest_dest >= 0, -1, guest_domain)
    for arr in (staying, guest_dest):
        idx = np.flatnonzero(arr >= 0)
        if len(idx):
            flat = (group_of_domain[arr[idx]][:, None] * width + np.arange(width)).ravel()
            out += np.bincount(flat, values[idx].ravel(), minlength=n_groups * width)
    return out.reshape(n_groups, width)


def upper(series: np.ndarray, params: OutlookParams) -> np.ndarray:
    """Upper forecast of each row of ``series`` [..., samples newest first] in the same units."""
    n = series.shape[-1]
    w = min(params.window, n)
    recent = series[..., :w]
    level = quantile_last_axis(recent, params.quantile)
    k = min(params.trend_samples, n)
    if k >= 2:
        # Least-squares slope over the last k samples (newest first, so negate).
        x = np.arange(k, dtype=np.float64)
        xc = x - x.mean()
        slope = -(series[..., :k] @ xc) / (xc @ xc)
        level = np.maximum(level, series[..., 0] + np.maximum(slope, 0.0) * params.lead_steps)
    else:
        level = np.maximum(level, series[..., 0])
    return level
