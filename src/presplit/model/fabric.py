"""The interconnect fabric: a graph of links with bandwidth and latency, and path queries.

Nodes are host indices (ints) and named switches (strings). The default
topology (:meth:`Fabric.rack_spine`) is a full mesh of host-to-host links
inside each rack (NIC speed) plus one uplink per rack to a spine, whose
bandwidth is the rack's total NIC bandwidth divided by the oversubscription
ratio -- the usual leaf/spine description. Any other graph can be given as an
explicit link list.

``path(a, b)`` returns the fewest-hop route's bottleneck bandwidth and summed
latency (ties broken by the wider bottleneck). Two domains of the same host are
joined by the host itself: infinite bandwidth, zero latency (re-pinning moves no
bytes). Concurrent flows do not share links in this model; the migration share
of a path (``DomainModel.migration_bw_share``) stands in for the rest of the
traffic. Paths are cached per fabric (the fabric itself never changes).
"""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Hashable


@dataclass(frozen=True)
class Link:
    a: Hashable
    b: Hashable
    gbit: float
    latency_ms: float


@dataclass(frozen=True)
class Path:
    gbit: float
    latency_ms: float
    hops: int

    @property
    def mb_per_s(self) -> float:
        """Bottleneck bandwidth in megabytes per second."""
        return self.gbit * 1000.0 / 8.0


LOCAL = Path(float("inf"), 0.0, 0)


@dataclass(frozen=True)
class Fabric:
    links: tuple[Link, ...]
    _adj: dict = field(default=None, repr=False, compare=False)
    _cache: dict = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        adj: dict = defaultdict(list)
        for link in self.links:
            if link.gbit <= 0 or link.latency_ms < 0:
                raise ValueError(f"link {link.a}-{link.b}: needs gbit > 0 and latency_ms >= 0")
            adj[link.a].append((link.b, link))
            adj[link.b].append((link.a, link))
        object.__setattr__(self, "_adj", dict(adj))
        object.__setattr__(self, "_cache", {})

    @classmethod
    def rack_spine(cls, racks: list[str], nic_gbit: list[float], *, oversubscription: float = 3.0,
                   host_latency_ms: float = 0.05, spine_latency_ms: float = 0.2,
                   intra_rack: str = "mesh") -> "Fabric":
        """Full mesh (or a top-of-rack switch, ``intra_rack='tor'``) inside racks; racks joined by a spine."""
        if intra_rack not in ("mesh", "tor"):
            raise ValueError(f"intra_rack must be 'mesh' or 'tor', got {intra_rack!r}")
        by_rack: dict[str, list[int]] = defaultdict(list)
        for h, r in enumerate(racks):
            by_rack[r].append(h)
        links: list[Link] = []
        for rack, hosts in by_rack.items():
            tor = f"tor:{rack}"
            for i, h in enumerate(hosts):
                links.append(Link(h, tor, nic_gbit[h], host_latency_ms / 2))
                if intra_rack == "mesh":
                    for k in hosts[i + 1:]:
                        links.append(Link(h, k, min(nic_gbit[h], nic_gbit[k]), host_latency_ms))
            if len(by_rack) > 1:
                uplink = sum(nic_gbit[h] for h in hosts) / oversubscription
                links.append(Link(tor, "spine", uplink, spine_latency_ms / 2))
        return cls(tuple(links))

    def path(self, a: int, b: int) -> Path:
        """Bottleneck bandwidth and latency between hosts ``a`` and ``b`` (LOCAL when a == b)."""
        if a == b:
            return LOCAL
        key = (a, b) if str(a) <= str(b) else (b, a)
        hit = self._cache.get(key)
        if hit is None:
            hit = self._search(*key)
            self._cache[key] = hit
        return hit

    def _search(self, a: Hashable, b: Hashable) -> Path:
        # Breadth-first by hops; among equal hop counts keep the widest bottleneck.
        best: dict = {a: (0, float("inf"), 0.0)}
        queue = deque([a])
        while queue:
            node = queue.popleft()
            hops, gbit, lat = best[node]
            for nxt, link in self._adj.get(node, ()):
                cand = (hops + 1, min(gbit, link.gbit), lat + link.latency_ms)
                old = best.get(nxt)
                if old is None:
                    best[nxt] = cand
                    queue.append(nxt)
                elif old[0] == cand[0] and cand[1] > old[1]:
                    best[nxt] = cand
        if b not in best:
            raise ValueError(f"no fabric path between host {a} and host {b}")
        hops, gbit, lat = best[b]
        return Path(gbit, lat, hops)
