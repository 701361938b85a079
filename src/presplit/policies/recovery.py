"""Recovery after failures, as policy: detection, restart placement, restart priorities, failover capacity.

A failure (:mod:`presplit.plan.failures`) stops guests: they are ``down``
with no end, still booked where they failed. Recovery is the policy's job,
as vSphere HA's and Kubernetes' node controller's are:

- **Detection.** A stopped guest is acted on once its failure is
  ``detection_s`` old (missed heartbeats; vSphere HA declares a host dead
  after about 15 s of silence plus its isolation checks, Kubernetes after the
  node monitor grace period). Until then, and until it has booted again
  elsewhere, the guest is down. The simulator calls a policy's ``recover``
  at that moment, between control ticks (an HA agent reacts to events; the
  balancer runs on its cycle), and every ``propose`` restarts whatever is
  still stopped.
- **Restart priorities.** Guests restart in priority order: a per-guest
  priority (``restart_priorities``: ``(glob, level)`` pairs matched against
  guest ids, first match wins, higher first; the default level is 0, as
  vSphere's "medium"), then the largest memory first (big guests are the
  hardest to fit; placing them first is first-fit decreasing), then guest
  order. A scenario's ``failures.priorities`` sets the pairs.
- **Where a guest restarts** (:func:`restart_first_fit`, the ``evacuate``
  baseline, as vSphere HA does it): the first domain, in host order, where its
  configured size (its reservation) fits; none: wake a switched-off host.
  (:func:`restart_by_forecast`, presplit): the domain with the most
  forecast CPU headroom after the restart -- the correlation-aware outlook of
  the domain's guests plus the restarted guest's own observed series, as
  placement uses -- preferring the failed host's rack and hosts with no patch
  due, under ``target``; if no domain stays under ``target`` the one where it
  fits with the lowest outlook (running hot beats staying down).
- **Failover capacity** (:func:`failover_reserve`, presplit; admission
  control as vSphere HA's "host failures cluster tolerates"): every rack
  keeps room to restart the guests of its ``failover_hosts`` worst hosts on
  its other hosts -- memory by reservation (a restart books a guest's whole
  RAM, as placement does), CPU by reservation and by the forecast outlook
  under ``target`` (not the configured sizes). The reserve is kept with power:
  empty hosts it needs stay on and switched-off hosts of a short rack are
  woken; arriving guests are never refused. Fragmentation is not modelled
  (room is summed per rack), so the reserve is necessary, not sufficient.

:func:`reserve_short` is the same test with current demand and the whole CPU
(not a forecast, not a target), the same for every policy: the simulator
counts the ticks when some rack could not take its worst host's guests
(``failover_capacity_short``).
"""

from __future__ import annotations

import fnmatch

import numpy as np

from presplit.model.cluster import ClusterState
from presplit.model.domains import DOWN
from presplit.plan import Action, PowerOn, RestartGuest, apply_action

EPS = 1e-6


def stopped(state: ClusterState) -> np.ndarray:
    """Guests a failure stopped that nobody restarted yet (down with no end)."""
    return np.flatnonzero((state.guest_status == DOWN) & np.isinf(state.guest_down_end))


def detected(state: ClusterState, detection_s: float) -> np.ndarray:
    """Stopped guests whose failure is at least ``detection_s`` old (their heartbeats are missed by now)."""
    g = stopped(state)
    return g[state.now - state.guest_down_start[g] >= detection_s - EPS]


def priority_of(state: ClusterState, guests: np.ndarray, priorities) -> np.ndarray:
    """Each guest's restart priority from ``(glob, level)`` pairs (first match wins; default 0)."""
    out = np.zeros(len(guests))
    for i, g in enumerate(guests):
        gid = state.guests[int(g)].id
        for pattern, level in priorities or ():
            if fnmatch.fnmatchcase(gid, pattern):
                out[i] = float(level)
                break
    return out


def restart_order(state: ClusterState, guests: np.ndarray, priorities=()) -> np.ndarray:
    """``guests`` in restart order: priority (higher first), then memory (larger first), then guest order."""
    guests = np.asarray(guests, dtype=np.int64)
    if len(guests) == 0:
        return guests
    keys = (guests, -state.guest_reserve[guests, 1], -priority_of(state, guests, priorities))
    return guests[np.lexsort(keys)]


def outlook(forecasts):
    """The upper bound of a row (or a sum of rows) of ``forecasts.recent()``: the feed's own ``bound`` when it
    has one (a decision forecaster), else the observed outlook (:func:`presplit.forecast.outlook.upper`)."""
    bound = getattr(forecasts, "bound", None)
    if callable(bound):
        return bound
    from presplit.forecast.outlook import upper

    return lambda rows: upper(rows, forecasts.params)


