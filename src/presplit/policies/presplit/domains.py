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
   host gets ``nic_budget`` x one tick of migration time per tick, each
   rack-to-rack link ``max_per_link`` migrations and the fleet ``max_total``;
   moves stop as soon as the domain is back under ``target``.
   When no host can take the guest in time, the guest is fenced in a domain
   of its own on its host (split, then re-pin with its share), so its peak no
   longer takes CPU from its neighbours.
4. **Domain services.** When the scenario's services carry IO, each domain
   runs the minimal set plus the optional services its guests' forecast disk
   and network IO needs: one is added when the correlation-aware IO outlook
   crosses ``target`` of what the running services carry, and dropped (its
   CPU and memory go back to the guests) once the outlook stays under
   ``io_release`` of what the others carry and it has run ``service_hold_s``.
   A domain split off for a patch
   starts with the services its future guests need.
5. **Fabric.** Where guest traffic is observed, each host's bandwidth is
   split between guest traffic (room for its network outlook) and live
   migrations (the rest, within bounds), before balancing migrates.
6. **Recombination and power.** A host's split domains are merged once its
   forecast fits under ``target`` as one domain; empty hosts outside patch
   windows are switched off, keeping ``spare_hosts`` on.
7. **Failures** (:mod:`presplit.policies.recovery`). Guests a failure
   stopped restart, once it is ``detection_s`` old, where their forecast
   leaves the most headroom (first, before anything else of the tick); each
   rack keeps room to restart ``failover_hosts`` hosts' guests (empty hosts
   it needs stay on, switched-off ones are woken). A host with
   ``contain_min_guests`` guests or more runs ``failure_domains`` domains, so
   one domain's services crashing stops only part of them
   (:mod:`presplit.policies.containment`).

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
    Action,
    MergeDomains,
    MigrateGuest,
    MoveGuest,
    PatchDomain,
    PlaceGuest,
    PowerOff,
    PowerOn,
    ResizeDomain,
    SplitDomain,
    apply_action,
)
from presplit.policies import containment, recovery
from presplit.policies.params import param
from presplit.policies.presplit import domain_io
from presplit.forecast.outlook import group_series


