"""``presplit bench tick``: the per-tick cost command runs on a small fleet, with and without IO."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from presplit.cli.main import cli


@pytest.mark.parametrize("io", [False, True])
def test_bench_tick_writes_its_figures(tmp_path, io):
    out = tmp_path / "tick.json"
    args = ["bench", "tick", "--guests", "400", "--hosts", "40", "--json", str(out)] + (["--io"] if io else [])
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    row = json.loads(out.read_text())
    assert row["guests"] == 400 and row["hosts"] == 40 and row["actions"] > 0
    assert 0 < row["tick_s"] and row["tick_s"] >= row["propose_s"]


def test_io_fleet_feeds_io_the_services_carry():
    from importlib.resources import files

    from presplit.scale.tick import build_fleet
    from presplit.traces import load_trace

    source = load_trace(str(files("presplit") / "data" / "planetlab" / "20110303"))
    state, work = build_fleet(300, 30, source, io=True)
    assert state.model.io_modelled and work.io_mb_s.shape == (300, 24, 2)
    assert (work.io_mb_s >= 0).all() and work.io_mb_s[:, :, 0].max() > 0
    plain, work2 = build_fleet(300, 30, source)
    assert not plain.model.io_modelled and work2.io_mb_s is None
