"""The tick-based simulator of the split-domain world.

Every ``interval_s`` (300 s by default) the engine

1. advances the state to the tick (:func:`presplit.plan.advance` finishes
   migrations, patches, boots and domain provisioning that ended);
2. marks guests whose arrival step has come as ``pending`` and sets every
   guest's demand from the workload (CPU fraction x guest MIPS; memory in MB
   where the trace has it, capped at the guest's RAM; disk and network IO);
3. scores the patch windows that have ended (met when every live domain of
   the host was patched inside the window);
4. asks the policy ``propose(state, forecasts, now) -> list[Action]`` and
   applies the actions in order through :func:`presplit.plan.apply_action`,
   logging each with its outcome (refused actions too);
5. applies the failures due before the next tick at their own times, and
   the policy's ``recover`` once each is detected (:mod:`presplit.sim.failures`;
   none unless ``failures`` says so);
6. accounts energy and SLA for the step (:mod:`presplit.sim.domain_metrics`).

Patch windows reach policies through the state: ``state.patch_windows`` (all
of the scenario's windows, in simulation seconds) and
``state.patch_due(lookahead_s)``. They are also the real world's rule: a
``PatchDomain`` is refused unless a window of the domain's host is open at
that moment (:func:`patch_closed`), whatever windows the policy was shown
(:class:`presplit.scenarios.build.SeesPredictedWindows`). ``forecasts`` is
whatever the caller passes (None for policies that do not forecast);
:class:`~presplit.policies.api.DomainForecasts` is the protocol a forecasting policy can rely on (and
:class:`~presplit.policies.api.Policy` what the engine asks of a policy); the
forecasters that drive the policies, the oracle among them, are in
:mod:`presplit.forecast.decision` (fed here by :func:`presplit.sim.forecast_feed.make_feed`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from presplit.model.cluster import ClusterState
from presplit.model.domains import ABSENT, PENDING
from presplit.plan import (
    Action, ActionOutcome, ActionRefused, MergeDomains, MigrateGuest, MoveGuest, PatchDomain, PowerOn, ResizeDomain,
    SplitDomain,
)
from presplit.plan import advance, apply_action
from presplit.plan.invariants import violations
from presplit.policies.api import DomainForecasts, Policy
from presplit.sim.domain_metrics import DomainMetrics
from presplit.sim.failures import FailureRun, FailureSpec


@dataclass(frozen=True)
class Event:
    time: float
    action: Action
    outcome: ActionOutcome | ActionRefused


@dataclass
class DomainSimResult:
    metrics: dict[str, float]
    events: list[Event] = field(default_factory=list)
    active_hosts: np.ndarray = field(default_factory=lambda: np.zeros(0))
    migrations_per_guest: np.ndarray = field(default_factory=lambda: np.zeros(0))
    window_results: list[tuple[int, float, float, bool]] = field(default_factory=list)  # host, start, end, met
    final_state: ClusterState | None = None


@dataclass
class DomainWorkload:
    """What feeds the guests: CPU fraction [guests, steps], memory MB (or None), arrival step per guest,
    and disk and network IO in MB/s [guests, steps, 2] (or None)."""

    cpu: np.ndarray
    mem_mb: np.ndarray | None
    arrival_step: np.ndarray
    interval_s: float = 300.0
    io_mb_s: np.ndarray | None = None


def feed_tick(state: ClusterState, workload: DomainWorkload, k: int, step: int | None = None) -> ClusterState:
    """Tick ``k`` of the workload: guests whose arrival step has come become ``pending``; every guest's demand
    (CPU x its MIPS; memory, capped at its RAM, where the trace has it; disk and network IO where it has them)
    comes from sample ``step`` (default ``k``). The one feed of the simulator and of the stored world."""
    step = k if step is None else step
    changes = {"demand_mips": workload.cpu[:, step] * state.guest_mips}
    arrive = (workload.arrival_step <= k) & (state.guest_status == ABSENT)
    if arrive.any():
        changes["guest_status"] = np.where(arrive, PENDING, state.guest_status).astype(np.int8)
    if workload.mem_mb is not None:
        changes["demand_mem_mb"] = np.minimum(workload.mem_mb[:, step], state.guest_reserve[:, 1])
    if workload.io_mb_s is not None:
        changes["demand_io"] = np.ascontiguousarray(workload.io_mb_s[:, step, :])
    return state.evolve(**changes)


def count_action(counts: dict, action, outcome) -> int | None:
    """Add a carried-out action to the run's counts; returns the guest it live-migrated, if any.

    The one rule for what an action counts as, shared by the simulator and the stored world
    (:class:`presplit.backends.sim_world.RunMetrics`).
    """
    counts["fabric_gb"] += outcome.cost.fabric_gb
    counts["energy_actions_j"] += outcome.cost.energy_j
    if isinstance(action, MigrateGuest):
        counts["cross_host_migrations"] += 1
        return int(action.guest)
    if isinstance(action, MoveGuest):
        counts["intra_host_moves"] += 1
    elif isinstance(action, MergeDomains):
        counts["merges"] += 1
        counts["intra_host_moves"] += len(outcome.guests)  # merged guests are re-pinned
    elif isinstance(action, SplitDomain):
        counts["splits"] += 1
    elif isinstance(action, PowerOn):
        counts["boots"] += 1
    elif isinstance(action, ResizeDomain) and action.services is not None:
        counts["service_changes"] += 1
    return None


def window_met(state: ClusterState, host: int, start: float, end: float) -> bool:
    doms = state.domains_of(host)
    return bool(doms) and all(d.patch_started >= start and d.patch_until <= end for d in doms)


def patch_closed(state: ClusterState, action: Action) -> str | None:
    """Why the real world refuses ``action`` now: a PatchDomain while no window of its host is open; else None.

    Only the maintenance system opens a host for patching (``state.patch_windows`` are the real windows);
    a patch that starts inside a window but ends after it is allowed and does not count (:func:`window_met`).
    """
    d = getattr(action, "domain", None) if isinstance(action, PatchDomain) else None
    if not isinstance(d, (int, np.integer)) or not 0 <= d < len(state.domains):
        return None  # not a patch, or no such domain (apply_action says so)
    host, now = state.domains[int(d)].host, state.now
    if any(w.host == host and w.start <= now < w.end for w in state.patch_windows):
        return None
    return f"no patch window of host {host} is open at t={now:g} s"


def run_domains(state: ClusterState, workload: DomainWorkload, policy: Policy, *,
                forecasts: DomainForecasts | Callable[[int, ClusterState], DomainForecasts] | None = None,
                n_steps: int | None = None, check_invariants: bool = False,
                record_events: bool = True, failures: FailureSpec | None = None) -> DomainSimResult:
    """Run ``policy`` over ``workload`` from ``state``; see the module docstring.

    ``forecasts`` may be a fixed object, or a callable ``(step, state) -> DomainForecasts`` called every tick.
    ``check_invariants`` checks :func:`presplit.plan.invariants.violations` after every action (slow).
    ``failures``: what fails and when (:class:`presplit.sim.failures.FailureSpec`); None: nothing fails.
    """
    started = time.perf_counter()
    dt = float(workload.interval_s)
    steps = workload.cpu.shape[1] if n_steps is None else min(n_steps, workload.cpu.shape[1])
    metrics = DomainMetrics(state)
    counts = dict(intra_host_moves=0, cross_host_migrations=0, fabric_gb=0.0, splits=0, merges=0, service_changes=0,
                  actions_refused=0, energy_actions_j=0.0, boots=0)
    per_guest = np.zeros(state.n_guests, np.int64)
    events: list[Event] = []
    windows = sorted(state.patch_windows, key=lambda w: w.end)
    horizon = steps * dt
    counted = [w for w in windows if w.end <= horizon]
    scored: list[tuple[int, float, float, bool]] = []
    next_window = 0
    failing = FailureRun(failures, state, policy, horizon, dt)
    state = failing.start(state)
    for k in range(steps):
        t = k * dt
        state, _ = advance(state, t)
        state = feed_tick(state, workload, k)
        while next_window < len(counted) and counted[next_window].end <= t:
            w = counted[next_window]
            scored.append((w.host, w.start, w.end, window_met(state, w.host, w.start, w.end)))
            next_window += 1
        fc = forecasts(k, state) if callable(forecasts) else forecasts
        proposed = policy.propose(state, fc, t) or ()
        for action in failing.during(proposed, lambda: state, fc, t, t + dt):  # noqa: B023 (the current state)
            closed = patch_closed(state, action)
            if closed is None:
                state, outcome = apply_action(state, action)
            else:
                outcome = ActionRefused(action, state.now, closed)
            if record_events:
                events.append(Event(t, action, outcome))
            if not outcome.ok:
                counts["actions_refused"] += 1
                continue
            if check_invariants:
                problems = violations(state)
                if problems:
                    raise AssertionError(f"t={t}: {action} broke invariants: {problems}")
            migrated = count_action(counts, action, outcome)
            if migrated is not None:
                per_guest[migrated] += 1
        metrics.step(state, dt, t0=t)
    state, _ = advance(state, horizon)
    for w in counted[next_window:]:
        scored.append((w.host, w.start, w.end, window_met(state, w.host, w.start, w.end)))
    row = metrics.finish()
    row.update(counts)
    row.update(failing.finish(state))
    row["migrations"] = counts["cross_host_migrations"]
    row["refused_actions"] = counts["actions_refused"]
    row["boots"] = counts["boots"]
    row["guests_unplaced"] = int((state.guest_status == PENDING).sum())
    row["patch_windows_total"] = len(scored)
    row["patch_windows_met"] = sum(1 for s in scored if s[3])
    row["max_migrations_per_guest"] = int(per_guest.max()) if len(per_guest) else 0
    row["wall_s"] = time.perf_counter() - started
    return DomainSimResult(row, events, np.array(metrics.active_hosts), per_guest, scored, state)