@dataclass
class DomainPresplit:
    target: float = param(0.8, gt=0, le=1,
                          doc="place and pack so a domain's forecast stays under this share of its CPU")
    relief: float = param(1.0, gt=0, le=2, doc="act on a domain whose forecast says it will exceed this share of its CPU")
    lead_s: float = param(600.0, ge=0, le=7 * 86400, doc="split this long before a patch window opens")
    cpu_margin: float = param(1.15, ge=1, le=10, doc="CPU a domain keeps for its guests = forecast upper x this")
    cooldown_s: float = param(3600.0, ge=0, le=30 * 86400,
                              doc="a guest that migrated stays put this long (unless its host is patched)")
    nic_budget: float = param(1.0, gt=0, le=10, doc="per host and tick: migration seconds, as a share of the tick")
    max_per_link: int = param(8, ge=1, le=100_000,
                              doc="live migrations per tick over one rack-to-rack (or in-rack) link")
    max_total: int = param(64, ge=1, le=1_000_000, doc="live migrations per tick in the whole fleet")
    spare_hosts: int = param(1, ge=0, le=1_000_000, doc="hosts kept on beyond what the forecast needs")
    mem_fill: float = param(0.7, gt=0, le=1, doc="placement spreads over the hosts needed at this memory filling")
    io_release: float = param(0.5, gt=0, le=1,
                              doc="drop an optional IO service once the outlook fits under this share without it")
    service_hold_s: float = param(3600.0, ge=0, le=30 * 86400, doc="an added service stays at least this long")
    min_migration_share: float = param(0.1, gt=0, le=1,
                                       doc="lowest share of a host's bandwidth live migrations may take")
    max_migration_share: float = param(0.9, gt=0, le=1,
                                       doc="highest share of a host's bandwidth live migrations may take")
    share_step: float = param(0.1, gt=0, le=1, doc="smallest change of a host's migration share worth making")
    pause_limit_s: float = param(0.01, gt=0, le=60,
                                 doc="stop-and-copy pause a live migration may take (more rounds, shorter pause)")
    detection_s: float = param(30.0, gt=0, le=3600,
                               doc="restart guests a failure stopped once it is this old (missed heartbeats)")
    failover_hosts: int = param(1, ge=0, le=1000,
                                doc="each rack keeps room to restart this many hosts' guests (0: no reserve)")
    failure_domains: int = param(2, ge=1, le=8,
                                 doc="a host with contain_min_guests or more runs this many domains, so one "
                                     "domain's services crashing stops only part of its guests (1: off)")
    contain_min_guests: int = param(16, ge=2, le=1_000_000, doc="guests on a host from which it is contained")
    restart_priorities: tuple = ()  # (guest-id glob, level): higher restarts first (presplit.policies.recovery)
    kind: str = "domains"
    name: str = "presplit"
    needs_forecasts: bool = True
    # Where a scenario has a maintenance history (patch.history), the windows in the state are the ones
    # predicted from it, plus real ones once announced open (presplit.scenarios.build.SeesPredictedWindows).
    predicts_patch_windows: bool = True

    def __post_init__(self) -> None:
        if self.min_migration_share > self.max_migration_share:
            raise ValueError(f"min_migration_share {self.min_migration_share:g} is above max_migration_share "
                             f"{self.max_migration_share:g}")

    def propose(self, state: ClusterState, forecasts, now: float) -> list[Action]:
        if forecasts is None or not hasattr(forecasts, "set_upper"):
            raise ValueError("the presplit policy needs observed forecasts "
                             "(presplit.sim.forecast_feed.ObservedForecasts), got none")
        restarts, state = recovery.restart_by_forecast(state, forecasts, detection_s=self.detection_s,
                                                       target=self.target, priorities=self.restart_priorities)
        plan = WhatIf(state, self, forecasts)
        plan.actions += restarts
        plan.patches()
        plan.place()
        domain_io.adapt_fabric(plan)
        plan.balance()
        domain_io.choose_services(plan)
        plan.recombine_demand()
        containment.contain(plan)
        wake, keep = recovery.failover_reserve(plan.state, forecasts, hosts_lost=self.failover_hosts, target=self.target)
        for action in wake:
            plan.try_(action)
        plan.power(keep)
        return plan.actions

    def recover(self, state: ClusterState, forecasts, now: float) -> list[Action]:
        """Restart the guests a failure stopped, between ticks (the simulator calls it once one is detected)."""
        return recovery.restart_by_forecast(state, forecasts, detection_s=self.detection_s, target=self.target,
                                            priorities=self.restart_priorities)[0]


