"""Energy and SLA accounting of the domain engine, with CloudSim's metric definitions.

Each step of ``dt`` seconds is accounted from the state after the step's
actions (demand is the trace's 5-minute sample, constant over the step):

- a domain serves its guests' demand up to its capacity (allotment minus its
  services' overhead); above that every guest in it is scaled down by the
  same factor (over-subscription: SLATAH counts the host's time);
- a guest is served nothing while it is down (the stop-and-copy pause of a
  migration, or its domain being patched), and 90 % of its demand while it
  pre-copies (the 10 % CloudSim withholds, counted by PDM); the time overlaps
  are exact within the step;
- a host's load = served demand + domain services' overhead + 10 % of the
  demand of guests migrating in (the destination reservation); it draws
  P(load) from its SPECpower table while up, idle power while booting and
  ``off_power_w`` while off; energy is the trapezoid between consecutive
  steps (the last step is held for its own length).

When the scenario's services carry IO (``DomainModel.io_modelled``), a
domain's running guests' disk and network IO beyond what its services carry
is not served, and so is guest network traffic beyond what the host's NIC
leaves while it carries a live migration (the host's migration share):
``io_shortfall`` = IO unserved / IO requested (MB, both resources),
``io_slatah`` = time hosts are active short of IO / time hosts are active.

Definitions as in :mod:`presplit.sim.metrics` (ratio of sums): SLATAH = time
hosts are active with a domain short of demand / time hosts are active; PDM =
MIPS withheld from migrating guests / MIPS requested; overall SLA violation =
all MIPS withheld (scaling, migration, downtime, guests not yet placed) /
MIPS requested. All work is array work over guests, domains and hosts.
"""

from __future__ import annotations

import numpy as np

from presplit.model.cluster import ClusterState
from presplit.model.domains import ABSENT, MIGRATING
from presplit.model.hardware import power_at


def overlap(start: np.ndarray, end: np.ndarray, t0: float, t1: float) -> np.ndarray:
    """Seconds of [start, end) inside [t0, t1), elementwise."""
    return np.clip(np.minimum(end, t1) - np.maximum(start, t0), 0.0, None)


