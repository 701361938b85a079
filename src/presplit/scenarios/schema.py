"""The sections of a scenario file, validated into a :class:`Scenario` (see :mod:`presplit.scenarios.loader`).

Every value is checked for its type and its range here, before anything runs:
counts are whole numbers >= 1 (and not absurdly large), sizes and rates are
finite and > 0, delays, powers and overheads finite and >= 0, fractions in
their interval; an error names the file, the key path and the accepted range.
"""

from __future__ import annotations

import math
from datetime import timedelta
from pathlib import Path

from presplit.durations import DurationError, parse_duration
from presplit.model.domains import DomainModel
from presplit.model.hardware import PowerModel
from presplit.scenarios.loader import (
    ARRIVALS, FABRIC_KEYS, FEED_KEYS, HISTORY_KEYS, HOST_KEYS, MIGRATION_KEYS, PATCH_KEYS, TOP_KEYS, GuestFeed,
    HostGroup, Scenario, ScenarioFileError, _Reader, parse_start, service,
)

ENGINES = ("cloudsim", "domains")
MODEL_PRESETS = ("cloudsim", "realistic")  # as presplit.model.hardware.MODEL_PRESETS

# Upper bounds that catch typos and unit slips (a fleet of 10^9 hosts would
# exhaust memory long before it ran), far above any real scenario.
MAX_HOSTS_PER_GROUP = 1_000_000
MAX_CORES = 10_000
MAX_REPLICAS = 1_000.0


def build_scenario(path: Path, data: dict) -> Scenario:
    top = _Reader(path, data, "", TOP_KEYS)
    engine = top.get("engine", str, "domains")
    if engine not in ENGINES:
        raise ScenarioFileError(path, "engine", f"unknown engine {engine!r}", " or ".join(ENGINES))
    name = top.get("name", str, path.stem)
    description = top.get("description", str, "")
    model_name = top.get("model", str, "cloudsim")
    if model_name not in MODEL_PRESETS:
        raise ScenarioFileError(path, "model", f"unknown model {model_name!r}", " or ".join(MODEL_PRESETS))
    if engine == "cloudsim":
        preset = top.get("preset", str, "cloudsim")
        if preset != "cloudsim":
            raise ScenarioFileError(path, "preset", f"unknown preset {preset!r}", "cloudsim")
        if "failures" in data:
            raise ScenarioFileError(path, "failures", "the cloudsim engine has no failure model",
                                    "engine: domains for a scenario with failures")
        return Scenario(name, path, engine, description, preset=preset, feeds=_feeds(path, top),
                        model_preset=model_name)
    interval = top.get("interval_s", float, 300.0, positive=True, unit="seconds")
    horizon = top.get("horizon", (str, int, float), None)
    if horizon is not None:
        horizon = _duration(path, "horizon", horizon)
    start = parse_start(path, data["start"]) if "start" in data else None
    raw_hosts = top.get("hosts", list)
    if not raw_hosts:
        raise ScenarioFileError(path, "hosts", "empty", "at least one host group")
    # The realistic model's host defaults (where a host group does not say): 180 s to boot, 10 W off.
    defaults = (180.0, 10.0) if model_name == "realistic" else (120.0, 0.0)
    hosts = tuple(_host(path, h, f"hosts[{i}]", defaults) for i, h in enumerate(raw_hosts))
    fabric = _fabric(path, top.get("fabric", dict, {}))
    mpc = hosts[0].mips_per_core
    services = _Reader(path, top.get("services", dict, {}), "services", {"minimal", "optional"})
    minimal = tuple(service(path, s, f"services.minimal[{i}]", mpc)
                    for i, s in enumerate(services.get("minimal", list, [])))
    optional = tuple(service(path, s, f"services.optional[{i}]", mpc)
                     for i, s in enumerate(services.get("optional", list, [])))
    mig = _Reader(path, top.get("migration", dict, {}), "migration", MIGRATION_KEYS)
    patch = _Reader(path, top.get("patch", dict, {}), "patch", PATCH_KEYS)
    duration = _duration(path, "patch.duration_per_domain", patch.get("duration_per_domain", (str, int, float), "30m"))
    switchover_ms = mig.get("switchover_ms", float, 0.0, nonneg=True, unit="milliseconds")
    model = DomainModel(
        migration_bw_share=mig.get("bandwidth_share", float, 0.5, positive=True, at_most=1.0),
        max_downtime_s=mig.get("max_downtime_ms", float, 300.0, positive=True, unit="milliseconds") / 1000.0,
        max_rounds=mig.get("max_rounds", int, 30, positive=True, at_most=100_000),
        switchover_s=switchover_ms / 1000.0,
        repin_s=mig.get("repin_ms", float, 20.0, nonneg=True, unit="milliseconds") / 1000.0,
        provision_s=mig.get("provision_s", float, 30.0, nonneg=True, unit="seconds"),
        source_degradation=mig.get("source_degradation", float, 0.1, nonneg=True, below=1.0),
        destination_reservation=mig.get("destination_reservation", float, 0.1, nonneg=True, below=1.0),
        minimal_services=minimal, optional_services=optional, patch_duration_s=duration,
        interval_s=interval)
    if horizon is not None and horizon < interval:
        raise ScenarioFileError(path, "horizon", f"{horizon:g} s is shorter than one step (interval_s {interval:g} s)",
                                "a horizon of at least one interval_s")
    _check_services_fit(path, hosts, minimal)
    calendar = None
    if "calendar" in patch.data:
        from presplit.forecast.maintenance import MaintenanceCalendar, MaintenanceError

        try:
            calendar = MaintenanceCalendar.from_dict(patch.data["calendar"])
        except MaintenanceError as exc:
            raise ScenarioFileError(path, f"patch.calendar.{exc.field}", exc.message, exc.expected) from None
        except (ValueError, OverflowError, TypeError) as exc:
            # e.g. a duration of .nan or 1e300 seconds, which timedelta itself refuses
            raise ScenarioFileError(path, "patch.calendar", f"cannot read the calendar: {exc}",
                                    "finite, positive durations and valid rules") from None
    history = _history(path, patch, calendar)
    return Scenario(name, path, engine, description, interval_s=interval, horizon_s=horizon, start=start,
                    hosts=hosts, fabric=dict(fabric), model=model, calendar=calendar, feeds=_feeds(path, top),
                    model_preset=model_name, failures=_failures(path, data), history=history)


