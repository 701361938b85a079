"""Per-series selection among quantile forecasters by their recent pinball loss (``select-quantile``).

No single forecaster is best for every guest: on a fleet of batch VMs the
global LightGBM model (``gbm-quantile``) is best for guests whose behaviour
its fleet-wide trees describe, Autopilot's decayed percentile
(``baseline-autopilot-1h``) for guests that hold a high load with short dips
(it keeps the 0.95 quantile up through a dip), the last value for
piecewise-constant guests, and a daily expert (Autopilot with the upper
levels raised to the guest's peak around the same time yesterday,
:func:`yesterday_upper`) for guests whose jobs recur at the same time of day.
Which one a guest follows is visible in its own
recent past, so this model replays the experts at past anchors of the
history it is given (every ``stride`` steps, over up to ``trail_s`` seconds,
only anchors whose whole horizon is observed), scores each expert's pinball
loss per (level, series) and answers each of those with the expert that
scored best (ties go to the GBM).  This is "follow the leader" expert
selection (Cesa-Bianchi & Lugosi, *Prediction, Learning, and Games*, 2006)
done per guest and per quantile level.

Only the median and the upper tail (levels >= ``tail``) are selected; the
other levels keep the GBM's quantiles.  Why: the last-value and percentile
experts put their quantiles exactly on observed values, and on piecewise
constant guests an outcome equal to a quantile counts as covered, so
selecting them at 0.1 / 0.9 inflated the 80 % interval's coverage to 86 %
(measured on the Bitbrains week) while the GBM's own central interval is
calibrated.  The upper tail is where the decisions (overload alarms) are.

The fitted state is the GBM's trees and the last-value expert's pooled
residual shape, both learnt in ``fit``; ``predict`` replays the experts with
that state on the rows of each series only, so a series' forecast depends
only on its own history (the sharding contract) and nothing at or after the
origin is used.  The replayed anchors overlap the window the GBM was trained
on, so its past losses are somewhat optimistic.  Scoring it instead with a
twin fitted without the newest day (out of sample) was measured and dropped:
pinball 0.95 0.450 -> 0.453 and MASE 1.578 -> 1.614 on the Bitbrains week
(1-day trail, twice the fitting cost).  Cost: a predict replays
``trail_s / stride`` anchors (48 at the defaults), each a GBM prediction on
4 of the 7 levels -- about 5 s per forecast of 427 guests on one core, so this
is an hourly tier, not a per-tick one.  The GBM's replayed quantiles at an
anchor far enough into the history (a day and a step: every feature window
is full, so they do not depend on where the history starts) are kept, keyed
by the exact values the features read, and reused by the next predict of the
same fitted model (a backtest or a control loop forecasting every horizon
replays mostly the same anchors); the numbers are the same as without it.

Measured on the Bitbrains week (CPU, pinball 0.95, H = 12): with the first
three experts 0.4503 (-6.3 % against the best baseline), with the daily
expert added 0.4312 (-10.2 %); the daily expert alone scores 0.4795 (the
best baseline 0.4804) -- it pays only where a guest's own past picks it.
"""

from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np

from presplit.forecast.base import Context, Forecast, ForecastError, check_fitted, check_request, sort_quantiles
from presplit.forecast.baselines import DecayedPercentile, LastValue
from presplit.forecast.features import LAGS, LONG_S, design, level_steps, window_steps
from presplit.forecast.gbm import GlobalGBM
from presplit.forecast.metrics import pinball_loss
from presplit.forecast.registry import register


