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

The ``realistic`` model (:func:`presplit.model.hardware.model_preset`) turns
on what CloudSim leaves out, each behind its own knob so the ``cloudsim``
preset stays bit-identical: memory as a hard limit (a migration that would
overfill its destination's RAM is refused and counted; a guest no host can
start waits, and its demand counts as unserved), hosts that are on while they
hold guests and take ``boot_delay_s`` to boot and ``shutdown_s`` to stop,
guests that stay when idle, and pre-copy migrations whose duration and pause
follow the bandwidth left on the NICs they share. RAM is booked on the
destination when a migration starts and released on the source when it ends,
so both carry the guest during the copy.

Failures (``failures=``, a :class:`presplit.sim.failures.FailureSpec`; off by
default, and then nothing below runs): host crashes and failed live
migrations, applied at their own times between ticks by
:class:`presplit.sim.failures.CloudSimFailures`, each between two updates
that record the state before and after. Stopped and booting guests count as
requested and not served, like waiting ones.
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

    def __init__(self, fleet: Fleet, utilisation: np.ndarray, policy, *, record_events: bool = False,
                 failures=None) -> None:
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
        self.ram_cap = self.h_ram * (m.ram_overcommit if m.enforce_ram else 1.0)
        self.ram_used = np.zeros(self.n_hosts)  # RAM of the guests each host holds (migrating in: both hosts)
        self.count = np.zeros(self.n_hosts, dtype=np.int64)  # guests each host's list holds
        self.ram_free = self.ram_cap.copy()
        self.h_nic_mbps = fleet.host_attr("bw_mbit") / 8.0  # MB/s of each host's NIC
        self.nic_busy = np.zeros(self.n_hosts, dtype=np.int64)  # migrations in flight through each NIC
        self.shutdown_until = np.full(self.n_hosts, -np.inf)
        self.waiting: list[int] = []  # guests no host could start yet (memory): they wait, unserved
        self.refused = 0
        self.boots = 0
        self.max_ram_ratio = 0.0
        self.pause_s = 0.0
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
        self.fail = None
        if failures is not None and failures.active:
            from presplit.sim.failures import CloudSimFailures

            self.fail = CloudSimFailures(failures, self, policy)

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
            self.begin_tick(t)
            moves = self.policy.optimise(self) if self.policy.migrates else []
            shares = self.nic_shares(moves) if m.precopy else None
            for k, (guest, dst) in enumerate(moves):
                self._start_migration(guest, dst, t, 1 if shares is None else shares[k])
            if moves:
                self._update(t)
            active[i] = int(self._hosts_on(t).sum()) if m.hosts_on_with_guests else int((self.h_util_mips > 0).sum())
        return SimResult(self.finish_metrics(len(tick_times)), active, self.migrations_per_guest, self.events)

    def begin_tick(self, t: float) -> None:
        """What happens at a tick before the policy is asked: migrations that ended land, waiting guests
        that now fit start, and the fleet-wide update records the tick."""
        if self.fail is not None:
            self._failures_until(t)
        self._finish_migrations_until(t)
        if self.waiting:
            self._place_waiting()
        if self.fail is not None:
            self.fail.restart(t)  # stopped guests no host could take yet
        self._update(t, tick=True)

    def _failures_until(self, t: float) -> None:
        """Failure events before t, in time order with the migrations that end in between; each between an
        update that records the state before it and one that records it after."""
        while (at := self.fail.next_at()) is not None and at < t:
            self._finish_migrations_until(at)
            at = max(at, self.now)
            self._update(at)
            self.fail.fire(at)
            self._update(at)

    def finish_metrics(self, ticks: int) -> dict:
        """End the run (migrations in flight land by the horizon); the metrics of the whole run."""
        m = self.model
        if self.fail is not None:
            self._failures_until(m.horizon_s)
        self._finish_migrations_until(m.horizon_s)
        metrics = self.metrics.finish(self.migrations)
        if getattr(self.policy, "non_power_aware", False):
            metrics["energy_kwh"] = float(self.h_power[:, -1].sum() * ticks * m.interval_s / 3.6e6)
        metrics.update(max_ram_ratio=self.max_ram_ratio, refused_actions=self.refused, boots=self.boots,
                       migration_pause_s=self.pause_s, guests_unplaced=len(self.waiting))
        if self.fail is not None:
            metrics.update(self.fail.finish())
        return metrics

    def _hosts_on(self, t: float) -> np.ndarray:
        """Hosts that hold a guest, are booting, or have not finished shutting down."""
        return (self.count > 0) | (self.shutdown_until > t) | (self.booting_until > t)

    def host_counts(self) -> np.ndarray:
        """Guests each host holds (migrating-in ones included)."""
        return self.count.copy()

    def _book(self, host: int, guest: int, sign: int) -> None:
        """A guest joins (+1) or leaves (-1) a host's list: its RAM and the host's count follow."""
        ram = self.g_ram[guest] * sign
        self.ram_used[host] += ram
        self.ram_free[host] -= ram
        self.count[host] += sign
        if sign > 0:
            self.max_ram_ratio = max(self.max_ram_ratio, float(self.ram_used[host] / self.h_ram[host]))

    # ----------------------------------------------------------- placement
    def create(self, guest: int, host: int) -> None:
        """Place a new guest (initial placement)."""
        self.lists[host].append(guest)
        self.host_of[guest] = host
        self._book(host, guest, +1)

    def wait(self, guest: int) -> None:
        """A guest no host can start now (memory is a limit): it waits, unserved, and is placed when room frees."""
        if not self.model.enforce_ram:
            raise RuntimeError(f"no host can start guest {guest}: the fleet is too small for the workload")
        self.waiting.append(guest)

    def _place_waiting(self) -> None:
        """Start waiting guests on the first running host with room (then the first switched-off one)."""
        count = self.host_counts()
        still = []
        for g in self.waiting:
            ok = self.ram_free >= self.g_ram[g]
            cand = np.flatnonzero(ok & (count > 0))
            if len(cand) == 0:
                cand = np.flatnonzero(ok)
            if len(cand) == 0:
                still.append(g)
                continue
            h = int(cand[0])
            self.create(g, h)
            count[h] += 1
        self.waiting = still

    def nic_shares(self, moves) -> list[int]:
        """For each move of this tick, how many migrations share the busier of its two NICs."""
        starts = np.zeros(self.n_hosts, dtype=np.int64)
        for g, dst in moves:
            starts[self.host_of[g]] += 1
            starts[dst] += 1
        load = self.nic_busy + starts
        return [int(max(load[self.host_of[g]], load[dst])) for g, dst in moves]

    def _precopy(self, guest: int, bandwidth: float) -> tuple[float, float]:
        """(duration, pause) of a pre-copy migration at ``bandwidth`` MB/s: rounds until the dirty rest fits."""
        m = self.model
        ram = float(self.g_ram[guest])
        left, total = ram, 0.0
        for _ in range(m.max_rounds):
            seconds = left / bandwidth
            total += seconds
            left = min(m.dirty_rate_mb_s * seconds, ram)
            if left / bandwidth <= m.max_downtime_s:
                break
        pause = left / bandwidth
        return total + pause, pause

    def _start_migration(self, guest: int, dst: int, t: float, sharing: int = 1) -> bool:
        m = self.model
        ram = self.g_ram[guest]
        if self.fail is not None and not self.fail.may_migrate(guest, dst):
            self.refused += 1  # a stopped guest, or a crashed destination
            return False
        if m.enforce_ram and self.ram_used[dst] + ram > self.ram_cap[dst] + 1e-6:
            self.refused += 1  # memory is a hard limit: the engine refuses what a policy should not ask
            return False
        src = int(self.host_of[guest])
        if m.hosts_on_with_guests:
            # On while it holds a guest (or is still shutting down: the shutdown is called off).
            off = not self.lists[dst] and self.shutdown_until[dst] <= t and self.booting_until[dst] <= t
            self.shutdown_until[dst] = -np.inf
        else:
            off = self.h_util_mips[dst] == 0 and self.booting_until[dst] <= t
        self.in_migration[guest] = True
        self.incoming.append((guest, dst))
        self.lists[dst].append(guest)
        self._book(dst, guest, +1)
        if m.precopy:
            bandwidth = min(self.h_nic_mbps[src], self.h_nic_mbps[dst]) * m.migration_bw_share / max(sharing, 1)
            duration, pause = self._precopy(guest, bandwidth)
            self.pause_s += pause
            self.nic_busy[src] += 1
            self.nic_busy[dst] += 1
        else:
            duration = ram / self.h_mbps[dst]
        if m.boot_delay_s > 0 and off:
            # A switched-off destination boots first, at idle power, before the copy starts.
            self.booting_until[dst] = t + m.boot_delay_s
            self.boots += 1
            if not m.hosts_on_with_guests:  # otherwise the host is on (it holds the guest) and counted as such
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
        if self.fail is not None:
            self.fail.migration_started(guest, dst, t, duration, self._seq)
        self._seq += 1
        return True

    def abort_migration(self, guest: int, dst: int, t: float, *, seq: int | None = None) -> bool:
        """A migration in flight fails at t (failures only): the guest stays at its source, the destination's
        booking and RAM are released. False when that migration is no longer in flight."""
        entry = next((x for x in self._pending if x[2] == guest and x[3] == dst and (seq is None or x[1] == seq)),
                     None)
        if entry is None:
            return False
        self._pending.remove(entry)
        heapq.heapify(self._pending)
        src = int(self.host_of[guest])
        self.incoming.remove((guest, dst))
        self.lists[dst].remove(guest)
        self._book(dst, guest, -1)
        self.in_migration[guest] = False
        if self.model.precopy:
            self.nic_busy[src] -= 1
            self.nic_busy[dst] -= 1
        if self.model.hosts_on_with_guests and self.count[dst] == 0:
            self.shutdown_until[dst] = t + self.model.shutdown_s
        return True

    def _finish_migrations_until(self, t: float) -> None:
        while self._pending and self._pending[0][0] < t:
            end = self._pending[0][0]
            self._update(end)
            while self._pending and self._pending[0][0] == end:
                _, _, guest, dst = heapq.heappop(self._pending)
                src = self.host_of[guest]
                if src >= 0:
                    self.lists[src].remove(guest)
                    self._book(src, guest, -1)
                    if self.model.precopy:
                        self.nic_busy[src] -= 1
                        self.nic_busy[dst] -= 1
                    if self.model.hosts_on_with_guests and not self.lists[src]:
                        self.shutdown_until[src] = end + self.model.shutdown_s
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
        if self.waiting or self.fail is not None:
            live = np.flatnonzero(self.alive & (self.host_of >= 0))
        else:
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
        on_until = None
        if m.hosts_on_with_guests:
            on_until = np.where(self.count > 0, np.inf, np.maximum(self.shutdown_until, self.booting_until))
        unmet = float(self.requested[self.waiting].sum()) if self.waiting else 0.0
        if self.fail is not None:
            unmet += self.fail.unmet_mips()  # stopped and booting guests: requested, not served
        self.metrics.record(t, util_mips / self.h_total, util_mips, req, live, alloc, r, mig, on_until=on_until,
                            unmet_mips=unmet)
        self.h_util_mips = util_mips
        self.now = t
        if m.remove_idle_guests:
            idle = live[(r == 0) & ~mig]
            for g in idle:
                h = self.host_of[g]
                self.lists[h].remove(g)
                self._book(h, g, -1)
                self.host_of[g] = -1
                self.alive[g] = False
