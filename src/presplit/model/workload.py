"""The one workload representation every trace reader produces.

A workload is a dense array ``usage[guest, step, resource]`` sampled every
``interval_s`` seconds, plus per-guest capacities for the same resources.
Usage of ``cpu`` is a utilisation fraction in [0, 1] of the guest's own CPU
capacity (what CloudSim's PlanetLab model multiplies by the VM's MIPS); the
other resources are kept in the trace's own units (``mem`` in MB, ``disk`` and
``net`` in KB/s) with ``capacity`` giving the provisioned amount where known
(NaN where the trace does not say).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Canonical resource names, in the order readers lay them out.
RESOURCES = ("cpu", "mem", "disk", "net")


@dataclass(frozen=True)
class Workload:
    """Guests x time x resources, immutable by convention."""

    name: str
    guest_ids: tuple[str, ...]
    resources: tuple[str, ...]
    usage: np.ndarray  # float64 [guests, steps, resources]
    interval_s: int
    capacity: np.ndarray = field(default=None)  # float64 [guests, resources]
    start_epoch_s: float | None = None
    units: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.usage.ndim != 3:
            raise ValueError(f"workload {self.name!r}: usage must be 3-D (guests, steps, resources), got shape {self.usage.shape}")
        g, _, r = self.usage.shape
        if g != len(self.guest_ids):
            raise ValueError(f"workload {self.name!r}: {len(self.guest_ids)} guest ids for {g} rows of usage")
        if r != len(self.resources):
            raise ValueError(f"workload {self.name!r}: {len(self.resources)} resource names for {r} resource columns")
        if self.interval_s <= 0:
            raise ValueError(f"workload {self.name!r}: interval_s must be positive, got {self.interval_s}")
        if self.capacity is None:
            object.__setattr__(self, "capacity", np.full((g, r), np.nan))
        elif self.capacity.shape != (g, r):
            raise ValueError(f"workload {self.name!r}: capacity shape {self.capacity.shape} != {(g, r)}")

    @property
    def n_guests(self) -> int:
        return self.usage.shape[0]

    @property
    def n_steps(self) -> int:
        return self.usage.shape[1]

    def resource(self, name: str) -> np.ndarray:
        """Usage of one resource as a [guests, steps] view."""
        try:
            k = self.resources.index(name)
        except ValueError:
            raise KeyError(
                f"workload {self.name!r} has no resource {name!r}; it has {', '.join(self.resources)}"
            ) from None
        return self.usage[:, :, k]

    def utilisation(self, name: str) -> np.ndarray:
        """Usage of one resource as a fraction of each guest's capacity, [guests, steps].

        CPU is stored as a fraction already; for the others this divides by
        ``capacity`` and fails when the trace gave no capacity.
        """
        u = self.resource(name)
        if name == "cpu":
            return u
        cap = self.capacity[:, self.resources.index(name)]
        if np.isnan(cap).any():
            raise ValueError(f"workload {self.name!r}: no capacity known for resource {name!r}")
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(cap[:, None] > 0, u / cap[:, None], 0.0)
