"""Split-domain values: hosts, domain services, split domains, guests, and the model knobs.

This module owns the *static* vocabulary of the domain world. A host's capacity
(MIPS, memory) is partitioned into one or more split domains; each domain runs a
set of domain services (a VMM, a monitor, ...) whose overhead comes out of its
allotment, and goes through a lifecycle::

    provisioning --(ready_at)--> active --(PatchDomain)--> patching --(patch_until)--> active
    active --(MergeDomains, absorbed)--> merged       (allotment 0, kept for ids)

``draining`` is a label a policy may rely on (a domain on its way to being
merged); the transition treats it like ``active`` except that it refuses new
guests. Every value here is a frozen dataclass; the changing state of a fleet
lives in :class:`presplit.model.cluster.ClusterState` (re-exported here), the
fabric in :mod:`presplit.model.fabric`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from presplit.model.hardware import PowerModel

DOMAIN_STATES = ("provisioning", "active", "draining", "merged", "patching")
# Guest status codes as stored in ClusterState.guest_status (int8), in this order.
GUEST_STATES = ("absent", "pending", "running", "migrating", "down")
ABSENT, PENDING, RUNNING, MIGRATING, DOWN = range(len(GUEST_STATES))


@dataclass(frozen=True)
class HostSpec:
    """One physical host: cores x MIPS per core, RAM, NIC, rack, SPECpower table."""

    name: str
    cores: int
    mips_per_core: float
    ram_mb: float
    nic_gbit: float
    rack: str
    power: PowerModel
    boot_delay_s: float = 120.0
    off_power_w: float = 0.0

    @property
    def cpu_mips(self) -> float:
        return self.cores * self.mips_per_core


@dataclass(frozen=True)
class Service:
    """A domain service and its overhead, taken out of the domain's allotment.

    ``disk_mb_s`` / ``net_mb_s``: the guests' disk and network IO (MB/s) the
    service carries for its domain -- the VMM's own emulated IO path, or a
    dedicated backend (a storage proxy, a network offload) added as IO demand
    is predicted. A domain's IO capacity is the sum over its services; IO is
    modelled only when some service of the scenario declares a capacity.
    """

    name: str
    cpu_mips: float
    mem_mb: float
    disk_mb_s: float = 0.0
    net_mb_s: float = 0.0


@dataclass(frozen=True)
class Domain:
    """One split domain of a host: an allotment, its services and its lifecycle state.

    ``patch_started``/``patch_until`` describe the last patch of the domain (or
    of the domain it was split from): a patch window is met when every live
    domain of the host has a patch that started and ended inside it.
    """

    id: int
    host: int
    cpu_mips: float
    mem_mb: float
    services: tuple[Service, ...] = ()
    state: str = "active"
    ready_at: float = 0.0
    patch_started: float = float("-inf")
    patch_until: float = float("-inf")
    services_at: float = float("-inf")  # when the service set last changed (guards against flapping)

    def __post_init__(self) -> None:
        if self.state not in DOMAIN_STATES:
            raise ValueError(f"domain {self.id}: unknown state {self.state!r}; expected one of {DOMAIN_STATES}")

    @property
    def overhead_mips(self) -> float:
        return float(sum(s.cpu_mips for s in self.services))

    @property
    def overhead_mb(self) -> float:
        return float(sum(s.mem_mb for s in self.services))

    @property
    def capacity_mips(self) -> float:
        """What guests may reserve: allotment minus the services' overhead."""
        return self.cpu_mips - self.overhead_mips

    @property
    def capacity_mb(self) -> float:
        return self.mem_mb - self.overhead_mb

    @property
    def io_mb_s(self) -> tuple[float, float]:
        """Disk and network IO (MB/s) the domain's services carry for its guests."""
        return (float(sum(s.disk_mb_s for s in self.services)), float(sum(s.net_mb_s for s in self.services)))

    @property
    def live(self) -> bool:
        return self.state != "merged"


@dataclass(frozen=True)
class Guest:
    """A guest (VM). ``reserve_mips`` is what placement books in a domain.

    Guests may use up to ``vcpus * mips_per_vcpu``; they *reserve*
    ``reserve_mips`` (the full size divided by the scenario's CPU overcommit
    ratio) and their full ``ram_mb`` (memory is not overcommitted). ``domain``
    and ``state`` are filled in by :meth:`ClusterState.guest`; in the spec tuple
    they are the defaults. ``dirty_rate_mbps`` is in megabits per second.
    """

    id: str
    vcpus: int
    mips_per_vcpu: float
    ram_mb: float
    dirty_rate_mbps: float = 100.0
    reserve_mips: float | None = None
    arrival_s: float = 0.0
    domain: int = -1
    state: str = "absent"

    def __post_init__(self) -> None:
        if self.reserve_mips is None:
            object.__setattr__(self, "reserve_mips", self.mips)

    @property
    def mips(self) -> float:
        return self.vcpus * self.mips_per_vcpu


@dataclass(frozen=True)
class DomainModel:
    """Knobs of the domain world (all documented defaults, all set by scenarios).

    - ``migration_bw_share``: share of the fabric path a live migration gets.
    - ``max_downtime_s`` / ``max_rounds``: pre-copy stop conditions (QEMU's
      default ``downtime-limit`` is 300 ms); ``switchover_s``: the fixed part of
      every stop-and-copy pause (device state, handing the guest over), which no
      limit removes.
    - ``repin_s``: time to re-pin a guest to a sibling domain (no copy).
    - ``provision_s``: a new domain's services start in this long.
    - ``source_degradation`` / ``destination_reservation``: CloudSim's 10 % and
      10 % while a guest migrates (PDM counts the former).
    - ``minimal_services``: what a new domain runs first; ``optional_services``
      may be added by a policy (ResizeDomain with ``services``); a service's
      ``disk_mb_s`` / ``net_mb_s`` is the guest IO it carries.
    - ``patch_duration_s``: how long patching one domain takes.
    - ``interval_s``: the control tick (policies are asked this often).
    - ``guest_boot_s``: how long a guest restarted after a failure takes to
      boot (:class:`presplit.plan.actions.RestartGuest`).
    """

    migration_bw_share: float = 0.5
    max_downtime_s: float = 0.3
    max_rounds: int = 30
    switchover_s: float = 0.0
    repin_s: float = 0.02
    provision_s: float = 30.0
    source_degradation: float = 0.1
    destination_reservation: float = 0.1
    minimal_services: tuple[Service, ...] = ()
    optional_services: tuple[Service, ...] = field(default=())
    patch_duration_s: float = 1800.0
    interval_s: float = 300.0
    guest_boot_s: float = 60.0

    @property
    def io_modelled(self) -> bool:
        """Whether domains have an IO capacity: some service declares one (else IO is unlimited)."""
        return any(s.disk_mb_s > 0 or s.net_mb_s > 0 for s in (*self.minimal_services, *self.optional_services))


@dataclass(frozen=True)
class PatchWindowSim:
    """A patch window in simulation seconds for one host (from the scenario's calendar)."""

    host: int
    start: float
    end: float
    duration_s: float  # patch time per domain
    rule: str = ""


def __getattr__(name: str):
    # ClusterState lives in model.cluster (it imports this module); re-exported lazily (PEP 562).
    if name == "ClusterState":
        from presplit.model.cluster import ClusterState

        return ClusterState
    if name == "Fabric":
        from presplit.model.fabric import Fabric

        return Fabric
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
