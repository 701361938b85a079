"""Empirical (conformal) residual quantiles for point forecasters.

A point forecaster that can be replayed over its own history gives, for each
past anchor ``t`` and step ``h``, a residual ``y[t+h] - yhat[t, h]``.  The
quantiles of those residuals, added to today's point forecast, are a split
conformal interval (Vovk et al., *Algorithmic Learning in a Random World*,
2005; Lei et al., JASA 2018): honest as long as the recent past looks like
the near future, and cheap because it needs no distributional assumption.

Residuals are pooled over series after dividing each series by its own mean
absolute residual, then scaled back: 0.99 quantiles from a few dozen residuals
of one series are noise, while the pooled *shape* is stable and the per-series
scale keeps idle guests' intervals tight.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def anchor_range(n_steps: int, horizon: int, max_anchors: int, first: int = 0) -> np.ndarray:
    """The most recent anchors ``t`` (index of the last observed step) whose
    whole horizon ``t+1 .. t+horizon`` is inside the history."""
    last = n_steps - 1 - horizon
    start = max(first, last - max_anchors + 1)
    if last < start:
        return np.empty(0, dtype=np.int64)
    return np.arange(start, last + 1)


def targets(y: np.ndarray, anchors: np.ndarray, horizon: int) -> np.ndarray:
    """``y[:, t+1 .. t+horizon]`` for each anchor: ``[series, anchors, horizon]``."""
    idx = anchors[:, None] + 1 + np.arange(horizon)[None, :]
    return y[:, idx]


def residual_quantiles(point: np.ndarray, resid: np.ndarray, levels: Sequence[float],
                       pooled: bool = True) -> np.ndarray:
    """Quantiles ``[levels, series, horizon]`` = point + residual quantiles.

    ``point`` is ``[series, horizon]``; ``resid`` is ``[series, anchors, horizon]``.
    With no residuals (too short a history) the interval collapses onto the point.
    """
    levels = np.asarray(levels, dtype=np.float64)
    s, h = point.shape
    if resid.shape[1] == 0:
        return np.broadcast_to(point, (len(levels), s, h)).copy()
    if not pooled:
        q = np.quantile(resid, levels, axis=1)  # [L, S, H]
        return point[None] + q
    scale = np.mean(np.abs(resid), axis=(1, 2))  # [S]
    live = scale > 0
    norm = resid[live] / scale[live, None, None]
    if norm.shape[0] == 0:
        return np.broadcast_to(point, (len(levels), s, h)).copy()
    qn = np.quantile(norm.transpose(0, 1, 2).reshape(-1, h), levels, axis=0)  # [L, H]
    return point[None] + qn[:, None, :] * scale[None, :, None]
