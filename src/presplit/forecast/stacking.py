"""Stacked quantile model: LightGBM on the baselines' own forecasts (``stack-quantile``).

Quantile regression averaging (Nowotarski & Weron, 'Computing electricity spot
price prediction intervals using quantile regression and forecast averaging',
Comput. Stat. 2015) with a tree model in place of the linear one: the inputs
are what the strong baselines would forecast at an anchor (window quantiles,
Autopilot's decayed percentiles, last values, means, spreads, yesterday's value
at the target time; :mod:`presplit.forecast.stacking_features`), each divided
by the series' own scale, and one LightGBM quantile model per level learns the
normalised target with the step ``h`` as a feature.  The target (``target=``):

* ``"last"`` (default): ``(y[t+h] - y[t]) / scale``, the change from the last value;
* ``"ratio"``: ``y[t+h] / scale``;
* ``"abs"``: ``(y[t+h] - y[t]) / fleet scale``, with absolute copies of a few inputs.

Samples are weighted by the unit the target is divided by: pinball loss is
positively homogeneous, so the weighted loss on normalised values equals the
pooled loss on raw values, the one the backtest reports.  ``calib_frac > 0``
holds out the newest anchors and shifts each (level, step) by the weighted
quantile of its held-out residuals (split conformal).  Measured on the shared
traces (docs/forecasting.md, "Stacked quantile model") the default does *not*
beat the best baselines by the 10 % the issue asks for.

Training pairs come only from inside the history window given to ``fit``
(targets ``t+1 .. t+H`` with ``t + H`` before its end); ``predict`` uses the
same features at the window's last step.  Given the fitted trees and the two
fleet constants (floor and scale, learnt in ``fit``), a series' forecast
depends only on its own rows (the sharding contract).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from presplit.forecast.base import Context, Forecast, check_fitted, check_request, sort_quantiles
from presplit.forecast.registry import register
from presplit.forecast.stacking_features import design, steps

# LightGBM defaults except: slower learning and large leaves so tail levels
# do not chase single spikes; one thread (2 threads on 2 cores was 30x slower).
PARAMS = dict(learning_rate=0.05, num_leaves=31, min_data_in_leaf=200, bagging_fraction=0.8,
              bagging_freq=1, feature_fraction=0.9, verbosity=-1)
ROUNDS = 150
# lag0, 1-h mean, Autopilot 1 h and 12 h 0.95 (see stacking_features.feature_names)
ABS_COLUMNS = [2, 6, 29, 34]
FLOOR = 0.05  # scale floor, as a fraction of the fleet's mean absolute value


class StackedQuantile:
    name = "stack-quantile"
    refit_each_tick = False

    def __init__(self, max_anchors: int = 12000, rounds: int = ROUNDS, calib_frac: float = 0.0,
                 target: str = "last", seed: int = 0, threads: int = 1, params: dict | None = None) -> None:
        self.max_anchors = max_anchors
        self.rounds = rounds
        self.calib_frac = calib_frac
        self.target = target
        self.seed = seed
        self.threads = threads
        self.params = dict(PARAMS, **(params or {}))
        self.models: dict[float, object] = {}
        self.shift: dict[float, np.ndarray] = {}
        self.horizon = 0
        self.levels: tuple[float, ...] = ()
        self.floor = 0.0
        self.fleet = 1.0

    def min_steps(self, ctx: Context) -> int:
        # an hour of features plus two horizons of targets to learn from
        return steps(3600, ctx) + 24

    def _offset(self, base: np.ndarray, horizon: int) -> np.ndarray:
        """What the normalised target is measured from: 0, or the last value."""
        if self.target == "ratio":
            return np.zeros(base.shape[0] * horizon)
        return np.tile(base[:, 1], horizon)  # lag0 / scale

    def _rows(self, y, series, anchors, horizon, ctx):
        """Design rows, and the unit each row's target is expressed in: its own
        scale, or (``target="abs"``) the fleet's, with absolute copies of the
        key inputs so trees also see how close a guest is to its capacity."""
        X, scale, base = design(y, series, anchors, horizon, self.floor, self.fleet, ctx)
        if self.target != "abs":
            return X, scale, base, scale
        extra = X[:, ABS_COLUMNS] * (scale / self.fleet)[:, None]
        return np.concatenate([X, extra], axis=1), scale, base, np.full(len(scale), self.fleet)

    def fit(self, history: np.ndarray, horizon: int, quantiles: Sequence[float],
            ctx: Context) -> "StackedQuantile":
        from presplit.extras import require

        require("forecast", "lightgbm")
        import lightgbm as lgb  # heavy; only when this model is used

        y = check_request(self.name, history, horizon, quantiles, self.min_steps(ctx))
        self.horizon, self.levels = horizon, tuple(quantiles)
        s, t = y.shape
        self.fleet = float(np.mean(np.abs(y))) or 1.0
        self.floor = FLOOR * self.fleet
        first, last = steps(3600, ctx) - 1, t - 1 - horizon
        span = last - first + 1
        rng = np.random.default_rng(self.seed)
        pick = rng.choice(s * span, size=min(self.max_anchors, s * span), replace=False)
        series, anchors = pick // span, first + pick % span
        X, scale, base, unit = self._rows(y, series, anchors, horizon, ctx)
        tgt = np.concatenate([y[series, anchors + h] for h in range(1, horizon + 1)])
        z = (tgt - self._offset(base, horizon) * scale) / unit
        hh = X[:, 0].astype(np.int64)
        cut = first + (1.0 - self.calib_frac) * span
        cal = np.tile(anchors >= cut, horizon) if self.calib_frac > 0 else np.zeros(len(z), bool)
        self.models, self.shift = {}, {}
        # one binned Dataset for every level (binning does not depend on the objective: same trees)
        data = lgb.Dataset(X[~cal], z[~cal], weight=unit[~cal], free_raw_data=False)
        for q in self.levels:
            params = dict(self.params, objective="quantile", alpha=q, num_threads=self.threads,
                          seed=self.seed)
            m = lgb.train(params, data, num_boost_round=self.rounds)
            self.models[q] = m
            shift = np.zeros(horizon)
            if cal.any():
                r = z[cal] - m.predict(X[cal])
                for h in range(1, horizon + 1):
                    k = hh[cal] == h
                    shift[h - 1] = weighted_quantile(r[k], unit[cal][k], q)
            self.shift[q] = shift
        return self

    def predict(self, history: np.ndarray, horizon: int, quantiles: Sequence[float],
                ctx: Context) -> Forecast:
        y = check_request(self.name, history, horizon, quantiles, self.min_steps(ctx))
        check_fitted(self.name, self.models, self.horizon, self.levels, horizon, quantiles, exact_horizon=True)
        s, t = y.shape
        X, scale, base, unit = self._rows(y, np.arange(s), np.full(s, t - 1), horizon, ctx)
        off = self._offset(base, horizon) * scale
        out = np.stack([(self.models[q].predict(X) + np.repeat(self.shift[q], s)) * unit + off
                        for q in quantiles])  # [L, H*S], h-major
        q = sort_quantiles(out.reshape(len(quantiles), horizon, s).transpose(0, 2, 1))
        levels = list(quantiles)
        mean = q[levels.index(0.5)] if 0.5 in levels else q.mean(axis=0)
        return Forecast(mean, tuple(quantiles), q)


def weighted_quantile(x: np.ndarray, w: np.ndarray, q: float) -> float:
    """The smallest ``x`` whose cumulative weight reaches ``q`` of the total (0 if empty)."""
    if len(x) == 0:
        return 0.0
    order = np.argsort(x)
    cw = np.cumsum(w[order])
    return float(x[order][min(len(x) - 1, int(np.searchsorted(cw, q * cw[-1])))])


register(StackedQuantile.name, StackedQuantile)
