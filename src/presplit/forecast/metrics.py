"""Accuracy and decision metrics of a rolling-origin backtest.

Conventions (the tests compute them by hand):

* origin ``o`` sees ``y[:, :o]``; forecast step ``h`` (0-based) is for time
  ``o + h`` and has a lead of ``h + 1`` steps;
* MASE and pinball losses are divided by one number, the in-sample lag-1
  naive MAE pooled over every series and origin (Hyndman & Koehler 2006 scale
  each series separately, which explodes on idle guests whose history is
  constant);
* an overload event is a step where a series crosses above the threshold;
  it is caught when some forecast with lead >= L steps put the alarm quantile
  above the threshold for that step; a false alarm is a run of consecutive
  alarmed steps on which the series stayed at or below the threshold.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def pinball_loss(y: np.ndarray, q: np.ndarray, level: float) -> np.ndarray:
    """Element-wise pinball (quantile) loss of forecast ``q`` at ``level``."""
    d = y - q
    return np.maximum(level * d, (level - 1.0) * d)


def pinball(y: np.ndarray, q: np.ndarray, level: float) -> float:
    """Mean pinball (quantile) loss of forecast ``q`` at ``level``."""
    return float(np.mean(pinball_loss(y, q, level)))


def naive_scale(y: np.ndarray, origins: Sequence[int], window: int) -> float:
    """In-sample lag-1 naive MAE, pooled over all series and origins."""
    total, count = 0.0, 0
    for o in origins:
        d = np.abs(np.diff(y[:, max(0, o - window):o], axis=1))
        total += float(d.sum())
        count += d.size
    return total / count if count else float("nan")


def accuracy(actual: np.ndarray, mean: np.ndarray, quants: np.ndarray,
             levels: Sequence[float], scale: float) -> dict[str, float]:
    """``actual`` and ``mean`` are ``[O, S, H]``; ``quants`` is ``[L, O, S, H]``."""
    levels = list(levels)
    mae = float(np.mean(np.abs(actual - mean)))
    out = {"mae": mae, "mase": mae / scale if scale > 0 else float("nan")}
    for lv in (0.5, 0.9, 0.95, 0.99):
        if lv in levels:
            pl = pinball(actual, quants[levels.index(lv)], lv)
            out[f"pinball_{lv:g}"] = pl / scale if scale > 0 else float("nan")
    for cov, lo, hi in ((80, 0.1, 0.9), (95, 0.025, 0.975)):
        if lo in levels and hi in levels:
            inside = (actual >= quants[levels.index(lo)]) & (actual <= quants[levels.index(hi)])
            out[f"coverage_{cov}"] = float(np.mean(inside))
    return out


def overload(y: np.ndarray, origins: Sequence[int], upper: np.ndarray, threshold: float,
             min_lead_steps: int, interval_s: int) -> dict[str, float]:
    """Recall of overload onsets, false alarms per series-day and mean lead time.

    ``y`` is the full ``[S, T]`` actual series; ``upper`` is the alarm quantile
    ``[O, S, H]`` issued at each origin.
    """
    s_count, t_count = y.shape
    horizon = upper.shape[2]
    best_lead = np.zeros((s_count, t_count), dtype=np.int64)
    covered = np.zeros(t_count, dtype=bool)
    for i, o in enumerate(origins):  # a loop over origins, not guests
        for h in range(min_lead_steps - 1, horizon):
            t = o + h
            if t >= t_count:
                break
            covered[t] = True
            hit = upper[i, :, h] > threshold
            best_lead[:, t] = np.where(hit, np.maximum(best_lead[:, t], h + 1), best_lead[:, t])
    over = y > threshold
    onset = over.copy()
    onset[:, 1:] &= ~over[:, :-1]
    onset &= covered[None, :]
    events = int(onset.sum())
    caught = onset & (best_lead > 0)
    false_flag = (best_lead > 0) & ~over & covered[None, :]
    runs = false_flag.copy()
    runs[:, 1:] &= ~false_flag[:, :-1]
    days = s_count * covered.sum() * interval_s / 86400.0
    return {
        "overload_events": events,
        "overload_recall": caught.sum() / events if events else float("nan"),
        "false_alarms_per_day": float(runs.sum() / days) if days else float("nan"),
        "lead_time_min": float(best_lead[caught].mean() * interval_s / 60.0) if caught.any() else float("nan"),
    }
