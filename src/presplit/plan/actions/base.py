"""What every action kind shares: the :class:`Action` base, outcomes, verdicts, preconditions, the registry.

An action kind is a frozen dataclass that subclasses :class:`Action` and is
registered with :func:`register`. Its fields are its data (journalled and
decoded by name, so they never change name or order); its methods are its
meaning, in one place (see the package docstring for the list). The base
class gives the defaults an unknown or irreversible kind needs: ``apply``
refuses, ``postcondition`` fails, ``revert`` says it cannot, ``touches`` is
None (the ordering refuses it).

:func:`apply_action` is the one dispatch: it runs the kind's ``apply`` and
turns a :class:`Refused` into an :class:`ActionRefused` with the state
unchanged, so a kind never half-applies. The precondition helpers
(``_check``, ``_domain``, ``_usable``, ``_guest``, ``_fits``, ...) raise
:class:`Refused` with the messages policies, journals and tests read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import ClassVar, NamedTuple

import numpy as np

from presplit.model.cluster import ClusterState
from presplit.model.domains import GUEST_STATES, MIGRATING, RUNNING, Domain

EPS = 1e-6


class Verdict(StrEnum):
    """What a post-condition says about an action in the world (the values are what journals hold)."""

    DONE = "done"  # the world shows the action's effect
    PENDING = "pending"  # under way: a migration in flight, a domain provisioning, a guest booting
    NOT_RUN = "not_run"  # the world is as captured before the action
    FAILED = "failed"  # anything else


@dataclass(frozen=True)
class Cost:
    """What an action costs: time until done, guest downtime (sum over guests), fabric bytes, energy."""

    seconds: float = 0.0
    downtime_s: float = 0.0
    fabric_gb: float = 0.0
    energy_j: float = 0.0


class Touch(NamedTuple):
    """What an action occupies, for the ordering (:mod:`presplit.plan.ordering`) and a policy's what-if.

    ``guests`` it acts on; domains where it takes room (``uses``) or frees room
    (``frees``); domains whose lifecycle it changes (``excl_domains``: every
    earlier action in or out of them comes first, every later one waits) and
    hosts it holds exclusively (``excl_hosts``); the ``hosts`` the concurrency
    caps count it on and the fabric ``link`` it crosses; ``new_domains``: how
    many domain ids it hands out (None: it never creates domains; those that
    do are chained, since ids are handed out in the order they are applied).
    """

    guests: frozenset = frozenset()
    uses: frozenset = frozenset()
    frees: frozenset = frozenset()
    excl_domains: frozenset = frozenset()
    excl_hosts: frozenset = frozenset()
    hosts: tuple = ()
    link: tuple | None = None
    new_domains: int | None = None


@dataclass(frozen=True)
class Action:
    """An action kind's base: a reason a person can read and the numbers behind it (``details``)."""

    reason: str = field(default="", kw_only=True)
    details: dict = field(default_factory=dict, kw_only=True, compare=False, hash=False)

    reversible: ClassVar[bool] = False  # the simulated world can undo it (``revert``)

    @property
    def kind(self) -> str:
        return type(self).__name__

    def apply(self, state: ClusterState) -> tuple[ClusterState, Cost, tuple, dict]:
        """Its effect at ``state.now``: (new state, cost, guests touched, the model's numbers); raises Refused."""
        raise Refused(f"unknown action type {self.kind}")

    def capture(self, state: ClusterState) -> dict:
        """What the world looks like, for this action, before it runs (JSON-able; journalled)."""
        return record(state)

    def postcondition(self, state: ClusterState, before: dict) -> tuple[Verdict, str]:
        """(verdict, why) on an observed state, given what :meth:`capture` recorded."""
        return Verdict.FAILED, f"no post-condition for {self.kind}"

    def revert(self, state: ClusterState, before: dict) -> tuple[ClusterState, bool, str]:
        """Undo it in the simulated world, as far as the world still shows it: (state, ok, reason)."""
        return state, False, f"{self.kind} cannot be reverted"

    def touches(self, state: ClusterState | None, next_domain: int) -> Touch | None:
        """What it occupies (``state`` None: only what the action names; ``next_domain``: the next new id)."""
        return None


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


