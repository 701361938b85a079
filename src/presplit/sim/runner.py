"""Run one (workload, policy) pair on a fleet and report the metrics, with the fluid lower bound."""

from __future__ import annotations

import resource
import time

import numpy as np

from presplit.model.hardware import Fleet, cloudsim_preset
from presplit.model.workload import Workload
from presplit.policies import make_policy
from presplit.sim.engine import Engine, SimResult

METRIC_KEYS = ("energy_kwh", "migrations", "slatah", "pdm", "slav", "esv", "overall_sla_violation",
               "fluid_bound_kwh", "fluid_bound_cpu_kwh", "energy_over_bound", "served_bound_kwh",
               "energy_over_served_bound", "max_ram_ratio", "refused_actions", "boots", "migration_pause_s",
               "guests_unplaced", "model", "forecaster", "wall_s", "peak_rss_mb")
FAILURE_KEYS = ("guests_lost", "failover_restarts", "failover_max_s", "failover_p95_s", "failure_downtime_s",
                "failover_capacity_short", "failures_injected", "migrations_failed")
"""The failure metrics (the domain engine's keys): in a row only when the run was given ``failures``."""


def fluid_bound_cpu_kwh(workload: Workload, fleet: Fleet) -> float:
    """Energy if every MIPS of demand ran on the most efficient host type at 100 %.

    With SPECpower tables that are concave enough, full hosts of the type with
    the fewest watts per MIPS at full load are the cheapest way to serve any
    demand; the sum runs over every sample of every guest.
    """
    demand_mips = workload.resource("cpu") * fleet.guest_attr("mips")[:, None]
    return float(demand_mips.sum() * best_watts_per_mips(fleet) * workload.interval_s / 3.6e6)


def fluid_bound_kwh(workload: Workload, fleet: Fleet) -> float:
    """The fluid lower bound of the fleet's energy; it accounts for memory where memory is a limit.

    Without enforced memory it is :func:`fluid_bound_cpu_kwh`. With it, the hosts memory alone
    requires must be on: at every sample every host draws at least its off power, the hosts on
    draw at least their idle power above that -- enough of them to hold every guest's RAM
    (fractionally, on the type with the least watts above off per MB) -- and every MIPS of demand
    costs at least the smallest slope of any power table; and the fleet never draws less than
    the CPU-only bound. Each term is a lower bound of any placement's power, so their sum is.
    """
    m = fleet.model
    if not m.enforce_ram:
        return fluid_bound_cpu_kwh(workload, fleet)
    demand = (workload.resource("cpu") * fleet.guest_attr("mips")[:, None]).sum(axis=0)  # [steps] MIPS
    ram = float(fleet.guest_attr("ram_mb").sum())
    off = min(m.off_power_w, min(t.power.idle_w for t in fleet.host_types))
    idle_per_mb = min((t.power.idle_w - off) / (t.ram_mb * m.ram_overcommit) for t in fleet.host_types)
    slope = min(min(np.diff(t.power.watts)) / (0.1 * t.total_mips) for t in fleet.host_types)
    cpu_w = demand * best_watts_per_mips(fleet)
    mem_w = fleet.n_hosts * off + ram * idle_per_mb + demand * max(slope, 0.0)
    return float(np.maximum(cpu_w, mem_w).sum() * workload.interval_s / 3.6e6)


def best_watts_per_mips(fleet: Fleet) -> float:
    return min(t.power.max_w / t.total_mips for t in fleet.host_types)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def takes_forecaster(policy_obj) -> bool:
    """Whether a CloudSim-engine policy decides on a forecast it can be given (``--forecaster``)."""
    return hasattr(policy_obj, "forecaster_name")


def run_simulation(workload: Workload, policy: str, *, fleet: Fleet | None = None, seed: int = 0,
                   record_events: bool = False, forecaster: str | None = None,
                   failures=None) -> tuple[dict, SimResult]:
    """Simulate ``workload`` under ``policy`` (deciding on ``forecaster`` where it takes one), with ``failures``
    (a :class:`presplit.sim.failures.FailureSpec`) injected if given; returns (metrics row, full result).
    With ``failures`` the row also holds :data:`FAILURE_KEYS` (zeros for a spec that injects nothing)."""
    fleet = fleet or cloudsim_preset(workload.n_guests)
    obj = make_policy(policy, seed=seed)
    if takes_forecaster(obj):
        obj.forecaster_name = forecaster
        used = forecaster or getattr(obj, "default_forecaster", "outlook")
    elif forecaster is not None:
        from presplit.policies import PolicyError

        raise PolicyError(f"policy {policy!r} decides on no forecast: --forecaster does not apply to it")
    else:
        used = "none"
    started = time.perf_counter()
    engine = Engine(fleet, np.asarray(workload.resource("cpu")), obj, record_events=record_events,
                    failures=failures)
    result = engine.run()
    wall = time.perf_counter() - started
    metrics = dict(result.metrics)
    if failures is not None:
        metrics = {**dict.fromkeys(FAILURE_KEYS, 0), **metrics}
    bound = fluid_bound_kwh(workload, fleet)
    bound_cpu = fluid_bound_cpu_kwh(workload, fleet)
    # The demand the model actually served: CloudSim deallocates a guest whose request
    # drops to exactly 0 and never serves it again, so the bound over all samples counts
    # demand no policy runs. Both are reported; the key is the first.
    served = metrics.pop("served_mips_s") * best_watts_per_mips(fleet) / 3.6e6
    energy = metrics["energy_kwh"]
    row = {"trace": workload.name, "policy": policy, "forecaster": used, **metrics,
           "fluid_bound_kwh": bound, "fluid_bound_cpu_kwh": bound_cpu, "model": fleet.model.name,
           "energy_over_bound": energy / bound if bound else float("nan"),
           "served_bound_kwh": served,
           "energy_over_served_bound": energy / served if served else float("nan"),
           "wall_s": wall, "peak_rss_mb": peak_rss_mb()}
    return row, result
