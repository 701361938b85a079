"""Learned patch windows: recurring patterns recovered from a log of past maintenance.

This module owns :func:`learn_windows` and its result, :class:`LearnedPattern`.
The method is deliberately plain candidate-pattern scoring, so a reader can
check every number:

1. Convert each event start to local wall-clock time in ``tz`` (patch windows
   are planned in local time, so a 02:00 window stays 02:00 across DST).
2. Every event proposes the patterns it could belong to: daily; weekly on its
   weekday every 1, 2 or 4 weeks (with the week phase for 2 and 4); monthly on
   the nth weekday (1st..4th, and "last"); monthly on its day of month (and
   "last day" on month-end). Events proposing the same pattern are clustered by
   time of day (gaps larger than ``tolerance`` split clusters); a cluster with
   fewer than ``min_occurrences`` events is a one-off and dropped. The
   cluster's time of day is the one that puts the most members within
   +-``tolerance`` (the middle of the densest 2*tolerance stretch), so jittered
   starts all match and a stray event at the cluster's edge does not drag it.
3. Each candidate (pattern + time of day) is expanded over the observed
   span, with the same RRULE engine the calendar uses. An expected occurrence is
   *seen* if some event starts within +-``tolerance`` of it.
   ``confidence = seen / expected`` (the fraction of expected occurrences that
   actually happened) -- this is the number reported. The count starts at the
   first seen occurrence (a host may join a schedule part-way through the log)
   and runs to the end of the observed span (a schedule that stopped loses
   confidence).
4. Candidates are *ranked* by how well they explain the log, as a
   log-likelihood under a two-part story: "the schedule fires at each expected
   slot with probability p = confidence; every event it does not explain is
   noise that landed at a random time"::

       score = seen*ln(p) + missed*ln(1-p) - unexplained*ln(span / (2*tolerance))

   The last term is the surprise of a random event landing in one +-tolerance
   slot of the span. Confidence alone would let a sub-pattern win (a weekly
   schedule also scores 100 % as "every 2 weeks", but leaves half the events
   unexplained); coverage alone would let "daily" win (it explains everything
   but misses six slots out of seven).
5. The best candidate is kept if it passes ``min_confidence`` and
   ``min_occurrences``; its events are removed and step 2 repeats on the rest,
   so a host with two schedules gets two patterns.

Per group (when ``groups`` is given), the events of all member hosts are pooled
and the same procedure runs, so a group that is patched together is learned as
one schedule even if each host's log is sparse.
"""

from __future__ import annotations

import bisect
import calendar as _cal
import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from presplit.forecast.maintenance_calendar import (
    CalendarRule,
    HostGroups,
    MaintenanceCalendar,
    MaintenanceError,
    PatchWindow,
    parse_zone,
    to_wall,
    utc,
)

_DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_ORDINAL = {1: "first", 2: "second", 3: "third", 4: "fourth", -1: "last"}
WEEK_INTERVALS = (1, 2, 4)


@dataclass(frozen=True)
class MaintenanceEvent:
    """One past maintenance: ``host`` was down for patching from ``start`` to ``end`` (aware)."""

    host: str
    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if not isinstance(self.host, str) or not self.host:
            raise MaintenanceError("host", f"{self.host!r} is not a host id", expected="a non-empty string")
        for name in ("start", "end"):
            v = getattr(self, name)
            if not isinstance(v, datetime) or v.utcoffset() is None:
                raise MaintenanceError(name, f"{v!r} is not timezone-aware",
                                       expected="an aware datetime or ISO 8601 text with an offset")
        if utc(self.end) <= utc(self.start):
            raise MaintenanceError("end", f"{self.end.isoformat()} is not after start {self.start.isoformat()}",
                                   expected="end > start")


