"""The one duration grammar (presplit.durations) and the readers that use it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from click.testing import CliRunner

from presplit.durations import DurationError, format_duration, parse_duration
from presplit.errors import InputError

READS = [
    # plain seconds
    (300, 300.0), (2.5, 2.5), ("300", 300.0), (" 45 ", 45.0), ("1e3", 1000.0), ("0", 0.0), ("-0", 0.0),
    (timedelta(minutes=5), 300.0),
    # a number with a unit, any case, long forms
    ("500ms", 0.5), ("5s", 5.0), ("5 s", 5.0), ("15min", 900.0), ("15m", 900.0), ("15M", 900.0), ("2h", 7200.0),
    ("1.5h", 5400.0), ("1d", 86400.0), ("1w", 604800.0), ("2 hours", 7200.0), ("90 seconds", 90.0),
    (".5h", 1800.0), ("+5s", 5.0),
    # compounds
    ("1h30m", 5400.0), ("1h 30min", 5400.0), ("1d 2h", 93600.0), ("2h5m10s", 7510.0), ("1m500ms", 60.5),
    # ISO 8601
    ("PT1H", 3600.0), ("PT15M", 900.0), ("P1D", 86400.0), ("P1DT2H", 93600.0), ("PT0.5S", 0.5),
    ("PT0,5S", 0.5), ("P2W", 1209600.0), ("pt1h30m", 5400.0), ("PT1H30M", 5400.0),
]


@pytest.mark.parametrize("value, seconds", READS, ids=[repr(v) for v, _ in READS])
def test_reads(value, seconds):
    assert parse_duration(value) == seconds


REFUSED = [
    # value, words in the error
    ("soon", ["cannot read duration 'soon'"]),
    ("5x", ["'x' is not a unit"]),
    ("1h30", ["'30' has no unit"]),
    ("1h 2h", ["'h' is given twice"]),
    ("h", ["cannot read duration 'h'"]),
    ("-", ["no number"]),
    ("", ["is empty"]),
    ("   ", ["is empty"]),
    (True, ["true/false"]),
    (None, ["not a duration (NoneType)"]),
    ([5], ["not a duration (list)"]),
    ("nan", ["not finite"]),
    ("inf", ["not finite"]),
    (float("nan"), ["not finite"]),
    (float("inf"), ["not finite"]),
    ("1e999", ["not finite"]),
    ("-5m", ["'-5m' is negative"]),
    (-60, ["-60 is negative"]),
    ("-3", ["negative"]),
    ("P1M", ["months or years", "P30D", "PT15M"]),
    ("P1Y", ["months or years"]),
    ("P", ["ISO 8601"]),
    ("PT", ["ISO 8601"]),
    ("P1H", ["ISO 8601"]),  # hours belong after the T
    ("P1DT", ["ISO 8601"]),  # a T with nothing after it
    ("x" * 5000, ["5000 characters", "..."]),
]


@pytest.mark.parametrize("value, words", REFUSED, ids=[repr(v)[:30] for v, _ in REFUSED])
def test_refuses_with_one_clear_line(value, words):
    with pytest.raises(DurationError) as err:
        parse_duration(value)
    text = str(err.value)
    assert isinstance(err.value, InputError) and isinstance(err.value, ValueError)
    assert "\n" not in text and len(text) < 400, text
    assert "(expected " in text, text
    for w in words:
        assert w in text, (w, text)
    assert err.value.value is value and err.value.what == "duration"


def test_positive_refuses_zero_and_what_names_the_value():
    with pytest.raises(DurationError, match=r"interval '0s' is zero \(expected a positive duration"):
        parse_duration("0s", what="interval", positive=True)
    assert parse_duration("0s") == 0.0


def test_problem_is_led_by_the_value_for_callers_that_prefix_their_key():
    with pytest.raises(DurationError) as err:
        parse_duration("soon", what="host_repair")
    assert str(err.value).startswith("cannot read host_repair 'soon'")
    assert err.value.problem == "cannot read 'soon' as a duration"
    with pytest.raises(DurationError) as err:
        parse_duration("-1h", what="start_in")
    assert (str(err.value).split(" (")[0], err.value.problem) == ("start_in '-1h' is negative", "'-1h' is negative")


@pytest.mark.parametrize("seconds, text", [(0, "0s"), (0.5, "500ms"), (5, "5s"), (90, "1m30s"), (5400, "1h30m"),
                                           (90061, "1d1h1m1s"), (1.25, "1.25s"), (86400 * 9, "9d")])
def test_format_reads_back(seconds, text):
    assert format_duration(seconds) == text
    assert parse_duration(text) == pytest.approx(seconds)


# --------------------------------------------------------------------------- every reader takes the grammar

GRAMMAR = ["90min", "1h 30min", "PT1H30M", "5400"]


@pytest.mark.parametrize("text", GRAMMAR)
def test_every_reader_takes_the_whole_grammar(text):
    from presplit.control.clock import parse_duration as clock_parse
    from presplit.forecast.maintenance import parse_duration as calendar_parse
    from presplit.sim.failures import parse_rate_spec

    assert clock_parse(text) == 5400.0
    assert calendar_parse(text) == timedelta(seconds=5400)
    spec = parse_rate_spec(f"host_repair={text},domain_restart={text},link_repair={text},guest_boot={text}")
    assert spec.host_repair_s == spec.domain_restart_s == spec.link_repair_s == spec.guest_boot_s == 5400.0


@pytest.mark.parametrize("text", GRAMMAR)
def test_scenario_file_keys_take_the_whole_grammar(tmp_path, text):
    from cli_support import SMALL_SCENARIO
    from presplit.scenarios.loader import load_scenario_file

    path = tmp_path / "s.yaml"
    path.write_text(SMALL_SCENARIO.format(trace="nowhere").replace("horizon: 2h", f"""horizon: {text}
