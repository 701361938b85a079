"""Parameter sweeps: every policy x parameter value x trace, on Dask, resumable.

This module owns

- the sweep grammar: ``--param NAME=V1,V2`` lists and which policy takes
  which parameter (:func:`expand_runs`);
- running one sweep point (:func:`execute`, what a Dask worker calls) and the
  row it produces, including the per-tick active hosts and per-guest
  migration counts the report plots;
- persistence and resume (:class:`ResultStore`): each finished run is written
  at once as its own small Parquet file in ``<out>.parts/``; a rerun reads the
  keys already there (and in ``<out>`` itself) and skips them; at the end
  every part is merged into ``<out>`` and the part folder is removed.

The key of a run is ``(trace, policy, params, forecaster)`` with ``params`` the
JSON of the policy's parameter values (sorted keys) and ``forecaster`` the
decision forecaster it ran with (``outlook`` for a policy that takes one and
was given none, ``none`` for a policy that decides on no forecast). The simulator is deterministic and
randomised selectors take ``seed``, so a run's metrics do not depend on where
or in which order it ran -- only ``wall_s`` and ``peak_rss_mb`` do.

Parameters. Detector policies (``thr``, ``iqr``, ``mad``, ``lr``, ``lrr``
with any selector) take one: ``threshold`` for ``thr``, ``safety`` for the
others. ``presplit`` takes the fields of
:class:`~presplit.policies.presplit.consolidation.ConsolidationParams`
(``target``, ``relief``, ``cooldown_steps``, ...) and ``outlook.FIELD`` for
:class:`~presplit.forecast.outlook.OutlookParams`. ``npa`` and
``dvfs`` take none. A plugin (``FILE.py:Class``, ``module:Class`` or an
entry point, see :mod:`presplit.policies.api`) takes the parameters its class
declares with ``param(...)``; it travels to workers as its spec string
(:attr:`RunSpec.source`, a file spec made absolute), never as a class. A
policy runs once per combination of the ``--param`` lists that apply to it
(once with its defaults if none does); a ``--param`` that applies to no
policy is an error, so a typo cannot silently do nothing.

Forecasters (``--forecaster NAME``, repeatable, as in ``presplit simulate``):
a policy that decides on a forecast (``presplit``) runs once per forecaster
and parameter combination; the others run once, with ``forecaster`` "none".
``outlook`` is the policy's own outlook, configured by the ``outlook.*``
parameters (what it runs with when no forecaster is given); every other name
is a :mod:`presplit.forecast.decision` forecaster. Results files written
before forecasters were swept have no ``forecaster`` column: it reads as
``outlook`` for ``presplit`` rows and ``none`` for the others (what they ran
with), so such a file resumes and reports as before.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from presplit.errors import InputError
from presplit.policies.presplit.consolidation import DEFAULT_FORECASTER as CONSOLIDATION_DEFAULT_FORECASTER

DETECTOR_PARAM = {"thr": "threshold", "iqr": "safety", "mad": "safety", "lr": "safety", "lrr": "safety"}
PARAM_EXAMPLE = "safety=1.1,1.2,1.3"
PARTS_SUFFIX = ".parts"
KEY_COLUMNS = ("trace", "policy", "params", "forecaster")
# What presplit decides on when given no forecaster (its rows carry this name, their labels no suffix).
DEFAULT_FORECASTER = CONSOLIDATION_DEFAULT_FORECASTER
LEGACY_FORECASTER = "outlook"  # what presplit decided on in results files written before forecasters were swept
NO_FORECASTER = "none"  # the forecaster column of a policy that decides on no forecast
PRESPLIT_NAMES = ("presplit", "presplit-consolidate")  # the CloudSim-engine presplit, by either of its names
VOLATILE_COLUMNS = ("wall_s", "peak_rss_mb")  # depend on the machine, not on the run


class SweepError(InputError):
    """Bad sweep input: unknown policy, bad --param syntax, unusable results file."""


# --------------------------------------------------------------------------- grammar


def parse_param(text: str) -> tuple[str, list]:
    """``"safety=1.1,1.2"`` -> ``("safety", [1.1, 1.2])``; numbers become int or float, the rest stay text."""
    name, eq, values = text.partition("=")
    name = name.strip()
    items = [v.strip() for v in values.split(",")]
    if not eq or not name or not values.strip() or any(not v for v in items):
        raise SweepError(f"bad --param {text!r}: expected NAME=V1,V2,... (e.g. {PARAM_EXAMPLE})")
    parsed = [_number(v) for v in items]
    if len(set(map(repr, parsed))) != len(parsed):
        raise SweepError(f"bad --param {text!r}: a value is repeated")
    return name, parsed


def _number(text: str):
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        return text
    return value if np.isfinite(value) else text


def format_value(value) -> str:
    """Shortest text that reads back to the same value (1.2 -> '1.2', 12 -> '12')."""
    return repr(value) if isinstance(value, float) else str(value)


def _presplit_fields() -> dict:
    from presplit.policies.presplit.consolidation import ConsolidationParams
    from presplit.forecast.outlook import OutlookParams

    base = ConsolidationParams()
    out = {f.name: getattr(base, f.name) for f in dataclasses.fields(ConsolidationParams) if f.name != "outlook"}
    out.update({f"outlook.{f.name}": getattr(base.outlook, f.name) for f in dataclasses.fields(OutlookParams)})
    return out


def _plugin(policy: str):
    """The plugin ``policy`` names, or None for a built-in name; a PolicyError is a SweepError."""
    from presplit.policies.registry import PolicyError, find_plugin

    try:
        return find_plugin(policy)
    except PolicyError as exc:
        raise SweepError(str(exc)) from None


def accepted_params(policy: str) -> dict:
    """Parameter name -> default value for a policy's base name (``lr-mmt``, ``presplit``, a plugin spec, ...)."""
    from presplit.policies.params import parameters
    from presplit.policies.registry import DETECTORS

    if policy in PRESPLIT_NAMES:
        return _presplit_fields()
    plugin = _plugin(policy)
    if plugin is not None:
        return {name: f.default for name, f in parameters(plugin.cls).items()}
    det = policy.partition("-")[0]
    if det in DETECTOR_PARAM and policy.partition("-")[2]:
        return {DETECTOR_PARAM[det]: DETECTORS[det][1]}
    return {}