def _coerce_event(raw: Any, i: int) -> MaintenanceEvent:
    """Accept an event, a (host, start, end) tuple or a {host, start, end} mapping; ISO strings allowed."""
    where = f"events[{i}]"
    if isinstance(raw, MaintenanceEvent):
        return raw
    if isinstance(raw, Mapping):
        unknown = set(raw) - {"host", "start", "end"}
        if unknown:
            raise MaintenanceError(f"{where}.{sorted(map(str, unknown))[0]}", "unknown key", expected="only end, host, start")
        missing = [k for k in ("host", "start", "end") if k not in raw]
        if missing:
            raise MaintenanceError(f"{where}.{missing[0]}", "missing", expected="host, start and end")
        host, start, end = raw["host"], raw["start"], raw["end"]
    elif isinstance(raw, (tuple, list)) and len(raw) == 3:
        host, start, end = raw
    else:
        raise MaintenanceError(where, f"{raw!r} is not an event",
                               expected="a MaintenanceEvent, a (host, start, end) tuple or a mapping")
    values = {}
    for name, v in (("start", start), ("end", end)):
        if isinstance(v, str):
            try:
                v = datetime.fromisoformat(v.strip())
            except ValueError as exc:
                raise MaintenanceError(f"{where}.{name}", f"cannot read {v!r} as a date-time",
                                       expected="ISO 8601 with an offset, e.g. '2024-01-09T02:00+01:00'") from exc
        values[name] = v
    try:
        return MaintenanceEvent(host, values["start"], values["end"])
    except MaintenanceError as exc:
        raise MaintenanceError(f"{where}.{exc.field}", exc.message,
                               expected=exc.expected) from None


def _week_no(d: date) -> int:
    """Monday-based week counter (RFC 5545 default WKST=MO), used for the phase of 2- and 4-weekly rules."""
    return (d.toordinal() - d.weekday()) // 7


