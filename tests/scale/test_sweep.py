"""``presplit sweep``: the grammar, parity with run_simulation, kill-and-resume on Dask, sequential equality."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from presplit.cli.main import cli
from presplit.model.hardware import cloudsim_preset
from presplit.scale.sweep import (
    RunSpec,
    SweepError,
    comparable,
    execute,
    expand_runs,
    parse_param,
    run_sweep,
)
from presplit.scale.synthetic import read_manifest
from presplit.sim.runner import run_simulation
from presplit.traces import load_trace

from .conftest import N_RUNS, SMALL_HOSTS, SWEEP_ARGS, trace_args


def _specs(days, **kw):
    traces = [(d.name, str(read_manifest(d).trace), read_manifest(d).hosts) for d in days]
    return expand_runs(["thr-mmt", "lr-mmt", "presplit"],
                       [("threshold", [0.7, 0.8, 0.9]), ("safety", [1.1, 1.2, 1.3]), ("target", [0.85, 0.9, 0.95])],
                       traces, **kw)


# --------------------------------------------------------------------------- grammar


def test_parse_param():
    assert parse_param("safety=1.1,1.2") == ("safety", [1.1, 1.2])
    assert parse_param(" cooldown_steps = 6, 12 ") == ("cooldown_steps", [6, 12])
    assert parse_param("mode=window,next") == ("mode", ["window", "next"])
    for bad in ("safety", "=1,2", "safety=", "safety=1,,2", "safety=1,1"):
        with pytest.raises(SweepError, match="expected NAME=V1,V2|repeated"):
            parse_param(bad)


def test_expansion_labels_and_order(small_days):
    specs = _specs(small_days)
    assert len(specs) == N_RUNS
    assert [s.label for s in specs[:9]] == [
        "thr-mmt:0.7", "thr-mmt:0.8", "thr-mmt:0.9", "lr-mmt:1.1", "lr-mmt:1.2", "lr-mmt:1.3",
        "presplit[target=0.85]", "presplit[target=0.9]", "presplit[target=0.95]"]
    assert {s.trace for s in specs} == {d.name for d in small_days}
    assert all(s.hosts == SMALL_HOSTS for s in specs)
    assert specs[4].key == (small_days[0].name, "lr-mmt", '{"safety": 1.2}', "none")


def test_policies_without_a_given_param_run_once_with_defaults():
    specs = expand_runs(["dvfs", "lr-mu:1.3", "mad-mmt"], [], [("d", "/x", None)])
    assert [s.label for s in specs] == ["dvfs", "lr-mu:1.3", "mad-mmt:2.5"]


@pytest.mark.parametrize("policies, params, needle", [
    (["nope"], [], "unknown policy 'nope'"),
    (["lr-mmt"], [("safty", [1.0])], "applies to none of the policies (lr-mmt takes safety)"),
    (["lr-mmt:1.2"], [("safety", [1.0, 1.1])], "fixes its parameter"),
    (["presplit"], [("cooldown_steps", [1.5])], "expects an integer"),
    (["presplit"], [("mode", ["sideways"])], "window or next"),
    (["lr-mmt"], [("safety", [-1.0])], "lr-mmt:-1.0"),
    (["evacuate"], [], "domain engine"),
    ([], [], "no --policy"),
])
def test_expansion_errors(policies, params, needle):
    with pytest.raises(SweepError) as err:
        expand_runs(policies, params, [("d", "/x", None)])
    assert needle in str(err.value)


def test_cli_errors_exit_2_and_write_nothing(tmp_path, small_days):
    out = tmp_path / "r.parquet"
    cases = [
        (["--policy", "lr-mmt", "--param", "safety"], "NAME=V1,V2"),
        (["--policy", "bogus"], "unknown policy"),
        (["--policy", "lr-mmt", "--param", "threshold=0.8"], "applies to none"),
        (["--policy", "lr-mmt", "--trace", str(tmp_path / "missing")], "no such file"),
        (["--policy", "lr-mmt", "--scenario", "nowhere"], "unknown scenario"),
    ]
    for args, needle in cases:
        if "--trace" not in args:
            args = [*args, *trace_args(small_days[:1])]
        result = CliRunner().invoke(cli, ["sweep", *args, "--out", str(out)])
        assert result.exit_code == 2, (args, result.output)
        assert needle in result.output, (args, result.output)
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "junk.parquet").write_text("not parquet")
    result = CliRunner().invoke(cli, ["sweep", "--policy", "dvfs", *trace_args(small_days[:1]),
                                      "--out", str(tmp_path / "junk.parquet")])
    assert result.exit_code == 2 and "not a readable Parquet file" in result.output


# --------------------------------------------------------------------------- running


@pytest.mark.parametrize("policy", ["dvfs", "lr-mmt:1.2", "thr-rs:0.8", "presplit"])
def test_execute_matches_run_simulation(small_days, policy):
    day = read_manifest(small_days[1])
    workload = load_trace(day.trace)
    base, _, value = policy.partition(":")
    params = () if base in ("dvfs", "presplit") else ((("threshold" if base.startswith("thr") else "safety"),
                                                       float(value)),)
    spec = RunSpec(small_days[1].name, str(day.trace), day.hosts, "cloudsim", base, params, seed=3)
    assert spec.label == policy
    row = execute(spec)
    ref, result = run_simulation(workload, policy, fleet=cloudsim_preset(workload.n_guests, day.hosts), seed=3)
    for key in ("energy_kwh", "migrations", "slatah", "pdm", "slav", "esv", "overall_sla_violation",
                "fluid_bound_kwh", "energy_over_bound", "served_bound_kwh", "energy_over_served_bound"):
        assert row[key] == ref[key], key
    assert row["active_hosts"] == result.active_hosts.tolist()
    assert row["migrations_per_guest"] == result.migrations_per_guest.tolist()
    assert sum(row["migrations_per_guest"]) == row["migrations"]


def test_killed_dask_sweep_resumes_and_matches_sequential(resumed_sweep, small_days, tmp_path):
    info = resumed_sweep
    assert info["alive_at_kill"], "the sweep finished before it could be killed: " + info["first_stderr"]
    assert 5 <= info["parts_at_kill"] < N_RUNS
    second = info["second"]
    assert second.returncode == 0, second.stderr
    # The rerun skipped exactly what the killed run had saved, and finished the rest.
    skipped = info["parts_at_kill"]
    assert f"{N_RUNS - skipped} runs done, {skipped} already in" in second.stderr
    assert not info["parts"].exists()  # merged and cleaned up
    resumed = pq.read_table(info["out"])
    assert resumed.num_rows == N_RUNS

    sequential = tmp_path / "seq.parquet"
    summary = run_sweep(_specs(small_days), sequential, sequential=True, progress=False)
    assert summary.done == N_RUNS and not summary.failed
    assert comparable(resumed) == comparable(pq.read_table(sequential))


def test_limit_stops_early_and_rerun_skips_finished(small_days, tmp_path):
    out = tmp_path / "r.parquet"
    specs = _specs(small_days[:1])
    first = run_sweep(specs, out, sequential=True, limit=4, progress=False)
    assert (first.done, first.skipped, first.stopped_early, first.rows) == (4, 0, True, 4)
    second = run_sweep(specs, out, sequential=True, progress=False)
    assert (second.done, second.skipped, second.stopped_early, second.rows) == (5, 4, False, 9)
    again = run_sweep(specs, out, sequential=True, progress=False)
    assert (again.done, again.skipped) == (0, 9)
    # A wider sweep into the same file adds only the new keys.
    wider = run_sweep(_specs(small_days[:2]), out, sequential=True, progress=False)
    assert (wider.done, wider.skipped, wider.rows) == (9, 9, 18)


def test_cli_sequential_sweep_of_a_plain_trace_uses_the_scenario_fleet(tmp_path, small_days):
    out = tmp_path / "r.parquet"
    trace = read_manifest(small_days[0]).trace  # the day folder itself: no manifest, so 800 hosts
    result = CliRunner().invoke(cli, ["sweep", "--sequential", "--policy", "dvfs", "--trace", str(trace),
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    row = pq.read_table(out).to_pylist()[0]
    assert (row["trace"], row["run"], row["n_hosts"], row["n_guests"]) == ("trace", "dvfs", 800, 60)


def test_sweep_args_cover_three_policies_and_three_values():
    assert SWEEP_ARGS.count("--policy") == 3 and SWEEP_ARGS.count("--param") == 3