@dataclass(frozen=True)
class RunSpec:
    """One sweep point; picklable, so it travels to Dask workers as is."""

    trace: str  # label in the results (folder name)
    trace_path: str  # absolute path for load_trace
    hosts: int | None  # host count from a scenario manifest; None: the scenario's fleet
    scenario: str
    policy: str  # base name: npa, dvfs, lr-mmt, presplit, or a plugin's name as given
    params: tuple[tuple[str, object], ...]  # sorted (name, value)
    seed: int = 0
    source: str = ""  # a plugin: the spec a worker loads it by (a file spec made absolute); "" for built-ins
    forecaster: str = NO_FORECASTER  # decision forecaster: DEFAULT_FORECASTER (the policy's own), "none" or a name

    @property
    def params_json(self) -> str:
        return json.dumps(dict(self.params), sort_keys=True)

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.trace, self.policy, self.params_json, self.forecaster)

    @property
    def label(self) -> str:
        """How the run is called in tables: ``lr-mmt:1.2`` (as CloudSim names it), ``presplit[target=0.9]``,
        and with a forecaster other than the policy's default ``presplit[target=0.9] [oracle]`` (as
        ``presplit simulate`` shows it)."""
        suffix = "" if self.forecaster in (DEFAULT_FORECASTER, NO_FORECASTER) else f" [{self.forecaster}]"
        if not self.params:
            return self.policy + suffix
        if self.policy.partition("-")[0] in DETECTOR_PARAM and not self.source and len(self.params) == 1:
            return f"{self.policy}:{format_value(self.params[0][1])}" + suffix
        return self.policy + "[" + ",".join(f"{k}={format_value(v)}" for k, v in self.params) + "]" + suffix

    @property
    def decision_forecaster(self) -> str | None:
        """What the policy object is given: None for its default (or no forecast), else the name."""
        return None if self.forecaster in (DEFAULT_FORECASTER, NO_FORECASTER) else self.forecaster


