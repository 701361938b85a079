"""Failures as state changes: host and domain crashes, link failures and repairs, failed live migrations.

Policies never ask for a failure; the simulator injects them
(:mod:`presplit.sim.failures`). Each is a pure function of the state, like an
action's transition, and keeps the invariants of
:mod:`presplit.plan.invariants`:

- :func:`crash_host`: every guest placed on the host stops (``down`` with no
  end: ``guest_down_end`` = inf, ``guest_down_start`` = the failure time; it
  stays booked where it failed, as vSphere keeps a VM registered on a dead
  host, until a ``RestartGuest`` moves it); a migration *out* of the host dies
  with it (the guest stops), one *into* it fails (the guest keeps running at
  its source). The host is unusable until it is repaired and rebooted
  (``host_ready_at`` = t + repair + boot delay); its domains are
  ``provisioning`` until their services have started after that.
- :func:`crash_domain`: only that domain's guests stop (the others on the host
  run on); its services restart after ``restart_s`` (the domain is
  ``provisioning`` until then). A patch under way is interrupted: the domain
  counts as unpatched again.
- :func:`fail_links` / :func:`repair_links`: links leave the fabric (a NIC:
  every link of the host to its top-of-rack switch; a rack uplink) and come
  back. A migration in flight whose route changes fails and the guest stays at
  its source; later migrations take the fabric's new route (through a mesh
  neighbour, where there is one) or are refused when there is none.
- :func:`fail_migration`: a live migration aborts; the guest keeps running at
  its source, the destination's booking is released.

:func:`failed` says which guests a failure stopped. The action-like events
(:class:`HostCrash`, ...) wrap these functions so the engine can apply and log
them like any action: each first moves time to its ``at`` (``advance``) and
is never refused (a crash that finds no target changes nothing and says so).
Their ``apply`` is the matching function below, so
:func:`presplit.plan.apply_action` runs them like any action; they are not
registered action kinds, so policies cannot ask for them through the journal
(the codec does not know them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from presplit.model.cluster import ClusterState
from presplit.model.domains import DOWN, MIGRATING, RUNNING
from presplit.model.fabric import Fabric, Link
from presplit.plan.actions import Action, Cost
from presplit.plan.transition import advance


def failed(state: ClusterState) -> np.ndarray:
    """Mask of guests a failure stopped and nobody restarted yet (down with no end)."""
    return (state.guest_status == DOWN) & np.isinf(state.guest_down_end)


def _set(arr: np.ndarray, idx, value) -> np.ndarray:
    out = arr.copy()
    out[idx] = value
    return out


def _stop_in(state: ClusterState, ids: list[int], t: float) -> tuple[ClusterState, np.ndarray, np.ndarray]:
    """Stop every guest placed in domains ``ids``; fail migrations into them. Returns (state, stopped, kept)."""
    dom, dest, status = state.guest_domain, state.guest_dest, state.guest_status
    inside = np.isin(dom, ids) & (dom >= 0)
    stopped = np.flatnonzero(inside)
    incoming = np.flatnonzero(np.isin(dest, ids) & (dest >= 0) & ~inside)
    if not len(stopped) and not len(incoming):
        return state, stopped, incoming
    new_dest, st = dest.copy(), status.copy()
    mig_end, d_start, d_end = state.guest_mig_end.copy(), state.guest_down_start.copy(), state.guest_down_end.copy()
    # Guests in the crashed domains: down from now (unless a failure already stopped them), no end.
    fresh = stopped[~np.isinf(d_end[stopped]) | (st[stopped] != DOWN)]
    d_start[fresh] = t
    d_end[stopped] = math.inf
    flying = stopped[st[stopped] == MIGRATING]
    new_dest[flying] = -1  # the copy at the destination is lost with its source
    mig_end[flying] = np.minimum(mig_end[flying], t)
    st[stopped] = DOWN
    # Migrations into the crashed domains fail: the guest keeps running where it was.
    new_dest[incoming] = -1
    st[incoming] = RUNNING
    mig_end[incoming] = np.minimum(mig_end[incoming], t)
    d_start[incoming] = t  # the pause at the end of the copy never happens
    d_end[incoming] = t
    out = state.evolve(guest_dest=new_dest, guest_status=st, guest_mig_end=mig_end, guest_down_start=d_start,
                       guest_down_end=d_end)
    return out, stopped, incoming


def _restarting(dom, ready_at: float):
    """A crashed domain: its services start again at ``ready_at``; a patch under way is lost."""
    if dom.state == "patching":
        dom = replace(dom, patch_started=float("-inf"), patch_until=float("-inf"))
    return replace(dom, state="provisioning", ready_at=ready_at)


def crash_host(state: ClusterState, host: int, t: float, repair_s: float) -> tuple[ClusterState, dict]:
    """Host ``host`` crashes at ``t`` (see the module docstring); back after ``repair_s`` plus its boot delay."""
    state = advance(state, max(t, state.now))[0] if t > state.now else state
    spec = state.hosts[host]
    ids = [d.id for d in state.domains_of(host)]
    out, stopped, kept = _stop_in(state, ids, state.now)
    ready = state.now + repair_s + spec.boot_delay_s
    out = out.evolve(host_ready_at=_set(out.host_ready_at, host, ready))
    out = out.with_domain(*[_restarting(state.domains[d], ready + state.model.provision_s) for d in ids])
    return out, {"host": host, "host_name": spec.name, "domains": ids, "guests_stopped": stopped.tolist(),
                 "migrations_failed": kept.tolist(), "ready_at": ready}


def crash_domain(state: ClusterState, domain: int, t: float, restart_s: float) -> tuple[ClusterState, dict]:
    """Domain ``domain``'s services crash at ``t``: only its guests stop; the services are back after ``restart_s``."""
    state = advance(state, t)[0] if t > state.now else state
    out, stopped, kept = _stop_in(state, [domain], state.now)
    out = out.with_domain(_restarting(state.domains[domain], state.now + restart_s))
    return out, {"domain": domain, "host": state.domains[domain].host, "guests_stopped": stopped.tolist(),
                 "migrations_failed": kept.tolist(), "ready_at": state.now + restart_s}


