"""Calibration on synthetic series with known distributions."""

from statistics import NormalDist

import numpy as np
import pytest

from presplit.forecast import Context, create
from presplit.forecast.base import fit_predict
from presplit.forecast.gbm import GlobalGBM

LEVELS = (0.025, 0.1, 0.5, 0.9, 0.95, 0.975, 0.99)


def coverage(fc, y_future, lo, hi):
    return float(np.mean((y_future >= fc.quantile(lo)) & (y_future <= fc.quantile(hi))))


# Short windows (the 1 h / 3 h quantiles, k-sigma over 12 points) under-cover
# by construction: an empirical 0.9 quantile of 12 samples is biased low.
@pytest.mark.parametrize("name", ["online-ses", "baseline-last", "baseline-window-quantile-1d",
                                  "baseline-autopilot-12h", "baseline-beloglazov-lr"])
def test_intervals_cover_iid_noise(name, gaussian_fleet):
    y, mu, sd = gaussian_fleet
    hist, fut = y[:, :388], y[:, 388:]
    fc = fit_predict(create(name), hist, 12, LEVELS, Context())
    assert 0.74 <= coverage(fc, fut, 0.1, 0.9) <= 0.86
    assert 0.91 <= coverage(fc, fut, 0.025, 0.975) <= 0.99


def test_window_quantile_recovers_known_quantile(gaussian_fleet):
    y, mu, sd = gaussian_fleet
    fc = fit_predict(create("baseline-window-quantile-1d"), y, 1, LEVELS, Context())
    want = mu + NormalDist().inv_cdf(0.95) * sd
    # 288 samples: the error of an empirical 0.95 quantile is ~0.15 sigma
    assert np.median(np.abs(fc.quantile(0.95)[:, 0] - want) / sd) < 0.2


def test_gbm_calibrated_and_sharp_on_known_noise(gaussian_fleet):
    y, mu, sd = gaussian_fleet
    model = GlobalGBM(max_anchors=2000, rounds=60)
    hist, fut = y[:, :388], y[:, 388:]
    model.fit(hist, 12, LEVELS, Context())
    fc = model.predict(hist, 12, LEVELS, Context())
    assert 0.72 <= coverage(fc, fut, 0.1, 0.9) <= 0.88
    assert 0.90 <= coverage(fc, fut, 0.025, 0.975) <= 0.99
    want = mu + NormalDist().inv_cdf(0.95) * sd
    assert np.median(np.abs(fc.quantile(0.95)[:, 0] - want) / sd) < 0.5


def test_quantiles_never_cross(gaussian_fleet):
    y, _, _ = gaussian_fleet
    for name in ("online-ses", "baseline-beloglazov-lr"):
        fc = fit_predict(create(name), y[:50], 12, LEVELS, Context())
        assert (np.diff(fc.quantiles, axis=0) >= 0).all()
