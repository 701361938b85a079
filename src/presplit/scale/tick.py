"""The per-tick cost of the control plane at fleet scale: forecast + propose + order.

``build_fleet`` makes a split-domain world of ``n_guests`` on ``n_hosts`` whose
guests replay real series (resampled from a trace, see
:mod:`presplit.scale.synthetic`); ``measure_tick`` runs it through the domain
engine with the ``presplit`` policy and times, on the last ticks, the three
steps a controller does every tick: update the forecasts with the new
observations, propose (the policy), and order the proposal into a plan
(:func:`presplit.plan.ordering.order_actions`). Applying the actions is the
backend's business and is not counted.
"""

from __future__ import annotations

import resource
import time
from dataclasses import dataclass

import numpy as np

from presplit.model.cluster import ClusterState
from presplit.model.domains import ABSENT, RUNNING, DomainModel, Guest, HostSpec, PatchWindowSim, Service
from presplit.model.fabric import Fabric
from presplit.model.hardware import PowerModel
from presplit.model.workload import Workload
from presplit.plan.ordering import Limits, order_actions
from presplit.policies import make_policy
from presplit.scale.synthetic import resample
from presplit.sim.domain_engine import DomainWorkload, run_domains
from presplit.sim.forecast_feed import make_feed

# A 16-core, 128 GB server; SPECpower-shaped like the bighost scenario's, scaled down.
HOST_POWER = PowerModel((60, 85, 98, 110, 122, 134, 147, 160, 175, 192, 210))
MIPS_PER_CORE = 2600.0
SERVICES = (Service("vmm", 2600.0, 2048.0), Service("monitor", 650.0, 512.0))
# With ``io=True`` services carry guest IO as in bighost-patch, so the policy's IO steps (services,
# fabric split) run too.
IO_SERVICES = (Service("vmm", 2600.0, 2048.0, disk_mb_s=200.0, net_mb_s=125.0), Service("monitor", 650.0, 512.0))
IO_OPTIONAL = (Service("storage-proxy", 2600.0, 1024.0, disk_mb_s=2000.0),
               Service("net-offload", 1300.0, 512.0, net_mb_s=2500.0))


