"""Patch-window prediction: calendar on DST and month-end edges, learning, prediction, bad input."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta, timezone

import pytest
from dateutil.rrule import DAILY, MONTHLY, TU, WEEKLY, rrule
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from zoneinfo import ZoneInfo

from presplit.forecast.maintenance import (
    CalendarRule,
    LearnedPattern,
    MaintenanceCalendar,
    MaintenanceError,
    MaintenanceEvent,
    PatchPredictor,
    PatchWindow,
    learn_windows,
    localize,
    merge_windows,
    parse_duration,
)

AMS = ZoneInfo("Europe/Amsterdam")
NYC = ZoneInfo("America/New_York")
UTC = timezone.utc
H = timedelta(hours=1)


def cal_for(rrule_text: str, tz: str = "Europe/Amsterdam", dtstart: str | None = "2024-01-01T02:00",
            duration: str = "2h") -> MaintenanceCalendar:
    rule = {"group": "g", "rrule": rrule_text, "duration": duration, "tz": tz}
    if dtstart is not None:
        rule["dtstart"] = dtstart
    return MaintenanceCalendar.from_dict({"groups": {"g": ["h*"]}, "rules": [rule]})


def starts(cal: MaintenanceCalendar, lo: datetime, hi: datetime, host: str = "h1") -> list[datetime]:
    return [w.start for w in cal.windows(host, lo, hi)]


def span(y1, m1, d1, y2, m2, d2, tz=UTC):
    return datetime(y1, m1, d1, tzinfo=tz), datetime(y2, m2, d2, tzinfo=tz)


# ----------------------------------------------------------------------------- DST


def test_amsterdam_spring_forward_nonexistent_0200_moves_to_0300():
    # 2024-03-31: clocks jump 02:00 CET -> 03:00 CEST, so 02:00 local does not exist.
    cal = cal_for("FREQ=DAILY")
    ws = cal.windows("h1", *span(2024, 3, 30, 2024, 4, 2))
    assert [w.start.isoformat() for w in ws] == [
        "2024-03-30T02:00:00+01:00",
        "2024-03-31T03:00:00+02:00",  # RFC 5545 3.3.5: offset before the gap -> 01:00 UTC
        "2024-04-01T02:00:00+02:00",  # wall clock stays 02:00, UTC moves from 01:00 to 00:00
    ]
    gap_day = ws[1]
    assert gap_day.start.astimezone(UTC) == datetime(2024, 3, 31, 1, 0, tzinfo=UTC)
    assert gap_day.end.isoformat() == "2024-03-31T05:00:00+02:00"
    assert all(w.duration == 2 * H for w in ws)  # durations are absolute


def test_amsterdam_spring_forward_0230_shifted_by_gap_length():
    cal = cal_for("FREQ=DAILY", dtstart="2024-03-30T02:30")
    ws = cal.windows("h1", *span(2024, 3, 31, 2024, 4, 1))
    assert [w.start.isoformat() for w in ws] == ["2024-03-31T03:30:00+02:00"]


def test_amsterdam_fall_back_ambiguous_0200_takes_first_occurrence():
    # 2024-10-27: 03:00 CEST -> 02:00 CET, 02:00..02:59 happens twice.
    cal = cal_for("FREQ=DAILY")
    (w,) = cal.windows("h1", *span(2024, 10, 27, 2024, 10, 28))
    assert w.start.fold == 0 and w.start.utcoffset() == 2 * H  # first (summer-time) 02:00
    assert w.start.astimezone(UTC) == datetime(2024, 10, 27, 0, 0, tzinfo=UTC)
    # 2 h of real time later the wall clock shows 03:00 (an hour was repeated).
    assert w.end.isoformat() == "2024-10-27T03:00:00+01:00"
    assert w.duration == 2 * H


def test_new_york_spring_forward():
    # 2024-03-10: 02:00 EST -> 03:00 EDT.
    cal = cal_for("FREQ=DAILY", tz="America/New_York")
    ws = cal.windows("h1", *span(2024, 3, 9, 2024, 3, 12))
    assert [w.start.isoformat() for w in ws] == [
        "2024-03-09T02:00:00-05:00", "2024-03-10T03:00:00-04:00", "2024-03-11T02:00:00-04:00"]
    assert ws[1].start.astimezone(UTC) == datetime(2024, 3, 10, 7, 0, tzinfo=UTC)
    assert ws[1].end.isoformat() == "2024-03-10T05:00:00-04:00"


def test_new_york_fall_back():
    # 2024-11-03: 02:00 EDT -> 01:00 EST. 02:00 itself exists once (EST); 01:30 is ambiguous.
    cal = cal_for("FREQ=DAILY", tz="America/New_York")
    (w,) = cal.windows("h1", *span(2024, 11, 3, 2024, 11, 4))
    assert w.start.isoformat() == "2024-11-03T02:00:00-05:00"
    assert w.duration == 2 * H
    cal = cal_for("FREQ=DAILY", tz="America/New_York", dtstart="2024-11-01T01:30")
    (w,) = cal.windows("h1", *span(2024, 11, 3, 2024, 11, 4))
    assert w.start.isoformat() == "2024-11-03T01:30:00-04:00"  # first occurrence (EDT)
    assert w.end.isoformat() == "2024-11-03T02:30:00-05:00"  # 2 h real time later


def test_windows_query_bounds_are_compared_as_instants_not_wall_clock():
    # Same tzinfo on both sides makes Python compare wall clocks; the second 02:30
    # (fold=1, 01:30 UTC) is *after* the 02:00 CEST window start (00:00 UTC).
    cal = cal_for("FREQ=DAILY")
    second_0230 = datetime(2024, 10, 27, 2, 30, fold=1, tzinfo=AMS)
    first_0130 = datetime(2024, 10, 27, 1, 30, tzinfo=AMS)
    assert cal.windows("h1", second_0230, second_0230 + 3 * H) == []
    assert len(cal.windows("h1", first_0130, second_0230)) == 1
    # A window whose end reads earlier on the wall clock than its start is still valid.
    w = PatchWindow("h1", datetime(2024, 10, 27, 2, 30, tzinfo=AMS),
                    datetime(2024, 10, 27, 2, 10, fold=1, tzinfo=AMS), 1.0, "calendar", "x")
    assert w.duration == timedelta(minutes=40)


def test_last_sunday_rule_hits_both_amsterdam_dst_days():
    cal = cal_for("FREQ=MONTHLY;BYDAY=-1SU")
    got = {w.start.date(): w.start.isoformat() for w in cal.windows("h1", *span(2024, 1, 1, 2025, 1, 1))}
    assert got[date(2024, 3, 31)] == "2024-03-31T03:00:00+02:00"
    assert got[date(2024, 10, 27)] == "2024-10-27T02:00:00+02:00"
    assert len(got) == 12


# ----------------------------------------------------------------------------- month end


@pytest.mark.parametrize("year, feb_last", [(2024, 29), (2023, 28)])
def test_bymonthday_minus_one_is_last_day_across_february(year, feb_last):
    cal = cal_for("FREQ=MONTHLY;BYMONTHDAY=-1", tz="UTC", dtstart=f"{year}-01-01T02:00")
    got = [s.date() for s in starts(cal, *span(year, 1, 1, year, 5, 1))]
    assert got == [date(year, 1, 31), date(year, 2, feb_last), date(year, 3, 31), date(year, 4, 30)]


def test_bymonthday_31_skips_short_months():
    # RFC 5545 3.3.10: instances with an invalid date (e.g. February 31) are ignored, not moved.
    cal = cal_for("FREQ=MONTHLY;BYMONTHDAY=31", tz="UTC")
    got = [s.date() for s in starts(cal, *span(2024, 1, 1, 2025, 1, 1))]
    assert [d.month for d in got] == [1, 3, 5, 7, 8, 10, 12]
    assert all(d.day == 31 for d in got)


def test_monthly_from_dtstart_on_31st_skips_short_months():
    cal = cal_for("FREQ=MONTHLY", tz="UTC", dtstart="2024-01-31T02:00")
    got = [s.date() for s in starts(cal, *span(2024, 1, 1, 2024, 7, 1))]
    assert got == [date(2024, 1, 31), date(2024, 3, 31), date(2024, 5, 31)]


def test_month_end_window_crossing_midnight_into_next_month():
    cal = cal_for("FREQ=MONTHLY;BYMONTHDAY=-1", tz="UTC", dtstart="2024-01-01T23:00", duration="3h")
    (w,) = cal.windows("h1", *span(2024, 2, 1, 2024, 3, 1))
    assert w.start == datetime(2024, 2, 29, 23, tzinfo=UTC)
    assert w.end == datetime(2024, 3, 1, 2, tzinfo=UTC)


# ----------------------------------------------------------------------------- "every second Tuesday"


def test_every_second_tuesday_as_monthly_second_tuesday():
    # Reading 1 (Patch Tuesday): the 2nd Tuesday of each month.
    a = cal_for("FREQ=MONTHLY;BYDAY=TU;BYSETPOS=2")
    b = cal_for("FREQ=MONTHLY;BYDAY=2TU")
    lo, hi = span(2024, 1, 1, 2024, 7, 1)
    got = [s.date() for s in starts(a, lo, hi)]
    assert got == [date(2024, 1, 9), date(2024, 2, 13), date(2024, 3, 12),
                   date(2024, 4, 9), date(2024, 5, 14), date(2024, 6, 11)]
    assert starts(a, lo, hi) == starts(b, lo, hi)
    assert all(s.hour == 2 for s in starts(a, lo, hi))


def test_every_second_tuesday_as_fortnightly():
    # Reading 2: every other Tuesday, phase fixed by DTSTART.
    cal = cal_for("FREQ=WEEKLY;INTERVAL=2;BYDAY=TU", dtstart="2024-01-02T02:00")
    got = [s.date() for s in starts(cal, *span(2024, 1, 1, 2024, 3, 1))]
    assert got == [date(2024, 1, 2), date(2024, 1, 16), date(2024, 1, 30), date(2024, 2, 13), date(2024, 2, 27)]


def test_dtstart_inside_rule_text_with_tzid_and_utc_until():
    text = ("DTSTART;TZID=America/New_York:20240109T020000\n"
            "RRULE:FREQ=MONTHLY;BYDAY=2TU;UNTIL=20240312T055959Z")
    cal = MaintenanceCalendar.from_dict({"groups": {"g": ["h1"]},
                                         "rules": [{"group": "g", "rrule": text, "duration": "PT2H"}]})
    got = starts(cal, *span(2024, 1, 1, 2025, 1, 1))
    # March 12 02:00 EDT is 06:00 UTC, after UNTIL (01:59:59 EDT), so excluded.
    assert [s.isoformat() for s in got] == ["2024-01-09T02:00:00-05:00", "2024-02-13T02:00:00-05:00"]


def test_exdate_removes_an_occurrence():
    text = "DTSTART;TZID=Europe/Amsterdam:20240109T020000\nRRULE:FREQ=MONTHLY;BYDAY=2TU\nEXDATE:20240213T020000"
    cal = MaintenanceCalendar.from_dict({"groups": {"g": ["h1"]},
                                         "rules": [{"group": "g", "rrule": text, "duration": 3600}]})
    got = [s.date() for s in starts(cal, *span(2024, 1, 1, 2024, 4, 1))]
    assert got == [date(2024, 1, 9), date(2024, 3, 12)]


def test_groups_globs_and_membership():
    cal = MaintenanceCalendar.from_dict({
        "groups": {"db": ["db-*"], "special": ["db-7", "web-1"]},
        "rules": [
            {"group": "db", "rrule": "FREQ=WEEKLY;BYDAY=SU", "dtstart": "2024-01-07T03:00", "duration": "1h",
             "tz": "UTC", "name": "db sunday"},
            {"group": "special", "rrule": "FREQ=WEEKLY;BYDAY=SA", "dtstart": "2024-01-06T03:00", "duration": "1h",
             "tz": "UTC"},
        ]})
    lo, hi = span(2024, 1, 1, 2024, 1, 15)
    assert len(cal.windows("db-1", lo, hi)) == 2
    assert len(cal.windows("db-7", lo, hi)) == 4
    assert len(cal.windows("web-1", lo, hi)) == 2
    assert cal.windows("cache-1", lo, hi) == []
    assert cal.windows("DB-1", lo, hi) == []  # host ids match case-sensitively
    w = cal.windows("db-1", lo, hi)[0]
    assert (w.confidence, w.source, w.group, w.evidence) == (1.0, "calendar", "db", "db sunday")


@pytest.mark.parametrize("text, seconds", [
    ("2h", 7200), ("90m", 5400), ("1h30m", 5400), ("PT2H", 7200), ("PT1H30M", 5400), ("P1D", 86400),
    (45, 45), (timedelta(minutes=5), 300), ("1.5h", 5400)])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == timedelta(seconds=seconds)


# ----------------------------------------------------------------------------- bad calendar input

GOOD_RULE = {"group": "g", "rrule": "FREQ=DAILY", "dtstart": "2024-01-01T02:00", "duration": "2h",
             "tz": "Europe/Amsterdam"}


def load(rule_changes=None, drop=(), top=None):
    rule = {**GOOD_RULE, **(rule_changes or {})}
    for k in drop:
        rule.pop(k)
    data = {"groups": {"g": ["h*"]}, "rules": [rule]}
    data.update(top or {})
    return MaintenanceCalendar.from_dict(data)


@pytest.mark.parametrize("kwargs, field, words", [
    ({"rule_changes": {"rrule": "FREQ=SOMETIMES"}}, "rules[0].rrule", ["FREQ", "RFC 5545"]),
    ({"rule_changes": {"rrule": "BYDAY=TU"}}, "rules[0].rrule", ["RFC 5545"]),
    ({"rule_changes": {"rrule": "FREQ=WEEKLY;BYDAYS=TU"}}, "rules[0].rrule", ["BYDAYS"]),
    ({"rule_changes": {"rrule": ""}}, "rules[0].rrule", ["RFC 5545"]),
    ({"rule_changes": {"rrule": "FREQ=DAILY;BYHOUR=25"}}, "rules[0].rrule", ["hour"]),
    ({"rule_changes": {"duraton": "2h"}}, "rules[0].duraton", ["unknown key", "only"]),
    ({"top": {"rulez": []}}, "rulez", ["unknown key"]),
    ({"rule_changes": {"duration": "-2h"}}, "rules[0].duration", ["negative", "positive duration"]),
    ({"rule_changes": {"duration": -60}}, "rules[0].duration", ["negative"]),
    ({"rule_changes": {"duration": "0m"}}, "rules[0].duration", ["zero"]),
    ({"rule_changes": {"duration": "two hours"}}, "rules[0].duration", ["cannot read"]),
    ({"rule_changes": {"duration": True}}, "rules[0].duration", ["not a duration"]),
    ({"drop": ["duration"]}, "rules[0].duration", ["missing"]),
    ({"rule_changes": {"tz": "Mars/Olympus_Mons"}}, "rules[0].tz", ["unknown time zone", "IANA"]),
    ({"rule_changes": {"tz": 5}}, "rules[0].tz", ["IANA"]),
    ({"drop": ["tz"]}, "rules[0].tz", ["missing"]),
    ({"drop": ["dtstart"]}, "rules[0].dtstart", ["missing", "DTSTART"]),
    ({"rule_changes": {"dtstart": "yesterday"}}, "rules[0].dtstart", ["ISO 8601"]),
    ({"rule_changes": {"rrule": "DTSTART:20240101T020000\nRRULE:FREQ=DAILY"}}, "rules[0].dtstart",
     ["both", "exactly one"]),
    ({"rule_changes": {"rrule": "DTSTART;TZID=America/New_York:20240101T020000\nRRULE:FREQ=DAILY"},
      "drop": ["dtstart"]}, "rules[0].rrule", ["differs"]),
    ({"rule_changes": {"rrule": "DTSTART:2024-01-01\nRRULE:FREQ=DAILY"}, "drop": ["dtstart"]},
     "rules[0].rrule", ["YYYYMMDDTHHMMSS"]),
    ({"rule_changes": {"group": "nope"}}, "rules[0].group", ["unknown group", "'g'"]),
    ({"top": {"groups": {"g": "h*"}}}, "groups.g", ["list"]),
    ({"top": {"groups": {"g": ["h1", ""]}}}, "groups.g[1]", ["host id"]),
    ({"top": {"rules": {"group": "g"}}}, "rules", ["list"]),
    ({"top": {"rules": ["FREQ=DAILY"]}}, "rules[0]", ["mapping"]),
])
def test_calendar_bad_input_names_the_field(kwargs, field, words):
    with pytest.raises(MaintenanceError) as info:
        load(**kwargs)
    assert info.value.field == field
    message = str(info.value)
    assert message.startswith(field + ": ")
    for word in words:
        assert word in message
    assert "expected" in message or "missing" in message


def test_calendar_must_be_a_mapping():
    with pytest.raises(MaintenanceError, match=r"^calendar: .*expected a mapping"):
        MaintenanceCalendar.from_dict(["groups"])


def test_patch_window_validates_itself():
    t = datetime(2024, 1, 1, tzinfo=UTC)
    with pytest.raises(MaintenanceError, match="^start: .*aware"):
        PatchWindow("h", datetime(2024, 1, 1), t, 1.0, "calendar", "r")
    with pytest.raises(MaintenanceError, match="^end: .*not after"):
        PatchWindow("h", t, t, 1.0, "calendar", "r")
    with pytest.raises(MaintenanceError, match=r"^confidence: .*\[0, 1\]"):
        PatchWindow("h", t, t + H, 1.5, "calendar", "r")
    with pytest.raises(MaintenanceError, match="^source: .*'calendar' or 'learned'"):
        PatchWindow("h", t, t + H, 1.0, "guess", "r")


# ----------------------------------------------------------------------------- learning


def synth(host, walls, tz, rng, *, jitter_min=30, drop=0.15, dur_min=(90, 150)):
    """Events at local wall times ``walls`` with start jitter, random misses and random durations."""
    events, kept = [], []
    for i, wall in enumerate(walls):
        # Keep first and last so the observed span is the generated span.
        if 0 < i < len(walls) - 1 and rng.random() < drop:
            continue
        # Jitter in real time: on a fall-back day, wall-clock jitter could land in the repeated hour.
        s = (localize(wall, tz).astimezone(UTC) + timedelta(minutes=rng.randint(-jitter_min, jitter_min))).astimezone(tz)
        events.append(MaintenanceEvent(host, s, s + timedelta(minutes=rng.randint(*dur_min))))
        kept.append(wall)
    return events, kept


def noise(host, n, tz, rng):
    out = []
    for _ in range(n):
        s = localize(datetime(2023, 1, 1) + timedelta(minutes=rng.randint(0, 500 * 24 * 60)), tz)
        out.append(MaintenanceEvent(host, s, s + timedelta(minutes=45)))
    return out


def only(patterns, subject):
    got = [p for p in patterns if p.subject == subject]
    assert len(got) == 1, [p.evidence for p in got]
    return got[0]


def test_learns_patch_tuesday_with_jitter_misses_and_noise():
    rng = random.Random(7)
    walls = list(rrule(MONTHLY, byweekday=TU(2), dtstart=datetime(2023, 1, 1, 2, 0), count=18))
    events, kept = synth("h1", walls, AMS, rng)
    events += noise("h1", 3, AMS, rng)
    p = only(learn_windows(events, tz="Europe/Amsterdam"), "h1")
    assert p.kind == "monthly-nth-weekday"
    assert "BYDAY=2TU" in p.rule.rrule and "TZID=Europe/Amsterdam" in p.rule.rrule
    assert (p.seen, p.expected) == (len(kept), len(walls))
    assert p.confidence == pytest.approx(len(kept) / len(walls), abs=1e-3)
    assert abs(p.rule.dtstart.hour * 60 + p.rule.dtstart.minute - 120) <= 30
    assert timedelta(minutes=90) <= p.rule.duration <= timedelta(minutes=150)
    assert "second Tuesday" in p.description


def test_learns_weekly_across_dst_in_local_time():
    rng = random.Random(3)
    walls = list(rrule(WEEKLY, byweekday=6, dtstart=datetime(2023, 6, 4, 3, 0), count=52))  # Sundays 03:00
    events, kept = synth("n1", walls, NYC, rng, jitter_min=20, drop=0.1)
    events += noise("n1", 4, NYC, rng)
    p = only(learn_windows(events, tz=NYC), "n1")
    assert p.kind == "weekly" and "INTERVAL=1;BYDAY=SU" in p.rule.rrule
    assert p.confidence == pytest.approx(len(kept) / len(walls), abs=1e-3)
    assert p.confidence > 0.8


def test_learning_sunday_0230_through_both_dst_changes_is_exact():
    # The spring-forward Sunday's 02:30 does not exist; the host really started at 03:30 CEST,
    # which is exactly where the calendar semantics put the expected occurrence.
    walls = list(rrule(WEEKLY, byweekday=6, dtstart=datetime(2024, 1, 7, 2, 30), count=52))
    events = [MaintenanceEvent("s", localize(w, AMS), localize(w, AMS) + H) for w in walls]
    assert events[12].start.isoformat() == "2024-03-31T03:30:00+02:00"
    assert events[42].start.isoformat() == "2024-10-27T02:30:00+02:00"
    p = only(learn_windows(events, tz=AMS, tolerance=timedelta(minutes=10)), "s")
    assert (p.confidence, p.seen, p.expected) == (1.0, 52, 52)
    assert p.rule.rrule == "DTSTART;TZID=Europe/Amsterdam:20240107T023000\nRRULE:FREQ=WEEKLY;INTERVAL=1;BYDAY=SU"
    assert p.rule.duration == H


def test_schedule_that_stopped_loses_confidence_by_observed_until():
    walls = list(rrule(WEEKLY, byweekday=0, dtstart=datetime(2024, 1, 1, 1, 0), count=10))
    events = [MaintenanceEvent("m", w.replace(tzinfo=UTC), w.replace(tzinfo=UTC) + H) for w in walls]
    assert only(learn_windows(events), "m").confidence == 1.0
    later = learn_windows(events, observed_until=datetime(2024, 4, 1, tzinfo=UTC))  # 3 more Mondays unseen
    p = only(later, "m")
    assert (p.seen, p.expected) == (10, 13)
    assert learn_windows(events, observed_until=datetime(2024, 12, 1, tzinfo=UTC)) == []  # below 0.5


def test_learns_fortnightly_not_weekly_or_four_weekly():
    rng = random.Random(11)
    walls = list(rrule(WEEKLY, interval=2, byweekday=1, dtstart=datetime(2024, 1, 2, 22, 0), count=20))
    events, kept = synth("h2", walls, UTC, rng, jitter_min=40)
    p = only(learn_windows(events), "h2")
    assert "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU" in p.rule.rrule
    assert p.confidence == pytest.approx(len(kept) / len(walls), abs=1e-3)
    # The learned phase predicts the next real occurrence.
    nxt = p.windows("h2", walls[-1].replace(tzinfo=UTC) + H, walls[-1].replace(tzinfo=UTC) + timedelta(days=20))
    assert [w.start.date() for w in nxt] == [(walls[-1] + timedelta(weeks=2)).date()]


def test_learns_day_of_month_and_month_end():
    rng = random.Random(5)
    mid, _ = synth("m15", list(rrule(MONTHLY, bymonthday=15, dtstart=datetime(2023, 1, 1, 1, 0), count=14)),
                   UTC, rng)
    end, _ = synth("mend", list(rrule(MONTHLY, bymonthday=-1, dtstart=datetime(2023, 1, 1, 23, 0), count=14)),
                   UTC, rng, jitter_min=20)
    learned = learn_windows(mid + end)
    assert "BYMONTHDAY=15" in only(learned, "m15").rule.rrule
    p = only(learned, "mend")
    assert "BYMONTHDAY=-1" in p.rule.rrule and p.kind == "monthly-day"


def test_learns_daily():
    rng = random.Random(9)
    events, kept = synth("d1", list(rrule(DAILY, dtstart=datetime(2024, 3, 1, 4, 0), count=60)), AMS, rng,
                         jitter_min=15, drop=0.05)
    p = only(learn_windows(events, tz=AMS), "d1")
    assert p.kind == "daily"
    assert p.confidence == pytest.approx(len(kept) / 60, abs=1e-3)


def test_two_schedules_on_one_host_give_two_patterns():
    rng = random.Random(13)
    a, _ = synth("h", list(rrule(MONTHLY, byweekday=TU(2), dtstart=datetime(2024, 1, 1, 2, 0), count=12)), UTC, rng)
    b, _ = synth("h", list(rrule(WEEKLY, byweekday=5, dtstart=datetime(2024, 1, 6, 14, 0), count=50)), UTC, rng)
    kinds = sorted(p.kind for p in learn_windows(a + b))
    assert kinds == ["monthly-nth-weekday", "weekly"]


def test_one_off_events_are_not_patterns():
    rng = random.Random(17)
    assert learn_windows(noise("h", 12, UTC, rng)) == []
    t = datetime(2024, 1, 2, 2, tzinfo=UTC)
    two = [("h", t, t + H), ("h", t + timedelta(weeks=1), t + timedelta(weeks=1, hours=1))]
    assert learn_windows(two) == []  # two events are below min_occurrences=3


def test_group_learning_pools_sparse_host_logs():
    # Four hosts patched in rotation, each only every fourth Patch Tuesday.
    rng = random.Random(19)
    walls = list(rrule(MONTHLY, byweekday=TU(2), dtstart=datetime(2023, 1, 1, 3, 0), count=16))
    events = []
    for i, wall in enumerate(walls):
        s = localize(wall + timedelta(minutes=rng.randint(-20, 20)), AMS)
        events.append(MaintenanceEvent(f"db-{i % 4}", s, s + 2 * H))
    learned = learn_windows(events, tz=AMS, groups={"db": ["db-*"]})
    assert [p.subject for p in learned] == ["db"]  # per host: 1 in 4 months is below min_confidence
    p = learned[0]
    assert p.is_group and p.confidence == 1.0 and "BYDAY=2TU" in p.rule.rrule
    predictor = PatchPredictor(learned=learned, groups={"db": ["db-*"]})
    ws = predictor.predicted_windows("db-9", timedelta(days=62), now=datetime(2024, 5, 1, tzinfo=UTC))
    assert [w.start.date() for w in ws] == [date(2024, 5, 14), date(2024, 6, 11)]
    assert all(w.group == "db" and w.source == "learned" for w in ws)


def test_learned_rule_round_trips_into_a_calendar():
    rng = random.Random(23)
    events, _ = synth("h", list(rrule(WEEKLY, byweekday=2, dtstart=datetime(2024, 1, 3, 2, 30), count=30)),
                      AMS, rng, jitter_min=0, drop=0.0)
    p = only(learn_windows(events, tz=AMS), "h")
    assert p.confidence == 1.0
    cal = MaintenanceCalendar.from_dict({"groups": {"g": ["h"]},
                                         "rules": [{"group": "g", "rrule": p.rule.rrule, "duration": "2h"}]})
    lo, hi = span(2024, 8, 1, 2024, 9, 1)
    assert starts(cal, lo, hi, "h") == [w.start for w in p.windows("h", lo, hi)]


def test_events_accept_tuples_mappings_and_iso_strings():
    t = datetime(2024, 1, 2, 2, tzinfo=UTC)
    raw = [("h", t + timedelta(weeks=i), t + timedelta(weeks=i, hours=1)) for i in range(3)]
    raw.append({"host": "h", "start": "2024-01-23T02:05:00+00:00", "end": "2024-01-23T03:00:00+00:00"})
    (p,) = learn_windows(raw)
    assert p.seen == 4 and p.confidence == 1.0


@pytest.mark.parametrize("events, kwargs, field, words", [
    ([("h", datetime(2024, 1, 1), datetime(2024, 1, 1, 1))], {}, "events[0].start", ["aware"]),
    ([("h", datetime(2024, 1, 1, 1, tzinfo=UTC), datetime(2024, 1, 1, tzinfo=UTC))], {}, "events[0].end",
     ["not after"]),
    ([("", datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 1, 1, tzinfo=UTC))], {}, "events[0].host",
     ["host id"]),
    ([{"host": "h", "start": "2024-01-01T00:00Z", "end": "2024-01-01T01:00Z", "duration": 1}], {},
     "events[0].duration", ["unknown key"]),
    ([{"host": "h", "start": "2024-01-01T00:00Z"}], {}, "events[0].end", ["missing"]),
    ([{"host": "h", "start": "soon", "end": "2024-01-01T01:00Z"}], {}, "events[0].start", ["ISO 8601"]),
    (["h 2024-01-01"], {}, "events[0]", ["not an event"]),
    ([], {"tz": "Nowhere/City"}, "tz", ["unknown time zone"]),
    ([], {"tolerance": timedelta(0)}, "tolerance", ["positive"]),
    ([], {"min_occurrences": 1}, "min_occurrences", [">= 2"]),
    ([], {"min_confidence": 2.0}, "min_confidence", ["[0, 1]"]),
    ([], {"observed_until": datetime(2024, 1, 1)}, "observed_until", ["aware"]),
    ([], {"groups": {"g": "h*"}}, "groups.g", ["list"]),
])
def test_learning_bad_input_names_the_field(events, kwargs, field, words):
    with pytest.raises(MaintenanceError) as info:
        learn_windows(events, **kwargs)
    assert info.value.field == field
    for word in words:
        assert word in str(info.value)


# ----------------------------------------------------------------------------- prediction


def daily_predictor(**kw) -> PatchPredictor:
    return PatchPredictor(cal_for("FREQ=DAILY", **kw))


def test_predicted_windows_horizon_filtering():
    p = daily_predictor()
    now = datetime(2024, 6, 10, 1, 0, tzinfo=AMS)
    assert len(p.predicted_windows("h1", timedelta(days=3), now=now)) == 3
    assert p.predicted_windows("h1", H, now=now) == []  # [now, now+1h) excludes a window at exactly now+1h
    (w,) = p.predicted_windows("h1", timedelta(minutes=61), now=now)
    assert w.start == datetime(2024, 6, 10, 2, 0, tzinfo=AMS)
    # A window already in progress at `now` is not a *next* window.
    ongoing = p.predicted_windows("h1", timedelta(hours=12), now=datetime(2024, 6, 10, 3, 0, tzinfo=AMS))
    assert ongoing == []
    assert p.predicted_windows("not-a-member", timedelta(days=30), now=now) == []


def test_horizon_is_absolute_time_across_dst():
    # now = 12:00 CET the day before spring-forward; +24 h real time = 13:00 CEST next day.
    p = daily_predictor(dtstart="2024-03-01T12:30")
    ws = p.predicted_windows("h1", timedelta(hours=24), now=datetime(2024, 3, 30, 12, 0, tzinfo=AMS))
    assert [w.start.isoformat() for w in ws] == ["2024-03-30T12:30:00+01:00", "2024-03-31T12:30:00+02:00"]


def _learned_for(host: str, tz=AMS, hour=2, minute=0, jitter=0) -> LearnedPattern:
    rng = random.Random(29)
    walls = list(rrule(DAILY, dtstart=datetime(2024, 1, 1, hour, minute), count=40))
    events, _ = synth(host, walls, tz, rng, jitter_min=jitter, drop=0.3, dur_min=(60, 60))
    return only(learn_windows(events, tz=tz), host)


def test_calendar_and_learned_agreeing_are_merged_with_max_confidence():
    learned = _learned_for("h1", minute=30)  # 02:30 local, 1 h, confidence < 1
    assert learned.confidence < 1.0
    p = PatchPredictor(cal_for("FREQ=DAILY"), [learned])
    ws = p.predicted_windows("h1", timedelta(days=5), now=datetime(2024, 6, 1, tzinfo=UTC))
    assert len(ws) == 5
    for w in ws:
        assert (w.confidence, w.source) == (1.0, "calendar")
        assert w.start.hour == 2 and w.start.minute == 0 and w.end.hour == 4  # union of 02:00-04:00 and 02:30-03:30
        assert "FREQ=DAILY" in w.rule and " | " in w.rule
    alone = PatchPredictor(None, [learned]).predicted_windows("h1", timedelta(days=2),
                                                              now=datetime(2024, 6, 1, tzinfo=UTC))
    assert [w.confidence for w in alone] == [learned.confidence] * 2
    assert all(w.source == "learned" for w in alone)
    # Learned host patterns apply to that host only.
    assert PatchPredictor(None, [learned]).predicted_windows("h2", timedelta(days=2)) == []


def test_merge_keeps_touching_windows_apart():
    t = datetime(2024, 1, 1, tzinfo=UTC)
    a = PatchWindow("h", t, t + H, 0.4, "learned", "a")
    b = PatchWindow("h", t + H, t + 2 * H, 0.9, "learned", "b")
    c = PatchWindow("h", t + timedelta(minutes=90), t + 3 * H, 0.7, "learned", "c")
    merged = merge_windows([c, b, a])
    assert [(w.start, w.end, w.confidence, w.rule) for w in merged] == [
        (t, t + H, 0.4, "a"), (t + H, t + 3 * H, 0.9, "b | c")]


@pytest.mark.parametrize("host, horizon, now, field", [
    ("h1", timedelta(days=1), datetime(2024, 1, 1), "now"),
    ("h1", timedelta(0), datetime(2024, 1, 1, tzinfo=UTC), "horizon"),
    ("h1", -H, datetime(2024, 1, 1, tzinfo=UTC), "horizon"),
    ("h1", 3600, datetime(2024, 1, 1, tzinfo=UTC), "horizon"),
    ("", H, datetime(2024, 1, 1, tzinfo=UTC), "host"),
])
def test_predicted_windows_bad_input(host, horizon, now, field):
    with pytest.raises(MaintenanceError) as info:
        daily_predictor().predicted_windows(host, horizon, now=now)
    assert info.value.field == field and "expected" in str(info.value)


def test_predictor_rejects_non_patterns():
    with pytest.raises(MaintenanceError, match=r"^learned\[0\]: .*learn_windows"):
        PatchPredictor(None, ["FREQ=DAILY"])


def test_direct_calendar_rule_construction_is_validated():
    rule = CalendarRule("g", "FREQ=WEEKLY;BYDAY=MO", H, AMS, datetime(2024, 1, 1, 2))
    cal = MaintenanceCalendar({"g": ["h"]}, [rule])
    assert len(cal.windows("h", *span(2024, 1, 1, 2024, 2, 1))) == 5
    with pytest.raises(MaintenanceError, match=r"^rules\[0\]\.group: unknown group"):
        MaintenanceCalendar({"x": ["h"]}, [rule])
    with pytest.raises(MaintenanceError, match=r"^rule\.rrule: "):
        CalendarRule("g", "FREQ=NEVER", H, AMS, datetime(2024, 1, 1, 2))


# ----------------------------------------------------------------------------- properties

ZONES = ["Europe/Amsterdam", "America/New_York", "Australia/Lord_Howe", "UTC", "Asia/Kolkata"]
PROPERTY_LEARNED = {z: _learned_for("h1", tz=ZoneInfo(z), hour=2, minute=15, jitter=10) for z in ZONES[:2]}

rule_strategy = st.fixed_dictionaries({
    "rrule": st.sampled_from(["FREQ=DAILY", "FREQ=WEEKLY;BYDAY=SU", "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU",
                              "FREQ=MONTHLY;BYDAY=TU;BYSETPOS=2", "FREQ=MONTHLY;BYMONTHDAY=-1",
                              "FREQ=MONTHLY;BYMONTHDAY=31", "FREQ=MONTHLY;BYDAY=-1SU", "FREQ=HOURLY;INTERVAL=7"]),
    "hour": st.sampled_from([0, 1, 2, 3, 12, 23]),
    "minute": st.sampled_from([0, 15, 30, 45]),
    "minutes": st.integers(5, 30 * 60),
    "tz": st.sampled_from(ZONES),
})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rules=st.lists(rule_strategy, min_size=1, max_size=3),
       now=st.datetimes(datetime(2023, 1, 1), datetime(2026, 12, 31)),
       now_tz=st.sampled_from(ZONES),
       horizon_h=st.integers(1, 24 * 45),
       learned_zone=st.sampled_from([None, *list(PROPERTY_LEARNED)]))
def test_property_windows_within_horizon_sorted_and_disjoint(rules, now, now_tz, horizon_h, learned_zone):
    cal = MaintenanceCalendar.from_dict({"groups": {"g": ["h*"]}, "rules": [
        {"group": "g", "rrule": r["rrule"], "dtstart": f"2022-12-31T{r['hour']:02d}:{r['minute']:02d}",
         "duration": r["minutes"] * 60, "tz": r["tz"]} for r in rules]})
    learned = [PROPERTY_LEARNED[learned_zone]] if learned_zone else []
    now = localize(now, ZoneInfo(now_tz))
    horizon = timedelta(hours=horizon_h)
    ws = PatchPredictor(cal, learned).predicted_windows("h1", horizon, now=now)
    lo, hi = now.astimezone(UTC), now.astimezone(UTC) + horizon
    for w in ws:
        assert lo <= w.start.astimezone(UTC) < hi
        assert w.end.astimezone(UTC) > w.start.astimezone(UTC)
        assert 0.0 <= w.confidence <= 1.0
    for a, b in zip(ws, ws[1:]):
        assert a.end.astimezone(UTC) <= b.start.astimezone(UTC)  # sorted and never overlapping
    # Nothing is lost by merging: every raw calendar window lies inside a predicted one.
    for raw in cal.windows("h1", now, now + horizon):
        assert any(w.start.astimezone(UTC) <= raw.start.astimezone(UTC)
                   and raw.end.astimezone(UTC) <= w.end.astimezone(UTC) for w in ws)


@settings(max_examples=200, deadline=None)
@given(wall=st.datetimes(datetime(2020, 1, 1), datetime(2030, 12, 31)), zone=st.sampled_from(ZONES))
def test_property_localize_follows_rfc5545(wall, zone):
    tz = ZoneInfo(zone)
    got = localize(wall, tz)
    back = got.replace(tzinfo=None, fold=0)
    if back == wall:
        # Existing wall time; if ambiguous, the first occurrence (earliest instant) is chosen.
        other = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
        assert got.astimezone(UTC) <= other
    else:
        # Nonexistent wall time: shifted forward by the gap (offset before the gap).
        before = (wall - timedelta(hours=3)).replace(tzinfo=tz).utcoffset()
        assert back > wall
        assert got.astimezone(UTC) == (wall - before).replace(tzinfo=UTC)
