"""The one place that assembles a controller: its forecast feed, its applier and its control loop.

``presplit run``, ``presplit serve``, the QEMU demo and the failover demo's
controller all open their own journal, lease, backend and clock (those
differ: a stored simulated world or real hosts, a simulated, paced or wall
clock), then hand them here. :func:`assemble` builds, once and the same way
for all of them:

- the forecast feed (:class:`~presplit.sim.forecast_feed.LoopFeed`), owned by
  the loop, which hands its forecasts to every policy each tick; with
  ``replay`` a restarted controller's feed first sees again what the ticks
  before had observed (:func:`seen_before`, from the journal, on a world that
  can say what demand it fed at a past time);
- the applier, built *before* the loop and passed into it, so a face that
  needs its own (the service's :class:`~presplit.service.loop_thread.ServiceApplier`)
  passes its class rather than replacing the loop's;
- the loop (:class:`~presplit.control.loop.ControlLoop` or a subclass).

``ControlLoop(`` is constructed here and nowhere else outside the tests.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from presplit.apply.applier import Applier
from presplit.backends.base import ReplaysDemand
from presplit.control.loop import ControlLoop
from presplit.sim.forecast_feed import LoopFeed


def seen_before(journal, backend, now: float, interval_s: float, n: int) -> list[tuple[float, np.ndarray, object]]:
    """What the loop had observed at its last ``n`` ticks before ``now`` (oldest first): (tick, CPU MIPS per guest,
    disk/network IO or None), for a world that can say what demand it fed at a past time (``demand_at``).

    A restarted controller's forecaster starts from this, so it decides as one that never stopped. A tick
    observes the world when it runs: at its time, or -- when the plan before it ran past that time -- when
    that plan ended (the journal's last event of the plan), as :meth:`ControlLoop.run` does.
    """
    if not isinstance(backend, ReplaysDemand) or n <= 0:
        return []
    ends = journal.plan_end_times()
    ticks, t = [], backend.capabilities().start_s
    while t < now - 1e-9:
        ticks.append(t)
        t = t + interval_s
    seen, clock = [], ticks[0] if ticks else 0.0
    for tick in ticks:
        clock = max(clock, tick)
        seen.append((tick, clock))
        clock = max(clock, ends.get(tick, clock))
    return [(tick, *backend.demand_at(at)) for tick, at in seen[-n:]]


def assemble(backend, journal, clock, policies, limits, *, interval_s: float, until_s: float | None,
             dry_run: bool = False, source: str = "", forecaster: str | Callable[[], str | None] | None = None,
             replay: bool = False, keep_window: bool = False, applier: Callable[..., Applier] = Applier,
             applier_clock=None, applier_kw: dict[str, Any] | None = None,
             loop: Callable[..., ControlLoop] | None = None, loop_kw: dict[str, Any] | None = None,
             check_invariants: bool = True, summary_every: int = 1, max_plan_age_s: float | None = None,
             max_failed_ticks: int | None = None, supersede: bool = False) -> ControlLoop:
    """A control loop on ``backend``, ``journal`` and ``clock``, with its feed and applier.

    ``forecaster``: the decision forecaster's name (None: the observed outlook), or a callable read every
    tick (``serve``'s profile may change). ``replay``: refill a restarted controller's feed from the journal
    (``run``). ``keep_window``: keep the observed window every tick even when no policy needs forecasts
    (``serve``'s dashboard). ``applier``: the applier class or factory, called as
    ``applier(backend, journal, clock, check_invariants=..., **applier_kw)``; ``applier_clock``: a clock of its
    own for it (the failover agent's, whose loop clock runs the agent between ticks). ``loop``: a subclass of
    :class:`ControlLoop` (None: the loop itself), with ``loop_kw`` for its own arguments.
    """
    def history(now: float, n: int) -> list:
        return seen_before(journal, backend, now, interval_s, n)

    feed = LoopFeed(interval_s, forecaster, history=history if replay else None, keep_window=keep_window)
    the_applier = applier(backend, journal, applier_clock if applier_clock is not None else clock,
                          check_invariants=check_invariants, **(applier_kw or {}))
    args = (backend, journal, clock, policies, limits)
    kw = dict(applier=the_applier, interval_s=interval_s, until_s=until_s, dry_run=dry_run, source=source,
              forecasts=feed, summary_every=summary_every, max_plan_age_s=max_plan_age_s,
              max_failed_ticks=max_failed_ticks, supersede=supersede)
    if loop is None:
        return ControlLoop(*args, **kw)
    return loop(*args, **kw, **(loop_kw or {}))  # a subclass: the service's, the demo's
