"""Scale-out: the fleet forecast cut into shards of series, run on a Dask cluster.

The model is fitted once on the whole fleet (the global trees, the pooled
residual shape), then each shard's ``predict`` runs on a worker.  Because a
fitted model's forecast of a series depends only on that series' rows (see
:mod:`presplit.forecast.base`), concatenating the shards gives exactly the
local result.  Only numpy arrays and the fitted model travel.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from presplit.forecast.base import Context, Forecast, Forecaster


def _predict_shard(model: Forecaster, shard: np.ndarray, horizon: int, levels: tuple[float, ...],
                   ctx: Context) -> tuple[np.ndarray, np.ndarray]:
    fc = model.predict(shard, horizon, levels, ctx)
    return fc.mean, fc.quantiles


def forecast_sharded(model: Forecaster, history: np.ndarray, horizon: int,
                     quantiles: Sequence[float], ctx: Context, client, shards: int | None = None,
                     fit: bool = True) -> Forecast:
    """Fit on the fleet here, predict shards on ``client``'s workers, reassemble."""
    y = np.asarray(history, dtype=np.float64)
    levels = tuple(quantiles)
    if fit:
        model.fit(y, horizon, levels, ctx)
    n = shards or max(1, sum(client.nthreads().values()))
    bounds = np.linspace(0, y.shape[0], min(n, y.shape[0]) + 1).astype(np.int64)
    # hash=False: a fresh key per call, so a refitted model never collides with
    # the release of the previous one (distributed reports "lost dependencies")
    remote_model = client.scatter(model, broadcast=True, hash=False)
    futures = [client.submit(_predict_shard, remote_model, y[a:b], horizon, levels, ctx, pure=False)
               for a, b in zip(bounds[:-1], bounds[1:])]
    parts = client.gather(futures)
    return Forecast(np.concatenate([m for m, _ in parts]), levels,
                    np.concatenate([q for _, q in parts], axis=1))
