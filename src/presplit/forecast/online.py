"""The online tier: vectorised simple exponential smoothing with conformal quantiles.

Cheap enough for every control tick: one pass over the history with numpy
operations on the whole fleet at once, for a small grid of smoothing factors;
each series keeps the factor with the lowest one-step squared error over its
history (the usual SES fit, Hyndman & Athanasopoulos, *FPP3* §8.1, done as a
grid instead of an optimiser so it stays array work).  Quantiles are the
replayed h-step residuals of that same smoother (:mod:`conformal`).
"""

from __future__ import annotations

import numpy as np

from presplit.forecast.base import Context
from presplit.forecast.baselines import PointBaseline
from presplit.forecast.registry import register

ALPHAS = np.array([0.1, 0.2, 0.35, 0.5, 0.7, 0.9])


def ses_levels(y: np.ndarray, alphas: np.ndarray = ALPHAS) -> np.ndarray:
    """Smoothed level after each step with each series' best alpha: ``[S, T]``.

    Two passes over time: the first scores every alpha on one-step squared
    error, the second keeps only the chosen one (memory S x T, not K x S x T).
    """
    s, t = y.shape
    level = np.repeat(y[None, :, 0], len(alphas), axis=0)  # [K, S]
    sse = np.zeros((len(alphas), s))
    a = alphas[:, None]
    for k in range(1, t):  # a loop over time; each operation covers the whole fleet
        err = y[None, :, k] - level
        sse += err * err
        level += a * err
    best = alphas[np.argmin(sse, axis=0)]  # [S]
    levels = np.empty((s, t))
    lv = y[:, 0].copy()
    levels[:, 0] = lv
    for k in range(1, t):
        lv += best * (y[:, k] - lv)
        levels[:, k] = lv
    return levels


class OnlineSES(PointBaseline):
    name = "online-ses"

    def min_steps(self, ctx: Context) -> int:
        return 2

    def replay(self, y, anchors, horizon, ctx):
        lv = ses_levels(y)
        return np.repeat(lv[:, anchors, None], horizon, axis=2)


register(OnlineSES.name, OnlineSES)
