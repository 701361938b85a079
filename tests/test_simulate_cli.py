"""``presplit simulate``: options, errors, JSON output; small synthetic PlanetLab days for speed."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from cli_support import make_day

from presplit.cli.main import cli
from presplit.cli.simulate_cmd import DEFAULT_POLICIES, INT_KEYS
from presplit.scenarios import resolve_scenario
from presplit.sim.runner import METRIC_KEYS

POLICIES = ["dvfs", "thr-mmt:0.8"]


@pytest.fixture(scope="module")
def day(tmp_path_factory):
    return make_day(tmp_path_factory.mktemp("traces") / "20990101")


def invoke(*args):
    return CliRunner().invoke(cli, ["simulate", *map(str, args)])


def policy_args(policies=POLICIES):
    return [a for p in policies for a in ("--policy", p)]


def test_help_explains_every_option():
    result = invoke("--help")
    assert result.exit_code == 0
    for option in ("--trace", "--scenario", "--policy", "--json", "--seed", "--jobs"):
        assert option in result.output
    assert result.output.count("Example") >= 6
    assert "lr-mmt:1.2" in result.output and "cloudsim" in result.output


def test_registered_in_group_help():
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0 and "simulate" in result.output


def test_unknown_policy_is_rejected_before_running(day, tmp_path):
    out = tmp_path / "out.json"
    result = invoke("--trace", day, "--policy", "dvfs", "--policy", "lr-zzz:1.2", "--json", out)
    assert result.exit_code == 2
    assert "--policy" in result.output and "unknown policy 'lr-zzz:1.2'" in result.output
    assert not out.exists()


def test_bad_policy_parameter(day):
    result = invoke("--trace", day, "--policy", "thr-mmt:abc")
    assert result.exit_code == 2
    assert "not a number" in result.output


def test_missing_trace_path(tmp_path):
    out = tmp_path / "out.json"
    missing = tmp_path / "no-such-day"
    result = invoke("--trace", missing, "--policy", "dvfs", "--json", out)
    assert result.exit_code == 2
    assert "--trace" in result.output and "no such file or folder" in result.output
    assert not out.exists()


def test_malformed_trace_names_file_and_line(day, tmp_path):
    bad = make_day(tmp_path / "bad", n_vms=3)
    (bad / "vm_001").write_text("12\n13\nabc\n")
    out = tmp_path / "out.json"
    result = invoke("--trace", day, "--trace", bad, "--policy", "dvfs", "--json", out)
    assert result.exit_code == 2
    assert "vm_001:3" in result.output and "not an integer" in result.output
    assert not out.exists()


def test_unknown_scenario_lists_known_names():
    result = invoke("--scenario", "nope", "--policy", "dvfs")
    assert result.exit_code == 2
    assert "unknown scenario 'nope'" in result.output and "cloudsim" in result.output


def test_a_bad_scenario_file_names_the_file_and_key(tmp_path):
    path = tmp_path / "fleet.yaml"
    path.write_text("hosts: 10\n")
    result = invoke("--scenario", path, "--policy", "dvfs")
    assert result.exit_code == 2
    assert "fleet.yaml" in result.output and "hosts" in result.output


def test_cloudsim_scenario_defaults():
    factory, traces = resolve_scenario("cloudsim")
    assert [t.name for t in traces] == ["20110303"] and traces[0].is_dir()
    assert factory(40).n_hosts == 800
    assert set(DEFAULT_POLICIES) == {"dvfs", "thr-mmt:0.8", "iqr-mmt:1.5", "mad-mmt:2.5",
                                     "lr-mmt:1.2", "lr-mu:1.2", "npa", "presplit"}


def test_small_run_table_and_json(day, tmp_path):
    out = tmp_path / "out.json"
    result = invoke("--trace", day, *policy_args(), "--json", out)
    assert result.exit_code == 0, result.output
    assert "20990101" in result.stdout and "thr-mmt:0.8" in result.stdout
    assert "ratio-of-sums" in result.stdout
    rows = json.loads(out.read_text())
    assert [(r["trace"], r["policy"]) for r in rows] == [("20990101", p) for p in POLICIES]
    for row in rows:
        assert set(row) == {"trace", "policy", *METRIC_KEYS}
        for key in METRIC_KEYS:
            expected = int if key in INT_KEYS else str if key in ("model", "forecaster") else float
            assert type(row[key]) is expected, key
        assert row["model"] == "cloudsim"
        assert row["energy_kwh"] > 0 and row["energy_over_bound"] >= 1.0
        for key in ("slatah", "pdm", "overall_sla_violation"):
            assert 0.0 <= row[key] <= 1.0
    dvfs, thr = rows
    assert dvfs["migrations"] == 0 and thr["migrations"] > 0
    assert thr["energy_kwh"] < dvfs["energy_kwh"]


def test_parallel_jobs_same_results_in_input_order(day, tmp_path):
    second = make_day(tmp_path / "20990102", n_vms=30, seed=1)
    serial, parallel = tmp_path / "serial.json", tmp_path / "parallel.json"
    args = ["--trace", day, "--trace", second, *policy_args(["thr-mmt:0.8", "dvfs"])]
    assert invoke(*args, "--json", serial).exit_code == 0
    result = invoke(*args, "--json", parallel, "--jobs", "2")
    assert result.exit_code == 0, result.output

    def strip(path):
        return [{k: v for k, v in r.items() if k not in ("wall_s", "peak_rss_mb")}
                for r in json.loads(path.read_text())]

    assert strip(serial) == strip(parallel)
    assert [(r["trace"], r["policy"]) for r in strip(parallel)] == [
        ("20990101", "thr-mmt:0.8"), ("20990101", "dvfs"), ("20990102", "thr-mmt:0.8"), ("20990102", "dvfs")]
