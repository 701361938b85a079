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

Anything more a backend can do is an optional capability, declared here as
a small runtime-checkable protocol; the loop, the applier and the faces ask
``isinstance(backend, Advances)``, never ``getattr``:

======================  =================================  =======================================================
protocol                member                             who uses it
======================  =================================  =======================================================
:class:`Advances`       ``advance(t)``                     the simulated clock moves the world (sim, CloudSim)
:class:`Finishes`       ``finish() -> dict``               the loop's report at the end of a run
:class:`KeepsMetrics`   ``metrics_row() -> dict``          the run's metrics so far, to the journal's ``meta``
:class:`Orders`         ``order(actions, limits, state)``  the backend orders a proposal itself (CloudSim)
:class:`Summarises`     ``summary() -> dict``              what ``presplit state`` shows, in its own words
:class:`ReportsReady`   ``ready_at(action)``               a resumed plan waits exactly as the one that died
:class:`ReplaysDemand`  ``demand_at(t)``                   a restarted controller's forecasts see the past again
:class:`HasConditions`  ``conditions``                     its own pre/post-conditions (not a ClusterState's)
:class:`Resumes`        ``resume(history, interval_s)``    rebuilt in memory from the journal's history (CloudSim)
:class:`Closes`         ``close()``                        a store or processes to release when the face ends
:class:`TakesChanges`   ``launch_guest``, ``add_window``   an operator's new guest or maintenance window (serve)
======================  =================================  =======================================================

A backend that wraps another must define the members it forwards (Python
3.12's ``isinstance`` on a protocol does not see ``__getattr__``). Errors a
backend cannot turn into a refused :class:`Receipt` are raised as
:class:`BackendError`.

The QEMU backend registers itself with :func:`register_backend` ("qemu");
until it does, asking for it fails with a clear message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, runtime_checkable

from presplit.errors import PresplitError
from presplit.plan.actions import ACTION_KINDS, REVERSIBLE_KINDS, Action
from presplit.registry import Registry

ALL_KINDS = ACTION_KINDS  # every registered action kind (presplit.plan.actions); a backend may do fewer


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
    reversible: tuple[str, ...] = REVERSIBLE_KINDS
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


# ------------------------------------------------------------------ optional capabilities
@runtime_checkable
class Advances(Protocol):
    """Time is simulated: the controller's clock moves the world to ``t``."""

    def advance(self, t: float) -> None: ...


@runtime_checkable
class Finishes(Protocol):
    """The run's final metrics, once the loop reaches its end."""

    def finish(self) -> dict: ...


@runtime_checkable
class KeepsMetrics(Protocol):
    """The run's metrics so far, keyed as ``presplit simulate``'s rows."""

    def metrics_row(self) -> dict: ...


@runtime_checkable
class Orders(Protocol):
    """Orders a proposal into an action plan itself (instead of :func:`presplit.plan.ordering.order_actions`)."""

    def order(self, actions, limits, state=None) -> Any: ...


@runtime_checkable
class Summarises(Protocol):
    """Hosts, domains and guests as JSON, in the backend's own words."""

    def summary(self) -> dict: ...


@runtime_checkable
class ReportsReady(Protocol):
    """When an action it carried out is (or was) ready; None if it does not know."""

    def ready_at(self, action: Action) -> float | None: ...


@runtime_checkable
class ReplaysDemand(Protocol):
    """The demand it fed at a past time ``t``: (CPU MIPS per guest, disk/network IO or None)."""

    def demand_at(self, t: float) -> tuple: ...


@runtime_checkable
class HasConditions(Protocol):
    """Its own pre- and post-conditions (an object with the interface of :mod:`presplit.apply.conditions`)."""

    conditions: Any


@runtime_checkable
class Resumes(Protocol):
    """Rebuilt in memory from the journal's history (what ``Journal.history()`` returns); returns the time the
    world stands at."""

    def resume(self, history, interval_s: float | None = None) -> float: ...


@runtime_checkable
class TakesChanges(Protocol):
    """Takes an operator's changes of the world itself: a new guest (pending, fed by ``cpu``) and a window."""

    def launch_guest(self, guest, cpu, mem_mb=None) -> int: ...

    def add_window(self, window) -> None: ...


@runtime_checkable
class Closes(Protocol):
    """Holds a store or processes that the face releases when it ends."""

    def close(self) -> Any: ...


def _qemu(*args, **kwargs) -> Backend:
    # Imported only when a QEMU backend is built, so runs on the simulator never load QEMU code.
    from presplit.backends.qemu.backend import factory

    return factory(*args, **kwargs)


# The same registry shape as policies' and forecasters' (presplit.registry), with entry points
# (group ``presplit.backends``) so that an installed package can add a backend. The simulated world
# is not a factory here: it is the default world of ``run``/``serve``, built from a scenario and a store.
BACKENDS: Registry[Callable[..., Backend]] = Registry("backend", group="presplit.backends", error=BackendError)
BACKENDS.register("qemu", _qemu, summary="real hosts: QEMU guests, cgroup split domains, network-namespace hosts")


def register_backend(name: str, factory: Callable[..., Backend], *, summary: str = "") -> None:
    """Register a backend factory by name; a second registration of one name is refused."""
    BACKENDS.register(name, factory, summary=summary)


def backend_factory(name: str) -> Callable[..., Backend]:
    """The factory registered as ``name`` (a built-in or an installed entry point); BackendError if none."""
    return BACKENDS.get(name)