class Refused(Exception):
    """A precondition failed (raised by a kind's ``apply``; :func:`apply_action` turns it into ActionRefused)."""


# ----------------------------------------------------------------- registry
KINDS: dict[str, type[Action]] = {}


def register(cls: type[Action]) -> type[Action]:
    """Make ``cls`` an action kind: the journal decodes it by name and backends list it.

    Explicit rather than automatic for every subclass: the simulator's failure
    events (:mod:`presplit.plan.failures`) are actions too, but no policy may
    ask for them and no journal holds them.
    """
    if cls.__name__ in KINDS:
        raise ValueError(f"action kind {cls.__name__} is already registered")
    KINDS[cls.__name__] = cls
    return cls


# ----------------------------------------------------------------- the one dispatch
def apply_action(state: ClusterState, action: Action):
    """Apply ``action`` at ``state.now`` through its kind: (new state, ActionOutcome) or (same state, ActionRefused)."""
    if not isinstance(action, Action):
        return state, ActionRefused(action, state.now, f"unknown action type {type(action).__name__}")
    try:
        new, cost, guests, details = action.apply(state)
    except Refused as why:
        return state, ActionRefused(action, state.now, str(why))
    return new, ActionOutcome(action, state.now, cost, tuple(int(g) for g in guests), details)


def undo_via(state: ClusterState, undo: Action) -> tuple[ClusterState, bool, str]:
    """A revert that is an ordinary action (re-pin back, power off again, ...): applied, or refused as it is."""
    new, out = apply_action(state, undo)
    return (new, True, f"undone by {undo.kind}") if out.ok else (state, False, f"{undo.kind} refused: {out.reason}")


# ----------------------------------------------------------------- preconditions
def _check(ok: bool, why: str) -> None:
    if not ok:
        raise Refused(why)


def _domain(state: ClusterState, d: int) -> Domain:
    _check(isinstance(d, (int, np.integer)) and 0 <= d < len(state.domains), f"no domain {d}")
    dom = state.domains[int(d)]
    _check(dom.live, f"domain {d} is merged")
    return dom


def _usable(state: ClusterState, d: int) -> Domain:
    """A domain that may take guests now: active, provisioned, on a ready host."""
    dom = _domain(state, d)
    _check(dom.state == "active", f"domain {d} is {dom.state}, not active")
    _check(dom.ready_at <= state.now, f"domain {d} is not ready until t={dom.ready_at:g}")
    _check(state.host_ready(dom.host), f"host {dom.host} of domain {d} is off or booting")
    return dom


def _guest(state: ClusterState, g: int, status: int, what: str) -> int:
    _check(isinstance(g, (int, np.integer)) and 0 <= g < state.n_guests, f"no guest {g}")
    _check(int(state.guest_status[g]) == status, f"guest {g} is {state.guest(int(g)).state}, not {what}")
    return int(g)


def _fits(state: ClusterState, g: int, d: int) -> None:
    free_mips, free_mb = state.free(d)
    need_mips, need_mb = state.guest_reserve[g]
    _check(need_mips <= free_mips + EPS and need_mb <= free_mb + EPS,
           f"guest {g} needs {need_mips:.0f} MIPS / {need_mb:.0f} MB, domain {d} has "
           f"{free_mips:.0f} MIPS / {free_mb:.0f} MB free")


def _no_flights(state: ClusterState, d: int) -> None:
    out = (state.guest_domain == d) & (state.guest_status == MIGRATING)
    _check(not out.any() and not (state.guest_dest == d).any(), f"domain {d} has migrations in flight")


def _holds(state: ClusterState, dom: Domain, cpu: float, mem: float, services) -> None:
    over_mips, over_mb = sum(s.cpu_mips for s in services), sum(s.mem_mb for s in services)
    res_mips, res_mb = state.reserved[dom.id] if dom.id < len(state.domains) else (0.0, 0.0)
    _check(cpu - over_mips >= res_mips - EPS and mem - over_mb >= res_mb - EPS and cpu > over_mips
           and mem > over_mb, f"domain {dom.id} would hold {cpu:.0f} MIPS / {mem:.0f} MB, needs more than "
           f"services {over_mips:.0f} / {over_mb:.0f} plus reserved {res_mips:.0f} / {res_mb:.0f}")


