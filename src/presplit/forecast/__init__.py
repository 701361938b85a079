"""Forecasting: the fleet forecaster contract, models, backtests and metrics.

``create(name)`` builds a registered model; ``names()`` lists them;
``forecast_fleet`` runs one on a ``[guests, time, resources]`` history.
"""

from presplit.forecast.base import Context, Forecast, ForecastError, Forecaster, forecast_fleet
from presplit.forecast.registry import create, names, register

__all__ = ["Context", "Forecast", "ForecastError", "Forecaster", "create", "forecast_fleet",
           "names", "register"]
