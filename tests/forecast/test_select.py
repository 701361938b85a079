"""select-quantile: registration, row-separability, calibration, and that per-guest selection pays."""

import numpy as np

from presplit.forecast import Context, create, names
from presplit.forecast.backtest import BacktestSpec, run_model
from presplit.forecast.gbm import GlobalGBM
from presplit.forecast.metrics import pinball_loss
from presplit.forecast.select import SelectQuantile

LEVELS = (0.025, 0.1, 0.5, 0.9, 0.95, 0.975, 0.99)


def small():
    return SelectQuantile(gbm=GlobalGBM(max_anchors=1500, rounds=30), trail_s=8 * 3600)


def mixed_fleet(seed=0, s=60, t=400):
    """Half the guests hold 0.8 with frequent i.i.d. dips to 0.1 (the last value
    is wrong after every dip, a high percentile is right); half are slow random
    walks (the last value is right, a percentile of the past lags)."""
    rng = np.random.default_rng(seed)
    half = s // 2
    dips = np.where(rng.random((half, t)) < 0.15, 0.1, 0.8)
    walk = np.clip(0.4 + np.cumsum(0.03 * rng.standard_normal((s - half, t)), axis=1), 0.0, 1.0)
    return np.concatenate([dips, walk])


def test_registered_as_a_non_baseline_model():
    assert "select-quantile" in names()
    m = create("select-quantile")
    assert not m.name.startswith("baseline-") and not m.refit_each_tick


def test_pinball_loss_by_hand():
    np.testing.assert_allclose(pinball_loss(np.array([1.0, 0.0]), np.array([0.0, 1.0]), 0.9), [0.9, 0.1])


def test_forecast_of_a_series_depends_only_on_its_rows():
    y = mixed_fleet(1, s=40, t=200)
    ctx = Context()
    m = small().fit(y, 6, LEVELS, ctx)
    full = m.predict(y, 6, LEVELS, ctx)
    rows = np.array([3, 17, 25, 38])
    part = m.predict(y[rows], 6, LEVELS, ctx)
    np.testing.assert_allclose(part.quantiles, full.quantiles[:, rows])
    np.testing.assert_allclose(part.mean, full.mean[rows])


def test_intervals_are_calibrated_on_gaussian_noise(gaussian_fleet):
    """i.i.d. N(mu_s, sd_s): every expert is (nearly) right, so whatever is picked,
    the 80 % and 95 % intervals must cover about that much of the future."""
    y, _, _ = gaussian_fleet
    spec = BacktestSpec(horizon=6, history=250, start=250, step=6, refit=1000, levels=LEVELS)
    r = run_model(small(), y, spec.validate(y.shape[1]), spec, Context())
    assert 0.75 <= r.metrics["coverage_80"] <= 0.85
    assert 0.92 <= r.metrics["coverage_95"] <= 0.98


def test_selection_beats_every_single_expert_on_a_mixed_fleet():
    y = mixed_fleet(2)
    spec = BacktestSpec(horizon=6, history=250, start=250, step=6, refit=1000, levels=LEVELS)
    origins = spec.validate(y.shape[1])
    got = run_model(small(), y, origins, spec, Context()).metrics["pinball_0.95"]
    for name in ("baseline-autopilot-1h", "baseline-last"):
        base = run_model(create(name), y, origins, spec, Context()).metrics["pinball_0.95"]
        assert got < 0.95 * base, (name, got, base)
    gbm = run_model(GlobalGBM(max_anchors=1500, rounds=30), y, origins, spec, Context()).metrics["pinball_0.95"]
    assert got <= gbm * 1.001, (got, gbm)


def test_daily_expert_raises_only_the_upper_levels_to_yesterdays_peak():
    from presplit.forecast.select import yesterday_upper

    ctx = Context()  # 300 s steps: 288 a day, +-15 min = +-3 steps
    day = ctx.steps_per_day
    past = np.zeros((2, day + 10))
    past[0, 12] = 0.9  # guest 0 peaked a day before step t + 2 (t = day + 10 steps of history)
    base = np.full((3, 2, 4), 0.1)  # levels 0.5, 0.95, 0.99; 2 guests; 4 steps
    out = yesterday_upper(past, base, (0.5, 0.95, 0.99), ctx, tail=0.95)
    # Step h looks at yesterday's [t+h-day-3, t+h-day+3] = [7+h, 13+h], which holds step 12 for h = 0..3.
    np.testing.assert_allclose(out[1:, 0, :], 0.9)
    np.testing.assert_allclose(out[0], 0.1)  # the median is the base
    np.testing.assert_allclose(out[:, 1], 0.1)  # guest 1 was flat yesterday
    short = yesterday_upper(past[:, -20:], base, (0.5, 0.95, 0.99), ctx, tail=0.95)
    np.testing.assert_allclose(short, base)  # less than a day of history: nothing to look at
