"""What the mutations do, on the control loop's thread, between two ticks.

Each function takes the :class:`~presplit.service.runner.Runner` and raises
:class:`~presplit.service.runner.ServiceError` (422 with the field's location,
404, 409) when the request does not fit the fleet or the plan.

The one exception to "on the loop's thread": :func:`approve` runs on the API's
thread and only records the decision (one conditional transaction); the loop's
thread applies the approved plan between two ticks.
"""

from __future__ import annotations

import numpy as np
import sqlalchemy as sa

from presplit.backends.base import TakesChanges
from presplit.durations import DurationError, parse_duration
from presplit.model.domains import Guest, PatchWindowSim
from presplit.service import schemas as S
from presplit.service.errors import ServiceError


def _world(runner):
    w = runner.world
    if not isinstance(w, TakesChanges):
        raise ServiceError(409, f"the {runner.cfg.backend} backend does not take this change from the API")
    return w


# ------------------------------------------------------------------ guests
def launch_guest(runner, body: S.LaunchGuest) -> int:
    world = _world(runner)
    state = world.observe()
    ids = {g.id for g in state.guests}
    gid = body.id
    if gid is None:
        n = state.n_guests
        while f"api-{n}" in ids:
            n += 1
        gid = f"api-{n}"
    elif gid in ids:
        raise ServiceError(422, f"guest id {gid!r} is taken", ("body", "id"))
    mips_per_vcpu = body.mips_per_vcpu or float(state.hosts[0].mips_per_core)
    mips = body.vcpus * mips_per_vcpu
    if body.reserve_mips is not None:
        reserve = body.reserve_mips
        if reserve > mips:
            raise ServiceError(422, f"reserve_mips {reserve:g} is more than the guest's size {mips:g} "
                                    "(vcpus x mips_per_vcpu)", ("body", "reserve_mips"))
    else:
        ratios = [g.mips / g.reserve_mips for g in state.guests if g.reserve_mips]
        reserve = mips / (float(np.median(ratios)) if ratios else 1.0)
    a = state.domain_arrays
    overhead_mb = sum(s.mem_mb for s in state.model.minimal_services)
    overhead_mips = sum(s.cpu_mips for s in state.model.minimal_services)
    max_mb = max(h.ram_mb for h in state.hosts) - overhead_mb
    max_mips = max(h.cpu_mips for h in state.hosts) - overhead_mips
    if body.ram_mb > max_mb:
        raise ServiceError(422, f"ram_mb {body.ram_mb:g} does not fit any host (at most {max_mb:g} MB after the "
                                "domain services)", ("body", "ram_mb"))
    if reserve > max_mips:
        raise ServiceError(422, f"the guest reserves {reserve:g} MIPS; no host has more than {max_mips:g}",
                           ("body", "vcpus"))
    del a
    util = np.asarray(body.cpu_util if isinstance(body.cpu_util, list) else [body.cpu_util], np.float64)
    guest = Guest(gid, body.vcpus, mips_per_vcpu, body.ram_mb, dirty_rate_mbps=body.dirty_rate_mbps,
                  reserve_mips=reserve, arrival_s=float(state.now))
    return world.launch_guest(guest, util)


# ------------------------------------------------------------------ windows
def _duration(value, loc) -> float:
    # The schema checks these too; this holds whoever calls add_window.
    try:
        return parse_duration(value, what=loc[-1])
    except DurationError as exc:
        raise ServiceError(422, str(exc), loc) from None


