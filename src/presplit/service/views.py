"""What the read endpoints serve, built once per tick from the observed state and the forecasts.

The control loop's thread builds a :class:`Snapshot` after every tick and
every operator change: pydantic models of hosts, domains, guests, the fabric
and the windows, and their JSON encodings for the list endpoints, so a read
request costs a dictionary lookup and a socket write, not a model walk. A
:class:`History` keeps the last ticks' loads and forecasts per host, domain
and guest for the charts.
"""

from __future__ import annotations

import json
import math
import threading
from collections import deque
from dataclasses import dataclass, field

import numpy as np
from pydantic import TypeAdapter

from presplit.model.domains import GUEST_STATES, MIGRATING
from presplit.forecast.outlook import quantile_last_axis, upper
from presplit.service import schemas as S

_HOSTS = TypeAdapter(list[S.Host])
_DOMAINS = TypeAdapter(list[S.Domain])
_GUESTS = TypeAdapter(list[S.Guest])
_WINDOWS = TypeAdapter(list[S.Window])


def finite(x) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def num(x) -> float:
    x = float(x)
    return x if math.isfinite(x) else 0.0


# ------------------------------------------------------------------ forecasts
@dataclass
class ForecastView:
    """What the API and dashboard show of the forecasts: next-tick demand quantiles (MIPS), rows p05, p50,
    p95 per guest, live domain id and host. (The forecasts a policy decides on are
    :class:`presplit.policies.api.DomainForecasts`.)"""

    guest: np.ndarray   # [3, G]
    domain: np.ndarray  # [3, D]
    host: np.ndarray    # [3, H]


def forecasts_of(state, feed) -> ForecastView:
    G, D, H = state.n_guests, len(state.domains), state.n_hosts
    if feed is None or feed.samples == 0 or G == 0:
        return ForecastView(np.zeros((3, G)), np.zeros((3, D)), np.zeros((3, H)))
    series = feed.recent()[:G]  # [G, s] newest first
    if series.shape[0] < G:  # guests launched since the last tick have no history yet
        series = np.vstack([series, np.zeros((G - series.shape[0], series.shape[1]))])
    params = feed.params

    def quantiles(x: np.ndarray) -> np.ndarray:
        w = x[:, :min(params.window, x.shape[1])]
        return np.stack([quantile_last_axis(w, 0.05), quantile_last_axis(w, 0.5), upper(x, params)])

    placed = state.guest_domain >= 0
    dom_idx = state.guest_domain[placed]
    dsum = np.zeros((D, series.shape[1]))
    np.add.at(dsum, dom_idx, series[placed])
    hsum = np.zeros((H, series.shape[1]))
    np.add.at(hsum, state.domain_arrays["host"][dom_idx], series[placed])
    return ForecastView(quantiles(series), quantiles(dsum), quantiles(hsum))


def _q(row: np.ndarray, i: int, scale: float = 1.0) -> S.Quantiles:
    s = scale if scale > 0 else 1.0
    return S.Quantiles(p05=num(row[0, i] / s), p50=num(row[1, i] / s), p95=num(row[2, i] / s))


# ------------------------------------------------------------------ the fabric
def _route(fabric, a, b, cache: dict) -> list:
    """Fewest-hop list of links between nodes a and b (BFS over the fabric's links)."""
    key = (a, b)
    if key in cache:
        return cache[key]
    adj: dict = {}
    for link in fabric.links:
        adj.setdefault(link.a, []).append((link.b, link))
        adj.setdefault(link.b, []).append((link.a, link))
    prev = {a: None}
    todo = deque([a])
    while todo:
        n = todo.popleft()
        if n == b:
            break
        for m, link in adj.get(n, ()):
            if m not in prev:
                prev[m] = (n, link)
                todo.append(m)
    path = []
    n = b
    while prev.get(n) is not None:
        n, link = prev[n]
        path.append(link)
    cache[key] = path
    return path


def fabric_view(state, route_cache: dict) -> S.Fabric:
    nodes, seen = [], set()
    racks = {h: spec.rack for h, spec in enumerate(state.hosts)}
    for h in range(state.n_hosts):
        nodes.append(S.Node(id=str(h), kind="host", host=h, rack=racks[h]))
        seen.add(h)
    for link in state.fabric.links:
        for n in (link.a, link.b):
            if n not in seen:
                seen.add(n)
                rack = str(n).split(":", 1)[1] if str(n).startswith("tor:") else None
                nodes.append(S.Node(id=str(n), kind="switch", host=None, rack=rack))
    flows: dict[int, int] = {}
    host_of = state.domain_arrays["host"]
    for g in np.flatnonzero(state.guest_status == MIGRATING):
        src, dst = int(host_of[state.guest_domain[g]]), int(host_of[state.guest_dest[g]])
        if src != dst:
            for link in _route(state.fabric, src, dst, route_cache):
                flows[id(link)] = flows.get(id(link), 0) + 1
    links = [S.Link(a=str(x.a), b=str(x.b), gbit=num(x.gbit), latency_ms=num(x.latency_ms),
                    migrations=flows.get(id(x), 0)) for x in state.fabric.links]
    return S.Fabric(nodes=nodes, links=links)


