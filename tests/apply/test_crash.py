"""Fault injection: SIGKILL the controller at random points of running plans, restart it, check everything.

Each round starts ``presplit run`` on the same journal and world, waits until
the journal has grown by a random number of events (so the kill lands
anywhere: before an action's ``started``, between it and the world's change,
mid-migration, before ``finished``, inside a revert, between a plan and the
tick mark) and kills it with SIGKILL. After every kill the world, read from
its own store, must be sound: every guest exists once, placed guests run
(or are down inside a domain being patched) in a live domain, no domain
holds more than its allotment. The last round runs to the end; then no
action is left ``started``/``planned``/``reverting``, no plan is ``running``,
``succeeded`` plans have only succeeded actions, and every action's events
tell its story.
"""

from __future__ import annotations

import signal
import time

import numpy as np
import pytest
from apply_support import check_journal, check_world, count_events, in_flight, popen_cli, run_cli, small_scenario

from presplit.apply import Journal

KILLS = 15


@pytest.mark.parametrize("fail_fraction", [0.0, 0.2])
def test_sigkill_at_random_points_loses_nothing(tmp_path, fail_fraction):
    scen = small_scenario(tmp_path, hosts=8, horizon="24h", replicas=1.5)
    db, world = tmp_path / "j.db", tmp_path / "j.db.world"
    args = ["run", "--backend", "sim", "--scenario", str(scen), "--db", f"sqlite:///{db}", "--quiet",
            "--fail-fraction", str(fail_fraction)]
    rng = np.random.default_rng(7 if fail_fraction else 3)
    ever_placed = np.zeros(0, np.int64)
    kills = 0
    for round_ in range(KILLS):
        start = count_events(db)
        target = start + int(rng.integers(5, 120))
        proc = popen_cli(*args, "--seed", str(round_))
        # even rounds: anywhere; odd rounds: while an action is started and not yet finished
        while proc.poll() is None and (count_events(db) < target or (round_ % 2 and not in_flight(db))):
            time.sleep(0.001)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(timeout=60)
        placed = check_world(world)
        if not fail_fraction:  # without faults nothing is ever un-placed: a placed guest stays placed
            assert np.isin(ever_placed, placed).all(), "a guest that ran is gone"
        ever_placed = np.union1d(ever_placed, placed)
        check_journal(f"sqlite:///{db}", finished=False)
    assert kills >= KILLS // 2, "the controller finished before most kills: make the run longer"
    done = run_cli(*args, "--seed", "99", timeout=120)
    assert done.returncode == 0, done.stderr
    assert "stopped=False" in done.stdout
    check_world(world)
    check_journal(f"sqlite:///{db}", finished=True)
    events = Journal(f"sqlite:///{db}").events()
    assert any(e["event"] == "reconciled" for e in events), "no kill landed inside a plan"
    if fail_fraction:
        assert any(e["event"] == "reverted" for e in events)
