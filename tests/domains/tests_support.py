"""Small domain-world fleets and tiny traces for the tests (a plain module: conftest names clash across folders)."""

from __future__ import annotations

import numpy as np

from presplit.model.cluster import ClusterState
from presplit.model.domains import PENDING, DomainModel, Guest, HostSpec, Service
from presplit.model.fabric import Fabric
from presplit.model.hardware import PowerModel


def planetlab_day(tmp_path, n_vms=6, seed=0):
    folder = tmp_path / "day"
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n_vms):
        values = np.clip(rng.normal(40, 15, 288), 1, 99).astype(int)
        (folder / f"vm_{i:03d}").write_text("\n".join(map(str, values)) + "\n")
    return folder

POWER = PowerModel((100, 130, 150, 170, 190, 210, 230, 250, 270, 290, 310))
MINIMAL = (Service("vmm", 1000.0, 2048.0), Service("monitor", 250.0, 512.0))


def small_fleet(n_hosts=3, guests=((2, 4096.0),) * 4, cores=8, ram_mb=65536.0, racks=1,
                arrived=True, model=None) -> ClusterState:
    """Hosts of ``cores`` x 1000 MIPS; guests (vcpus, ram_mb) of 1000 MIPS per vCPU, pending."""
    hosts = [HostSpec(f"h{i}", cores, 1000.0, ram_mb, 25.0, f"r{i % racks}", POWER, boot_delay_s=120.0)
             for i in range(n_hosts)]
    specs = [Guest(f"g{i}", v, 1000.0, ram, dirty_rate_mbps=80.0) for i, (v, ram) in enumerate(guests)]
    fabric = Fabric.rack_spine([h.rack for h in hosts], [h.nic_gbit for h in hosts])
    state = ClusterState.initial(hosts, specs, fabric, model or DomainModel(minimal_services=MINIMAL))
    if arrived:
        state = state.evolve(guest_status=np.full(len(specs), PENDING, np.int8))
    return state


def placed(n_hosts=3, guests=((2, 4096.0),) * 4, **kw) -> ClusterState:
    """:func:`small_fleet` with guest g running in domain g % n_hosts (one domain per host)."""
    from presplit.plan import PlaceGuest, apply_action

    state = small_fleet(n_hosts=n_hosts, guests=guests, **kw)
    for g in range(len(guests)):
        state, out = apply_action(state, PlaceGuest(g, g % n_hosts))
        assert out.ok, out
    return state


def journal_round_trip(state: ClusterState, action):
    """What the applier does with one action: encode, capture, apply, post-check, revert.

    Returns (decoded action, new state, verdict after, verdict on the old state, (reverted state, ok, why)).
    """
    from presplit.plan.codec import decode_action, dumps, encode_action, loads
    from presplit.apply.conditions import capture, postcondition
    from presplit.backends.sim_revert import revert_action
    from presplit.plan import apply_action

    decoded = decode_action(loads(dumps(encode_action(action))))
    before = loads(dumps(capture(state, action)))
    new, out = apply_action(state, action)
    assert out.ok, out
    return (decoded, new, postcondition(new, action, before), postcondition(state, action, before),
            revert_action(new, action, before))
