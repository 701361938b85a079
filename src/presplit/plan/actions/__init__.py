"""Actions: what a policy may ask the world to do -- one module per kind, each the kind's one home.

Every action is a frozen dataclass carrying ``reason`` (one sentence a person
can read) and ``details`` (the numbers behind the decision: forecasts,
utilisations, thresholds), plus its own fields (journalled and decoded by
name, :mod:`presplit.plan.codec`; never renamed or reordered). Each kind's
module declares, on the class, everything the kind means:

- ``apply(state)``: its preconditions and its effect on a
  :class:`~presplit.model.cluster.ClusterState` -- (new state, cost, guests
  touched, the model's numbers) -- raising :class:`Refused` when a
  precondition fails. :func:`apply_action` (also
  :func:`presplit.plan.transition.apply_action`) runs it and returns an
  :class:`ActionOutcome` or, with the state unchanged, an :class:`ActionRefused`;
- ``capture(state)``: what the applier journals before running it (what a
  revert needs, what tells "never ran" from "ran");
- ``postcondition(state, before)``: a :class:`Verdict` (done, pending,
  not_run, failed) and why, on an observed state;
- ``revert(state, before)``: its undo in the simulated world, targeted (it
  touches only what the action touched, as far as the world still shows it);
  ``reversible`` says whether there is one;
- ``touches(state, next_domain)``: the guests, domains, hosts and fabric link
  it occupies (:class:`Touch`), for the ordering and a policy's what-if.

Why methods on the dataclass rather than a companion class per kind: the
data and its meaning are then one object, found in one file, and every
caller dispatches the same way (``action.apply(state)``), as OpenStack
Watcher's actions carry execute/revert/pre/post; the dataclass stays a value
(the methods add no state, so equality, hashing and the journal's encoding
are the fields alone). A backend keeps only how to do a kind for real (its
``_do_<Kind>``).

``ACTION_KINDS`` names every kind, ``REVERSIBLE_KINDS`` those the simulated
world can revert, ``KINDS`` maps names to classes (the journal decodes by it).
Adding a kind: one new module here, imported below, plus the backends' do-it
methods (``docs/architecture.md``, "Action kinds: one home each", walks
through :class:`ResizeGuest`).
"""

from presplit.plan.actions.base import (
    KINDS,
    Action,
    ActionOutcome,
    ActionRefused,
    Cost,
    Refused,
    Touch,
    Verdict,
    apply_action,
    register,
)
from presplit.plan.actions.split_domain import SplitDomain
from presplit.plan.actions.resize_domain import ResizeDomain
from presplit.plan.actions.merge_domains import MergeDomains
from presplit.plan.actions.move_guest import MoveGuest
from presplit.plan.actions.migrate_guest import MigrateGuest
from presplit.plan.actions.place_guest import PlaceGuest
from presplit.plan.actions.power_on import PowerOn
from presplit.plan.actions.power_off import PowerOff
from presplit.plan.actions.patch_domain import PatchDomain
from presplit.plan.actions.set_migration_share import SetMigrationShare
from presplit.plan.actions.restart_guest import RestartGuest
from presplit.plan.actions.resize_guest import ResizeGuest

ACTION_KINDS: tuple[str, ...] = tuple(KINDS)
REVERSIBLE_KINDS: tuple[str, ...] = tuple(name for name, cls in KINDS.items() if cls.reversible)

__all__ = [
    "ACTION_KINDS", "KINDS", "REVERSIBLE_KINDS",
    "Action", "ActionOutcome", "ActionRefused", "Cost", "Refused", "Touch", "Verdict",
    "apply_action", "register",
    "MergeDomains", "MigrateGuest", "MoveGuest", "PatchDomain", "PlaceGuest", "PowerOff", "PowerOn",
    "ResizeDomain", "ResizeGuest", "RestartGuest", "SetMigrationShare", "SplitDomain",
]
