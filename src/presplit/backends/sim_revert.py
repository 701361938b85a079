"""How the simulated world undoes one action: ``revert_action(state, action, before)``.

Reverting is *targeted*: it touches only what the action touched, as far as
the world still shows the action's effect, so that a revert can never move a
guest that another action has moved since, or lose one. Where the undo is an
ordinary action (re-pin back, migrate back, power off again, resize back) it
goes through :func:`presplit.plan.apply_action` and may be refused (no room
left at the source): the guest then stays, running, where it is -- never
twice, never nowhere. A migration still in flight is cancelled, as QEMU's
``migrate_cancel`` does: the guest keeps running at the source. A restart
after a failure is undone by stopping the guest again where it failed (if
that domain still has room for it). Merges and patches are not reversible.

Each kind's undo is its ``revert`` method (:mod:`presplit.plan.actions`);
this is the entry point the simulated worlds call. Returns
``(state, ok, reason)``; ``state`` is the same object when nothing changed.
"""

from __future__ import annotations


def revert_action(state, action, before: dict):
    return action.revert(state, before)
