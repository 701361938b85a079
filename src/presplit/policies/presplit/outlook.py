"""presplit's correlation-aware outlook, as its policies import it.

The outlook is a forecast and lives in :mod:`presplit.forecast.outlook` (the
forecast layer, below the policies, so the decision forecasters can use it
without importing a policy); the policies' modules import it from here.
"""

from presplit.forecast.outlook import OutlookParams, group_series, next_upper, quantile_last_axis, upper

__all__ = ["OutlookParams", "group_series", "next_upper", "quantile_last_axis", "upper"]
