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


def test_backtest_on_scheduler_matches_local(client, tmp_path):
    from presplit.forecast.backtest import BacktestSpec, backtest

    y = np.random.default_rng(4).random((30, 120))
    spec = BacktestSpec(history=60, horizon=6, step=12, refit=24)
    names = ["online-ses", "baseline-window-quantile-1h"]
    _, local = backtest(y, names, spec)
    _, remote = backtest(y, names, spec, client=client)
    for a, b in zip(local, remote):
        assert a.metrics["pinball_0.95"] == pytest.approx(b.metrics["pinball_0.95"])
        np.testing.assert_allclose(a.quants, b.quants)


def test_cli_scheduler_option(client, tmp_path):
    from click.testing import CliRunner

    from presplit.cli.forecast_cmd import forecast

    day = tmp_path / "day"
    day.mkdir()
    rng = np.random.default_rng(5)
    for i in range(4):
        (day / f"vm{i}").write_text("\n".join(str(int(v)) for v in rng.integers(0, 100, 288)) + "\n")
    r = CliRunner().invoke(forecast, ["backtest", "--trace", str(day), "--models", "online-ses",
                                      "--scheduler", client.scheduler.address])
    assert r.exit_code == 0, r.output
    assert "online-ses" in r.output