# ------------------------------------------------------------------ the snapshot
def window_view(state, w) -> S.Window:
    st = "past" if w.end <= state.now else "open" if w.start <= state.now else "upcoming"
    return S.Window(host=int(w.host), host_name=state.hosts[int(w.host)].name, start=num(w.start), end=num(w.end),
                    patch_duration_s=num(w.duration_s), rule=str(w.rule), state=st)


@dataclass
class Snapshot:
    seq: int
    status: S.Status
    hosts: list[S.Host] = field(default_factory=list)
    domains: list[S.Domain] = field(default_factory=list)       # live domains
    all_domains: dict[int, S.Domain] = field(default_factory=dict)
    guests: list[S.Guest] = field(default_factory=list)
    guest_ids: dict[str, int] = field(default_factory=dict)
    fabric: S.Fabric = field(default_factory=lambda: S.Fabric(nodes=[], links=[]))
    windows: list[S.Window] = field(default_factory=list)
    encoded: dict[str, bytes] = field(default_factory=dict)
    _items: dict = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def encode(self) -> "Snapshot":
        hosts, domains, guests = (_HOSTS.dump_json(self.hosts), _DOMAINS.dump_json(self.domains),
                                  _GUESTS.dump_json(self.guests))
        status = self.status.model_dump_json().encode()
        self.encoded = {
            "status": status, "hosts": hosts, "domains": domains, "guests": guests,
            "fabric": self.fabric.model_dump_json().encode(), "windows": _WINDOWS.dump_json(self.windows),
            "fleet": b'{"status":' + status + b',"hosts":' + hosts + b',"domains":' + domains
                     + b',"guests":' + guests + b"}",
        }
        return self

    def item(self, key, build) -> bytes:
        """A per-object encoding, built on first use and kept for this snapshot."""
        hit = self._items.get(key)
        if hit is None:
            hit = build()
            with self._lock:
                self._items[key] = hit
        return hit