def _usable(state: ClusterState) -> np.ndarray:
    """Domains a guest may restart in now: active, provisioned, on a booted host."""
    a = state.domain_arrays
    ready = np.array([state.host_ready(h) for h in range(state.n_hosts)], bool)
    ok = np.array([d.live and d.state == "active" and d.ready_at <= state.now for d in state.domains], bool)
    return ok & ready[a["host"]]


def _fits(state: ClusterState, g: int, cand: np.ndarray) -> np.ndarray:
    a = state.domain_arrays
    free_mips = a["cap_mips"][cand] - state.reserved[cand, 0]
    free_mb = a["cap_mb"][cand] - state.reserved[cand, 1]
    own = cand == int(state.guest_domain[g])  # restarting where it failed: already booked there
    need = state.guest_reserve[g]
    return own | ((need[0] <= free_mips + EPS) & (need[1] <= free_mb + EPS))


def _failed_host(state: ClusterState, g: int) -> int:
    return int(state.domains[int(state.guest_domain[g])].host)


def _why(state: ClusterState, g: int) -> str:
    src = state.domains[int(state.guest_domain[g])]
    h = state.hosts[src.host]
    what = f"host {h.name}" if not state.host_ready(src.host) else f"domain {src.id} on host {h.name}"
    return f"{what} failed at t={float(state.guest_down_start[g]):g}; guest {state.guests[g].id} is down"


def wake_hosts(state: ClusterState, need_mb: float, *, rack: str | None = None, reason: str = ""
               ) -> tuple[list[Action], ClusterState]:
    """Switch on enough switched-off hosts (the given rack first) for ``need_mb`` of guests, counting the room
    of hosts already booting (so a call while one boots does not wake another)."""
    booting = [h for h in range(state.n_hosts) if state.host_on[h] and not state.host_ready(h)
               and state.host_ready_at[h] <= state.now + state.hosts[h].boot_delay_s + EPS]
    a = state.domain_arrays
    room = sum(float((a["cap_mb"] - state.reserved[:, 1])[[d.id for d in state.domains_of(h)]].sum()) for h in booting)
    off = [h for h in range(state.n_hosts) if not state.host_on[h]]
    off.sort(key=lambda h: (rack is not None and state.hosts[h].rack != rack, h))
    actions: list[Action] = []
    for h in off:
        if room >= need_mb - EPS:
            break
        action = PowerOn(h, reason=reason or "stopped guests fit nowhere: wake a host to restart them",
                         details={"need_mb": need_mb, "room_booting_mb": room})
        new, out = apply_action(state, action)
        if out.ok:
            state = new
            actions.append(action)
            room += state.hosts[h].ram_mb - sum(s.mem_mb for s in state.model.minimal_services)
    return actions, state


def restart_first_fit(state: ClusterState, *, detection_s: float = 30.0, priorities=()
                      ) -> tuple[list[Action], ClusterState]:
    """vSphere HA: each detected guest to the first domain (host order) where its configured size fits."""
    guests = restart_order(state, detected(state, detection_s), priorities)
    actions: list[Action] = []
    if len(guests) == 0:
        return actions, state
    order = np.flatnonzero(_usable(state))
    order = order[np.argsort(state.domain_arrays["host"][order], kind="stable")]
    left_mb = 0.0
    for g in guests:
        g = int(g)
        ok = _fits(state, g, order) if len(order) else np.zeros(0, bool)
        if not ok.any():
            left_mb += float(state.guest_reserve[g, 1])
            continue
        d = int(order[int(np.argmax(ok))])
        action = RestartGuest(g, d, reason=_why(state, g) + f": restart it on the first domain where its size "
                              f"fits (domain {d}, host {state.hosts[state.domains[d].host].name})",
                              details={"failed_at": float(state.guest_down_start[g]), "priority":
                                       float(priority_of(state, np.array([g]), priorities)[0])})
        new, out = apply_action(state, action)
        if out.ok:
            state = new
            actions.append(action)
    if left_mb > 0:
        more, state = wake_hosts(state, left_mb, reason="stopped guests fit on no running host: wake a host")
        actions += more
    return actions, state


