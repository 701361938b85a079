"""Name -> factory registry of forecasting models.

Explicit and refusing duplicates (the Kubernetes scheduler framework's plugin
registry does the same), so a typo or a second registration fails loudly at
import time instead of silently replacing a model.
"""

from __future__ import annotations

from typing import Callable

from presplit.forecast.base import ForecastError, Forecaster

Factory = Callable[[], Forecaster]

_REGISTRY: dict[str, Factory] = {}


def register(name: str, factory: Factory) -> None:
    if name in _REGISTRY:
        raise ValueError(f"forecast model {name!r} is already registered")
    _REGISTRY[name] = factory


def names() -> list[str]:
    _load_builtin()
    return list(_REGISTRY)


def create(name: str) -> Forecaster:
    _load_builtin()
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise ForecastError(
            f"unknown forecast model {name!r}; known models: {', '.join(_REGISTRY)}") from None
    return factory()


_loaded = False


def _load_builtin() -> None:
    # Imported lazily: the model modules register themselves, and LightGBM is
    # only imported when its model is created.
    global _loaded
    if _loaded:
        return
    _loaded = True
    from presplit.forecast import baselines, gbm, online, stacking  # noqa: F401
    from presplit.forecast import select  # noqa: F401
