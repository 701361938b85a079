"""How the simulated world undoes one action: ``revert_action(state, action, before)``.

Reverting is *targeted*: it touches only what the action touched, as far as
the world still shows the action's effect, so that a revert can never move a
guest that another action has moved since, or lose one. Where the undo is an
ordinary action (re-pin back, migrate back, power off again, resize back) it
goes through :func:`presplit.plan.apply_action` and may be refused (no room
left at the source): the guest then stays, running, where it is -- never
twice, never nowhere. A migration still in flight is cancelled, as QEMU's
``migrate_cancel`` does: the guest keeps running at the source. A restart
after a failure is undone by stopping the guest again where it failed (if
that domain still has room for it). Merges and patches are not reversible.

Returns ``(state, ok, reason)``; ``state`` is the same object when nothing changed.
"""

from __future__ import annotations

from dataclasses import replace

import math

from presplit.model.domains import DOWN, MIGRATING, PENDING, RUNNING
from presplit.plan import apply_action
from presplit.plan.actions import (
    MigrateGuest, MoveGuest, PlaceGuest, PowerOff, PowerOn, ResizeDomain, RestartGuest, SetMigrationShare,
    SplitDomain,
)


def _set(arr, idx, value):
    out = arr.copy()
    out[idx] = value
    return out


def _via(state, undo):
    new, out = apply_action(state, undo)
    return (new, True, f"undone by {undo.kind}") if out.ok else (state, False, f"{undo.kind} refused: {out.reason}")


def revert_action(state, action, before: dict):
    a = action
    if isinstance(a, PlaceGuest):
        g = a.guest
        if int(state.guest_domain[g]) == a.domain and int(state.guest_status[g]) == RUNNING:
            return state.evolve(guest_domain=_set(state.guest_domain, g, -1),
                                guest_status=_set(state.guest_status, g, PENDING)), True, "guest stopped, pending again"
        return state, True, "guest not placed there: nothing to undo"
    if isinstance(a, (MoveGuest, MigrateGuest)):
        g, src = a.guest, before.get("guest_domain", -1)
        if isinstance(a, MigrateGuest) and int(state.guest_status[g]) == MIGRATING and int(state.guest_dest[g]) == a.to_domain:
            now = state.now
            return state.evolve(guest_dest=_set(state.guest_dest, g, -1),
                                guest_status=_set(state.guest_status, g, RUNNING),
                                guest_mig_end=_set(state.guest_mig_end, g, now),
                                guest_down_start=_set(state.guest_down_start, g, now),
                                guest_down_end=_set(state.guest_down_end, g, now)), True, "migration cancelled"
        if int(state.guest_domain[g]) == a.to_domain and int(state.guest_status[g]) == RUNNING and src >= 0:
            # replace() keeps any other field (an allotment carried along goes back with the guest)
            return _via(state, replace(a, to_domain=src, reason=f"revert of {a.kind}"))
        return state, True, "guest not at the destination: nothing to undo"
    if isinstance(a, RestartGuest):
        return _revert_restart(state, a, before)
    if isinstance(a, SetMigrationShare):
        was = before.get("host_mig_share")
        if was is None:
            return state, False, "no migration share recorded before the change"
        return _via(state, SetMigrationShare(a.host, was, reason="revert of SetMigrationShare"))
    if isinstance(a, PowerOn):
        return _via(state, PowerOff(a.host, reason="revert of PowerOn")) if state.host_on[a.host] else (
            state, True, "host already off")
    if isinstance(a, PowerOff):
        return _via(state, PowerOn(a.host, reason="revert of PowerOff")) if not state.host_on[a.host] else (
            state, True, "host already on")
    if isinstance(a, ResizeDomain):
        cpu, mem = before.get("domain_alloc", (None, None))
        if cpu is None:
            return state, False, "no allotment recorded before the resize"
        services = None
        if a.services is not None:  # put back the services the domain ran before, by name
            known = {s.name: s for s in (*state.model.minimal_services, *state.model.optional_services,
                                         *state.domains[a.domain].services)}
            names = before.get("domain_services")
            if names is None or any(n not in known for n in names):
                return state, False, "services before the resize not recorded"
            services = tuple(known[n] for n in names)
        return _via(state, ResizeDomain(a.domain, cpu, mem, a.donor, services=services,
                                        reason="revert of ResizeDomain"))
    if isinstance(a, SplitDomain):
        first, k = before.get("n_domains", len(state.domains)), len(a.sizes)
        new_ids = list(range(first, min(first + k, len(state.domains))))
        if not new_ids:
            return state, True, "domain not split: nothing to undo"
        busy = [d for d in new_ids if (state.guest_domain == d).any() or (state.guest_dest == d).any()]
        if busy:
            return state, False, f"new domains {busy} already hold guests"
        parent = state.domains[a.domain]
        news = [state.domains[d] for d in new_ids]
        merged = replace(parent, cpu_mips=parent.cpu_mips + sum(d.cpu_mips for d in news),
                         mem_mb=parent.mem_mb + sum(d.mem_mb for d in news))
        gone = [replace(d, cpu_mips=0.0, mem_mb=0.0, services=(), state="merged") for d in news]
        return state.with_domain(merged, *gone), True, f"domains {new_ids} folded back into {a.domain}"
    return state, False, f"{a.kind} cannot be reverted"


def _revert_restart(state, a: RestartGuest, before: dict):
    """Stop the restarted guest again, back in the domain it failed in (booked there, down with no end)."""
    g, src = a.guest, before.get("guest_domain", -1)
    dom, st = int(state.guest_domain[g]), int(state.guest_status[g])
    restarted = dom == a.to_domain and (st == RUNNING or (st == DOWN and not math.isinf(float(state.guest_down_end[g]))))
    if not restarted or before.get("guest_status") != DOWN or src is None or src < 0:
        return state, True, "guest not restarted there: nothing to undo"
    if src != dom:
        need = state.guest_reserve[g]
        free = state.free(src) if state.domains[src].live else (-1.0, -1.0)
        if need[0] > free[0] + 1e-6 or need[1] > free[1] + 1e-6:
            return state, False, f"domain {src} has no room to take guest {g} back: it stays where it restarted"
    table = state.reserved.copy()
    table[dom] -= state.guest_reserve[g]
    table[src] += state.guest_reserve[g]
    out = state.evolve(guest_domain=_set(state.guest_domain, g, src), guest_status=_set(state.guest_status, g, DOWN),
                       guest_down_end=_set(state.guest_down_end, g, math.inf))
    out.__dict__["reserved"] = table
    return out, True, f"guest {g} stopped again in domain {src}"