def build_snapshot(seq: int, state, fc: ForecastView, status: S.Status, route_cache: dict) -> Snapshot:
    a = state.domain_arrays
    D = len(state.domains)
    host_of_dom = a["host"]
    placed = state.guest_domain >= 0
    dom_demand = np.bincount(state.guest_domain[placed], state.demand_mips[placed], minlength=D)
    reserved = state.reserved
    guest_ids = [g.id for g in state.guests]
    members: list[list[str]] = [[] for _ in range(D)]
    for i in np.flatnonzero(placed):
        members[int(state.guest_domain[i])].append(guest_ids[i])
    domains, all_domains = [], {}
    for d in state.domains:
        cap = float(a["cap_mips"][d.id])
        free_mips, free_mb = (state.free(d.id) if d.live else (0.0, 0.0))
        view = S.Domain(
            id=d.id, host=d.host, state=d.state, cpu_mips=num(d.cpu_mips), mem_mb=num(d.mem_mb),
            capacity_mips=num(d.capacity_mips if d.live else 0.0), capacity_mb=num(d.capacity_mb if d.live else 0.0),
            free_mips=num(free_mips), free_mb=num(free_mb), services=[s.name for s in d.services],
            io_mb_s=[num(x) for x in d.io_mb_s], ready_at=num(d.ready_at), patch_started=finite(d.patch_started), patch_until=finite(d.patch_until),
            demand_mips=num(dom_demand[d.id]), utilisation=num(dom_demand[d.id] / cap) if cap > 0 else 0.0,
            forecast_mips=_q(fc.domain, d.id), forecast_utilisation=_q(fc.domain, d.id, cap),
            guests=members[d.id])
        all_domains[d.id] = view
        if d.live:
            domains.append(view)
    host_demand = np.bincount(host_of_dom[state.guest_domain[placed]], state.demand_mips[placed],
                              minlength=state.n_hosts)
    host_guests = np.bincount(host_of_dom[state.guest_domain[placed]], minlength=state.n_hosts)
    mem_res = np.bincount(host_of_dom, reserved[:, 1], minlength=state.n_hosts) if D else np.zeros(state.n_hosts)
    windows_by_host: dict[int, S.Window] = {}
    windows = []
    for w in state.patch_windows:
        view = window_view(state, w)
        windows.append(view)
        if view.state != "past" and int(w.host) not in windows_by_host:
            windows_by_host[int(w.host)] = view
    hosts = []
    for h, spec in enumerate(state.hosts):
        cpu = float(spec.cpu_mips)
        hosts.append(S.Host(
            id=h, name=spec.name, rack=spec.rack, on=bool(state.host_on[h]), ready=state.host_ready(h),
            cpu_mips=num(cpu), mem_mb=num(spec.ram_mb), demand_mips=num(host_demand[h]),
            utilisation=num(host_demand[h] / cpu) if cpu > 0 else 0.0, mem_reserved_mb=num(mem_res[h]),
            forecast_mips=_q(fc.host, h), forecast_utilisation=_q(fc.host, h, cpu),
            domains=[d.id for d in state.domains_of(h)], guests=int(host_guests[h]),
            migration_share=num(state.host_mig_share[h]), window=windows_by_host.get(h)))
    mips = state.guest_mips
    guests = []
    for i, g in enumerate(state.guests):
        dom = int(state.guest_domain[i])
        dest = int(state.guest_dest[i])
        guests.append(S.Guest(
            id=g.id, index=i, status=GUEST_STATES[int(state.guest_status[i])], domain=dom if dom >= 0 else None,
            host=int(host_of_dom[dom]) if dom >= 0 else None, dest_domain=dest if dest >= 0 else None,
            vcpus=int(g.vcpus), mips=num(mips[i]), reserve_mips=num(g.reserve_mips), ram_mb=num(g.ram_mb),
            demand_mips=num(state.demand_mips[i]),
            utilisation=num(state.demand_mips[i] / mips[i]) if mips[i] > 0 else 0.0,
            forecast_mips=_q(fc.guest, i)))
    snap = Snapshot(seq, status, hosts, domains, all_domains, guests, {g: i for i, g in enumerate(guest_ids)},
                    fabric_view(state, route_cache), windows)
    return snap.encode()


# ------------------------------------------------------------------ history for the charts
@dataclass
class Frame:
    t: float
    guest: np.ndarray       # [2 + 3, G]: load, capacity, p05, p50, p95
    host: np.ndarray        # [5, H]
    domain: dict            # id -> (load, capacity, p05, p50, p95)


class History:
    def __init__(self, maxlen: int = 288) -> None:
        self.frames: deque[Frame] = deque(maxlen=maxlen)
        self.lock = threading.Lock()

    def record(self, t: float, snap: Snapshot) -> None:
        g = np.array([[x.demand_mips, x.mips, x.forecast_mips.p05, x.forecast_mips.p50, x.forecast_mips.p95]
                      for x in snap.guests], dtype=np.float64).reshape(-1, 5).T
        h = np.array([[x.demand_mips, x.cpu_mips, x.forecast_mips.p05, x.forecast_mips.p50, x.forecast_mips.p95]
                      for x in snap.hosts], dtype=np.float64).reshape(-1, 5).T
        d = {x.id: (x.demand_mips, x.capacity_mips, x.forecast_mips.p05, x.forecast_mips.p50, x.forecast_mips.p95)
             for x in snap.domains}
        with self.lock:
            if self.frames and self.frames[-1].t == t:
                self.frames.pop()
            self.frames.append(Frame(t, g, h, d))

    def last_two(self) -> tuple[Frame | None, Frame | None]:
        with self.lock:
            n = len(self.frames)
            return (self.frames[-2] if n > 1 else None), (self.frames[-1] if n else None)

    def series(self, kind: str, key, interval_s: float) -> S.Series:
        with self.lock:
            frames = list(self.frames)

        def row(f: Frame):
            if kind == "domain":
                return f.domain.get(key)
            arr = f.guest if kind == "guest" else f.host
            return tuple(arr[:, key]) if key < arr.shape[1] else None

        points, prev = [], None
        for f in frames:
            r = row(f)
            if r is not None:
                fc = S.Quantiles(p05=num(prev[2]), p50=num(prev[3]), p95=num(prev[4])) if prev is not None else None
                points.append(S.SeriesPoint(t=num(f.t), load=num(r[0]), capacity=num(r[1]), forecast=fc))
            prev = r
        nxt = S.Quantiles(p05=num(prev[2]), p50=num(prev[3]), p95=num(prev[4])) if prev is not None else None
        next_t = num(frames[-1].t + interval_s) if frames and prev is not None else None
        return S.Series(kind=kind, id=str(key), points=points, next=nxt, next_t=next_t)


