"""The one place that defines what every action means: ``apply_action`` and ``advance``.

``apply_action(state, action) -> (state, outcome)`` checks the action's
preconditions against ``state`` and either returns a new state with an
:class:`ActionOutcome` (cost, guests touched, the model's numbers) or the
*same* state with an :class:`ActionRefused` -- never a half-applied change.
``advance(state, t)`` moves time forward: migrations, patches, boots and
domain provisioning whose end is at or before ``t`` complete. Failures are
state functions of :mod:`presplit.plan.failures`; a guest a failure stopped is
``down`` with no end (``guest_down_end`` = inf) until a ``RestartGuest``.

Invariants every applied action keeps (property-tested in tests/domains):
every guest is in at most one domain (plus at most one migration
destination); every live domain's reserved MIPS and MB (placed guests plus
migrations coming in) fit its capacity (allotment minus services); the live
domains of a host sum to the host's capacity.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from presplit.model.cluster import ClusterState
from presplit.model.domains import DOWN, MIGRATING, PENDING, RUNNING, Domain
from presplit.plan.actions import (
    Action, ActionOutcome, ActionRefused, Cost, MergeDomains, MigrateGuest, MoveGuest, PatchDomain,
    PlaceGuest, PowerOff, PowerOn, ResizeDomain, RestartGuest, SetMigrationShare, SplitDomain,
)

EPS = 1e-6
# Energy of one live migration, Liu et al., "Performance and energy modeling for
# live migration of virtual machines", HPDC 2011: E = 0.512 J/MB x data + 20.165 J.
MIGRATION_J_PER_MB, MIGRATION_J_FIXED = 0.512, 20.165
MIN_SHARE = 0.05  # a host's migration share stays within [MIN_SHARE, 1 - MIN_SHARE]


@dataclass(frozen=True)
class PreCopy:
    duration_s: float
    downtime_s: float
    mb: float
    rounds: int


def precopy(ram_mb: float, dirty_mbps: float, path_mb_s: float, *, max_downtime_s: float = 0.3,
            max_rounds: int = 30, switchover_s: float = 0.0) -> PreCopy:
    """Iterative pre-copy live migration (Clark et al., "Live Migration of Virtual Machines", NSDI 2005;
    the algorithm of QEMU's RAM migration): round 0 copies all RAM at ``path_mb_s``; each further
    round copies what was dirtied during the previous one (``dirty_mbps`` megabits/s, at most the
    whole RAM). When the dirty set left could be sent within ``max_downtime_s`` -- or after
    ``max_rounds`` rounds, when a guest dirties faster than the link copies -- the guest is paused
    and the rest sent (stop-and-copy): that time plus ``switchover_s`` (device
    state and hand-over) is the downtime.
    """
    if path_mb_s <= 0:
        raise ValueError("path bandwidth must be positive")
    dirty_mb_s = dirty_mbps / 8.0
    to_send, total_mb, elapsed, rounds = ram_mb, 0.0, 0.0, 0
    while True:
        t = to_send / path_mb_s
        total_mb += to_send
        elapsed += t
        rounds += 1
        dirtied = min(ram_mb, dirty_mb_s * t)
        if dirtied / path_mb_s <= max_downtime_s or rounds >= max_rounds:
            down = dirtied / path_mb_s + switchover_s
            return PreCopy(elapsed + down, down, total_mb + dirtied, rounds)
        to_send = dirtied


class _Refused(Exception):
    pass


def _check(ok: bool, why: str) -> None:
    if not ok:
        raise _Refused(why)


def apply_action(state: ClusterState, action: Action) -> tuple[ClusterState, ActionOutcome | ActionRefused]:
    """Apply ``action`` at ``state.now``; see the module docstring."""
    handler = _HANDLERS.get(type(action))
    if handler is None:
        return state, ActionRefused(action, state.now, f"unknown action type {type(action).__name__}")
    try:
        new, cost, guests, details = handler(state, action)
    except _Refused as why:
        return state, ActionRefused(action, state.now, str(why))
    return new, ActionOutcome(action, state.now, cost, tuple(int(g) for g in guests), details)


def action_cost(state: ClusterState, action: Action) -> Cost | ActionRefused:
    """What ``action`` would cost from ``state`` (a what-if through the same transition)."""
    _, outcome = apply_action(state, action)
    return outcome.cost if outcome.ok else outcome


# ----------------------------------------------------------------- preconditions
def _domain(state: ClusterState, d: int) -> Domain:
    _check(isinstance(d, (int, np.integer)) and 0 <= d < len(state.domains), f"no domain {d}")
    dom = state.domains[int(d)]
    _check(dom.live, f"domain {d} is merged")
    return dom


def _usable(state: ClusterState, d: int) -> Domain:
    """A domain that may take guests now: active, provisioned, on a ready host."""
    dom = _domain(state, d)
    _check(dom.state == "active", f"domain {d} is {dom.state}, not active")
    _check(dom.ready_at <= state.now, f"domain {d} is not ready until t={dom.ready_at:g}")
    _check(state.host_ready(dom.host), f"host {dom.host} of domain {d} is off or booting")
    return dom


def _guest(state: ClusterState, g: int, status: int, what: str) -> int:
    _check(isinstance(g, (int, np.integer)) and 0 <= g < state.n_guests, f"no guest {g}")
    _check(int(state.guest_status[g]) == status, f"guest {g} is {state.guest(int(g)).state}, not {what}")
    return int(g)


def _fits(state: ClusterState, g: int, d: int) -> None:
    free_mips, free_mb = state.free(d)
    need_mips, need_mb = state.guest_reserve[g]
    _check(need_mips <= free_mips + EPS and need_mb <= free_mb + EPS,
           f"guest {g} needs {need_mips:.0f} MIPS / {need_mb:.0f} MB, domain {d} has "
           f"{free_mips:.0f} MIPS / {free_mb:.0f} MB free")


def _no_flights(state: ClusterState, d: int) -> None:
    out = (state.guest_domain == d) & (state.guest_status == MIGRATING)
    _check(not out.any() and not (state.guest_dest == d).any(), f"domain {d} has migrations in flight")


def _holds(state: ClusterState, dom: Domain, cpu: float, mem: float, services) -> None:
    over_mips, over_mb = sum(s.cpu_mips for s in services), sum(s.mem_mb for s in services)
    res_mips, res_mb = state.reserved[dom.id] if dom.id < len(state.domains) else (0.0, 0.0)
    _check(cpu - over_mips >= res_mips - EPS and mem - over_mb >= res_mb - EPS and cpu > over_mips
           and mem > over_mb, f"domain {dom.id} would hold {cpu:.0f} MIPS / {mem:.0f} MB, needs more than "
           f"services {over_mips:.0f} / {over_mb:.0f} plus reserved {res_mips:.0f} / {res_mb:.0f}")


def _shift_reserved(before: ClusterState, after: ClusterState, g: int, src: int, dst: int) -> ClusterState:
    """Hand ``after`` its reservation table: ``before``'s with guest g's share moved from src to dst.

    A guest move changes two rows; recomputing the table from every guest would
    cost a pass over the whole fleet per action (src or dst may be -1: none).
    """
    table = before.reserved.copy()
    share = before.guest_reserve[g]
    if src >= 0:
        table[src] -= share
    if dst >= 0:
        table[dst] += share
    after.__dict__["reserved"] = table
    return after


def _set(arr: np.ndarray, idx, value) -> np.ndarray:
    out = arr.copy()
    out[idx] = value
    return out


# ----------------------------------------------------------------- handlers
def _split(state, a: SplitDomain):
    dom = _usable(state, a.domain)
    _check(len(a.sizes) >= 1, "split needs at least one new size")
    services = state.model.minimal_services if a.services is None else tuple(a.services)
    new, cpu_left, mem_left = [], dom.cpu_mips, dom.mem_mb
    for i, (cpu, mem) in enumerate(a.sizes):
        nd = Domain(len(state.domains) + i, dom.host, float(cpu), float(mem), services, "provisioning",
                    state.now + state.model.provision_s, dom.patch_started, dom.patch_until,
                    services_at=state.now)
        _holds(state, nd, nd.cpu_mips, nd.mem_mb, services)
        new.append(nd)
        cpu_left, mem_left = cpu_left - cpu, mem_left - mem
    _holds(state, dom, cpu_left, mem_left, dom.services)
    out = state.with_domain(replace(dom, cpu_mips=cpu_left, mem_mb=mem_left), *new)
    return out, Cost(seconds=state.model.provision_s), (), {
        "new_domains": [d.id for d in new], "remaining": (cpu_left, mem_left)}


def _resize(state, a: ResizeDomain):
    dom, donor = _domain(state, a.domain), _domain(state, a.donor)
    _check("patching" not in (dom.state, donor.state), "cannot resize a domain being patched")
    services = dom.services if a.services is None else tuple(a.services)
    if dom.id == donor.id:  # no donor: only the services change, inside the same allotment
        _check(a.services is not None and abs(a.cpu_mips - dom.cpu_mips) <= EPS and abs(a.mem_mb - dom.mem_mb) <= EPS,
               "a resize without a sibling donor may change the services only, not the allotment")
        _holds(state, dom, dom.cpu_mips, dom.mem_mb, services)
        changed = replace(dom, services=services, services_at=state.now)
        return state.with_domain(changed), Cost(seconds=state.model.provision_s), (), {
            "services": [x.name for x in services]}
    _check(dom.host == donor.host, "resize donor must be a sibling domain")
    d_cpu, d_mem = a.cpu_mips - dom.cpu_mips, a.mem_mb - dom.mem_mb
    _holds(state, dom, a.cpu_mips, a.mem_mb, services)
    _holds(state, donor, donor.cpu_mips - d_cpu, donor.mem_mb - d_mem, donor.services)
    at = dom.services_at if a.services is None else state.now
    out = state.with_domain(replace(dom, cpu_mips=float(a.cpu_mips), mem_mb=float(a.mem_mb), services=services,
                                    services_at=at),
                            replace(donor, cpu_mips=donor.cpu_mips - d_cpu, mem_mb=donor.mem_mb - d_mem))
    return out, Cost(seconds=state.model.repin_s), (), {"delta": (d_cpu, d_mem)}


def _merge(state, a: MergeDomains):
    ids = [int(d) for d in a.domains]
    _check(len(ids) >= 2 and len(set(ids)) == len(ids), "merge needs two or more distinct domains")
    doms = [_domain(state, d) for d in ids]
    _check(len({d.host for d in doms}) == 1, "merged domains must share a host")
    for d in doms:
        _check(d.state in ("active", "draining") and d.ready_at <= state.now, f"domain {d.id} is {d.state}")
        _no_flights(state, d.id)
    target, rest = doms[0], doms[1:]
    moved = np.flatnonzero(np.isin(state.guest_domain, [d.id for d in rest]))
    # The whole is as patched as its least recently patched part: it was patched inside a
    # window only if every part was (earliest start, latest end).
    merged = replace(target, cpu_mips=sum(d.cpu_mips for d in doms), mem_mb=sum(d.mem_mb for d in doms),
                     patch_started=min(d.patch_started for d in doms), patch_until=max(d.patch_until for d in doms))
    gone = [replace(d, cpu_mips=0.0, mem_mb=0.0, services=(), state="merged") for d in rest]
    out = state.with_domain(merged, *gone).evolve(guest_domain=_set(state.guest_domain, moved, target.id))
    return out, Cost(seconds=state.model.repin_s), moved, {"into": target.id, "repinned": len(moved)}


def _move(state, a: MoveGuest):
    g = _guest(state, a.guest, RUNNING, "running")
    src = state.domains[int(state.guest_domain[g])]
    dst = _usable(state, a.to_domain)
    _check(dst.host == src.host and dst.id != src.id, "MoveGuest is for a sibling domain of the same host")
    cpu, mem = float(a.carry_mips), float(a.carry_mb)
    _check(cpu >= 0 and mem >= 0, "carried allotment must be >= 0")
    moved = _shift_reserved(state, state.evolve(guest_domain=_set(state.guest_domain, g, dst.id)), g, src.id, dst.id)
    if cpu or mem:
        _check(src.state != "patching", f"domain {src.id} is being patched")
        new_src = replace(src, cpu_mips=src.cpu_mips - cpu, mem_mb=src.mem_mb - mem)
        new_dst = replace(dst, cpu_mips=dst.cpu_mips + cpu, mem_mb=dst.mem_mb + mem)
        reserved = moved.reserved
        moved = moved.with_domain(new_src, new_dst)
        moved.__dict__["reserved"] = reserved  # allotments changed, reservations did not
        _holds(moved, new_src, new_src.cpu_mips, new_src.mem_mb, new_src.services)
        _holds(moved, new_dst, new_dst.cpu_mips, new_dst.mem_mb, new_dst.services)
    else:
        _fits(state, g, dst.id)
    return moved, Cost(seconds=state.model.repin_s), (g,), {"from": src.id, "to": dst.id,
                                                            "carried": (cpu, mem)}


def _migrate(state, a: MigrateGuest):
    g = _guest(state, a.guest, RUNNING, "running")
    src = state.domains[int(state.guest_domain[g])]
    dst = _usable(state, a.to_domain)
    _check(dst.host != src.host, "MigrateGuest is for another host; use MoveGuest for a sibling domain")
    _fits(state, g, dst.id)
    m, spec = state.model, state.guests[g]
    try:
        path = state.fabric.path(src.host, dst.host)
    except ValueError:  # a failed link the fabric cannot route around (presplit.plan.failures)
        raise _Refused(f"no fabric path from host {src.host} to host {dst.host}") from None
    share = float(min(state.host_mig_share[src.host], state.host_mig_share[dst.host]))
    limit = m.max_downtime_s if a.max_downtime_s is None else float(a.max_downtime_s)
    _check(limit > 0, f"max_downtime_s must be positive, got {limit:g}")
    pc = precopy(spec.ram_mb, spec.dirty_rate_mbps, path.mb_per_s * share,
                 max_downtime_s=limit, max_rounds=m.max_rounds, switchover_s=m.switchover_s)
    now, end = state.now, state.now + pc.duration_s
    out = state.evolve(guest_dest=_set(state.guest_dest, g, dst.id),
                       guest_status=_set(state.guest_status, g, MIGRATING),
                       guest_mig_start=_set(state.guest_mig_start, g, now),
                       guest_mig_end=_set(state.guest_mig_end, g, end),
                       guest_down_start=_set(state.guest_down_start, g, end - pc.downtime_s),
                       guest_down_end=_set(state.guest_down_end, g, end))
    out = _shift_reserved(state, out, g, -1, dst.id)  # the destination books the guest while it copies in
    cost = Cost(pc.duration_s, pc.downtime_s, pc.mb / 1000.0, MIGRATION_J_PER_MB * pc.mb + MIGRATION_J_FIXED)
    return out, cost, (g,), {"from": src.id, "to": dst.id, "path_gbit": path.gbit, "share": share,
                             "rounds": pc.rounds, "mb": pc.mb}


def _place(state, a: PlaceGuest):
    g = _guest(state, a.guest, PENDING, "pending")
    dst = _usable(state, a.domain)
    _fits(state, g, dst.id)
    out = state.evolve(guest_domain=_set(state.guest_domain, g, dst.id),
                       guest_status=_set(state.guest_status, g, RUNNING))
    return _shift_reserved(state, out, g, -1, dst.id), Cost(), (g,), {"domain": dst.id}


def _restart(state, a: RestartGuest):
    g = _guest(state, a.guest, DOWN, "down")
    _check(bool(np.isinf(state.guest_down_end[g])),
           f"guest {g} is down for a patch or already restarting, not stopped by a failure")
    src = int(state.guest_domain[g])
    dst = _usable(state, a.to_domain)
    if dst.id != src:
        _fits(state, g, dst.id)
    now, boot = state.now, float(state.model.guest_boot_s)
    changes = {"guest_status": _set(state.guest_status, g, DOWN if boot > 0 else RUNNING),
               "guest_down_end": _set(state.guest_down_end, g, now + boot)}
    if dst.id != src:
        changes["guest_domain"] = _set(state.guest_domain, g, dst.id)
    out = state.evolve(**changes)
    if dst.id != src:
        out = _shift_reserved(state, out, g, src, dst.id)
    return out, Cost(seconds=boot, downtime_s=boot), (g,), {
        "from": src, "to": dst.id, "failed_at": float(state.guest_down_start[g]), "up_at": now + boot}


def _power_on(state, a: PowerOn):
    h = int(a.host)
    _check(0 <= h < state.n_hosts and not state.host_on[h], f"host {h} is not a switched-off host")
    spec = state.hosts[h]
    out = state.evolve(host_on=_set(state.host_on, h, True),
                       host_ready_at=_set(state.host_ready_at, h, state.now + spec.boot_delay_s))
    return out, Cost(spec.boot_delay_s, 0.0, 0.0, spec.power.idle_w * spec.boot_delay_s), (), {
        "ready_at": state.now + spec.boot_delay_s}


def _power_off(state, a: PowerOff):
    h = int(a.host)
    _check(0 <= h < state.n_hosts and state.host_on[h], f"host {h} is not powered on")
    ids = [d.id for d in state.domains_of(h)]
    busy = np.isin(state.guest_domain, ids) | np.isin(state.guest_dest, ids)
    _check(not busy.any(), f"host {h} still has {int(busy.sum())} guests")
    _check(all(d.state != "patching" for d in state.domains_of(h)), f"host {h} is being patched")
    return state.evolve(host_on=_set(state.host_on, h, False)), Cost(), (), {}


def _set_share(state, a: SetMigrationShare):
    h = int(a.host)
    _check(0 <= h < state.n_hosts, f"no host {a.host}")
    share = float(a.share)
    # Some bandwidth always stays with each side: guests need the network, and a migration needs progress.
    _check(MIN_SHARE <= share <= 1.0 - MIN_SHARE, f"migration share must be within {MIN_SHARE:g}..{1 - MIN_SHARE:g}, "
                                                 f"got {share:g}")
    before = float(state.host_mig_share[h])
    return state.evolve(host_mig_share=_set(state.host_mig_share, h, share)), Cost(), (), {"was": before}


def _patch(state, a: PatchDomain):
    dom = _domain(state, a.domain)
    _check(dom.state in ("active", "draining") and dom.ready_at <= state.now, f"domain {dom.id} is {dom.state}")
    _check(state.host_ready(dom.host), f"host {dom.host} is off or booting")
    _no_flights(state, dom.id)
    dur = state.model.patch_duration_s if a.duration_s is None else float(a.duration_s)
    _check(dur > 0, "patch duration must be positive")
    inside = np.flatnonzero((state.guest_domain == dom.id) & (state.guest_status == RUNNING))
    now = state.now
    out = state.with_domain(replace(dom, state="patching", patch_started=now, patch_until=now + dur)).evolve(
        guest_status=_set(state.guest_status, inside, DOWN),
        guest_down_start=_set(state.guest_down_start, inside, now),
        guest_down_end=_set(state.guest_down_end, inside, now + dur))
    return out, Cost(dur, dur * len(inside)), inside, {"guests_down": len(inside), "until": now + dur}


_HANDLERS = {SplitDomain: _split, ResizeDomain: _resize, MergeDomains: _merge, MoveGuest: _move,
             MigrateGuest: _migrate, PlaceGuest: _place, PowerOn: _power_on, PowerOff: _power_off,
             PatchDomain: _patch, SetMigrationShare: _set_share, RestartGuest: _restart}


# ----------------------------------------------------------------- time
def advance(state: ClusterState, t: float) -> tuple[ClusterState, dict[str, int]]:
    """Move to time ``t``: finish migrations, downtimes, patches and provisioning that end by ``t``."""
    if t < state.now:
        raise ValueError(f"time goes forward: {t} < {state.now}")
    status, changes = state.guest_status, {}
    landed = np.flatnonzero((status == MIGRATING) & (state.guest_mig_end <= t))
    woke = np.flatnonzero((status == DOWN) & (state.guest_down_end <= t))
    if len(landed) or len(woke):
        dom, dest, st = state.guest_domain.copy(), state.guest_dest.copy(), status.copy()
        dom[landed], dest[landed] = dest[landed], -1
        st[landed] = RUNNING
        st[woke] = RUNNING
        changes.update(guest_domain=dom, guest_dest=dest, guest_status=st)
    ready = [replace(d, state="active") for d in state.domains
             if (d.state == "provisioning" and d.ready_at <= t) or (d.state == "patching" and d.patch_until <= t)]
    out = state.with_domain(*ready) if ready else state
    out = out.evolve(now=float(t), **changes)
    return out, {"migrations_done": len(landed), "guests_up": len(woke), "domains_ready": len(ready)}