def yesterday_upper(past: np.ndarray, base: np.ndarray, quantiles: Sequence[float], ctx: Context, *,
                    tail: float, half_width_s: float = 900.0) -> np.ndarray:
    """The daily expert: ``base`` quantiles ``[L, S, H]`` with the upper levels (>= ``tail``)
    raised to the series' maximum around the target time one day earlier (+-15 min).

    A guest that ran a job at this time yesterday has a far higher chance of
    a jump in the next hour than one that did not (on the Bitbrains week 14 %
    against 0.7 % for jumps over 0.2), well above the 5 % an upper 0.95
    quantile must cover; steps for which less than half of the day-earlier
    window is in the history keep ``base``.
    """
    out = base.copy()
    day, t = ctx.steps_per_day, past.shape[1]
    half = max(1, int(round(half_width_s / ctx.interval_s)))
    upper_levels = [i for i, lv in enumerate(quantiles) if lv >= tail - 1e-9]
    for h in range(base.shape[2]):
        centre = t + h - day  # the target step (t + h, counting from 0 at the first new step) a day ago
        lo, hi = max(0, centre - half), min(t, centre + half + 1)
        if hi - lo < half + 1:
            continue  # less than half the window is in the history
        peak = past[:, lo:hi].max(axis=1)
        for i in upper_levels:
            out[i, :, h] = np.maximum(out[i, :, h], peak)
    return out


def feature_lookback(ctx: Context) -> int:
    """How many steps before an anchor the GBM's features read (:mod:`presplit.forecast.features`):
    the longest window, the long window, and the day-earlier value at the first
    step with its +-2-step neighbourhood.  At anchors at least this far into a
    history the features do not depend on where the history starts."""
    d = ctx.steps_per_day
    return max(max(window_steps(ctx)) - 1, max(2, round(LONG_S / ctx.interval_s)) - 1, d + 1,
               level_steps(ctx) - 1, LAGS - 1)


