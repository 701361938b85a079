"""The forecast a policy decides on: every guest's demand over the decision's horizon, and of any set of guests.

A placement or balancing decision asks "would this host, with these guests,
stay under its limit until the decision pays off, at a high quantile?" many
thousands of times a tick (every candidate host, with and without every
candidate guest). So the contract a policy gets each tick is built for sums:

* :meth:`TickForecast.rows` -- one row per guest, **additive**: the row of a
  set of guests is the sum of their rows (a host's row is the sum of its
  guests'; adding a guest adds its row);
* :meth:`TickForecast.upper` -- the upper forecast (at ``level``, over the
  next ``horizon`` steps) of the demand whose row it is given, for any stack
  of rows at once.

What a row holds is the forecaster's business. Summing rows before taking the
upper bound is what makes the bound correlation-aware: guests that rise
together widen the bound of their sum, guests whose peaks do not coincide do
not add their peaks.

Forecasters (:data:`FORECASTERS`, ``presplit simulate --forecaster NAME``):

* ``outlook`` -- the window quantile plus short-term trend of the summed
  observed series (:mod:`presplit.forecast.outlook`); rows are the
  last ``window`` samples. presplit's forecaster since the start.
* ``reactive`` -- the last observed value, no margin (what a reactive
  controller acts on).
* ``oracle`` -- the trace's true demand over the horizon (and nothing beyond):
  every quantile equals it; rows are the true samples from now to ``horizon``
  steps ahead (the demand of the coming interval runs from the present sample
  to the next), the bound is their maximum. Simulation only: it needs the
  trace's future.
* any model of ``presplit forecast`` (``window-quantile-1h``, ``gbm-quantile``,
  ...): rows are the model's median path over the horizon followed by the
  guest's recent one-step errors of that median; the bound is the peak of the
  summed median path plus the ``level`` quantile of the summed errors (a
  split-conformal margin on the sum, so correlated errors widen it). Until a
  guest has the history the model needs, its rows are its last value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from presplit.forecast.base import Context, ForecastError

BUILTIN = ("outlook", "reactive", "oracle")


class TickForecast(Protocol):
    """What a policy is handed at one tick (see the module docstring)."""

    name: str
    horizon: int
    level: float

    def rows(self) -> np.ndarray:
        """[guests, width] additive rows, in the demand's units (MIPS)."""

    def upper(self, rows: np.ndarray) -> np.ndarray:
        """Upper forecast over the horizon of each row of ``rows`` [..., width] -> [...]."""


class DecisionForecaster(Protocol):
    """Made once per run; asked for a :class:`TickForecast` every tick."""

    name: str
    simulation_only: bool

    def at(self, history: np.ndarray, step: int, *, future: np.ndarray | None = None) -> TickForecast:
        """``history`` [guests, samples] newest first (MIPS); ``future`` [guests, horizon + 1] the trace's
        samples from now on (only the oracle reads it, and only ``horizon + 1`` of them)."""


@dataclass
class _Rows:
    name: str
    horizon: int
    level: float
    data: np.ndarray
    bound: object  # rows -> upper

    def rows(self) -> np.ndarray:
        return self.data

    def upper(self, rows: np.ndarray) -> np.ndarray:
        return self.bound(rows)


@dataclass
class Outlook:
    """``outlook``: the window quantile plus trend of the summed observed series."""

    horizon: int = 1
    level: float = 0.95
    window: int = 12
    trend_samples: int = 4
    name: str = "outlook"
    simulation_only: bool = False

    def at(self, history, step, *, future=None):
        from presplit.forecast.outlook import OutlookParams, upper

        params = OutlookParams(window=self.window, quantile=self.level, lead_steps=1.0,
                               trend_samples=self.trend_samples)
        return _Rows(self.name, self.horizon, self.level, history, lambda r: upper(r, params))


@dataclass
class Reactive:
    """``reactive``: the last observed value, no margin."""

    horizon: int = 1
    level: float = 0.95
    name: str = "reactive"
    simulation_only: bool = False

    def at(self, history, step, *, future=None):
        return _Rows(self.name, self.horizon, self.level, history[:, :1], lambda r: r[..., 0])


@dataclass
class Oracle:
    """``oracle``: the true demand over the horizon, and nothing beyond it."""

    horizon: int = 1
    level: float = 0.95
    name: str = "oracle"
    simulation_only: bool = True

    def at(self, history, step, *, future=None):
        if future is None:
            raise ForecastError("the oracle forecaster needs the trace's future: it runs in simulation only")
        seen = np.ascontiguousarray(future[:, :self.horizon + 1])  # now and the horizon: never beyond
        return _Rows(self.name, self.horizon, self.level, seen, lambda r: r.max(axis=-1))


