"""``presplit report``: the HTML holds the results' numbers, is self-contained, and renders in Chromium."""

from __future__ import annotations

import json
import math
import re
import shutil
import struct
import subprocess
from html.parser import HTMLParser

import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from presplit.cli.main import cli
from presplit.scale.report import (FORMATS, load_reference, migration_stats, parameter_note, parameter_series,
                                   pareto_front, swept_parameters)
from presplit.scenarios import bundled_planetlab_day


class Cells(HTMLParser):
    """Collects every numeric cell: (table id, trace, run, column) -> (exact value text, shown text)."""

    def __init__(self) -> None:
        super().__init__()
        self.table = None
        self.row: dict = {}
        self.cell: dict | None = None
        self.cells: dict = {}
        self.images = 0
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for key in ("src", "href"):
            if key in a and not a[key].startswith(("data:", "#")):
                self.urls.append(a[key])
        if tag == "table":
            self.table = a.get("id")
        elif tag == "tr":
            self.row = a
        elif tag == "td" and "data-col" in a:
            self.cell = {"col": a["data-col"], "value": a["data-value"], "text": ""}
        elif tag == "img" and a.get("src", "").startswith("data:image/png;base64,"):
            self.images += 1

    def handle_data(self, data):
        if self.cell is not None:
            self.cell["text"] += data

    def handle_endtag(self, tag):
        if tag == "td" and self.cell is not None:
            key = (self.table, self.row.get("data-trace"), self.row.get("data-run"), self.cell["col"])
            assert key not in self.cells, key
            self.cells[key] = (self.cell["value"], self.cell["text"])
            self.cell = None


def _shown_matches(col: str, text: str, value) -> bool:
    """The rounded text is the value at the column's precision."""
    _, fmt, scale, unit = FORMATS[col]
    if text == "n/a":
        return isinstance(value, float) and not math.isfinite(value)
    number = float(text.removesuffix(unit).replace(",", ""))
    expected = value * scale
    decimals = re.search(r"\.(\d+)([fg])", fmt)
    if decimals is None:  # integer format
        return number == expected
    digits, kind = int(decimals.group(1)), decimals.group(2)
    if kind == "f":
        return abs(number - expected) <= 0.5 * 10 ** -digits + 1e-12
    return math.isclose(number, expected, rel_tol=0.5 * 10 ** (1 - digits), abs_tol=1e-300)


@pytest.fixture(scope="module")
def report(resumed_sweep, tmp_path_factory):
    """The resumed sweep plus two real-day runs CloudSim also ran, reported."""
    out = resumed_sweep["out"]
    assert resumed_sweep["second"].returncode == 0
    root = tmp_path_factory.mktemp("report")
    results = root / "results.parquet"
    shutil.copy(out, results)
    add = CliRunner().invoke(cli, ["sweep", "--sequential", "--policy", "dvfs", "--policy", "thr-mmt:0.8",
                                   "--trace", str(bundled_planetlab_day("20110303")), "--out", str(results)])
    assert add.exit_code == 0, add.output
    html_path = root / "report.html"
    result = CliRunner().invoke(cli, ["report", str(results), "--out", str(html_path)])
    assert result.exit_code == 0, result.output
    return results, html_path


def test_numbers_in_the_html_match_the_results_file(report):
    results, html_path = report
    parser = Cells()
    parser.feed(html_path.read_text(encoding="utf-8"))
    rows = pq.read_table(results).to_pylist()
    assert len(rows) == 29
    checked = 0
    for r in rows:
        for col in ("energy_kwh", "migrations", "slav", "overall_sla_violation", "esv", "fluid_bound_kwh",
                    "energy_over_bound", "wall_s"):
            exact, text = parser.cells[("runs", r["trace"], r["run"], col)]
            assert (int(exact) if col == "migrations" else float(exact)) == r[col], (r["run"], col)
            assert _shown_matches(col, text, r[col]), (r["run"], col, text, r[col])
            checked += 1
        exact, _ = parser.cells[("runs", r["trace"], r["run"], "active_max")]
        assert int(exact) == max(r["active_hosts"])
        for col, value in migration_stats(r["migrations_per_guest"]).items():
            exact, text = parser.cells[("migrations-per-guest", r["trace"], r["run"], col)]
            assert float(exact) == value and _shown_matches(col, text, value)
    assert checked == 29 * 8