class SelectQuantile:
    name = "select-quantile"
    refit_each_tick = False

    def __init__(self, stride: int | None = None, trail_s: float = 2 * 86400, tail: float = 0.95,
                 gbm: GlobalGBM | None = None, reuse: bool = True) -> None:
        self.stride = stride  # default: the horizon (replayed forecasts do not overlap)
        self.trail_s = trail_s
        self.tail = tail
        self.gbm = gbm or GlobalGBM()
        self.last = LastValue()
        self.autopilot = DecayedPercentile(3600, "1h")
        self.fitted = False
        self.reuse = reuse  # keep the GBM's replays for the next predict (same numbers, less work)
        self._replays: dict = {}  # replay key -> {level: raw GBM quantiles [H*S]}
        self._kept: dict = {}
        self._replays_of = None  # the GBM's trees the replays came from (held, so never another's)

    def __getstate__(self) -> dict:
        # shipped to Dask workers without the replay cache (it is only a shortcut)
        return {**self.__dict__, "_replays": {}, "_kept": {}, "_replays_of": None}

    def min_steps(self, ctx: Context) -> int:
        return self.gbm.min_steps(ctx)

    def fit(self, history: np.ndarray, horizon: int, quantiles: Sequence[float],
            ctx: Context) -> "SelectQuantile":
        self.gbm.fit(history, horizon, quantiles, ctx)
        self.last.fit(history, horizon, quantiles, ctx)
        self.fitted = True
        self._replays, self._kept, self._replays_of = {}, {}, None  # replays of the old trees are no use
        return self

    def _replay_key(self, y: np.ndarray, anchor: int, horizon: int, ctx: Context):
        """What the GBM's raw quantiles at ``anchor`` depend on, or None when they
        also depend on where the history starts (too close to it) or read past the anchor."""
        back = feature_lookback(ctx)
        if not self.reuse or anchor < back or horizon > ctx.steps_per_day - 2:
            return None
        digest = hashlib.blake2b(np.ascontiguousarray(y[:, anchor - back:anchor + 1]).tobytes(),
                                 digest_size=16).digest()
        # absolute step (time of day), whether the history holds two days (time-of-day
        # features on or off), the number of series and the values read
        return (ctx.interval_s, ctx.first_step + anchor, y.shape[1] >= 2 * ctx.steps_per_day, y.shape[0],
                horizon, digest)

    def _gbm_at(self, gbm: GlobalGBM, y: np.ndarray, anchor: int, horizon: int, quantiles,
                ctx: Context) -> np.ndarray:
        """A fitted GBM's quantiles ``[L, S, H]`` at a past anchor, from the full array
        (its features at an anchor only read steps up to that anchor)."""
        s = y.shape[0]
        key = self._replay_key(y, anchor, horizon, ctx) if gbm is self.gbm else None
        raw = dict(self._replays.get(key, {})) if key is not None else {}
        todo = [q for q in quantiles if q not in raw]
        if todo:
            X, level = design(y, np.arange(s), np.full(s, anchor), horizon, gbm.scale, ctx)
            for q in todo:
                raw[q] = (gbm.models[q].predict(X) + gbm.shift[q]) * gbm.scale + level  # [H*S], h-major
        if key is not None:
            self._kept[key] = raw
        out = np.stack([raw[q] for q in quantiles])
        return sort_quantiles(out.reshape(len(quantiles), horizon, s).transpose(0, 2, 1))

    def _experts_at(self, y: np.ndarray, anchor: int, horizon: int, quantiles, ctx: Context,
                    rows: list[int] | None = None) -> np.ndarray:
        """Every expert's quantiles ``[E, L, S, H]`` with data up to ``anchor``; GBM first.
        ``rows`` keeps only those levels (the GBM's trees are the cost of a replay)."""
        past = y[:, :anchor + 1]
        last = self.last.predict(past, horizon, quantiles, ctx).quantiles
        auto = self.autopilot.predict(past, horizon, quantiles, ctx).quantiles
        daily = yesterday_upper(past, auto, quantiles, ctx, tail=self.tail)
        if rows is None:
            return np.stack([self._gbm_at(self.gbm, y, anchor, horizon, quantiles, ctx), last, auto, daily])
        gbm = self._gbm_at(self.gbm, y, anchor, horizon, [quantiles[i] for i in rows], ctx)
        return np.stack([gbm, last[rows], auto[rows], daily[rows]])

    def predict(self, history: np.ndarray, horizon: int, quantiles: Sequence[float],
                ctx: Context) -> Forecast:
        """Each (series, selected level) from the expert with the lowest pinball loss
        over the replayed anchors of this history; the other levels from the GBM."""
        y = check_request(self.name, history, horizon, quantiles, self.min_steps(ctx))
        if not self.fitted:
            raise ForecastError(f"{self.name}: predict before fit; call fit on a history first")
        check_fitted(self.name, self.gbm.models, self.gbm.horizon, self.gbm.levels, horizon, quantiles)
        levels = list(quantiles)
        t = y.shape[1]
        stride = self.stride or horizon
        n_back = int(self.trail_s / ctx.interval_s) // stride
        earliest = self.min_steps(ctx) - 1
        anchors = [a for a in range(t - 1 - horizon, t - 1 - horizon - n_back * stride, -stride) if a >= earliest]
        if self._replays_of is not self.gbm.models:  # refitted (here or directly): old replays are no use
            self._replays, self._replays_of = {}, self.gbm.models
        self._kept = {}
        now = self._experts_at(y, t - 1, horizon, quantiles, ctx)  # [E, L, S, H]
        pick = np.zeros(now.shape[1:3], dtype=np.int64)  # [L, S]: the GBM unless selected
        chosen = [i for i, lv in enumerate(levels) if lv == 0.5 or lv >= self.tail - 1e-9]
        if anchors and chosen:
            loss = np.zeros((now.shape[0], len(chosen), now.shape[2]))  # [E, chosen, S]
            sub = tuple(levels[i] for i in chosen)
            for a in anchors:  # a loop over past anchors; every call covers the fleet
                past = self._experts_at(y, a, horizon, quantiles, ctx, rows=chosen)
                actual = y[:, a + 1:a + 1 + horizon]
                for j, lv in enumerate(sub):
                    loss[:, j] += pinball_loss(actual[None], past[:, j], lv).mean(axis=2)
            pick[chosen] = np.argmin(loss, axis=0)  # first (the GBM) on ties
        self._replays, self._kept = self._kept, {}  # keep what this predict used, drop the rest
        q = np.take_along_axis(now, pick[None, :, :, None], axis=0)[0]
        q = sort_quantiles(q)
        mean = q[levels.index(0.5)] if 0.5 in levels else q.mean(axis=0)
        return Forecast(mean, tuple(quantiles), q)


register(SelectQuantile.name, SelectQuantile)
