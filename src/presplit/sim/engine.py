"""The event-driven consolidation engine: ticks, migrations, energy and SLA accounting.

It reproduces the CloudSim 3.0.3 power model (see ``docs/cloudsim-model.md``):
a policy decision every ``interval_s``; migrations that start together and end
after RAM / (BW x share); a fleet-wide update at every tick and at every
migration end, which integrates energy with the trapezoid rule over the
SPECpower table (a host idle at the previous update draws nothing), and
records the host and guest states that SLATAH, PDM and the overall SLA
violation are computed from. Everything per guest or per host is array work;
only the per-host guest lists (whose order decides CloudSim's tie-breaks) are
Python lists.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

import numpy as np

from presplit.model.hardware import Fleet
from presplit.model.allocation import allocate
from presplit.sim.metrics import MetricAccumulator

HISTORY_LENGTH = 30  # samples of guest utilisation the CloudSim detectors look back on


@dataclass
class SimResult:
    """What one run produced: the CloudSim metrics and a per-tick record."""

    metrics: dict[str, float]
    active_hosts: np.ndarray  # hosts active after each tick
    migrations_per_guest: np.ndarray
    events: list[tuple[float, int, int, int]] = field(default_factory=list)  # (time, guest, src, dst)


class Engine:
    """Runs one workload on one fleet under one policy."""

    def __init__(self, fleet: Fleet, utilisation: np.ndarray, policy, *, record_events: bool = False) -> None:
        if utilisation.ndim != 2 or utilisation.shape[0] != fleet.n_guests:
            raise ValueError(f"utilisation must be [guests={fleet.n_guests}, samples], got {utilisation.shape}")
        self.fleet = fleet
        self.model = fleet.model
        self.policy = policy
        self.record_events = record_events
        m = self.model
        # One extra sample repeats the last, as CloudSim reads one past the end while interpolating.
        self.util = np.concatenate([utilisation, utilisation[:, -1:]], axis=1).astype(np.float64)
        self.n_hosts, self.n_guests = fleet.n_hosts, fleet.n_guests
        self.g_mips = fleet.guest_attr("mips")
        self.g_ram = fleet.guest_attr("ram_mb")
        self.h_total = fleet.host_attr("pe_mips") * fleet.host_attr("pes")
        self.h_pe = fleet.host_attr("pe_mips")
        self.h_ram = fleet.host_attr("ram_mb")
        self.h_mbps = fleet.host_attr("bw_mbit") / 8.0 * m.migration_bw_share  # MB/s for migrations
        self.h_power = fleet.power_tables()
        # Placement state.
        self.lists: list[list[int]] = [[] for _ in range(self.n_hosts)]
        self.host_of = np.full(self.n_guests, -1, dtype=np.int64)
        self.alive = np.ones(self.n_guests, dtype=bool)
        self.in_migration = np.zeros(self.n_guests, dtype=bool)
        self.incoming: list[tuple[int, int]] = []  # (guest, destination) of migrations in flight
        self.ram_free = self.h_ram.copy()
        # Utilisation history, newest first, as CloudSim's PowerVm keeps it.
        self.history = np.zeros((self.n_guests, HISTORY_LENGTH))
        self.history_len = 0
        # Host state after the last update.
        self.h_util_mips = np.zeros(self.n_hosts)
        self.booting_until = np.zeros(self.n_hosts)
        self.requested = self.g_mips.copy()  # guests request their full MIPS while being created
        self.now = 0.0
        self.metrics = MetricAccumulator(self.h_power, self.n_guests, m.off_power_w)
        self.migrations = 0
        self.migrations_per_guest = np.zeros(self.n_guests, dtype=np.int64)
        # When each guest last started migrating and each host last received one:
        # what churn guards need, kept by the world so policies can stay pure.
        self.last_migration_at = np.full(self.n_guests, -np.inf)
        self.host_received_at = np.full(self.n_hosts, -np.inf)
        self.events: list[tuple[float, int, int, int]] = []
        self._pending: list[tuple[float, int, int, int]] = []  # heap of (end, seq, guest, dst)
        self._seq = 0

    # ----------------------------------------------------------------- time
    def utilisation_at(self, t: float) -> np.ndarray:
        """Every guest's CPU utilisation at time t, linear between samples."""
        step = self.model.interval_s
        k = int(np.floor(t / step))
        frac = (t - k * step) / step
        if frac == 0.0:
            return self.util[:, k]
        return self.util[:, k] + (self.util[:, k + 1] - self.util[:, k]) * frac

    def run(self) -> SimResult:
        m = self.model
        self.policy.place_initial(self)
        tick_times = []
        t = m.first_tick_s
        while True:
            t = t + m.interval_s
            if t > m.horizon_s:
                break
            tick_times.append(t)
        active = np.zeros(len(tick_times), dtype=np.int64)
        for i, t in enumerate(tick_times):
            self._finish_migrations_until(t)
            self._update(t, tick=True)
            moves = self.policy.optimise(self) if self.policy.migrates else []
            for guest, dst in moves:
                self._start_migration(guest, dst, t)
            if moves:
                self._update(t)
            active[i] = int((self.h_util_mips > 0).sum())
        self._finish_migrations_until(m.horizon_s)
        metrics = self.metrics.finish(self.migrations)
        if getattr(self.policy, "non_power_aware", False):
            metrics["energy_kwh"] = float(self.h_power[:, -1].sum() * len(tick_times) * m.interval_s / 3.6e6)
        return SimResult(metrics, active, self.migrations_per_guest, self.events)

    # ----------------------------------------------------------- placement
    def create(self, guest: int, host: int) -> None:
        """Place a new guest (initial placement)."""
        self.lists[host].append(guest)
        self.host_of[guest] = host
        self.ram_free[host] -= self.g_ram[guest]

    def _start_migration(self, guest: int, dst: int, t: float) -> None:
        m = self.model
        self.in_migration[guest] = True
        self.incoming.append((guest, dst))
        self.lists[dst].append(guest)
        duration = self.g_ram[guest] / self.h_mbps[dst]
        if m.boot_delay_s > 0 and self.h_util_mips[dst] == 0 and self.booting_until[dst] <= t:
            # A switched-off destination boots first, at idle power, before the copy starts.
            self.booting_until[dst] = t + m.boot_delay_s
            self.metrics.add_boot(dst, m.boot_delay_s)
        if self.booting_until[dst] > t:
            duration += self.booting_until[dst] - t
        self.migrations += 1
        self.migrations_per_guest[guest] += 1
        self.last_migration_at[guest] = t
        self.host_received_at[dst] = t
        if self.record_events:
            self.events.append((t, guest, int(self.host_of[guest]), dst))
        heapq.heappush(self._pending, (t + duration, self._seq, guest, dst))
        self._seq += 1

    def _finish_migrations_until(self, t: float) -> None:
        while self._pending and self._pending[0][0] < t:
            end = self._pending[0][0]
            self._update(end)
            while self._pending and self._pending[0][0] == end:
                _, _, guest, dst = heapq.heappop(self._pending)
                src = self.host_of[guest]
                if src >= 0:
                    self.lists[src].remove(guest)
                self.incoming.remove((guest, dst))
                self.lists[dst].remove(guest)
                self.lists[dst].append(guest)
                self.host_of[guest] = dst
                self.in_migration[guest] = False
            self._update(end)

    # -------------------------------------------------------------- update
    def _update(self, t: float, *, tick: bool = False) -> None:
        """CloudSim's fleet-wide update at time t (replaces the state recorded at t)."""
        m = self.model
        self.requested = self.utilisation_at(t) * self.g_mips
        if tick:
            # PowerVm records one utilisation sample per scheduling tick.
            self.history[:, 1:] = self.history[:, :-1]
            self.history[:, 0] = self.requested / self.g_mips
            self.history_len = min(self.history_len + 1, HISTORY_LENGTH)
        live = np.flatnonzero(self.alive)
        host = self.host_of[live]
        r = self.requested[live]
        mig = self.in_migration[live]
        pairs = np.array(self.incoming, dtype=np.int64).reshape(-1, 2)
        in_g, in_h = pairs[:, 0], pairs[:, 1]
        alloc, in_alloc, _, _ = allocate(
            r, self.h_pe[host], self.h_total, host, mig, self.n_hosts,
            self.requested[in_g], self.h_pe[in_h], in_h, m.source_degradation, m.destination_reservation)
        # A migrating-out guest counts at full demand for the host's utilisation (and energy).
        counted = np.where(mig, alloc / (1.0 - m.source_degradation), alloc)
        util_mips = np.bincount(host, counted, minlength=self.n_hosts)
        req = np.bincount(host, r, minlength=self.n_hosts)
        if len(in_h):
            util_mips += np.bincount(in_h, in_alloc, minlength=self.n_hosts)
            req += np.bincount(in_h, self.requested[in_g], minlength=self.n_hosts)
        self.metrics.record(t, util_mips / self.h_total, util_mips, req, live, alloc, r, mig)
        self.h_util_mips = util_mips
        self.now = t
        if m.remove_idle_guests:
            idle = live[(r == 0) & ~mig]
            for g in idle:
                self.lists[self.host_of[g]].remove(g)
                self.host_of[g] = -1
                self.alive[g] = False
