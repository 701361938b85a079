"""``presplit forecast plot``: informative guests, a day plus the horizon, a real PNG."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from click.testing import CliRunner

from presplit.forecast import create
from presplit.forecast.base import Context
from presplit.forecast.plot import pick_guests, plot_forecast

pytest.importorskip("matplotlib")

DAY = 288  # 5-minute steps
ORIGIN, HORIZON, THRESHOLD = 2 * DAY, 12, 0.8
IDS = tuple(f"vm-{c}" for c in "abcdefgh")


@pytest.fixture
def trace() -> np.ndarray:
    """8 guests x 3 days below 0.8 everywhere except two: 'vm-c' goes over within the horizon, 'vm-f'
    went over 3 h before the origin. 'vm-h' swings the most but stays below; the rest are busy and flat
    (a pick by the mean would take them)."""
    rng = np.random.default_rng(0)
    t = np.arange(3 * DAY)
    y = 0.7 + 0.02 * rng.standard_normal((8, len(t)))  # busy, flat, below the threshold
    y[7] = 0.4 + 0.35 * np.sin(2 * np.pi * t / 36)  # 0.05 .. 0.75: the most variable, never over
    y[2] = 0.3 + 0.05 * rng.standard_normal(len(t))
    y[2, ORIGIN + 4:ORIGIN + 9] = 0.95  # crosses within the horizon
    y[5] = 0.35 + 0.05 * rng.standard_normal(len(t))
    y[5, ORIGIN - 36:ORIGIN - 30] = 0.9  # crossed recently
    y[5, ORIGIN + 60:] = 0.2
    y[[0, 1, 3, 4, 6]] = np.minimum(y[[0, 1, 3, 4, 6]], 0.78)
    assert ((y > THRESHOLD).any(axis=1) == np.isin(np.arange(8), [2, 5])).all()  # exactly two cross
    return y


def test_pick_guests_prefers_threshold_crossings_then_variance(trace):
    picked = pick_guests(trace, ORIGIN, HORIZON, 3, threshold=THRESHOLD, recent=DAY)
    assert [s for s, _ in picked] == [2, 5, 7]
    assert [r for _, r in picked] == ["goes over 0.8 within the horizon", "crossed 0.8 in the last 24 h",
                                      "high variance"]
    assert [s for s, _ in pick_guests(trace, ORIGIN, HORIZON, 1, threshold=None, recent=DAY)] == [7]


def test_plot_draws_the_crossing_guests_over_a_day_and_the_horizon(trace, tmp_path):
    out = tmp_path / "fc.png"
    drawn = plot_forecast(str(out), create("online-ses"), trace, 0, ORIGIN, HORIZON, Context(300, 0), guests=2,
                          threshold=THRESHOLD, guest_ids=IDS, unit="cpu (fraction of capacity)")
    assert set(drawn.guests) == {2, 5}  # the two that cross, not the busiest nor the most variable
    assert drawn.labels == ("guest vm-c", "guest vm-f")  # named as the trace names them
    lo, hi = drawn.xlim  # hours relative to the origin
    assert lo == pytest.approx(-24.0) and hi == pytest.approx(HORIZON * 300 / 3600)
    assert 24.5 <= hi - lo <= 25.5  # about one day plus the horizon, not the whole trace
    assert drawn.zoom_xlim == (-3.0, 1.0)
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    width, height = struct.unpack(">II", data[16:24])
    assert width > 800 and height > 300


def test_short_history_shows_what_there_is(trace, tmp_path):
    drawn = plot_forecast(str(tmp_path / "short.png"), create("online-ses"), trace, 0, DAY // 2, HORIZON,
                          Context(300, 0), guests=1, threshold=THRESHOLD, guest_ids=IDS)
    assert drawn.xlim[0] == pytest.approx(-12.0)


def test_cli_names_guests_by_trace_id_and_writes_the_png(tmp_path):
    from presplit.cli.main import cli
    from presplit.scenarios import bundled_planetlab_day
    from presplit.traces import load_trace

    day = bundled_planetlab_day("20110303")
    ids = set(load_trace(str(day)).guest_ids)
    out = tmp_path / "plot.png"
    result = CliRunner().invoke(cli, ["forecast", "plot", "--trace", str(day), "--model", "online-ses",
                                      "--origin", "20h", "--guests", "3", "--out", str(out)])
    assert result.exit_code == 0, result.output
    line = result.output.strip().splitlines()[-1]
    named = [part.split(" (")[0].removeprefix("guest ") for part in line.split(": ", 1)[1].split("), ")]
    assert len(named) == 3 and set(named) <= ids
    assert "over 0.8" in line  # PlanetLab guests do cross 0.8 around 20 h
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 20_000
