"""Pre- and post-conditions of every action on an observed ClusterState.

Watcher gives every action a pre- and a post-condition; here they are pure
functions of what the backend *observes*, declared by each action kind
(:mod:`presplit.plan.actions`) and reached through these entry points:

- :func:`precondition`: the action applies to the observed state -- the same
  what-if through :func:`presplit.plan.apply_action` that policies use, so
  one function defines what an action needs;
- :func:`capture`: what the applier journals *before* running an action (the
  guest's domain and status, the domain's allotment, ...). It is what a
  revert needs, and what lets reconciliation tell "never ran" from "ran";
- :func:`postcondition`: after running (or after a crash), is the action
  ``done`` (guest where it should be, running; domain provisioned; host
  ready), ``pending`` (a migration in flight, a domain provisioning),
  ``not_run`` (the world is as captured before) or ``failed`` (anything else):
  a :class:`~presplit.plan.actions.Verdict`, a ``str`` enum whose values are
  those words, so journals and JSON hold the same strings as before.

Backends whose ``observe()`` returns something else (the CloudSim adapter)
provide ``precondition``/``capture``/``postcondition`` methods of their own;
:func:`conditions_for` picks them.
"""

from __future__ import annotations

from presplit.backends.base import HasConditions
from presplit.plan import apply_action
from presplit.plan.actions import Verdict


def precondition(state, action) -> str | None:
    """None when ``action`` applies to ``state``, else the reason it does not."""
    _, out = apply_action(state, action)
    return None if out.ok else out.reason


def capture(state, action) -> dict:
    """What the world looks like, for this action, before it runs (JSON-able): its kind's ``capture``."""
    return action.capture(state)


def postcondition(state, action, before: dict) -> tuple[Verdict, str]:
    """(verdict, why) -- see the module docstring; its kind's ``postcondition``."""
    return action.postcondition(state, before)


def invariant_problems(state) -> list[str]:
    from presplit.plan.invariants import violations

    return violations(state)


class Conditions:
    """The ClusterState conditions as an object (what :func:`conditions_for` returns by default)."""

    precondition = staticmethod(precondition)
    capture = staticmethod(capture)
    postcondition = staticmethod(postcondition)
    invariants = staticmethod(invariant_problems)


def conditions_for(backend):
    """The backend's own conditions when it has them (``backend.conditions``), else the ClusterState ones."""
    return backend.conditions if isinstance(backend, HasConditions) else Conditions


__all__ = ["Verdict", "precondition", "capture", "postcondition", "conditions_for", "Conditions"]