def split_policy(name: str) -> tuple[str, dict]:
    """``"lr-mmt:1.3"`` -> ``("lr-mmt", {"safety": 1.3})``; checks the name against the registry."""
    from presplit.policies.registry import PolicyError, make_policy, policy_kind

    plugin = _plugin(name)
    if plugin is not None:
        if "cloudsim" not in plugin.engines:
            raise SweepError(f"policy {plugin.name!r} runs on the domain engine (its class says engine = "
                             f"{plugin.engines[0]!r}); the sweep runs CloudSim-engine policies")
        return plugin.name, {}
    key = name.strip().lower()
    if policy_kind(key) != "cloudsim":
        raise SweepError(f"policy {name!r} runs on the domain engine; the sweep runs CloudSim-engine "
                         "policies: npa, dvfs, presplit or DETECTOR-SELECTOR[:PARAM] (e.g. lr-mmt:1.2)")
    if key.startswith("presplit"):
        if key not in PRESPLIT_NAMES:
            raise SweepError(f"unknown policy {name!r}: presplit takes its parameters from --param "
                             "(e.g. --policy presplit --param target=0.85,0.9)")
        return key, {}
    try:
        make_policy(key)
    except PolicyError as exc:
        raise SweepError(str(exc)) from None
    base, _, value = key.partition(":")
    params = accepted_params(base)
    if value:
        params = {k: float(value) for k in params}
    return base, params


def check_forecasters(forecasters: Sequence[str]) -> list[str]:
    """The ``--forecaster`` names, checked: known (built-ins and every ``presplit forecast`` model), none twice."""
    from presplit.forecast.decision import forecaster_names

    known = forecaster_names()
    out = []
    for raw in forecasters:
        name = raw.strip()
        if name not in known:
            raise SweepError(f"--forecaster {raw!r}: unknown; expected one of {', '.join(known)}")
        if name in out:
            raise SweepError(f"--forecaster {name!r} is given twice; expected each forecaster once")
        out.append(name)
    return out


def takes_forecaster(spec: RunSpec) -> bool:
    """Whether the policy of ``spec`` decides on a forecast it can be given (as ``presplit simulate`` asks)."""
    from presplit.sim.runner import takes_forecaster as policy_takes

    return policy_takes(build_policy(spec))


def default_forecaster(policy: str) -> str:
    """The forecaster column of a row from a results file that has none (written before the column existed)."""
    return LEGACY_FORECASTER if policy.startswith("presplit") else NO_FORECASTER


