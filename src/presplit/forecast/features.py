"""Lag, rolling-window and calendar features of a fleet history, for the global model.

One row per (series, anchor, horizon step): everything is relative to the
series' last-hour mean (its *level*) and divided by one fleet-wide scale, so a
single model serves idle and busy guests and every resource, while series keep
the weight they have in the pooled error metrics.  Windows are wall-clock
durations (1 h, 3 h, 1 day) turned into steps by the sampling interval; a
window or a seasonal lag the history cannot fill is NaN, which LightGBM treats
as missing (so a single day of history simply has no daily features).
"""

from __future__ import annotations

import numpy as np

from presplit.forecast.base import Context

LAGS = 6
WINDOWS_S = (3600, 3 * 3600, 86400)
WINDOW_QUANTILES = (0.1, 0.5, 0.9, 1.0)
# The longest view: everything the history holds up to a day back, however
# short; tail quantiles of a guest's own past are what the upper forecast
# quantiles lean on most (the decayed-percentile baseline is hard to beat).
LONG_S = 86400
LONG_QUANTILES = (0.5, 0.9, 0.95, 0.99, 1.0)


def window_steps(ctx: Context) -> list[int]:
    return [max(2, round(w / ctx.interval_s)) for w in WINDOWS_S]


def level_steps(ctx: Context) -> int:
    return window_steps(ctx)[0]


def fleet_scale(y: np.ndarray) -> float:
    """One scale for the whole fleet: mean absolute usage (1 if all zero)."""
    s = float(np.mean(np.abs(y)))
    return s if s > 0 else 1.0


def feature_names(ctx: Context) -> list[str]:
    names = ["level", "h"] + [f"lag{k}" for k in range(LAGS)]
    for w in WINDOWS_S:
        names += [f"w{w}_mean", f"w{w}_std"] + [f"w{w}_q{q:g}" for q in WINDOW_QUANTILES]
    names += ["long_mean", "long_std", "long_n"] + [f"long_q{q:g}" for q in LONG_QUANTILES]
    return names + ["season", "season_mean", "tod_sin", "tod_cos"]


def anchor_features(y: np.ndarray, series: np.ndarray, anchors: np.ndarray, scale: float,
                    ctx: Context) -> tuple[np.ndarray, np.ndarray]:
    """Horizon-free features of each (series, anchor) pair: ``[N, F0]`` and the level ``[N]``."""
    lw = level_steps(ctx)
    idx = anchors[:, None] - np.arange(lw)[None, :]
    level = y[series[:, None], idx].mean(axis=1)
    cols = [level / scale]
    for k in range(LAGS):
        cols.append((y[series, anchors - k] - level) / scale)
    for w in window_steps(ctx):
        if w > y.shape[1]:  # the history cannot fill this window anywhere
            cols.extend(np.full((2 + len(WINDOW_QUANTILES), len(anchors)), np.nan))
            continue
        ok = anchors - w + 1 >= 0
        start = np.where(ok, anchors - w + 1, 0)
        win = y[series[:, None], start[:, None] + np.arange(w)[None, :]]  # [N, w]
        srt = np.sort(win, axis=1)
        block = [win.mean(axis=1) - level, win.std(axis=1)]
        block += [srt[:, min(w - 1, int(round(q * (w - 1))))] - level for q in WINDOW_QUANTILES]
        block = np.stack(block, axis=1) / scale
        block[~ok] = np.nan
        cols.extend(block.T)
    long = long_window(y, series, anchors, level, ctx)
    long[:, [0, 1] + list(range(3, long.shape[1]))] /= scale  # not the length (column 2)
    cols.extend(long.T)
    return np.stack(cols, axis=1), level


def long_window(y: np.ndarray, series: np.ndarray, anchors: np.ndarray, level: np.ndarray,
                ctx: Context) -> np.ndarray:
    """Mean, std, length and quantiles of up to a day before each anchor: ``[N, 3 + Q]``.

    Windows have different lengths near the start of the history; they are
    padded with NaN, which sorts last, so each row's quantile index uses its own length.
    """
    w = min(y.shape[1], max(2, round(LONG_S / ctx.interval_s)))
    idx = anchors[:, None] - np.arange(w)[None, ::-1]
    valid = idx >= 0
    win = np.where(valid, y[series[:, None], np.maximum(idx, 0)], np.nan)
    n = valid.sum(axis=1)
    mean = np.nanmean(win, axis=1)
    std = np.sqrt(np.nanmean((win - mean[:, None]) ** 2, axis=1))
    srt = np.sort(win, axis=1)
    qs = [np.take_along_axis(srt, np.round(q * (n - 1)).astype(np.int64)[:, None], axis=1)[:, 0] - level
          for q in LONG_QUANTILES]
    return np.stack([mean - level, std, n.astype(np.float64)] + qs, axis=1)


def horizon_features(y: np.ndarray, series: np.ndarray, anchors: np.ndarray, level: np.ndarray,
                     scale: float, h: int, ctx: Context) -> np.ndarray:
    """Features that depend on the step ``h`` (1-based): ``[N, 5]``."""
    d = ctx.steps_per_day
    n = len(anchors)
    lag = anchors + h - d  # same time one day before the target
    ok = lag - 2 >= 0
    safe = np.where(ok, lag, 2)
    season = np.where(ok, (y[series, safe] - level) / scale, np.nan)
    around = y[series[:, None], safe[:, None] + np.arange(-2, 3)[None, :]].mean(axis=1)
    season_mean = np.where(ok, (around - level) / scale, np.nan)
    if y.shape[1] >= 2 * d:
        # time of day only once the history has seen every phase at least twice
        phase = 2 * np.pi * ((ctx.first_step + anchors + h) % d) / d
        tod = [np.sin(phase), np.cos(phase)]
    else:
        tod = [np.full(n, np.nan), np.full(n, np.nan)]
    return np.stack([np.full(n, float(h)), season, season_mean] + tod, axis=1)


def design(y: np.ndarray, series: np.ndarray, anchors: np.ndarray, horizon: int, scale: float,
           ctx: Context) -> tuple[np.ndarray, np.ndarray]:
    """Rows for every (pair, h) in h-major order: X ``[H*N, F]`` and level ``[H*N]``."""
    base, level = anchor_features(y, series, anchors, scale, ctx)
    blocks = []
    for h in range(1, horizon + 1):  # a loop over horizon steps, not guests
        hf = horizon_features(y, series, anchors, level, scale, h, ctx)
        blocks.append(np.concatenate([base[:, :1], hf[:, :1], base[:, 1:], hf[:, 1:]], axis=1))
    return np.concatenate(blocks), np.tile(level, horizon)
