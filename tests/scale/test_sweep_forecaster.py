"""``presplit sweep --forecaster``: expansion, parity with simulate's rows, a real Dask cluster, old results files."""

from __future__ import annotations

import dataclasses

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from presplit.cli.main import cli
from presplit.model.hardware import cloudsim_preset
from presplit.scale.sweep import (
    RunSpec,
    SweepError,
    _schema,
    comparable,
    execute,
    expand_runs,
    run_sweep,
)
from presplit.scale.synthetic import read_manifest
from presplit.sim.runner import run_simulation
from presplit.traces import load_trace

from .conftest import trace_args


def _traces(days):
    return [(d.name, str(read_manifest(d).trace), read_manifest(d).hosts) for d in days]


def test_forecasters_apply_to_presplit_only_and_label_the_runs():
    specs = expand_runs(["lr-mmt:1.2", "presplit"], [("target", [0.9, 0.95])], [("d", "/x", None)],
                        forecasters=["outlook", "oracle"])
    assert [(s.label, s.forecaster) for s in specs] == [
        ("lr-mmt:1.2", "none"),
        ("presplit[target=0.9] [outlook]", "outlook"), ("presplit[target=0.9] [oracle]", "oracle"),
        ("presplit[target=0.95] [outlook]", "outlook"), ("presplit[target=0.95] [oracle]", "oracle")]
    assert specs[2].key == ("d", "presplit", '{"target": 0.9}', "oracle")
    # No --forecaster: the policy's default (baseline-autopilot-1h), and labels without a suffix.
    plain = expand_runs(["presplit", "dvfs"], [], [("d", "/x", None)])
    assert [(s.label, s.forecaster, s.decision_forecaster) for s in plain] == [
        ("presplit", "baseline-autopilot-1h", None), ("dvfs", "none", None)]


@pytest.mark.parametrize("policies, forecasters, needle", [
    (["presplit"], ["crystal-ball"], "--forecaster 'crystal-ball': unknown; expected one of outlook"),
    (["presplit"], ["oracle", "oracle"], "given twice"),
    (["lr-mmt", "dvfs"], ["oracle"], "applies to none of the policies"),
])
def test_forecaster_errors(policies, forecasters, needle):
    with pytest.raises(SweepError) as err:
        expand_runs(policies, [], [("d", "/x", None)], forecasters=forecasters)
    assert needle in str(err.value)


def test_cli_refuses_a_bad_forecaster_before_any_work(tmp_path, small_days):
    out = tmp_path / "r.parquet"
    result = CliRunner().invoke(cli, ["sweep", "--policy", "presplit", "--forecaster", "nope",
                                      *trace_args(small_days[:1]), "--out", str(out)])
    assert result.exit_code == 2 and "--forecaster 'nope': unknown" in result.output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("forecaster", ["oracle", "reactive", "outlook"])
def test_execute_matches_simulate_with_the_same_forecaster(small_days, forecaster):
    day = read_manifest(small_days[0])
    workload = load_trace(day.trace)
    spec = RunSpec(small_days[0].name, str(day.trace), day.hosts, "cloudsim", "presplit", (), forecaster=forecaster)
    row = execute(spec)
    ref, _ = run_simulation(workload, "presplit", fleet=cloudsim_preset(workload.n_guests, day.hosts),
                            forecaster=forecaster)
    assert row["forecaster"] == ref["forecaster"] == forecaster
    for key in ("energy_kwh", "migrations", "slatah", "pdm", "esv", "overall_sla_violation"):
        assert row[key] == ref[key], key


def test_dask_sweep_over_forecasters_matches_sequential(small_days, tmp_path):
    """A real distributed.LocalCluster (2 worker processes) runs the forecaster grid; the rows equal a
    sequential run's, carry their forecaster, and a rerun skips them all."""
    specs = expand_runs(["presplit", "lr-mmt:1.2"], [], _traces(small_days[:1]),
                        forecasters=["outlook", "oracle", "reactive"])
    assert len(specs) == 4
    out = tmp_path / "dask.parquet"
    summary = run_sweep(specs, out, workers=2, progress=False)
    assert (summary.done, summary.failed, summary.rows) == (4, [], 4)
    rows = pq.read_table(out).to_pylist()
    assert sorted((r["run"], r["forecaster"]) for r in rows) == [
        ("lr-mmt:1.2", "none"), ("presplit [oracle]", "oracle"), ("presplit [outlook]", "outlook"),
        ("presplit [reactive]", "reactive")]
    by = {r["forecaster"]: r for r in rows}
    assert by["oracle"]["esv"] < by["reactive"]["esv"]  # the forecasts decide: the runs differ
    seq = tmp_path / "seq.parquet"
    run_sweep(specs, seq, sequential=True, progress=False)
    assert comparable(pq.read_table(out)) == comparable(pq.read_table(seq))
    again = run_sweep(specs, out, workers=2, progress=False)
    assert (again.done, again.skipped) == (0, 4)


