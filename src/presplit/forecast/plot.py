"""PNG pictures of forecasts, so a person can look at what a model does.

matplotlib's Agg backend writes files without a display; it is imported
only here, so the rest of the package never pays for it.
"""

from __future__ import annotations

import numpy as np

from presplit.forecast.base import Context, Forecaster, ForecastError, fit_predict

LEVELS = (0.025, 0.1, 0.5, 0.9, 0.975)


def _figure(n: int):
    from presplit.extras import require

    require("report", "matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(n, 1, figsize=(10, 2.4 * n), squeeze=False, sharex=True)
    return fig, axes[:, 0]


def _hours(steps: np.ndarray, ctx: Context) -> np.ndarray:
    return steps * ctx.interval_s / 3600.0


def plot_forecast(path: str, model: Forecaster, y: np.ndarray, lo: int, origin: int, horizon: int,
                  ctx: Context, guests: int = 4, title: str = "") -> None:
    """One forecast from ``origin`` for the busiest ``guests`` series, with the outcome."""
    if not 0 < origin < y.shape[1]:
        raise ForecastError(f"plot: origin {origin} is outside the trace of {y.shape[1]} steps")
    hist = y[:, lo:origin]
    fc = fit_predict(model, hist, horizon, LEVELS, Context(ctx.interval_s, ctx.first_step + lo))
    pick = np.argsort(hist.mean(axis=1))[::-1][:guests]
    fig, axes = _figure(len(pick))
    t_hist = _hours(np.arange(lo, origin), ctx)
    t_fc = _hours(np.arange(origin, origin + horizon), ctx)
    end = min(y.shape[1], origin + horizon)
    for ax, s in zip(axes, pick):
        ax.plot(t_hist, hist[s], color="0.3", lw=0.8, label="history")
        ax.plot(_hours(np.arange(origin, end), ctx), y[s, origin:end], color="k", lw=1.2, label="outcome")
        ax.fill_between(t_fc, fc.quantile(0.025)[s], fc.quantile(0.975)[s], color="C0", alpha=0.2, label="95 %")
        ax.fill_between(t_fc, fc.quantile(0.1)[s], fc.quantile(0.9)[s], color="C0", alpha=0.35, label="80 %")
        ax.plot(t_fc, fc.mean[s], color="C0", lw=1.2, label="forecast")
        ax.set_ylabel(f"series {s}")
    axes[0].legend(loc="upper left", fontsize=7, ncol=5)
    axes[0].set_title(f"{title} - {model.name}, origin at {t_fc[0]:.1f} h")
    axes[-1].set_xlabel("hours since trace start")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def plot_backtest(path: str, y: np.ndarray, origins: list[int], result, spec, ctx: Context,
                  guests: int = 4, title: str = "") -> None:
    """Every origin's forecast of a backtest, stitched, for the busiest series."""
    levels = list(spec.levels)
    pick = np.argsort(y.mean(axis=1))[::-1][:guests]
    fig, axes = _figure(len(pick))
    lo80, hi80 = levels.index(0.1), levels.index(0.9)
    for ax, s in zip(axes, pick):
        ax.plot(_hours(np.arange(y.shape[1]), ctx), y[s], color="k", lw=0.7, label="actual")
        for i, o in enumerate(origins):
            t = _hours(np.arange(o, o + spec.horizon), ctx)
            ax.fill_between(t, result.quants[lo80, i, s], result.quants[hi80, i, s], color="C0", alpha=0.3,
                            label="80 %" if i == 0 else None)
            ax.plot(t, result.mean[i, s], color="C0", lw=0.9, label="forecast" if i == 0 else None)
        ax.set_ylabel(f"series {s}")
    axes[0].legend(loc="upper left", fontsize=7)
    axes[0].set_title(f"{title} - {result.model}")
    axes[-1].set_xlabel("hours since trace start")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