def expand_runs(policies: Sequence[str], params: Sequence[tuple[str, list]],
                traces: Sequence[tuple[str, str, int | None]], *, scenario: str = "cloudsim",
                seed: int = 0, forecasters: Sequence[str] = ()) -> list[RunSpec]:
    """Every (trace, policy, parameter combination, forecaster), traces outer, policies in the order given,
    forecasters innermost.

    ``traces`` holds ``(label, path, hosts or None)``. ``forecasters``: the
    decision forecasters of the policies that take one (none given: their own
    outlook); the other policies run once. Raises :class:`SweepError` for
    unknown policies or forecasters, parameters or forecasters no policy
    takes, bad values and duplicate runs.
    """
    if not policies:
        raise SweepError("no --policy given; expected at least one (e.g. --policy lr-mmt)")
    forecasters = check_forecasters(forecasters)
    names = [n for n, _ in params]
    if len(set(names)) != len(names):
        raise SweepError(f"--param {names[0]!r}... given twice; expected each parameter once with all its values")
    bases = [split_policy(p) for p in policies]
    used: set[str] = set()
    per_policy: list[tuple[str, list[dict]]] = []
    for raw, (base, fixed) in zip(policies, bases):
        accepted = accepted_params(base)
        mine = [(n, v) for n, v in params if n in accepted]
        used.update(n for n, _ in mine)
        for n, _ in mine:
            if ":" in raw and _plugin(raw) is None:  # lr-mmt:1.2, not a plugin's FILE.py:Class
                raise SweepError(f"policy {raw!r} fixes its parameter and --param {n} sweeps it; "
                                 f"give --policy {base} to sweep")
        combos = []
        for values in itertools.product(*(v for _, v in mine)):
            chosen = dict(fixed)
            chosen.update({n: _coerce(base, n, accepted[n], v) for (n, _), v in zip(mine, values)})
            combos.append(chosen)
        per_policy.append((base, combos))
    unused = [n for n in names if n not in used]
    if unused:
        takes = "; ".join(f"{b} takes {', '.join(accepted_params(b)) or 'no parameters'}"
                          for b in dict.fromkeys(b for b, _ in bases))
        raise SweepError(f"--param {unused[0]!r} applies to none of the policies ({takes})")
    runs: list[RunSpec] = []
    seen: set = set()
    takes: dict[str, bool] = {}  # per policy base: whether it decides on a forecast
    for label, path, hosts in traces:
        for base, combos in per_policy:
            plugin = _plugin(base)
            source = plugin.portable if plugin is not None else ""
            for chosen in combos:
                spec = RunSpec(label, path, hosts, scenario, base, tuple(sorted(chosen.items())), seed, source)
                build_policy(spec)  # reject bad values (e.g. a negative safety) before anything runs
                if base not in takes:
                    takes[base] = takes_forecaster(spec)
                run_forecasters = (forecasters or [DEFAULT_FORECASTER]) if takes[base] else [NO_FORECASTER]
                for name in run_forecasters:
                    run = dataclasses.replace(spec, forecaster=name)
                    if run.key in seen:
                        raise SweepError(f"run {run.trace} {run.label} is asked for twice; expected each "
                                         "policy and trace once (two traces need different folder names)")
                    seen.add(run.key)
                    runs.append(run)
    if forecasters and not any(takes.values()):
        raise SweepError(f"--forecaster {forecasters[0]!r} applies to none of the policies (only policies that "
                         "decide on a forecast take one: presplit)")
    return runs


def _coerce(policy: str, name: str, default, value):
    """A --param value in the type of the parameter's default, or a SweepError saying which type."""
    if isinstance(default, bool) or isinstance(default, str):
        if not isinstance(value, str):
            raise SweepError(f"--param {name}: {policy} expects text, got {value!r}")
        return value
    if isinstance(default, int):
        if not isinstance(value, int):
            raise SweepError(f"--param {name}: {policy} expects an integer, got {value!r}")
        return value
    if isinstance(value, str):
        raise SweepError(f"--param {name}: {policy} expects a number, got {value!r}")
    return float(value)


def build_policy(spec: RunSpec):
    """A fresh policy object for a run (presplit with its ConsolidationParams, others from the registry),
    deciding on the run's forecaster where it takes one."""
    policy = _build_policy(spec)
    name = spec.decision_forecaster
    if name is not None:
        policy.forecaster_name = name  # expand_runs gives a named forecaster only to a policy that takes one
    return policy


def _build_policy(spec: RunSpec):
    from presplit.policies.registry import PolicyError, make_policy

    if spec.source:  # a plugin, loaded by its spec (in a Dask worker too), with its params checked and applied
        from presplit.policies.params import ArgumentError, validate_args

        try:
            return validate_args(make_policy(spec.source, seed=spec.seed), dict(spec.params))
        except PolicyError as exc:
            raise SweepError(str(exc)) from None
        except ArgumentError as exc:
            raise SweepError(f"--param {exc.key}: {exc.message}" + (f" (expected {exc.expected})"
                                                                     if exc.expected else "")) from None
    if spec.policy in PRESPLIT_NAMES:
        from presplit.policies.presplit.consolidation import ConsolidationParams, PredictiveConsolidation

        base = ConsolidationParams()
        top = {k: v for k, v in spec.params if not k.startswith("outlook.")}
        outlook = {k.removeprefix("outlook."): v for k, v in spec.params if k.startswith("outlook.")}
        if top.get("mode", "window") not in ("window", "next"):
            raise SweepError(f"--param mode: presplit expects window or next, got {top['mode']!r}")
        try:
            params = dataclasses.replace(base, **top, outlook=dataclasses.replace(base.outlook, **outlook))
        except ValueError as exc:
            raise SweepError(f"--param: {spec.policy} {exc}") from None
        return PredictiveConsolidation(params)
    name = spec.label  # lr-mmt:1.2 is exactly the registry's spelling
    try:
        return make_policy(name, seed=spec.seed)
    except PolicyError as exc:
        raise SweepError(str(exc)) from None


