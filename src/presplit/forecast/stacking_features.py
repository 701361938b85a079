"""Inputs of the stacked quantile model: the baselines' own forecasts, per series normalised.

For every (series, anchor) pair this computes what the strong baselines would
have forecast at that anchor -- window quantiles over 1 h, 3 h and 1 day,
Autopilot's decayed percentiles with 1 h and 12 h half-lives, the last values,
window means and spreads -- each divided by the series' own *scale* (its mean
absolute value over up to a day before the anchor, plus a small fleet-wide
floor).  Dividing makes idle and busy guests look alike to one global model;
the scale is kept as a sample weight and as a (fleet-relative, log) feature,
so the pooled loss the backtest reports is what the model minimises.

Everything at an anchor ``t`` uses ``y[s, :t+1]`` only, so training rows can be
built from any anchor of the history window whose targets ``t+1 .. t+H`` are
still inside it, and the forecast at the end of the window uses the same code.
A window the history cannot fill is NaN (LightGBM's missing value).
"""

from __future__ import annotations

import numpy as np

from presplit.forecast.base import Context

LAGS = 4
WINDOWS_S = (3600, 3 * 3600, 86400)
WINDOW_LEVELS = (0.1, 0.5, 0.9, 0.95, 1.0)
# Autopilot's recommenders: half-life, how many half-lives of history they read
DECAY = ((3600, 8), (12 * 3600, 4))
DECAY_LEVELS = (0.5, 0.9, 0.95, 0.99)
SCALE_S = 86400


def steps(seconds: float, ctx: Context) -> int:
    return max(2, round(seconds / ctx.interval_s))


def _windows(y: np.ndarray, series: np.ndarray, anchors: np.ndarray, w: int):
    """Values ``[N, w]`` ending at each anchor (oldest first) and their validity."""
    idx = anchors[:, None] - np.arange(w)[None, ::-1]
    valid = idx >= 0
    return y[series[:, None], np.maximum(idx, 0)], valid


def series_scale(y: np.ndarray, series: np.ndarray, anchors: np.ndarray, floor: float,
                 ctx: Context) -> np.ndarray:
    """Mean |y| over up to a day before each anchor, plus the fleet floor: ``[N]``."""
    w = min(steps(SCALE_S, ctx), int(anchors.max()) + 1)
    win, valid = _windows(y, series, anchors, w)
    return np.abs(np.where(valid, win, 0.0)).sum(axis=1) / valid.sum(axis=1) + floor


def decayed_quantiles(y: np.ndarray, series: np.ndarray, anchors: np.ndarray, half_steps: float,
                      w: int, levels) -> np.ndarray:
    """Autopilot's decayed percentile (same rule as ``baseline-autopilot-*``) at each anchor,
    over at most ``w`` steps: ``[N, len(levels) + 1]``, the last column the decayed mean."""
    w = min(w, int(anchors.max()) + 1)
    win, valid = _windows(y, series, anchors, w)
    age = np.arange(w - 1, -1, -1, dtype=np.float64)
    wt = np.where(valid, 0.5 ** (age / half_steps)[None, :], 0.0)
    vals = np.where(valid, win, np.inf)
    order = np.argsort(vals, axis=1)
    ys = np.take_along_axis(vals, order, axis=1)
    cw = np.cumsum(np.take_along_axis(wt, order, axis=1), axis=1)
    total = cw[:, -1:].copy()
    cw /= total
    n = valid.sum(axis=1)
    out = []
    for q in levels:
        i = np.minimum((cw < q).sum(axis=1), n - 1)
        out.append(np.take_along_axis(ys, i[:, None], axis=1)[:, 0])
    out.append((np.where(valid, win, 0.0) * wt).sum(axis=1) / total[:, 0])
    return np.stack(out, axis=1)