def _route(fabric: Fabric, a: int, b: int):
    try:
        return fabric.path(a, b)
    except ValueError:
        return None


def _reroute(before: ClusterState, after: ClusterState) -> tuple[ClusterState, list[int]]:
    """Fail migrations in flight whose route differs on ``after``'s fabric (guests stay at their source)."""
    flying = np.flatnonzero(after.guest_status == MIGRATING)
    host = after.domain_arrays["host"]
    hit = [int(g) for g in flying
           if _route(before.fabric, int(host[after.guest_domain[g]]), int(host[after.guest_dest[g]]))
           != _route(after.fabric, int(host[after.guest_domain[g]]), int(host[after.guest_dest[g]]))]
    for g in hit:
        after = fail_migration(after, g, after.now)[0]
    return after, hit


def fail_links(state: ClusterState, links: tuple[Link, ...], t: float) -> tuple[ClusterState, dict]:
    """``links`` fail at ``t``: they leave the fabric; migrations whose route they carried fail."""
    state = advance(state, t)[0] if t > state.now else state
    gone = set(links)
    out = state.evolve(fabric=Fabric(tuple(x for x in state.fabric.links if x not in gone)))
    out, hit = _reroute(state, out)
    return out, {"links": [link_name(state, x) for x in links], "migrations_failed": hit}


def repair_links(state: ClusterState, links: tuple[Link, ...], t: float) -> tuple[ClusterState, dict]:
    """``links`` are back in the fabric at ``t`` (migrations already under way keep their route)."""
    state = advance(state, t)[0] if t > state.now else state
    have = set(state.fabric.links)
    back = tuple(x for x in links if x not in have)
    out = state.evolve(fabric=Fabric(state.fabric.links + back)) if back else state
    return out, {"links": [link_name(state, x) for x in links]}


