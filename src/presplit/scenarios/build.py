"""A domain :class:`Scenario` -> the initial ClusterState and the guests' workload, and one run of it.

Guests from a trace (one feed; several feeds are concatenated):

- **size**: a Bitbrains VM's provisioned CPU (MHz, taken as MIPS) and memory
  (MB) from the workload's capacity array; ``vcpus`` = provisioned MHz /
  ``source_mips_per_core`` rounded (at least 1), so guest MIPS = the VM's
  provisioned MHz. Memory is capped at ``max_ram_gb`` (one Bitbrains VM has
  512 GB, larger than any host). Traces without capacities (PlanetLab) use
  ``default_size``. A guest *reserves* its MIPS / ``cpu_overcommit`` and all
  of its memory.
- **replication**: ``replicas: r`` (or ``target_peak_load``, which picks r so
  that the binding resource -- peak summed CPU demand or summed reserved
  memory -- is that fraction of the fleet) keeps floor(r) full copies plus a
  seeded sample of the rest. Copy k > 0 of a VM is the same VM shifted
  circularly by a seeded whole number of days, so copies do not peak in
  lockstep while daily patterns stay.
- **IO**: traces with disk and network throughput (Bitbrains) feed each
  guest's IO demand (MB/s), which domain services must carry.
- **arrival**: ``first-nonzero`` (default) starts a guest at the trace's
  first step with non-zero CPU (most at t=0); ``at-start`` starts all at t=0.

Patch windows: the calendar's windows are the ones that happen (the state's
``patch_windows``, what the engine scores and what gates a patch). With
``patch.history`` the run also carries a log of earlier windows made from the
calendar (:func:`~presplit.forecast.maintenance.calendar_history`), the
patterns learned from it and the windows they predict; a policy that sets
``predicts_patch_windows`` is then shown those predictions and the real
windows the maintenance system announces open (:class:`SeesPredictedWindows`),
never the calendar. Other policies (the ``evacuate`` baseline) see the calendar.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np

from presplit.model.cluster import ClusterState
from presplit.model.domains import Guest, HostSpec, PatchWindowSim
from presplit.model.fabric import Fabric
from presplit.scenarios.loader import GuestFeed, Scenario, ScenarioFileError, ScenarioTraceError
from presplit.sim.domain_engine import DomainWorkload

MAX_REPLICAS = 1_000.0  # copies of a trace's guests; target_peak_load on a near-idle trace could ask millions


@dataclass
class DomainRun:
    state: ClusterState
    workload: DomainWorkload
    n_steps: int
    trace_label: str
    # patch.history only: the log of earlier windows, what was learned from it, and the windows it predicts
    history: tuple = ()
    learned: tuple = ()
    predicted_windows: tuple | None = None


class SeesPredictedWindows:
    """``policy``, shown predicted patch windows instead of the calendar (a scenario's ``patch.history``).

    Every tick (and every ``recover``) the policy gets the state with
    ``patch_windows`` = :func:`~presplit.forecast.maintenance.shown_windows`:
    the predictions, and the real windows once they have opened. Everything
    else is the policy's own (attributes are passed through).
    """

    def __init__(self, policy, predicted) -> None:
        self.policy, self.predicted = policy, tuple(predicted)

    def view(self, state: ClusterState) -> ClusterState:
        from presplit.forecast.maintenance import shown_windows

        return state.evolve(patch_windows=shown_windows(state.patch_windows, self.predicted, state.now,
                                                        float(state.model.interval_s)))

    def propose(self, state: ClusterState, forecasts, now: float):
        return self.policy.propose(self.view(state), forecasts, now)

    def __getattr__(self, name: str):
        attr = getattr(self.policy, name)
        if name == "recover":
            return lambda state, forecasts, now: attr(self.view(state), forecasts, now)
        return attr


def build_hosts(scenario: Scenario) -> list[HostSpec]:
    hosts = []
    for g in scenario.hosts:
        per_rack = -(-g.count // g.racks)
        for i in range(g.count):
            hosts.append(HostSpec(f"{g.name}-{i:02d}", g.cores, g.mips_per_core, g.ram_mb, g.nic_gbit,
                                  f"r{i // per_rack}", g.power, g.boot_delay_s, g.off_power_w))
    return hosts


def scenario_trace(scenario: Scenario, override: str | Path | None = None) -> Path:
    """The trace a run of ``scenario`` reads: ``override`` (the user's --trace) or the feed's own.

    Checks only that it exists -- cheap, so a face can call it before starting
    anything long; raises :class:`ScenarioTraceError` saying where the path came from.
    """
    if len(scenario.feeds) != 1:
        raise ScenarioFileError(scenario.path, "guests", f"{len(scenario.feeds)} feeds", "exactly one guest feed")
    feed = scenario.feeds[0]
    if override is None and feed.trace is None:
        raise ScenarioFileError(feed.declared_in or scenario.path, feed.key, "no trace named",
                                "a trace path here or --trace on the command line")
    path = Path(override) if override is not None else feed.trace
    if not path.exists():
        raise _trace_error(scenario, feed, path, "not found", from_option=override is not None)
    return path


def _trace_error(scenario: Scenario, feed: GuestFeed, path, reason: str, *, from_option: bool):
    hint = None
    written = feed.trace_as_written or ""
    if not from_option and "${PRESPLIT_DATA" in written:
        below = written.split("}", 1)[1] if "}" in written else ""
        hint = (f"set PRESPLIT_DATA to the folder holding {below.lstrip('/') or 'it'}"
                + (", or unset it to use the bundled copy" if os.environ.get("PRESPLIT_DATA") else ""))
    return ScenarioTraceError(scenario.name, path, reason, from_option=from_option,
                              file=feed.declared_in or scenario.path, key=feed.key, hint=hint)


def _load(scenario: Scenario, override: str | None):
    from presplit.traces import TraceError, load_trace

    path = scenario_trace(scenario, override)
    try:
        return load_trace(path)
    except TraceError as exc:
        raise _trace_error(scenario, scenario.feeds[0], path, f"not a valid trace: {exc}",
                           from_option=override is not None) from None


def build_run(scenario: Scenario, trace: str | None = None) -> DomainRun:
    """Hosts, fabric, guests and windows of ``scenario``; ``trace`` overrides the (single) feed's trace."""
    work = _load(scenario, trace)
    feed = scenario.feeds[0]
    hosts = build_hosts(scenario)
    steps = work.n_steps
    if scenario.horizon_s is not None:
        steps = min(steps, int(scenario.horizon_s // scenario.interval_s))
    cpu_frac = work.resource("cpu")[:, :steps]
    mem = work.resource("mem")[:, :steps] if "mem" in work.resources else None
    n = work.n_guests if feed.limit_guests is None else min(work.n_guests, feed.limit_guests)
    cap = work.capacity
    mips = np.nan_to_num(cap[:n, 0], nan=feed.default_cores * feed.source_mips_per_core)
    ram = np.minimum(np.nan_to_num(cap[:n, 1] if cap.shape[1] > 1 else np.full(n, np.nan),
                                   nan=feed.default_ram_mb), feed.max_ram_mb)
    cpu_frac, mem = cpu_frac[:n], None if mem is None else mem[:n]
    fleet_mips = sum(h.cpu_mips for h in hosts)
    fleet_mb = sum(h.ram_mb for h in hosts)
    r = feed.replicas
    if r is None and feed.target_peak_load is not None:
        peak_cpu = float((cpu_frac * mips[:, None]).sum(axis=0).max()) / fleet_mips
        r = feed.target_peak_load / max(peak_cpu, float(ram.sum()) / fleet_mb)
    r = 1.0 if r is None else r
    if r > MAX_REPLICAS:
        raise ScenarioFileError(feed.declared_in or scenario.path, feed.key.replace(".trace", ".target_peak_load"),
                                f"{feed.target_peak_load:g} needs {r:,.0f} copies of the trace's {n} guests",
                                f"a target the trace's guests reach with at most {MAX_REPLICAS:,.0f} copies "
                                "(a smaller target, or a trace with more demand)")
    _check_guests_fit(scenario, feed, work, hosts, mips / feed.cpu_overcommit, ram, trace)
    rng = np.random.default_rng(feed.seed)
    whole = int(np.floor(r))
    src = np.concatenate([np.tile(np.arange(n), whole),
                          np.sort(rng.choice(n, size=int(round((r - whole) * n)), replace=False))])
    copy = np.concatenate([np.repeat(np.arange(whole), n), np.full(len(src) - whole * n, whole)])
    day = int(round(86400 / work.interval_s))
    shift = np.where(copy > 0, rng.integers(0, max(1, steps // day), size=len(src)) * day, 0)
    cols = (np.arange(steps)[None, :] - shift[:, None]) % steps
    cpu = cpu_frac[src[:, None], cols]
    mem_mb = None if mem is None else np.minimum(mem[src[:, None], cols], ram[src][:, None])
    io = _io_mb_s(work, n, steps)
    io_mb_s = None if io is None else io[src[:, None], cols]
    if feed.arrivals == "first-nonzero":
        arrival = np.where((cpu > 0).any(axis=1), (cpu > 0).argmax(axis=1), 0)
    else:
        arrival = np.zeros(len(src), np.int64)
    vcpus = np.maximum(1, np.rint(mips / feed.source_mips_per_core)).astype(int)
    guests = [Guest(f"{work.guest_ids[s]}" + (f"#{c}" if c else ""), int(vcpus[s]), float(mips[s] / vcpus[s]),
                    float(ram[s]), feed.dirty_rate_mbps, float(mips[s] / feed.cpu_overcommit),
                    float(arrival[i] * scenario.interval_s)) for i, (s, c) in enumerate(zip(src, copy))]
    fab = scenario.fabric or {}
    fabric = Fabric.rack_spine([h.rack for h in hosts], [h.nic_gbit for h in hosts],
                               oversubscription=float(fab.get("oversubscription", 3.0)),
                               host_latency_ms=float(fab.get("host_latency_ms", 0.05)),
                               spine_latency_ms=float(fab.get("spine_latency_ms", 0.2)),
                               intra_rack=fab.get("intra_rack", "mesh"))
    windows = patch_windows(scenario, hosts, work.start_epoch_s, steps * scenario.interval_s)
    state = ClusterState.initial(hosts, guests, fabric, scenario.model, patch_windows=windows)
    run = DomainRun(state, DomainWorkload(cpu, mem_mb, arrival, scenario.interval_s, io_mb_s), steps,
                    str(trace or feed.trace))
    if scenario.history is not None:
        run.history, run.learned, run.predicted_windows = predicted_windows(
            scenario, hosts, work.start_epoch_s, steps * scenario.interval_s)
    return run


def _check_guests_fit(scenario: Scenario, feed: GuestFeed, work, hosts: list[HostSpec], reserve_mips: np.ndarray,
                      ram_mb: np.ndarray, override: str | None) -> None:
    """Refuse a guest that no host can hold even alone (after its minimal services): it could never be placed."""
    overhead_mips = sum(s.cpu_mips for s in scenario.model.minimal_services)
    overhead_mb = sum(s.mem_mb for s in scenario.model.minimal_services)
    room_mips = max(h.cpu_mips for h in hosts) - overhead_mips
    room_mb = max(h.ram_mb for h in hosts) - overhead_mb
    source = f"--trace {override}" if override is not None else f"trace {feed.trace}"
    for what, unit, need, room, fix in (
            ("of CPU (provisioned MHz / cpu_overcommit)", "MIPS", reserve_mips, room_mips,
             f"raise {feed.key.replace('.trace', '.cpu_overcommit')} or use bigger hosts"),
            ("of memory", "MB", ram_mb, room_mb,
             f"cap them with {feed.key.replace('.trace', '.max_ram_gb')} or use bigger hosts")):
        too_big = np.flatnonzero(need > room)
        if too_big.size:
            g = int(too_big[0])
            more = f", and {too_big.size - 1} more" if too_big.size > 1 else ""
            raise ScenarioFileError(
                feed.declared_in or scenario.path, feed.key.replace(".trace", ""),
                f"guest {work.guest_ids[g]!r} (of {source}{more}) reserves {need[g]:,.0f} {unit} {what}, more "
                f"than the largest host has after its minimal services: {room:,.0f} {unit}",
                f"guests that fit a host: {fix}")


def _io_mb_s(work, n: int, steps: int) -> np.ndarray | None:
    """[guests, steps, 2] disk and network IO in MB/s, when the trace has both in KB/s (Bitbrains)."""
    if not {"disk", "net"} <= set(work.resources):
        return None
    out = []
    for r in ("disk", "net"):
        unit = work.units.get(r)
        if unit != "KB/s":
            raise ScenarioFileError("trace", r, f"IO in {unit!r}", "KB/s (as the trace readers give it)")
        out.append(np.nan_to_num(work.resource(r)[:n, :steps]) / 1024.0)
    return np.stack(out, axis=-1)


def patch_windows(scenario: Scenario, hosts: list[HostSpec], epoch_s: float | None,
                  horizon_s: float) -> tuple[PatchWindowSim, ...]:
    """Calendar windows starting in [t=0, horizon), in seconds since t=0 (``start`` or the trace's first step)."""
    if scenario.calendar is None:
        return ()
    from datetime import datetime, timezone

    from presplit.forecast.maintenance import PatchPredictor

    start = scenario.start or datetime.fromtimestamp(epoch_s or 0.0, tz=timezone.utc)
    predictor = PatchPredictor(scenario.calendar)
    out = []
    for h, spec in enumerate(hosts):
        for w in predictor.predicted_windows(spec.name, timedelta(seconds=horizon_s), now=start):
            out.append(PatchWindowSim(h, (w.start - start).total_seconds(), (w.end - start).total_seconds(),
                                      scenario.model.patch_duration_s, w.rule))
    return tuple(sorted(out, key=lambda w: (w.start, w.host)))


def run_start(scenario: Scenario, epoch_s: float | None):
    """The instant of t=0: the scenario's ``start``, or the trace's first step (UTC)."""
    from datetime import datetime, timezone

    return scenario.start or datetime.fromtimestamp(epoch_s or 0.0, tz=timezone.utc)


def predicted_windows(scenario: Scenario, hosts: list[HostSpec], epoch_s: float | None,
                      horizon_s: float) -> tuple[tuple, tuple, tuple[PatchWindowSim, ...]]:
    """``patch.history``: (the log of earlier windows, the patterns learned from it, the windows they predict).

    The log covers the ``weeks`` before t=0 (:func:`~presplit.forecast.maintenance.calendar_history`);
    each host's patterns are learned from its own events; the predicted windows over the run are widened
    by the learner's tolerance (:func:`~presplit.forecast.maintenance.predicted_sim_windows`).
    """
    from presplit.forecast.maintenance import calendar_history, learn_history, predicted_sim_windows

    spec, start = scenario.history, run_start(scenario, epoch_s)
    names = [h.name for h in hosts]
    events = calendar_history(scenario.calendar, names, start, spec)
    learned = learn_history(events, spec, spec.zone(scenario.calendar), start)
    predicted = predicted_sim_windows(learned, names, start, horizon_s, spec.tolerance,
                                      scenario.model.patch_duration_s)
    return tuple(events), tuple(learned), predicted


def decision_horizon(scenario: Scenario) -> int:
    """Steps a split-domain decision looks ahead: an hour (the presplit policy's cool-down and service hold),
    or longer when a patch lead, a domain's provisioning or a host's boot takes longer."""
    dt = float(scenario.interval_s)
    boot = max((g.boot_delay_s for g in scenario.hosts), default=0.0)
    lead = max(3600.0, boot + scenario.model.provision_s)
    return max(1, int(np.ceil(lead / dt)))


def run_scenario(scenario: Scenario, policy: str, *, trace: str | None = None, seed: int = 0,
                 record_events: bool = False, run: DomainRun | None = None, failures=None,
                 forecaster: str | None = None):
    """One run: (metrics row, DomainSimResult, DomainRun). The row has ``trace`` and ``policy`` first.

    ``run``: an already built :func:`build_run` of this scenario and trace (e.g. to check
    inputs against it first), used instead of building it again. ``failures``: what fails
    (a :class:`presplit.sim.failures.FailureSpec`, e.g. from ``--failures``) instead of the
    scenario's own ``failures:`` section; its restart priorities go to the policy.
    """
    import resource

    from presplit.policies import make_policy
    from presplit.sim.domain_engine import run_domains
    from presplit.sim.forecast_feed import make_feed

    started = time.perf_counter()
    run = run if run is not None else build_run(scenario, trace)
    chosen = make_policy(policy, seed=seed, engine="domains")
    failures = scenario.failures if failures is None else failures
    if failures is not None and failures.priorities and hasattr(chosen, "restart_priorities"):
        import dataclasses

        chosen = dataclasses.replace(chosen, restart_priorities=failures.priorities)
    if run.predicted_windows is not None and getattr(chosen, "predicts_patch_windows", False):
        chosen = SeesPredictedWindows(chosen, run.predicted_windows)
    # Forecasting policies get forecasts built from the demand observed so far -- or, with ``forecaster``,
    # from that decision forecaster (the oracle alone reads the trace, and only over its horizon).
    forecasts = None
    if getattr(chosen, "needs_forecasts", False):
        work = run.workload
        mips = run.state.guest_mips

        def future(step: int) -> np.ndarray:
            return work.cpu[:, step:] * mips[:, None]

        forecasts = make_feed(run.state.n_guests, forecaster, horizon=decision_horizon(scenario),
                              future=future, interval_s=int(scenario.interval_s))
    elif forecaster is not None:
        from presplit.policies import PolicyError

        raise PolicyError(f"policy {policy!r} decides on no forecast: --forecaster does not apply to it")
    result = run_domains(run.state, run.workload, chosen, forecasts=forecasts, n_steps=run.n_steps,
                         record_events=record_events, failures=failures)
    row = {"trace": scenario.name, "policy": policy, "model": scenario.model_preset,
           "forecaster": (forecaster or "outlook") if forecasts is not None else "none", **result.metrics,
           "wall_s": time.perf_counter() - started,
           "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}
    return row, result, run
