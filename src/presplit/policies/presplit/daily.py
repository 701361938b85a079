"""Daily patterns in the fit test: a destination must also have held host + guest at this time of day before.

The decision forecast looks at the last hours of each guest (the engine keeps
30 samples, 2.5 h, as CloudSim's ``PowerVm`` does), so at a quiet hour two
guests whose peaks come at the same time every day look complementary and
are packed together -- until their daily peaks arrive and the host is
relieved by migrations. Where the trace is longer than a day, the same
window one day earlier says what is coming: :class:`DailyWindows` keeps, per
host of the policy's tentative assignment, the *observed* summed demand of
its guests over the decision horizon's window shifted back by one day (and
by each earlier day, up to ``days``), and a destination fits only if host +
guest stayed under the target on every one of those past windows.

It reads only the past: the columns it takes are samples at or before the
current tick (the window ``[now - k day, now - k day + horizon]`` with the
horizon shorter than a day), read in place from the engine's utilisation
matrix (which holds the whole trace already), and sums them per host one
column at a time: a fleet of 100,000 guests costs
a temporary of one value per guest plus ``hosts x days x (horizon + 1)`` for
the hosts' sums (about 16 ms and 1 MB a tick per day compared, 10,000 hosts),
never a copy of the trace.

It switches on only when the observed history is at least one day plus the
horizon (``auto``): on the single-day PlanetLab traces it never does, so
their results are unchanged.
"""

from __future__ import annotations

import numpy as np

DAY_S = 86_400.0


def day_steps(interval_s: float) -> int:
    """Ticks in a day at this interval."""
    return int(round(DAY_S / interval_s))


def past_columns(step: int, horizon: int, interval_s: float, days: int) -> np.ndarray | None:
    """Column indices ``[days_used, horizon + 1]`` of the trace: this tick's decision window on each of
    the last ``days`` days (most recent first); None where less than one day plus the horizon has been
    observed (then there is no complete earlier day to compare with)."""
    day = day_steps(interval_s)
    if horizon >= day or step < day + horizon:
        return None
    n = min(days, step // day)
    starts = step - day * np.arange(1, n + 1)
    cols = starts[:, None] + np.arange(horizon + 1)[None, :]
    assert cols.max() <= step  # the past only: the horizon is shorter than a day
    return cols


class DailyWindows:
    """Per host of a tentative assignment, the summed observed demand (MIPS) of its guests over the decision
    window on each earlier day; updated as guests move, queried as a fit test."""

    def __init__(self, util: np.ndarray, g_mips: np.ndarray, cols: np.ndarray, host_of: np.ndarray,
                 n_hosts: int) -> None:
        self.util, self.g_mips, self.cols = util, g_mips, cols
        n_days, width = cols.shape
        self.h = np.zeros((n_hosts, n_days, width))
        placed = np.flatnonzero(host_of >= 0)
        on = host_of[placed]
        mips = g_mips[placed]
        for d in range(n_days):  # one column at a time: a [guests] temporary, never [guests, days, horizon]
            for j in cols[d]:
                self.h[:, d, j - cols[d, 0]] = np.bincount(on, util[placed, j] * mips, minlength=n_hosts)

    def guest(self, g: int) -> np.ndarray:
        """Guest g's demand (MIPS) over the window on each earlier day: [days, horizon + 1]."""
        return self.util[g, self.cols] * self.g_mips[g]

    def move(self, g: int, src: int, dst: int) -> None:
        """Guest g leaves src for dst in the tentative assignment."""
        rows = self.guest(g)
        self.h[src] -= rows
        self.h[dst] += rows

    def peak_after(self, hosts: np.ndarray, g: int) -> np.ndarray:
        """Per candidate host, the highest summed demand of host + g over the earlier days' windows (MIPS):
        peaks of the two that coincided on some day add up, peaks that never did do not."""
        both = self.h[hosts] + self.guest(g)[None, :, :]
        return both.max(axis=(1, 2))