def fail_migration(state: ClusterState, guest: int, t: float) -> tuple[ClusterState, dict]:
    """The live migration of ``guest`` aborts at ``t``: it keeps running at its source."""
    state = advance(state, t)[0] if t > state.now else state
    g = int(guest)
    if int(state.guest_status[g]) != MIGRATING:
        return state, {"guest": g, "failed": False, "why": "not migrating any more"}
    dest = int(state.guest_dest[g])
    table = state.reserved.copy()
    table[dest] -= state.guest_reserve[g]
    now = state.now
    out = state.evolve(guest_dest=_set(state.guest_dest, g, -1), guest_status=_set(state.guest_status, g, RUNNING),
                       guest_mig_end=_set(state.guest_mig_end, g, now),
                       guest_down_start=_set(state.guest_down_start, g, now),
                       guest_down_end=_set(state.guest_down_end, g, now))
    out.__dict__["reserved"] = table
    return out, {"guest": g, "failed": True, "to": dest, "stays_in": int(state.guest_domain[g])}


# ----------------------------------------------------------------- targets
def host_targets(state: ClusterState) -> list[int]:
    """Hosts a crash can hit: on and booted."""
    return [h for h in range(state.n_hosts) if state.host_ready(h)]


def domain_targets(state: ClusterState) -> list[tuple[int, list[int]]]:
    """(host, its domains whose services run) for every booted host that has some."""
    out = []
    for h in host_targets(state):
        doms = [d.id for d in state.domains_of(h) if d.state in ("active", "draining") and d.ready_at <= state.now]
        if doms:
            out.append((h, doms))
    return out


def link_targets(state: ClusterState, base: Fabric) -> list[tuple[str, tuple[Link, ...]]]:
    """(name, links) a link failure can hit: each host's NIC (its links to its top-of-rack switch) and each
    rack's uplink to the spine; a fabric without switches (an explicit link list): each link."""
    nics: dict[int, list[Link]] = {}
    uplinks = []
    for x in base.links:
        ends = (x.a, x.b)
        if "spine" in ends:
            uplinks.append(x)
            continue
        hosts = [e for e in ends if isinstance(e, (int, np.integer))]
        if len(hosts) == 1 and any(isinstance(e, str) and e.startswith("tor:") for e in ends):
            nics.setdefault(int(hosts[0]), []).append(x)
    if not nics and not uplinks:
        return [(link_name(state, x), (x,)) for x in base.links]
    out = [(f"nic:{state.hosts[h].name}", tuple(v)) for h, v in sorted(nics.items())]
    out += [(link_name(state, x), (x,)) for x in sorted(uplinks, key=lambda x: str(x.a) + str(x.b))]
    return out


def link_name(state: ClusterState, x: Link) -> str:
    def node(e):
        return state.hosts[int(e)].name if isinstance(e, (int, np.integer)) else str(e)

    ends = {x.a, x.b}
    if "spine" in ends:
        tor = next(e for e in ends if e != "spine")
        return f"uplink:{str(tor).removeprefix('tor:')}"
    return f"link:{node(x.a)}-{node(x.b)}"


def choose(pick: float, n: int) -> tuple[int, float]:
    """An index in range(n) from a uniform ``pick`` in [0, 1), and what is left of the draw (again uniform)."""
    scaled = min(max(pick, 0.0), 1.0 - 1e-12) * n
    i = int(scaled)
    return i, scaled - i


def pick_domain(state: ClusterState, pick: float) -> int | None:
    """A domain whose services run, for a crash drawn by ``pick``: a booted host uniformly, then one of
    its domains with a chance in proportion to its memory allotment (a policy cannot make crashes rarer by
    carving tiny empty domains)."""
    targets = domain_targets(state)
    if not targets:
        return None
    i, rest = choose(pick, len(targets))
    doms = targets[i][1]
    weights = np.array([state.domains[d].mem_mb for d in doms])
    cum = np.cumsum(weights) / weights.sum()
    return int(doms[min(int(np.searchsorted(cum, rest, side="right")), len(doms) - 1)])


