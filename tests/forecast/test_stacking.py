"""The stacked quantile model: registration, no leakage, row-separability, calibration."""

import numpy as np
import pytest

from presplit.forecast import Context, ForecastError, create, names
from presplit.forecast.backtest import BacktestSpec, run_model
from presplit.forecast.stacking import StackedQuantile, weighted_quantile
from presplit.forecast.stacking_features import decayed_quantiles, feature_names, pair_features

LEVELS = (0.025, 0.1, 0.5, 0.9, 0.95, 0.975, 0.99)


def small(**kw):
    return StackedQuantile(max_anchors=1500, rounds=15, **kw)


def fleet(seed=0, s=40, t=160):
    rng = np.random.default_rng(seed)
    level = rng.uniform(0.05, 0.6, size=(s, 1))
    wave = 0.1 * np.sin(np.arange(t) / 12.0)[None, :]
    return np.clip(level + wave * level + 0.05 * level * rng.standard_normal((s, t)), 0, None)


def test_registered_as_a_non_baseline_model():
    assert "stack-quantile" in names()
    m = create("stack-quantile")
    assert not m.name.startswith("baseline-") and not m.refit_each_tick


def test_autopilot_features_match_the_baseline():
    y = fleet(1, s=6, t=100)
    ctx = Context()
    s = np.arange(6)
    got = decayed_quantiles(y, s, np.full(6, 99), 12.0, 1000, (0.5, 0.95))
    fc = create("baseline-autopilot-1h").predict(y, 1, (0.5, 0.95), ctx)
    np.testing.assert_allclose(got[:, :2].T, fc.quantiles[:, :, 0])
    np.testing.assert_allclose(got[:, 2], fc.mean[:, 0])
    X, scale = pair_features(y, s, np.full(6, 99), 0.0, 1.0, ctx)
    assert X.shape[1] == len(feature_names()) - 5  # without h, season x2, time of day x2


def test_no_leakage_in_a_backtest():
    """Forecasts at origins before the cut are unchanged when everything from the cut on changes."""
    y = fleet(2)
    spec = BacktestSpec(horizon=6, history=160, start=70, step=10, refit=30, levels=LEVELS)
    origins = spec.validate(y.shape[1])
    cut = 110
    z = y.copy()
    z[:, cut:] = np.random.default_rng(9).uniform(0, 5, size=z[:, cut:].shape)
    a = run_model(small(), y, origins, spec, Context())
    b = run_model(small(), z, origins, spec, Context())
    before = [i for i, o in enumerate(origins) if o <= cut]
    after = [i for i, o in enumerate(origins) if o > cut]
    np.testing.assert_array_equal(a.quants[:, before], b.quants[:, before])
    np.testing.assert_array_equal(a.mean[before], b.mean[before])
    assert not np.allclose(a.quants[:, after], b.quants[:, after])


def test_forecast_of_a_series_depends_only_on_its_rows():
    y = fleet(3)
    ctx = Context()
    m = small().fit(y, 6, LEVELS, ctx)
    full = m.predict(y, 6, LEVELS, ctx)
    part = m.predict(y[5:9], 6, LEVELS, ctx)
    np.testing.assert_allclose(part.quantiles, full.quantiles[:, 5:9])
    assert full.quantiles.shape == (len(LEVELS), y.shape[0], 6)
    assert (np.diff(full.quantiles, axis=0) >= 0).all()


def test_intervals_roughly_calibrated_on_a_noisy_fleet(gaussian_fleet):
    y, _, _ = gaussian_fleet
    ctx = Context()
    m = StackedQuantile(max_anchors=3000, rounds=40).fit(y[:, :300], 6, LEVELS, ctx)
    covered = []
    for o in range(300, 394, 6):
        fc = m.predict(y[:, :o], 6, LEVELS, ctx)
        lo, hi = fc.interval(0.8)
        covered.append(((y[:, o:o + 6] >= lo) & (y[:, o:o + 6] <= hi)).mean())
    assert 0.7 < np.mean(covered) < 0.9


@pytest.mark.parametrize("target", ["ratio", "last", "abs"])
def test_targets_and_conformal_shift_run(target):
    y = fleet(4, s=20, t=120)
    m = small(target=target, calib_frac=0.2).fit(y, 4, (0.1, 0.5, 0.9), Context())
    fc = m.predict(y, 4, (0.1, 0.5, 0.9), Context())
    assert np.isfinite(fc.quantiles).all() and fc.mean.shape == (20, 4)


def test_bad_requests():
    m = small()
    with pytest.raises(ForecastError, match="predict before fit"):
        m.predict(fleet(), 6, LEVELS, Context())
    with pytest.raises(ForecastError, match="needs at least"):
        m.fit(np.ones((3, 20)), 6, LEVELS, Context())
    m.fit(fleet(), 6, LEVELS, Context())
    with pytest.raises(ForecastError, match="horizon"):
        m.predict(fleet(), 12, LEVELS, Context())


def test_weighted_quantile():
    assert weighted_quantile(np.array([3.0, 1.0, 2.0]), np.ones(3), 0.5) == 2.0
    assert weighted_quantile(np.array([1.0, 2.0]), np.array([1.0, 9.0]), 0.5) == 2.0
    assert weighted_quantile(np.array([]), np.array([]), 0.5) == 0.0