def _history(path: Path, patch: _Reader, calendar):
    """``patch.history``: how the log of earlier windows is made and learned (a HistorySpec), or None."""
    if "history" not in patch.data:
        return None
    from presplit.forecast.maintenance import HistorySpec, MaintenanceError, parse_zone

    if calendar is None:
        raise ScenarioFileError(path, "patch.history", "given without patch.calendar",
                                "a calendar: the history is made from it, and it stays the windows that happen")
    r = _Reader(path, patch.get("history", dict), "patch.history", HISTORY_KEYS)
    weeks = r.get("weeks", int, 8, positive=True, at_most=520)
    if weeks < 3:
        raise ScenarioFileError(path, "patch.history.weeks", f"{weeks} is too few",
                                "at least 3 weeks: a weekly pattern needs 3 occurrences to be learned")
    skip = r.get("skip_per_group", int, 1, nonneg=True)
    if skip >= weeks:
        raise ScenarioFileError(path, "patch.history.skip_per_group", f"{skip} of {weeks} weeks",
                                "fewer skipped occurrences than weeks of history")
    tz = r.get("tz", str, None)
    if tz is not None:
        try:
            tz = parse_zone(tz, "patch.history.tz").key
        except MaintenanceError as exc:
            raise ScenarioFileError(path, "patch.history.tz", exc.message, exc.expected) from None
    return HistorySpec(
        weeks=weeks, shift_probability=r.get("shift_probability", float, 0.25, nonneg=True, at_most=1.0),
        max_shift=timedelta(seconds=_duration(path, "patch.history.max_shift",
                                              r.get("max_shift", (str, int, float), "3h"))),
        skip_per_group=skip, seed=r.get("seed", int, 0, nonneg=True),
        tolerance=timedelta(seconds=_duration(path, "patch.history.tolerance",
                                              r.get("tolerance", (str, int, float), "1h"))),
        tz=tz)


def _failures(path: Path, data: dict):
    """The ``failures:`` section (see :mod:`presplit.sim.failures`), or None."""
    if "failures" not in data:
        return None
    from presplit.sim.failures import FailureSpecError, spec_from_mapping

    try:
        return spec_from_mapping(data["failures"], "failures")
    except FailureSpecError as exc:
        raise ScenarioFileError(path, exc.key, exc.message, exc.expected or None) from None


def _check_services_fit(path: Path, hosts: tuple[HostGroup, ...], minimal) -> None:
    """Every host must hold its minimal services with room to spare, or no guest could ever run on it."""
    cpu = sum(s.cpu_mips for s in minimal)
    mem = sum(s.mem_mb for s in minimal)
    for i, h in enumerate(hosts):
        host_mips = h.cores * h.mips_per_core
        if cpu >= host_mips or mem >= h.ram_mb:
            raise ScenarioFileError(path, f"hosts[{i}]", f"{h.name!r} has {host_mips:,.0f} MIPS and "
                                    f"{h.ram_mb:,.0f} MB; services.minimal take {cpu:,.0f} MIPS and {mem:,.0f} MB "
                                    "of every host", "hosts larger than their minimal services")


