"""The registry, the fleet contract and the errors people see."""

import numpy as np
import pytest
from click.testing import CliRunner

from presplit.forecast import Context, ForecastError, create, forecast_fleet, names, register
from presplit.forecast.aggregate import aggregate_forecast
from presplit.forecast.backtest import BacktestSpec, backtest
from presplit.forecast.base import Forecast

LEVELS = (0.025, 0.1, 0.5, 0.9, 0.95, 0.975, 0.99)


def test_registry_refuses_duplicates_and_unknown_names():
    assert "online-ses" in names() and "gbm-quantile" in names()
    assert sum(n.startswith("baseline-") for n in names()) >= 8
    with pytest.raises(ValueError, match="already registered"):
        register("online-ses", lambda: None)
    with pytest.raises(ForecastError, match="unknown forecast model 'nope'"):
        create("nope")


@pytest.mark.parametrize("name", ["online-ses", "baseline-window-quantile-1h"])
def test_bad_requests_fail_clearly(name):
    m = create(name)
    y = np.ones((3, 50))
    with pytest.raises(ForecastError, match="horizon must be a positive"):
        m.predict(y, 0, LEVELS, Context())
    with pytest.raises(ForecastError, match="needs at least"):
        m.predict(np.ones((3, 1)), 12, LEVELS, Context())
    with pytest.raises(ForecastError, match="strictly between 0 and 1"):
        m.predict(y, 12, (0.5, 1.0), Context())


def test_backtest_rejects_short_trace_and_skips_models_needing_more():
    y = np.random.default_rng(0).random((5, 100))
    with pytest.raises(ForecastError, match="too little history"):
        backtest(y, ["online-ses"], BacktestSpec(history=95, horizon=12))
    _, res = backtest(y, ["baseline-seasonal-naive", "online-ses"], BacktestSpec(history=48, horizon=12))
    assert res[0].skipped and "needs" in res[0].skipped
    assert not res[1].skipped and res[1].metrics["mae"] >= 0


def test_forecast_fleet_multi_resource_shapes():
    y = np.random.default_rng(1).random((7, 100, 2))
    mean, q = forecast_fleet(create("online-ses"), y, 6, LEVELS)
    assert mean.shape == (7, 6, 2) and q.shape == (len(LEVELS), 7, 6, 2)
    # resource 1 of guest 3 is forecast from that series alone
    alone, _ = forecast_fleet(create("baseline-window-quantile-1h"), y[3:4, :, 1:2], 6, LEVELS)
    both, _ = forecast_fleet(create("baseline-window-quantile-1h"), y, 6, LEVELS)
    np.testing.assert_allclose(alone[0, :, 0], both[3, :, 1])


def _fc(mean, dev):
    m = np.asarray(mean, dtype=float)[:, None]
    d = np.asarray(dev, dtype=float)[:, None]
    return Forecast(m, (0.5, 0.95), np.stack([m, m + d]))


def test_host_quantile_between_independent_and_comonotone():
    rng = np.random.default_rng(3)
    base = rng.standard_normal(500)
    same = np.stack([base, 2 * base + 1])  # perfectly correlated
    indep = rng.standard_normal((2, 500))
    fc = _fc([1.0, 2.0], [0.3, 0.4])
    up_same = aggregate_forecast(fc, same, np.array([0, 0])).quantile(0.95)[0, 0]
    up_ind = aggregate_forecast(fc, indep, np.array([0, 0])).quantile(0.95)[0, 0]
    assert up_same == pytest.approx(3.0 + 0.7)
    assert up_ind == pytest.approx(3.0 + 0.5, abs=0.05)
    assert aggregate_forecast(fc, same, np.array([0, 0])).mean[0, 0] == pytest.approx(3.0)


def test_cli_errors_and_json(tmp_path):
    from presplit.cli.forecast_cmd import forecast

    day = tmp_path / "day"
    day.mkdir()
    rng = np.random.default_rng(5)
    for i in range(6):
        (day / f"vm{i}").write_text("\n".join(str(int(v)) for v in rng.integers(0, 100, 288)) + "\n")
    r = CliRunner()
    bad = r.invoke(forecast, ["backtest", "--trace", str(day), "--horizon", "0"])
    assert bad.exit_code != 0 and "positive" in bad.output
    bad = r.invoke(forecast, ["backtest", "--trace", str(day), "--models", "nope"])
    assert bad.exit_code != 0 and "unknown model" in bad.output
    bad = r.invoke(forecast, ["backtest", "--trace", str(day), "--models", "online-ses", "--history", "1d"])
    assert bad.exit_code != 0 and "too little history" in bad.output
    out = tmp_path / "r.json"
    ok = r.invoke(forecast, ["backtest", "--trace", str(day), "--models", "online-ses,baseline-last",
                             "--json", str(out), "--plot", str(tmp_path / "b.png")])
    assert ok.exit_code == 0, ok.output
    import json

    rows = json.loads(out.read_text())
    for key in ("model", "mae", "mase", "pinball_0.5", "pinball_0.9", "pinball_0.95", "pinball_0.99",
                "coverage_80", "coverage_95", "overload_recall", "false_alarms_per_day",
                "lead_time_min", "series_per_s"):
        assert key in rows[0]
    assert (tmp_path / "b.png").stat().st_size > 1000
    ok = r.invoke(forecast, ["plot", "--trace", str(day), "--out", str(tmp_path / "p.png")])
    assert ok.exit_code == 0, ok.output
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