@dataclass(frozen=True, order=True)
class _Candidate:
    kind: str  # "daily" | "weekly" | "monthly-nth-weekday" | "monthly-day"
    weekday: int = -1
    interval: int = 1
    phase: int = 0
    nth: int = 0
    monthday: int = 0
    minute: int = 0  # local time of day, minutes after midnight

    def rrule(self) -> str:
        if self.kind == "daily":
            return "FREQ=DAILY"
        if self.kind == "weekly":
            return f"FREQ=WEEKLY;INTERVAL={self.interval};BYDAY={_DAYS[self.weekday]}"
        if self.kind == "monthly-nth-weekday":
            return f"FREQ=MONTHLY;BYDAY={self.nth}{_DAYS[self.weekday]}"
        return f"FREQ=MONTHLY;BYMONTHDAY={self.monthday}"

    def dtstart_before(self, day: date) -> datetime:
        """A DTSTART at or before ``day`` that fixes the rule's phase (only weekly INTERVAL>1 has one)."""
        if self.kind == "weekly":
            d = day - timedelta(days=(day.weekday() - self.weekday) % 7)
            while _week_no(d) % self.interval != self.phase:
                d -= timedelta(weeks=1)
        elif self.kind == "daily":
            d = day
        else:
            d = day.replace(day=1)
        return datetime(d.year, d.month, d.day, self.minute // 60, self.minute % 60)

    def describe(self, tz: ZoneInfo) -> str:
        at = f"at {self.minute // 60:02d}:{self.minute % 60:02d} {tz.key}"
        if self.kind == "daily":
            return f"daily {at}"
        if self.kind == "weekly":
            every = "every week" if self.interval == 1 else f"every {self.interval} weeks"
            return f"{every} on {_DAY_NAMES[self.weekday]} {at}"
        if self.kind == "monthly-nth-weekday":
            return f"monthly on the {_ORDINAL[self.nth]} {_DAY_NAMES[self.weekday]} {at}"
        day = "last day" if self.monthday == -1 else f"day {self.monthday}"
        return f"monthly on {day} {at}"


@dataclass(frozen=True)
class LearnedPattern:
    """A recurring window learned for ``subject`` (a host, or a group when ``is_group``)."""

    subject: str
    is_group: bool
    kind: str
    rule: CalendarRule
    confidence: float
    seen: int
    expected: int
    events: int
    description: str

    @property
    def evidence(self) -> str:
        return (f"{self.description}: seen {self.seen} of {self.expected} expected occurrences "
                f"({self.events} events matched)")

    def windows(self, host: str, start: datetime, end: datetime) -> list[PatchWindow]:
        """Predicted windows for ``host`` starting in [start, end), with this pattern's confidence."""
        return [PatchWindow(host, s, e, self.confidence, "learned", self.rule.rrule,
                            group=self.subject if self.is_group else None, evidence=self.evidence)
                for s, e in self.rule.occurrences(start, end)]


def _best_time_of_day(minutes: list[int], tol_min: float) -> int:
    """Middle of the 2*tolerance stretch holding the most (sorted) ``minutes``; earliest stretch on ties."""
    best_count, best_mid = 0, minutes[0]
    for i, lo in enumerate(minutes):
        j = bisect.bisect_right(minutes, lo + 2 * tol_min) - 1
        if j - i + 1 > best_count:
            best_count, best_mid = j - i + 1, (lo + minutes[j]) / 2
    return int(round(best_mid))


def _candidates(walls: list[datetime], tolerance: timedelta, min_occurrences: int) -> list[_Candidate]:
    """Patterns proposed by at least ``min_occurrences`` events at a consistent time of day."""
    proposals: dict[tuple, list[int]] = defaultdict(list)
    for w in walls:
        d = w.date()
        last = _cal.monthrange(d.year, d.month)[1]
        minute = w.hour * 60 + w.minute
        keys = [("daily",)]
        keys += [("weekly", d.weekday(), k, _week_no(d) % k) for k in WEEK_INTERVALS]
        if d.day <= 28:
            keys.append(("monthly-nth-weekday", d.weekday(), (d.day - 1) // 7 + 1))
        if d.day + 7 > last:
            keys.append(("monthly-nth-weekday", d.weekday(), -1))
        keys.append(("monthly-day", d.day))
        if d.day == last:
            keys.append(("monthly-day", -1))
        for key in keys:
            proposals[key].append(minute)
    tol_min = tolerance.total_seconds() / 60
    out = []
    for key, minutes in proposals.items():
        minutes.sort()
        clusters, current = [], [minutes[0]]
        for m in minutes[1:]:
            if m - current[-1] > tol_min:
                clusters.append(current)
                current = []
            current.append(m)
        clusters.append(current)
        for c in clusters:
            if len(c) < min_occurrences:
                continue
            minute = _best_time_of_day(c, tol_min)
            kind = key[0]
            if kind == "weekly":
                out.append(_Candidate(kind, weekday=key[1], interval=key[2], phase=key[3], minute=minute))
            elif kind == "monthly-nth-weekday":
                out.append(_Candidate(kind, weekday=key[1], nth=key[2], minute=minute))
            elif kind == "monthly-day":
                out.append(_Candidate(kind, monthday=key[1], minute=minute))
            else:
                out.append(_Candidate(kind, minute=minute))
    return sorted(out)


def _score(subject: str, cand: _Candidate, starts: list[datetime], tz: ZoneInfo, tolerance: timedelta,
           span_lo: datetime, span_hi: datetime) -> tuple[list[datetime], int, set[int]]:
    """Expected occurrences (UTC), how many were seen, and which events (indices into ``starts``) matched.

    Expected occurrences before the first seen one are not counted: a schedule
    cannot be expected before it first appears in the log (a host may have been
    put on it part-way through). After that, every occurrence up to the end of
    the observed span counts, so a schedule that stopped loses confidence.
    """
    rule = CalendarRule.build(subject, cand.rrule(), timedelta(hours=1), tz,
                              cand.dtstart_before(to_wall(span_lo, tz).date()))
    expected = [utc(s) for s, _ in rule.occurrences(span_lo, span_hi)]
    seen, matched, first_seen = 0, set(), None
    for k, x in enumerate(expected):
        i, j = bisect.bisect_left(starts, x - tolerance), bisect.bisect_right(starts, x + tolerance)
        if i < j:
            seen += 1
            matched.update(range(i, j))
            first_seen = k if first_seen is None else first_seen
    return (expected[first_seen:] if first_seen is not None else []), seen, matched


def _log_likelihood(seen: int, expected: int, unexplained: int, noise_cost: float) -> float:
    """Ranking score of module docstring step 4 (higher is better); 0*ln(0) is taken as 0."""
    p = seen / expected
    hits = seen * math.log(p) if seen else 0.0
    misses = (expected - seen) * math.log(1.0 - p) if expected > seen else 0.0
    return hits + misses - unexplained * noise_cost


def _learn_subject(subject: str, is_group: bool, events: list[MaintenanceEvent], tz: ZoneInfo,
                   tolerance: timedelta, min_occurrences: int, min_confidence: float,
                   max_patterns: int, observed_until: datetime | None) -> list[LearnedPattern]:
    events = sorted(events, key=lambda e: utc(e.start))
    span_lo = utc(events[0].start) - tolerance
    span_hi = max(utc(events[-1].start) + tolerance, utc(observed_until) if observed_until else span_lo)
    # Surprise of one noise event: it hit one +-tolerance slot out of the whole span.
    noise_cost = math.log(max((span_hi - span_lo) / (2 * tolerance), 2.0))
    remaining = events
    patterns: list[LearnedPattern] = []
    while len(remaining) >= min_occurrences and len(patterns) < max_patterns:
        starts = [utc(e.start) for e in remaining]
        best = None
        for cand in _candidates([to_wall(s, tz) for s in starts], tolerance, min_occurrences):
            expected, seen, matched = _score(subject, cand, starts, tz, tolerance, span_lo, span_hi)
            if not expected:
                continue
            rank = (_log_likelihood(seen, len(expected), len(remaining) - len(matched), noise_cost), seen)
            if best is None or rank > best[0]:
                best = (rank, cand, expected, seen, matched)
        if best is None:
            break
        _, cand, expected, seen, matched = best
        confidence = seen / len(expected)
        if seen < min_occurrences or confidence < min_confidence:
            break
        hit = [remaining[i] for i in sorted(matched)]
        # Typical duration: median, rounded to the minute, so one overrun does not stretch the window.
        duration = timedelta(minutes=round(statistics.median((utc(e.end) - utc(e.start)).total_seconds() for e in hit) / 60))
        first_wall = to_wall(expected[0], tz).replace(hour=cand.minute // 60, minute=cand.minute % 60)
        # RFC 5545: DTSTART is the first instance, so the emitted rule is self-contained and synchronized.
        rule_text = (f"DTSTART;TZID={tz.key}:{first_wall:%Y%m%dT%H%M%S}\nRRULE:{cand.rrule()}")
        rule = CalendarRule.build(subject, rule_text, max(duration, timedelta(minutes=1)), tz,
                                  name=cand.describe(tz))
        patterns.append(LearnedPattern(subject, is_group, cand.kind, rule, round(confidence, 4), seen,
                                       len(expected), len(hit), cand.describe(tz)))
        remaining = [e for i, e in enumerate(remaining) if i not in matched]
    return patterns


def learn_windows(events: Iterable[Any], *, tz: str | ZoneInfo = "UTC",
                  groups: Mapping[str, Iterable[str]] | HostGroups | MaintenanceCalendar | None = None,
                  tolerance: timedelta = timedelta(hours=1), min_occurrences: int = 3,
                  min_confidence: float = 0.5, max_patterns: int = 3,
                  observed_until: datetime | None = None) -> list[LearnedPattern]:
    """Learn recurring windows per host (and per group when ``groups`` is given).

    ``events``: MaintenanceEvent, (host, start, end) tuples or {host, start, end}
    mappings with aware datetimes or ISO 8601 text with an offset. ``tz`` is the
    zone whose wall clock the windows are planned in. ``observed_until`` is the
    end of the logging period (default: each subject's last event); occurrences
    expected up to then count against a pattern. Returns patterns grouped by
    subject (hosts first, then groups), strongest first.
    """
    zone = parse_zone(tz, "tz")
    if not isinstance(tolerance, timedelta) or tolerance <= timedelta(0):
        raise MaintenanceError("tolerance", f"{tolerance!r} is not a positive timedelta", expected="e.g. timedelta(hours=1)")
    if isinstance(min_occurrences, bool) or not isinstance(min_occurrences, int) or min_occurrences < 2:
        raise MaintenanceError("min_occurrences", f"{min_occurrences!r} is too small",
                               expected="an integer >= 2 (one event is never a pattern)")
    if not 0.0 <= min_confidence <= 1.0:
        raise MaintenanceError("min_confidence", f"{min_confidence!r} is out of range", expected="a number in [0, 1]")
    if observed_until is not None and (not isinstance(observed_until, datetime) or observed_until.utcoffset() is None):
        raise MaintenanceError("observed_until", f"{observed_until!r} is not timezone-aware",
                               expected="an aware datetime")
    if isinstance(groups, MaintenanceCalendar):
        groups = groups.groups
    elif groups is not None and not isinstance(groups, HostGroups):
        groups = HostGroups(groups)
    log = [_coerce_event(raw, i) for i, raw in enumerate(events)]
    by_subject: dict[tuple[bool, str], list[MaintenanceEvent]] = defaultdict(list)
    for e in log:
        by_subject[(False, e.host)].append(e)
        for g in (groups.groups_of(e.host) if groups is not None else ()):
            by_subject[(True, g)].append(e)
    out = []
    for (is_group, subject), evs in sorted(by_subject.items()):
        out += _learn_subject(subject, is_group, evs, zone, tolerance, min_occurrences, min_confidence,
                              max_patterns, observed_until)
    return out
