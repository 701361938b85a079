"""``evacuate``: the maintenance-mode baseline, as VMware DRS and OpenStack Watcher patch hosts.

Each tick, in this order (every action is tried on a what-if copy of the
state through :func:`presplit.plan.apply_action`, so the list it returns is
consistent and every action carries its reason and numbers):

1. **Maintenance.** For every host whose patch window is open and that is not
   yet patched in it: put it in maintenance (no new guests), live-migrate
   *all* its guests to other hosts (least loaded with room first), waking a
   switched-off host when nothing has room. Once empty, patch its domain(s).
   On the last tick a patch can still finish inside the window no new
   migration starts and the host is patched with whatever is still inside:
   those guests go down (the honest cost of a failed evacuation). A
   switched-off host in its window is woken to be patched.
2. **Placement** of arriving guests, first fit in host order by current
   demand (no forecast): a domain fits when the guest's reservation fits and
   its current demand stays under ``high`` of the domain's capacity.
3. **Balancing** (reactive, DRS-like): a domain above ``high`` of its capacity
   sheds its largest guests to the least loaded host with room until it is
   under. This is also what brings guests back to a patched host.
4. **Power** (DPM-like): empty hosts outside maintenance are switched off,
   keeping ``spare_hosts`` empty ones on.
5. **Failures** (vSphere HA, :mod:`presplit.policies.recovery`): guests a
   failure stopped restart, once it is ``detection_s`` old, on the first
   domain where their configured size fits (a host is woken when none has
   room); no failover capacity is reserved beyond the spare hosts.

Migration concurrency: DRS allows 8 concurrent vMotions per host; 8 streams
share the host's NIC, so what bounds throughput is the NIC's migration share.
Each host (as source or destination) gets ``nic_budget`` x one tick of
migration time (pre-copy durations at the full share) per tick.

No splitting: every host stays one domain, so patching a host is patching
its one domain. Hosts are provisioned as today's hypervisors are: every
domain runs all of the scenario's services (minimal and optional) from the
first tick, so the baseline never runs short of IO a service could carry.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from presplit.model.cluster import ClusterState
from presplit.policies import recovery
from presplit.policies.params import param
from presplit.model.domains import RUNNING
from presplit.plan import (
    Action, MigrateGuest, PatchDomain, PlaceGuest, PowerOff, PowerOn, ResizeDomain, apply_action,
)


@dataclass
class EvacuatePolicy:
    high: float = param(0.9, gt=0, le=1, doc="balance a domain whose CPU demand crosses this share of its capacity")
    nic_budget: float = param(1.0, gt=0, le=10, doc="per host and tick: migration seconds, as a share of the tick")
    spare_hosts: int = param(1, ge=0, le=1_000_000, doc="hosts kept on beyond what demand needs")
    detection_s: float = param(30.0, gt=0, le=3600,
                               doc="restart guests a failure stopped once it is this old (missed heartbeats)")
    restart_priorities: tuple = ()  # (guest-id glob, level): higher restarts first (presplit.policies.recovery)
    kind: str = "domains"
    name: str = "evacuate"

    def propose(self, state: ClusterState, forecasts, now: float) -> list[Action]:
        restarts, state = recovery.restart_first_fit(state, detection_s=self.detection_s,
                                                     priorities=self.restart_priorities)
        what_if = WhatIf(state, self)
        what_if.actions += restarts
        what_if.provision()
        what_if.maintenance()
        what_if.place()
        what_if.balance()
        what_if.power()
        return what_if.actions

    def recover(self, state: ClusterState, forecasts, now: float) -> list[Action]:
        """vSphere HA: restart the guests a failure stopped where their size fits (called once one is detected)."""
        return recovery.restart_first_fit(state, detection_s=self.detection_s, priorities=self.restart_priorities)[0]


def _tick(state: ClusterState) -> float:
    """The control tick (the engine asks policies this often)."""
    return float(state.model.interval_s)


class WhatIf:
    """One tick's what-if: the decisions so far and the state they lead to (``state``; every accepted action
    is applied to it through :func:`presplit.plan.apply_action`, so later decisions see earlier ones)."""

    def __init__(self, state: ClusterState, p: EvacuatePolicy) -> None:
        self.state, self.p, self.actions = state, p, []
        a = state.domain_arrays
        self.dom_host, self.cap = a["host"], a["cap_mips"]
        placed = state.guest_domain >= 0
        self.load = np.bincount(state.guest_domain[placed], state.demand_mips[placed], minlength=len(state.domains))
        flying = state.guest_dest >= 0
        self.load += np.bincount(state.guest_dest[flying], state.demand_mips[flying], minlength=len(state.domains))
        self.moves = np.zeros(state.n_hosts)  # migration seconds booked per host this tick
        self.budget = p.nic_budget * _tick(state)
        self.open = {w.host: w for w in state.patch_due(0.0)
                     if any(d.patch_started < w.start for d in state.domains_of(w.host))}
        self.woken = False

    def try_(self, action: Action):
        new, out = apply_action(self.state, action)
        if out.ok:
            self.state = new
            self.actions.append(action)
        return out if out.ok else None

    def host_load(self, h: int) -> float:
        ids = [d.id for d in self.state.domains_of(h)]
        return float(self.load[ids].sum() / max(self.cap[ids].sum(), 1.0))

    def targets(self, exclude: int) -> list[int]:
        """Active domains on ready hosts outside maintenance, least loaded host first."""
        s = self.state
        hosts = [h for h in range(s.n_hosts) if h != exclude and h not in self.open and s.host_ready(h)]
        hosts.sort(key=self.host_load)
        return [d.id for h in hosts for d in s.domains_of(h) if d.state == "active"]

    def fits(self, g: int, d: int) -> bool:
        need_mips, need_mb = self.state.guest_reserve[g]
        free_mips, free_mb = self.state.free(d)
        demand = self.state.demand_mips[g]
        return need_mips <= free_mips and need_mb <= free_mb and self.load[d] + demand <= self.p.high * self.cap[d]

    def migrate(self, g: int, d: int, reason: str, details: dict) -> bool:
        src_dom = int(self.state.guest_domain[g])
        src = int(self.dom_host[src_dom])
        dst = int(self.dom_host[d])
        if max(self.moves[src], self.moves[dst]) >= self.budget:
            return False
        out = self.try_(MigrateGuest(int(g), int(d), reason=reason, details=details))
        if out is None:
            return False
        self.moves[src] += out.cost.seconds
        self.moves[dst] += out.cost.seconds
        demand = self.state.demand_mips[g]
        self.load[src_dom] -= demand
        self.load[d] += demand
        return True

    def wake_one(self, reason: str) -> None:
        """Switch on the first switched-off host outside maintenance (once per tick)."""
        if self.woken:
            return
        for h in range(self.state.n_hosts):
            if not self.state.host_on[h] and h not in self.open:
                self.woken = self.try_(PowerOn(h, reason=reason)) is not None
                return

    # ------------------------------------------------------------ steps
    def maintenance(self) -> None:
        s = self.state
        for h, w in sorted(self.open.items()):
            if not s.host_on[h]:
                self.try_(PowerOn(h, reason="switched-off host in its patch window: wake it to patch",
                                  details={"window": (w.start, w.end)}))
                continue
            ids = [d.id for d in s.domains_of(h)]
            inside = np.flatnonzero(np.isin(self.state.guest_domain, ids) & (self.state.guest_status == RUNNING))
            last_call = self.state.now + s.model.patch_duration_s + _tick(s) >= w.end
            for g in ([] if last_call else inside):
                dst = next((d for d in self.targets(h) if self.fits(g, d)), None)
                if dst is None:
                    self.wake_one(f"no room to evacuate host {h} for its patch window")
                    break
                self.migrate(g, dst, f"host {h} enters maintenance for patch window "
                                     f"{w.start:g}-{w.end:g} s: evacuate every guest",
                             {"window": (w.start, w.end), "host": h, "guests_left": len(inside)})
            left = np.isin(self.state.guest_domain, ids) | np.isin(self.state.guest_dest, ids)
            if not left.any() or last_call:
                for d in ids:
                    self.try_(PatchDomain(d, reason=(f"host {h} evacuated: patch its domain in the window"
                                                     if not left.any() else
                                                     f"window closes at {w.end:g} s: patch with "
                                                     f"{int(left.sum())} guests still inside"),
                                          details={"window": (w.start, w.end), "guests_inside": int(left.sum())}))

    def provision(self) -> None:
        """Every usable domain runs every service of the scenario (static, full provisioning)."""
        s = self.state
        full = (*s.model.minimal_services, *s.model.optional_services)
        if not s.model.optional_services:
            return
        for d in s.domains:
            if d.live and d.state == "active" and set(d.services) != set(full):
                self.try_(ResizeDomain(d.id, d.cpu_mips, d.mem_mb, d.id, services=full,
                                       reason="hosts run every service from the start (static provisioning)"))

    def place(self) -> None:
        s = self.state
        pending = s.pending_guests()
        order = pending[np.argsort(-s.guest_reserve[pending, 0], kind="stable")]
        doms = [d.id for h in range(s.n_hosts) if h not in self.open and s.host_ready(h)
                for d in s.domains_of(h) if d.state == "active"]
        for g in order:
            d = next((d for d in doms if self.fits(g, d)), None)
            if d is None:
                self.wake_one("an arriving guest fits nowhere")
                continue
            if self.try_(PlaceGuest(int(g), d, reason="first fit by current demand",
                                    details={"demand_mips": float(s.demand_mips[g]), "domain_load": float(self.load[d])})):
                self.load[d] += s.demand_mips[g]

    def balance(self) -> None:
        s = self.state
        hot = np.flatnonzero((self.load > self.p.high * self.cap) & s.domain_arrays["live"])
        for d in hot:
            h = int(self.dom_host[d])
            if h in self.open:
                continue
            guests = np.flatnonzero((self.state.guest_domain == d) & (self.state.guest_status == RUNNING))
            for g in guests[np.argsort(-s.demand_mips[guests], kind="stable")]:
                if self.load[d] <= self.p.high * self.cap[d]:
                    break
                dst = next((x for x in self.targets(h) if self.fits(g, x)), None)
                if dst is None:
                    self.wake_one(f"domain {d} overloaded and no host has room")
                    break
                self.migrate(g, dst, f"domain {d} at {self.load[d] / self.cap[d]:.0%} > {self.p.high:.0%}: "
                                     "move its largest guest to the least loaded host",
                             {"load_mips": float(self.load[d]), "cap_mips": float(self.cap[d])})

    def power(self) -> None:
        s = self.state
        n = s.n_hosts
        busy = np.zeros(n, bool)
        for arr in (s.guest_domain, s.guest_dest):
            busy |= np.bincount(self.dom_host[arr[arr >= 0]], minlength=n) > 0
        empty = [h for h in range(n) if s.host_ready(h) and h not in self.open and not busy[h] and not self.moves[h]]
        for h in empty[self.p.spare_hosts:]:
            self.try_(PowerOff(h, reason="host empty outside maintenance (DPM)",
                               details={"spare_hosts_kept": self.p.spare_hosts}))
