"""Patch-window prediction: the one entry point the split controller uses.

This module owns :class:`PatchPredictor`, which combines a declared
:class:`~presplit.forecast.maintenance_calendar.MaintenanceCalendar` with
patterns learned by :func:`~presplit.forecast.maintenance_learning.learn_windows`
and answers ``predicted_windows(host, horizon, now=...)``. The calendar and the
learning live in their own modules; everything public is re-exported here so
callers import from ``presplit.forecast.maintenance`` only.

Unannounced windows (a scenario's ``patch.history``): :class:`HistorySpec` and
:func:`calendar_history` make a deterministic, irregular log of the weeks
before a run from its calendar; :func:`learn_history` learns the recurring
windows back from that log; :func:`predicted_sim_windows` expands them over the
run, widened by the learner's tolerance; :func:`shown_windows` is what a
controller that predicts knows at a given moment (its predictions, plus the
real windows the maintenance system has announced open).

Merging: windows for one host that overlap in time are merged into one window
covering their union, with the highest confidence of the parts (a calendar
window, confidence 1.0, therefore wins over a learned one that agrees with it).
The union is the conservative choice for a controller that must not place load
on a host that may be patched. Windows that merely touch (one ends when the
next starts) stay separate.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone

from presplit.forecast.maintenance_calendar import (
    CalendarRule,
    HostGroups,
    MaintenanceCalendar,
    MaintenanceError,
    PatchWindow,
    _split_rule_text,
    localize,
    parse_duration,
    parse_zone,
    to_wall,
    utc,
)
from presplit.forecast.maintenance_learning import LearnedPattern, MaintenanceEvent, learn_windows

__all__ = [
    "CalendarRule",
    "HistorySpec",
    "HostGroups",
    "LearnedPattern",
    "MaintenanceCalendar",
    "MaintenanceError",
    "MaintenanceEvent",
    "PatchPredictor",
    "PatchWindow",
    "calendar_history",
    "learn_history",
    "learn_windows",
    "localize",
    "merge_windows",
    "parse_duration",
    "parse_zone",
    "predicted_sim_windows",
    "shown_windows",
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


# --------------------------------------------------------------------------- unannounced windows


@dataclass(frozen=True)
class HistorySpec:
    """How a scenario's log of past maintenance is made from its calendar, and how it is learned back.

    ``weeks`` of history before the run; each past occurrence of a rule is
    shifted with probability ``shift_probability`` by a whole number of minutes
    drawn uniformly in +-``max_shift``; ``skip_per_group`` occurrences of each
    rule (a group's schedule) never happened; ``seed`` fixes every draw
    (:func:`calendar_history`). ``tolerance`` is the learner's (an event within
    it of a pattern's slot counts as that slot) and the slack of every predicted
    window; ``tz`` the zone whose wall clock the learner reads (None: the zone
    the calendar's rules share, else UTC).
    """

    weeks: int = 8
    shift_probability: float = 0.25
    max_shift: timedelta = timedelta(hours=3)
    skip_per_group: int = 1
    seed: int = 0
    tolerance: timedelta = timedelta(hours=1)
    tz: str | None = None

    def zone(self, calendar: MaintenanceCalendar) -> str:
        if self.tz is not None:
            return self.tz
        zones = {r.tz.key for r in calendar.rules}
        return zones.pop() if len(zones) == 1 else "UTC"


def _extended_back(rule: CalendarRule, before_wall: datetime) -> CalendarRule:
    """``rule`` as if it had always run: DTSTART moved back to ``before_wall`` or earlier.

    The move is a whole multiple of 4 weeks (wall clock), so weekly, fortnightly
    and four-weekly rules keep their weekday, time of day and week phase; rules
    pinned by BYDAY or BYMONTHDAY keep their days.
    """
    weeks = max(0, math.ceil((rule.dtstart - before_wall) / timedelta(weeks=4)))
    rest, _, _, _ = _split_rule_text(rule.rrule, "rrule")
    return CalendarRule.build(rule.group, rest, rule.duration, rule.tz, rule.dtstart - timedelta(weeks=4 * weeks),
                              rule.name)


def calendar_history(calendar: MaintenanceCalendar, hosts: Sequence[str], before: datetime,
                     spec: HistorySpec) -> list[MaintenanceEvent]:
    """The maintenance log of the ``spec.weeks`` weeks before ``before``, made from ``calendar``.

    Deterministic: one ``random.Random(spec.seed)`` (whose ``random()`` stream
    Python keeps stable across versions) draws, rule by rule in calendar order:
    first the ``skip_per_group`` skipped occurrences (index ``int(u * n)`` among
    those not yet skipped), then for every occurrence in time order two numbers
    ``u1, u2``: it is shifted if ``u1 < shift_probability``, by
    ``round((2 u2 - 1) * max_shift)`` whole minutes. Every host of the rule's
    group logs the occurrence (shifted, same duration) as one event.
    Occurrences are the rule's own, extended back in time (its DTSTART moved
    back by whole multiples of 4 weeks); those starting in
    ``[before - weeks, before)`` are kept. Sorted by start, then host.
    """
    rng = random.Random(spec.seed)
    lo = utc(before) - timedelta(weeks=spec.weeks)
    max_minutes = spec.max_shift.total_seconds() / 60.0
    events: list[MaintenanceEvent] = []
    for rule in calendar.rules:
        past = _extended_back(rule, to_wall(lo, rule.tz)).occurrences(lo, utc(before))
        skipped: set[int] = set()
        for _ in range(min(spec.skip_per_group, len(past))):
            left = [i for i in range(len(past)) if i not in skipped]
            skipped.add(left[int(rng.random() * len(left))])
        members = [h for h in hosts if rule.group in calendar.groups.groups_of(h)]
        for i, (start, end) in enumerate(past):
            u1, u2 = rng.random(), rng.random()
            if i in skipped:
                continue
            shift = timedelta(minutes=round((2.0 * u2 - 1.0) * max_minutes)) if u1 < spec.shift_probability \
                else timedelta(0)
            events += [MaintenanceEvent(h, start + shift, end + shift) for h in members]
    events.sort(key=lambda e: (utc(e.start), e.host))
    return events


def learn_history(events: Iterable[MaintenanceEvent], spec: HistorySpec, calendar_zone: str,
                  until: datetime) -> list[LearnedPattern]:
    """Patterns per host learned from the log (no groups: a host's own log is all it is given).

    ``until`` is the end of the logging period (the run's start): a schedule
    expected up to then and not seen loses confidence.
    """
    return learn_windows(events, tz=calendar_zone, tolerance=spec.tolerance, observed_until=until)


def predicted_sim_windows(patterns: Iterable[LearnedPattern], hosts: Sequence[str], t0: datetime,
                          horizon_s: float, slack: timedelta, patch_duration_s: float) -> tuple:
    """The learned windows of each host over ``[t0, t0 + horizon_s)``, in simulation seconds since ``t0``.

    Each window is widened by ``slack`` on both sides (start - slack, end +
    slack): a learned start is the middle of the densest +-tolerance stretch of
    the events it explains, so a real start it explains lies within the slack
    of it. The window's ``rule`` says where it came from and its confidence.
    Returns ``PatchWindowSim`` values sorted by (start, host).
    """
    from presplit.model.domains import PatchWindowSim

    predictor = PatchPredictor(learned=patterns)
    t0 = utc(t0)
    out = []
    for h, name in enumerate(hosts):
        for w in predictor.predicted_windows(name, timedelta(seconds=horizon_s) + slack, now=t0 - slack):
            start = (utc(w.start) - slack - t0).total_seconds()
            if start >= horizon_s:
                continue
            out.append(PatchWindowSim(h, start, (utc(w.end) + slack - t0).total_seconds(), patch_duration_s,
                                      f"learned: {w.evidence}; confidence {w.confidence:.2f}; "
                                      f"+-{slack.total_seconds() / 60:g} min"))
    return tuple(sorted(out, key=lambda w: (w.start, w.host)))


def shown_windows(real: Iterable, predicted: Iterable, now: float, tick_s: float) -> tuple:
    """The patch windows a controller that predicts them knows at ``now`` (all ``PatchWindowSim``).

    * A **real** window is known once it has opened (start <= now < end): the
      maintenance system announces the start, with its end.
    * A **predicted** window is shown until it ends, unless a real window of the
      same host has opened inside its span (the prediction came true, or was
      superseded). If its start has passed and no real window has opened, it
      is shown as opening at the next tick (``now + tick_s``): the controller
      keeps its host ready and waits; it never patches on a prediction alone.
      Once ``now + tick_s`` reaches its end, the prediction lapsed.
    """
    real = tuple(real)
    opened: dict[int, list] = {}
    for w in real:
        if w.start <= now:
            opened.setdefault(w.host, []).append(w)
    out = [w for w in real if w.start <= now < w.end]
    for p in predicted:
        if p.end <= now or any(r.start < p.end and r.end > p.start for r in opened.get(p.host, ())):
            continue
        if p.start <= now:
            if now + tick_s >= p.end:
                continue
            p = replace(p, start=now + tick_s)
        out.append(p)
    return tuple(sorted(out, key=lambda w: (w.start, w.host)))