def test_cloudsim_comparison_matches_the_reference_by_day_and_policy(report):
    results, html_path = report
    parser = Cells()
    parser.feed(html_path.read_text(encoding="utf-8"))
    ours = {r["run"]: r for r in pq.read_table(results).to_pylist() if r["trace"] == "20110303"}
    ref = {r["policy"]: r for r in load_reference() if r["day"] == "20110303"}
    compared = {k[2] for k in parser.cells if k[0] == "cloudsim"}
    assert compared == {"dvfs", "thr-mmt:0.8"}  # synthetic days are never compared
    for run in compared:
        cell = lambda col: float(parser.cells[("cloudsim", "20110303", run, col)][0])  # noqa: E731
        assert cell("ref_energy_kwh") == ref[run]["energy_kwh"]
        assert cell("energy_kwh") == ours[run]["energy_kwh"]
        assert cell("energy_ratio") == ours[run]["energy_kwh"] / ref[run]["energy_kwh"]
        assert cell("fluid_bound_kwh") == ours[run]["fluid_bound_kwh"]
        assert cell("ref_energy_over_bound") == ref[run]["energy_kwh"] / ours[run]["fluid_bound_kwh"]
    # dvfs has no migrations, so the engine reproduces CloudSim's energy to rounding.
    assert math.isclose(float(parser.cells[("cloudsim", "20110303", "dvfs", "energy_ratio")][0]), 1.0,
                        rel_tol=1e-9)


def test_report_is_self_contained(report):
    _, html_path = report
    text = html_path.read_text(encoding="utf-8")
    parser = Cells()
    parser.feed(text)
    assert parser.urls == []
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.I)  # no external reference at all
    assert parser.images == 7  # metrics, trade-off, one per swept parameter (3), active hosts, migrations
    # sweep rows carry no forecasts: no empty "forecast against actual" section, one line saying so
    assert 'id="forecast"' not in text and 'id="no-forecasts"' in text and "no per-guest forecasts" in text


def test_report_renders_in_headless_chromium(report, chromium, tmp_path):
    _, html_path = report
    shot = tmp_path / "report.png"
    cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
           f"--screenshot={shot}", "--window-size=1280,2000", html_path.resolve().as_uri()]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    assert run.returncode == 0, run.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1280, 2000)
    from PIL import Image

    with Image.open(shot) as img:
        colours = img.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is None or len(colours) > 50, "the screenshot is (nearly) blank"
    assert len(data) > 20_000
    keep = html_path.parent / "report.png"  # kept beside the report for a human to look at
    shutil.copy(shot, keep)


def test_missing_or_foreign_results_exit_2_and_write_nothing(tmp_path):
    out = tmp_path / "report.html"
    result = CliRunner().invoke(cli, ["report", str(tmp_path / "nope.parquet"), "--out", str(out)])
    assert result.exit_code == 2 and "no such results file" in result.output
    import pyarrow as pa

    pq.write_table(pa.table({"x": [1]}), tmp_path / "other.parquet")
    result = CliRunner().invoke(cli, ["report", str(tmp_path / "other.parquet"), "--out", str(out)])
    assert result.exit_code == 2 and "not sweep results" in result.output
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["other.parquet"]


# --------------------------------------------------------------------------- trade-off and parameters


def test_pareto_front_keeps_exactly_the_non_dominated_points():
    xs = [1.0, 2.0, 3.0, 4.0, 2.0, float("nan"), 5.0, 0.5]
    ys = [5.0, 3.0, 4.0, 1.0, 3.0, 0.0, 5.0, float("nan")]
    # (3,4) loses to (2,3); (5,5) to everything on the front; the twin (2,3)s do not beat each other;
    # NaN points are never on the front and beat nothing (the NaN-x point would otherwise beat all).
    assert pareto_front(xs, ys) == [0, 1, 3, 4]
    assert pareto_front([], []) == []
    assert pareto_front([0.0, 0.0], [2.0, 1.0]) == [1]  # same SLA, less energy wins

    rng = np.random.default_rng(3)
    for _ in range(20):
        x, y = rng.integers(0, 6, 40).astype(float), rng.integers(0, 6, 40).astype(float)
        front = set(pareto_front(x, y))

        def beats(j, i):
            return x[j] <= x[i] and y[j] <= y[i] and (x[j] < x[i] or y[j] < y[i])

        for i in range(len(x)):
            dominated = any(beats(j, i) for j in range(len(x)))
            assert (i in front) == (not dominated), (i, x[i], y[i])


