"""Plans: actions as data and the one transition function that defines what they mean."""

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
    RestartGuest,
    SetMigrationShare,
    SplitDomain,
)
from presplit.plan.transition import action_cost, advance, apply_action, precopy

__all__ = [
    "Action", "ActionOutcome", "ActionRefused", "Cost", "MergeDomains", "MigrateGuest", "MoveGuest",
    "PatchDomain", "PlaceGuest", "PowerOff", "PowerOn", "ResizeDomain", "RestartGuest", "SetMigrationShare",
    "SplitDomain",
    "action_cost", "advance", "apply_action", "precopy",
]
