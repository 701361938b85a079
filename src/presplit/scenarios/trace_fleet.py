"""Fleets built from a trace's own VM sizes, for the CloudSim engine (the ``bitbrains`` scenario).

CloudSim's PlanetLab preset gives guests four fixed types; a trace that
records each VM's provisioned CPU and memory (Bitbrains does) deserves its
own sizes. :class:`TraceFleet` makes one guest type per VM: MIPS = its
provisioned MHz, capped at one host PE (the CloudSim engine allocates a
guest on one PE, as CloudSim's PlanetLab runs do, so demand above a PE is
clipped), RAM = its provisioned memory, capped at a host's RAM. Hosts are
CloudSim's two HP ProLiant ML110 types (alternating, with their SPECpower
tables) but with 16 GB each, so that memory matters as it does in a fleet of
today, and the fleet has twice the hosts its guests need at their full size
(memory or CPU, whichever needs more), as CloudSim's 800 hosts are for its
1,052 guests. The model is ``realistic`` and the horizon is the trace's
length.

A factory that needs the workload, not only its guest count, says so with
``takes_workload = True`` (:func:`build_fleet`).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from presplit.model.hardware import HP_ML110_G4, HP_ML110_G5, Fleet, GuestType, HostType, model_preset

HOST_RAM_MB = 16 * 1024.0
HOST_TYPES = tuple(dataclasses.replace(t, name=f"{t.name} (16 GB)", ram_mb=HOST_RAM_MB)
                   for t in (HP_ML110_G4, HP_ML110_G5))


@dataclasses.dataclass(frozen=True)
class TraceFleet:
    """Builds the fleet for a workload from its VMs' provisioned CPU and memory (see the module docstring)."""

    model: str = "realistic"
    headroom: float = 2.0
    takes_workload = True

    def __call__(self, workload) -> Fleet:
        from presplit.errors import InputError

        if "cpu" not in workload.resources or "mem" not in workload.resources:
            raise InputError(f"trace {workload.name!r}: a fleet from the trace needs each VM's provisioned CPU and "
                             "memory (a Bitbrains trace has them; a PlanetLab day does not)")
        cap = workload.capacity
        cpu_cap = cap[:, workload.resources.index("cpu")]
        mem_cap = cap[:, workload.resources.index("mem")]
        bad = np.flatnonzero(~np.isfinite(cpu_cap) | ~np.isfinite(mem_cap) | (cpu_cap <= 0) | (mem_cap <= 0))
        if len(bad):
            raise InputError(f"trace {workload.name!r}: VM {workload.guest_ids[bad[0]]!r} has no provisioned CPU or "
                             "memory (expected both, positive)")
        pe = min(t.pe_mips for t in HOST_TYPES)
        mips = np.minimum(cpu_cap, pe)
        ram = np.minimum(mem_cap, HOST_RAM_MB)
        guest_types = tuple(GuestType(str(g), float(m), 1, float(r), 100.0)
                            for g, m, r in zip(workload.guest_ids, mips, ram))
        mean_host = HostType("mean", pe, 2, HOST_RAM_MB, 1000.0, HP_ML110_G4.power)
        need = max(ram.sum() / mean_host.ram_mb, mips.sum() / mean_host.total_mips)
        n_hosts = int(math.ceil(self.headroom * need))
        model = dataclasses.replace(model_preset(self.model),
                                    horizon_s=float(workload.n_steps * workload.interval_s))
        return Fleet(HOST_TYPES, np.arange(n_hosts) % 2, guest_types, np.arange(workload.n_guests), model)


def build_fleet(factory, workload) -> Fleet:
    """``factory``'s fleet for ``workload``: from the workload itself, or from its guest count."""
    if getattr(factory, "takes_workload", False):
        return factory(workload)
    return factory(workload.n_guests)


@dataclasses.dataclass(frozen=True)
class Remodel:
    """Another factory's fleet under another model preset (``presplit simulate --model``); its horizon stays."""

    factory: object
    model: str

    @property
    def takes_workload(self) -> bool:
        return getattr(self.factory, "takes_workload", False)

    def __call__(self, arg) -> Fleet:
        fleet = self.factory(arg)
        return dataclasses.replace(fleet, model=dataclasses.replace(model_preset(self.model),
                                                                    horizon_s=fleet.model.horizon_s))
