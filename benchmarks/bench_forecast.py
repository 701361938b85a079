"""Throughput of the online forecasting tier, and statsforecast's for a comparable model.

    python benchmarks/bench_forecast.py [--guests 10000] [--steps 288] [--horizon 12]

Prints series per second for one control tick of ``online-ses`` (calibrate
and forecast a mean plus 7 quantiles for every guest, 5-min steps, one day
of history), the same for the cheapest baselines, and - if statsforecast is
installed (``pip install statsforecast``; not a dependency) - for its
``AutoETS(model="ANN")`` (simple exponential smoothing with an optimised
alpha and analytic 80/95 % intervals) on the same data, measured the same way.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

from presplit.forecast import Context, create
from presplit.forecast.base import fit_predict

LEVELS = (0.025, 0.1, 0.5, 0.9, 0.95, 0.975, 0.99)


def fleet(guests: int, steps: int, seed: int = 0) -> np.ndarray:
    """Guests with a daily wave, a random level and noise, clipped to [0, 1]."""
    rng = np.random.default_rng(seed)
    t = np.arange(steps)
    level = rng.uniform(0.05, 0.6, (guests, 1))
    wave = 0.1 * np.sin(2 * np.pi * t / 288 + rng.uniform(0, 6.3, (guests, 1)))
    return np.clip(level + wave + 0.05 * rng.standard_normal((guests, steps)), 0, 1)


def time_model(name: str, y: np.ndarray, horizon: int, repeat: int = 5) -> float:
    model = create(name)
    fit_predict(model, y, horizon, LEVELS, Context())  # warm up
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fit_predict(model, y, horizon, LEVELS, Context())
        best = min(best, time.perf_counter() - t0)
    return best


def time_statsforecast(y: np.ndarray, horizon: int) -> float | None:
    try:
        import pandas as pd
        from statsforecast import StatsForecast
        from statsforecast.models import AutoETS
    except ImportError:
        return None
    g, t = y.shape
    df = pd.DataFrame({"unique_id": np.repeat(np.arange(g), t),
                       "ds": np.tile(np.arange(t), g), "y": y.ravel()})
    sf = StatsForecast(models=[AutoETS(model="ANN", season_length=1)], freq=1, n_jobs=os.cpu_count() or 1)
    sf.forecast(df=df.iloc[: t * 10], h=horizon, level=[80, 95])  # warm up
    t0 = time.perf_counter()
    sf.forecast(df=df, h=horizon, level=[80, 95])
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--guests", type=int, default=10_000)
    ap.add_argument("--steps", type=int, default=288)
    ap.add_argument("--horizon", type=int, default=12)
    ap.add_argument("--sf-guests", type=int, default=1000, help="statsforecast is slower: fewer series")
    a = ap.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, numpy {np.__version__}")
    y = fleet(a.guests, a.steps)
    print(f"fleet: {a.guests} guests x {a.steps} steps of history, horizon {a.horizon}, "
          f"{len(LEVELS)} quantiles")
    for name in ("online-ses", "baseline-window-quantile-1h", "baseline-autopilot-12h", "baseline-last"):
        s = time_model(name, y, a.horizon)
        print(f"  {name:30s} {s * 1000:8.1f} ms per tick  {a.guests / s:12,.0f} series/s")
    sf = time_statsforecast(y[: a.sf_guests], a.horizon)
    if sf is None:
        print("  statsforecast not installed: pip install statsforecast for the comparison")
    else:
        print(f"  {'statsforecast AutoETS(ANN)':30s} {sf * 1000:8.1f} ms for {a.sf_guests} series "
              f"{a.sf_guests / sf:12,.0f} series/s")


if __name__ == "__main__":
    main()