def add_window(runner, body: S.AddWindow) -> S.Window:
    from presplit.service.views import window_view

    world = _world(runner)
    state = world.observe()
    names = {h.name: i for i, h in enumerate(state.hosts)}
    if isinstance(body.host, int):
        if not 0 <= body.host < state.n_hosts:
            raise ServiceError(422, f"no host {body.host} (hosts are 0..{state.n_hosts - 1})", ("body", "host"))
        host = body.host
    else:
        if body.host not in names:
            raise ServiceError(422, f"no host named {body.host!r}", ("body", "host"))
        host = names[body.host]
    if body.start is not None and body.start_in is not None:
        raise ServiceError(422, "give start or start_in, not both", ("body", "start_in"))
    now = float(state.now)
    if body.start is not None:
        start = float(body.start)
        if start < now:
            raise ServiceError(422, f"start {start:g} is in the past (the world is at {now:g} s)", ("body", "start"))
    elif body.start_in is not None:
        start = now + _duration(body.start_in, ("body", "start_in"))
    else:
        start = now
    length = _duration(body.duration, ("body", "duration"))
    if not 0 < length <= 30 * 86400:
        raise ServiceError(422, f"duration {length:g} s is not between 0 and 30 days", ("body", "duration"))
    patch = state.model.patch_duration_s if body.patch_duration is None else _duration(body.patch_duration,
                                                                                         ("body", "patch_duration"))
    if not 0 < patch <= length:
        raise ServiceError(422, f"patch_duration {patch:g} s must be positive and fit in the window ({length:g} s)",
                           ("body", "patch_duration"))
    if start > now + 365 * 86400:
        raise ServiceError(422, "start is more than a year ahead", ("body", "start"))
    w = PatchWindowSim(host, start, start + length, patch, body.rule)
    world.add_window(w)
    return window_view(world.observe(), w)


# ------------------------------------------------------------------ profile
def profile_view(profile, interval_s: float) -> S.Profile:
    lim = profile.limits
    return S.Profile(policies=[S.PolicyIn(name=p.name, args=dict(p.args)) for p in profile.policies],
                     caps={k: getattr(lim, k) for k in ("per_host", "per_link", "total")}, interval_s=interval_s,
                     label=profile.label, source=str(profile.source),
                     forecaster=getattr(profile, "forecaster", None) or "outlook")


def set_profile(runner, profile) -> S.Profile:
    from presplit.control.profile import build_policies

    loop = runner.loop
    if loop is None:
        raise ServiceError(503, "the control loop is not running")
    loop.policies = build_policies(profile, runner.kind)
    loop.limits = profile.limits
    loop.source = profile.label
    if profile.interval_s:
        loop.interval = float(profile.interval_s)
        if hasattr(loop.clock, "interval_s"):
            loop.clock.interval_s = float(profile.interval_s)
    runner.profile = profile
    loop.journal.set_meta("profile", {"policies": [{"name": p.name, "args": p.args} for p in profile.policies],
                                      "caps": {k: getattr(profile.limits, k) for k in ("per_host", "per_link", "total")},
                                      "interval_s": loop.interval})
    loop.journal.record_event("profile_changed", t=loop.clock.now(), detail=profile.label)
    if not runner.running:  # down after an error: a good profile starts it again
        runner.revive.set()
        runner.wake.set()
    return profile_view(profile, loop.interval)


# ------------------------------------------------------------------ plans
def _plan(runner, plan_id: int) -> dict:
    from presplit.service.routes.common import plan_row

    row = plan_row(runner.reader, plan_id)
    if row is None:
        raise ServiceError(404, f"no plan {plan_id}")
    return row


def _newest_recommended(runner, source) -> int | None:
    from presplit.apply.journal import plans

    with runner.reader.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.max(plans.c.id)).where(plans.c.status == "recommended",
                                                                    plans.c.source == source)).scalar()


def why_not_approvable(runner, row: dict, now: float | None, max_age_s: float | None) -> str | None:
    """Why a plan cannot be approved (the 409's message), or None: superseded, not recommended, or too old."""
    pid, status = row["id"], row["status"]
    if status == "superseded":
        s = row.get("summary") or {}
        newest = _newest_recommended(runner, row.get("source"))
        at = s.get("superseded_at")
        return (f"plan {pid} was superseded by plan {s.get('superseded_by')}"
                + (f" at t={at:g}" if isinstance(at, (int, float)) else "")
                + "; approve the newest recommendation" + (f" (plan {newest})" if newest is not None else ""))
    if status != "recommended":
        return f"plan {pid} is {status}; only recommended plans can be approved"
    tick = float(row["tick"] or 0.0)
    if max_age_s is not None and now is not None and now - tick > max_age_s:
        return (f"plan {pid} was made at t={tick:g}, {now - tick:g} s ago, more than its max age of {max_age_s:g} s; "
                "approve a newer recommendation, or reject this one")
    return None