def restart_by_forecast(state: ClusterState, forecasts, *, detection_s: float = 30.0, target: float = 0.8,
                        priorities=()) -> tuple[list[Action], ClusterState]:
    """presplit: each detected guest where the forecast CPU headroom after the restart is largest (see the
    module docstring for the order of preference)."""
    from presplit.forecast.outlook import group_series

    guests = restart_order(state, detected(state, detection_s), priorities)
    actions: list[Action] = []
    if len(guests) == 0:
        return actions, state
    rec = forecasts.recent()
    bound = outlook(forecasts)
    n = len(state.domains)
    series = group_series(state.guest_domain, state.guest_dest, rec, np.arange(n), n)
    usable = np.flatnonzero(_usable(state))
    a = state.domain_arrays
    host_of = a["host"]
    rack_of, _ = _racks(state)
    due = np.zeros(state.n_hosts, bool)
    due[[w.host for w in state.patch_due(0.0)]] = True
    left: dict[str, float] = {}
    for g in guests:
        g = int(g)
        src = int(state.guest_domain[g])
        rack = state.hosts[_failed_host(state, g)].rack
        cand = usable[_fits(state, g, usable)] if len(usable) else usable
        if len(cand) == 0:
            left[rack] = left.get(rack, 0.0) + float(state.guest_reserve[g, 1])
            continue
        with np.errstate(divide="ignore", invalid="ignore"):
            extra = np.where(cand == src, 0.0, 1.0)[:, None] * rec[g]
            load = bound(series[cand] + extra) / a["cap_mips"][cand]
        load = np.where(np.isfinite(load), load, np.inf)
        same_rack = rack_of[host_of[cand]] == rack_of[_failed_host(state, g)]
        calm = ~due[host_of[cand]]
        under = load <= target
        # Tiers: same rack, no patch due, under target; then any rack under target; then the least loaded.
        tier = np.where(under & same_rack & calm, 0, np.where(under & calm, 1, np.where(under, 2, 3)))
        best = np.lexsort((cand, load, tier))[0]
        d = int(cand[best])
        h = state.hosts[int(host_of[d])]
        tail = ("" if tier[best] < 3 else f", over the {target:.0%} target, the least loaded domain where it fits")
        action = RestartGuest(g, d, reason=_why(state, g) + f": restart it where the forecast leaves the most CPU "
                              f"headroom (domain {d}, host {h.name}, rack {h.rack}: {load[best]:.0%} of its CPU "
                              f"after the restart{tail})",
                              details={"failed_at": float(state.guest_down_start[g]),
                                       "domain_forecast": float(load[best]), "target": target,
                                       "same_rack": bool(same_rack[best]), "tier": int(tier[best]),
                                       "priority": float(priority_of(state, np.array([g]), priorities)[0])})
        new, out = apply_action(state, action)
        if not out.ok:
            continue
        state = new
        actions.append(action)
        if d != src:
            series[d] += rec[g]
            series[src] -= rec[g]
    for rack, need in sorted(left.items()):
        more, state = wake_hosts(state, need, rack=rack, reason=f"stopped guests of rack {rack} fit on no running "
                                                                  "host: wake a host to restart them")
        actions += more
    return actions, state


# ----------------------------------------------------------------- failover capacity
def _racks(state: ClusterState) -> tuple[np.ndarray, list[str]]:
    names = sorted({h.rack for h in state.hosts})
    index = {r: i for i, r in enumerate(names)}
    return np.array([index[h.rack] for h in state.hosts], np.int64), names


def host_table(state: ClusterState, dom_load: np.ndarray, *, target: float, soon_s: float = 0.0
               ) -> tuple[np.ndarray, np.ndarray]:
    """Per host, [hosts, 3] room and need: memory (MB), reserved CPU and CPU demand (MIPS).

    Room: what its domains that run (or will within ``soon_s``) have free -- memory and CPU by
    reservation, and ``target`` x their CPU less their demand outlook ``dom_load``. Need: what its
    guests book and their outlook, i.e. what would have to restart elsewhere if it failed.
    """
    a = state.domain_arrays
    n_h = state.n_hosts
    ok_dom = np.array([d.live and (d.state in ("active", "draining") or
                                   (d.state == "provisioning" and d.ready_at <= state.now + soon_s + EPS))
                       for d in state.domains], bool)
    res = state.reserved
    room = np.stack([np.clip(a["cap_mb"] - res[:, 1], 0, None), np.clip(a["cap_mips"] - res[:, 0], 0, None),
                     np.clip(target * a["cap_mips"] - dom_load, 0, None)], axis=1) * ok_dom[:, None]
    need = np.stack([res[:, 1], res[:, 0], dom_load], axis=1) * a["live"][:, None]
    return (np.stack([np.bincount(a["host"], room[:, k], minlength=n_h) for k in range(3)], axis=1),
            np.stack([np.bincount(a["host"], need[:, k], minlength=n_h) for k in range(3)], axis=1))


def _deficit(room: np.ndarray, need: np.ndarray, hosts: np.ndarray, hosts_lost: int) -> np.ndarray:
    """What ``hosts`` (one rack's counted hosts) lack to restart their ``hosts_lost`` worst hosts' guests on
    the others: the worst set maximises its need plus the room it takes away with it."""
    if len(hosts) == 0 or hosts_lost <= 0 or not need[hosts].any():
        return np.zeros(3)
    worst = np.sort(need[hosts] + room[hosts], axis=0)[::-1][:hosts_lost].sum(axis=0)
    return np.clip(worst - room[hosts].sum(axis=0), 0, None)


