"""Pre- and post-conditions of every action on an observed ClusterState.

Watcher gives every action a pre- and a post-condition; here they are pure
functions of what the backend *observes*:

- :func:`precondition`: the action applies to the observed state -- the same
  what-if through :func:`presplit.plan.apply_action` that policies use, so
  one function defines what an action needs;
- :func:`capture`: what the applier journals *before* running an action (the
  guest's domain and status, the domain's allotment, ...). It is what a
  revert needs, and what lets reconciliation tell "never ran" from "ran";
- :func:`postcondition`: after running (or after a crash), is the action
  ``done`` (guest where it should be, running; domain provisioned; host
  ready), ``pending`` (a migration in flight, a domain provisioning),
  ``not_run`` (the world is as captured before) or ``failed`` (anything else).

Backends whose ``observe()`` returns something else (the CloudSim adapter)
provide ``precondition``/``capture``/``postcondition`` methods of their own;
:func:`conditions_for` picks them.
"""

from __future__ import annotations

import math

from presplit.model.domains import DOWN, MIGRATING, PENDING, RUNNING
from presplit.plan import apply_action
from presplit.plan.actions import (
    MergeDomains, MigrateGuest, MoveGuest, PatchDomain, PlaceGuest, PowerOff, PowerOn, ResizeDomain,
    RestartGuest, SetMigrationShare, SplitDomain,
)

DONE, PENDING_V, NOT_RUN, FAILED = "done", "pending", "not_run", "failed"