def approve(runner, plan_id: int, note: str | None) -> str:
    """Approve a recommended plan: it becomes ``running`` (its actions ``planned``) in one transaction, and the
    loop's thread applies it between two ticks (:meth:`Runner.queue_approved`); the applier checks every
    pre-condition then, on the world as it is. Refused (409, saying why) when the plan is superseded by a newer
    recommendation, no longer recommended, or older than the loop's ``max_plan_age_s``.

    Runs on the API's thread (the answer does not wait for a tick or for a plan being applied): the decision
    is conditional on the plan still being recommended, so a newer recommendation, a reject or another
    approval that comes first wins and this one is a 409.
    """
    loop = runner.loop
    if loop is None:
        raise ServiceError(503, "the control loop is not running")
    row = _plan(runner, plan_id)
    max_age = loop.max_plan_age_s
    why = why_not_approvable(runner, row, loop.clock.now(), max_age)
    if why is not None:
        raise ServiceError(409, why)
    detail = "approved" + (f": {note}" if note else "")
    if not runner.reader.decide(plan_id, "running", event="approved", detail=detail, t=loop.clock.now()):
        row = _plan(runner, plan_id)  # something came first: say what
        raise ServiceError(409, why_not_approvable(runner, row, None, None)
                           or f"plan {plan_id} changed while it was being approved; try again")
    runner.queue_approved(plan_id)
    return "running"


def close_recommended(runner, plan_id: int, note: str | None, *, status: str) -> str:
    """Reject (or cancel) a recommended plan: its actions are cancelled, nothing runs (one transaction)."""
    row = _plan(runner, plan_id)
    verb = "rejected" if status == "rejected" else "cancelled"
    if row["status"] != "recommended":
        raise ServiceError(409, f"plan {plan_id} is {row['status']}; only recommended plans can be {verb} this way")
    j = runner.loop.journal if runner.loop is not None else runner.reader
    detail = verb + (f": {note}" if note else "")
    t = runner.loop.clock.now() if runner.loop is not None else None
    if not j.decide(plan_id, status, event=verb, detail=detail, t=t, summary={"note": note}):
        row = _plan(runner, plan_id)
        raise ServiceError(409, f"plan {plan_id} is {row['status']}; only recommended plans can be {verb} this way")
    runner.refresh_plan(plan_id)
    return status


def cancel_idle(runner, plan_id: int, note: str | None, *, withdrawn: bool = False) -> str:
    """Cancel a plan nobody is applying: a recommended one (closed as ``cancelled``), or an approved one that was
    still waiting for the loop (``withdrawn`` from the runner's queue by the route): its actions are cancelled."""
    row = _plan(runner, plan_id)
    if row["status"] == "recommended":
        return close_recommended(runner, plan_id, note, status="cancelled")
    if row["status"] == "running" and withdrawn:
        j = runner.loop.journal if runner.loop is not None else runner.reader
        detail = "cancelled before it started" + (f": {note}" if note else "")
        t = runner.loop.clock.now() if runner.loop is not None else None
        if j.decide(plan_id, "cancelled", event="cancelled", detail=detail, t=t, was="running",
                    summary={"note": note}):
            runner.refresh_plan(plan_id)
            return "cancelled"
        row = _plan(runner, plan_id)
    if row["status"] == "running":
        raise ServiceError(409, f"plan {plan_id} is running but not being applied by this controller "
                                "(it is reconciled when a controller starts)")
    raise ServiceError(409, f"plan {plan_id} is already {row['status']}")


__all__ = ["launch_guest", "add_window", "set_profile", "approve", "close_recommended", "cancel_idle", "sa"]
