"""PNG pictures of forecasts, so a person can look at what a model does.

:func:`plot_forecast` is a backtest-style picture of one forecast: the model
is fitted on the history before an origin and forecasts ``horizon`` steps; the
picture shows the last day before the origin and the horizon (shaded), the
forecast's median and central intervals, what actually happened after the
origin where the trace has it, and the overload threshold. A zoomed panel
beside each day shows the last hours and the horizon at a scale where the
forecast is readable.

Which guests: the informative ones (:func:`pick_guests`): those whose actual
demand goes over the threshold within the horizon, then those that went over
it in the last day, then the most variable ones; never merely the busiest (a
guest flat at 95 % says nothing about a forecaster). Guests are named by their
trace ids.

matplotlib's Agg backend writes files without a display; it is imported
only here, so the rest of the package never pays for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from presplit.forecast.base import Context, Forecaster, ForecastError, fit_predict

LEVELS = (0.05, 0.25, 0.5, 0.75, 0.95)
BANDS = ((0.05, 0.95, "forecast p05-p95"), (0.25, 0.75, "forecast p25-p75"))
HORIZON_SHADE = "#ececec"
ZOOM_HOURS = 3.0  # history shown in the zoomed panel, at least (and at least one horizon)

REASONS = ("goes over {t:g} within the horizon", "drops below {t:g} within the horizon",
           "crossed {t:g} in the last {h:g} h", "over {t:g} without crossing it", "high variance")
"""Why a guest was picked, best first (see :func:`pick_guests`)."""


@dataclass(frozen=True)
class ForecastPlot:
    """What :func:`plot_forecast` drew: guest rows, their labels and why they were picked, the x ranges
    (hours relative to the origin: 0 is the forecast time, the horizon ends at ``horizon_h``)."""

    path: str
    guests: tuple[int, ...]
    labels: tuple[str, ...]
    reasons: tuple[str, ...]
    xlim: tuple[float, float]
    zoom_xlim: tuple[float, float] | None
    horizon_h: float


def pick_guests(y: np.ndarray, origin: int, horizon: int, n: int, *, threshold: float | None = None,
                recent: int = 288, interval_s: int = 300) -> list[tuple[int, str]]:
    """The ``n`` most informative rows of ``y [guests, time]`` for a forecast made at ``origin``.

    A guest *crosses* the threshold where two consecutive steps lie on
    either side of it. Order, as in :data:`REASONS`: a crossing upwards within
    the horizon (from the last observed step through ``origin + horizon - 1``,
    as far as ``y`` has it: an overload to forecast), a crossing downwards
    only within it, a crossing in the ``recent`` steps before the origin,
    values over the threshold without a crossing, then the rest; within each
    group the most variable over the shown window first. Without a
    threshold, by variance only. Returns ``(row, reason)`` pairs.
    """
    y = np.asarray(y, dtype=np.float64)
    g, t = y.shape
    lo, hi = max(0, origin - recent), min(t, origin + horizon)
    var = np.nanvar(y[:, lo:hi], axis=1) if hi > lo else np.zeros(g)
    var = np.nan_to_num(var, nan=-1.0)
    group = np.full(g, 4)
    if threshold is not None:
        over = y > threshold

        def crossings(a: int, b: int) -> tuple[np.ndarray, np.ndarray]:
            """Upward and downward crossings between consecutive steps of a..b-1."""
            a = max(0, a)
            if b - a < 2:
                return np.zeros(g, bool), np.zeros(g, bool)
            before, after = over[:, a:b - 1], over[:, a + 1:b]
            return (~before & after).any(axis=1), (before & ~after).any(axis=1)

        up_ahead, down_ahead = crossings(origin - 1, hi)
        up_recent, down_recent = crossings(lo, origin)
        ever_over = over[:, lo:hi].any(axis=1)
        group = np.select([up_ahead, down_ahead, up_recent | down_recent, ever_over], [0, 1, 2, 3], 4)
    order = np.lexsort((np.arange(g), -var, group))[:n]
    hours = round((origin - lo) * interval_s / 3600, 1)
    return [(int(s), REASONS[int(group[s])].format(t=threshold or 0, h=hours)) for s in order]


def _matplotlib():
    from presplit.extras import require

    require("report", "matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _hours(steps: np.ndarray, ctx: Context) -> np.ndarray:
    return steps * ctx.interval_s / 3600.0


def plot_forecast(path: str, model: Forecaster, y: np.ndarray, lo: int, origin: int, horizon: int,
                  ctx: Context, guests: int = 4, title: str = "", *, threshold: float | None = 0.8,
                  guest_ids: Sequence[str] | None = None, unit: str = "", window: int | None = None
                  ) -> ForecastPlot:
    """One forecast made at ``origin`` (fitted on ``y[:, lo:origin]``), drawn for ``guests`` informative series.

    The day panel spans the last ``window`` steps before the origin (default
    one day, less if the trace is shorter) plus the horizon; the zoom panel the
    last few hours plus the horizon. Times are hours relative to the origin.
    Returns what was drawn (:class:`ForecastPlot`).
    """
    if not 0 < origin < y.shape[1]:
        raise ForecastError(f"plot: origin {origin} is outside the trace of {y.shape[1]} steps")
    if not 0 <= lo < origin:
        raise ForecastError(f"plot: history start {lo} must lie before the origin {origin}")
    day = ctx.steps_per_day if window is None else max(1, int(window))
    shown_lo = max(lo, origin - day)
    hist = y[:, lo:origin]
    fc = fit_predict(model, hist, horizon, LEVELS, Context(ctx.interval_s, ctx.first_step + lo))
    picked = pick_guests(y, origin, horizon, guests, threshold=threshold, recent=origin - shown_lo,
                         interval_s=ctx.interval_s)
    reasons = [r for _, r in picked]
    rows = [s for s, _ in picked]
    labels = [f"guest {guest_ids[s]}" if guest_ids is not None else f"series {s}" for s in rows]

    dt_h = ctx.interval_s / 3600.0
    horizon_h = horizon * ctx.interval_s / 3600.0
    rel = lambda steps: (np.asarray(steps) - origin + 1) * dt_h  # noqa: E731 -- last observed step at 0
    xlim = (-(origin - shown_lo) * ctx.interval_s / 3600.0, horizon_h)
    zoom_before = max(ZOOM_HOURS, horizon_h)
    zoom = (-zoom_before, horizon_h) if xlim[1] - xlim[0] > 2.0 * (zoom_before + horizon_h) else None

    plt = _matplotlib()
    from matplotlib.patches import Patch
    from matplotlib.ticker import MaxNLocator

    n = len(rows)
    ncols = 2 if zoom else 1
    fig, axes = plt.subplots(n, ncols, figsize=(12.5 if zoom else 10, 2.3 * n + 1.3), squeeze=False,
                             sharey="row", gridspec_kw={"width_ratios": [3, 1.2] if zoom else [1]})
    end = min(y.shape[1], origin + horizon)
    t_hist = rel(np.arange(shown_lo, origin))
    t_act = rel(np.arange(origin - 1, end))
    t_fc = np.concatenate([[0.0], rel(np.arange(origin, origin + horizon))])
    for row, (s, label, reason) in enumerate(zip(rows, labels, reasons)):
        last = y[s, origin - 1]
        for col in range(ncols):
            ax = axes[row, col]
            ax.axvspan(0, horizon_h, color=HORIZON_SHADE, zorder=0)
            ax.axvline(0, color="0.4", lw=0.8, ls="--", zorder=1)
            for (a, b, _), alpha in zip(BANDS, (0.25, 0.45)):
                ax.fill_between(t_fc, np.r_[last, fc.quantile(a)[s]], np.r_[last, fc.quantile(b)[s]],
                                color="C0", alpha=alpha, lw=0, zorder=2)
            ax.plot(t_fc, np.r_[last, fc.quantile(0.5)[s]], color="C0", lw=1.6, zorder=4)
            ax.plot(t_hist, y[s, shown_lo:origin], color="0.45", lw=0.8, zorder=3)
            if end > origin:
                ax.plot(t_act, y[s, origin - 1:end], color="k", lw=1.5, zorder=5)
            if threshold is not None:
                ax.axhline(threshold, color="C3", lw=1.0, ls=":", zorder=3)
            ax.set_xlim(*(xlim if col == 0 else zoom))
            ax.grid(alpha=0.3, lw=0.5)
            ax.tick_params(labelsize=8)
            ax.xaxis.set_major_locator(MaxNLocator(nbins=13 if col == 0 else 5, steps=[1, 2, 3, 6, 10]))
        top = max(float(np.nanmax(y[s, shown_lo:end])), float(np.nanmax(fc.quantile(0.95)[s])),
                  threshold if threshold is not None else 0.0)
        axes[row, 0].set_ylim(min(0.0, float(np.nanmin(y[s, shown_lo:end]))), top * 1.08 if top > 0 else 1.0)
        axes[row, 0].set_title(f"{label}  ({reason})", loc="left", fontsize=9)
        axes[row, 0].set_ylabel(unit or "demand", fontsize=8)
    if zoom:
        axes[0, 1].set_title(f"last {zoom_before:g} h and the horizon", fontsize=9)
    axes[-1, 0].set_xlabel("hours relative to the forecast origin (0: last observed step)", fontsize=9)
    if zoom:
        axes[-1, 1].set_xlabel("hours relative to the origin", fontsize=9)
    for ax in axes[:-1].flat:
        ax.tick_params(labelbottom=True)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color="0.45", lw=0.8, label="history"),
               Line2D([], [], color="k", lw=1.5, label="actual after the origin"),
               Line2D([], [], color="C0", lw=1.6, label="forecast median (p50)"),
               Patch(color="C0", alpha=0.45, lw=0, label=BANDS[1][2]),
               Patch(color="C0", alpha=0.25, lw=0, label=BANDS[0][2]),
               Patch(color=HORIZON_SHADE, label=f"horizon ({horizon} steps = {horizon_h:g} h)")]
    if threshold is not None:
        handles.append(Line2D([], [], color="C3", lw=1.0, ls=":", label=f"overload threshold {threshold:g}"))
    hours = lambda steps: round(steps * ctx.interval_s / 3600.0, 2)  # noqa: E731
    head = f"{title} - " if title else ""
    fig.suptitle(f"{head}{model.name}: forecast made {hours(origin):g} h into the trace, fitted on "
                 f"{hours(origin - lo):g} h of history", fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.56 / fig.get_figheight()))
    fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 1 - 0.28 / fig.get_figheight()),
               ncols=min(len(handles), 4), fontsize=8, frameon=False)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return ForecastPlot(str(path), tuple(rows), tuple(labels), tuple(reasons), xlim, zoom, horizon_h)


def plot_backtest(path: str, y: np.ndarray, origins: list[int], result, spec, ctx: Context,
                  guests: int = 4, title: str = "", *, guest_ids: Sequence[str] | None = None,
                  threshold: float | None = None) -> None:
    """Every origin's forecast of a backtest, stitched, for the most informative series.

    The series are picked as :func:`pick_guests` picks them over the evaluated
    span (above ``threshold`` there first, then the most variable).
    """
    levels = list(spec.levels)
    first = origins[0] if origins else 0
    span = (origins[-1] + spec.horizon - first) if origins else y.shape[1]
    pick = [s for s, _ in pick_guests(y, first, span, guests, threshold=threshold, recent=0)]
    plt = _matplotlib()
    fig, axes = plt.subplots(len(pick), 1, figsize=(10, 2.4 * len(pick)), squeeze=False, sharex=True)
    axes = axes[:, 0]
    lo80, hi80 = levels.index(0.1), levels.index(0.9)
    for ax, s in zip(axes, pick):
        ax.plot(_hours(np.arange(y.shape[1]), ctx), y[s], color="k", lw=0.7, label="actual")
        for i, o in enumerate(origins):
            t = _hours(np.arange(o, o + spec.horizon), ctx)
            ax.fill_between(t, result.quants[lo80, i, s], result.quants[hi80, i, s], color="C0", alpha=0.3,
                            label="80 %" if i == 0 else None)
            ax.plot(t, result.mean[i, s], color="C0", lw=0.9, label="forecast" if i == 0 else None)
        if threshold is not None:
            ax.axhline(threshold, color="C3", lw=0.9, ls=":", label=f"threshold {threshold:g}")
        ax.set_title(str(guest_ids[s]) if guest_ids is not None else f"series {s}", loc="left", fontsize=9)
    fig.suptitle(f"{title} - {result.model}: every origin's forecast" if title else result.model, fontsize=10)
    axes[-1].set_xlabel("hours since trace start")
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.45 / fig.get_figheight()))
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 1 - 0.25 / fig.get_figheight()),
               fontsize=8, ncols=4, frameon=False)
    fig.savefig(path, dpi=90)
    plt.close(fig)
