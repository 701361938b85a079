"""Time and the entry point of every action: ``apply_action`` and ``advance``.

``apply_action(state, action) -> (state, outcome)`` checks the action's
preconditions against ``state`` and either returns a new state with an
:class:`ActionOutcome` (cost, guests touched, the model's numbers) or the
*same* state with an :class:`ActionRefused` -- never a half-applied change.
What each kind means lives with the kind (:mod:`presplit.plan.actions`, one
module per kind); ``apply_action`` dispatches to it. ``advance(state, t)``
moves time forward: migrations, patches, boots and domain provisioning whose
end is at or before ``t`` complete. Failures are state functions of
:mod:`presplit.plan.failures`; a guest a failure stopped is ``down`` with no
end (``guest_down_end`` = inf) until a ``RestartGuest``.

Invariants every applied action keeps (property-tested in tests/domains):
every guest is in at most one domain (plus at most one migration
destination); every live domain's reserved MIPS and MB (placed guests plus
migrations coming in) fit its capacity (allotment minus services); the live
domains of a host sum to the host's capacity.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from presplit.model.cluster import ClusterState
from presplit.model.domains import DOWN, MIGRATING, RUNNING
from presplit.plan.actions import Action, ActionRefused, Cost
from presplit.plan.actions.base import apply_action
from presplit.plan.actions.migrate_guest import MIGRATION_J_FIXED, MIGRATION_J_PER_MB, PreCopy, precopy
from presplit.plan.actions.set_migration_share import MIN_SHARE

__all__ = ["MIGRATION_J_FIXED", "MIGRATION_J_PER_MB", "MIN_SHARE", "PreCopy", "action_cost", "advance",
           "apply_action", "precopy"]


def action_cost(state: ClusterState, action: Action) -> Cost | ActionRefused:
    """What ``action`` would cost from ``state`` (a what-if through the same transition)."""
    _, outcome = apply_action(state, action)
    return outcome.cost if outcome.ok else outcome


# ----------------------------------------------------------------- time
def advance(state: ClusterState, t: float) -> tuple[ClusterState, dict[str, int]]:
    """Move to time ``t``: finish migrations, downtimes, patches and provisioning that end by ``t``."""
    if t < state.now:
        raise ValueError(f"time goes forward: {t} < {state.now}")
    status, changes = state.guest_status, {}
    landed = np.flatnonzero((status == MIGRATING) & (state.guest_mig_end <= t))
    woke = np.flatnonzero((status == DOWN) & (state.guest_down_end <= t))
    if len(landed) or len(woke):
        dom, dest, st = state.guest_domain.copy(), state.guest_dest.copy(), status.copy()
        dom[landed], dest[landed] = dest[landed], -1
        st[landed] = RUNNING
        st[woke] = RUNNING
        changes.update(guest_domain=dom, guest_dest=dest, guest_status=st)
    ready = [replace(d, state="active") for d in state.domains
             if (d.state == "provisioning" and d.ready_at <= t) or (d.state == "patching" and d.patch_until <= t)]
    out = state.with_domain(*ready) if ready else state
    out = out.evolve(now=float(t), **changes)
    return out, {"migrations_done": len(landed), "guests_up": len(woke), "domains_ready": len(ready)}