@dataclass
class ModelForecaster:
    """Any ``presplit forecast`` model: median path plus a conformal margin on the summed one-step errors."""

    model_name: str
    horizon: int = 1
    level: float = 0.95
    errors: int = 36  # one-step errors kept per guest (3 h at 5 min)
    interval_s: int = 300
    simulation_only: bool = False
    _model: object = field(default=None, repr=False)
    _last_next: np.ndarray | None = field(default=None, repr=False)  # median forecast of this step, per guest
    _err: np.ndarray | None = field(default=None, repr=False)        # [guests, errors] newest first
    _n_err: int = field(default=0, repr=False)
    _fitted_at: int | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return self.model_name

    def at(self, history, step, *, future=None):
        from presplit.forecast.registry import create

        if self._model is None:
            self._model = create(self.model_name)
        g, n = history.shape
        if self._err is None or self._err.shape[0] != g:
            self._err = np.zeros((g, self.errors))
        if self._last_next is not None and len(self._last_next) == g and n:
            self._err[:, 1:] = self._err[:, :-1]
            self._err[:, 0] = history[:, 0] - self._last_next
            self._n_err = min(self._n_err + 1, self.errors)
        ctx = Context(interval_s=self.interval_s, first_step=max(step - n + 1, 0))
        need = self._model.min_steps(ctx)
        if n >= need:
            from presplit.forecast.base import fit_predict

            y = np.ascontiguousarray(history[:, ::-1])
            stale = self._fitted_at is None or step - self._fitted_at >= ctx.steps_per_day
            if getattr(self._model, "refit_each_tick", True) or stale:  # the expensive tier: refitted daily
                fc = fit_predict(self._model, y, self.horizon, (0.5,), ctx)
                self._fitted_at = step
            else:
                fc = self._model.predict(y, self.horizon, (0.5,), ctx)
            path = np.maximum(fc.quantile(0.5), 0.0)
        else:  # warming up: the last value until the model has the history it needs
            path = np.repeat(history[:, :1], self.horizon, axis=1)
        self._last_next = path[:, 0].copy()
        k = max(self._n_err, 1)
        data = np.concatenate([path, self._err[:, :k]], axis=1)
        h, level = self.horizon, self.level
        n_err = self._n_err

        def bound(rows: np.ndarray) -> np.ndarray:
            peak = rows[..., :h].max(axis=-1)
            if n_err == 0:
                return peak
            from presplit.forecast.outlook import quantile_last_axis

            return peak + np.maximum(quantile_last_axis(rows[..., h:], level), 0.0)

        return _Rows(self.name, self.horizon, self.level, data, bound)


def forecaster_names() -> list[str]:
    """Every name ``--forecaster`` takes: the built-ins and every registered ``presplit forecast`` model."""
    from presplit.forecast.registry import names

    return [*BUILTIN, *names()]


def make_forecaster(name: str, *, horizon: int = 1, level: float = 0.95, interval_s: int = 300):
    """The decision forecaster called ``name`` (see the module docstring)."""
    key = name.strip()
    if key == "outlook":
        return Outlook(horizon=horizon, level=level)
    if key == "reactive":
        return Reactive(horizon=horizon, level=level)
    if key == "oracle":
        return Oracle(horizon=horizon, level=level)
    from presplit.forecast.registry import MODELS

    if key not in MODELS:
        raise ForecastError(f"unknown forecaster {name!r}; expected one of {', '.join(forecaster_names())}")
    MODELS.entry(key)  # an installed model is imported now: a broken entry point fails here, not mid-run
    return ModelForecaster(key, horizon=horizon, level=level, interval_s=interval_s)


def check_for_controller(name: str | None, option: str) -> str | None:
    """A forecaster a controller (``run``, ``serve``) can decide on: any but the oracle, which needs the future."""
    if name is None:
        return None
    if name not in forecaster_names():
        raise ForecastError(f"{option} {name!r}: unknown forecaster; expected one of {', '.join(forecaster_names())}")
    if make_forecaster(name).simulation_only:
        raise ForecastError(f"{option} {name!r}: it needs the trace's future, which a controller does not have "
                            "(presplit simulate --forecaster oracle runs it)")
    return name
