"""Ordering: a proposal's actions -> an :class:`ActionPlan`, a DAG with concurrency caps, as data.

Watcher calls this the *planner*: the strategy said what to do, the planner
says in what order and how many at once. A policy returns its actions in a
sequence that is valid when applied one by one (it built them on a what-if
copy of the state); :func:`order_actions` keeps exactly the orderings that
sequence relies on and drops the others, so independent actions may run
concurrently:

- the same guest touched twice: the second waits for the first;
- a domain's lifecycle (split, resize, merge, patch) is exclusive: it waits
  for every earlier action in or out of that domain, and later ones wait for
  it -- so a guest is out before its domain is patched or merged, and a
  domain made by a split exists (is provisioned) before a guest moves in;
- an action that takes room in a domain waits for earlier actions that free
  room there (a re-pin out, a migration out, a merge);
- power on/off is exclusive on its host;
- splits are chained, because the ids of new domains are handed out in the
  order splits are applied.

Concurrency caps (:class:`Limits`) are data in the plan; the applier enforces
them: actions running on one host (as source or destination), on one fabric
link, and in total. A *link* is the pair of racks a cross-rack migration
crosses (their uplinks are the shared, oversubscribed part of a leaf/spine
fabric), or the host pair inside a rack.

Every check on a plan raises :class:`PlanError` naming the action (its index
and kind) and the problem; :func:`validate_plan` checks plans that were built
or edited by hand (unknown dependencies, cycles, guests or domains that do
not exist, negative caps) before anything is applied.
"""

from __future__ import annotations

import operator
from collections import defaultdict
from dataclasses import dataclass, field

from presplit.errors import InputError
from presplit.plan.actions import Action, Touch


