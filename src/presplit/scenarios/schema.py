"""The sections of a scenario file, validated into a :class:`Scenario` (see :mod:`presplit.scenarios.loader`)."""

from __future__ import annotations

from pathlib import Path

from presplit.model.domains import DomainModel
from presplit.model.hardware import PowerModel
from presplit.scenarios.loader import (
    ARRIVALS, FABRIC_KEYS, FEED_KEYS, HOST_KEYS, MIGRATION_KEYS, PATCH_KEYS, TOP_KEYS, GuestFeed, HostGroup,
    Scenario, ScenarioFileError, _Reader, parse_start, service,
)

ENGINES = ("cloudsim", "domains")


def build_scenario(path: Path, data: dict) -> Scenario:
    top = _Reader(path, data, "", TOP_KEYS)
    engine = top.get("engine", str, "domains")
    if engine not in ENGINES:
        raise ScenarioFileError(path, "engine", f"unknown engine {engine!r}", " or ".join(ENGINES))
    name = top.get("name", str, path.stem)
    description = top.get("description", str, "")
    if engine == "cloudsim":
        preset = top.get("preset", str, "cloudsim")
        if preset != "cloudsim":
            raise ScenarioFileError(path, "preset", f"unknown preset {preset!r}", "cloudsim")
        return Scenario(name, path, engine, description, preset=preset, feeds=_feeds(path, top))
    interval = top.get("interval_s", float, 300.0, positive=True)
    horizon = top.get("horizon", (str, int, float), None)
    if horizon is not None:
        horizon = _duration(path, "horizon", horizon)
    start = parse_start(path, data["start"]) if "start" in data else None
    raw_hosts = top.get("hosts", list)
    if not raw_hosts:
        raise ScenarioFileError(path, "hosts", "empty", "at least one host group")
    hosts = tuple(_host(path, h, f"hosts[{i}]") for i, h in enumerate(raw_hosts))
    fabric = _Reader(path, top.get("fabric", dict, {}), "fabric", FABRIC_KEYS).data
    if fabric.get("intra_rack", "mesh") not in ("mesh", "tor"):
        raise ScenarioFileError(path, "fabric.intra_rack", f"{fabric['intra_rack']!r}", "mesh or tor")
    mpc = hosts[0].mips_per_core
    services = _Reader(path, top.get("services", dict, {}), "services", {"minimal", "optional"})
    minimal = tuple(service(path, s, f"services.minimal[{i}]", mpc)
                    for i, s in enumerate(services.get("minimal", list, [])))
    optional = tuple(service(path, s, f"services.optional[{i}]", mpc)
                     for i, s in enumerate(services.get("optional", list, [])))
    mig = _Reader(path, top.get("migration", dict, {}), "migration", MIGRATION_KEYS)
    patch = _Reader(path, top.get("patch", dict, {}), "patch", PATCH_KEYS)
    duration = _duration(path, "patch.duration_per_domain", patch.get("duration_per_domain", (str, int, float), "30m"))
    switchover_ms = mig.get("switchover_ms", float, 0.0)
    if switchover_ms < 0:
        raise ScenarioFileError(path, "migration.switchover_ms", f"{switchover_ms:g}", "milliseconds >= 0")
    model = DomainModel(
        migration_bw_share=mig.get("bandwidth_share", float, 0.5, positive=True),
        max_downtime_s=mig.get("max_downtime_ms", float, 300.0, positive=True) / 1000.0,
        max_rounds=mig.get("max_rounds", int, 30, positive=True),
        switchover_s=switchover_ms / 1000.0,
        repin_s=mig.get("repin_ms", float, 20.0) / 1000.0,
        provision_s=mig.get("provision_s", float, 30.0),
        source_degradation=mig.get("source_degradation", float, 0.1),
        destination_reservation=mig.get("destination_reservation", float, 0.1),
        minimal_services=minimal, optional_services=optional, patch_duration_s=duration,
        interval_s=interval)
    calendar = None
    if "calendar" in patch.data:
        from presplit.forecast.maintenance import MaintenanceCalendar, MaintenanceError

        try:
            calendar = MaintenanceCalendar.from_dict(patch.data["calendar"])
        except MaintenanceError as exc:
            raise ScenarioFileError(path, f"patch.calendar.{exc.field}", exc.message, exc.expected) from None
    return Scenario(name, path, engine, description, interval_s=interval, horizon_s=horizon, start=start,
                    hosts=hosts, fabric=dict(fabric), model=model, calendar=calendar, feeds=_feeds(path, top))


def _duration(path: Path, where: str, value) -> float:
    from presplit.forecast.maintenance import MaintenanceError, parse_duration

    try:
        return parse_duration(value, where).total_seconds()
    except MaintenanceError as exc:
        raise ScenarioFileError(path, where, exc.message, exc.expected) from None


def _host(path: Path, raw, where: str) -> HostGroup:
    r = _Reader(path, raw, where, HOST_KEYS)
    watts = r.get("power_w", list)
    if len(watts) != 11 or not all(isinstance(w, (int, float)) and not isinstance(w, bool) for w in watts):
        raise ScenarioFileError(path, f"{where}.power_w", f"{watts!r}", "11 numbers: watts at 0, 10, ..., 100 % CPU")
    return HostGroup(
        name=r.get("name", str), count=r.get("count", int, positive=True), cores=r.get("cores", int, positive=True),
        mips_per_core=r.get("mips_per_core", float, positive=True), ram_mb=r.get("ram_gb", float, positive=True) * 1024.0,
        nic_gbit=r.get("nic_gbit", float, 10.0, positive=True), racks=r.get("racks", int, 1, positive=True),
        boot_delay_s=r.get("boot_delay_s", float, 120.0), off_power_w=r.get("off_power_w", float, 0.0),
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
        target, replicas = r.get("target_peak_load", float, None), r.get("replicas", float, None)
        if target is not None and replicas is not None:
            raise ScenarioFileError(file, f"{where}.replicas", "given with target_peak_load", "one of the two")
        size = _Reader(path, r.get("default_size", dict, {}), f"{where}.default_size", {"cores", "ram_gb"})
        out.append(GuestFeed(
            trace=Path(trace) if trace else None, where=f"{file}: {where}.trace",
            cpu_overcommit=r.get("cpu_overcommit", float, 1.0, positive=True), target_peak_load=target,
            replicas=replicas, max_ram_mb=r.get("max_ram_gb", float, float("inf"), positive=True) * 1024.0,
            dirty_rate_mbps=r.get("dirty_rate_mbps", float, 100.0), arrivals=arrivals, seed=r.get("seed", int, 0),
            limit_guests=r.get("limit_guests", int, None, positive=True),
            source_mips_per_core=r.get("source_mips_per_core", float, 2600.0, positive=True),
            default_cores=size.get("cores", int, 1, positive=True),
            default_ram_mb=size.get("ram_gb", float, 2.0, positive=True) * 1024.0))
    return tuple(out)
