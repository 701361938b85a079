"""``presplit sweep``: policy x parameter x trace grids on Dask, resumable (see presplit.scale.sweep)."""

from __future__ import annotations

from pathlib import Path

import click

from presplit.cli.options import FORECASTER_NAMES_HELP
from presplit.cli.policies_cmd import POLICY_HELP


@click.command("sweep", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--scenario", default="cloudsim", show_default=True, metavar="NAME|FILE",
              help="CloudSim-engine scenario giving the fleet (and the default trace). Example: --scenario cloudsim")
@click.option("--policy", "policies", multiple=True, metavar="NAME",
              help="Policy to sweep; repeatable. A CloudSim-engine policy: " + POLICY_HELP + "; a plugin's "
                   "class must say engine = 'cloudsim'. Example: --policy lr-mmt --policy presplit")
@click.option("--param", "params", multiple=True, metavar="NAME=V1,V2",
              help="Values of a policy parameter; repeatable. threshold (thr-*), safety (iqr/mad/lr/lrr-*), "
                   "a presplit ConsolidationParams field (target, relief, cooldown_steps, ..., "
                   "outlook.window) or a plugin's declared parameter (presplit policies lists them). Each policy "
                   "sweeps the ones it takes. Example: --param safety=1.1,1.2,1.3")
@click.option("--forecaster", "forecasters", multiple=True, metavar="NAME",
              help="Forecast the presplit policy decides on; repeatable (each presplit parameter combination runs "
                   "once per forecaster; policies that decide on no forecast run once, forecaster 'none'): "
                   "baseline-autopilot-1h (the default; outlook is set by the outlook.* parameters), "
                   + FORECASTER_NAMES_HELP + ". Example: --forecaster outlook --forecaster oracle")
@click.option("--trace", "traces", multiple=True, metavar="PATH",
              help="Trace or `presplit fleet generate` folder; repeatable (its manifest's host count is "
                   "used). Default: the scenario's trace. Example: --trace data/planetlab/20110306")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="Dask scheduler to use instead of a local cluster; its workers need presplit and the "
                   "trace paths. Example: --scheduler tcp://10.0.0.5:8786")
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True, metavar="N",
              help="Worker processes of the local cluster.")
@click.option("--sequential", is_flag=True, help="Run in this process without Dask (same results).")
@click.option("--seed", type=int, default=0, show_default=True, metavar="N",
              help="Seed for randomised policies (the rs selector).")
@click.option("--limit", type=click.IntRange(min=1), default=None, metavar="N",
              help="Stop after N new runs; a rerun continues with the rest.")
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), required=True, metavar="FILE",
              help="Results Parquet file; finished runs in it are skipped. Example: --out results.parquet")
@click.option("--json", "json_path", type=click.Path(allow_dash=True), default=None,
              metavar="FILE|-",
              help="Also write the summary (out, total, done, skipped, failed runs with their errors, rows, "
                   "stopped_early) as JSON; '-' is stdout. Example: --json -")
