"""Name -> factory registry of forecasting models (a :class:`presplit.registry.Registry`).

The built-in models register themselves when their modules are imported;
those are imported at the first lookup or listing, and LightGBM only when its
model is created. Installed packages add models through the
``presplit.forecasters`` entry-point group (the value: a class or function
that takes no arguments and returns a :class:`~presplit.forecast.base.Forecaster`);
every model here is also a decision forecaster (``presplit simulate
--forecaster NAME``) and is listed by ``presplit forecast models``.
"""

from __future__ import annotations

from typing import Callable

from presplit.forecast.base import ForecastError, Forecaster
from presplit.registry import Registry

Factory = Callable[[], Forecaster]

ENTRY_POINT_GROUP = "presplit.forecasters"


def _load_builtin() -> None:
    # This order is the order of names(), of backtest tables and of `presplit forecast models`.
    from presplit.forecast import baselines, gbm, online, stacking  # noqa: F401
    from presplit.forecast import select  # noqa: F401


MODELS: Registry[Factory] = Registry("forecast model", group=ENTRY_POINT_GROUP, error=ForecastError,
                                     builtins=_load_builtin)


def register(name: str, factory: Factory, *, summary: str = "") -> None:
    """Add a model; a second registration of ``name`` is refused (ValueError)."""
    MODELS.register(name, factory, summary=summary)


def names() -> list[str]:
    """Every model name: the built-ins, then installed entry points."""
    return MODELS.names()


def create(name: str) -> Forecaster:
    """A fresh model ``name``; an unknown name is a ForecastError listing the known ones."""
    return MODELS.create(name)