# --------------------------------------------------------------------------- one run

_WORKLOADS: dict[str, object] = {}  # per worker process: traces are loaded once, reused by later runs


def _workload(path: str):
    from presplit.traces import load_trace

    if path not in _WORKLOADS:
        _WORKLOADS.clear()  # hold one trace at a time: large synthetic days are big
        _WORKLOADS[path] = load_trace(path)
    return _WORKLOADS[path]


def _fleet(spec: RunSpec, workload):
    """The fleet of a run: a manifest's CloudSim fleet, or the scenario's (built from the workload itself
    where the scenario sizes its fleet by the trace, e.g. ``bitbrains``)."""
    from presplit.model.hardware import cloudsim_preset
    from presplit.scenarios import resolve_scenario
    from presplit.scenarios.trace_fleet import build_fleet

    if spec.hosts is not None:
        return cloudsim_preset(workload.n_guests, spec.hosts)
    factory, _ = resolve_scenario(spec.scenario)
    return build_fleet(factory, workload)


def execute(spec: RunSpec) -> dict:
    """Run one sweep point and return its result row (see :data:`SCHEMA`).

    The metrics are computed as :func:`presplit.sim.runner.run_simulation`
    computes them; the sweep builds the policy object itself so presplit's
    parameters need no command-line spelling (the tests check both agree).
    """
    import time

    from presplit.sim.engine import Engine
    from presplit.sim.runner import best_watts_per_mips, fluid_bound_kwh, peak_rss_mb

    workload = _workload(spec.trace_path)
    fleet = _fleet(spec, workload)
    started = time.perf_counter()
    engine = Engine(fleet, np.asarray(workload.resource("cpu")), build_policy(spec))
    result = engine.run()
    wall = time.perf_counter() - started
    metrics = dict(result.metrics)
    bound = fluid_bound_kwh(workload, fleet)
    served = metrics.pop("served_mips_s") * best_watts_per_mips(fleet) / 3.6e6
    energy = float(metrics["energy_kwh"])
    row = {
        "trace": spec.trace, "policy": spec.policy, "params": spec.params_json, "forecaster": spec.forecaster,
        "run": spec.label,
        "seed": spec.seed, "n_guests": workload.n_guests, "n_hosts": fleet.n_hosts,
        "interval_s": int(fleet.model.interval_s),
        **{k: float(metrics[k]) for k in ("energy_kwh", "slatah", "pdm", "slav", "esv", "overall_sla_violation")},
        "migrations": int(metrics["migrations"]),
        "fluid_bound_kwh": bound,
        "energy_over_bound": energy / bound if bound else float("nan"),
        "served_bound_kwh": served,
        "energy_over_served_bound": energy / served if served else float("nan"),
        "wall_s": wall, "peak_rss_mb": peak_rss_mb(),
        "active_hosts": np.asarray(result.active_hosts, dtype=np.int32).tolist(),
        "migrations_per_guest": np.asarray(result.migrations_per_guest, dtype=np.int32).tolist(),
    }
    return row


def _schema():
    """The columns every sweep results file has, whenever it was written (``presplit report`` needs them)."""
    from presplit.extras import require

    require("cluster", "pyarrow")
    import pyarrow as pa

    f64, i64 = pa.float64(), pa.int64()
    return pa.schema([
        ("trace", pa.string()), ("policy", pa.string()), ("params", pa.string()), ("run", pa.string()),
        ("seed", i64), ("n_guests", i64), ("n_hosts", i64), ("interval_s", i64),
        ("energy_kwh", f64), ("slatah", f64), ("pdm", f64), ("slav", f64), ("esv", f64),
        ("overall_sla_violation", f64), ("migrations", i64),
        ("fluid_bound_kwh", f64), ("energy_over_bound", f64), ("served_bound_kwh", f64),
        ("energy_over_served_bound", f64), ("wall_s", f64), ("peak_rss_mb", f64),
        ("active_hosts", pa.list_(pa.int32())), ("migrations_per_guest", pa.list_(pa.int32())),
    ])