def rack_deficit(state: ClusterState, dom_load: np.ndarray, *, target: float, soon_s: float = 0.0,
                 hosts_lost: int = 1, counted: np.ndarray | None = None) -> np.ndarray:
    """[racks, 3]: memory (MB), reserved CPU and CPU demand (MIPS) a rack lacks to restart the guests of its
    ``hosts_lost`` worst hosts on its others (0 where it has the room).

    ``dom_load``: each domain's CPU demand outlook (MIPS). Hosts counted: booted ones, and with
    ``soon_s`` those that will be within that long (booting, not in repair); ``counted`` overrides.
    """
    rack_of, names = _racks(state)
    if counted is None:
        counted = state.host_on & (state.host_ready_at <= state.now + soon_s + EPS)
    room, need = host_table(state, dom_load, target=target, soon_s=soon_s)
    return np.array([_deficit(room, need, np.flatnonzero((rack_of == r) & counted), hosts_lost)
                     for r in range(len(names))]).reshape(-1, 3)


def reserve_short(state: ClusterState) -> bool:
    """The simulator's test (the same for every policy): some rack cannot take its worst host's guests
    (memory and reserved CPU by reservation, demand now against the whole CPU of its other booted hosts)."""
    a = state.domain_arrays
    placed = (state.guest_domain >= 0) & ~((state.guest_status == DOWN) & np.isinf(state.guest_down_end))
    load = np.bincount(state.guest_domain[placed], state.demand_mips[placed], minlength=len(state.domains))
    deficit = rack_deficit(state, load, target=1.0)
    scale = np.array([max(h.ram_mb for h in state.hosts), max(h.cpu_mips for h in state.hosts),
                      max(h.cpu_mips for h in state.hosts)])
    return bool((deficit > 1e-9 * scale).any()) if a["host"].size else False


def failover_reserve(state: ClusterState, forecasts, *, hosts_lost: int = 1, target: float = 0.8
                     ) -> tuple[list[Action], set[int]]:
    """presplit's admission control: (hosts to wake, empty hosts to keep on) so every rack keeps room to
    restart its ``hosts_lost`` worst hosts' guests (see the module docstring). The actions are valid on
    ``state`` in order."""
    from presplit.forecast.outlook import group_series

    if hosts_lost <= 0:
        return [], set()
    n = len(state.domains)
    series = group_series(state.guest_domain, state.guest_dest, forecasts.recent(), np.arange(n), n)
    dom_load = np.asarray(outlook(forecasts)(series), dtype=np.float64).reshape(n)
    soon = max(h.boot_delay_s for h in state.hosts)
    a = state.domain_arrays
    busy = np.zeros(state.n_hosts, bool)
    for arr in (state.guest_domain, state.guest_dest):
        busy[a["host"][arr[arr >= 0]]] = True
    up = state.host_on & (state.host_ready_at <= state.now + soon + EPS)
    rack_of, names = _racks(state)
    empty = up & ~busy
    room, need = host_table(state, dom_load, target=target, soon_s=soon)
    keep: set[int] = set()
    actions: list[Action] = []
    for r in range(len(names)):
        in_rack = rack_of == r
        counted = list(np.flatnonzero(in_rack & up & ~empty))
        short = _deficit(room, need, np.array(counted, np.int64), hosts_lost)
        if not (short > EPS).any():
            continue
        # Empty hosts the rack's reserve needs stay on (the largest first) ...
        for h in sorted(np.flatnonzero(in_rack & empty), key=lambda h: (-room[h, 0], h)):
            keep.add(int(h))
            counted.append(int(h))
            short = _deficit(room, need, np.array(counted, np.int64), hosts_lost)
            if not (short > EPS).any():
                break
        # ... and switched-off ones are woken while it is still short.
        for h in np.flatnonzero(in_rack & ~state.host_on):
            if not (short > EPS).any():
                break
            action = PowerOn(int(h), reason=f"rack {names[r]} lacks room to restart the guests of its "
                                            f"{hosts_lost} worst host(s) (failover capacity): wake a host",
                             details={"short_mb": float(short[0]), "short_cpu_reserved_mips": float(short[1]),
                                      "short_cpu_forecast_mips": float(short[2]), "target": target})
            new, out = apply_action(state, action)
            if out.ok:
                state = new
                actions.append(action)
                spec = state.hosts[int(h)]
                short = np.clip(short - np.array([spec.ram_mb, spec.cpu_mips, target * spec.cpu_mips]), 0, None)
    return actions, keep