def _f(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def precondition(state, action) -> str | None:
    """None when ``action`` applies to ``state``, else the reason it does not."""
    _, out = apply_action(state, action)
    return None if out.ok else out.reason


def capture(state, action) -> dict:
    """What the world looks like, for this action, before it runs (JSON-able)."""
    before: dict = {"time": float(state.now), "n_domains": len(state.domains)}
    g = getattr(action, "guest", None)
    if g is not None and 0 <= g < state.n_guests:
        before.update(guest_domain=int(state.guest_domain[g]), guest_status=int(state.guest_status[g]))
    for key in ("domain", "donor"):
        d = getattr(action, key, None)
        if d is not None and 0 <= d < len(state.domains):
            dom = state.domains[d]
            before[key + "_alloc"] = [dom.cpu_mips, dom.mem_mb]
            before[key + "_patch_started"] = _f(dom.patch_started)
            before[key + "_services"] = [s.name for s in dom.services]
    h = getattr(action, "host", None)
    if h is not None and 0 <= h < state.n_hosts:
        before["host_on"] = bool(state.host_on[h])
        before["host_mig_share"] = float(state.host_mig_share[h])
    return before


def postcondition(state, action, before: dict) -> tuple[str, str]:
    """(verdict, why) -- see the module docstring."""
    a = action
    if isinstance(a, (PlaceGuest, MoveGuest, MigrateGuest)):
        g = a.guest
        dom, dest, st = int(state.guest_domain[g]), int(state.guest_dest[g]), int(state.guest_status[g])
        want = a.domain if isinstance(a, PlaceGuest) else a.to_domain
        if dom == want and st == RUNNING:
            return DONE, f"guest {g} runs in domain {want}"
        if isinstance(a, MigrateGuest) and st == MIGRATING and dest == want:
            return PENDING_V, f"guest {g} migrating to domain {want}"
        if dom == before.get("guest_domain") and st == before.get("guest_status") and dest < 0:
            return NOT_RUN, f"guest {g} still where it was (domain {dom})"
        return FAILED, f"guest {g} is in domain {dom} ({_status(st)}), expected domain {want} running"
    if isinstance(a, RestartGuest):
        g, want = a.guest, a.to_domain
        dom, st = int(state.guest_domain[g]), int(state.guest_status[g])
        stopped = st == DOWN and math.isinf(float(state.guest_down_end[g]))
        if dom == want and st in (RUNNING, MIGRATING):
            return DONE, f"guest {g} runs again in domain {want}"
        if dom == want and st == DOWN and not stopped:
            return PENDING_V, f"guest {g} booting in domain {want} until t={float(state.guest_down_end[g]):g}"
        if dom == before.get("guest_domain") and st == before.get("guest_status") and stopped:
            return NOT_RUN, f"guest {g} still stopped in domain {dom}"
        return FAILED, f"guest {g} is in domain {dom} ({_status(st)}), expected domain {want} booting or running"
    if isinstance(a, SplitDomain):
        first, k = before["n_domains"], len(a.sizes)
        if len(state.domains) < first + k:
            return (NOT_RUN, f"domain {a.domain} not split yet") if len(state.domains) == first else (
                FAILED, f"{len(state.domains) - first} of {k} new domains exist")
        new = state.domains[first:first + k]
        if all(d.state == "active" for d in new):
            return DONE, f"domains {[d.id for d in new]} active"
        if all(d.state == "provisioning" for d in new):
            return PENDING_V, f"domains {[d.id for d in new]} provisioning"
        return FAILED, f"new domains in states {[d.state for d in new]}"
    if isinstance(a, ResizeDomain):
        dom = state.domains[a.domain]
        names = [s.name for s in dom.services]
        services_ok = a.services is None or names == [s.name for s in a.services]
        if abs(dom.cpu_mips - a.cpu_mips) < 1e-6 and abs(dom.mem_mb - a.mem_mb) < 1e-6 and services_ok:
            return DONE, "resized"
        if [dom.cpu_mips, dom.mem_mb] == before.get("domain_alloc") and names == before.get(
                "domain_services", names):
            return NOT_RUN, "allotment and services unchanged"
        return FAILED, f"domain {a.domain} holds {dom.cpu_mips:g} MIPS / {dom.mem_mb:g} MB"
    if isinstance(a, MergeDomains):
        rest = [state.domains[d] for d in a.domains[1:]]
        if all(d.state == "merged" for d in rest):
            return DONE, f"merged into {a.domains[0]}"
        if all(d.live for d in rest):
            return NOT_RUN, "domains still apart"
        return FAILED, "some domains merged, others not"
    if isinstance(a, PatchDomain):
        dom = state.domains[a.domain]
        started = _f(dom.patch_started)
        if started == before.get("domain_patch_started"):
            return NOT_RUN, "not patched"
        if dom.state == "patching":
            return PENDING_V, f"patching until {dom.patch_until:g}"
        return (DONE, "patched") if dom.live else (FAILED, f"domain {a.domain} is {dom.state}")
    if isinstance(a, PowerOn):
        if state.host_ready(a.host):
            return DONE, f"host {a.host} ready"
        if state.host_on[a.host]:
            return PENDING_V, f"host {a.host} booting"
        return NOT_RUN, f"host {a.host} off"
    if isinstance(a, PowerOff):
        return (DONE, f"host {a.host} off") if not state.host_on[a.host] else (NOT_RUN, f"host {a.host} on")
    if isinstance(a, SetMigrationShare):
        share = float(state.host_mig_share[a.host])
        if abs(share - a.share) < 1e-9:
            return DONE, f"host {a.host} migrations take {share:.0%} of its bandwidth"
        if abs(share - before.get("host_mig_share", float("nan"))) < 1e-9:
            return NOT_RUN, "share unchanged"
        return FAILED, f"host {a.host} migration share is {share:g}"
    return FAILED, f"no post-condition for {type(a).__name__}"


def _status(code: int) -> str:
    from presplit.model.domains import GUEST_STATES

    return GUEST_STATES[code]


def invariant_problems(state) -> list[str]:
    from presplit.plan.invariants import violations

    return violations(state)


class Conditions:
    """The ClusterState conditions as an object (what :func:`conditions_for` returns by default)."""

    precondition = staticmethod(precondition)
    capture = staticmethod(capture)
    postcondition = staticmethod(postcondition)
    invariants = staticmethod(invariant_problems)


def conditions_for(backend):
    """The backend's own conditions when it has them (``backend.conditions``), else the ClusterState ones."""
    return getattr(backend, "conditions", None) or Conditions


__all__ = ["DONE", "PENDING_V", "NOT_RUN", "FAILED", "PENDING", "precondition", "capture", "postcondition",
           "conditions_for", "Conditions"]
