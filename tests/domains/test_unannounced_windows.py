"""Unannounced patch windows (bighost-patch-unannounced): an irregular history made from the calendar,
the learner recovering the calendar from it, presplit shown only predictions (and real windows once
open), and the real window gating every patch."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from datetime import timedelta

import numpy as np
import pytest

from tests_support import small_fleet
from presplit.forecast.maintenance import calendar_history, learn_history, shown_windows, utc
from presplit.model.domains import PatchWindowSim
from presplit.plan import PatchDomain, PlaceGuest
from presplit.scenarios import load_scenario
from presplit.scenarios.build import build_hosts, run_scenario, run_start
from presplit.scenarios.loader import ScenarioFileError, load_scenario_file
from presplit.sim.domain_engine import DomainWorkload, run_domains

NAME = "bighost-patch-unannounced"
TRACE_START = 1372629600.0  # the bundled Bitbrains week's first step: 2013-07-01 00:00 Europe/Amsterdam
H = timedelta(hours=1)
DAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3}  # the calendar's groups and their weekdays


@pytest.fixture(scope="module")
def scenario():
    return load_scenario(NAME)


@pytest.fixture(scope="module")
def history(scenario):
    hosts = [h.name for h in build_hosts(scenario)]
    start = run_start(scenario, TRACE_START)
    return hosts, start, calendar_history(scenario.calendar, hosts, start, scenario.history)


def group_of(scenario, host: str) -> str:
    (group,) = scenario.calendar.groups.groups_of(host)
    return group


# ----------------------------------------------------------------------------- the history


def test_history_is_deterministic_and_the_seed_changes_it(scenario, history):
    hosts, start, events = history
    assert calendar_history(scenario.calendar, hosts, start, scenario.history) == events
    other = dataclasses.replace(scenario.history, seed=scenario.history.seed + 1)
    assert calendar_history(scenario.calendar, hosts, start, other) != events


def test_history_is_irregular_as_specified(scenario, history):
    hosts, start, events = history
    spec = scenario.history
    assert (spec.weeks, spec.shift_probability, spec.max_shift, spec.skip_per_group) == (8, 0.25, 3 * H, 1)
    lo = utc(start) - timedelta(weeks=spec.weeks)
    assert all(lo <= utc(e.start) < utc(start) + spec.max_shift for e in events)
    by_group: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for e in events:
        by_group[group_of(scenario, e.host)][e.host].append((e.start, e.end))
    shifts = []
    for group, logs in by_group.items():
        assert len(logs) == 10  # every host of the group logs every occurrence ...
        assert len({tuple(v) for v in logs.values()}) == 1  # ... the same one
        occurrences = next(iter(logs.values()))
        assert len(occurrences) == spec.weeks - spec.skip_per_group  # one occurrence never happened
        for s, e in occurrences:
            assert utc(e) - utc(s) == 2 * H  # shifted, not stretched
            # the planned occurrence: the calendar's weekday at 01:00 local, the same week
            wall = s.astimezone(scenario.calendar.rules[0].tz)
            planned = (wall + timedelta(hours=12)).replace(hour=1, minute=0, second=0)
            planned -= timedelta(days=(planned.weekday() - DAYS[group]) % 7)
            shift = utc(s) - utc(planned)
            assert abs(shift) <= spec.max_shift and shift.total_seconds() % 60 == 0
            shifts.append(shift)
    shifted = [x for x in shifts if x]
    assert 0 < len(shifted) < len(shifts) / 2  # some occurrences moved (p = 0.25), most did not
    assert any(abs(x) >= H for x in shifted) and any(abs(x) < H for x in shifted)  # by hours, and by minutes


# ----------------------------------------------------------------------------- learning it back


def test_the_learner_recovers_the_calendar_from_the_history(scenario, history):
    hosts, start, events = history
    spec = scenario.history
    learned = learn_history(events, spec, spec.zone(scenario.calendar), start)
    per_host = defaultdict(list)
    for p in learned:
        per_host[p.subject].append(p)
    assert sorted(per_host) == sorted(hosts)
    for host, (p, *more) in per_host.items():
        assert not more, (host, [x.description for x in more])
        assert p.kind == "weekly" and "FREQ=WEEKLY;INTERVAL=1;BYDAY=" in p.rule.rrule
        assert p.rule.duration == 2 * H and 0.5 <= p.confidence <= 1.0
        # The learned weekly slot is the calendar's, within the learner's tolerance.
        (true,) = scenario.calendar.windows(host, utc(start), utc(start) + timedelta(days=7))
        (guess,) = p.windows(host, utc(start) - spec.tolerance, utc(start) + timedelta(days=7))
        assert abs(utc(guess.start) - utc(true.start)) <= spec.tolerance, (host, p.description)


def test_predicted_windows_cover_the_real_ones_but_are_not_them(scenario):
    from presplit.scenarios.build import build_run

    run = build_run(scenario)
    real = {w.host: w for w in run.state.patch_windows}
    predicted = {w.host: w for w in run.predicted_windows}
    assert len(real) == len(predicted) == 40 and len(run.predicted_windows) == 40
    slack = scenario.history.tolerance.total_seconds()
    for h, r in real.items():
        p = predicted[h]
        assert (p.start, p.end) != (r.start, r.end)
        assert p.start <= r.start and r.end <= p.end  # the slack covers the learned start's error
        assert abs(p.start - r.start) <= 2 * slack and abs(p.end - r.end) <= 2 * slack
        assert p.rule.startswith("learned: every week on") and "confidence" in p.rule


# ----------------------------------------------------------------------------- what a controller is shown


def test_shown_windows_hold_a_prediction_until_the_real_window_opens_and_then_show_that():
    real = (PatchWindowSim(0, 3600.0, 10800.0, 1800.0),)
    pred = (PatchWindowSim(0, 1200.0, 14000.0, 1800.0, "learned"),)
    assert shown_windows(real, pred, 0.0, 300.0) == pred  # ahead: the prediction
    (held,) = shown_windows(real, pred, 2400.0, 300.0)  # its start passed, nothing announced: held
    assert held.start == 2700.0 and held.end == 14000.0 and held.rule == "learned"
    assert shown_windows(real, pred, 3600.0, 300.0) == real  # announced: the real window, prediction consumed
    assert shown_windows(real, pred, 10800.0, 300.0) == ()  # over
    # A window that never comes: the prediction lapses at its end.
    assert shown_windows((), pred, 13800.0, 300.0) == ()
    assert len(shown_windows((), pred, 13000.0, 300.0)) == 1


def test_a_patch_outside_the_real_window_is_refused_and_does_not_count():
    state = small_fleet(n_hosts=2, guests=((1, 2048.0),) * 2, arrived=False)
    state = state.evolve(patch_windows=(PatchWindowSim(0, 3600.0, 7200.0, 600.0),))

    class PatchEarly:  # as a policy trusting a wrong prediction would
        def propose(self, state, forecasts, now):
            if now == 0:
                return [PlaceGuest(int(g), 1) for g in state.pending_guests()]
            if now in (1800.0, 3600.0 - 300.0):
                return [PatchDomain(0, 600.0, reason="predicted window")]
            return []

    work = DomainWorkload(np.full((2, 36), 0.2), None, np.zeros(2, np.int64))
    result = run_domains(state, work, PatchEarly())
    refused = [e for e in result.events if e.action.kind == "PatchDomain"]
    assert len(refused) == 2 and all(not e.outcome.ok and "no patch window of host 0 is open" in e.outcome.reason
                                     for e in refused)
    assert result.final_state.domains[0].patch_started < 3600.0  # never patched
    assert result.metrics["patch_windows_met"] == 0 and result.metrics["refused_actions"] == 2


# ----------------------------------------------------------------------------- a short run


class Recorder:
    """The presplit policy, recording the windows it is shown at every tick."""

    def __init__(self, policy):
        self.policy, self.shown = policy, []

    def propose(self, state, forecasts, now):
        self.shown.append((now, state.patch_windows))
        return self.policy.propose(state, forecasts, now)

    def __getattr__(self, name):
        return getattr(self.policy, name)


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    """The first 4 hours: Monday's ten windows (01:00-03:00 local, t = 1-3 h) and the hour after."""
    import presplit.policies as policies

    path = tmp_path_factory.mktemp("unannounced") / "short.yaml"
    path.write_text(f"name: short\nbase: {NAME}\nhorizon: 4h\n")
    scenario = load_scenario_file(path)
    make = policies.make_policy
    recorders = []

    def recording(name, **kw):
        policy = make(name, **kw)
        if name == "presplit":
            recorders.append(Recorder(policy))
            return recorders[-1]
        return policy

    mp = pytest.MonkeyPatch()
    mp.setattr(policies, "make_policy", recording)
    try:
        rows = {p: run_scenario(scenario, p, record_events=True) for p in ("presplit", "evacuate")}
    finally:
        mp.undo()
    return scenario, rows, recorders[0]


