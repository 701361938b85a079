"""ClusterState: hosts, split domains, guests, fabric, time and power state of a fleet.

Array-backed where the simulator does fleet-wide work (one numpy array per
guest attribute and per host attribute), immutable by convention *and* by
construction: every array is made read-only, and a transition builds a new
state with :meth:`ClusterState.evolve`, copying only the arrays it changes
(copy-on-write; unchanged arrays are shared between states). Domains are a
tuple of :class:`Domain` values, indexed by their id; a merged domain stays in
the tuple with a zero allotment so ids never shift.

Guest arrays (index = guest number, ``guests[i]`` is the static spec):

- ``guest_domain``: the domain a guest runs in (the *source* while it migrates), -1 if unplaced;
- ``guest_dest``: the destination domain of a migration in flight, else -1;
- ``guest_status``: codes of :data:`presplit.model.domains.GUEST_STATES`;
- ``guest_mig_start``/``guest_mig_end``: the pre-copy interval of the last migration;
- ``guest_down_start``/``guest_down_end``: the last downtime interval (stop-and-copy or patch);
- ``demand_mips``/``demand_mem_mb``: current demand, set by the engine each tick;
- ``demand_io``: [guests, 2] current disk and network IO in MB/s (zeros when the trace has none).

Host arrays: ``host_on`` (powered), ``host_ready_at`` (boot finishes) and
``host_mig_share`` (the share of the host's fabric bandwidth live migrations
may take; the model's ``migration_bw_share`` until a policy adapts it).
``patch_windows`` are every scenario window (sorted by start); :meth:`patch_due`
filters those open or starting soon.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from presplit.model.domains import (
    ABSENT,
    GUEST_STATES,
    MIGRATING,
    PENDING,
    Domain,
    DomainModel,
    Guest,
    HostSpec,
    PatchWindowSim,
)
from presplit.model.fabric import Fabric

_GUEST_ARRAYS = ("guest_domain", "guest_dest", "guest_status", "guest_mig_start", "guest_mig_end",
                 "guest_down_start", "guest_down_end", "demand_mips", "demand_mem_mb")


@dataclass(frozen=True, eq=False)
class ClusterState:
    hosts: tuple[HostSpec, ...]
    domains: tuple[Domain, ...]
    guests: tuple[Guest, ...]
    fabric: Fabric
    model: DomainModel
    now: float
    host_on: np.ndarray
    host_ready_at: np.ndarray
    guest_domain: np.ndarray
    guest_dest: np.ndarray
    guest_status: np.ndarray
    guest_mig_start: np.ndarray
    guest_mig_end: np.ndarray
    guest_down_start: np.ndarray
    guest_down_end: np.ndarray
    demand_mips: np.ndarray
    demand_mem_mb: np.ndarray
    patch_windows: tuple[PatchWindowSim, ...] = ()
    demand_io: np.ndarray | None = None
    host_mig_share: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.demand_io is None:
            object.__setattr__(self, "demand_io", np.zeros((len(self.guests), 2)))
        if self.host_mig_share is None:
            object.__setattr__(self, "host_mig_share", np.full(len(self.hosts), self.model.migration_bw_share))
        for name in ("host_on", "host_ready_at", "demand_io", "host_mig_share", *_GUEST_ARRAYS):
            arr = getattr(self, name)
            if arr.flags.writeable:
                arr.flags.writeable = False

    # ------------------------------------------------------------ building
    @classmethod
    def initial(cls, hosts, guests, fabric, model, *, powered=None, patch_windows=()) -> "ClusterState":
        """Every host one active domain with the minimal services; every guest absent (not arrived)."""
        doms = tuple(Domain(h, h, spec.cpu_mips, spec.ram_mb, model.minimal_services) for h, spec in enumerate(hosts))
        n, g = len(hosts), len(guests)
        on = np.ones(n, bool) if powered is None else np.asarray(powered, bool).copy()
        neg = np.full(g, -1, np.int64)
        zeros = np.zeros(g)
        return cls(tuple(hosts), doms, tuple(guests), fabric, model, 0.0, on, np.zeros(n),
                   neg, neg.copy(), np.full(g, ABSENT, np.int8), zeros, zeros.copy(), zeros.copy(),
                   zeros.copy(), zeros.copy(), zeros.copy(), tuple(patch_windows))

    def evolve(self, **changes) -> "ClusterState":
        """A new state with ``changes``; arrays passed in must be fresh copies (they become read-only).

        Caches that depend only on what did not change are carried over, so a
        guest move on a fleet of 10,000 domains does not rebuild the domain arrays.
        """
        new = dataclasses.replace(self, **changes)
        keep = []
        if "domains" not in changes:
            keep += ["domain_arrays", "_host_domains"]
        if "hosts" not in changes:
            keep.append("host_nic_mb_s")
        if "guests" not in changes:
            keep += ["guest_mips", "guest_reserve", "_guest_ids"]
            same_count = "domains" not in changes or len(changes["domains"]) == len(self.domains)
            if "guest_domain" not in changes and "guest_dest" not in changes and same_count:
                keep.append("reserved")  # bookings depend on where guests are, not on the domains' sizes
        for name in keep:
            if name in self.__dict__:
                new.__dict__[name] = self.__dict__[name]
        return new

    def with_guest(self, guest: Guest, *, status: int = PENDING, demand_mips: float = 0.0,
                   demand_mem_mb: float | None = None, demand_io=(0.0, 0.0)) -> "ClusterState":
        """A new state with ``guest`` appended (unplaced, ``status``): every per-guest array grows by one row.

        The one way to add a guest, so no array can be forgotten (a guest array one row short
        is an IndexError at the next tick, far from its cause).
        """
        fill = {"guest_domain": -1, "guest_dest": -1, "guest_status": status, "guest_mig_start": 0.0,
                "guest_mig_end": 0.0, "guest_down_start": 0.0, "guest_down_end": 0.0,
                "demand_mips": float(demand_mips),
                "demand_mem_mb": float(guest.ram_mb if demand_mem_mb is None else demand_mem_mb)}
        assert set(fill) == set(_GUEST_ARRAYS), "with_guest must fill every guest array"
        arrays = {name: np.append(getattr(self, name), np.array([value], getattr(self, name).dtype))
                  for name, value in fill.items()}
        io = np.asarray(demand_io, np.float64).reshape(1, 2)
        arrays["demand_io"] = np.vstack([self.demand_io.reshape(-1, 2), io])
        return self.evolve(guests=(*self.guests, guest), **arrays)

    def with_domain(self, domain: Domain, *more: Domain) -> "ClusterState":
        """Replace domains by id (appending ids equal to len(domains)).

        The per-domain caches are updated for the replaced domains only, so a
        resize or re-pin on a fleet of 10,000 domains costs little.
        """
        doms = list(self.domains)
        changed = (domain, *more)
        for d in changed:
            if d.id == len(doms):
                doms.append(d)
            else:
                doms[d.id] = d
        new = self.evolve(domains=tuple(doms))
        if len(doms) != len(self.domains):
            return new  # new domains: caches are rebuilt on use
        same_shape = all(d.host == self.domains[d.id].host and d.live == self.domains[d.id].live for d in changed)
        if same_shape and "_host_domains" in self.__dict__:
            new.__dict__["_host_domains"] = self.__dict__["_host_domains"]
        if "domain_arrays" in self.__dict__:
            shape_keys = ("host", "live")
            arrays = {k: (v if same_shape and k in shape_keys else v.copy())
                      for k, v in self.__dict__["domain_arrays"].items()}
            for d in changed:
                live = d.live
                if not same_shape:
                    arrays["host"][d.id] = d.host
                    arrays["live"][d.id] = live
                arrays["cpu_mips"][d.id] = d.cpu_mips
                arrays["mem_mb"][d.id] = d.mem_mb
                arrays["overhead_mips"][d.id] = d.overhead_mips if live else 0.0
                arrays["overhead_mb"][d.id] = d.overhead_mb if live else 0.0
                arrays["cap_mips"][d.id] = d.capacity_mips if live else 0.0
                arrays["cap_mb"][d.id] = d.capacity_mb if live else 0.0
                arrays["io_mb_s"][d.id] = d.io_mb_s if live else (0.0, 0.0)
            new.__dict__["domain_arrays"] = arrays
        return new

    # ------------------------------------------------------------ queries
    @property
    def n_hosts(self) -> int:
        return len(self.hosts)

    @property
    def n_guests(self) -> int:
        return len(self.guests)

    def guest(self, i: int) -> Guest:
        """Guest ``i`` as of this state (spec plus current domain and state)."""
        return dataclasses.replace(self.guests[i], domain=int(self.guest_domain[i]),
                                   state=GUEST_STATES[int(self.guest_status[i])])

    def guest_index(self, guest_id: str) -> int:
        try:
            return self._guest_ids[guest_id]
        except KeyError:
            raise KeyError(f"no guest {guest_id!r}") from None

    def domains_of(self, host: int) -> list[Domain]:
        """Live (not merged) domains of a host."""
        return [self.domains[d] for d in self._host_domains[host]]

    def guests_in(self, domain: int, *, incoming: bool = False) -> np.ndarray:
        """Guests placed in a domain (migrating-out ones included); with ``incoming`` those migrating in."""
        arr = self.guest_dest if incoming else self.guest_domain
        return np.flatnonzero(arr == domain)

    def host_ready(self, host: int) -> bool:
        return bool(self.host_on[host]) and self.host_ready_at[host] <= self.now

    def patch_due(self, lookahead_s: float = 0.0) -> list[PatchWindowSim]:
        """Windows open now or starting within ``lookahead_s`` (not yet ended)."""
        return [w for w in self.patch_windows if w.end > self.now and w.start <= self.now + lookahead_s]

    # ------------------------------------------------------------ arrays (cached per state)
    @cached_property
    def _guest_ids(self) -> dict[str, int]:
        return {g.id: i for i, g in enumerate(self.guests)}

    @cached_property
    def _host_domains(self) -> list[list[int]]:
        out: list[list[int]] = [[] for _ in self.hosts]
        for d in self.domains:
            if d.live:
                out[d.host].append(d.id)
        return out

    @cached_property
    def host_nic_mb_s(self) -> np.ndarray:
        """Each host's NIC bandwidth in MB/s."""
        return np.array([h.nic_gbit * 125.0 for h in self.hosts])

    @cached_property
    def guest_mips(self) -> np.ndarray:
        return np.array([g.mips for g in self.guests], dtype=np.float64)

    @cached_property
    def guest_reserve(self) -> np.ndarray:
        """[guests, 2]: reserved MIPS and MB."""
        return np.array([(g.reserve_mips, g.ram_mb) for g in self.guests], dtype=np.float64).reshape(-1, 2)

    @cached_property
    def domain_arrays(self) -> dict[str, np.ndarray]:
        """host, allotment, overhead, capacity and IO capacity ([domains, 2] MB/s) per domain id (merged: zeros)."""
        d = self.domains
        host = np.array([x.host for x in d], np.int64)
        live = np.array([x.live for x in d], bool)
        return {
            "host": host, "live": live,
            "cpu_mips": np.array([x.cpu_mips for x in d]), "mem_mb": np.array([x.mem_mb for x in d]),
            "overhead_mips": np.array([x.overhead_mips if x.live else 0.0 for x in d]),
            "overhead_mb": np.array([x.overhead_mb if x.live else 0.0 for x in d]),
            "cap_mips": np.array([x.capacity_mips if x.live else 0.0 for x in d]),
            "cap_mb": np.array([x.capacity_mb if x.live else 0.0 for x in d]),
            "io_mb_s": np.array([x.io_mb_s if x.live else (0.0, 0.0) for x in d], dtype=np.float64).reshape(-1, 2),
        }

    @cached_property
    def reserved(self) -> np.ndarray:
        """[domains, 2] MIPS and MB booked by placed guests plus migrations coming in."""
        n = len(self.domains)
        out = np.zeros((n, 2))
        for arr in (self.guest_domain, self.guest_dest):
            placed = arr >= 0
            if placed.any():
                for k in range(2):
                    out[:, k] += np.bincount(arr[placed], self.guest_reserve[placed, k], minlength=n)
        return out

    def free(self, domain: int) -> tuple[float, float]:
        """Unreserved MIPS and MB of a domain."""
        a = self.domain_arrays
        return (float(a["cap_mips"][domain] - self.reserved[domain, 0]),
                float(a["cap_mb"][domain] - self.reserved[domain, 1]))

    def pending_guests(self) -> np.ndarray:
        return np.flatnonzero(self.guest_status == PENDING)

    def migrating_guests(self) -> np.ndarray:
        return np.flatnonzero(self.guest_status == MIGRATING)
