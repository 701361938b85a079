"""One loop, two clocks (SimPy's lesson): simulated time as fast as it can go, or the wall clock.

Both have ``now()`` (seconds) and ``sleep_until(t)``. :class:`SimClock` jumps
to ``t`` and tells its listeners (a simulated backend's ``advance``), so a
day of ticks and migrations runs in the time the computing takes.
:class:`WallClock` sleeps, in short slices so a stop request (SIGTERM) is
seen within ``slice_s``; its ``now()`` is seconds since it was made plus
``start``, so the loop's tick arithmetic is the same for both.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

# The one duration grammar lives in presplit.durations; this name stays for callers
# that import it from here (``cli/run_cmd.py``).
from presplit.durations import parse_duration  # noqa: F401


class SimClock:
    simulated = True

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)
        self._listeners: list[Callable[[float], None]] = []

    def now(self) -> float:
        return self._now

    def on_advance(self, fn: Callable[[float], None]) -> None:
        self._listeners.append(fn)

    def sleep_until(self, t: float) -> None:
        if t < self._now:
            return
        self._now = float(t)
        for fn in self._listeners:
            fn(self._now)


class WallClock:
    simulated = False

    def __init__(self, start: float = 0.0, *, stop: threading.Event | None = None, slice_s: float = 0.2,
                 on_idle: Callable[[], None] | None = None) -> None:
        self._t0 = time.monotonic() - float(start)
        self.stop = stop or threading.Event()
        self.slice_s = slice_s
        self.on_idle = on_idle  # called after every slice of a wait (e.g. a watchdog between ticks)

    def now(self) -> float:
        return time.monotonic() - self._t0

    def on_advance(self, fn: Callable[[float], None]) -> None:  # real hosts move on their own
        pass

    def sleep_until(self, t: float) -> None:
        while not self.stop.is_set():
            left = t - self.now()
            if left <= 0:
                return
            self.stop.wait(min(left, self.slice_s))
            if self.on_idle is not None and not self.stop.is_set():
                self.on_idle()
