"""One grammar for every duration presplit reads: options, scenario and profile keys, API fields.

``parse_duration(value)`` returns seconds (a float) and accepts

- a plain number of seconds: ``300``, ``2.5``, ``"300"``, ``"1e3"``;
- a number with a unit: ``500ms``, ``5s``, ``15min``, ``15m``, ``2h``, ``1d``, ``1w``
  (long forms too: ``sec``, ``minutes``, ``hours``, ``days``, ``weeks``; any case);
- a compound of those, each unit once, with or without spaces:
  ``1h30m``, ``1h 30min``, ``2d 12h``;
- an ISO 8601 duration: ``PT1H``, ``PT15M``, ``P1D``, ``P1DT2H``, ``PT0.5S``, ``P2W``.
  Months and years are refused: they have no fixed length in seconds;
- a :class:`datetime.timedelta`.

It refuses, with an :class:`~presplit.errors.InputError` (:class:`DurationError`)
that names what was expected and echoes the value: bools (``true`` is no
duration, though Python counts it as 1), empty text, NaN and infinities
(``"nan"``, ``"1e999"``), negative durations, and zero where ``positive=True``.

Every reader of a duration (``presplit run --interval``, a scenario's
``patch.duration_per_domain``, a failure spec's ``host_repair``, a maintenance
calendar's ``duration``, the service's ``start_in``, ...) calls this function and
wraps the error with where the value came from, so ``15min`` means the same
everywhere and an error reads the same everywhere.

This is a base-layer module: it imports nothing from presplit but
:mod:`presplit.errors`.
"""

from __future__ import annotations

import math
import numbers
import re
from datetime import timedelta

from presplit.errors import InputError

__all__ = ["EXPECTED", "DurationError", "format_duration", "parse_duration"]

EXPECTED = "a duration such as 5s, 15min, 1h30m, PT1H or a number of seconds"

# Longer than any sensible duration; also bounds the work done on text from the network.
MAX_TEXT = 200

_UNITS = {
    **dict.fromkeys(("ms", "msec", "msecs", "millisecond", "milliseconds"), 0.001),
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1.0),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), 60.0),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), 3600.0),
    **dict.fromkeys(("d", "day", "days"), 86400.0),
    **dict.fromkeys(("w", "wk", "wks", "week", "weeks"), 604800.0),
}
_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)"
_PLAIN = re.compile(rf"{_NUMBER}(?:e[+-]?\d+)?", re.IGNORECASE)
_PART = re.compile(rf"\s*({_NUMBER})\s*([a-z]*)\s*", re.IGNORECASE)
# ISO 8601 durations (section 4.4.3.2), with a decimal fraction on any part (comma or point).
_ISO_NUMBER = r"(\d+(?:[.,]\d+)?)"
_ISO = re.compile(rf"P(?:{_ISO_NUMBER}Y)?(?:{_ISO_NUMBER}M)?(?:{_ISO_NUMBER}W)?(?:{_ISO_NUMBER}D)?"
                  rf"(?:T(?=\d)(?:{_ISO_NUMBER}H)?(?:{_ISO_NUMBER}M)?(?:{_ISO_NUMBER}S)?)?", re.IGNORECASE)
_ISO_SECONDS = (None, None, 604800.0, 86400.0, 3600.0, 60.0, 1.0)  # Y and M have no fixed length


class DurationError(InputError):
    """A value that is not a duration, or not an acceptable one.

    ``str()`` is a sentence on its own (``cannot read duration 'soon' (expected
    ...)``, ``interval 'nan' is not finite (expected ...)``); ``problem`` is the
    same fact led by the value, for callers that prefix the key it came from
    (``host_repair: cannot read 'soon' as a duration``); ``expected`` says what
    would do.
    """

    def __init__(self, value, what: str, problem: str, sentence: str, expected: str) -> None:
        self.value, self.what, self.problem, self.expected = value, what, problem, expected
        super().__init__(f"{sentence} (expected {expected})")


def _shown(value) -> str:
    """The value as the user wrote it, cut so that an error stays one readable line."""
    if isinstance(value, str) and len(value) > MAX_TEXT:
        return f"{value[:MAX_TEXT]!r}... ({len(value)} characters)"
    text = repr(value)
    return text if len(text) <= MAX_TEXT + 2 else text[:MAX_TEXT] + "..."


