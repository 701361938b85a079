"""Plans: action kinds (each module the one home of what its kind means), time, ordering and invariants."""

from presplit.plan.actions import (
    Action,
    ActionOutcome,
    ActionRefused,
    Cost,
    MergeDomains,
    MigrateGuest,
    MoveGuest,
    PatchDomain,
    PlaceGuest,
    PowerOff,
    PowerOn,
    ResizeDomain,
    ResizeGuest,
    RestartGuest,
    SetMigrationShare,
    SplitDomain,
)
from presplit.plan.transition import action_cost, advance, apply_action, precopy

__all__ = [
    "Action", "ActionOutcome", "ActionRefused", "Cost", "MergeDomains", "MigrateGuest", "MoveGuest",
    "PatchDomain", "PlaceGuest", "PowerOff", "PowerOn", "ResizeDomain", "ResizeGuest", "RestartGuest",
    "SetMigrationShare",
    "SplitDomain",
    "action_cost", "advance", "apply_action", "precopy",
]
