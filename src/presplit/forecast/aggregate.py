"""Host- and domain-level forecasts built from guest forecasts.

Means add up.  Quantiles do not: summing guests' 0.95 quantiles assumes every
guest peaks together (too high for independent guests), while adding
variances assumes none do (too low for guests driven by the same users).
Here each guest's deviation ``d_i = q_i - mean_i`` is combined with the
correlation ``R`` of the guests' recent history:

    host deviation = sqrt(d' R d),   R_ij = mean_t z_i(t) z_j(t)

with ``z`` the standardised history, so ``d' R d = mean_t (sum_i d_i z_i(t))^2``
costs one grouped sum per horizon step and never forms a guest x guest
matrix.  It equals the sum of deviations for perfectly correlated guests and
the root-sum-square for uncorrelated ones (the Gaussian-copula view; see
Bobroff et al., 'Dynamic placement of virtual machines', IM 2007, for
correlation-aware sizing of consolidated VMs).
"""

from __future__ import annotations

import numpy as np

from presplit.forecast.base import Forecast, ForecastError


def standardise(history: np.ndarray) -> np.ndarray:
    """Each row to mean 0, standard deviation 1 (constant rows to 0)."""
    mu = history.mean(axis=1, keepdims=True)
    sd = history.std(axis=1, keepdims=True)
    return np.where(sd > 0, (history - mu) / np.where(sd > 0, sd, 1.0), 0.0)


def membership(groups: np.ndarray, n_groups: int | None = None) -> np.ndarray:
    """Dense 0/1 matrix ``[groups, guests]`` (hosts are few; guests many)."""
    groups = np.asarray(groups, dtype=np.int64)
    if groups.ndim != 1 or (groups < 0).any():
        raise ForecastError("groups must be a 1-D array of non-negative host or domain indices")
    k = int(groups.max()) + 1 if n_groups is None else n_groups
    m = np.zeros((k, len(groups)))
    m[groups, np.arange(len(groups))] = 1.0
    return m


def aggregate_forecast(fc: Forecast, history: np.ndarray, groups: np.ndarray,
                       n_groups: int | None = None) -> Forecast:
    """Forecast of each group's total from its guests' forecasts and recent history."""
    if history.shape[0] != fc.mean.shape[0] or len(groups) != fc.mean.shape[0]:
        raise ForecastError(f"aggregate: {fc.mean.shape[0]} guest forecasts, {history.shape[0]} "
                            f"histories and {len(groups)} group labels must agree")
    m = membership(groups, n_groups)
    z = standardise(np.asarray(history, dtype=np.float64))
    mean = m @ fc.mean  # [K, H]
    out = np.empty((len(fc.levels),) + mean.shape)
    for li in range(len(fc.levels)):  # a loop over quantile levels and steps, not guests
        d = fc.quantiles[li] - fc.mean  # [G, H]
        for h in range(mean.shape[1]):
            s = m @ (d[:, h, None] * z)  # [K, T]
            dev = np.sqrt(np.mean(s * s, axis=1))
            # a group of constant histories has no correlation to learn: fall back to root-sum-square
            rss = np.sqrt(m @ (d[:, h] ** 2 * (np.abs(z).sum(axis=1) == 0)))
            out[li, :, h] = mean[:, h] + np.sign(fc.levels[li] - 0.5) * np.hypot(dev, rss)
    return Forecast(mean, fc.levels, np.sort(out, axis=0))
