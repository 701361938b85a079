"""presplit on split-domain fleets: patch without evacuating, balance with few, cheap moves.

Each tick, over a what-if copy of the state (every action goes through
:func:`presplit.plan.apply_action`, so the list returned is consistent):

1. **Patch windows (split controller).** Ahead of a host's window (``lead_s``)
   its domain is split: the new domain gets what the guests do not need (their
   reserved memory, and their forecast CPU with a margin), and is patched as
   soon as the window opens. The guests are then re-pinned into the patched
   domain, which grows by what each move frees (resize), the emptied domain
   is patched, and the two are merged again. No guest leaves the host, no
   guest goes down. Only when a host is too full to split do a few guests
   migrate to other hosts.
2. **Placement.** Arriving guests go to the domain where their reservation
   fits and the domain's forecast stays under ``target``: the fullest such
   domain (best fit), so other hosts stay free to switch off.
3. **Balancing agent.** A domain whose correlation-aware forecast (the upper
   quantile of its guests' summed series) crosses ``relief`` sheds the guest
   that helps most per megabyte moved: to a sibling domain of the same host
   first (re-pin, no copy), then to the host where it fits best over the
   fabric. Guards: a guest that migrated within ``cooldown_s`` stays; each
   host gets ``nic_budget`` x one tick of migration time per tick; moves
   stop as soon as the domain is back under ``target``.
   When no host can take the guest in time, the guest is fenced in a domain
   of its own on its host (split, then re-pin with its share), so its peak no
   longer takes CPU from its neighbours.
4. **Recombination and power.** A host's split domains are merged once its
   forecast fits under ``target`` as one domain; empty hosts outside patch
   windows are switched off, keeping ``spare_hosts`` on.

The forecasts come from outside (``forecasts.recent`` / ``set_upper``,
see :class:`presplit.sim.forecast_feed.ObservedForecasts`); the policy keeps
no state of its own between ticks: cool-downs and patch progress are read off
the state, so ``propose`` is a pure function of (state, forecasts).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from presplit.model.cluster import ClusterState
from presplit.model.domains import PENDING, RUNNING
from presplit.plan import (
    Action, MergeDomains, MigrateGuest, MoveGuest, PatchDomain, PlaceGuest, PowerOff, PowerOn, ResizeDomain,
    SplitDomain, apply_action,
)


@dataclass
class DomainPresplit:
    target: float = 0.8        # place and pack so a domain's forecast stays under this share of its CPU
    relief: float = 1.0        # act on a domain whose forecast says it will exceed this share of its CPU
    lead_s: float = 600.0      # split this long before a patch window opens
    cpu_margin: float = 1.15   # CPU a domain keeps for its guests = forecast upper x this
    cooldown_s: float = 3600.0  # a guest that migrated stays put this long (unless its host is patched)
    nic_budget: float = 1.0    # per host and tick: migration seconds, as a share of the tick
    spare_hosts: int = 1
    mem_fill: float = 0.7      # placement spreads over the hosts needed at this memory filling
    kind: str = "domains"
    name: str = "presplit"
    needs_forecasts: bool = True

    def propose(self, state: ClusterState, forecasts, now: float) -> list[Action]:
        if forecasts is None or not hasattr(forecasts, "set_upper"):
            raise ValueError("the presplit policy needs observed forecasts "
                             "(presplit.sim.forecast_feed.ObservedForecasts), got none")
        plan = _Plan(state, self, forecasts)
        plan.patches()
        plan.place()
        plan.balance()
        plan.recombine_demand()
        plan.power()
        return plan.actions


class _Plan:
    def __init__(self, state: ClusterState, p: DomainPresplit, fc) -> None:
        self.sim, self.p, self.fc, self.actions = state, p, fc, []
        self.tick = float(state.model.interval_s)
        self.moves = np.zeros(state.n_hosts)
        self.due = {}
        for w in state.patch_due(p.lead_s):
            self.due.setdefault(w.host, w)
        services = state.model.minimal_services
        self.services_mips = sum(x.cpu_mips for x in services)
        self.services_mb = sum(x.mem_mb for x in services)

    # ------------------------------------------------------------ helpers
    def try_(self, action: Action):
        new, out = apply_action(self.sim, action)
        if out.ok:
            self.sim = new
            self.actions.append(action)
            return out
        return None

    def members(self, d: int) -> np.ndarray:
        s = self.sim
        return np.flatnonzero((s.guest_domain == d) | (s.guest_dest == d))

    def upper(self, d: int, extra: int | None = None) -> float:
        guests = self.members(d)
        if extra is not None:
            guests = np.append(guests, extra)
        return self.fc.set_upper(guests)

    def cap(self, d: int) -> float:
        return float(self.sim.domains[d].capacity_mips)

    def cpu_need(self, d: int) -> float:
        """CPU a domain must keep for its guests: reservations, or the forecast with a margin."""
        guests = self.members(d)
        reserved = float(self.sim.guest_reserve[guests, 0].sum())
        return max(reserved, self.fc.set_upper(guests) * self.p.cpu_margin)

    def spare(self, d: int) -> tuple[float, float]:
        """What domain d can give away: CPU beyond its need, memory beyond its reservations."""
        dom = self.sim.domains[d]
        mem_res = float(self.sim.reserved[d, 1])
        return (max(0.0, dom.capacity_mips - self.cpu_need(d)), max(0.0, dom.capacity_mb - mem_res))

    def fits(self, g: int, d: int, share: float, *, headroom: bool = False) -> bool:
        """g's reservation fits d and d's forecast with g stays under ``share`` of its CPU.

        With ``headroom``, d must also keep enough memory free to split off a domain
        that can take its largest guest: the room a patch without evacuation needs.
        """
        need_mips, need_mb = self.sim.guest_reserve[g]
        free_mips, free_mb = self.sim.free(d)
        if headroom:
            members = self.members(d)
            largest = max(need_mb, float(self.sim.guest_reserve[members, 1].max()) if len(members) else 0.0)
            free_mb -= largest + 2 * self.services_mb
            free_mips -= 2 * self.services_mips
        return need_mips <= free_mips and need_mb <= free_mb and self.upper(d, g) <= share * self.cap(d)

    def usable(self, d) -> bool:
        return d.state == "active" and d.ready_at <= self.sim.now and self.sim.host_ready(d.host)

    def cooling(self, g: int) -> bool:
        return self.sim.now - float(self.sim.guest_mig_end[g]) < self.p.cooldown_s

    def migrate(self, g: int, d: int, reason: str, details: dict) -> bool:
        s = self.sim
        src = int(s.domains[int(s.guest_domain[g])].host)
        dst = int(s.domains[d].host)
        budget = self.p.nic_budget * self.tick
        if max(self.moves[src], self.moves[dst]) >= budget:
            return False
        out = self.try_(MigrateGuest(int(g), int(d), reason=reason, details=details))
        if out is None:
            return False
        self.moves[src] += out.cost.seconds
        self.moves[dst] += out.cost.seconds
        return True

    def other_hosts(self, h: int) -> list[int]:
        """Active domains on other ready hosts with no patch work due, fullest (by memory) first."""
        s = self.sim
        doms = [d for x in range(s.n_hosts) if x != h and x not in self.due and s.host_ready(x)
                for d in s.domains_of(x) if self.usable(d)]
        doms.sort(key=lambda d: -float(s.reserved[d.id, 1]) / max(d.capacity_mb, 1.0))
        return [d.id for d in doms]

    # ------------------------------------------------------------ 1. patches
    def patches(self) -> None:
        for h, w in sorted(self.due.items()):
            s = self.sim
            if not s.host_on[h]:
                self.try_(PowerOn(h, reason="switched-off host in its patch window: wake it to patch",
                                  details={"window": (w.start, w.end)}))
                continue
            if not s.host_ready(h):
                continue
            doms = s.domains_of(h)
            unpatched = [d for d in doms if d.patch_started < w.start]
            if not unpatched:
                self.recombine(h, w)
                continue
            if any(d.state != "active" for d in doms):
                continue  # a domain is provisioning or being patched: wait for it
            if s.now < w.start:
                if len(doms) == 1 and len(self.members(doms[0].id)):
                    self.split_for_patch(doms[0].id, w)
                continue
            self.patch_step(h, w)

    def split_for_patch(self, d: int, w) -> None:
        """Split off what d's guests do not need (at least room for the domain's own services)."""
        s = self.sim
        dom = s.domains[d]
        _, mem = self.spare(d)
        # The new domain starts with little CPU (its guests bring their share when they
        # are re-pinned) and the memory nobody reserves; it never takes what guests reserve.
        hard_cpu = dom.capacity_mips - float(s.reserved[d, 0])
        hard_mem = dom.capacity_mb - float(s.reserved[d, 1])
        cpu = min(1.5 * self.services_mips, hard_cpu)
        mem = min(max(mem, 1.5 * self.services_mb), hard_mem)
        if cpu <= self.services_mips or mem <= self.services_mb:
            return  # too full to split: patch_step will make room over the fabric
        self.try_(SplitDomain(d, ((cpu, mem),), reason=(
            f"patch window {w.start:g}-{w.end:g} s of host {dom.host} opens in "
            f"{max(0.0, w.start - s.now):g} s: split off the capacity its guests do not need"),
            details={"window": (w.start, w.end), "new_cpu_mips": cpu, "new_mem_mb": mem,
                     "guests_cpu_need": self.cpu_need(d), "guests_mem_reserved": float(s.reserved[d, 1])}))

    def patch_step(self, h: int, w) -> None:
        s = self.sim
        doms = s.domains_of(h)
        empty = [d for d in doms if d.patch_started < w.start and len(self.members(d.id)) == 0]
        if empty:
            self.try_(PatchDomain(empty[0].id, reason=f"domain {empty[0].id} of host {h} holds no guest: "
                                                      f"patch it inside window {w.start:g}-{w.end:g} s",
                                  details={"window": (w.start, w.end)}))
            return
        if len(doms) == 1:
            self.make_room_to_split(doms[0].id, w)
            return
        # Empty the unpatched domain with the least memory into its siblings, patched ones first.
        unpatched = sorted((d for d in doms if d.patch_started < w.start), key=lambda d: s.reserved[d.id, 1])
        src = unpatched[0].id
        sinks = sorted((d.id for d in doms if d.id != src), key=lambda x: s.domains[x].patch_started < w.start)
        for g in sorted((int(g) for g in self.members(src) if self.sim.guest_status[g] == RUNNING),
                        key=lambda g: -self.sim.guest_reserve[g, 1]):
            self.repin(g, src, sinks, w)
        if len(self.members(src)) == 0:
            self.try_(PatchDomain(src, reason=f"domain {src} emptied by re-pinning: patch it",
                                  details={"window": (w.start, w.end)}))

    def repin(self, g: int, src: int, sinks: list[int], w=None, *, reason: str = "",
              details: dict | None = None) -> bool:
        """Re-pin g from src into the first sink that takes it, carrying its share of the allotment.

        The guest's memory and its CPU (reservation, or forecast with a margin)
        move with it, so the sink never needs room of its own; src keeps what
        its other guests reserve.
        """
        s = self.sim
        res_cpu, ram = (float(x) for x in s.guest_reserve[g])
        src_dom = s.domains[src]
        others = self.members(src)
        others = others[others != g]
        # src keeps its services, what its other guests reserve, and a sliver (a live
        # domain must hold more than its services) until it is merged.
        floor_cpu = src_dom.overhead_mips + float(s.guest_reserve[others, 0].sum()) + 1.0
        floor_mb = src_dom.overhead_mb + float(s.guest_reserve[others, 1].sum()) + 1.0
        # CPU goes in proportion to the guest's share of src's forecast demand, so both
        # domains keep the same headroom while the guests are spread over them.
        members = self.members(src)
        uppers = self.fc.guest_quantile(self.fc.params.quantile, 1)[members]
        share = float(uppers[members == g].sum() / uppers.sum()) if uppers.sum() > 0 else 1.0 / len(members)
        want = max(res_cpu, (src_dom.capacity_mips - float(s.guest_reserve[members, 0].sum())) * share + res_cpu)
        carry_cpu = max(0.0, min(want, src_dom.cpu_mips - floor_cpu))
        ram = max(0.0, min(ram, src_dom.mem_mb - floor_mb))
        for dst in sinks:
            why = reason or (f"empty domain {src} for its patch inside window {w.start:g}-{w.end:g} s: re-pin to "
                             f"sibling domain {dst} with its share of CPU and memory (no copy, no downtime)")
            numbers = dict(details or {"window": (w.start, w.end)})
            numbers.update(carry_mips=carry_cpu, carry_mb=ram)
            if self.try_(MoveGuest(g, dst, carry_mips=carry_cpu, carry_mb=ram, reason=why, details=numbers)):
                return True
        return False

    def make_room_to_split(self, d: int, w) -> None:
        """A host still one domain inside its window: split, or migrate a few guests off to be able to."""
        before = len(self.actions)
        self.split_for_patch(d, w)
        if len(self.actions) > before:
            return
        s = self.sim
        guests = [int(g) for g in self.members(d) if s.guest_status[g] == RUNNING]
        guests.sort(key=lambda g: s.guest_reserve[g, 1])  # smallest first: cheapest room
        for g in guests[:4]:
            dst = next((x for x in self.other_hosts(s.domains[d].host)
                        if self.fits(g, x, self.p.target, headroom=True)), None)
            if dst is not None:
                self.migrate(g, dst, f"host {s.domains[d].host} too full to split for its patch window: "
                                     "make room over the fabric", {"window": (w.start, w.end)})

    def recombine(self, h: int, w) -> None:
        doms = self.sim.domains_of(h)
        if len(doms) > 1 and all(d.state == "active" and d.ready_at <= self.sim.now for d in doms):
            ids = tuple(sorted((d.id for d in doms), key=lambda x: -float(self.sim.reserved[x, 1])))
            self.try_(MergeDomains(ids, reason=f"host {h} patched in window {w.start:g}-{w.end:g} s: "
                                               "merge its split domains again", details={"domains": ids}))

    # ------------------------------------------------------------ 2. placement
    def place(self) -> None:
        """Arriving guests, biggest first, to the domain with the most CPU headroom where they fit.

        Memory is what binds on these fleets and it is reserved in full, so the
        headroom that matters for SLA is CPU: spreading the forecast CPU load
        evenly leaves every host room for its guests' peaks, which a guest
        without history cannot yet show.
        """
        s = self.sim
        pending = s.pending_guests()
        if len(pending) == 0:
            return
        # Spread over as many hosts as the memory to place needs at ``mem_fill``, not over
        # every host: the rest stay empty and are switched off.
        host_of = s.domain_arrays["host"]
        busy = np.zeros(s.n_hosts, bool)
        placed = s.guest_domain >= 0
        busy[host_of[s.guest_domain[placed]]] = True
        mem_total = float(s.guest_reserve[placed | (s.guest_status == PENDING), 1].sum())
        per_host = np.mean([h.ram_mb for h in s.hosts]) * self.p.mem_fill
        want = int(np.ceil(mem_total / per_host))
        spare_hosts = [h for h in range(s.n_hosts) if not busy[h] and s.host_ready(h) and h not in self.due]
        allowed = set(np.flatnonzero(busy).tolist()) | set(spare_hosts[:max(0, want - int(busy.sum()))])
        for g in pending[np.argsort(-s.guest_reserve[pending, 1], kind="stable")]:
            g = int(g)
            best, best_load = self.most_headroom(g, allowed)
            if best is None:
                extra = next((h for h in spare_hosts if h not in allowed), None)
                if extra is None:
                    self.wake_one("an arriving guest fits nowhere")
                    continue
                allowed.add(extra)  # one more running host, then try again
                best, best_load = self.most_headroom(g, allowed)
                if best is None:
                    continue
            self.try_(PlaceGuest(g, best, reason="the domain with the most CPU headroom where it fits",
                                 details={"domain_forecast": best_load, "target": self.p.target}))

    def most_headroom(self, g: int, hosts: set[int]) -> tuple[int | None, float]:
        """The domain on ``hosts`` where g fits with the lowest forecast CPU load after it."""
        best, best_load = None, np.inf
        for d in self.other_hosts(-1):
            if int(self.sim.domains[d].host) in hosts and self.fits(g, d, self.p.target, headroom=True):
                load = self.upper(d, g) / self.cap(d)
                if load < best_load:
                    best, best_load = d, load
        return best, best_load

    def wake_one(self, reason: str) -> None:
        s = self.sim
        for h in range(s.n_hosts):
            if not s.host_on[h] and h not in self.due:
                self.try_(PowerOn(h, reason=reason))
                return

    # ------------------------------------------------------------ 3. balancing
    def balance(self) -> None:
        s = self.sim
        for d in [d for d in s.domains if d.live and self.usable(d)]:
            h = d.host
            for _ in range(4):
                up = self.upper(d.id)
                if up <= self.p.relief * self.cap(d.id):
                    break
                guests = np.array([g for g in self.members(d.id) if self.sim.guest_status[g] == RUNNING
                                   and not self.cooling(g)], dtype=np.int64)
                if len(guests) == 0:
                    break
                series = self.fc.recent(self.members(d.id)).sum(axis=0)
                gain = np.array([up - self.fc.set_upper(np.setdiff1d(self.members(d.id), [g])) for g in guests])
                order = np.argsort(-(gain / self.sim.guest_reserve[guests, 1]), kind="stable")
                g = int(guests[order[0]])
                why = (f"domain {d.id} forecast {up / self.cap(d.id):.0%} of its CPU crosses "
                       f"{self.p.relief:.0%}")
                numbers = {"forecast_mips": up, "cap_mips": self.cap(d.id), "now_mips": float(series[0]),
                           "gain_mips": float(gain[order[0]])}
                siblings = [x.id for x in self.sim.domains_of(h) if x.id != d.id and self.usable(x)]
                # Cheapest first: take CPU a sibling does not need (resize), then re-pin, then migrate.
                donor = next((x for x in siblings if self.spare(x)[0] >= up - self.p.target * self.cap(d.id)), None)
                if donor is not None:
                    cur = self.sim.domains[d.id]
                    extra = up / self.p.target - self.cap(d.id)
                    if self.try_(ResizeDomain(d.id, cur.cpu_mips + extra, cur.mem_mb, donor,
                                              reason=why + f": take {extra:.0f} MIPS sibling {donor} does not need",
                                              details=numbers)):
                        continue
                sib = next((x for x in siblings if self.fits(g, x, self.p.target)), None)
                if sib is not None:
                    self.try_(MoveGuest(g, sib, reason=why + ": re-pin to a sibling domain", details=numbers))
                    continue
                dst = next((x for x in self.other_hosts(h) if self.fits(g, x, self.p.target, headroom=True)), None)
                if dst is None or not self.migrate(g, dst, why + ": migrate to the best-fitting host", numbers):
                    self.isolate(d.id, g, siblings, why, numbers)
                    break

    def isolate(self, d: int, g: int, siblings: list[int], why: str, numbers: dict) -> None:
        """No host can take the guest in time: fence it in a domain of its own on this host.

        The guest whose leaving helps most is the one whose peaks coincide with
        the domain's; in its own domain (with its share of CPU and memory) its
        overload no longer takes CPU from the others. The split is undone
        (``recombine_demand``) when the host's forecast is back under target.
        """
        s = self.sim
        h = int(s.domains[d].host)
        if h in self.due or len(self.members(d)) < 3:
            return
        empty = [x for x in siblings if len(self.members(x)) == 0]
        if empty:
            self.repin(g, d, empty[:1], reason=why + ": no host can take it in time; fence it in its own "
                                                     f"domain {empty[0]}", details=numbers)
            return
        if len(s.domains_of(h)) > 1:
            return
        cpu = min(1.5 * self.services_mips, s.domains[d].capacity_mips - float(s.reserved[d, 0]))
        mem = min(1.5 * self.services_mb, s.domains[d].capacity_mb - float(s.reserved[d, 1]))
        if cpu > self.services_mips and mem > self.services_mb:
            self.try_(SplitDomain(d, ((cpu, mem),), reason=why + ": no host can take its hottest guest in time; "
                                  "split off a domain to fence it in (it moves in once the domain is ready)",
                                  details={**numbers, "guest": g}))

    def recombine_demand(self) -> None:
        """Merge a host's domains again once its forecast fits under target as one domain."""
        s = self.sim
        for h in range(s.n_hosts):
            doms = s.domains_of(h)
            if h in self.due or len(doms) < 2 or any(not self.usable(d) for d in doms):
                continue
            guests = np.concatenate([self.members(d.id) for d in doms])
            total = sum(d.capacity_mips for d in doms) + sum(d.overhead_mips for d in doms[1:])
            up = self.fc.set_upper(guests)
            if up <= self.p.target * total:
                ids = tuple(sorted((d.id for d in doms), key=lambda x: -float(s.reserved[x, 1])))
                self.try_(MergeDomains(ids, reason=f"host {h} forecast {up / total:.0%} fits under "
                                                   f"{self.p.target:.0%} as one domain: merge its split domains",
                                       details={"forecast_mips": up, "cap_mips": total, "domains": ids}))

    # ------------------------------------------------------------ 4. power
    def power(self) -> None:
        s = self.sim
        busy = np.zeros(s.n_hosts, bool)
        host_of = s.domain_arrays["host"]
        for arr in (s.guest_domain, s.guest_dest):
            busy[host_of[arr[arr >= 0]]] = True
        empty = [h for h in range(s.n_hosts) if s.host_ready(h) and h not in self.due and not busy[h]
                 and not self.moves[h] and all(d.state == "active" for d in s.domains_of(h))]
        for h in empty[self.p.spare_hosts:]:
            self.try_(PowerOff(h, reason="host empty and no patch due: switch it off",
                               details={"spare_hosts_kept": self.p.spare_hosts}))
