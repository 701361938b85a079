"""Sharding the fleet forecast over a real (in-process) Dask cluster gives the local result."""

import numpy as np
import pytest

from presplit.forecast import Context, create
from presplit.forecast.gbm import GlobalGBM
from presplit.forecast.sharding import forecast_sharded

LEVELS = (0.025, 0.1, 0.5, 0.9, 0.95, 0.975, 0.99)

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as c:
        yield c


@pytest.mark.parametrize("make", [lambda: create("online-ses"), lambda: GlobalGBM(max_anchors=500, rounds=20)])
def test_sharded_equals_local(client, make):
    y = np.random.default_rng(2).random((40, 150))
    local = make()
    local.fit(y, 6, LEVELS, Context())
    want = local.predict(y, 6, LEVELS, Context())
    got = forecast_sharded(make(), y, 6, LEVELS, Context(), client, shards=3)
    np.testing.assert_allclose(got.mean, want.mean)
    np.testing.assert_allclose(got.quantiles, want.quantiles)
