"""Baseline forecasters that always run (registered as ``baseline-*``).

Each one is a few lines of array code over the whole fleet.  Point baselines
get their quantiles from their own replayed residuals (:mod:`conformal`); the
window-quantile and Autopilot baselines forecast quantiles directly.
"""

from __future__ import annotations

from statistics import NormalDist
from typing import Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from presplit.forecast.base import Context, Forecast, ForecastError, check_request, sort_quantiles
from presplit.forecast.conformal import anchor_range, apply_shape, pooled_shape, targets
from presplit.forecast.registry import register

# Six hours of anchors: 72 x H residuals per series at 5-min steps are enough
# for a series' scale (the pooled shape takes the rest), recent enough to
# follow a change of regime, and small enough for the online tick budget.
CALIBRATION_S = 6 * 3600


def steps(seconds: float, ctx: Context) -> int:
    return max(1, round(seconds / ctx.interval_s))


def rolling_mean(y: np.ndarray, w: int, anchors: np.ndarray) -> np.ndarray:
    """Mean of ``y[:, t-w+1 .. t]`` for each anchor ``t`` (requires t >= w-1): ``[S, A]``."""
    c = np.concatenate([np.zeros((y.shape[0], 1)), np.cumsum(y, axis=1)], axis=1)
    return (c[:, anchors + 1] - c[:, anchors + 1 - w]) / w


class PointBaseline:
    """A point forecaster replayable at any past anchor, with conformal quantiles."""

    name = "point"
    refit_each_tick = True
    fitted = None

    def min_steps(self, ctx: Context) -> int:
        return 1

    def first_anchor(self, ctx: Context) -> int:
        return self.min_steps(ctx) - 1

    def replay(self, y: np.ndarray, anchors: np.ndarray, horizon: int, ctx: Context) -> np.ndarray:
        """Point forecasts ``[S, A, H]`` made with data up to each anchor."""
        raise NotImplementedError

    def _replay_residuals(self, y: np.ndarray, horizon: int, ctx: Context):
        t = y.shape[1]
        anchors = anchor_range(t, horizon, steps(CALIBRATION_S, ctx), first=self.first_anchor(ctx))
        # one replay covers the calibration anchors and today's anchor
        pred = self.replay(y, np.append(anchors, t - 1), horizon, ctx)
        return pred[:, -1, :], targets(y, anchors, horizon) - pred[:, :-1, :]

    def fit(self, history: np.ndarray, horizon: int, quantiles: Sequence[float],
            ctx: Context) -> "PointBaseline":
        """Learn the fleet's pooled residual shape ``[levels, horizon]``."""
        y = check_request(self.name, history, horizon, quantiles, self.min_steps(ctx))
        _, resid = self._replay_residuals(y, horizon, ctx)
        self.fitted = (horizon, tuple(quantiles), pooled_shape(resid, quantiles))
        return self

    def predict(self, history: np.ndarray, horizon: int, quantiles: Sequence[float],
                ctx: Context) -> Forecast:
        y = check_request(self.name, history, horizon, quantiles, self.min_steps(ctx))
        point, resid = self._replay_residuals(y, horizon, ctx)
        if self.fitted is None:  # no fit yet: learn the shape from this very history
            self.fitted = (horizon, tuple(quantiles), pooled_shape(resid, quantiles))
        return self._finish(point, resid, horizon, quantiles)

    def fit_predict(self, history: np.ndarray, horizon: int, quantiles: Sequence[float],
                    ctx: Context) -> Forecast:
        """``fit`` then ``predict`` on the same history, replaying it once (the online tick)."""
        y = check_request(self.name, history, horizon, quantiles, self.min_steps(ctx))
        point, resid = self._replay_residuals(y, horizon, ctx)
        self.fitted = (horizon, tuple(quantiles), pooled_shape(resid, quantiles))
        return self._finish(point, resid, horizon, quantiles)

    def _finish(self, point, resid, horizon, quantiles) -> Forecast:
        fh, fq, table = self.fitted
        if fh != horizon or fq != tuple(quantiles):
            raise ForecastError(f"{self.name}: fitted for horizon {fh} and levels {fq}, "
                                f"asked for {horizon} and {tuple(quantiles)}")
        q = sort_quantiles(apply_shape(point, resid, table))
        return Forecast(point, tuple(quantiles), q)


class LastValue(PointBaseline):
    name = "baseline-last"

    def replay(self, y, anchors, horizon, ctx):
        return np.repeat(y[:, anchors, None], horizon, axis=2)


class SeasonalNaive(PointBaseline):
    """Same time yesterday; needs a full day of history (and a little more for residuals)."""

    name = "baseline-seasonal-naive"

    def min_steps(self, ctx):
        return ctx.steps_per_day + steps(3600, ctx)

    def first_anchor(self, ctx):
        return ctx.steps_per_day - 1

    def replay(self, y, anchors, horizon, ctx):
        d = ctx.steps_per_day
        back = (np.arange(horizon) % d) + 1 - d  # offset of the same phase one day earlier
        return y[:, anchors[:, None] + back[None, :]]


class WindowMean(PointBaseline):
    def __init__(self, window_s: int, label: str) -> None:
        self.window_s = window_s
        self.name = f"baseline-window-mean-{label}"

    def min_steps(self, ctx):
        return steps(self.window_s, ctx)

    def replay(self, y, anchors, horizon, ctx):
        m = rolling_mean(y, steps(self.window_s, ctx), anchors)
        return np.repeat(m[:, :, None], horizon, axis=2)


