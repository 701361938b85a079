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


POOL_SERIES = 2000


def series_scale(resid: np.ndarray) -> np.ndarray:
    """Each series' mean absolute residual ``[S]`` (0 for a series never wrong)."""
    if resid.shape[1] == 0:
        return np.zeros(resid.shape[0])
    return np.mean(np.abs(resid), axis=(1, 2))


def pooled_shape(resid: np.ndarray, levels: Sequence[float]) -> np.ndarray:
    """Quantiles ``[levels, horizon]`` of the residuals of all series, each
    divided by its own scale; zeros when there is nothing to learn from."""
    h = resid.shape[2]
    if resid.shape[0] > POOL_SERIES:
        # an evenly spaced subset of series gives the same shape for far less sorting
        resid = resid[np.linspace(0, resid.shape[0] - 1, POOL_SERIES).astype(np.int64)]
    scale = series_scale(resid)
    live = scale > 0
    if not live.any():
        return np.zeros((len(levels), h))
    norm = resid[live] / scale[live, None, None]
    return np.quantile(norm.reshape(-1, h), np.asarray(levels, dtype=np.float64), axis=0)


def apply_shape(point: np.ndarray, resid: np.ndarray, shape: np.ndarray) -> np.ndarray:
    """Quantiles ``[levels, series, horizon]`` = point + pooled shape x the series' own scale.

    Row-separable: a series' quantiles depend only on its own residuals and
    the (fleet-wide, fitted) shape.  With no residuals the interval collapses
    onto the point.
    """
    return point[None] + shape[:, None, :] * series_scale(resid)[None, :, None]