def result_schema():
    """The columns a sweep writes: :func:`_schema` plus ``forecaster`` (absent from files written before it)."""
    import pyarrow as pa

    schema = _schema()
    return schema.insert(schema.get_field_index("params") + 1, pa.field("forecaster", pa.string()))


def rows_to_table(rows: Sequence[dict]):
    from presplit.extras import require

    require("cluster", "pyarrow")
    import pyarrow as pa

    schema = result_schema()
    return pa.Table.from_pylist(list(rows), schema=schema)


# --------------------------------------------------------------------------- persistence


def sort_key(trace: str, policy: str, params: str, forecaster: str = "") -> tuple:
    """Order of rows in the results: trace, policy, then parameter values numerically, then forecaster."""
    values = tuple((k, (0, v, "") if isinstance(v, (int, float)) else (1, 0, str(v)))
                   for k, v in sorted(json.loads(params).items()))
    return (trace, policy, values, forecaster)


class ResultStore:
    """``<out>`` (merged results) plus ``<out>.parts/`` (one file per run finished since the last merge)."""

    def __init__(self, out: Path) -> None:
        self.out = Path(out)
        self.parts = self.out.with_name(self.out.name + PARTS_SUFFIX)
        if self.out.suffix.lower() != ".parquet":
            raise SweepError(f"--out {self.out}: expected a .parquet file name")
        if self.out.exists() and not self.out.is_file():
            raise SweepError(f"--out {self.out} is a folder; expected a .parquet file name")

    def _read(self, path: Path):
        from presplit.extras import require

        require("cluster", "pyarrow")
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise SweepError(f"{path}: not a readable Parquet file ({exc}); expected sweep results "
                             "(move it away to start afresh)") from None
        missing = [n for n in _schema().names if n not in table.column_names]
        if missing:
            raise SweepError(f"{path}: not sweep results (no column {missing[0]!r}); expected a file "
                             "`presplit sweep` wrote (move it away to start afresh)")
        if "forecaster" not in table.column_names:  # written before forecasters were swept: what it ran with
            column = [default_forecaster(p) for p in table.column("policy").to_pylist()]
            table = table.append_column("forecaster", pa.array(column, type=pa.string()))
        schema = result_schema()
        return table.select(schema.names).cast(schema)

    def _tables(self) -> list:
        tables = [self._read(self.out)] if self.out.is_file() else []
        if self.parts.is_dir():
            tables += [self._read(p) for p in sorted(self.parts.glob("*.parquet"))]
        return tables

    def finished(self) -> set[tuple[str, str, str]]:
        keys: set = set()
        for t in self._tables():
            keys.update(zip(*(t.column(c).to_pylist() for c in KEY_COLUMNS)))
        return keys

    def save(self, row: dict) -> None:
        """Write one run's row as its own file, atomically (a kill leaves no partial part)."""
        from presplit.extras import require

        require("cluster", "pyarrow")
        import pyarrow.parquet as pq

        self.parts.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha1(json.dumps([row[c] for c in KEY_COLUMNS]).encode()).hexdigest()[:20]
        final = self.parts / f"{digest}.parquet"
        tmp = self.parts / f".{digest}.{os.getpid()}.tmp"
        pq.write_table(rows_to_table([row]), tmp)
        os.replace(tmp, final)

    def merge(self) -> int:
        """Fold the parts into ``out`` (sorted by key, one row per key); returns the row count."""
        from presplit.extras import require

        require("cluster", "pyarrow")
        import pyarrow as pa
        import pyarrow.parquet as pq

        tables = self._tables()
        if not tables:
            return 0
        table = pa.concat_tables(tables)
        seen: set = set()
        keep = []
        keys = list(zip(*(table.column(c).to_pylist() for c in KEY_COLUMNS)))
        for i, k in enumerate(keys):
            if k not in seen:
                seen.add(k)
                keep.append(i)
        # Parameter values sort as numbers (0.9 before 0.95), not as JSON text.
        order = sorted(keep, key=lambda i: sort_key(*keys[i]))
        table = table.take(pa.array(order, type=pa.int64()))
        self.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.out.with_name(f".{self.out.name}.{os.getpid()}.tmp")
        pq.write_table(table, tmp)
        os.replace(tmp, self.out)
        # Only now are the parts redundant: a kill before this line loses nothing.
        shutil.rmtree(self.parts, ignore_errors=True)
        return table.num_rows