def test_short_run_meets_every_window_without_outage(short_run):
    _, rows, _ = short_run
    for policy in ("presplit", "evacuate"):
        row = rows[policy][0]
        assert row["patch_windows_total"] == 10 and row["patch_windows_met"] == 10, policy
        assert row["outage_s"] == 0 and row["refused_actions"] == 0, policy
    presplit, evacuate = rows["presplit"][0], rows["evacuate"][0]
    assert presplit["cross_host_migrations"] <= 0.2 * evacuate["cross_host_migrations"]
    assert presplit["fabric_gb"] <= 0.2 * evacuate["fabric_gb"]


def test_presplit_never_sees_the_calendar(short_run):
    scenario, rows, recorder = short_run
    _, result, run = rows["presplit"]
    real = set(run.state.patch_windows)
    assert len(real) == 10 and len(recorder.shown) == 48
    ahead = 0
    for now, windows in recorder.shown:
        for w in windows:
            if w in real:
                assert w.start <= now < w.end, "a real window is shown only once it is open"
            else:
                assert w.start > now, "a prediction never looks open"
                (r,) = [x for x in real if x.host == w.host]
                assert (w.start, w.end) != (r.start, r.end) and w.rule.startswith("learned")
                # close: it covers the real one, at most twice the learner's tolerance wider on each side
                assert r.start - 2 * 3600 <= w.start <= r.start and r.end <= w.end <= r.end + 2 * 3600
                ahead += 1
    assert ahead > 0
    # Every patch ran inside the real window of its host.
    host_of = {d.id: d.host for d in result.final_state.domains}
    windows = {w.host: w for w in real}
    patches = [e for e in result.events if e.action.kind == "PatchDomain"]
    assert patches and all(e.outcome.ok and windows[host_of[e.action.domain]].start <= e.time
                           < windows[host_of[e.action.domain]].end for e in patches)


# ----------------------------------------------------------------------------- the scenario file


@pytest.mark.parametrize("patch, key, words", [
    ("  history: {weeks: 2}", "patch.history.weeks", "at least 3 weeks"),
    ("  history: {skip_per_group: 8}", "patch.history.skip_per_group", "fewer skipped"),
    ("  history: {shift_probability: 1.5}", "patch.history.shift_probability", "<= 1"),
    ("  history: {tz: Mars/Olympus}", "patch.history.tz", "IANA"),
    ("  history: {when: later}", "patch.history.when", "unknown key"),
])
def test_history_errors_name_the_key(tmp_path, patch, key, words):
    path = tmp_path / "bad.yaml"
    path.write_text(f"name: bad\nbase: {NAME}\npatch:\n{patch}\n")
    with pytest.raises(ScenarioFileError) as err:
        load_scenario_file(path)
    assert err.value.key == key and words in str(err.value), str(err.value)