def window_stats(y: np.ndarray, series: np.ndarray, anchors: np.ndarray, w: int) -> np.ndarray:
    """Mean, std and the WINDOW_LEVELS quantiles of the last ``w`` steps: ``[N, 2 + Q]``;
    NaN where the window reaches before the history."""
    cols = 2 + len(WINDOW_LEVELS)
    if w > y.shape[1]:
        return np.full((len(anchors), cols), np.nan)
    win, valid = _windows(y, series, anchors, w)
    srt = np.sort(win, axis=1)
    block = [win.mean(axis=1), win.std(axis=1)]
    block += [srt[:, min(w - 1, int(round(q * (w - 1))))] for q in WINDOW_LEVELS]
    out = np.stack(block, axis=1)
    out[~valid[:, 0]] = np.nan
    return out


def feature_names() -> list[str]:
    names = ["h", "log_scale"] + [f"lag{k}" for k in range(LAGS)]
    for w in WINDOWS_S:
        names += [f"w{w}_mean", f"w{w}_std"] + [f"w{w}_q{q:g}" for q in WINDOW_LEVELS]
    for hl, _ in DECAY:
        names += [f"ap{hl}_q{q:g}" for q in DECAY_LEVELS] + [f"ap{hl}_mean"]
    return names + ["season", "season_max", "tod_sin", "tod_cos"]


def pair_features(y: np.ndarray, series: np.ndarray, anchors: np.ndarray, floor: float,
                  fleet_scale: float, ctx: Context) -> tuple[np.ndarray, np.ndarray]:
    """Horizon-free features ``[N, F0]`` (already divided by the scale) and the scale ``[N]``."""
    scale = series_scale(y, series, anchors, floor, ctx)
    cols = [np.log(scale / fleet_scale)]
    raw = [y[series, np.maximum(anchors - k, 0)] for k in range(LAGS)]
    for w in WINDOWS_S:
        raw.extend(window_stats(y, series, anchors, steps(w, ctx)).T)
    for hl, n_half in DECAY:
        hs = hl / ctx.interval_s
        raw.extend(decayed_quantiles(y, series, anchors, hs, int(n_half * hs), DECAY_LEVELS).T)
    cols.extend(r / scale for r in raw)
    return np.stack(cols, axis=1), scale


def step_features(y: np.ndarray, series: np.ndarray, anchors: np.ndarray, scale: np.ndarray,
                  h: int, ctx: Context) -> np.ndarray:
    """Features of step ``h`` (1-based): the same time a day earlier (value and
    25-min neighbourhood maximum) and the time of day once the history holds two days."""
    d = ctx.steps_per_day
    n = len(anchors)
    lag = anchors + h - d
    ok = lag - 2 >= 0
    safe = np.where(ok, lag, 2)
    hi = np.minimum(safe[:, None] + np.arange(-2, 3)[None, :], anchors[:, None])
    season = np.where(ok, y[series, safe] / scale, np.nan)
    season_max = np.where(ok, y[series[:, None], hi].max(axis=1) / scale, np.nan)
    if y.shape[1] >= 2 * d:
        phase = 2 * np.pi * ((ctx.first_step + anchors + h) % d) / d
        tod = [np.sin(phase), np.cos(phase)]
    else:
        tod = [np.full(n, np.nan)] * 2
    return np.stack([season, season_max] + tod, axis=1)


def design(y: np.ndarray, series: np.ndarray, anchors: np.ndarray, horizon: int, floor: float,
           fleet_scale: float, ctx: Context) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows for every (pair, h), h-major: X ``[H*N, F]``, the scale ``[H*N]`` and
    the horizon-free block ``[N, F0]`` (for base forecasts)."""
    base, scale = pair_features(y, series, anchors, floor, fleet_scale, ctx)
    blocks = []
    for h in range(1, horizon + 1):  # a loop over horizon steps, not guests
        hcol = np.full((len(anchors), 1), float(h))
        blocks.append(np.concatenate([hcol, base, step_features(y, series, anchors, scale, h, ctx)],
                                     axis=1))
    return np.concatenate(blocks), np.tile(scale, horizon), base