def sweep(scenario: str, policies: tuple[str, ...], params: tuple[str, ...], forecasters: tuple[str, ...],
          traces: tuple[str, ...],
          scheduler: str | None, workers: int, sequential: bool, seed: int, limit: int | None, out: Path,
          json_path: str | None) -> None:
    """Run every policy x parameter value x trace and collect the metrics in a Parquet file.

    Each finished run is saved at once (in OUT.parts/, merged into OUT at the
    end), so an interrupted sweep resumes where it stopped when run again with
    the same --out: runs already there, keyed by (trace, policy, params, forecaster), are skipped.

    \b
    Examples:
      presplit sweep --policy lr-mmt --param safety=1.1,1.2,1.3 --out results.parquet
      presplit sweep --policy examples/threshold_policy.py:Threshold --param high=0.7,0.8 --out results.parquet
      presplit sweep --policy thr-mmt --policy lr-mmt --policy presplit \\
          --param threshold=0.7,0.8 --param safety=1.1,1.2 --param target=0.85,0.95 \\
          --trace data/planetlab/20110303 --trace data/planetlab/20110306 --out results.parquet
      presplit sweep --policy presplit --policy lr-mmt:1.2 --forecaster outlook --forecaster oracle \
          --param target=0.9,0.95 --out results.parquet
    """
    from presplit.cli.simulate_cmd import check_json_file, check_output_file, check_seed, trace_label, write_json
    from presplit.errors import InputError
    from presplit.scale.synthetic import FleetError, read_manifest
    from presplit.scale.sweep import ResultStore, SweepError, expand_runs, parse_param, run_sweep
    from presplit.scenarios import ScenarioError, resolve_scenario

    # Every input is checked before the cluster starts; each error is one line naming the option.
    check_output_file(out, "--out")
    check_json_file(json_path)
    check_seed(seed)
    try:
        _, default_traces = resolve_scenario(scenario)
    except ScenarioError as exc:
        raise ScenarioError(f"--scenario: {exc} (the sweep runs CloudSim-engine scenarios: cloudsim or a "
                            "YAML file with engine: cloudsim)") from None
    try:
        parsed = [parse_param(p) for p in params]
    except SweepError as exc:
        raise SweepError(f"--param: {exc}") from None

    trace_specs = []
    for path in list(traces) or [str(p) for p in default_traces]:
        p = Path(path)
        what = f"--trace {path}" if traces else f"scenario {scenario!r}: trace {path}"
        if not p.exists():
            raise InputError(f"{what}: no such file or folder; expected a trace or a `presplit fleet generate` "
                             "folder" + ("" if traces else "; pass --trace PATH to use another trace"))
        try:
            manifest = read_manifest(p)
        except FleetError as exc:
            raise FleetError(f"{what}: {exc}") from None
        if manifest is not None:
            trace_specs.append((trace_label(p), str(manifest.trace.resolve()), manifest.hosts))
        else:
            trace_specs.append((trace_label(p), str(p.resolve()), None))
    specs = expand_runs(policies, parsed, trace_specs, scenario=scenario, seed=seed, forecasters=forecasters)
    ResultStore(out).finished()  # an unreadable results file fails here, before any work

    _check_traces(trace_specs, user_given=bool(traces), scenario=scenario)
    try:
        summary = run_sweep(specs, out, scheduler=scheduler, workers=workers, sequential=sequential, limit=limit,
                            progress=_stderr_is_terminal())
    except OSError as exc:  # e.g. the scheduler address is unreachable
        raise click.ClickException(f"sweep failed: {exc}") from None
    click.echo(f"{summary.done} runs done, {summary.skipped} already in {out}, {len(summary.failed)} failed; "
               f"{summary.rows} rows in {out}", err=True)
    for spec, error in summary.failed:
        click.echo(f"  failed: {spec.trace} {spec.label}: {error}", err=True)
    if summary.stopped_early:
        click.echo("stopped early; run the same command again to continue", err=True)
    if json_path is not None:
        write_json(json_path, {
            "out": str(out), "total": summary.total, "done": summary.done, "skipped": summary.skipped,
            "failed": [{"trace": spec.trace, "run": spec.label, "error": error} for spec, error in summary.failed],
            "rows": summary.rows, "stopped_early": summary.stopped_early})
    if summary.failed:
        raise SystemExit(1)


def _stderr_is_terminal() -> bool:
    """The sweep's progress bar is drawn on stderr only when it is a terminal."""
    from rich.console import Console

    return Console(stderr=True).is_terminal


def _check_traces(trace_specs, *, user_given: bool, scenario: str) -> None:
    """Load each trace once here so a bad one is reported before the cluster starts."""
    from presplit.cli.simulate_cmd import check_cloudsim_length, load_scenario_trace, load_user_trace

    for label, path, _ in trace_specs:
        workload = load_user_trace(path, "--trace") if user_given else load_scenario_trace(path, scenario)
        check_cloudsim_length(workload, f"--trace {path}" if user_given else f"scenario {scenario!r}: trace {path}")
