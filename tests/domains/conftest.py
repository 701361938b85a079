"""Small domain-world fleets for the tests."""

from __future__ import annotations

import numpy as np
import pytest

from presplit.model.cluster import ClusterState
from presplit.model.domains import PENDING, DomainModel, Guest, HostSpec, Service
from presplit.model.fabric import Fabric
from presplit.model.hardware import PowerModel

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


@pytest.fixture
def fleet():
    return small_fleet()
