"""Plan and action statuses as ``str`` enums, with the journal's values.

The journal stores them as text and hands them back as plain strings; a
member compares and hashes equal to its value, so either can be used where
the other is expected. Their ``repr`` is the string's too, so everything that
prints them (the summary line of ``presplit run``, JSON, the journal) is
byte for byte what it was when they were bare strings.

Action lifecycle: ``planned`` -> ``started`` -> ``succeeded`` | ``failed``
(-> ``reverting`` -> ``reverted`` | ``revert_failed``); ``planned`` ->
``skipped`` | ``cancelled``; ``recommended`` in a dry-run plan. Plans:
``running`` until the applier finishes them, then ``succeeded``,
``partially_failed``, ``failed`` or ``cancelled``; a dry-run plan is
``recommended`` until an operator approves it (``running``) or it is
``rejected``, ``cancelled`` or ``superseded``.
"""

from __future__ import annotations

from enum import StrEnum


class _Status(StrEnum):
    __repr__ = str.__repr__  # printed as the bare string it always was


class ActionStatus(_Status):
    PLANNED = "planned"
    STARTED = "started"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REVERTING = "reverting"
    REVERTED = "reverted"
    REVERT_FAILED = "revert_failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"
    RECOMMENDED = "recommended"


class PlanStatus(_Status):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    PARTIALLY_FAILED = "partially_failed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    RECOMMENDED = "recommended"
    REJECTED = "rejected"
    SUPERSEDED = "superseded"


#: an action that failed, whatever its revert did
FAILED_STATES = frozenset({ActionStatus.FAILED, ActionStatus.REVERTED, ActionStatus.REVERT_FAILED})
#: an action that will not change again (a recommended one waits for an operator, not for the applier)
TERMINAL = frozenset({ActionStatus.SUCCEEDED, ActionStatus.FAILED, ActionStatus.REVERTED, ActionStatus.REVERT_FAILED,
                      ActionStatus.SKIPPED, ActionStatus.CANCELLED, ActionStatus.RECOMMENDED})
