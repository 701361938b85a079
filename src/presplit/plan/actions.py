"""Actions as data: what a policy may ask the world to do, with its reason and numbers.

Every action is a frozen dataclass carrying ``reason`` (one sentence a person
can read) and ``details`` (the numbers behind the decision: forecasts,
utilisations, thresholds). What an action *means* -- its preconditions, its
effect and its cost -- is defined in one place only,
:func:`presplit.plan.transition.apply_action`. Outcomes are values too:
:class:`ActionOutcome` when applied, :class:`ActionRefused` when a
precondition fails (the state is then returned unchanged).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from presplit.model.domains import Service


@dataclass(frozen=True)
class Action:
    reason: str = field(default="", kw_only=True)
    details: dict = field(default_factory=dict, kw_only=True, compare=False, hash=False)

    @property
    def kind(self) -> str:
        return type(self).__name__


@dataclass(frozen=True)
class SplitDomain(Action):
    """Carve new domains of ``sizes`` [(cpu_mips, mem_mb), ...] out of ``domain``.

    The remainder stays with ``domain`` (and its guests). New domains run
    ``services`` (default: the model's minimal set) and are ``provisioning``
    until ``now + provision_s``.
    """

    domain: int
    sizes: tuple[tuple[float, float], ...]
    services: tuple[Service, ...] | None = None


@dataclass(frozen=True)
class ResizeDomain(Action):
    """Set ``domain``'s allotment, taking the difference from / giving it to sibling ``donor``.

    ``services``, when given, replaces the domain's service set (e.g. adds an
    optional service as demand is predicted). ``donor == domain`` changes the
    services only, inside the same allotment (a host of one domain has no sibling).
    """

    domain: int
    cpu_mips: float
    mem_mb: float
    donor: int
    services: tuple[Service, ...] | None = None


@dataclass(frozen=True)
class MergeDomains(Action):
    """Merge ``domains`` (same host) into the first; its guests are re-pinned, the others become ``merged``."""

    domains: tuple[int, ...]


@dataclass(frozen=True)
class MoveGuest(Action):
    """Re-pin a guest to a sibling domain of the same host: no memory copy, no downtime.

    ``carry_mips`` / ``carry_mb`` move that much allotment from the source domain
    to the destination together with the guest (its CPU share and memory follow
    it), so a full sibling can take it; the source must still hold what stays.
    """

    guest: int
    to_domain: int
    carry_mips: float = 0.0
    carry_mb: float = 0.0


@dataclass(frozen=True)
class MigrateGuest(Action):
    """Live-migrate a guest to a domain of another host (pre-copy over the fabric).

    ``max_downtime_s`` is the stop-and-copy pause this migration may take
    (QEMU's ``downtime-limit``); None: the model's. A smaller limit buys a
    shorter pause with more pre-copy rounds (bounded by the model's ``max_rounds``).
    """

    guest: int
    to_domain: int
    max_downtime_s: float | None = None


@dataclass(frozen=True)
class PlaceGuest(Action):
    """Start an arrived (pending) guest in a domain."""

    guest: int
    domain: int


@dataclass(frozen=True)
class RestartGuest(Action):
    """Restart a guest a failure stopped (its host or its domain's services crashed) in a usable domain.

    The guest is down from the failure until it has booted in ``to_domain``
    (the model's ``guest_boot_s`` after the restart); ``to_domain`` may be the
    domain it failed in, once that domain runs again. The reservation moves with it.
    """

    guest: int
    to_domain: int


@dataclass(frozen=True)
class PowerOn(Action):
    host: int


@dataclass(frozen=True)
class PowerOff(Action):
    host: int


@dataclass(frozen=True)
class SetMigrationShare(Action):
    """Set the share of ``host``'s fabric bandwidth live migrations may take (the fabric's QoS split).

    The rest is kept for guest traffic. A migration runs at its path's
    bottleneck times the smaller share of its two ends; migrations in flight
    keep the rate they started with.
    """

    host: int
    share: float


@dataclass(frozen=True)
class PatchDomain(Action):
    """Patch a domain: its services are down for ``duration_s``; guests still inside go down too."""

    domain: int
    duration_s: float | None = None  # None: the model's patch_duration_s


@dataclass(frozen=True)
class Cost:
    """What an action costs: time until done, guest downtime (sum over guests), fabric bytes, energy."""

    seconds: float = 0.0
    downtime_s: float = 0.0
    fabric_gb: float = 0.0
    energy_j: float = 0.0


@dataclass(frozen=True)
class ActionOutcome:
    """An applied action: when, its cost, the guests it touched, and the model's numbers."""

    action: Action
    time: float
    cost: Cost
    guests: tuple[int, ...] = ()
    details: dict = field(default_factory=dict, compare=False)
    ok: bool = field(default=True, init=False)


@dataclass(frozen=True)
class ActionRefused:
    """A precondition failed; nothing changed."""

    action: Action
    time: float
    reason: str
    ok: bool = field(default=False, init=False)
