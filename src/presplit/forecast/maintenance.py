"""Patch-window prediction: the one entry point the split controller uses.

This module owns :class:`PatchPredictor`, which combines a declared
:class:`~presplit.forecast.maintenance_calendar.MaintenanceCalendar` with
patterns learned by :func:`~presplit.forecast.maintenance_learning.learn_windows`
and answers ``predicted_windows(host, horizon, now=...)``. The calendar and the
learning live in their own modules; everything public is re-exported here so
callers import from ``presplit.forecast.maintenance`` only.

Merging: windows for one host that overlap in time are merged into one window
covering their union, with the highest confidence of the parts (a calendar
window, confidence 1.0, therefore wins over a learned one that agrees with it).
The union is the conservative choice for a controller that must not place load
on a host that may be patched. Windows that merely touch (one ends when the
next starts) stay separate.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, timezone

from presplit.forecast.maintenance_calendar import (
    CalendarRule,
    HostGroups,
    MaintenanceCalendar,
    MaintenanceError,
    PatchWindow,
    localize,
    parse_duration,
    parse_zone,
    utc,
)
from presplit.forecast.maintenance_learning import LearnedPattern, MaintenanceEvent, learn_windows

__all__ = [
    "CalendarRule",
    "HostGroups",
    "LearnedPattern",
    "MaintenanceCalendar",
    "MaintenanceError",
    "MaintenanceEvent",
    "PatchPredictor",
    "PatchWindow",
    "learn_windows",
    "localize",
    "merge_windows",
    "parse_duration",
    "parse_zone",
]


def merge_windows(windows: Iterable[PatchWindow]) -> list[PatchWindow]:
    """Sort by start and merge overlapping windows (same host); see the module docstring."""
    out: list[PatchWindow] = []
    for w in sorted(windows, key=lambda w: (utc(w.start), utc(w.end))):
        if out and utc(w.start) < utc(out[-1].end):
            prev = out[-1]
            lead = prev if prev.confidence >= w.confidence else w
            rules = prev.rule if w.rule in prev.rule.split(" | ") else f"{prev.rule} | {w.rule}"
            evidence = prev.evidence if w.evidence in prev.evidence.split(" | ") else f"{prev.evidence} | {w.evidence}"
            out[-1] = PatchWindow(prev.host, prev.start, max(prev.end, w.end, key=utc), lead.confidence, lead.source,
                                  rules, group=lead.group, evidence=evidence)
        else:
            out.append(w)
    return out


class PatchPredictor:
    """Calendar + learned patterns -> predicted patch windows per host.

    ``groups`` decides which learned *group* patterns apply to a host; it
    defaults to the calendar's groups.
    """

    def __init__(self, calendar: MaintenanceCalendar | None = None, learned: Iterable[LearnedPattern] = (),
                 groups: Mapping[str, Iterable[str]] | HostGroups | None = None) -> None:
        self.calendar = calendar
        self.learned = tuple(learned)
        for i, p in enumerate(self.learned):
            if not isinstance(p, LearnedPattern):
                raise MaintenanceError(f"learned[{i}]", f"{type(p).__name__} is not a LearnedPattern",
                                       expected="the output of learn_windows()")
        if groups is None:
            self.groups = calendar.groups if calendar is not None else HostGroups()
        else:
            self.groups = groups if isinstance(groups, HostGroups) else HostGroups(groups)

    def predicted_windows(self, host: str, horizon: timedelta, now: datetime | None = None) -> list[PatchWindow]:
        """Windows for ``host`` that start in [now, now + horizon), merged, sorted by start.

        ``now`` must be timezone-aware (default: the current time in UTC).
        Windows already in progress at ``now`` are not included.
        """
        if not isinstance(host, str) or not host:
            raise MaintenanceError("host", f"{host!r} is not a host id", expected="a non-empty string")
        if not isinstance(horizon, timedelta) or horizon <= timedelta(0):
            raise MaintenanceError("horizon", f"{horizon!r} is not a positive timedelta",
                                   expected="e.g. timedelta(days=7)")
        if now is None:
            now = datetime.now(timezone.utc)
        elif not isinstance(now, datetime) or now.utcoffset() is None:
            raise MaintenanceError("now", f"{now!r} is not timezone-aware", expected="an aware datetime")
        now = utc(now)  # horizon is absolute time, not wall-clock time
        end = now + horizon
        found: list[PatchWindow] = []
        if self.calendar is not None:
            found += self.calendar.windows(host, now, end)
        member_of = set(self.groups.groups_of(host))
        for p in self.learned:
            if (p.is_group and p.subject in member_of) or (not p.is_group and p.subject == host):
                found += p.windows(host, now, end)
        return merge_windows(found)
