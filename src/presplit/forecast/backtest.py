"""Rolling-origin evaluation of registered forecasters.

Origins run from ``history`` to the end of the trace every ``step`` steps; at
each origin a model sees only the last ``history`` steps before it (so a
single PlanetLab day works with a few hours of history, and a week with a
day or two).  Models are refitted every ``refit`` steps on that same window,
never on anything at or after the origin, so nothing leaks from the future;
``predict`` at every origin uses the newest window.

Which models run by default: every registered model but the slow ones in
:data:`SLOW_MODELS` (:func:`default_models`); those run when named
(``--models gbm-quantile`` or ``--models default,select-quantile``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from presplit.forecast import registry
from presplit.forecast.base import Context, ForecastError, Forecaster, fit_predict
from presplit.forecast.metrics import accuracy, naive_scale, overload
from presplit.forecast.sharding import forecast_sharded

LEVELS = (0.025, 0.1, 0.5, 0.9, 0.95, 0.975, 0.99)

# Opt-in: too slow for a default backtest.  Measured on the bundled Bitbrains
# week (427 VMs x 2016 steps, CPU, 120 origins, 2-day windows, daily refits),
# whole command on a 2-core machine shared with other jobs (docs/benchmarks.md
# section 5): the default set (every other model) takes 13-28 s; each of
# these takes minutes, so they run only when named.
SLOW_MODELS = {
    "gbm-quantile": "7 LightGBM quantile models refitted daily: 2-5 min on the week",
    "stack-quantile": "LightGBM on the baselines' forecasts: 4-9 min on the week",
    "select-quantile": "replays the GBM at 48 past anchors per forecast: 5-9 min on the week",
}

Progress = Callable[[str, int, int], None]
"""``progress(model, origins_done, origins_total)``: called as each model starts (0 done) and after each origin."""


def default_models() -> list[str]:
    """Every registered model except :data:`SLOW_MODELS`, in registration order."""
    return [n for n in registry.names() if n not in SLOW_MODELS]


def resolve_models(text: str | None) -> list[str]:
    """``--models``: comma-separated names; ``default`` stands for :func:`default_models` and ``all`` for every
    registered model (slow ones included).  Empty or ``None`` is the default set; duplicates are dropped."""
    known = registry.names()
    items = [t.strip() for t in (text or "").split(",") if t.strip()] or ["default"]
    unknown = [t for t in items if t not in known and t not in ("default", "all")]
    if unknown:
        raise ForecastError(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(known)} "
                            "(or 'default': all but the slow ones, 'all': every one)")
    out: list[str] = []
    for item in items:
        for n in default_models() if item == "default" else known if item == "all" else [item]:
            if n not in out:
                out.append(n)
    return out


@dataclass(frozen=True)
class BacktestSpec:
    horizon: int = 12
    history: int = 72
    start: int | None = None  # first origin; windows grow until they reach `history`
    step: int = 12
    refit: int = 36
    threshold: float = 0.8
    lead_steps: int = 3
    alarm_level: float = 0.95
    levels: tuple[float, ...] = LEVELS

    def validate(self, n_steps: int) -> list[int]:
        for k in ("horizon", "history", "step", "refit", "lead_steps"):
            if getattr(self, k) <= 0:
                raise ForecastError(f"backtest: {k} must be positive, got {getattr(self, k)}")
        if self.lead_steps > self.horizon:
            raise ForecastError(f"backtest: lead of {self.lead_steps} steps exceeds the horizon of {self.horizon}")
        if self.alarm_level not in self.levels:
            raise ForecastError(f"backtest: alarm quantile {self.alarm_level} is not among {self.levels}")
        if self.start is not None and self.start <= 1:
            raise ForecastError(f"backtest: the first origin must be after step 1, got {self.start}")
        origins = list(range(self.first_origin, n_steps - self.horizon + 1, self.step))
        if not origins:
            raise ForecastError(
                f"backtest: too little history: the trace has {n_steps} steps, but a first origin "
                f"at step {self.first_origin} plus a horizon of {self.horizon} needs at least "
                f"{self.first_origin + self.horizon}")
        return origins

    @property
    def first_origin(self) -> int:
        return self.history if self.start is None else self.start

    @property
    def shortest_window(self) -> int:
        return min(self.first_origin, self.history)


@dataclass
class ModelResult:
    model: str
    metrics: dict[str, float] = field(default_factory=dict)
    skipped: str | None = None
    # kept for plotting: forecasts at every origin
    mean: np.ndarray | None = None
    quants: np.ndarray | None = None

    def row(self) -> dict:
        out = {"model": self.model, **self.metrics}
        if self.skipped:
            out["skipped"] = self.skipped
        return out


def run_model(model: Forecaster, y: np.ndarray, origins: list[int], spec: BacktestSpec,
              ctx: Context, client=None, *, scale: float | None = None,
              progress: Progress | None = None) -> ModelResult:
    """One model over all origins; with a Dask ``client`` each predict is sharded
    over its workers (same numbers, see :mod:`presplit.forecast.sharding`).

    ``scale`` is the naive MAE the losses are divided by (:func:`naive_scale`;
    computed here when not given, :func:`backtest` computes it once for all
    models); ``progress`` is told each origin done."""
    need = model.min_steps(ctx)
    if need > spec.shortest_window:
        return ModelResult(model.name, skipped=f"needs {need} steps of history, the first window "
                                               f"has {spec.shortest_window}")
    s = y.shape[0]
    n_o = len(origins)
    if progress:
        progress(model.name, 0, n_o)
    mean = np.empty((n_o, s, spec.horizon))  # [O, S, H]
    q = np.empty((len(spec.levels), n_o, s, spec.horizon))  # [L, O, S, H]
    fit_s = pred_s = 0.0
    fits = 0
    last_fit = None
    for i, o in enumerate(origins):  # a loop over origins; every call covers the whole fleet
        lo = max(0, o - spec.history)
        window = y[:, lo:o]
        wctx = Context(ctx.interval_s, ctx.first_step + lo)
        t0 = time.perf_counter()
        if client is not None:
            if model.refit_each_tick or last_fit is None or o - last_fit >= spec.refit:
                model.fit(window, spec.horizon, spec.levels, wctx)
                fits, last_fit = fits + 1, o
            fc = forecast_sharded(model, window, spec.horizon, spec.levels, wctx, client, fit=False)
            pred_s += time.perf_counter() - t0
        elif model.refit_each_tick:  # cheap models: calibrated afresh at every origin, one pass
            fc = fit_predict(model, window, spec.horizon, spec.levels, wctx)
            pred_s += time.perf_counter() - t0
        else:
            if last_fit is None or o - last_fit >= spec.refit:
                model.fit(window, spec.horizon, spec.levels, wctx)
                fits += 1
                last_fit = o
                fit_s += time.perf_counter() - t0
                t0 = time.perf_counter()
            fc = model.predict(window, spec.horizon, spec.levels, wctx)
            pred_s += time.perf_counter() - t0
        mean[i] = fc.mean
        q[:, i] = fc.quantiles
        if progress:
            progress(model.name, i + 1, n_o)
    actual = actuals(y, origins, spec.horizon)
    if scale is None:
        scale = naive_scale(y, origins, spec.history)
    m = accuracy(actual, mean, q, spec.levels, scale)
    m.update(overload(y, origins, q[list(spec.levels).index(spec.alarm_level)], spec.threshold,
                      spec.lead_steps, ctx.interval_s))
    m["fit_series_per_s"] = s * fits / fit_s if fit_s > 0 else float("nan")  # nan: fitted inside predict
    m["predict_series_per_s"] = s * n_o / pred_s if pred_s > 0 else float("inf")
    m["series_per_s"] = s * n_o / (fit_s + pred_s) if fit_s + pred_s > 0 else float("inf")
    m["seconds"] = fit_s + pred_s  # fitting and forecasting only (not the metrics)
    return ModelResult(model.name, m, mean=mean, quants=q)


def actuals(y: np.ndarray, origins: Sequence[int], horizon: int) -> np.ndarray:
    """What happened after each origin: ``[O, S, H]``."""
    idx = np.asarray(origins)[:, None] + np.arange(horizon)[None, :]  # [O, H]
    return np.ascontiguousarray(y[:, idx].transpose(1, 0, 2))  # the layout np.stack gave: same sums


def backtest(y: np.ndarray, models: Sequence[str], spec: BacktestSpec,
             ctx: Context | None = None, progress: Progress | None = None,
             client=None) -> tuple[list[int], list[ModelResult]]:
    """Evaluate each named model on ``y[series, time]``; returns origins and results.

    ``progress(model, origins_done, origins_total)`` is called as each model
    starts and after each of its origins (a skipped model reports nothing)."""
    ctx = ctx or Context()
    y = np.asarray(y, dtype=np.float64)
    if y.ndim != 2:
        raise ForecastError(f"backtest: series must be 2-D [series, time], got shape {y.shape}")
    if not np.isfinite(y).all():
        raise ForecastError("backtest: the series contain NaN or infinite values; fill gaps first")
    origins = spec.validate(y.shape[1])
    instances = [registry.create(n) for n in models]  # unknown names fail before any work
    scale = naive_scale(y, origins, spec.history)  # the same for every model
    results = []
    for model in instances:
        results.append(run_model(model, y, origins, spec, ctx, client, scale=scale, progress=progress))
    return origins, results