class PlanError(InputError):
    """A plan or its limits are invalid; ``index`` is the offending action (or None for the plan)."""

    def __init__(self, message: str, index: int | None = None, action: Action | None = None) -> None:
        self.index, self.action = index, action
        where = f"action {index} ({action.kind})" if action is not None else (
            f"action {index}" if index is not None else "plan")
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class Limits:
    """Concurrency caps: running actions per host, per fabric link, in total (None = no cap)."""

    per_host: int | None = 2
    per_link: int | None = None
    total: int | None = 8

    def __post_init__(self) -> None:
        for name in ("per_host", "per_link", "total"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
                raise PlanError(f"cap {name}={v!r} is invalid (expected a whole number >= 1, or none)")


@dataclass(frozen=True)
class PlannedAction:
    index: int
    action: Action
    deps: tuple[int, ...] = ()
    hosts: tuple[int, ...] = ()  # hosts the caps count this action on
    link: tuple | None = None  # fabric link key for the per-link cap


@dataclass(frozen=True)
class ActionPlan:
    actions: tuple[PlannedAction, ...]
    limits: Limits = field(default_factory=Limits)

    def __len__(self) -> int:
        return len(self.actions)

    def dependents(self) -> dict[int, list[int]]:
        out: dict[int, list[int]] = defaultdict(list)
        for pa in self.actions:
            for d in pa.deps:
                out[d].append(pa.index)
        return out


# ------------------------------------------------------------------ resources
def _touch(state, a: Action, next_domain: int) -> Touch:
    """What ``a`` occupies, as its kind declares it (:meth:`Action.touches`)."""
    touch = a.touches(state, next_domain) if isinstance(a, Action) else None
    if touch is None:
        raise PlanError(f"unknown action type {type(a).__name__}", None, a)
    return touch


def order_actions(actions, limits: Limits | None = None, state=None) -> ActionPlan:
    """Order a proposal (a list of actions, valid applied in sequence) into an :class:`ActionPlan`.

    ``state`` (the observed :class:`ClusterState`) lets the ordering know each
    guest's source domain and each domain's host; without it only the
    dependencies named by the actions themselves are found, and caps count
    nothing per host.
    """
    limits = limits or Limits()
    if state is not None:
        validate_actions(actions, state)
    last_guest: dict[int, int] = {}
    excl: dict[int, int] = {}  # domain -> last exclusive action
    since_excl: dict[int, list[int]] = defaultdict(list)  # domain -> actions in/out since
    frees: dict[int, list[int]] = defaultdict(list)  # domain -> actions freeing room since
    host_excl: dict[int, int] = {}
    host_since: dict[int, list[int]] = defaultdict(list)
    last_split = None
    next_domain = len(state.domains) if state is not None else 0
    out = []
    for i, a in enumerate(actions):
        guests, uses, frees_here, excl_doms, excl_hosts, hosts, link, n_new = _touch(state, a, next_domain)
        deps: set[int] = set()
        for g in guests:
            if g in last_guest:
                deps.add(last_guest[g])
            last_guest[g] = i
        for d in uses | frees_here:
            if d in excl:
                deps.add(excl[d])
        for d in uses:
            deps.update(frees[d])
        for d in excl_doms:
            if d in excl:
                deps.add(excl[d])
            deps.update(since_excl.pop(d, ()))
            frees.pop(d, None)
            excl[d] = i
        for d in uses | frees_here:
            since_excl[d].append(i)
        for d in frees_here:
            frees[d].append(i)
        for h in hosts:
            if h in host_excl:
                deps.add(host_excl[h])
        for h in excl_hosts:
            deps.update(host_since.pop(h, ()))
            host_excl[h] = i
        for h in hosts:
            host_since[h].append(i)
        if n_new is not None:  # it hands out domain ids: in the order the proposal applied it
            if last_split is not None:
                deps.add(last_split)
            last_split = i
            next_domain += n_new
        deps.discard(i)
        out.append(PlannedAction(i, a, tuple(sorted(deps)), tuple(dict.fromkeys(hosts)), link))
    return ActionPlan(tuple(out), limits)


# ------------------------------------------------------------------ validation
def _index(x) -> bool:
    """An integer id (Python or numpy int, not bool)."""
    try:
        return not isinstance(x, bool) and operator.index(x) == x
    except TypeError:
        return False


def validate_actions(actions, state) -> None:
    """Every guest, domain and host an action names exists in ``state`` (domains may come from earlier splits)."""
    n_domains = len(state.domains)
    for i, a in enumerate(actions):
        if not isinstance(a, Action):
            raise PlanError(f"{a!r} is not an action (expected one of presplit.plan.actions)", i)
        g = getattr(a, "guest", None)
        if g is not None and not (_index(g) and 0 <= g < state.n_guests):
            raise PlanError(f"names guest {g!r}, which does not exist (the fleet has guests 0..{state.n_guests - 1})",
                            i, a)
        doms = [getattr(a, k) for k in ("domain", "to_domain", "donor") if hasattr(a, k)]
        doms += list(getattr(a, "domains", ()))
        for d in doms:
            if not (_index(d) and 0 <= d < n_domains):
                raise PlanError(f"names domain {d!r}, which does not exist (domains 0..{n_domains - 1} exist "
                                "when the plan starts, plus those its splits create before)", i, a)
        h = getattr(a, "host", None)
        if h is not None and not (_index(h) and 0 <= h < state.n_hosts):
            raise PlanError(f"names host {h!r}, which does not exist (hosts 0..{state.n_hosts - 1})", i, a)
        touch = a.touches(None, n_domains)
        if touch is not None and touch.new_domains:
            n_domains += touch.new_domains


def validate_plan(plan: ActionPlan, state=None) -> None:
    """Indices, dependencies (known, earlier or later, no cycle), limits, and names against ``state``."""
    Limits(**{k: getattr(plan.limits, k) for k in ("per_host", "per_link", "total")})
    ids = [pa.index for pa in plan.actions]
    if ids != list(range(len(ids))):
        raise PlanError(f"action indices must be 0..{len(ids) - 1} in order, got {ids[:10]}")
    for pa in plan.actions:
        for d in pa.deps:
            if not isinstance(d, int) or not 0 <= d < len(ids):
                raise PlanError(f"depends on action {d!r}, which is not in the plan", pa.index, pa.action)
            if d == pa.index:
                raise PlanError("depends on itself", pa.index, pa.action)
    cycle = find_cycle(plan)
    if cycle:
        path = " -> ".join(str(c) for c in cycle)
        raise PlanError(f"cyclic dependencies: {path}", cycle[0], plan.actions[cycle[0]].action)
    if state is not None:
        validate_actions([pa.action for pa in plan.actions], state)


def find_cycle(plan: ActionPlan) -> list[int]:
    """A dependency cycle as a list of indices (first repeated at the end), or [] (iterative DFS)."""
    deps = {pa.index: pa.deps for pa in plan.actions}
    colour = dict.fromkeys(deps, 0)
    for root in deps:
        if colour[root]:
            continue
        stack, path = [(root, iter(deps[root]))], [root]
        colour[root] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                colour[node] = 2
                stack.pop()
                path.pop()
            elif colour[nxt] == 1:
                return path[path.index(nxt):] + [nxt]
            elif colour[nxt] == 0:
                colour[nxt] = 1
                stack.append((nxt, iter(deps[nxt])))
                path.append(nxt)
    return []