class DomainMetrics:
    def __init__(self, state: ClusterState) -> None:
        self.tables = np.array([h.power.watts for h in state.hosts], dtype=np.float64)
        self.idle = self.tables[:, 0]
        self.off_w = np.array([h.off_power_w for h in state.hosts])
        self.host_ram = np.array([h.ram_mb for h in state.hosts])
        self.max_ram_ratio = 0.0
        self.host_mips = np.array([h.cpu_mips for h in state.hosts])
        self.best_w_per_mips = min(h.power.max_w / h.cpu_mips for h in state.hosts)
        self.prev_watts: np.ndarray | None = None
        self.joules = self.fluid_j = 0.0
        self.active_s = self.violation_s = 0.0
        self.requested = self.allocated = self.migration_shortfall = 0.0
        self.downtime_s = 0.0
        self.migration_pause_s = 0.0
        self.last_dt = 0.0
        self.active_hosts: list[int] = []
        self.io_modelled = state.model.io_modelled
        self.io_requested = self.io_unserved = self.io_violation_s = 0.0

    def step(self, state: ClusterState, dt: float, t0: float | None = None) -> None:
        """Account the step [t0, t0 + dt) (``t0``: the state's time; failures may have moved it inside the step)."""
        t0 = state.now if t0 is None else t0
        t1 = t0 + dt
        n_dom, n_host = len(state.domains), state.n_hosts
        arrays = state.domain_arrays
        # Guests' booked memory (migrating in: on both hosts) over each host's RAM, at its highest.
        booked = np.bincount(arrays["host"], state.reserved[:, 1], minlength=n_host)
        self.max_ram_ratio = max(self.max_ram_ratio, float((booked / self.host_ram).max()))
        req = np.where(state.guest_status != ABSENT, state.demand_mips, 0.0)
        dom = state.guest_domain
        placed = dom >= 0
        d_idx = np.where(placed, dom, 0)
        dom_demand = np.bincount(d_idx[placed], req[placed], minlength=n_dom)
        cap = arrays["cap_mips"]
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(dom_demand > cap, np.maximum(cap, 0.0) / dom_demand, 1.0)
        down = overlap(state.guest_down_start, state.guest_down_end, t0, t1) * placed
        mig = overlap(state.guest_mig_start, state.guest_mig_end, t0, t1) * placed
        mig = np.minimum(mig, dt - down)  # the pause is part of the migration interval
        m = state.model
        degrade = m.source_degradation * mig / dt
        served_share = np.where(placed, scale[d_idx], 0.0) * (1.0 - down / dt - degrade)
        alloc = req * np.clip(served_share, 0.0, 1.0)
        self.requested += float(req.sum()) * dt
        self.allocated += float(alloc.sum()) * dt
        self.migration_shortfall += float((req * degrade).sum()) * dt
        self.downtime_s += float(down.sum())
        # A live migration's stop-and-copy pause ends with the migration; any other downtime
        # (a domain patched with the guest inside) is an outage.
        pause = state.guest_down_end == state.guest_mig_end
        self.migration_pause_s += float(down[pause].sum())
        self.fluid_j += float(req.sum()) * self.best_w_per_mips * dt

        # Host load: served demand (the source counts a migrating guest in full, as CloudSim does for
        # energy), services' overhead, and the destination's reservation while a guest copies in.
        host_of_dom = arrays["host"]
        served_dom = np.minimum(dom_demand, np.maximum(cap, 0.0)) + arrays["overhead_mips"]
        load = np.bincount(host_of_dom, served_dom, minlength=n_host)
        incoming = (state.guest_dest >= 0) & (state.guest_status == MIGRATING)
        if incoming.any():
            dst_host = host_of_dom[state.guest_dest[incoming]]
            share = m.destination_reservation * req[incoming] * mig[incoming] / dt
            load += np.bincount(dst_host, share, minlength=n_host)
        on = state.host_on
        booting = np.clip((state.host_ready_at - t0) / dt, 0.0, 1.0) * on
        watts = np.where(on, booting * self.idle + (1 - booting) * power_at(self.tables, load / self.host_mips),
                         self.off_w)
        if self.prev_watts is not None:
            self.joules += float((self.prev_watts + watts).sum()) / 2.0 * self.last_dt
        self.prev_watts, self.last_dt = watts, dt

        host_has_guests = np.bincount(host_of_dom[d_idx[placed]], minlength=n_host) > 0
        active = on & host_has_guests
        short = np.bincount(host_of_dom, (dom_demand > cap + 1e-9) & arrays["live"], minlength=n_host) > 0
        self.active_s += dt * int(active.sum())
        self.violation_s += dt * int((active & short).sum())
        self.active_hosts.append(int(on.sum()))
        if self.io_modelled:
            self._io(state, dt, placed & (state.guest_status != ABSENT), d_idx, active, mig / dt)

    def _io(self, state: ClusterState, dt: float, placed: np.ndarray, d_idx: np.ndarray, active: np.ndarray,
            migrating: np.ndarray) -> None:
        """IO a domain's services cannot carry goes unserved (both resources, MB over the step).

        Network IO must also pass the host's NIC: while a host sends or receives
        a live migration (``migrating``: each guest's share of the step in
        pre-copy), the migration takes its share of the NIC and guest traffic
        beyond the rest goes unserved too.
        """
        n_dom, n_host, arrays = len(state.domains), state.n_hosts, state.domain_arrays
        io = state.demand_io
        demand = np.stack([np.bincount(d_idx[placed], io[placed, k], minlength=n_dom) for k in range(2)], axis=1)
        unserved = np.clip(demand - arrays["io_mb_s"], 0.0, None) * arrays["live"][:, None]
        host_of = arrays["host"]
        served_net = np.bincount(host_of, demand[:, 1] - unserved[:, 1], minlength=n_host)
        busy = np.zeros(n_host)
        moving = np.flatnonzero(migrating > 0)
        if len(moving):
            for ends in (state.guest_domain[moving], state.guest_dest[moving]):
                ok = ends >= 0
                np.maximum.at(busy, host_of[ends[ok]], migrating[moving][ok])
        # For the part of the step a migration runs the NIC leaves guests (1 - share); the rest, all of it.
        busy = np.clip(busy, 0.0, 1.0)
        nic_short = (busy * np.clip(served_net - state.host_nic_mb_s * (1.0 - state.host_mig_share), 0.0, None)
                     + (1.0 - busy) * np.clip(served_net - state.host_nic_mb_s, 0.0, None))
        self.io_requested += float(demand.sum()) * dt
        self.io_unserved += (float(unserved.sum()) + float(nic_short.sum())) * dt
        short = np.bincount(host_of, (unserved > 1e-9).any(axis=1), minlength=n_host) > 0
        self.io_violation_s += dt * int((active & (short | (nic_short > 1e-9))).sum())

    def finish(self) -> dict[str, float]:
        joules = self.joules + (float(self.prev_watts.sum()) * self.last_dt if self.prev_watts is not None else 0.0)
        energy = joules / 3.6e6
        slatah = self.violation_s / self.active_s if self.active_s else 0.0
        pdm = self.migration_shortfall / self.requested if self.requested else 0.0
        slav = slatah * pdm
        bound = self.fluid_j / 3.6e6
        served = self.allocated * self.best_w_per_mips / 3.6e6  # the bound over demand actually served
        return {
            "energy_kwh": energy, "slatah": slatah, "pdm": pdm, "slav": slav, "esv": energy * slav,
            "overall_sla_violation": (self.requested - self.allocated) / self.requested if self.requested else 0.0,
            "fluid_bound_kwh": bound, "fluid_bound_cpu_kwh": bound,
            "energy_over_bound": energy / bound if bound else float("nan"),
            "max_ram_ratio": self.max_ram_ratio,
            "served_bound_kwh": served, "energy_over_served_bound": energy / served if served else float("nan"),
            "guest_downtime_s": self.downtime_s,
            "migration_pause_s": self.migration_pause_s,
            "outage_s": self.downtime_s - self.migration_pause_s,
            "io_shortfall": self.io_unserved / self.io_requested if self.io_requested else 0.0,
            "io_slatah": self.io_violation_s / self.active_s if self.active_s else 0.0,
        }
