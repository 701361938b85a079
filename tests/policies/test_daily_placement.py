"""Daily patterns in presplit's fit test (ConsolidationParams.daily, policies/presplit/daily.py).

A constructed two-day trace: guests A and B peak at the same hour every day, C
12 hours apart. At a quiet hour of the second day, just before that peak, the
last 2.5 hours make every pairing look safe; only yesterday says A and B
must not share a host that cannot hold both peaks.
"""

from __future__ import annotations

import numpy as np

from presplit.model.hardware import HP_ML110_G5, Fleet, GuestType, SimModel
from presplit.policies.presplit.consolidation import ConsolidationParams, PredictiveConsolidation
from presplit.policies.presplit.daily import day_steps, past_columns
from presplit.sim.engine import HISTORY_LENGTH, Engine

PE = HP_ML110_G5.pe_mips  # each guest asks for one whole PE: two peaks fill a host past the target
DAY = day_steps(300.0)
NOW = DAY + 100           # a tick of the second day
PEAK = slice(106, 112)    # the daily peak, 30-60 min after the time of day of NOW
A, B, C = 0, 1, 2


def two_day_trace(days: int = 2) -> np.ndarray:
    """Utilisation [3 guests, days x 288]: quiet (A 0.25, B 0.15, C 0.2), A and B at 1.0 over PEAK every
    day, C at 1.0 over PEAK shifted by 12 h."""
    u = np.zeros((3, days * DAY))
    u[A], u[B], u[C] = 0.25, 0.15, 0.2
    for d in range(days):
        o = d * DAY
        u[A, o + PEAK.start:o + PEAK.stop] = 1.0
        u[B, o + PEAK.start:o + PEAK.stop] = 1.0
        lo = (PEAK.start + DAY // 2) % DAY
        u[C, o + lo:o + lo + 6] = 1.0
    return u


def engine_at(util: np.ndarray, step: int, daily: str) -> tuple[Engine, PredictiveConsolidation]:
    """An engine at tick ``step`` with A, B, C alone on hosts 0, 1, 2 (host 3 off) and the history the engine
    would have recorded; the policy decides on the outlook (which reads that history whole)."""
    fleet = Fleet(host_types=(HP_ML110_G5,), host_type_of=np.zeros(4, dtype=np.int64),
                  guest_types=(GuestType("g", PE, 1, 613.0, 100.0),),
                  guest_type_of=np.zeros(util.shape[0], dtype=np.int64),
                  model=SimModel(horizon_s=300.0 * (util.shape[1] - 1)))
    policy = PredictiveConsolidation(ConsolidationParams(daily=daily), forecaster="outlook")
    e = Engine(fleet, util, policy)
    for g, h in ((A, 0), (B, 1), (C, 2)):
        e.create(g, h)
    n = min(HISTORY_LENGTH, step + 1)
    e.history[:, :n] = e.util[:, step - np.arange(n)]
    e.history_len = n
    e.requested = e.history[:, 0] * e.g_mips
    e.h_util_mips = np.bincount(e.host_of, e.requested, minlength=4)
    e.now = 0.1 + 300.0 * step
    return e, policy


def together(moves: list[tuple[int, int]]) -> dict[int, set[int]]:
    """Host -> guests after the moves (from A, B, C on hosts 0, 1, 2)."""
    host = {A: 0, B: 1, C: 2}
    for g, dst in moves:
        host[g] = dst
    out: dict[int, set[int]] = {}
    for g, h in host.items():
        out.setdefault(h, set()).add(g)
    return out


def test_the_quiet_hour_looks_safe_to_the_forecast():
    """The premise: over the last 2.5 h nothing peaked, so without yesterday A and B end up on one host."""
    u = two_day_trace()
    assert u[:, NOW - HISTORY_LENGTH + 1:NOW + 1].max() < 0.5
    e, policy = engine_at(u, NOW, "off")
    hosts = together(policy.optimise(e))
    assert any({A, B} <= gs for gs in hosts.values())


def test_auto_keeps_coinciding_peaks_apart_and_pairs_complementary_ones():
    u = two_day_trace()
    e, policy = engine_at(u, NOW, "auto")
    moves = policy.optimise(e)
    hosts = together(moves)
    assert not any({A, B} <= gs for gs in hosts.values())  # their peaks coincided yesterday: 2 x PE > target
    assert any({B, C} <= gs or {A, C} <= gs for gs in hosts.values())  # 12 h apart: they share a host
    # Yesterday, the pair the forecast would have chosen did not fit: A + B's peak is the host's full capacity.
    assert (u[A, PEAK] + u[B, PEAK]).max() * PE / (2 * PE) > ConsolidationParams().target


def test_single_day_trace_decides_as_off():
    """On a single-day trace (and on the first day of a longer one) auto is a no-op: the same moves."""
    one_day = two_day_trace(days=1)
    for util, step in ((one_day, 200), (one_day, DAY - 1), (two_day_trace(), DAY + 5)):
        moves = {}
        for daily in ("off", "auto"):
            e, policy = engine_at(util, step, daily)
            moves[daily] = policy.optimise(e)
        assert moves["off"] == moves["auto"]


def test_single_day_run_is_identical():
    """A whole one-day run: every migration and metric the same with daily auto and off."""
    rng = np.random.default_rng(3)
    n_guests, n_hosts = 40, 20
    base = rng.uniform(0.05, 0.6, (n_guests, 1))
    util = np.clip(base + 0.3 * np.sin(np.linspace(0, 2 * np.pi, DAY))[None, :] * rng.uniform(0, 1, (n_guests, 1))
                   + rng.normal(0, 0.05, (n_guests, DAY)), 0.0, 1.0)
    fleet = Fleet(host_types=(HP_ML110_G5,), host_type_of=np.zeros(n_hosts, dtype=np.int64),
                  guest_types=(GuestType("g", 1000.0, 1, 613.0, 100.0),),
                  guest_type_of=np.zeros(n_guests, dtype=np.int64), model=SimModel())
    runs = {}
    for daily in ("off", "auto"):
        runs[daily] = Engine(fleet, util, PredictiveConsolidation(ConsolidationParams(daily=daily)),
                             record_events=True).run()
    assert runs["off"].events == runs["auto"].events
    assert runs["off"].metrics == runs["auto"].metrics


def test_past_columns_never_reach_past_now():
    """The windows compared are earlier days' [now, now + horizon], all at or before the current tick."""
    assert past_columns(DAY + 11, 12, 300.0, 1) is None       # less than a day plus the horizon observed
    cols = past_columns(3 * DAY + 40, 12, 300.0, 7)
    assert cols.shape == (3, 13)                               # only the days there are
    assert cols.max() <= 3 * DAY + 40
    assert list(cols[:, 0]) == [2 * DAY + 40, DAY + 40, 40]    # the most recent day first
    assert past_columns(DAY + 20, DAY, 300.0, 1) is None       # a horizon of a day would read the future