class WhatIf:
    """One tick's decisions over a what-if copy of the state.

    The summed demand series of every domain (what the correlation-aware
    outlook needs) is built once per tick with array work and kept current as
    actions are applied, so a tick on 10,000 hosts costs array operations, not
    a Python loop over every domain.
    """

    def __init__(self, state: ClusterState, p: DomainPresplit, fc) -> None:
        self.state, self.p, self.fc, self.actions = state, p, fc, []
        self.tick = float(state.model.interval_s)
        self.moves = np.zeros(state.n_hosts)  # migration seconds booked per host this tick
        self.per_link: dict[tuple[str, str], int] = {}
        self.migrations = 0
        self.due = {}
        for w in state.patch_due(p.lead_s):
            self.due.setdefault(w.host, w)
        services = state.model.minimal_services
        self.services_mips = sum(x.cpu_mips for x in services)
        self.services_mb = sum(x.mem_mb for x in services)
        self.params = fc.params
        self._members: dict[int, set[int]] | None = None  # domain -> guests, built on first use
        self.rec = fc.recent()  # [guests, width]: additive rows (the observed samples, newest first, by default)
        # The bound of a row or a sum of rows: the forecaster's (DecisionFeed), else the observed outlook.
        self.bound = recovery.outlook(fc)
        self.series = self._all_series()
        self.dom_upper = self.bound(self.series)  # each domain's outlook, kept current
        self.largest = self._largest_guest()
        self.usable_mask = self._usable_mask()
        self.host_due = np.zeros(state.n_hosts, bool)
        self.host_due[list(self.due)] = True

    # ------------------------------------------------------------ per-domain arrays
    def _all_series(self) -> np.ndarray:
        s = self.state
        n = len(s.domains)
        return group_series(s.guest_domain, s.guest_dest, self.rec, np.arange(n), n)

    def _largest_guest(self) -> np.ndarray:
        s = self.state
        out = np.zeros(len(s.domains))
        for arr in (s.guest_domain, s.guest_dest):
            idx = np.flatnonzero(arr >= 0)
            np.maximum.at(out, arr[idx], s.guest_reserve[idx, 1])
        return out

    def _usable_mask(self) -> np.ndarray:
        return np.array([self.usable(d) for d in self.state.domains], dtype=bool)

    def _refresh(self, domains) -> None:
        """Bring the per-domain arrays up to date for ``domains`` (and any new domain)."""
        s = self.state
        n = len(s.domains)
        if n > len(self.series):
            grow = n - len(self.series)
            self.series = np.vstack([self.series, np.zeros((grow, self.series.shape[1]))])
            self.dom_upper = np.concatenate([self.dom_upper, np.zeros(grow)])
            self.largest = np.concatenate([self.largest, np.zeros(grow)])
            domains = list(domains) + list(range(n - grow, n))
        for d in set(int(x) for x in domains):
            m = self.members(d)
            dest = s.guest_dest[m]
            leaving = (dest >= 0) & (dest != d)
            self.series[d] = self.rec[m[~leaving]].sum(axis=0)
            self.dom_upper[d] = float(self.bound(self.series[d]))
            self.largest[d] = float(s.guest_reserve[m, 1].max()) if len(m) else 0.0

    # ------------------------------------------------------------ helpers
    def try_(self, action: Action):
        before = self.state
        new, out = apply_action(before, action)
        if not out.ok:
            return None
        self.state = new
        self.actions.append(action)
        # What the action occupies, as its kind declares it for the ordering (presplit.plan.actions)
        touch = action.touches(before, len(before.domains))
        if self._members is not None:
            self._reindex(before, out.guests)
        if touch.uses or touch.frees or touch.new_domains:
            # guests came or went, or domains appeared: the summed series of the domains it names changed
            self._refresh(touch.uses | touch.frees | touch.excl_domains)
        changed = touch.excl_domains | {d.id for h in touch.excl_hosts for d in new.domains_of(h)}
        if changed:
            self._update_usable(changed)  # a domain's or a host's state changed
        return out

    def _reindex(self, before: ClusterState, guests) -> None:
        """Move the guests an action touched (its outcome names them) to where the new state has them."""
        index, after = self._members, self.state
        for g in guests:
            for d in (before.guest_domain[g], before.guest_dest[g]):
                if d >= 0:
                    index.get(int(d), set()).discard(g)
            for d in (after.guest_domain[g], after.guest_dest[g]):
                if d >= 0:
                    index.setdefault(int(d), set()).add(g)

    def _update_usable(self, domains) -> None:
        s = self.state
        if len(s.domains) > len(self.usable_mask):
            self.usable_mask = np.concatenate([self.usable_mask, np.zeros(len(s.domains) - len(self.usable_mask), bool)])
        for d in domains:
            self.usable_mask[d] = self.usable(s.domains[d])

    def members(self, d: int) -> np.ndarray:
        """Guests placed in or migrating into domain d, in guest order."""
        if self._members is None:
            self._members = {}
            for arr in (self.state.guest_domain, self.state.guest_dest):
                for g in np.flatnonzero(arr >= 0):
                    self._members.setdefault(int(arr[g]), set()).add(int(g))
        return np.array(sorted(self._members.get(int(d), ())), dtype=np.int64)

    def upper(self, d: int, extra: int | None = None) -> float:
        row = self.series[d] if extra is None else self.series[d] + self.rec[extra]
        return float(self.bound(row))

    def cap(self, d: int) -> float:
        return float(self.state.domains[d].capacity_mips)

    def cpu_need(self, d: int) -> float:
        """CPU a domain must keep for its guests: reservations, or the forecast with a margin."""
        return max(float(self.state.reserved[d, 0]), self.upper(d) * self.p.cpu_margin)

    def spare(self, d: int) -> tuple[float, float]:
        """What domain d can give away: CPU beyond its need, memory beyond its reservations."""
        dom = self.state.domains[d]
        mem_res = float(self.state.reserved[d, 1])
        return (max(0.0, dom.capacity_mips - self.cpu_need(d)), max(0.0, dom.capacity_mb - mem_res))

    def fit_vector(self, g: int, cand: np.ndarray, share: float, *, headroom: bool = False):
        """For candidate domains: does g fit, and each one's forecast CPU load with g.

        g's reservation must fit and the domain's forecast with g stay under
        ``share`` of its CPU. With ``headroom`` the domain must also keep enough
        memory free to split off a domain for its largest guest: the room a patch
        without evacuation needs.
        """
        s = self.state
        a = s.domain_arrays
        need_mips, need_mb = s.guest_reserve[g]
        free_mips = a["cap_mips"][cand] - s.reserved[cand, 0]
        free_mb = a["cap_mb"][cand] - s.reserved[cand, 1]
        if headroom:
            free_mb = free_mb - np.maximum(self.largest[cand], need_mb) - 2 * self.services_mb
            free_mips = free_mips - 2 * self.services_mips
        with np.errstate(divide="ignore", invalid="ignore"):
            load = self.bound(self.series[cand] + self.rec[g]) / a["cap_mips"][cand]
        ok = (need_mips <= free_mips) & (need_mb <= free_mb) & (load <= share)
        return ok, load

    def fits(self, g: int, d: int, share: float, *, headroom: bool = False) -> bool:
        ok, _ = self.fit_vector(g, np.array([d]), share, headroom=headroom)
        return bool(ok[0])

    def usable(self, d) -> bool:
        return d.state == "active" and d.ready_at <= self.state.now and self.state.host_ready(d.host)

    def cooling(self, g: int) -> bool:
        return self.state.now - float(self.state.guest_mig_end[g]) < self.p.cooldown_s

    def migrate(self, g: int, d: int, reason: str, details: dict) -> bool:
        s = self.state
        src = int(s.domains[int(s.guest_domain[g])].host)
        dst = int(s.domains[d].host)
        budget = self.p.nic_budget * self.tick
        if max(self.moves[src], self.moves[dst]) >= budget:
            return False
        link = tuple(sorted((s.hosts[src].rack, s.hosts[dst].rack)))
        if self.per_link.get(link, 0) >= self.p.max_per_link or self.migrations >= self.p.max_total:
            return False  # caps against mass moves: per link and in total, per tick
        out = self.try_(MigrateGuest(int(g), int(d), max_downtime_s=self.p.pause_limit_s, reason=reason,
                                     details=details))
        if out is None:
            return False
        self.moves[src] += out.cost.seconds
        self.moves[dst] += out.cost.seconds
        self.per_link[link] = self.per_link.get(link, 0) + 1
        self.migrations += 1
        return True

    def candidates(self, exclude_host: int = -1, hosts: np.ndarray | None = None) -> np.ndarray:
        """Usable domains on ready hosts with no patch work due (optionally only on ``hosts``)."""
        host = self.state.domain_arrays["host"]
        mask = self.usable_mask & ~self.host_due[host] & (host != exclude_host)
        if hosts is not None:
            mask &= hosts[host]
        return np.flatnonzero(mask)

    def fullest_fit(self, g: int, exclude_host: int, share: float) -> int | None:
        """The fullest (by memory) domain on another host where g fits with headroom."""
        cand = self.candidates(exclude_host)
        if len(cand) == 0:
            return None
        ok, _ = self.fit_vector(g, cand, share, headroom=True)
        if not ok.any():
            return None
        a = self.state.domain_arrays
        c = cand[ok]
        fill = self.state.reserved[c, 1] / np.maximum(a["cap_mb"][c], 1.0)
        return int(c[np.argmax(fill)])

    # ------------------------------------------------------------ 1. patches
    def patches(self) -> None:
        for h, w in sorted(self.due.items()):
            s = self.state
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
        s = self.state
        dom = s.domains[d]
        _, mem = self.spare(d)
        # The new domain starts with little CPU (its guests bring their share when they
        # are re-pinned) and the memory nobody reserves; it never takes what guests reserve.
        hard_cpu = dom.capacity_mips - float(s.reserved[d, 0])
        hard_mem = dom.capacity_mb - float(s.reserved[d, 1])
        # Its guests will all live there: it starts with the services their IO outlook needs.
        io = domain_io.io_upper(self, self.members(d))
        services = domain_io.services_for(self, io, s.model.minimal_services)
        svc_mips, svc_mb = sum(x.cpu_mips for x in services), sum(x.mem_mb for x in services)
        cpu = min(svc_mips + 0.5 * self.services_mips, hard_cpu)
        mem = min(max(mem, svc_mb + 0.5 * self.services_mb), hard_mem)
        if cpu <= svc_mips or mem <= svc_mb:
            return  # too full to split: patch_step will make room over the fabric
        self.try_(SplitDomain(d, ((cpu, mem),), services=services, reason=(
            f"patch window {w.start:g}-{w.end:g} s of host {dom.host} opens in "
            f"{max(0.0, w.start - s.now):g} s: split off the capacity its guests do not need"),
            details={"window": (w.start, w.end), "new_cpu_mips": cpu, "new_mem_mb": mem,
                     "guests_cpu_need": self.cpu_need(d), "guests_mem_reserved": float(s.reserved[d, 1]),
                     "services": [x.name for x in services], "io_outlook_mb_s": io.tolist()}))

    def patch_step(self, h: int, w) -> None:
        s = self.state
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
        for g in sorted((int(g) for g in self.members(src) if self.state.guest_status[g] == RUNNING),
                        key=lambda g: -self.state.guest_reserve[g, 1]):
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
        s = self.state
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
        uppers = self.bound(self.rec[members])
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
        s = self.state
        guests = [int(g) for g in self.members(d) if s.guest_status[g] == RUNNING]
        guests.sort(key=lambda g: s.guest_reserve[g, 1])  # smallest first: cheapest room
        for g in guests[:4]:
            dst = self.fullest_fit(g, int(s.domains[d].host), self.p.target)
            if dst is not None:
                self.migrate(g, dst, f"host {s.domains[d].host} too full to split for its patch window: "
                                     "make room over the fabric", {"window": (w.start, w.end)})

    def recombine(self, h: int, w) -> None:
        doms = self.state.domains_of(h)
        if len(doms) > 1 and all(d.state == "active" and d.ready_at <= self.state.now for d in doms) and \
                containment.may_merge(self, h):
            ids = tuple(sorted((d.id for d in doms), key=lambda x: -float(self.state.reserved[x, 1])))
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
        s = self.state
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
        allowed = np.zeros(self.state.n_hosts, bool)
        allowed[list(hosts)] = True
        cand = self.candidates(hosts=allowed)
        if len(cand) == 0:
            return None, np.inf
        # Rank every candidate by a cheap bound (the sum of the domain's and the guest's
        # own outlooks, at least the outlook of their sum), then take the exact
        # correlation-aware outlook of the best few only.
        cap = self.state.domain_arrays["cap_mips"][cand]
        with np.errstate(divide="ignore", invalid="ignore"):
            bound = (self.dom_upper[cand] + float(self.bound(self.rec[g]))) / cap
        order = np.argsort(np.where(np.isfinite(bound), bound, np.inf), kind="stable")
        for start in range(0, len(order), 32):
            few = cand[order[start:start + 32]]
            ok, load = self.fit_vector(g, few, self.p.target, headroom=True)
            if ok.any():
                i = int(np.argmin(np.where(ok, load, np.inf)))
                return int(few[i]), float(load[i])
        return None, np.inf

    def wake_one(self, reason: str) -> None:
        s = self.state
        for h in range(s.n_hosts):
            if not s.host_on[h] and h not in self.due:
                self.try_(PowerOn(h, reason=reason))
                return

    # ------------------------------------------------------------ 3. balancing
    def balance(self) -> None:
        s = self.state
        a = s.domain_arrays
        with np.errstate(divide="ignore", invalid="ignore"):
            load = self.dom_upper / a["cap_mips"]
        hot = np.flatnonzero(self.usable_mask & a["live"] & (load > self.p.relief))
        for d_id in hot:
            d = s.domains[int(d_id)]
            h = d.host
            for _ in range(4):
                up = self.upper(d.id)
                if up <= self.p.relief * self.cap(d.id):
                    break
                members = self.members(d.id)
                guests = np.array([g for g in members if self.state.guest_status[g] == RUNNING
                                   and not self.cooling(g)], dtype=np.int64)
                if len(guests) == 0:
                    break
                gain = up - self.bound(self.series[d.id][None, :] - self.rec[guests])
                order = np.argsort(-(gain / self.state.guest_reserve[guests, 1]), kind="stable")
                g = int(guests[order[0]])
                why = (f"domain {d.id} forecast {up / self.cap(d.id):.0%} of its CPU crosses "
                       f"{self.p.relief:.0%}")
                numbers = {"forecast_mips": up, "cap_mips": self.cap(d.id), "now_mips": float(self.series[d.id, 0]),
                           "gain_mips": float(gain[order[0]])}
                siblings = [x.id for x in self.state.domains_of(h) if x.id != d.id and self.usable(x)]
                # Cheapest first: take CPU a sibling does not need (resize), then re-pin, then migrate.
                donor = next((x for x in siblings if self.spare(x)[0] >= up - self.p.target * self.cap(d.id)), None)
                if donor is not None:
                    cur = self.state.domains[d.id]
                    extra = up / self.p.target - self.cap(d.id)
                    if self.try_(ResizeDomain(d.id, cur.cpu_mips + extra, cur.mem_mb, donor,
                                              reason=why + f": take {extra:.0f} MIPS sibling {donor} does not need",
                                              details=numbers)):
                        continue
                sib = next((x for x in siblings if self.fits(g, x, self.p.target)), None)
                if sib is not None:
                    self.try_(MoveGuest(g, sib, reason=why + ": re-pin to a sibling domain", details=numbers))
                    continue
                dst = self.fullest_fit(g, h, self.p.target)
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
        s = self.state
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
        s = self.state
        for h in range(s.n_hosts):
            doms = s.domains_of(h)
            if h in self.due or len(doms) < 2 or any(not self.usable(d) for d in doms) or \
                    not containment.may_merge(self, h):
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
    def power(self, keep=frozenset()) -> None:
        s = self.state
        busy = np.zeros(s.n_hosts, bool)
        host_of = s.domain_arrays["host"]
        for arr in (s.guest_domain, s.guest_dest):
            busy[host_of[arr[arr >= 0]]] = True
        empty = [h for h in range(s.n_hosts) if s.host_ready(h) and h not in self.due and not busy[h]
                 and not self.moves[h] and all(d.state == "active" for d in s.domains_of(h)) and h not in keep]
        for h in empty[self.p.spare_hosts:]:
            self.try_(PowerOff(h, reason="host empty and no patch due: switch it off",
                               details={"spare_hosts_kept": self.p.spare_hosts}))