def _shift_reserved(before: ClusterState, after: ClusterState, g: int, src: int, dst: int) -> ClusterState:
    """Hand ``after`` its reservation table: ``before``'s with guest g's share moved from src to dst.

    A guest move changes two rows; recomputing the table from every guest would
    cost a pass over the whole fleet per action (src or dst may be -1: none).
    """
    table = before.reserved.copy()
    share = before.guest_reserve[g]
    if src >= 0:
        table[src] -= share
    if dst >= 0:
        table[dst] += share
    after.__dict__["reserved"] = table
    return after


def _set(arr: np.ndarray, idx, value) -> np.ndarray:
    out = arr.copy()
    out[idx] = value
    return out


def _host_of(state: ClusterState | None, d) -> int | None:
    """The host of domain ``d``, or None (no state, or no such domain)."""
    return state.domains[d].host if state is not None and 0 <= d < len(state.domains) else None


def _source(state: ClusterState | None, g) -> int | None:
    """The domain guest ``g`` is in now (-1: unplaced), or None without a state or such a guest."""
    return int(state.guest_domain[g]) if state is not None and 0 <= g < state.n_guests else None


def _on(h) -> tuple:
    """The hosts tuple of a Touch: ``(h,)``, or () when the host is unknown."""
    return (h,) if h is not None else ()


# ----------------------------------------------------------------- capture
def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def record(state: ClusterState, *, guest=None, domains: tuple[tuple[str, int], ...] = (), host=None) -> dict:
    """The capture layout every kind shares (journals hold it; reconciliation and reverts read it).

    Always the time and the domain count (a split's new ids start there);
    for ``guest``: its domain and status; for each ``(key, domain)``: its
    allotment, patch start and services as ``<key>_alloc`` and so on; for
    ``host``: whether it is on and its migration share. Ids that do not
    exist are left out (the action will be refused anyway).
    """
    before: dict = {"time": float(state.now), "n_domains": len(state.domains)}
    if guest is not None and 0 <= guest < state.n_guests:
        before.update(guest_domain=int(state.guest_domain[guest]), guest_status=int(state.guest_status[guest]))
    for key, d in domains:
        if d is not None and 0 <= d < len(state.domains):
            dom = state.domains[d]
            before[key + "_alloc"] = [dom.cpu_mips, dom.mem_mb]
            before[key + "_patch_started"] = _finite(dom.patch_started)
            before[key + "_services"] = [s.name for s in dom.services]
    if host is not None and 0 <= host < state.n_hosts:
        before["host_on"] = bool(state.host_on[host])
        before["host_mig_share"] = float(state.host_mig_share[host])
    return before


def _status(code: int) -> str:
    return GUEST_STATES[code]


# ----------------------------------------------------------------- guests that change domain
def _arrived(state: ClusterState, g: int, want: int, before: dict, *, in_flight: bool = False):
    """Post-condition of putting guest ``g`` in domain ``want`` (a place, re-pin or migration).

    ``in_flight``: a migration into ``want`` still copying is ``pending``.
    """
    dom, dest, st = int(state.guest_domain[g]), int(state.guest_dest[g]), int(state.guest_status[g])
    if dom == want and st == RUNNING:
        return Verdict.DONE, f"guest {g} runs in domain {want}"
    if in_flight and st == MIGRATING and dest == want:
        return Verdict.PENDING, f"guest {g} migrating to domain {want}"
    if dom == before.get("guest_domain") and st == before.get("guest_status") and dest < 0:
        return Verdict.NOT_RUN, f"guest {g} still where it was (domain {dom})"
    return Verdict.FAILED, f"guest {g} is in domain {dom} ({_status(st)}), expected domain {want} running"


def _move_back(state: ClusterState, action, before: dict):
    """Revert of a re-pin or a migration that landed: the same kind back to the recorded domain."""
    g, src = action.guest, before.get("guest_domain", -1)
    if int(state.guest_domain[g]) == action.to_domain and int(state.guest_status[g]) == RUNNING and src >= 0:
        # replace() keeps any other field (an allotment carried along goes back with the guest)
        return undo_via(state, replace(action, to_domain=src, reason=f"revert of {action.kind}"))
    return state, True, "guest not at the destination: nothing to undo"
