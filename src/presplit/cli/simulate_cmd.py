"""``presplit simulate``: run traces x policies on the simulator and tabulate the metrics."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import click

from presplit.cli.options import FORECASTER_NAMES_HELP
from presplit.cli.policies_cmd import POLICY_HELP

DEFAULT_POLICIES = ("dvfs", "thr-mmt:0.8", "iqr-mmt:1.5", "mad-mmt:2.5", "lr-mmt:1.2", "lr-mu:1.2", "npa", "presplit")
"""The baselines of the CloudSim reference runs, plus the non-power-aware one."""

PERCENT_KEYS = ("slatah", "pdm", "slav", "overall_sla_violation")
INT_KEYS = ("migrations", "refused_actions", "boots", "guests_unplaced", "guests_lost", "failover_restarts",
            "failover_capacity_short", "failures_injected", "migrations_failed")


# --------------------------------------------------------------------------- running


def trace_label(path: str | Path) -> str:
    """What a trace is called in tables and JSON: its folder or file name (e.g. ``20110303``)."""
    p = Path(path)
    return p.name or p.resolve().name


def clean_row(row: dict, *, trace: str, policy: str) -> dict:
    """``trace``, ``policy`` and exactly the METRIC_KEYS (and the FAILURE_KEYS of a run with failures), as plain
    Python ints/floats."""
    from presplit.sim.runner import FAILURE_KEYS, METRIC_KEYS

    out: dict = {"trace": trace, "policy": policy}
    for key in (*METRIC_KEYS, *(k for k in FAILURE_KEYS if k in row)):
        value = row[key]
        if hasattr(value, "item"):  # numpy scalar
            value = value.item()
        out[key] = value if isinstance(value, str) else int(value) if key in INT_KEYS else float(value)
    return out


_WORKER: dict = {}


def _init_worker(workloads: Sequence, fleet_factory: Callable | None, seed: int, failures=None) -> None:
    _WORKER.update(workloads=workloads, fleet_factory=fleet_factory, seed=seed, failures=failures)


def _run_pair(index: int, policy: str, forecaster: str | None = None) -> dict:
    from presplit.scenarios.trace_fleet import build_fleet
    from presplit.sim.runner import run_simulation

    workload, label = _WORKER["workloads"][index]
    factory = _WORKER["fleet_factory"]
    fleet = build_fleet(factory, workload) if factory is not None else None
    row, _ = run_simulation(workload, policy, fleet=fleet, seed=_WORKER["seed"], forecaster=forecaster,
                            failures=_WORKER.get("failures"))
    return clean_row(row, trace=label, policy=policy)


def run_pairs(workloads: Sequence[tuple[object, str]], policies: Sequence[str], *,
              fleet_factory: Callable | None = None, seed: int = 0, jobs: int = 1,
              progress: bool = True, description: str = "simulating",
              forecasters: Sequence[str] = (), failures=None) -> list[dict]:
    """Run every (workload, policy) pair; rows come back in input order (traces outer, policies inner).

    ``workloads`` holds ``(Workload, label)`` pairs. With ``jobs > 1`` pairs run
    in separate processes; the metrics do not depend on ``jobs`` (only
    ``wall_s`` and ``peak_rss_mb`` do). A progress bar goes to stderr when
    ``progress`` is true and there is more than one run.
    """
    tasks = [(i, p, f) for i in range(len(workloads)) for p in policies
             for f in (forecasters if forecasters and _takes_forecaster(p) else (None,))]
    return run_tasks(workloads, tasks, fleet_factory=fleet_factory, seed=seed, jobs=jobs,
                     progress=progress, description=description, failures=failures)


def _takes_forecaster(policy: str) -> bool:
    from presplit.policies import make_policy
    from presplit.sim.runner import takes_forecaster

    return takes_forecaster(make_policy(policy))


def run_tasks(workloads: Sequence[tuple[object, str]], tasks: Sequence[tuple], *,
              fleet_factory: Callable | None = None, seed: int = 0, jobs: int = 1,
              progress: bool = True, description: str = "simulating", failures=None) -> list[dict]:
    """Like :func:`run_pairs` for an explicit list of ``(workload index, policy[, forecaster])`` tasks."""
    results: list[dict | None] = [None] * len(tasks)
    jobs = max(1, min(jobs, len(tasks)))

    bar = None
    if progress and len(tasks) > 1:
        bar = progress_bar()
    try:
        if bar is not None:
            bar.start()
            task_id = bar.add_task(description, total=len(tasks), last="")

        def done(k: int, row: dict) -> None:
            results[k] = row
            if bar is not None:
                bar.update(task_id, advance=1, last=f"{row['trace']} {row['policy']}")

        if jobs == 1:
            _init_worker(workloads, fleet_factory, seed, failures)
            try:
                for k, task in enumerate(tasks):
                    done(k, _run_pair(*task))
            finally:
                _WORKER.clear()
        else:
            with ProcessPoolExecutor(max_workers=jobs, initializer=_init_worker,
                                     initargs=(list(workloads), fleet_factory, seed, failures)) as pool:
                futures = {pool.submit(_run_pair, *task): k for k, task in enumerate(tasks)}
                for fut in as_completed(futures):
                    done(futures[fut], fut.result())
    finally:
        if bar is not None:
            bar.stop()
    return [r for r in results if r is not None]


# --------------------------------------------------------------------------- output


def _pct(value: float) -> str:
    """A fraction as a number of percent (the column header says %)."""
    if math.isnan(value):
        return "nan"
    if value == 0:
        return "0"
    return f"{value * 100:.3g}"


def render_table(rows: Sequence[dict]):
    from rich.table import Table

    table = Table(caption=("SLATAH, PDM, SLAV and overall SLA violation use CloudSim's ratio-of-sums "
                           "definitions (not the paper's per-host/per-VM averages); "
                           "ESV = energy x SLAV; E/bound = energy / fluid lower bound (JSON keys: energy_kwh, "
                           "migrations, slatah, pdm, slav, esv, overall_sla_violation, energy_over_bound, wall_s)."),
                  caption_justify="left")
    columns = [("trace", "left"), ("policy", "left"), ("energy (kWh)", "right"), ("migrations", "right"),
               ("SLATAH (%)", "right"), ("PDM (%)", "right"), ("SLAV (%)", "right"), ("ESV (kWh)", "right"),
               ("overall SLA (%)", "right"), ("E/bound (x)", "right"), ("wall (s)", "right")]
    for name, justify in columns:
        if justify == "left":  # names: a long plugin spec folds rather than squeezing the numbers
            table.add_column(name, justify=justify, overflow="fold")
        else:
            table.add_column(name, justify=justify, no_wrap=True, min_width=len(name))
    for r in rows:
        table.add_row(
            r["trace"], r["policy"] + (f" [{r['forecaster']}]" if r.get("forecaster") not in (None, "none") else ""),
            f"{r['energy_kwh']:.2f}", f"{r['migrations']:,}",
            _pct(r["slatah"]), _pct(r["pdm"]), _pct(r["slav"]), f"{r['esv']:.4g}",
            _pct(r["overall_sla_violation"]), f"{r['energy_over_bound']:.3f}", f"{r['wall_s']:.2f}")
    return table


def render_failure_table(rows: Sequence[dict]):
    """The failure metrics of runs with ``--failures`` on the CloudSim engine."""
    from rich.table import Table

    table = Table(caption="failures on the CloudSim engine: host crashes (a guest is down from the crash until it "
                          "has booted elsewhere) and failed live migrations; failover_capacity_short is 0 there "
                          "(no failover reserve)", caption_justify="left")
    for name in ("trace", "policy", "injected", "lost", "restarts", "failover max (s)", "failover p95 (s)",
                 "downtime (s)", "migrations failed"):
        table.add_column(name, justify="left" if name in ("trace", "policy") else "right")
    for r in rows:
        table.add_row(r["trace"], r["policy"], f"{r['failures_injected']:,}", f"{r['guests_lost']:,}",
                      f"{r['failover_restarts']:,}", f"{r['failover_max_s']:.0f}", f"{r['failover_p95_s']:.0f}",
                      f"{r['failure_downtime_s']:,.0f}", f"{r['migrations_failed']:,}")
    return table


# --------------------------------------------------------------------------- command


@click.command("simulate", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--trace", "traces", multiple=True, metavar="PATH",
              help="Trace to replay; repeatable. A PlanetLab day folder, a Bitbrains .csv (or folder "
                   "of them) or a long-format .parquet/.csv. Default: the scenario's trace. "
                   "Example: --trace data/planetlab/20110306 --trace data/planetlab/20110309")
@click.option("--scenario", default="cloudsim", show_default=True, metavar="NAME|FILE",
              help="Fleet (and default trace) to simulate: a shipped name or a scenario YAML file. 'cloudsim' "
                   "is CloudSim's 800 hosts (HP ML110 G4/G5) with the bundled PlanetLab day 20110303; "
                   "'bighost-patch' is 40 split-domain hosts with patch windows, fed by the Bitbrains week "
                   "(domain engine, policies such as evacuate). Example: --scenario bighost-patch")
@click.option("--policy", "policies", multiple=True, metavar="NAME",
              help="Policy to run; repeatable. " + POLICY_HELP + ". Default: " + ", ".join(DEFAULT_POLICIES)
                   + " (domain scenarios: evacuate, presplit). Example: --policy lr-mmt:1.2 --policy "
                   "examples/threshold_policy.py:Threshold")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, writable=True, allow_dash=True),
              metavar="FILE|-",
              help="Also write the results as a JSON list of objects (trace, policy and every metric); "
                   "'-' writes them to stdout instead of the table. Example: --json results.json")
@click.option("--forecaster", "forecasters", multiple=True, metavar="NAME",
              help="Forecast the presplit policy decides on; repeatable (one row per trace x policy x forecaster; "
                   "policies that decide on no forecast run once). Default: each policy's own (presplit on split "
                   "domains: outlook; on the CloudSim engine: baseline-autopilot-1h with calibrated host bounds). "
                   "Names: " + FORECASTER_NAMES_HELP + ". Example: --forecaster reactive --forecaster oracle")
@click.option("--model", "model_name", type=click.Choice(["cloudsim", "realistic"]), default=None,
              help="Model preset: cloudsim (CloudSim 3.0.3's, for parity: memory is asked for only at start, hosts "
                   "boot at once) or realistic (memory is a hard limit, hosts take 180 s to boot and 60 s to stop "
                   "and draw 10 W off, idle guests stay, pre-copy migrations share NIC bandwidth). Default: the "
                   "scenario's `model:` (cloudsim). Example: --model realistic")
@click.option("--failures", "failures_text", default=None, metavar="FILE|RATE-SPEC",
              help="Inject failures, seeded (on domain scenarios instead of the scenario's `failures:`): rates per "
                   "day for the fleet of host crashes, domain-services crashes and NIC or rack-uplink failures, a "
                   "probability per live migration, repair times, or a YAML file with those keys plus timed "
                   "`events` and restart `priorities`. The CloudSim engine takes host crashes, failed migrations, "
                   "repair and boot times and host events (host: its index); it has no fabric and one domain "
                   "per host, so it refuses link and domain failures. Rows gain guests_lost, failover_restarts, "
                   "failover_max_s, failover_p95_s, failure_downtime_s, failover_capacity_short. Example: --failures "
                   "host=2/day,domain=5/day,link=1/day,migration=0.01,seed=3")
@click.option("--seed", type=int, default=0, show_default=True, metavar="N",
              help="Seed for randomised policies (the rs selector). Example: --seed 7")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=1, show_default=True, metavar="N",
              help="Run (trace, policy) pairs in N parallel processes; results and their order do "
                   "not change. Example: --jobs 2")
def simulate(traces: tuple[str, ...], scenario: str, policies: tuple[str, ...], json_path: str | None,
             forecasters: tuple[str, ...], model_name: str | None, seed: int, jobs: int,
             failures_text: str | None = None) -> None:
    """Replay traces under consolidation policies and report energy, migrations and SLA metrics.

    Every (trace, policy) pair is run; one table row per run, in the order given.

    \b
    Examples:
      presplit simulate                                   # CloudSim day 20110303, all baselines
      presplit simulate --policy lr-mmt:1.2 --policy dvfs --json out.json
      presplit simulate --policy examples/threshold_policy.py:Threshold --json - | jq .
      presplit simulate --trace path/to/20110306 --trace path/to/20110309 --jobs 2
    """
    from presplit.scenarios import SCENARIOS, load_scenario, resolve_scenario

    # Every input is checked before the first run starts: the output file, the scenario, the
    # policies, then the traces (loading them is the only slow check).
    check_json_file(json_path)
    check_seed(seed)
    failures = _failures(failures_text)
    if scenario.strip().lower() not in SCENARIOS:
        scen = load_scenario(scenario)  # an unknown name or a bad file is a ScenarioError: one line
        if scen.engine == "domains":
            _check_forecasters(forecasters)
            if model_name is not None and model_name != scen.model_preset:
                scen = _with_model(scen, model_name)
            _simulate_domains(scen, traces, policies, json_path, seed, jobs, failures=failures,
                              forecasters=forecasters)
            return
        scenario_name = scen.name
    else:
        scenario_name = scenario.strip().lower()
    if failures is not None:
        from presplit.sim.failures import check_cloudsim_spec

        check_cloudsim_spec(failures)  # host crashes and failed migrations; link/domain: one line saying why
    fleet_factory, default_traces = resolve_scenario(scenario)
    if model_name is not None:
        from presplit.scenarios.trace_fleet import Remodel

        fleet_factory = Remodel(fleet_factory, model_name)

    policy_list = list(policies) or list(DEFAULT_POLICIES)
    for name in policy_list:
        check_cloudsim_policy(name, scenario_name, seed=seed)

    workloads = [(load_user_trace(path, "--trace"), trace_label(path)) for path in traces]
    if not traces:
        workloads = [(load_scenario_trace(path, scenario_name), trace_label(path)) for path in default_traces]
    for (workload, _), path in zip(workloads, traces or default_traces):
        check_cloudsim_length(workload, f"--trace {path}" if traces else f"scenario {scenario_name!r}: trace {path}")

    _check_forecasters(forecasters)
    rows = run_pairs(workloads, policy_list, fleet_factory=fleet_factory, seed=seed, jobs=jobs,
                     forecasters=forecasters, failures=failures)

    print_table(render_table(rows), json_path, width=160)
    if failures is not None and not is_stdout(json_path):
        print_table(render_failure_table(rows), json_path, width=160)
    if json_path is not None:
        write_json(json_path, rows, what=f"{len(rows)} rows")


# --------------------------------------------------------------------------- output (shared by commands)


def is_stdout(path: str | Path | None) -> bool:
    """``--json -``: the JSON goes to stdout, and nothing else does."""
    return path is not None and str(path) == "-"


def check_json_file(path: str | Path | None, option: str = "--json") -> None:
    """``-`` (stdout) or a file :func:`check_output_file` accepts."""
    if not is_stdout(path):
        check_output_file(path, option)


def write_json(path: str | Path, data, *, what: str = "", indent: int = 2) -> None:
    """``data`` as JSON to the file ``path``, or to stdout when ``path`` is ``-``; a file is announced on stderr."""
    text = json.dumps(data, indent=indent, default=_plain) + "\n"
    if is_stdout(path):
        click.echo(text, nl=False)
        return
    Path(path).write_text(text, encoding="utf-8")
    if what:
        click.echo(f"wrote {what} to {path}", err=True)


def _plain(value):
    """JSON for numpy scalars and arrays, sets, and anything else (its text)."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    return str(value)