@dataclass(frozen=True)
class TickCost:
    guests: int
    hosts: int
    tick_s: float
    forecast_s: float
    propose_s: float
    order_s: float
    actions: int  # actions proposed over the measured ticks
    peak_rss_mb: float

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def build_fleet(n_guests: int, n_hosts: int, source: Workload, *, seed: int = 0, steps: int = 24,
                warm_ticks: int = 12, arriving: float = 0.001, patching: float = 0.01,
                io: bool = False) -> tuple[ClusterState, DomainWorkload]:
    """``n_guests`` guests (1, 2 or 4 vCPUs, 2-16 GB) from ``source``'s series on ``n_hosts`` hosts.

    ``arriving`` (share of guests) arrive during the measured ticks and ``patching``
    (share of hosts) have a patch window opening then, so those ticks place guests
    and split, patch and re-pin domains, not only watch. With ``io`` the
    services carry IO and each guest does disk and network IO that follows its
    CPU series (a shape for the cost of the IO steps, not a measured mix).
    """
    if n_guests < 1 or n_hosts < 1:
        raise ValueError(f"guests and hosts must be >= 1, got {n_guests} and {n_hosts}")
    rng = np.random.default_rng(seed)
    vcpus = rng.choice([1, 2, 4], size=n_guests, p=[0.5, 0.35, 0.15])
    ram = rng.choice([2048.0, 4096.0, 8192.0, 16384.0], size=n_guests, p=[0.3, 0.4, 0.2, 0.1])
    # Memory binds: hosts get enough of it for the guests at ~65 % (as in bighost-patch).
    ram_per_host = max(131072.0, float(np.ceil(ram.sum() / n_hosts / 0.65 / 1024.0) * 1024.0))
    hosts = [HostSpec(f"h{i}", 16, MIPS_PER_CORE, ram_per_host, 25.0, f"r{i // 20}", HOST_POWER)
             for i in range(n_hosts)]
    guests = [Guest(f"g{i}", int(v), MIPS_PER_CORE, float(m), dirty_rate_mbps=100.0,
                    reserve_mips=float(v) * MIPS_PER_CORE / 3.0)
              for i, (v, m) in enumerate(zip(vcpus, ram))]
    fabric = Fabric.rack_spine([h.rack for h in hosts], [h.nic_gbit for h in hosts], intra_rack="tor")
    # A running fleet, not an empty one: guests start placed round-robin (domain i = host i),
    # except ``arriving`` of them, which arrive during the measured ticks; a few hosts
    # have a patch window opening then.
    n_arriving = max(1, int(arriving * n_guests))
    late = rng.choice(n_guests, size=n_arriving, replace=False)
    arrival = np.zeros(n_guests, np.int64)
    arrival[late] = rng.integers(warm_ticks, warm_ticks + 3, size=n_arriving)
    # Windows open 6 ticks before the measured ones: the new domains are patched by then,
    # so the measured ticks re-pin every guest of those hosts and patch the old domains.
    windows = tuple(PatchWindowSim(int(h), (warm_ticks - 6) * 300.0, (warm_ticks + 18) * 300.0, 1800.0)
                    for h in rng.choice(n_hosts, size=max(1, int(patching * n_hosts)), replace=False))
    model = (DomainModel(minimal_services=IO_SERVICES, optional_services=IO_OPTIONAL) if io
             else DomainModel(minimal_services=SERVICES))
    state = ClusterState.initial(hosts, guests, fabric, model, patch_windows=windows)
    on_time = np.flatnonzero(arrival == 0)
    domain = np.full(n_guests, -1, np.int64)
    domain[on_time] = np.arange(len(on_time)) % n_hosts
    status = np.where(arrival == 0, RUNNING, ABSENT).astype(np.int8)
    state = state.evolve(guest_domain=domain, guest_status=status)
    cpu = np.ascontiguousarray(resample(source, n_guests, seed=seed).workload.resource("cpu")[:, :steps])
    io_mb_s = None
    if io:  # MB/s per vCPU at full load: 20 of disk, 10 of network
        io_mb_s = cpu[:, :, None] * vcpus[:, None, None] * np.array([20.0, 10.0])
    return state, DomainWorkload(cpu, None, arrival, 300.0, io_mb_s)


def measure_tick(state: ClusterState, workload: DomainWorkload, *, warm_ticks: int = 12,
                 measured_ticks: int = 3) -> TickCost:
    """Run ``warm_ticks`` ticks (placement and forecast history), then time ``measured_ticks``."""
    policy = make_policy("presplit", engine="domains")
    feed = make_feed(state.n_guests)  # the observed outlook, built as every feed is
    timings: list[tuple[float, float, float, int]] = []
    pending: dict = {}

    def forecaster(step, st):
        t0 = time.perf_counter()
        out = feed(step, st)
        pending["forecast"] = time.perf_counter() - t0
        return out

    class Timed:
        kind = "domains"
        needs_forecasts = True

        def propose(self, st, forecasts, now):
            t0 = time.perf_counter()
            actions = policy.propose(st, forecasts, now)
            t1 = time.perf_counter()
            order_actions(actions, Limits(per_host=8, per_link=None, total=None), st)
            t2 = time.perf_counter()
            timings.append((pending.get("forecast", 0.0), t1 - t0, t2 - t1, len(actions)))
            return actions

    run_domains(state, workload, Timed(), forecasts=forecaster, n_steps=warm_ticks + measured_ticks,
                record_events=False)
    last = np.array(timings[-measured_ticks:])
    # The slowest measured tick (arrivals and patch work happen in them), not a quiet one.
    worst = int(np.argmax(last[:, :3].sum(axis=1)))
    f, p, o = (float(last[worst, k]) for k in range(3))
    return TickCost(state.n_guests, state.n_hosts, f + p + o, f, p, o, int(last[:, 3].sum()),
                    resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0)
