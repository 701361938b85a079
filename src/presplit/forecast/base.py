"""The forecaster contract and the value it returns.

A forecaster sees the fleet's history as one array ``[series, time]`` (or
``[guests, time, resources]``, which :func:`forecast_fleet` flattens into
series) and answers, for every series at once, a mean and the requested
quantiles over the next ``horizon`` steps.  The shape follows statsforecast's
``forecast(y, h, level)``: array in, arrays out, no per-guest objects.

Two calls, so a control loop can refit the expensive tier hourly or daily
while it predicts every tick:

* ``fit(history, horizon, quantiles, ctx)`` learns whatever the model keeps
  from the whole fleet (trees, a pooled residual shape); cheap models set
  ``refit_each_tick`` and are refitted before every forecast;
* ``predict(history, horizon, quantiles, ctx)`` forecasts from the end of
  ``history``, which may be newer than what ``fit`` saw.  Given the fitted
  state each series' forecast depends only on its own rows, so the fleet can
  be cut into shards (:mod:`presplit.forecast.sharding`) with identical results.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence, runtime_checkable

import numpy as np

from presplit.errors import InputError

STEPS_PER_DAY_5MIN = 288


class ForecastError(InputError):
    """Bad input to a forecaster or a backtest, with a message a person can act on."""


@dataclass(frozen=True)
class Context:
    """What a model may know besides the numbers: the sampling interval and
    the absolute step index of the first history column (for time of day)."""

    interval_s: int = 300
    first_step: int = 0

    @property
    def steps_per_day(self) -> int:
        return max(1, round(86400 / self.interval_s))


@dataclass(frozen=True)
class Forecast:
    """Mean ``[series, horizon]`` and quantiles ``[levels, series, horizon]``."""

    mean: np.ndarray
    levels: tuple[float, ...]
    quantiles: np.ndarray

    def quantile(self, level: float) -> np.ndarray:
        for i, q in enumerate(self.levels):
            if abs(q - level) < 1e-9:
                return self.quantiles[i]
        raise KeyError(f"quantile {level} was not requested; have {self.levels}")

    def interval(self, coverage: float) -> tuple[np.ndarray, np.ndarray]:
        """Central interval, e.g. ``coverage=0.8`` -> (q0.1, q0.9)."""
        a = (1.0 - coverage) / 2.0
        return self.quantile(round(a, 6)), self.quantile(round(1.0 - a, 6))


@runtime_checkable
class Forecaster(Protocol):
    name: str
    refit_each_tick: bool

    def min_steps(self, ctx: Context) -> int:
        """Fewest history steps ``predict`` accepts at this sampling interval."""
        ...

    def fit(self, history: np.ndarray, horizon: int, quantiles: Sequence[float],
            ctx: Context) -> "Forecaster": ...

    def predict(self, history: np.ndarray, horizon: int, quantiles: Sequence[float],
                ctx: Context) -> Forecast: ...


def check_fitted(name: str, models: dict, fitted_horizon: int, fitted_levels: Sequence[float], horizon: int,
                 quantiles: Sequence[float], *, exact_horizon: bool = False) -> None:
    """A model fitted per level and horizon can answer this request: it was fitted, for these levels and this far."""
    if not models:
        raise ForecastError(f"{name}: predict before fit; call fit on a history first")
    if horizon > fitted_horizon or (exact_horizon and horizon != fitted_horizon):
        raise ForecastError(f"{name}: fitted for a horizon of {fitted_horizon}, asked for {horizon}")
    missing = [q for q in quantiles if q not in models]
    if missing:
        raise ForecastError(f"{name}: fitted for levels {tuple(fitted_levels)}, asked for {missing}")


def check_request(name: str, history: np.ndarray, horizon: int, quantiles: Sequence[float],
                  min_history: int) -> np.ndarray:
    """Validate a request the same way for every model; returns history as float64 2-D."""
    if not isinstance(horizon, (int, np.integer)) or horizon <= 0:
        raise ForecastError(f"{name}: horizon must be a positive number of steps, got {horizon!r}")
    for q in quantiles:
        if not 0.0 < q < 1.0:
            raise ForecastError(f"{name}: quantile levels must lie strictly between 0 and 1, got {q!r}")
    y = np.asarray(history, dtype=np.float64)
    if y.ndim != 2:
        raise ForecastError(f"{name}: history must be 2-D [series, time], got shape {y.shape}")
    if y.shape[1] < min_history:
        raise ForecastError(
            f"{name}: needs at least {min_history} steps of history, got {y.shape[1]}")
    if not np.isfinite(y).all():
        raise ForecastError(f"{name}: history contains NaN or infinite values; fill gaps first")
    return y


def sort_quantiles(q: np.ndarray) -> np.ndarray:
    """Quantiles along axis 0 must not cross; sorting is the cheap monotone fix
    (Chernozhukov et al., 'Quantile and probability curves without crossing', 2010)."""
    return np.sort(q, axis=0)


def fit_predict(model: Forecaster, history: np.ndarray, horizon: int,
                quantiles: Sequence[float], ctx: Context) -> Forecast:
    """Fit then predict on one history, through the model's one-pass path if it has one."""
    both = getattr(model, "fit_predict", None)
    if both is not None:
        return both(history, horizon, quantiles, ctx)
    model.fit(history, horizon, quantiles, ctx)
    return model.predict(history, horizon, quantiles, ctx)


def forecast_fleet(model: Forecaster, history: np.ndarray, horizon: int,
                   quantiles: Sequence[float], ctx: Context | None = None,
                   fit: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Forecast a ``[guests, time, resources]`` history in one call.

    Returns ``mean[guests, horizon, resources]`` and
    ``quantiles[levels, guests, horizon, resources]``.  Resources become extra
    series (resource-major), so a global model learns across all of them.
    """
    ctx = ctx or Context()
    h3 = np.asarray(history, dtype=np.float64)
    if h3.ndim != 3:
        raise ForecastError(f"history must be 3-D [guests, time, resources], got shape {h3.shape}")
    g, t, r = h3.shape
    flat = np.ascontiguousarray(h3.transpose(2, 0, 1).reshape(r * g, t))
    fc = fit_predict(model, flat, horizon, quantiles, ctx) if fit else model.predict(flat, horizon, quantiles, ctx)
    mean = fc.mean.reshape(r, g, horizon).transpose(1, 2, 0)
    qs = fc.quantiles.reshape(len(fc.levels), r, g, horizon).transpose(0, 2, 3, 1)
    return mean, qs
