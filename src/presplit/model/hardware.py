"""Host and guest types, the SPECpower power model, and the simulator's model knobs.

The CloudSim 3.0.3 PlanetLab setup (Beloglazov & Buyya, CCPE 2012) is one
named preset of these values (:func:`cloudsim_preset`); every constant it
fixes is an explicit, documented knob so more realistic scenarios can change
it (boot delay, power of a switched-off host, RAM enforcement, migration
bandwidth share).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class PowerModel:
    """SPECpower-style table: watts at 0, 10, ..., 100 % CPU, linear in between."""

    watts: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.watts) != 11:
            raise ValueError(f"a power table needs 11 values (0..100 % in steps of 10), got {len(self.watts)}")

    @property
    def idle_w(self) -> float:
        return self.watts[0]

    @property
    def max_w(self) -> float:
        return self.watts[-1]

    def power(self, utilisation: np.ndarray | float) -> np.ndarray:
        """Watts at the given CPU utilisation fraction(s) in [0, 1]."""
        return np.interp(utilisation, np.linspace(0.0, 1.0, 11), self.watts)


def power_at(tables: np.ndarray, utilisation: np.ndarray) -> np.ndarray:
    """Watts per host from [hosts, 11] SPECpower tables, linear between the 10 % points."""
    u = np.clip(utilisation, 0.0, 1.0) * 10.0
    lo = np.minimum(np.floor(u).astype(np.int64), 9)
    rows = np.arange(len(tables))
    low = tables[rows, lo]
    return low + (tables[rows, lo + 1] - low) * (u - lo)


@dataclass(frozen=True)
class HostType:
    name: str
    pe_mips: float
    pes: int
    ram_mb: float
    bw_mbit: float
    power: PowerModel

    @property
    def total_mips(self) -> float:
        return self.pe_mips * self.pes


@dataclass(frozen=True)
class GuestType:
    name: str
    mips: float
    pes: int
    ram_mb: float
    bw_mbit: float


@dataclass(frozen=True)
class SimModel:
    """Knobs of the consolidation model; defaults are CloudSim 3.0.3's values.

    - ``interval_s``: scheduling interval between policy decisions.
    - ``first_tick_s``: time of the first utilisation sample used; CloudSim's
      VM-creation acknowledgement delay puts every tick at 300 k + 0.1 s.
    - ``horizon_s``: simulated time; ticks after it are not run.
    - ``migration_bw_share``: share of the destination host's bandwidth a
      migration gets (CloudSim: half, the rest is for guest traffic);
      duration = RAM / (BW x share).
    - ``source_degradation``: fraction of a migrating guest's MIPS the source
      withholds (counted by PDM).
    - ``destination_reservation``: fraction of the guest's MIPS the
      destination reserves while it migrates in.
    - ``boot_delay_s``: a switched-off host chosen as a destination first
      boots for this long (at idle power); the migration ends that much later.
    - ``off_power_w``: power drawn by a switched-off host (CloudSim: 0 W).
    - ``enforce_ram``: check guests' full RAM on every placement, not only at
      start (CloudSim requests no RAM once a guest runs).
    - ``remove_idle_guests``: CloudSim deallocates a guest whose requested
      MIPS is exactly 0 at an update ("completed"); kept for parity.

    The knobs below are off in CloudSim's model and on in the ``realistic``
    preset (:func:`model_preset`):

    - ``ram_overcommit``: with ``enforce_ram``, a host may hold guests whose
      RAM adds up to its RAM times this; a migration that would exceed it is
      refused by the engine (and counted).
    - ``hosts_on_with_guests``: a host is on while it holds a guest (idle or
      not) and draws at least its idle power; CloudSim calls a host at 0 %
      CPU switched off and draws nothing for it.
    - ``shutdown_s``: a host whose last guest left draws idle power this long
      before it is off.
    - ``precopy``: a live migration's duration and pause follow QEMU's
      pre-copy: rounds at the bandwidth left to it while the guest dirties
      ``dirty_rate_mb_s``, until what is left fits in ``max_downtime_s`` (or
      ``max_rounds``); migrations that share a host's NIC share its bandwidth.
      Off: CloudSim's RAM / (BW x share).
    """

    interval_s: float = 300.0
    first_tick_s: float = 0.1
    horizon_s: float = 86_400.0
    migration_bw_share: float = 0.5
    source_degradation: float = 0.1
    destination_reservation: float = 0.1
    boot_delay_s: float = 0.0
    off_power_w: float = 0.0
    enforce_ram: bool = False
    remove_idle_guests: bool = True
    ram_overcommit: float = 1.0
    hosts_on_with_guests: bool = False
    shutdown_s: float = 0.0
    precopy: bool = False
    dirty_rate_mb_s: float = 12.5
    max_downtime_s: float = 0.3
    max_rounds: int = 30
    name: str = "cloudsim"


MODEL_PRESETS = ("cloudsim", "realistic")


def model_preset(name: str) -> SimModel:
    """The consolidation model by name: ``cloudsim`` (CloudSim 3.0.3, for parity) or ``realistic``.

    ``realistic`` -- what a fleet an operator runs does; each default's source:

    - memory is a hard limit (``enforce_ram``, ``ram_overcommit`` 1.0: hypervisors
      such as ESXi and KVM can overcommit memory, but fleets that care about
      latency do not);
    - a host boots in 180 s and shuts down in 60 s, drawing idle power meanwhile
      (server POST, firmware and OS boot of 2-4 minutes is typical for rack
      servers; DRS's own power management assumes minutes), and draws 10 W when
      off (the baseboard management controller's standby power, 5-15 W on
      current servers);
    - a guest at 0 % CPU keeps its reservation (a quiet VM is not a finished one);
    - live migrations follow pre-copy with QEMU's default 300 ms pause limit, a
      dirty rate of 100 Mbit/s (12.5 MB/s, the domain world's default per guest,
      ``model.domains.Guest``) and NIC bandwidth shared by the migrations in
      flight on it.
    """
    key = name.strip().lower()
    if key == "cloudsim":
        return SimModel()
    if key == "realistic":
        return SimModel(boot_delay_s=180.0, shutdown_s=60.0, off_power_w=10.0, enforce_ram=True,
                        ram_overcommit=1.0, remove_idle_guests=False, hosts_on_with_guests=True, precopy=True,
                        name="realistic")
    raise ValueError(f"unknown model preset {name!r} (expected one of {', '.join(MODEL_PRESETS)})")


# The two servers of the CloudSim PlanetLab experiments (SPECpower_ssj2008 results).
HP_ML110_G4 = HostType(
    "HP ProLiant ML110 G4", 1860.0, 2, 4096.0, 1000.0,
    PowerModel((86, 89.4, 92.6, 96, 99.5, 102, 106, 108, 112, 114, 117)),
)
HP_ML110_G5 = HostType(
    "HP ProLiant ML110 G5", 2660.0, 2, 4096.0, 1000.0,
    PowerModel((93.7, 97, 101, 105, 110, 116, 121, 125, 129, 133, 135)),
)
CLOUDSIM_GUEST_TYPES = (
    GuestType("high-cpu", 2500.0, 1, 870.0, 100.0),
    GuestType("extra-large", 2000.0, 1, 1740.0, 100.0),
    GuestType("small", 1000.0, 1, 1740.0, 100.0),
    GuestType("micro", 500.0, 1, 613.0, 100.0),
)


@dataclass(frozen=True)
class Fleet:
    """A concrete fleet: one type per host and per guest, plus the model knobs."""

    host_types: tuple[HostType, ...]
    host_type_of: np.ndarray  # int [hosts]
    guest_types: tuple[GuestType, ...]
    guest_type_of: np.ndarray  # int [guests]
    model: SimModel = field(default_factory=SimModel)

    @property
    def n_hosts(self) -> int:
        return len(self.host_type_of)

    @property
    def n_guests(self) -> int:
        return len(self.guest_type_of)

    def host_attr(self, name: str) -> np.ndarray:
        values = np.array([getattr(t, name) for t in self.host_types], dtype=np.float64)
        return values[self.host_type_of]

    def guest_attr(self, name: str) -> np.ndarray:
        values = np.array([getattr(t, name) for t in self.guest_types], dtype=np.float64)
        return values[self.guest_type_of]

    def power_tables(self) -> np.ndarray:
        """Watts at 0..100 % per host, [hosts, 11]."""
        tables = np.array([t.power.watts for t in self.host_types], dtype=np.float64)
        return tables[self.host_type_of]


def cloudsim_preset(n_guests: int, n_hosts: int = 800, model: SimModel | None = None) -> Fleet:
    """CloudSim's PlanetLab fleet: hosts alternate G4/G5; guest i gets type i // ceil(N/4)."""
    block = -(-n_guests // len(CLOUDSIM_GUEST_TYPES))
    return Fleet(
        host_types=(HP_ML110_G4, HP_ML110_G5),
        host_type_of=np.arange(n_hosts) % 2,
        guest_types=CLOUDSIM_GUEST_TYPES,
        guest_type_of=np.arange(n_guests) // max(block, 1),
        model=model or SimModel(),
    )


def preset_fleet(n_guests: int, model: str = "cloudsim") -> Fleet:
    """CloudSim's PlanetLab fleet under a named model preset (a picklable fleet factory with functools.partial)."""
    return cloudsim_preset(n_guests, model=model_preset(model))