# ------------------------------------------------------------------ fleet aggregates per tick
DEMO_START_EPOCH_S = 1299110400.0  # 2011-03-03T00:00:00Z, the demo fleet's start (presplit.service.demo)
MOVE_KINDS = {"MigrateGuest": "live", "MoveGuest": "repin"}


def fleet_point(state, moves: dict[str, int] | None = None) -> S.FleetPoint:
    """The fleet's CPU, memory, hosts on, power and unserved demand in ``state``; ``moves``: the live migrations
    and re-pins since the tick before ({"live": n, "repin": m})."""
    from presplit.model.domains import ABSENT, DOWN, PENDING, RUNNING
    from presplit.model.hardware import power_at

    moves = moves or {}
    a = state.domain_arrays
    H, D = state.n_hosts, len(state.domains)
    on = np.asarray(state.host_on, bool)
    host_mips = np.array([h.cpu_mips for h in state.hosts], dtype=np.float64)
    host_mb = np.array([h.ram_mb for h in state.hosts], dtype=np.float64)
    status = state.guest_status
    req = np.where(status != ABSENT, state.demand_mips, 0.0)
    placed = state.guest_domain >= 0
    dom = np.where(placed, state.guest_domain, 0)
    dom_demand = np.bincount(dom[placed], req[placed], minlength=D) if D else np.zeros(0)
    cap = np.maximum(a["cap_mips"], 0.0) if D else np.zeros(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(dom_demand > cap, cap / np.where(dom_demand > 0, dom_demand, 1.0), 1.0)
    served = float((req * np.where(placed & (status != DOWN), scale[dom] if D else 0.0, 0.0)).sum())
    total = float(req.sum())
    if D:
        load = np.bincount(a["host"], np.minimum(dom_demand, cap) + a["overhead_mips"], minlength=H)
        booked = float(np.asarray(state.reserved)[:, 1].sum())
    else:
        load, booked = np.zeros(H), 0.0
    tables = np.array([h.power.watts for h in state.hosts], dtype=np.float64).reshape(H, 11)
    off_w = np.array([getattr(h, "off_power_w", 0.0) for h in state.hosts], dtype=np.float64)
    booting = np.asarray(state.host_ready_at, dtype=np.float64) > float(state.now)
    with np.errstate(divide="ignore", invalid="ignore"):
        util = np.where(host_mips > 0, load / np.where(host_mips > 0, host_mips, 1.0), 0.0)
    watts = np.where(on, np.where(booting, tables[:, 0], power_at(tables, util)), off_w) if H else np.zeros(0)
    cap_on, mb_on = float(host_mips[on].sum()), float(host_mb[on].sum())
    return S.FleetPoint(
        t=num(state.now), hosts=int(H), hosts_on=int(on.sum()), capacity_mips=num(cap_on), demand_mips=num(total),
        cpu_utilisation=num(float(req[placed].sum()) / cap_on) if cap_on > 0 else 0.0, mem_mb=num(mb_on),
        mem_reserved_mb=num(booked), mem_utilisation=num(booked / mb_on) if mb_on > 0 else 0.0,
        power_w=num(watts.sum()), unserved_share=num(1.0 - served / total) if total > 0 else 0.0,
        live_migrations=int(moves.get("live", 0)), repins=int(moves.get("repin", 0)),
        migrating=int(np.sum(status == MIGRATING)), guests_running=int(np.sum(status == RUNNING)),
        guests_pending=int(np.sum(status == PENDING)))


class FleetHistory:
    """Fleet aggregates per tick (:func:`fleet_point`); the live migrations and re-pins of a point are the
    difference of the runner's running totals since the point before."""

    def __init__(self, maxlen: int = 2016) -> None:
        self.points: deque[tuple[S.FleetPoint, dict]] = deque(maxlen=maxlen)
        self.lock = threading.Lock()

    def record(self, state, totals: dict[str, int]) -> S.FleetPoint:
        t = float(state.now)
        with self.lock:
            if self.points and self.points[-1][0].t == t:
                self.points.pop()
            before = self.points[-1][1] if self.points else None
        since = {k: max(0, v - (before or {}).get(k, 0)) for k, v in totals.items()}
        point = fleet_point(state, since)
        with self.lock:
            self.points.append((point, dict(totals)))
        return point

    def recent(self, limit: int | None = None) -> list[S.FleetPoint]:
        with self.lock:
            items = [p for p, _ in self.points]
        return items[-limit:] if limit else items


def dumps(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()