class BeloglazovLR(PointBaseline):
    """Local linear regression over the last 10 observations with tricube
    weights, extrapolated ``h`` steps (Beloglazov & Buyya, CCPE 2012, 'LR'
    overload detection).  The fit is a fixed linear filter, so replaying it over
    the whole history is one matrix product."""

    name = "baseline-beloglazov-lr"
    n = 10

    def min_steps(self, ctx):
        return self.n

    def coefficients(self, horizon: int) -> np.ndarray:
        x = np.arange(self.n, dtype=np.float64)
        w = (1.0 - ((x[-1] - x) / self.n) ** 3) ** 3  # tricube on distance from the newest point
        X = np.stack([np.ones(self.n), x], axis=1)
        A = np.linalg.solve(X.T @ (w[:, None] * X), X.T * w)  # [2, n]
        xs = x[-1] + 1 + np.arange(horizon)
        return np.stack([np.ones(horizon), xs], axis=1) @ A  # [H, n]

    def replay(self, y, anchors, horizon, ctx):
        win = sliding_window_view(y, self.n, axis=1)[:, anchors - self.n + 1, :]  # [S, A, n]
        return win @ self.coefficients(horizon).T


class WindowQuantile:
    """Empirical quantiles of the last window, flat over the horizon."""

    def __init__(self, window_s: int, label: str) -> None:
        self.window_s = window_s
        self.name = f"baseline-window-quantile-{label}"

    def min_steps(self, ctx):
        return steps(self.window_s, ctx)

    refit_each_tick = True

    def fit(self, history, horizon, quantiles, ctx):
        return self

    def predict(self, history, horizon, quantiles, ctx):
        y = check_request(self.name, history, horizon, quantiles, self.min_steps(ctx))
        win = y[:, -steps(self.window_s, ctx):]
        mean = np.repeat(win.mean(axis=1)[:, None], horizon, axis=1)
        q = np.quantile(win, list(quantiles), axis=1)  # [L, S]
        return Forecast(mean, tuple(quantiles), np.repeat(q[:, :, None], horizon, axis=2))


class MeanKSigma(WindowQuantile):
    """Peak predictor mean + k*sigma over a window, with k = z(q) per level."""

    def __init__(self, window_s: int, label: str) -> None:
        super().__init__(window_s, label)
        self.name = f"baseline-mean-ksigma-{label}"

    def predict(self, history, horizon, quantiles, ctx):
        y = check_request(self.name, history, horizon, quantiles, self.min_steps(ctx))
        win = y[:, -steps(self.window_s, ctx):]
        mu, sd = win.mean(axis=1), win.std(axis=1)
        z = np.array([NormalDist().inv_cdf(q) for q in quantiles])
        q = mu[None, :] + z[:, None] * sd[None, :]
        return Forecast(np.repeat(mu[:, None], horizon, axis=1), tuple(quantiles),
                        np.repeat(q[:, :, None], horizon, axis=2))


class DecayedPercentile(WindowQuantile):
    """Autopilot's moving-window recommender (Rzadca et al., EuroSys 2020, §3.1):
    a percentile of all past samples weighted by an exponential decay with the
    given half-life, so old peaks fade instead of falling off a cliff."""

    def __init__(self, half_life_s: int, label: str) -> None:
        self.half_life_s = half_life_s
        self.window_s = 1
        self.name = f"baseline-autopilot-{label}"

    def predict(self, history, horizon, quantiles, ctx):
        y = check_request(self.name, history, horizon, quantiles, 1)
        t = y.shape[1]
        age = np.arange(t - 1, -1, -1, dtype=np.float64)
        w = 0.5 ** (age * ctx.interval_s / self.half_life_s)
        order = np.argsort(y, axis=1)
        ys = np.take_along_axis(y, order, axis=1)
        cw = np.cumsum(w[order], axis=1)
        cw /= cw[:, -1:]
        # first sorted sample whose cumulative weight reaches the level
        idx = np.stack([(cw < q).sum(axis=1) for q in quantiles])  # [L, S]
        q = np.take_along_axis(ys, np.minimum(idx, t - 1).T, axis=1).T
        mean = (y * w).sum(axis=1) / w.sum()
        return Forecast(np.repeat(mean[:, None], horizon, axis=1), tuple(quantiles),
                        np.repeat(q[:, :, None], horizon, axis=2))


WINDOWS = {"1h": 3600, "3h": 3 * 3600, "1d": 86400}

register(LastValue.name, LastValue)
register(SeasonalNaive.name, SeasonalNaive)
for _label, _s in WINDOWS.items():
    register(f"baseline-window-mean-{_label}", lambda s=_s, lb=_label: WindowMean(s, lb))
    register(f"baseline-window-quantile-{_label}", lambda s=_s, lb=_label: WindowQuantile(s, lb))
register("baseline-mean-ksigma-1h", lambda: MeanKSigma(3600, "1h"))
register("baseline-autopilot-1h", lambda: DecayedPercentile(3600, "1h"))
register("baseline-autopilot-12h", lambda: DecayedPercentile(12 * 3600, "12h"))
register(BeloglazovLR.name, BeloglazovLR)