def _duration(path: Path, where: str, value) -> float:
    expected = "a positive duration such as 30min, 2h, 1h30m, PT2H or a number of seconds"
    try:
        seconds = parse_duration(value, what=where, positive=True)
    except DurationError as exc:
        raise ScenarioFileError(path, where, exc.problem, expected) from None
    if seconds >= timedelta.max.total_seconds():  # some of these become timedeltas
        raise ScenarioFileError(path, where, f"{value!r} is too long", expected)
    return seconds


def _fabric(path: Path, raw) -> dict:
    r = _Reader(path, raw, "fabric", FABRIC_KEYS)
    intra = r.get("intra_rack", str, "mesh")
    if intra not in ("mesh", "tor"):
        raise ScenarioFileError(path, "fabric.intra_rack", f"{intra!r}", "mesh or tor")
    return {"intra_rack": intra,
            "oversubscription": r.get("oversubscription", float, 3.0, positive=True),
            "host_latency_ms": r.get("host_latency_ms", float, 0.05, nonneg=True, unit="milliseconds"),
            "spine_latency_ms": r.get("spine_latency_ms", float, 0.2, nonneg=True, unit="milliseconds")}


def _host(path: Path, raw, where: str, defaults: tuple[float, float] = (120.0, 0.0)) -> HostGroup:
    r = _Reader(path, raw, where, HOST_KEYS)
    watts = r.get("power_w", list)
    expected = "11 finite numbers >= 0: watts at 0, 10, ..., 100 % CPU"
    if len(watts) != 11:
        raise ScenarioFileError(path, f"{where}.power_w", f"{len(watts)} values", expected)
    for i, w in enumerate(watts):
        if not isinstance(w, (int, float)) or isinstance(w, bool) or not math.isfinite(w) or w < 0:
            raise ScenarioFileError(path, f"{where}.power_w[{i}]", f"{w!r}", expected)
    count = r.get("count", int, positive=True, at_most=MAX_HOSTS_PER_GROUP)
    return HostGroup(
        name=r.get("name", str), count=count, cores=r.get("cores", int, positive=True, at_most=MAX_CORES),
        mips_per_core=r.get("mips_per_core", float, positive=True, unit="MIPS"),
        ram_mb=r.get("ram_gb", float, positive=True, unit="GB") * 1024.0,
        nic_gbit=r.get("nic_gbit", float, 10.0, positive=True, unit="Gbit/s"),
        racks=r.get("racks", int, 1, positive=True),
        boot_delay_s=r.get("boot_delay_s", float, defaults[0], nonneg=True, unit="seconds"),
        off_power_w=r.get("off_power_w", float, defaults[1], nonneg=True, unit="watts"),
        power=PowerModel(tuple(float(w) for w in watts)))


def _feeds(path: Path, top: _Reader) -> tuple[GuestFeed, ...]:
    raw = top.get("guests", (dict, list), [])
    items = [raw] if isinstance(raw, dict) else raw
    out = []
    for i, item in enumerate(items):
        where = "guests" if isinstance(raw, dict) else f"guests[{i}]"
        r = _Reader(path, item, where, FEED_KEYS)
        file = Path(r.data.get("_declared_in", path))
        trace = r.get("trace", str, None)
        arrivals = r.get("arrivals", str, "first-nonzero")
        if arrivals not in ARRIVALS:
            raise ScenarioFileError(file, f"{where}.arrivals", f"{arrivals!r}", " or ".join(ARRIVALS))
        target = r.get("target_peak_load", float, None, positive=True, at_most=1.0)
        replicas = r.get("replicas", float, None, positive=True, at_most=MAX_REPLICAS)
        if target is not None and replicas is not None:
            raise ScenarioFileError(file, f"{where}.replicas", "given with target_peak_load", "one of the two")
        size = _Reader(path, r.get("default_size", dict, {}), f"{where}.default_size", {"cores", "ram_gb"})
        out.append(GuestFeed(
            trace=Path(trace) if trace else None, where=f"{file}: {where}.trace",
            cpu_overcommit=r.get("cpu_overcommit", float, 1.0, positive=True), target_peak_load=target,
            replicas=replicas,
            max_ram_mb=r.get("max_ram_gb", float, float("inf"), positive=True, unit="GB") * 1024.0,
            dirty_rate_mbps=r.get("dirty_rate_mbps", float, 100.0, nonneg=True, unit="Mbit/s"), arrivals=arrivals,
            seed=r.get("seed", int, 0, nonneg=True),
            limit_guests=r.get("limit_guests", int, None, positive=True),
            source_mips_per_core=r.get("source_mips_per_core", float, 2600.0, positive=True, unit="MHz"),
            default_cores=size.get("cores", int, 1, positive=True, at_most=MAX_CORES),
            default_ram_mb=size.get("ram_gb", float, 2.0, positive=True, unit="GB") * 1024.0,
            declared_in=file, key=f"{where}.trace", trace_as_written=r.data.get("_trace_as_written")))
    return tuple(out)
