"""Declared patch windows: host groups, RRULE-based rules, and the window value.

This module owns the *calendar* half of patch-window prediction:

* :class:`PatchWindow` -- one predicted maintenance window (shared with the
  learning half in :mod:`presplit.forecast.maintenance_learning`);
* :class:`MaintenanceError` -- the one error type bad maintenance input raises;
* :class:`HostGroups` -- group name -> host ids / glob patterns;
* :class:`CalendarRule` -- one recurrence (RFC 5545 RRULE, parsed by
  ``dateutil.rrule.rrulestr``) with a duration and an IANA time zone;
* :class:`MaintenanceCalendar` -- groups plus rules, loadable from a dict.

Time semantics (RFC 5545 section 3.3.5, "DATE-TIME", form #3 "local time with
time zone reference"):

* Recurrences are expanded in *local wall-clock time*: a 02:00 window stays at
  02:00 local across DST changes (so the UTC instant moves by an hour).
* A wall time that does not exist (spring-forward gap) "is interpreted using the
  UTC offset before the gap", i.e. it is shifted forward by the gap length:
  02:00 on a day clocks jump 02:00 -> 03:00 becomes 03:00 (02:30 -> 03:30).
* A wall time that occurs twice (fall-back) "refers to the first occurrence".
  Both rules are exactly PEP 495 ``fold=0``, which is what we use.
* Durations are absolute (RFC 5545 section 3.3.6: durations in hours/minutes
  are exact): a 2 h window that starts at 02:00 on the fall-back day ends 2 h
  later in real time, which is 03:00 local.
* Month-end: expansion is dateutil's, which follows RFC 5545 section 3.3.10:
  ``BYMONTHDAY=-1`` is the last day of every month and ``BYMONTHDAY=31`` (or a
  MONTHLY rule starting on the 31st) skips months without a 31st.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.rrule import rruleset, rrulestr

from presplit import durations
from presplit.durations import DurationError
from presplit.errors import InputError

SOURCES = ("calendar", "learned")
EXAMPLE_RRULE = "'FREQ=MONTHLY;BYDAY=TU;BYSETPOS=2'"
EXPECTED_DURATION = "a positive duration such as '2h', '90m', '1h30m', 'PT2H' or a number of seconds"


class MaintenanceError(InputError):
    """Bad maintenance input. ``str()`` reads ``field: message (expected ...)``."""

    def __init__(self, field_name: str, message: str, *, expected: str | None = None) -> None:
        self.field = field_name
        self.message = message
        self.expected = expected
        text = f"{field_name}: {message}"
        if expected:
            text += f" (expected {expected})"
        super().__init__(text)


@dataclass(frozen=True)
class PatchWindow:
    """One maintenance window.

    ``host`` is the host the window applies to (or the group name when windows
    are listed per group); ``group`` names the group it came through, if any.
    ``rule`` is the RRULE text behind it and ``evidence`` says where it came
    from (calendar rule name, or "seen 11 of 12 expected ..." when learned).
    """

    host: str
    start: datetime
    end: datetime
    confidence: float
    source: str
    rule: str
    group: str | None = None
    evidence: str = ""

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            value = getattr(self, name)
            if not isinstance(value, datetime) or value.utcoffset() is None:
                raise MaintenanceError(name, f"{value!r} is not timezone-aware", expected="an aware datetime")
        if utc(self.end) <= utc(self.start):
            raise MaintenanceError("end", f"{self.end.isoformat()} is not after start {self.start.isoformat()}",
                                   expected="end > start")
        if not 0.0 <= self.confidence <= 1.0:
            raise MaintenanceError("confidence", f"{self.confidence!r} is out of range", expected="a number in [0, 1]")
        if self.source not in SOURCES:
            raise MaintenanceError("source", f"{self.source!r} is unknown", expected=" or ".join(map(repr, SOURCES)))

    @property
    def duration(self) -> timedelta:
        return utc(self.end) - utc(self.start)


def utc(instant: datetime) -> datetime:
    """The same instant in UTC.

    Python compares and subtracts two datetimes that share a tzinfo by wall
    clock, ignoring ``fold`` and DST offsets, so every comparison and every
    duration in this package goes through UTC.
    """
    return instant.astimezone(timezone.utc)


# --------------------------------------------------------------------------- parsing helpers

def parse_duration(value: Any, field_name: str = "duration") -> timedelta:
    """A positive duration from a timedelta, seconds, '1h30m', 'PT1H30M' (presplit's one
    grammar, :mod:`presplit.durations`), as a timedelta; errors name ``field_name``."""
    try:
        seconds = durations.parse_duration(value, what=field_name, positive=True)
        return timedelta(seconds=seconds)
    except DurationError as exc:
        raise MaintenanceError(field_name, exc.problem, expected=EXPECTED_DURATION) from None
    except OverflowError:  # finite, but beyond timedelta's 999,999,999 days
        raise MaintenanceError(field_name, f"{value!r} is too long", expected=EXPECTED_DURATION) from None


def parse_zone(value: Any, field_name: str = "tz") -> ZoneInfo:
    """An IANA zone from a ZoneInfo or a name like 'Europe/Amsterdam'."""
    if isinstance(value, ZoneInfo):
        return value
    if not isinstance(value, str) or not value.strip():
        raise MaintenanceError(field_name, f"{value!r} is not a time zone name",
                               expected="an IANA time zone name such as 'Europe/Amsterdam'")
    try:
        return ZoneInfo(value.strip())
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise MaintenanceError(field_name, f"unknown time zone {value!r}",
                               expected="an IANA time zone name such as 'Europe/Amsterdam'") from exc


def localize(wall: datetime, tz: ZoneInfo) -> datetime:
    """Naive local wall time -> real aware instant in ``tz`` (RFC 5545 section 3.3.5).

    ``fold=0`` gives "offset before the gap" for nonexistent times and "first
    occurrence" for ambiguous ones; the round trip through UTC turns a
    nonexistent 02:00 into the 03:00 that the clock actually shows.
    """
    return wall.replace(tzinfo=tz, fold=0).astimezone(timezone.utc).astimezone(tz)


def to_wall(instant: datetime, tz: ZoneInfo) -> datetime:
    """Aware instant -> naive local wall time in ``tz``."""
    return instant.astimezone(tz).replace(tzinfo=None, fold=0)


def _parse_local_datetime(value: Any, tz: ZoneInfo | None, field_name: str) -> datetime:
    """DTSTART given separately: naive = local wall time; aware = converted to ``tz``."""
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError as exc:
            raise MaintenanceError(field_name, f"cannot read {value!r} as a date-time",
                                   expected="ISO 8601 local wall time such as '2024-01-09T02:00'") from exc
    if not isinstance(value, datetime):
        raise MaintenanceError(field_name, f"{value!r} is not a date-time",
                               expected="ISO 8601 local wall time such as '2024-01-09T02:00'")
    if value.utcoffset() is not None:
        if tz is None:
            raise MaintenanceError(field_name, "aware date-time but no time zone for the rule",
                                   expected="a 'tz' field")
        value = to_wall(value, tz)
    return value.replace(tzinfo=None)


_UNTIL_UTC = re.compile(r"UNTIL=(\d{8}T\d{6})Z", re.IGNORECASE)


def _split_rule_text(text: str, field_name: str) -> tuple[str, str | None, str | None, bool]:
    """Pull DTSTART out of an iCalendar snippet: (rest, dtstart value, TZID, dtstart is UTC)."""
    unfolded = re.sub(r"\r?\n[ \t]", "", text.strip())  # RFC 5545 section 3.1 line unfolding
    rest, dt_value, tzid, is_utc = [], None, None, False
    for line in unfolded.splitlines():
        line = line.strip()
        if not line:
            continue
        name_params, _, value = line.partition(":")
        name, *params = name_params.split(";")
        if name.upper() == "DTSTART" and value:
            if dt_value is not None:
                raise MaintenanceError(field_name, "DTSTART appears twice", expected="at most one DTSTART line")
            dt_value = value.strip()
            is_utc = dt_value.upper().endswith("Z")
            for p in params:
                key, _, val = p.partition("=")
                if key.upper() == "TZID":
                    tzid = val.strip().strip('"')
        else:
            rest.append(line)
    return "\n".join(rest), dt_value, tzid, is_utc


# --------------------------------------------------------------------------- groups and rules


class HostGroups:
    """Group name -> host ids or ``fnmatch`` glob patterns ('db-*', 'rack[12]-*')."""

    def __init__(self, groups: Mapping[str, Iterable[str]] | None = None) -> None:
        self._groups: dict[str, tuple[str, ...]] = {}
        for name, members in (groups or {}).items():
            where = f"groups.{name}"
            if not isinstance(name, str) or not name:
                raise MaintenanceError("groups", f"group name {name!r} is not a non-empty string")
            if isinstance(members, str) or not isinstance(members, Iterable):
                raise MaintenanceError(where, f"{members!r} is not a list", expected="a list of host ids or glob patterns")
            members = tuple(members)
            for i, m in enumerate(members):
                if not isinstance(m, str) or not m:
                    raise MaintenanceError(f"{where}[{i}]", f"{m!r} is not a host id",
                                           expected="a non-empty string (host id or glob pattern)")
            self._groups[name] = members

    def __contains__(self, group: str) -> bool:
        return group in self._groups

    def names(self) -> tuple[str, ...]:
        return tuple(self._groups)

    def members(self, group: str) -> tuple[str, ...]:
        return self._groups[group]

    def groups_of(self, host: str) -> list[str]:
        # Case-sensitive matching: host ids are identifiers, not file names.
        return [g for g, pats in self._groups.items() if any(fnmatch.fnmatchcase(host, p) for p in pats)]


@dataclass(frozen=True)
class CalendarRule:
    """One recurring window for ``group``: an RRULE expanded in local time ``tz``.

    ``rrule`` is RFC 5545 text: a bare ``FREQ=...`` rule, or lines such as
    ``DTSTART;TZID=Europe/Amsterdam:20240109T020000`` / ``RRULE:...`` /
    ``EXDATE:...``. DTSTART comes from the text *or* from ``dtstart`` (a naive
    local wall time, an aware datetime converted to ``tz``, or an ISO string),
    never both. ``UNTIL=...Z`` (UTC, as RFC 5545 requires with a TZID) is
    converted to local wall time before expansion.
    """

    group: str
    rrule: str
    duration: timedelta
    tz: ZoneInfo
    dtstart: datetime  # naive, local wall time
    name: str = ""
    _set: rruleset = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Direct construction (not via build) still gets the same validation and compiled set.
        if self._set is None:
            built = CalendarRule.build(self.group, self.rrule, self.duration, self.tz,
                                       None if "DTSTART" in self.rrule.upper() else self.dtstart, self.name)
            object.__setattr__(self, "_set", built._set)

    @classmethod
    def build(cls, group: str, rrule: str, duration: Any, tz: Any = None, dtstart: Any = None,
              name: str = "", where: str = "rule") -> "CalendarRule":
        if not isinstance(rrule, str) or not rrule.strip():
            raise MaintenanceError(f"{where}.rrule", f"{rrule!r} is not a rule",
                                   expected=f"an RFC 5545 RRULE string such as {EXAMPLE_RRULE}")
        rest, dt_text, tzid, dt_utc = _split_rule_text(rrule, f"{where}.rrule")
        if tz is None and tzid is None:
            raise MaintenanceError(f"{where}.tz", "missing",
                                   expected="an IANA time zone name, or DTSTART;TZID=... in the rule")
        zone = parse_zone(tz if tz is not None else tzid, f"{where}.tz")
        if tzid is not None and parse_zone(tzid, f"{where}.rrule").key != zone.key:
            raise MaintenanceError(f"{where}.rrule", f"DTSTART TZID {tzid!r} differs from tz {zone.key!r}",
                                   expected="the same zone in both places")
        if dt_text is not None and dtstart is not None:
            raise MaintenanceError(f"{where}.dtstart", "given both in the rule text and as a field",
                                   expected="DTSTART in exactly one place")
        if dt_text is not None:
            try:
                start = datetime.strptime(dt_text.rstrip("Zz"), "%Y%m%dT%H%M%S")
            except ValueError as exc:
                raise MaintenanceError(f"{where}.rrule", f"DTSTART {dt_text!r} is not a date-time",
                                       expected="YYYYMMDDTHHMMSS") from exc
            if dt_utc:  # a UTC DTSTART pins the instant; expand from its local wall time
                start = to_wall(start.replace(tzinfo=timezone.utc), zone)
        elif dtstart is not None:
            start = _parse_local_datetime(dtstart, zone, f"{where}.dtstart")
        else:
            raise MaintenanceError(f"{where}.dtstart", "missing",
                                   expected="DTSTART in the rule text or a 'dtstart' field")
        span = parse_duration(duration, f"{where}.duration")
        # Expansion happens on naive wall times, so UNTIL in UTC must become wall time too.
        rest = _UNTIL_UTC.sub(lambda m: "UNTIL=" + to_wall(
            datetime.strptime(m.group(1), "%Y%m%dT%H%M%S").replace(tzinfo=timezone.utc), zone
        ).strftime("%Y%m%dT%H%M%S"), rest)
        try:
            compiled = rrulestr(rest, dtstart=start, forceset=True, ignoretz=True, cache=True)
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            raise MaintenanceError(f"{where}.rrule", f"cannot parse {rrule!r}: {exc}",
                                   expected=f"an RFC 5545 RRULE string such as {EXAMPLE_RRULE}") from exc
        return cls(group=group, rrule=rrule.strip(), duration=span, tz=zone, dtstart=start,
                   name=name, _set=compiled)

    def next_wall(self, after: datetime) -> datetime | None:
        """First local wall-clock occurrence at or after the naive wall time ``after``."""
        return self._set.after(after, inc=True)

    def occurrences(self, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        """(start, end) of every window whose start lies in [start, end), as aware datetimes in ``tz``."""
        # Widen the wall-clock query by a day: offsets are < 1 day, and the exact
        # filter below runs on real instants.
        lo = to_wall(start, self.tz) - timedelta(days=1)
        hi = to_wall(end, self.tz) + timedelta(days=1)
        lo_utc, hi_utc = utc(start), utc(end)
        out = []
        for wall in self._set.between(lo, hi, inc=True):
            s = localize(wall, self.tz)
            if lo_utc <= utc(s) < hi_utc:
                out.append((s, (utc(s) + self.duration).astimezone(self.tz)))
        return out


_TOP_KEYS = {"groups", "rules"}
_RULE_KEYS = {"group", "rrule", "duration", "tz", "dtstart", "name"}


class MaintenanceCalendar:
    """Declared patch windows: host groups plus per-group rules. Calendar windows have confidence 1.0."""

    def __init__(self, groups: Mapping[str, Iterable[str]] | HostGroups, rules: Sequence[CalendarRule] = ()) -> None:
        self.groups = groups if isinstance(groups, HostGroups) else HostGroups(groups)
        for i, r in enumerate(rules):
            if r.group not in self.groups:
                raise MaintenanceError(f"rules[{i}].group", f"unknown group {r.group!r}",
                                       expected="one of " + ", ".join(map(repr, self.groups.names())))
        self.rules = tuple(rules)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "MaintenanceCalendar":
        """Load ``{"groups": {name: [host or glob, ...]}, "rules": [{group, rrule, duration, tz, dtstart?, name?}]}``."""
        if not isinstance(data, Mapping):
            raise MaintenanceError("calendar", f"{type(data).__name__} is not a mapping",
                                   expected="a mapping with keys 'groups' and 'rules'")
        unknown = set(data) - _TOP_KEYS
        if unknown:
            raise MaintenanceError(", ".join(sorted(map(str, unknown))), "unknown key",
                                   expected="only " + ", ".join(sorted(_TOP_KEYS)))
        groups = data.get("groups", {})
        if not isinstance(groups, Mapping):
            raise MaintenanceError("groups", f"{groups!r} is not a mapping", expected="group name -> list of hosts")
        host_groups = HostGroups(groups)
        raw_rules = data.get("rules", [])
        if isinstance(raw_rules, (str, Mapping)) or not isinstance(raw_rules, Sequence):
            raise MaintenanceError("rules", f"{raw_rules!r} is not a list", expected="a list of rule mappings")
        rules = []
        for i, raw in enumerate(raw_rules):
            where = f"rules[{i}]"
            if not isinstance(raw, Mapping):
                raise MaintenanceError(where, f"{raw!r} is not a mapping", expected="keys " + ", ".join(sorted(_RULE_KEYS)))
            bad = set(raw) - _RULE_KEYS
            if bad:
                raise MaintenanceError(f"{where}.{sorted(map(str, bad))[0]}", "unknown key",
                                       expected="only " + ", ".join(sorted(_RULE_KEYS)))
            for key in ("group", "rrule", "duration"):
                if key not in raw:
                    raise MaintenanceError(f"{where}.{key}", "missing", expected="a value")
            if raw["group"] not in host_groups:
                raise MaintenanceError(f"{where}.group", f"unknown group {raw['group']!r}",
                                       expected="one of " + ", ".join(map(repr, host_groups.names())))
            rules.append(CalendarRule.build(raw["group"], raw["rrule"], raw["duration"], raw.get("tz"),
                                            raw.get("dtstart"), str(raw.get("name", "")), where))
        return cls(host_groups, rules)

    def windows(self, host: str, start: datetime, end: datetime) -> list[PatchWindow]:
        """Calendar windows for ``host`` (via every group it belongs to) starting in [start, end), sorted."""
        _check_aware(start, "start")
        _check_aware(end, "end")
        out = []
        member_of = set(self.groups.groups_of(host))
        for r in self.rules:
            if r.group in member_of:
                for s, e in r.occurrences(start, end):
                    out.append(PatchWindow(host, s, e, 1.0, "calendar", r.rrule, group=r.group,
                                           evidence=r.name or f"calendar rule for group {r.group!r}"))
        out.sort(key=lambda w: (utc(w.start), utc(w.end)))
        return out


def _check_aware(value: Any, name: str) -> None:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise MaintenanceError(name, f"{value!r} is not timezone-aware", expected="an aware datetime")
