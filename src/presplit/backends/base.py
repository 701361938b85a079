"""The one small interface between the applier and any infrastructure: :class:`Backend`.

Four calls, as httpx has one transport interface with a mock beside the real
one:

- ``capabilities()`` -- what this backend can do, as data (:class:`Capabilities`);
- ``observe()`` -- what is running where *now*, read from the infrastructure
  (a :class:`~presplit.model.cluster.ClusterState` for the split-domain world);
- ``execute(action)`` -- start one action; returns a :class:`Receipt` (accepted
  or refused, and when it should be done). Long actions (a live migration, a
  domain being provisioned) are *started* here; the applier then observes
  until the post-condition holds;
- ``revert(action, before)`` -- undo one action as far as the world allows,
  given what was recorded before it ran (``before``, from
  :func:`presplit.apply.conditions.capture`).

A backend whose time is simulated also has ``advance(t)`` (the simulated
clock calls it); real hosts move on their own. Errors a backend cannot turn
into a refused :class:`Receipt` are raised as :class:`BackendError`.

The QEMU backend registers itself with :func:`register_backend` ("qemu");
until it does, asking for it fails with a clear message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, runtime_checkable

from presplit.errors import PresplitError
from presplit.plan.actions import Action

ALL_KINDS = ("SplitDomain", "ResizeDomain", "MergeDomains", "MoveGuest", "MigrateGuest", "PlaceGuest", "PowerOn",
             "PowerOff", "PatchDomain", "SetMigrationShare")


class BackendError(PresplitError, RuntimeError):
    """The backend could not carry out a call (not a refused precondition: that is a Receipt)."""


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do, as data.

    ``kinds``: action kinds it executes; ``reversible``: kinds it can revert;
    ``simulated``: time is driven by the controller's clock through
    ``advance``; ``interval_s``/``start_s``: its natural control tick and
    first tick time; ``max_concurrent``: a hard cap of its own (None = none).
    """

    name: str
    kinds: tuple[str, ...] = ALL_KINDS
    reversible: tuple[str, ...] = ("MoveGuest", "MigrateGuest", "PlaceGuest", "PowerOn", "PowerOff", "SplitDomain",
                                   "ResizeDomain", "SetMigrationShare")
    simulated: bool = False
    interval_s: float = 300.0
    start_s: float = 0.0
    max_concurrent: int | None = None


@dataclass(frozen=True)
class Receipt:
    """The answer to execute/revert: accepted (``ok``) or refused (``reason``); ``ready_at``: when done."""

    ok: bool
    reason: str = ""
    time: float = 0.0
    ready_at: float = 0.0
    details: dict = field(default_factory=dict)


@runtime_checkable
class Backend(Protocol):
    def capabilities(self) -> Capabilities: ...

    def observe(self) -> Any: ...

    def execute(self, action: Action) -> Receipt: ...

    def revert(self, action: Action, before: dict) -> Receipt: ...


@runtime_checkable
class SimulatedBackend(Backend, Protocol):
    def advance(self, t: float) -> None: ...


BACKENDS: dict[str, Callable[..., Backend]] = {}


def register_backend(name: str, factory: Callable[..., Backend]) -> None:
    """Register a backend factory by name; a second registration of one name is refused."""
    if name in BACKENDS:
        raise ValueError(f"backend {name!r} is already registered")
    BACKENDS[name] = factory


def backend_factory(name: str) -> Callable[..., Backend]:
    if name == "qemu" and name not in BACKENDS:
        # The real backend registers itself when imported; imported only when asked for,
        # so runs on the simulator never load QEMU code.
        import presplit.backends.qemu.backend  # noqa: F401
    if name in BACKENDS:
        return BACKENDS[name]
    known = ", ".join(["sim", "qemu", *(k for k in BACKENDS if k != "qemu")])
    raise BackendError(f"unknown backend {name!r}; known: {known}")
