"""CLI conventions: ``--json -`` is stdout and nothing else is; progress only on a terminal's stderr;
``--policy`` help and errors name every choice; units on printed columns."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from cli_support import SMALL_SCENARIO

from presplit.cli.main import cli
from presplit.scenarios import bundled_planetlab_day

CHOICES = ("presplit", "evacuate", "npa", "dvfs", "DETECTOR-SELECTOR", "FILE.py:Class", "module:Class")


def make_day(folder: Path, n_vms: int = 12, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    for i in range(n_vms):
        values = np.clip(rng.normal(40, 15, 288), 1, 99).astype(int)
        (folder / f"vm_{i:03d}").write_text("\n".join(map(str, values)) + "\n")
    return folder


@pytest.fixture(scope="module")
def day(tmp_path_factory) -> Path:
    return make_day(tmp_path_factory.mktemp("conv") / "20990101")


@pytest.fixture(scope="module")
def scenario(tmp_path_factory, day) -> Path:
    path = tmp_path_factory.mktemp("scen") / "small.yaml"
    path.write_text(SMALL_SCENARIO.format(trace=day))
    return path


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def only_json(result):
    """stdout is one JSON document and nothing else."""
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# --------------------------------------------------------------------------- --json - is stdout


def test_simulate_json_dash_prints_json_and_nothing_else(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rows = only_json(invoke("simulate", "--policy", "lr-mmt:1.2", "--json", "-"))
    assert [(r["trace"], r["policy"]) for r in rows] == [("20110303", "lr-mmt:1.2")]
    keys = {"energy_kwh", "migrations", "slatah", "pdm", "slav", "esv", "overall_sla_violation", "wall_s"}
    assert keys <= set(rows[0])
    assert not (tmp_path / "-").exists()


def test_simulate_domain_scenario_json_dash(scenario):
    rows = only_json(invoke("simulate", "--scenario", scenario, "--policy", "evacuate", "--json", "-"))
    assert rows[0]["policy"] == "evacuate" and "patch_windows_total" in rows[0]


def test_explain_json_dash_and_file(scenario, tmp_path):
    story = only_json(invoke("explain", "--scenario", scenario, "--guest", "vm_000", "--json", "-"))
    assert story["guest"]["id"] == "vm_000" and story["policy"] == "presplit" and story["actions"]
    first = story["actions"][0]
    assert {"time", "t_s", "action", "args", "outcome", "applied", "reason", "numbers"} <= set(first)
    assert set(story["run"]) == {"cross_host_migrations", "intra_host_moves", "patch_windows_met",
                                 "patch_windows_total"}
    out = tmp_path / "story.json"
    result = invoke("explain", "--scenario", scenario, "--guest", "vm_000", "--json", out)
    assert result.exit_code == 0 and "t (s)" in result.stdout and "actions touched this guest" in result.stdout
    assert json.loads(out.read_text())["actions"] == story["actions"]


def test_fleet_generate_json_dash(tmp_path):
    out = tmp_path / "fleet"
    made = only_json(invoke("fleet", "generate", "--guests", "5", "--hosts", "3", "--from-trace",
                            bundled_planetlab_day("20110303"), "--out", out, "--json", "-"))
    assert made["out"] == str(out) and made["guests"] == 5 and made["hosts"] == 3
    assert (out / "manifest.json").is_file()


def test_forecast_backtest_json_dash(day):
    rows = only_json(invoke("forecast", "backtest", "--trace", day, "--models", "online-ses", "--json", "-"))
    assert rows[0]["model"] == "online-ses" and "pinball_0.95" in rows[0]


def test_bench_tick_json_dash():
    row = only_json(invoke("bench", "tick", "--guests", "200", "--hosts", "20", "--json", "-"))
    assert row["guests"] == 200 and set(row) >= {"tick_s", "forecast_s", "propose_s", "order_s", "actions"}


def test_sweep_and_policies_json_dash(day, tmp_path):
    summary = only_json(invoke("sweep", "--sequential", "--policy", "dvfs", "--trace", day,
                               "--out", tmp_path / "r.parquet", "--json", "-"))
    assert (summary["done"], summary["rows"], summary["failed"]) == (1, 1, [])
    listing = only_json(invoke("policies", "--json", "-"))
    names = {e["name"] for e in listing}
    assert {"presplit", "evacuate", "npa", "dvfs", "lr-SELECTOR[:SAFETY]"} <= names
    evacuate = next(e for e in listing if e["name"] == "evacuate")
    assert evacuate["engine"] == "domains"
    assert {"name": "high", "type": "float", "default": 0.9, "bounds": {"gt": 0, "le": 1},
            "range": "> 0 and <= 1"}.items() <= evacuate["parameters"][0].items()


# --------------------------------------------------------------------------- progress


def test_progress_is_off_unless_stderr_is_a_terminal_and_never_on_stdout(monkeypatch, tmp_path):
    from rich.console import Console

    from presplit.cli.simulate_cmd import progress_bar

    assert progress_bar().disable  # CliRunner's and pytest's stderr are not terminals
    monkeypatch.setattr(Console, "is_terminal", property(lambda self: True))
    assert not progress_bar().disable
    assert progress_bar(enabled=False).disable
    rows = only_json(invoke("simulate", "--policy", "dvfs", "--policy", "npa", "--json", "-"))
    assert [r["policy"] for r in rows] == ["dvfs", "npa"]


# --------------------------------------------------------------------------- --policy help and errors


@pytest.mark.parametrize("command", [["simulate"], ["sweep"], ["explain"]])
def test_policy_help_names_every_choice(command):
    result = invoke(*command, "--help")
    assert result.exit_code == 0
    text = re.sub(r"-\s+", "-", " ".join(result.output.split()))  # help wraps lines at hyphens too
    for choice in CHOICES:
        assert choice in text, (command, choice)


@pytest.mark.parametrize("args", [
    ["simulate", "--policy", "bogus"],
    ["sweep", "--policy", "bogus", "--out", "r.parquet"],
])
def test_unknown_policy_errors_name_every_choice(args, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke(*args)
    assert result.exit_code == 2
    line = result.output.strip()
    assert len(line.splitlines()) == 1 and "unknown policy 'bogus'" in line
    for choice in (*CHOICES, "thr, iqr, mad, lr, lrr", "mmt, mu, mc, rs"):
        assert choice in line, choice


def test_explain_unknown_policy_names_every_choice(scenario):
    result = invoke("explain", "--scenario", scenario, "--guest", "vm_000", "--policy", "bogus")
    assert result.exit_code == 2 and all(c in result.output for c in CHOICES), result.output


# --------------------------------------------------------------------------- units


def test_printed_tables_carry_units(day, scenario):
    result = invoke("simulate", "--trace", day, "--policy", "dvfs")
    assert result.exit_code == 0, result.output
    for header in ("energy (kWh)", "SLATAH (%)", "PDM (%)", "SLAV (%)", "ESV (kWh)", "overall SLA (%)",
                   "E/bound (x)", "wall (s)"):
        assert header in result.stdout, header
    result = invoke("simulate", "--scenario", scenario, "--policy", "evacuate")
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.replace("┃", " ").split())
    for word in ("(kWh)", "(%)", "(GB)", "(guest-s)", "(met/total)", "(s)"):
        assert word in text, word
    result = invoke("forecast", "backtest", "--trace", day, "--models", "online-ses")
    assert result.exit_code == 0, result.output
    for header in ("mae (frac)", "pinball_0.95 (frac)", "coverage_80 (frac)", "lead_time (min)",
                   "false_alarms (/day)", "all (series/s)"):
        assert header in result.stdout, header
