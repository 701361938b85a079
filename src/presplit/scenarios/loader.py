"""Scenario files (YAML) -> :class:`Scenario`, with errors that name the file, the key path and what was expected.

A scenario file says which engine runs it (``cloudsim``: the CloudSim preset;
``domains``: the split-domain engine) and, for domain scenarios, the host
groups, the fabric, the domain services, the migration model, the patch
calendar (:meth:`MaintenanceCalendar.from_dict` format; with ``patch.history``
the calendar is what happens, and predicting policies are shown only windows
learned from a log of earlier ones) and the guest feeds
(which trace feeds the guests, how they are sized, replicated and when they
arrive). ``base: NAME-or-PATH`` inherits another scenario and overrides
mappings key by key (lists are replaced) -- handy for reduced test fleets.
Paths (``trace``) are relative to the file that names them; ``${VAR:-default}``
is expanded from the environment. Shipped files: ``cloudsim.yaml``,
``bighost-patch.yaml`` next to this module. Parsing is ``yaml.safe_load``.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib.resources import files
from pathlib import Path
from typing import Any

from presplit.errors import InputError
from presplit.model.domains import DomainModel, Service
from presplit.model.hardware import PowerModel
from presplit.yamlfile import FileFormatError
from presplit.yamlfile import yaml_mapping as read_yaml_mapping

MISSING = object()
TOP_KEYS = {"name", "description", "engine", "preset", "model", "base", "interval_s", "horizon", "start", "hosts",
            "fabric",
            "services", "migration", "patch", "guests", "failures"}
HOST_KEYS = {"name", "count", "cores", "mips_per_core", "ram_gb", "nic_gbit", "racks", "boot_delay_s",
             "off_power_w", "power_w", "power_source"}
FABRIC_KEYS = {"intra_rack", "oversubscription", "host_latency_ms", "spine_latency_ms"}
SERVICE_KEYS = {"name", "cores", "cpu_mips", "mem_gb", "mem_mb", "disk_mb_s", "net_mb_s"}
MIGRATION_KEYS = {"bandwidth_share", "max_downtime_ms", "max_rounds", "switchover_ms", "repin_ms", "provision_s",
                  "source_degradation", "destination_reservation"}
PATCH_KEYS = {"duration_per_domain", "calendar", "history"}
# patch.history: the log of earlier windows that predicting policies learn from instead of seeing the calendar
HISTORY_KEYS = {"weeks", "shift_probability", "max_shift", "skip_per_group", "seed", "tolerance", "tz"}
FEED_KEYS = {"trace", "cpu_overcommit", "target_peak_load", "replicas", "max_ram_gb", "dirty_rate_mbps",
             "arrivals", "seed", "limit_guests", "source_mips_per_core", "default_size"}
ARRIVALS = ("at-start", "first-nonzero")


class ScenarioFileError(FileFormatError):
    """``file: key.path: message (expected ...)`` about a scenario file."""


class ScenarioTraceError(ScenarioFileError):
    """A scenario's guests cannot be read from their trace (missing, or not a valid trace).

    Says where the path came from, so a face names the right thing:
    ``from_option`` is True when it is the user's ``--trace`` (the message starts
    ``--trace PATH: ...``), False when it is the scenario's own ``trace`` key (the
    message names the scenario, its file and the key, and suggests ``--trace``).
    ``scenario`` is the scenario's name, ``trace`` the path, ``reason`` what is
    wrong with it; ``file``/``key`` are the scenario file and key path
    (``guests.trace``) as for any :class:`ScenarioFileError`.
    """

    def __init__(self, scenario: str, trace: str | Path, reason: str, *, from_option: bool,
                 file: str | Path | None = None, key: str = "guests.trace", hint: str | None = None) -> None:
        self.scenario, self.trace, self.reason, self.from_option = scenario, str(trace), reason, from_option
        self.file, self.key, self.message, self.hint = str(file or ""), key, reason, hint
        if from_option:
            self.expected = "an existing trace: a PlanetLab day folder, Bitbrains .csv files or a long table"
            text = f"--trace {trace}: {reason}"
            if reason == "not found":
                text += f" (expected {self.expected})"
        else:
            self.expected = "pass --trace PATH to use another trace" + (f", or {hint}" if hint else "")
            where = f" ({file})" if file else ""
            text = f"scenario {scenario!r}{where}: {key}: {trace}: {reason}; {self.expected}"
        InputError.__init__(self, text)

    def __reduce__(self):
        return _rebuild_trace_error, (type(self), self.scenario, self.trace, self.reason, self.from_option,
                                      self.file, self.key, self.hint)


def _rebuild_trace_error(cls, scenario, trace, reason, from_option, file, key, hint):
    return cls(scenario, trace, reason, from_option=from_option, file=file or None, key=key, hint=hint)


@dataclass(frozen=True)
class HostGroup:
    name: str
    count: int
    cores: int
    mips_per_core: float
    ram_mb: float
    nic_gbit: float
    racks: int
    boot_delay_s: float
    off_power_w: float
    power: PowerModel


@dataclass(frozen=True)
class GuestFeed:
    trace: Path | None
    where: str  # key path of the trace, for errors
    cpu_overcommit: float = 1.0
    target_peak_load: float | None = None
    replicas: float | None = None
    max_ram_mb: float = float("inf")
    dirty_rate_mbps: float = 100.0
    arrivals: str = "first-nonzero"
    seed: int = 0
    limit_guests: int | None = None
    source_mips_per_core: float = 2600.0
    default_cores: int = 1
    default_ram_mb: float = 2048.0
    declared_in: Path | None = None  # the file that names ``trace`` (a ``base`` may)
    key: str = "guests.trace"  # its key path there
    trace_as_written: str | None = None  # before ${VAR} expansion, for hints


@dataclass(frozen=True)
class Scenario:
    name: str
    path: Path | None
    engine: str
    description: str = ""
    preset: str | None = None
    interval_s: float = 300.0
    horizon_s: float | None = None
    start: datetime | None = None
    hosts: tuple[HostGroup, ...] = ()
    fabric: dict | None = None
    model: DomainModel = DomainModel()
    calendar: Any = None  # MaintenanceCalendar
    feeds: tuple[GuestFeed, ...] = ()
    model_preset: str = "cloudsim"  # the `model:` key: cloudsim or realistic (presplit.model.hardware.model_preset)
    failures: Any = None  # the `failures:` key: a presplit.sim.failures.FailureSpec, or None (nothing fails)
    # `patch.history`: a presplit.forecast.maintenance.HistorySpec, or None (every policy sees the calendar)
    history: Any = None


def shipped_scenarios() -> dict[str, Path]:
    folder = Path(str(files("presplit") / "scenarios"))
    return {p.stem: p for p in sorted(folder.glob("*.yaml"))}


def read_yaml(path: Path, *, seen: tuple = ()) -> dict:
    """Parse ``path`` (following ``base``) into one merged mapping; relative traces made absolute."""
    if not path.is_file():
        what = "a folder, not a scenario file" if path.is_dir() else "no such scenario file"
        raise ScenarioFileError(path, "", what, "a YAML file or a shipped scenario name")
    data = yaml_mapping(path)
    check_numbers(path, data)
    _absolutise_traces(data, path)
    base = data.pop("base", None)
    if base is None:
        return data
    if not isinstance(base, str):
        raise ScenarioFileError(path, "base", f"{base!r} is not a scenario name or path", "a string")
    base_path = shipped_scenarios().get(base) or (path.parent / os.path.expandvars(base))
    if not base_path.is_file():
        raise ScenarioFileError(path, "base", f"{base!r}: no such scenario ({base_path} not found)",
                                "a shipped scenario name (" + ", ".join(shipped_scenarios()) + ") or a YAML path "
                                "relative to this file")
    if base_path.resolve() in seen:
        raise ScenarioFileError(path, "base", f"{base!r} inherits from itself")
    return _merge(read_yaml(base_path, seen=(*seen, path.resolve())), data)


def yaml_mapping(path: Path) -> dict:
    """The top-level mapping of one YAML scenario file, or a ScenarioFileError saying why it is not one."""
    return read_yaml_mapping(path, error=ScenarioFileError)


def check_numbers(path: Path, data: Any, where: str = "") -> None:
    """No NaN, infinity or absurdly large integer anywhere in the file: named by key path.

    YAML spells them ``.nan``/``.inf``; no scenario value means either (leave
    an optional key out instead), so they are refused before any section is read.
    """
    if isinstance(data, dict):
        for k, v in data.items():
            check_numbers(path, v, f"{where}.{k}" if where else str(k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            check_numbers(path, v, f"{where}[{i}]")
    elif isinstance(data, float) and not math.isfinite(data):
        raise ScenarioFileError(path, where, f"{data!r} is not a finite number",
                                "a finite number; leave an optional key out rather than give .nan or .inf")
    elif isinstance(data, int) and not isinstance(data, bool) and abs(data) > 2**63:
        raise ScenarioFileError(path, where, f"{data:.3g} is too large", "a number below 2^63")


_VAR = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")


def _absolutise_traces(data: dict, path: Path) -> None:
    feeds = data.get("guests")
    for feed in feeds if isinstance(feeds, list) else [feeds] if isinstance(feeds, dict) else []:
        if isinstance(feed, dict) and isinstance(feed.get("trace"), str):
            # As the shell's ${VAR:-default}: the default when VAR is unset or empty.
            text = _VAR.sub(lambda m: os.environ.get(m.group(1)) or m.group(2) or "", feed["trace"])
            trace = Path(os.path.expanduser(text))
            feed.setdefault("_trace_as_written", feed["trace"])
            feed["trace"] = str(trace if trace.is_absolute() else (path.parent / trace).resolve())
            feed.setdefault("_declared_in", str(path))


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


class _Reader:
    """Typed access to one mapping with the file and key path for errors."""

    def __init__(self, file: Path, data: Any, where: str, allowed: set[str]) -> None:
        self.file, self.where = file, where
        if not isinstance(data, dict):
            raise ScenarioFileError(file, where, f"{data!r} is not a mapping", "keys " + ", ".join(sorted(allowed)))
        unknown = sorted(str(k) for k in data if k not in allowed and not str(k).startswith("_"))
        if unknown:
            raise ScenarioFileError(file, self.key(unknown[0]), "unknown key", "one of " + ", ".join(sorted(allowed)))
        self.data = data

    def key(self, k: str) -> str:
        return f"{self.where}.{k}" if self.where else k

    def get(self, k: str, kind: type | tuple, default: Any = MISSING, *, positive: bool = False,
            nonneg: bool = False, at_most: float | None = None, below: float | None = None,
            unit: str | None = None) -> Any:
        """The value at ``k``, checked: its type, finite if a number, and in range.

        ``positive``: > 0; ``nonneg``: >= 0; ``at_most``: <= that; ``below``: < that;
        ``unit`` names the unit in the message. A missing key returns ``default``
        unchecked (or is an error without one).
        """
        expected = (_name(kind) + (f" of {unit}" if unit else "")
                    + _range_text(kind, positive, nonneg, at_most, below))
        if k not in self.data:
            if default is MISSING:
                raise ScenarioFileError(self.file, self.key(k), "missing", expected)
            return default
        v = self.data[k]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        ok = isinstance(v, kinds) and not (isinstance(v, bool) and bool not in kinds)
        if not ok and float in kinds and isinstance(v, int) and not isinstance(v, bool):
            v, ok = float(v), True
        if not ok and int in kinds and isinstance(v, float) and v.is_integer():
            v, ok = int(v), True  # 2.0 is the count 2; 2.5 is refused below
        if not ok:
            if v is None:
                raise ScenarioFileError(self.file, self.key(k), "empty value", expected)
            got = type(v).__name__
            if int in kinds and isinstance(v, float):
                message = f"{v!r} is not a whole number"
            else:
                message = f"{v!r} is {'an' if got[0] in 'aeiou' else 'a'} {got}"
            raise ScenarioFileError(self.file, self.key(k), message, expected)
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return v
        if isinstance(v, float) and not math.isfinite(v):
            raise ScenarioFileError(self.file, self.key(k), f"{v!r} is not a finite number", expected)
        if (positive and v <= 0) or (nonneg and v < 0) or (at_most is not None and v > at_most) or (
                below is not None and v >= below):
            if (positive or nonneg) and v < 0:
                problem = "negative"
            elif positive and v == 0:
                problem = "zero"
            elif at_most is not None and v > at_most:
                problem = f"above the maximum {at_most:g}"
            else:
                problem = f"not below {below:g}"
            raise ScenarioFileError(self.file, self.key(k), f"{v!r} is {problem}", expected)
        return v


def _range_text(kind, positive: bool, nonneg: bool, at_most: float | None, below: float | None) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    integer = int in kinds and float not in kinds
    parts = []
    if positive:
        parts.append(">= 1" if integer else "> 0")
    elif nonneg:
        parts.append(">= 0")
    if at_most is not None:
        parts.append(f"<= {at_most:,g}" if not integer else f"<= {int(at_most):,}")
    if below is not None:
        parts.append(f"< {below:g}")
    return (" " + " and ".join(parts)) if parts else ""


def _name(kind) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join({int: "an integer", float: "a number", str: "a string", list: "a list", dict: "a mapping",
                        bool: "a boolean"}.get(k, k.__name__) for k in kinds)


def load_scenario_file(path: str | Path) -> Scenario:
    """Read and validate one scenario file (see the module docstring)."""
    from presplit.scenarios.schema import build_scenario

    path = Path(path)
    return build_scenario(path, read_yaml(path))


def parse_start(file: Path, value: Any) -> datetime:
    if isinstance(value, datetime):
        dt = value
    else:
        try:
            dt = datetime.fromisoformat(str(value))
        except ValueError:
            raise ScenarioFileError(file, "start", f"cannot read {value!r} as a date-time",
                                    "ISO 8601 such as 2013-07-01T00:00:00+02:00") from None
    return dt if dt.utcoffset() is not None else dt.replace(tzinfo=timezone.utc)


def service(file: Path, raw: Any, where: str, mips_per_core: float) -> Service:
    r = _Reader(file, raw, where, SERVICE_KEYS)
    cpu = r.get("cpu_mips", float, None, nonneg=True)
    cpu = r.get("cores", float, nonneg=True) * mips_per_core if cpu is None else cpu
    mem = r.get("mem_mb", float, None, nonneg=True)
    mem = r.get("mem_gb", float, nonneg=True) * 1024.0 if mem is None else mem
    # IO the service carries for its domain's guests (0: none; IO is modelled once any service has some).
    io = [r.get(k, float, 0.0, nonneg=True, unit="MB/s") for k in ("disk_mb_s", "net_mb_s")]
    return Service(r.get("name", str), cpu, mem, *io)
