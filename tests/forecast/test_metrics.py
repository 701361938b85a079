"""The backtest arithmetic on cases small enough to compute by hand."""

import numpy as np
import pytest

from presplit.forecast.metrics import accuracy, naive_scale, overload, pinball


def test_pinball_by_hand():
    y = np.array([1.0, 3.0])
    q = np.array([2.0, 2.0])
    # level 0.9: under-forecast of 1 costs 0.9, over-forecast of 1 costs 0.1 -> mean 0.5
    assert pinball(y, q, 0.9) == pytest.approx(0.5)
    assert pinball(y, q, 0.5) == pytest.approx(0.5)


def test_naive_scale_pools_all_series_and_origins():
    y = np.array([[0.0, 1.0, 3.0, 3.0],
                  [5.0, 5.0, 5.0, 5.0]])  # the idle series adds zeros, not an infinite ratio
    # origin 3, window 3: diffs |1|,|2| and 0,0 -> 3/4; origin 2, window 3: |1| and 0 -> 1/2
    assert naive_scale(y, [3], 3) == pytest.approx(0.75)
    assert naive_scale(y, [2, 3], 3) == pytest.approx((1 + 3) / (2 + 4))


def test_accuracy_by_hand():
    actual = np.array([[[1.0, 2.0]]])  # one origin, one series, two steps
    mean = np.array([[[1.5, 1.5]]])
    levels = (0.025, 0.1, 0.5, 0.9, 0.95, 0.975, 0.99)
    q = np.stack([np.full_like(mean, v) for v in (0.0, 1.2, 1.5, 1.8, 1.9, 2.5, 3.0)])
    m = accuracy(actual, mean, q, levels, scale=0.5)
    assert m["mae"] == pytest.approx(0.5)
    assert m["mase"] == pytest.approx(1.0)
    # q0.95 = 1.9: y=1 over by 0.9 -> 0.05*0.9 = 0.045; y=2 under by 0.1 -> 0.095; mean 0.07
    assert m["pinball_0.95"] == pytest.approx(0.07 / 0.5)
    assert m["coverage_80"] == pytest.approx(0.0)  # [1.2, 1.8] holds neither 1 nor 2
    assert m["coverage_95"] == pytest.approx(1.0)  # [0, 2.5] holds both


def test_overload_recall_lead_and_false_alarms_by_hand():
    # one series, 8 steps of 5 min, threshold 0.8; it crosses above at t=5
    y = np.array([[0.1, 0.1, 0.1, 0.1, 0.1, 0.9, 0.9, 0.1]])
    origins = [2, 4]
    h = 3
    upper = np.zeros((2, 1, h))
    upper[0, 0, 2] = 1.0   # origin 2 flags t=4 (lead 3): a false alarm
    upper[0, 0, 1] = 1.0   # origin 2 flags t=3 (lead 2): too short a lead to count
    upper[1, 0, 1] = 1.0   # origin 4 flags t=5 (lead 2): the event, caught 10 min ahead
    m = overload(y, origins, upper, threshold=0.8, min_lead_steps=2, interval_s=300)
    assert m["overload_events"] == 1
    assert m["overload_recall"] == pytest.approx(1.0)
    assert m["lead_time_min"] == pytest.approx(10.0)
    # covered steps: 3, 4 (origin 2, leads 2-3) and 5, 6 (origin 4): 4 steps of one series
    # alarmed below threshold: t=3 and t=4 -> one run -> one false alarm over 4*300 s
    assert m["false_alarms_per_day"] == pytest.approx(1 / (4 * 300 / 86400))


def test_overload_missed_when_lead_too_short():
    y = np.array([[0.1, 0.1, 0.1, 0.9]])
    upper = np.zeros((1, 1, 2))
    upper[0, 0, 1] = 1.0  # origin 2 flags t=3 with lead 2
    m = overload(y, [2], upper, threshold=0.8, min_lead_steps=3, interval_s=300)
    assert m["overload_events"] == 0 or m["overload_recall"] == 0.0
