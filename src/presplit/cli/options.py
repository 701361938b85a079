"""Option types shared by the commands: a duration in the one grammar of :mod:`presplit.durations`."""

from __future__ import annotations

import click

from presplit.durations import DurationError, format_duration, parse_duration

# The forecasters a simulated run (simulate, sweep) decides on: the --forecaster help's list of names.
FORECASTER_NAMES_HELP = ("outlook, reactive (the last value), oracle (the trace's true future over the horizon; "
                         "simulation only), or any model of `presplit forecast models`")


class Duration(click.ParamType):
    """A click option that takes any duration of :mod:`presplit.durations` (``5s``, ``15min``, ``PT1H``, seconds)
    and gives seconds; ``low``/``high`` bound it (inclusive), ``positive`` refuses zero."""

    name = "duration"

    def __init__(self, *, low: float | None = None, high: float | None = None, positive: bool = False) -> None:
        self.low, self.high, self.positive = low, high, positive

    def convert(self, value, param, ctx) -> float:
        if isinstance(value, float) and not isinstance(value, bool):
            seconds = value  # a default, already in seconds
        else:
            try:
                seconds = parse_duration(value, positive=self.positive)
            except DurationError as exc:
                self.fail(str(exc), param, ctx)
        if (self.low is not None and seconds < self.low) or (self.high is not None and seconds > self.high):
            lo = format_duration(self.low) if self.low is not None else "0s"
            hi = format_duration(self.high) if self.high is not None else "any"
            self.fail(f"{value!r} is outside {lo}..{hi}", param, ctx)
        return seconds
