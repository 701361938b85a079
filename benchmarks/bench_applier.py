"""Applier throughput: a 1,000-action plan on the simulated world with the SQLite journal.

Builds a fleet of 50 hosts (one domain each) and 1,000 arrived guests, plans
one PlaceGuest per guest (independent actions, caps per_host=None, total=50),
journals the plan and applies it: every action checked (pre-condition),
journaled ``started`` (with its capture), executed in the world's own SQLite
store, observed (post-condition) and journaled ``succeeded``; invariants
checked after each wave. Prints actions per second.

    python benchmarks/bench_applier.py [--actions 1000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from presplit.apply import Applier, Journal
from presplit.backends.sim_world import SimWorld
from presplit.control.clock import SimClock
from presplit.model.cluster import ClusterState
from presplit.model.domains import PENDING, DomainModel, Guest, HostSpec
from presplit.model.fabric import Fabric
from presplit.model.hardware import PowerModel
from presplit.plan import PlaceGuest
from presplit.plan.invariants import violations
from presplit.plan.ordering import Limits, order_actions
from presplit.sim.domain_engine import DomainWorkload


def fleet(n_guests: int, n_hosts: int = 50) -> ClusterState:
    power = PowerModel(tuple(100.0 + 20 * i for i in range(11)))
    hosts = [HostSpec(f"h{i}", 48, 2600.0, 393216.0, 25.0, f"r{i % 2}", power) for i in range(n_hosts)]
    guests = [Guest(f"g{i}", 2, 1000.0, 2048.0) for i in range(n_guests)]
    fab = Fabric.rack_spine([h.rack for h in hosts], [h.nic_gbit for h in hosts])
    s = ClusterState.initial(hosts, guests, fab, DomainModel())
    return s.evolve(guest_status=np.full(n_guests, PENDING, np.int8))


def once(n: int, folder: Path) -> float:
    state = fleet(n)
    work = DomainWorkload(np.full((n, 2), 0.5), None, np.zeros(n, np.int64), 300.0)
    world = SimWorld(folder / "world.db", initial=state, workload=work)
    world.state = world.state.evolve(guest_status=np.full(n, PENDING, np.int8))  # arrived (bench shortcut)
    journal = Journal(f"sqlite:///{folder / 'journal.db'}")
    clock = SimClock(0.0)
    clock.on_advance(world.advance)
    hosts = state.n_hosts
    actions = [PlaceGuest(g, g % hosts, reason="benchmark") for g in range(n)]
    started = time.perf_counter()
    plan = order_actions(actions, Limits(per_host=None, per_link=None, total=50), world.observe())
    pid = journal.record_plan(plan, tick=0.0)
    result = Applier(world, journal, clock).run(pid)
    wall = time.perf_counter() - started
    assert result.status == "succeeded" and result.counts == {"succeeded": n}, result
    assert not violations(world.observe())
    journal.close()
    world.close()
    return wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--actions", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    walls = []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            walls.append(once(args.actions, Path(tmp)))
    best = min(walls)
    print(f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}")
    print(f"{args.actions} actions: best {best:.3f} s of {args.repeat} "
          f"({', '.join(f'{w:.3f}' for w in walls)}); {args.actions / best:,.0f} actions/s")


if __name__ == "__main__":
    main()
