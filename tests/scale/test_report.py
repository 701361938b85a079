"""``presplit report``: the HTML holds the results' numbers, is self-contained, and renders in Chromium."""

from __future__ import annotations

import math
import re
import shutil
import struct
import subprocess
from html.parser import HTMLParser

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from presplit.cli.main import cli
from presplit.scale.report import FORMATS, load_reference, migration_stats
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
    assert parser.images == 3
    assert 'id="forecast"' in text and "Not shown" in text


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