def _unreadable(value, what: str, detail: str, expected: str) -> DurationError:
    shown = _shown(value)
    tail = f": {detail}" if detail else ""
    return DurationError(value, what, f"cannot read {shown} as a duration{tail}",
                         f"cannot read {what} {shown}{tail}", expected)


def _refused(value, what: str, reason: str, expected: str) -> DurationError:
    shown = _shown(value)
    return DurationError(value, what, f"{shown} {reason}", f"{what} {shown} {reason}", expected)


def _parse_text(text: str, value, what: str, expected: str) -> float:
    """Seconds from the text of a duration (sign included); raises DurationError when it is not one."""
    body = text.strip()
    sign = 1.0
    if body and body[0] in "+-":
        sign, body = (-1.0 if body[0] == "-" else 1.0), body[1:].lstrip()
    if not body:
        raise _unreadable(value, what, "no number", expected)
    if _PLAIN.fullmatch(body) or body.lower() in ("nan", "inf", "infinity"):
        return sign * float(body)
    if body[0] in "pP":
        iso = _ISO.fullmatch(body)
        if iso is None or not any(iso.groups()):
            raise _unreadable(value, what, "not an ISO 8601 duration such as PT1H, PT15M or P1DT2H", expected)
        if iso.group(1) or iso.group(2):
            raise _refused(value, what, "counts months or years, which have no fixed length in seconds",
                           "days or weeks instead (P30D, P4W); minutes go after the T (PT15M)")
        parts = (float(g.replace(",", ".")) * unit for g, unit in zip(iso.groups(), _ISO_SECONDS) if g)
        return sign * sum(parts)
    total, seen, pos = 0.0, set(), 0
    while pos < len(body):
        m = _PART.match(body, pos)
        if m is None or m.end() == pos:
            detail = f"{body[pos:pos + 20]!r} is not a number with a unit" if pos else ""
            raise _unreadable(value, what, detail, expected)
        number, unit = m.group(1), m.group(2).lower()
        if not unit:
            raise _unreadable(value, what, f"{number!r} has no unit", expected)
        if unit not in _UNITS:
            raise _unreadable(value, what, f"{m.group(2)!r} is not a unit of ms, s, min, h, d, w", expected)
        scale = _UNITS[unit]
        if scale in seen:  # '1h 2h' is a slip, not three hours
            raise _unreadable(value, what, f"{m.group(2)!r} is given twice", expected)
        seen.add(scale)
        total += float(number) * scale
        pos = m.end()
    return sign * total


def parse_duration(value, *, what: str = "duration", positive: bool = False) -> float:
    """Seconds from ``value`` (see the module's grammar); ``what`` names the value in errors.

    Refuses bools, empty text, NaN, infinities and negative durations, and zero
    when ``positive``; the error is a :class:`DurationError` (an ``InputError``,
    so also a ``ValueError``).
    """
    expected = EXPECTED.replace("a duration", "a positive duration") if positive else EXPECTED
    if isinstance(value, bool):  # before numbers: bool is an int to Python
        raise _refused(value, what, "is true/false, not a duration", expected)
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, numbers.Real):
        seconds = float(value)
    elif isinstance(value, str):
        if len(value) > MAX_TEXT:
            raise _unreadable(value, what, f"{len(value)} characters is too long for a duration", expected)
        if not value.strip():
            raise _refused(value, what, "is empty", expected)
        seconds = _parse_text(value, value, what, expected)
    else:
        raise _refused(value, what, f"is not a duration ({type(value).__name__})", expected)
    if not math.isfinite(seconds):
        raise _refused(value, what, "is not finite", expected)
    if seconds < 0:
        raise _refused(value, what, "is negative", expected)
    if positive and seconds == 0:
        raise _refused(value, what, "is zero", expected)
    return seconds + 0.0  # -0 reads as 0


def format_duration(seconds: float) -> str:
    """A short reading of a number of seconds that :func:`parse_duration` reads back:
    ``5400 -> '1h30m'``, ``0.5 -> '500ms'``, ``90061 -> '1d1h1m1s'``."""
    if not math.isfinite(seconds):
        return f"{seconds} s"
    sign, left = ("-" if seconds < 0 else ""), abs(float(seconds))
    if left == 0:
        return "0s"
    if left < 1:
        return f"{sign}{left * 1000:g}ms"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        n = int(left // size)
        if n:
            parts.append(f"{n}{unit}")
            left -= n * size
    if left:
        parts.append(f"{round(left, 3):g}s")
    return sign + "".join(parts)