def test_results_without_a_forecaster_column_resume_as_what_they_ran(small_days, tmp_path):
    """A file written before the column existed: its presplit rows ran on the outlook, the others on none."""
    traces = _traces(small_days[:1])
    specs = expand_runs(["presplit", "dvfs"], [], traces)
    out = tmp_path / "old.parquet"
    run_sweep(specs, out, sequential=True, progress=False)
    table = pq.read_table(out)
    pq.write_table(table.select(_schema().names), out)  # the old layout: no forecaster column
    assert "forecaster" not in pq.read_table(out).column_names
    wider = expand_runs(["presplit", "dvfs"], [], traces, forecasters=["outlook", "reactive"])
    summary = run_sweep(wider, out, sequential=True, progress=False)
    assert (summary.done, summary.skipped, summary.rows) == (1, 2, 3)
    rows = pq.read_table(out).to_pylist()
    assert sorted((r["run"], r["forecaster"]) for r in rows) == [
        ("dvfs", "none"), ("presplit", "outlook"), ("presplit [reactive]", "reactive")]


def test_cli_sweep_rows_carry_the_forecaster_and_the_report_reads_them(small_days, tmp_path):
    out = tmp_path / "r.parquet"
    result = CliRunner().invoke(cli, ["sweep", "--sequential", "--policy", "presplit", "--param", "target=0.9,0.95",
                                      "--forecaster", "oracle", "--forecaster", "outlook",
                                      *trace_args(small_days[:1]), "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = pq.read_table(out).to_pylist()
    assert [(r["run"], r["forecaster"]) for r in rows] == [  # sorted: parameter values, then forecaster
        ("presplit[target=0.9] [oracle]", "oracle"), ("presplit[target=0.9] [outlook]", "outlook"),
        ("presplit[target=0.95] [oracle]", "oracle"), ("presplit[target=0.95] [outlook]", "outlook")]
    from presplit.scale.report import load_results

    assert len({r["run"] for r in load_results(out)}) == 4


def test_build_policy_gives_the_forecaster(small_days):
    from presplit.scale.sweep import build_policy

    spec = RunSpec("d", "/x", None, "cloudsim", "presplit", (("target", 0.9),))
    assert build_policy(spec).forecaster_name is None
    assert build_policy(dataclasses.replace(spec, forecaster="oracle")).forecaster_name == "oracle"


def test_presplit_consolidate_sweeps_like_presplit_and_bad_option_values_are_refused():
    specs = expand_runs(["presplit-consolidate"], [("calibrate", ["off", "pack"]), ("calibrate_level", [0.8])],
                        [("d", "/x", None)], forecasters=["baseline-autopilot-1h"])
    assert [s.label for s in specs] == [
        "presplit-consolidate[calibrate=off,calibrate_level=0.8]",
        "presplit-consolidate[calibrate=pack,calibrate_level=0.8]"]
    with pytest.raises(SweepError, match="--param: presplit relief_cost 'cheap': expected one of ram, demand"):
        expand_runs(["presplit"], [("relief_cost", ["cheap"])], [("d", "/x", None)])


def test_a_scenario_that_sizes_its_fleet_by_the_trace_gets_that_fleet():
    """bitbrains builds its fleet from the workload (each VM at its own size), not from a guest count."""
    from presplit.scale.sweep import _fleet
    from presplit.scenarios import resolve_scenario
    from presplit.scenarios.trace_fleet import build_fleet

    factory, traces = resolve_scenario("bitbrains")
    workload = load_trace(traces[0])
    spec = RunSpec("bb", str(traces[0]), None, "bitbrains", "presplit", ())
    fleet = _fleet(spec, workload)
    ref = build_fleet(factory, workload)
    assert (fleet.n_hosts, fleet.model.name, len(fleet.guest_type_of)) == (ref.n_hosts, ref.model.name,
                                                                           workload.n_guests)