patch:
  duration_per_domain: {text}
  calendar:
    groups: {{g: ["h*"]}}
    rules: [{{group: g, rrule: FREQ=WEEKLY, dtstart: "2011-03-01T02:00", duration: {text}, tz: UTC}}]
  history: {{weeks: 4, max_shift: {text}, tolerance: {text}}}
"""))
    scenario = load_scenario_file(path)
    assert scenario.horizon_s == 5400.0 and scenario.model.patch_duration_s == 5400.0
    assert scenario.history.max_shift == scenario.history.tolerance == timedelta(seconds=5400)
    assert scenario.calendar.rules[0].duration == timedelta(seconds=5400)


def test_profile_interval_takes_the_whole_grammar(tmp_path):
    from presplit.control.profile import ProfileError, load_profile

    path = tmp_path / "p.yaml"
    path.write_text("policies: [presplit]\ninterval: PT5M\n")
    assert load_profile(str(path)).interval_s == 300.0
    path.write_text("policies: [presplit]\ninterval: 0s\n")
    with pytest.raises(ProfileError, match="interval: '0s' is zero .*positive duration"):
        load_profile(str(path))


@pytest.mark.parametrize("option, value", [("--history", "PT6H"), ("--history", "1h 30min"), ("--lead", "PT15M")])
def test_forecast_step_options_take_the_whole_grammar(option, value):
    from presplit.cli.forecast_cmd import parse_steps

    assert parse_steps(value, 300, option) >= 1
    assert parse_steps("72", 300, option) == 72  # a bare number counts steps there


def test_forecast_step_option_error_is_one_line(tmp_path):
    from cli_support import make_day
    from presplit.cli.main import cli

    day = make_day(tmp_path / "day", n_vms=4)
    result = CliRunner().invoke(cli, ["forecast", "backtest", "--trace", str(day), "--lead", "soon"])
    assert result.exit_code == 2 and "--lead: cannot read 'soon' as a duration" in result.output, result.output
    assert "PT6H" in result.output and len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize("text", GRAMMAR)
def test_run_and_serve_duration_options_take_the_whole_grammar(text):
    """--interval, --until, --pace and --max-plan-age of run and serve all read through duration_option."""
    from presplit.cli.run_cmd import duration_option

    assert duration_option(text, "--interval", positive=True) == 5400.0


@pytest.mark.parametrize("value, seconds", [("PT2S", 2.0), ("1500ms", 1.5), ("1min", 60.0), ("3", 3.0)])
def test_the_option_type_reads_the_whole_grammar(value, seconds):
    import click

    from presplit.cli.options import Duration

    @click.command()
    @click.option("--hold", type=Duration(low=0.5, high=60.0), default=2.0)
    def cmd(hold):
        click.echo(repr(hold))

    assert CliRunner().invoke(cmd, ["--hold", value]).output.strip() == repr(seconds)
    assert CliRunner().invoke(cmd, []).output.strip() == "2.0"


@pytest.mark.parametrize("args, words", [
    (["--heartbeat-timeout", "90s"], "'90s' is outside 500ms..1m"),
    (["--max-seconds", "-5"], "'-5' is negative"),
    (["--view-every", "0"], "'0' is zero"),
    (["--hold", "1 fortnight"], "'fortnight' is not a unit"),
])
def test_demo_duration_options_refuse_before_anything_starts(args, words):
    from presplit.cli.main import cli

    result = CliRunner().invoke(cli, ["demo", "qemu", *args])
    assert result.exit_code == 2 and words in result.output