# ----------------------------------------------------------------- events as actions
@dataclass(frozen=True)
class FailureEvent(Action):
    """A failure the simulator injects at ``at`` (seconds); applied like an action, never refused."""

    at: float

    def apply(self, state):
        return _EFFECTS[type(self)](state, self)


@dataclass(frozen=True)
class HostCrash(FailureEvent):
    host: int = -1  # -1: drawn with ``pick`` among the hosts up at ``at``
    pick: float = 0.0
    repair_s: float = 7200.0


@dataclass(frozen=True)
class DomainCrash(FailureEvent):
    domain: int = -1  # -1: drawn with ``pick`` (see pick_domain)
    pick: float = 0.0
    restart_s: float = 60.0


@dataclass(frozen=True)
class LinkFailure(FailureEvent):
    links: tuple[Link, ...] = ()
    name: str = ""


@dataclass(frozen=True)
class LinkRepair(FailureEvent):
    links: tuple[Link, ...] = ()
    name: str = ""


@dataclass(frozen=True)
class MigrationFailure(FailureEvent):
    guest: int = -1
    to_domain: int = -1
    started: float = 0.0  # the migration this is about (a later one of the same guest is left alone)


@dataclass(frozen=True)
class DetectFailure(FailureEvent):
    """Heartbeats missed for ``detection_s``: time moves to ``at``, where the policy's recovery runs."""

    stopped: int = 0


def _to(state: ClusterState, t: float) -> ClusterState:
    return advance(state, t)[0] if t > state.now else state


def _host_crash(state, a: HostCrash):
    state = _to(state, a.at)
    hosts = host_targets(state)
    h = a.host if a.host >= 0 else (hosts[choose(a.pick, len(hosts))[0]] if hosts else None)
    if h is None or h not in hosts:
        return state, Cost(), (), {"at": a.at, "hit": False, "why": "no host up to crash"}
    out, details = crash_host(state, h, a.at, a.repair_s)
    return out, Cost(), details["guests_stopped"], {"at": a.at, "hit": True, **details}


def _domain_crash(state, a: DomainCrash):
    state = _to(state, a.at)
    d = a.domain if a.domain >= 0 else pick_domain(state, a.pick)
    running = d is not None and 0 <= d < len(state.domains) and state.domains[d].live and \
        state.domains[d].state in ("active", "draining") and state.host_ready(state.domains[d].host)
    if not running:
        return state, Cost(), (), {"at": a.at, "hit": False, "why": "no domain whose services run"}
    out, details = crash_domain(state, d, a.at, a.restart_s)
    return out, Cost(), details["guests_stopped"], {"at": a.at, "hit": True, **details}


def _link_failure(state, a: LinkFailure):
    out, details = fail_links(_to(state, a.at), a.links, a.at)
    return out, Cost(), details["migrations_failed"], {"at": a.at, "hit": True, "name": a.name, **details}


def _link_repair(state, a: LinkRepair):
    out, details = repair_links(_to(state, a.at), a.links, a.at)
    return out, Cost(), (), {"at": a.at, "name": a.name, **details}


def _migration_failure(state, a: MigrationFailure):
    state = _to(state, a.at)
    g = a.guest
    same = (0 <= g < state.n_guests and int(state.guest_status[g]) == MIGRATING
            and int(state.guest_dest[g]) == a.to_domain and float(state.guest_mig_start[g]) == a.started)
    if not same:
        return state, Cost(), (), {"at": a.at, "hit": False, "why": "the migration is over"}
    out, details = fail_migration(state, g, a.at)
    return out, Cost(), (g,), {"at": a.at, "hit": True, **details}


def _detect(state, a: DetectFailure):
    state = _to(state, a.at)
    return state, Cost(), (), {"at": a.at, "stopped": int(failed(state).sum())}


_EFFECTS = {HostCrash: _host_crash, DomainCrash: _domain_crash, LinkFailure: _link_failure,
            LinkRepair: _link_repair, MigrationFailure: _migration_failure, DetectFailure: _detect}