# --------------------------------------------------------------------------- running


@dataclass
class SweepSummary:
    total: int
    skipped: int
    done: int
    failed: list[tuple[RunSpec, str]]
    rows: int  # rows in the merged results file
    stopped_early: bool


def run_sweep(specs: Sequence[RunSpec], out: Path, *, scheduler: str | None = None, workers: int = 2,
              sequential: bool = False, limit: int | None = None, progress: bool = True,
              on_result: Callable[[dict], None] | None = None) -> SweepSummary:
    """Run the specs not finished yet, saving each result as it arrives; merge at the end.

    ``sequential`` runs in this process (no Dask); ``scheduler`` connects to a
    running Dask scheduler, else a ``LocalCluster`` of ``workers`` processes
    is started. ``limit`` stops after that many new runs (the rest are left for
    a rerun). A Ctrl-C stops the same way; what finished is kept.
    """
    store = ResultStore(out)
    finished = store.finished()
    pending = [s for s in specs if s.key not in finished]
    summary = SweepSummary(len(specs), len(specs) - len(pending), 0, [], 0, False)
    if limit is not None:
        if len(pending) > limit:
            summary.stopped_early = True
        pending = pending[:limit]

    bar, task = _progress_bar(progress, len(specs), summary.skipped)

    def record(spec: RunSpec, row: dict | None, error: str | None) -> None:
        if row is not None:
            store.save(row)
            summary.done += 1
            if on_result is not None:
                on_result(row)
        else:
            summary.failed.append((spec, error or "failed"))
        if bar is not None:
            bar.update(task, advance=1, last=f"{spec.trace} {spec.label}")

    try:
        if bar is not None:
            bar.start()
        if pending and sequential:
            for spec in pending:
                try:
                    row = execute(spec)
                except Exception as exc:  # noqa: BLE001 -- one bad run must not lose the others
                    record(spec, None, f"{type(exc).__name__}: {exc}")
                else:
                    record(spec, row, None)
        elif pending:
            _run_dask(pending, record, scheduler=scheduler, workers=workers)
    except KeyboardInterrupt:
        summary.stopped_early = True
    finally:
        if bar is not None:
            bar.stop()
        summary.rows = store.merge()
    return summary


def _run_dask(pending: Sequence[RunSpec], record: Callable, *, scheduler: str | None, workers: int) -> None:
    import logging

    from presplit.extras import require

    require("cluster", "distributed")
    from distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler is None:
        # Processes, one thread each: the simulator is NumPy plus Python loops that hold the GIL.
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=logging.ERROR)
    try:
        with Client(cluster if cluster is not None else scheduler) as client:
            futures = {client.submit(execute, spec, pure=False, key=f"run-{i}-{spec.label}"): spec
                       for i, spec in enumerate(pending)}
            try:
                for fut in as_completed(futures):
                    spec = futures[fut]
                    if fut.status == "finished":
                        record(spec, fut.result(), None)
                    else:
                        exc = fut.exception()
                        record(spec, None, f"{type(exc).__name__}: {exc}")
            finally:
                client.cancel(list(futures))
    finally:
        if cluster is not None:
            cluster.close()


def _progress_bar(enabled: bool, total: int, done: int):
    if not enabled:
        return None, None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn("sweep"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   TextColumn("{task.fields[last]}"), console=Console(stderr=True), transient=True)
    task = bar.add_task("sweep", total=total, completed=done, last="")
    return bar, task


def comparable(table) -> list[dict]:
    """Rows without the machine-dependent columns, sorted by key: what two sweeps must agree on."""
    cols = [c for c in table.column_names if c not in VOLATILE_COLUMNS]
    rows = table.select(cols).to_pylist()
    return sorted(rows, key=lambda r: sort_key(*(r[c] for c in KEY_COLUMNS)))