def print_table(table, json_path: str | Path | None = None, *, width: int = 160) -> None:
    """A rich table on stdout; left out when ``--json -`` puts the JSON there."""
    from rich.console import Console

    if is_stdout(json_path):
        return
    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, width))  # piped: do not squeeze the table to 80
    console.print(table)


def progress_bar(*, enabled: bool = True, counts: bool = True):
    """A rich progress bar on stderr, never on stdout; off when stderr is not a terminal (or not ``enabled``).

    Tasks carry a ``last`` field (what finished last); a task with ``total=None`` pulses.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    columns = [TextColumn("{task.description}"), BarColumn(), *([MofNCompleteColumn()] if counts else []),
               TimeElapsedColumn(), TextColumn("{task.fields[last]}")]
    return Progress(*columns, console=console, transient=True, disable=not (enabled and console.is_terminal))


# --------------------------------------------------------------------------- input checks (shared by commands)


def check_output_file(path: str | Path | None, option: str) -> None:
    """Refuse, before any work, an output file that cannot be written: its folder is missing or
    read-only, or the path is a folder. Nothing is created."""
    from presplit.errors import InputError

    if path is None:
        return
    path = Path(path)
    expected = "a file path in an existing, writable folder"
    if path.is_dir():
        raise InputError(f"{option} {path}: is a folder (expected {expected})")
    parent = path.parent
    if not parent.exists():
        raise InputError(f"{option} {path}: folder {parent} does not exist (expected {expected}; create it first)")
    if not parent.is_dir():
        raise InputError(f"{option} {path}: {parent} is not a folder (expected {expected})")
    if not os.access(parent, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise InputError(f"{option} {path}: not writable (expected {expected})")


def check_seed(seed: int, option: str = "--seed") -> None:
    from presplit.errors import InputError

    if seed < 0:
        raise InputError(f"{option}: expected a seed >= 0, got {seed}")


def load_user_trace(path: str | Path, option: str):
    """A trace the user named with ``option``; a bad one is an InputError naming the option and the file."""
    from presplit.errors import InputError
    from presplit.traces import TraceError, load_trace

    try:
        return load_trace(path)
    except TraceError as exc:
        raise InputError(f"{option}: {exc}") from None


def load_scenario_trace(path: str | Path, scenario_name: str):
    """A trace the scenario names (no --trace given): an error names the scenario, not an option."""
    from presplit.errors import InputError
    from presplit.traces import TraceError, load_trace

    try:
        return load_trace(path)
    except TraceError as exc:
        raise InputError(f"scenario {scenario_name!r}: trace: {exc}; pass --trace PATH to use another "
                         "trace") from None


def check_cloudsim_length(workload, what: str) -> None:
    """The CloudSim engine replays a fixed horizon (one day, as CloudSim's PlanetLab runs):
    a shorter trace is refused here rather than failing mid-run. Longer ones run their first day."""
    from presplit.errors import InputError
    from presplit.model.hardware import SimModel

    model = SimModel()
    have = workload.n_steps * workload.interval_s
    if workload.interval_s != model.interval_s or have < model.horizon_s:
        need = int(math.ceil(model.horizon_s / model.interval_s))
        raise InputError(f"{what}: {workload.n_steps} steps of {workload.interval_s:g} s ({have / 3600:.3g} h), but "
                         f"the CloudSim engine replays {model.horizon_s / 3600:g} h; expected a trace of at least "
                         f"{need} steps of {model.interval_s:g} s")


def check_cloudsim_policy(name: str, scenario_name: str, *, seed: int = 0) -> None:
    """``name`` must be a known policy of the CloudSim engine; else a PolicyError saying what fits."""
    from presplit.policies import PolicyError, make_policy
    from presplit.policies.registry import engine_mismatch, engines

    try:
        make_policy(name, seed=seed)
    except PolicyError as exc:
        raise PolicyError(f"--policy: {exc}") from None
    if "cloudsim" not in engines(name):
        from presplit.cli.domain_runs import scenarios_of_engine

        raise PolicyError("--policy: " + engine_mismatch(name, scenario_name, "cloudsim",
                                                         other_scenarios=scenarios_of_engine("domains")))


def _with_model(scen, model_name: str):
    """A domain scenario under another model preset: where the file leaves them out, host groups take the
    preset's boot delay and off power (the domain world already books every guest's full RAM)."""
    from presplit.scenarios.loader import read_yaml
    from presplit.scenarios.schema import build_scenario

    data = read_yaml(Path(scen.path))
    data["model"] = model_name
    return build_scenario(Path(scen.path), data)


def _failures(text: str | None):
    """``--failures FILE|RATE-SPEC`` read into a FailureSpec (None without it); a bad one is one InputError line."""
    if text is None:
        return None
    from presplit.sim.failures import parse_failures

    return parse_failures(text)


def _check_forecasters(forecasters) -> None:
    from presplit.errors import InputError
    from presplit.forecast.decision import forecaster_names

    known = forecaster_names()
    for name in forecasters:
        if name not in known:
            raise InputError(f"--forecaster {name!r}: unknown; expected one of {', '.join(known)}")


def _simulate_domains(scenario, traces: tuple[str, ...], policies: tuple[str, ...], json_path: str | None,
                      seed: int, jobs: int, *, failures=None, forecasters: Sequence[str] = ()) -> None:
    from presplit.cli.domain_runs import check_domain_policies, render_domain_table, run_domain_rows
    from presplit.errors import InputError

    if len(traces) > 1:
        raise InputError(f"--trace: scenario {scenario.name!r} takes one trace (it overrides the scenario's), "
                         f"got {len(traces)}")
    names = check_domain_policies(policies, scenario.name)
    # A missing or bad trace, or a guest no host can hold, fails before any run (ScenarioFileError).
    rows = run_domain_rows(scenario, names, traces[0] if traces else None, seed, jobs, failures=failures,
                           forecasters=forecasters)
    print_table(render_domain_table(rows), json_path, width=230)
    if json_path is not None:
        write_json(json_path, rows, what=f"{len(rows)} rows")
