"""Scenario files (YAML) -> :class:`Scenario`, with errors that name the file, the key path and what was expected.

A scenario file says which engine runs it (``cloudsim``: the CloudSim preset;
``domains``: the split-domain engine) and, for domain scenarios, the host
groups, the fabric, the domain services, the migration model, the patch
calendar (:meth:`MaintenanceCalendar.from_dict` format) and the guest feeds
(which trace feeds the guests, how they are sized, replicated and when they
arrive). ``base: NAME-or-PATH`` inherits another scenario and overrides
mappings key by key (lists are replaced) -- handy for reduced test fleets.
Paths (``trace``) are relative to the file that names them; ``${VAR:-default}``
is expanded from the environment. Shipped files: ``cloudsim.yaml``,
``bighost-patch.yaml`` next to this module. Parsing is ``yaml.safe_load``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib.resources import files
from pathlib import Path
from typing import Any

from presplit.model.domains import DomainModel, Service
from presplit.model.hardware import PowerModel

MISSING = object()
TOP_KEYS = {"name", "description", "engine", "preset", "base", "interval_s", "horizon", "start", "hosts", "fabric",
            "services", "migration", "patch", "guests"}
HOST_KEYS = {"name", "count", "cores", "mips_per_core", "ram_gb", "nic_gbit", "racks", "boot_delay_s",
             "off_power_w", "power_w", "power_source"}
FABRIC_KEYS = {"intra_rack", "oversubscription", "host_latency_ms", "spine_latency_ms"}
SERVICE_KEYS = {"name", "cores", "cpu_mips", "mem_gb", "mem_mb", "disk_mb_s", "net_mb_s"}
MIGRATION_KEYS = {"bandwidth_share", "max_downtime_ms", "max_rounds", "switchover_ms", "repin_ms", "provision_s",
                  "source_degradation", "destination_reservation"}
PATCH_KEYS = {"duration_per_domain", "calendar"}
FEED_KEYS = {"trace", "cpu_overcommit", "target_peak_load", "replicas", "max_ram_gb", "dirty_rate_mbps",
             "arrivals", "seed", "limit_guests", "source_mips_per_core", "default_size"}
ARRIVALS = ("at-start", "first-nonzero")


class ScenarioFileError(ValueError):
    """``file: key.path: message (expected ...)``."""

    def __init__(self, file: str | Path, key: str, message: str, expected: str | None = None) -> None:
        self.file, self.key, self.message, self.expected = str(file), key, message, expected
        text = f"{file}: {key or '(top level)'}: {message}"
        super().__init__(text + (f" (expected {expected})" if expected else ""))


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


def shipped_scenarios() -> dict[str, Path]:
    folder = Path(str(files("presplit") / "scenarios"))
    return {p.stem: p for p in sorted(folder.glob("*.yaml"))}


def read_yaml(path: Path, *, seen: tuple = ()) -> dict:
    """Parse ``path`` (following ``base``) into one merged mapping; relative traces made absolute."""
    import yaml

    if not path.is_file():
        raise ScenarioFileError(path, "", "no such scenario file", "a YAML file or a shipped scenario name")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ScenarioFileError(path, "", f"not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ScenarioFileError(path, "", f"{type(data).__name__} at top level", "a mapping")
    _absolutise_traces(data, path)
    base = data.pop("base", None)
    if base is None:
        return data
    if not isinstance(base, str):
        raise ScenarioFileError(path, "base", f"{base!r} is not a scenario name or path", "a string")
    base_path = shipped_scenarios().get(base) or (path.parent / os.path.expandvars(base))
    if base_path.resolve() in seen:
        raise ScenarioFileError(path, "base", f"{base!r} inherits from itself")
    return _merge(read_yaml(base_path, seen=(*seen, path.resolve())), data)


_VAR = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")


def _absolutise_traces(data: dict, path: Path) -> None:
    feeds = data.get("guests")
    for feed in feeds if isinstance(feeds, list) else [feeds] if isinstance(feeds, dict) else []:
        if isinstance(feed, dict) and isinstance(feed.get("trace"), str):
            text = _VAR.sub(lambda m: os.environ.get(m.group(1), m.group(2) or ""), feed["trace"])
            trace = Path(os.path.expanduser(text))
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

    def get(self, k: str, kind: type | tuple, default: Any = MISSING, *, positive: bool = False) -> Any:
        if k not in self.data:
            if default is MISSING:
                raise ScenarioFileError(self.file, self.key(k), "missing", _name(kind))
            return default
        v = self.data[k]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        ok = isinstance(v, kinds) and not (isinstance(v, bool) and bool not in kinds)
        if not ok and float in kinds and isinstance(v, int) and not isinstance(v, bool):
            v, ok = float(v), True
        if not ok:
            got = type(v).__name__
            raise ScenarioFileError(self.file, self.key(k), f"{v!r} is {'an' if got[0] in 'aeiou' else 'a'} {got}",
                                    _name(kind))
        if positive and v <= 0:
            raise ScenarioFileError(self.file, self.key(k), f"{v!r} is not positive", "a number > 0")
        return v


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
    cpu = r.get("cpu_mips", float, None)
    cpu = r.get("cores", float) * mips_per_core if cpu is None else cpu
    mem = r.get("mem_mb", float, None)
    mem = r.get("mem_gb", float) * 1024.0 if mem is None else mem
    # IO the service carries for its domain's guests (0: none; IO is modelled once any service has some).
    io = [r.get(k, float, 0.0) for k in ("disk_mb_s", "net_mb_s")]
    for k, v in zip(("disk_mb_s", "net_mb_s"), io):
        if v < 0:
            raise ScenarioFileError(file, f"{where}.{k}", f"{v:g}", "MB/s >= 0")
    return Service(r.get("name", str), cpu, mem, *io)