def _row(trace, policy, params, **metrics):
    base = {"trace": trace, "policy": policy, "params": json.dumps(params, sort_keys=True),
            "run": policy + str(params), "energy_kwh": 1.0, "migrations": 0, "slatah": 0.0,
            "overall_sla_violation": 0.0, "esv": 0.0, "slav": 0.0}
    return {**base, **metrics}


def test_swept_parameters_and_their_series_average_over_the_other_parameters():
    rows = [_row("d1", "presplit", {"target": t, "relief": r}, energy_kwh=10 * t + r)
            for t in (0.8, 0.9) for r in (0.5, 0.7)]
    rows += [_row("d1", "lr-mmt", {"safety": s}, energy_kwh=s) for s in (1.1, 1.3)]
    rows += [_row("d1", "thr-mmt", {"threshold": 0.8}), _row("d1", "dvfs", {})]
    assert swept_parameters(rows) == ["relief", "target", "safety"]  # threshold has one value only
    series = parameter_series(rows, "target", "energy_kwh")
    assert list(series) == [("presplit", "d1")]
    (v0, m0, n0), (v1, m1, n1) = series[("presplit", "d1")]
    assert (v0, n0, v1, n1) == (0.8, 2, 0.9, 2)
    assert math.isclose(m0, 8 + 0.6) and math.isclose(m1, 9 + 0.6)  # mean over relief 0.5 and 0.7
    assert "averaged over the swept values of relief" in parameter_note(rows, "target")
    assert "Each point is one run" in parameter_note(rows, "safety")


def test_tradeoff_section_marks_the_pareto_runs_of_each_trace(report):
    results, html_path = report
    text = html_path.read_text(encoding="utf-8")
    assert 'id="tradeoff"' in text and 'id="tradeoff-figure"><img alt="" src="data:image/png;base64,' in text
    assert "SLAV = SLATAH x PDM" in text
    parser = Cells()
    parser.feed(text)
    shown = {(k[1], k[2]) for k in parser.cells if k[0] == "pareto"}
    rows = pq.read_table(results).to_pylist()
    expected = set()
    for trace in {r["trace"] for r in rows}:
        mine = [r for r in rows if r["trace"] == trace]
        front = pareto_front([r["slav"] for r in mine], [r["energy_kwh"] for r in mine])
        assert front, trace
        expected |= {(trace, mine[i]["run"]) for i in front}
        for r in mine:  # every run left out is beaten on both by one on the front
            if (trace, r["run"]) not in expected:
                assert any(mine[i]["slav"] <= r["slav"] and mine[i]["energy_kwh"] <= r["energy_kwh"] for i in front)
    assert shown == expected
    for trace, run in shown:
        r = next(r for r in rows if (r["trace"], r["run"]) == (trace, run))
        assert float(parser.cells[("pareto", trace, run, "energy_kwh")][0]) == r["energy_kwh"]
        assert float(parser.cells[("pareto", trace, run, "slav")][0]) == r["slav"]


def test_a_figure_per_swept_parameter(report):
    _, html_path = report
    text = html_path.read_text(encoding="utf-8")
    figures = re.findall(r'<figure class="param" data-param="([^"]+)"><img alt="" src="data:image/png;base64,'
                         r'[A-Za-z0-9+/=]{1000,}"', text)
    assert figures == ["threshold", "safety", "target"]  # the conftest sweep's three --params
    for param in figures:
        assert f'id="param-{param}"' in text
    # thr-mmt:0.8 on the real day has a single threshold: said, not drawn as a line
    assert "Left out (one threshold value only, no line to draw): thr-mmt on 20110303." in text
