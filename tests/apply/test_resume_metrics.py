"""Resume that loses nothing: SIGKILL ``presplit run`` at random moments, restart it, and the whole run's
metrics equal an uninterrupted run's.

Both simulated worlds, with the default profile (``presplit``):

- the CloudSim day (``--scenario cloudsim --until 24h``): the engine lives in the controller's memory and a
  restart rebuilds it by replaying the journal from t=0 (``CloudSimWorld.resume``);
- ``bighost-patch`` (``--until 6h``): the split-domain world in its own store keeps the metrics as it
  changes (``SimWorld``'s ``RunMetrics``, in the same transaction as each change).

Each round starts ``presplit run`` on the same journal and kills it with SIGKILL: most rounds once the
journal holds a random number of events (drawn over the uninterrupted run's, so kills spread over the
whole run; odd rounds also wait, a little, for an action in flight), every fourth after a random
wall-clock delay (which may land in start-up, the replay or reconciliation). After
every kill the world a restart finds is sound -- every guest in exactly one place (a host, or a live
domain, or pending), no host or domain over its capacity; the CloudSim world is rebuilt here from the
journal as a restart does, and the policy, asked again at every replayed tick, proposes exactly the
journal's moves. A last run finishes; then no plan is open, the journal tells every action's story, and
``presplit state --json``'s ``metrics`` -- and the final ``metrics`` line of ``presplit run`` -- equal
the uninterrupted run's *exactly* (every key but ``wall_s`` and ``peak_rss_mb``, which are the process's).
"""

from __future__ import annotations

import json
import signal
import time

import numpy as np
import pytest
from apply_support import check_journal, check_world, count_events, in_flight, popen_cli, run_cli

from presplit.apply import Journal

KILLS = 20  # per scenario
PROCESS_KEYS = ("wall_s", "peak_rss_mb")  # this process's, not the run's

SCENARIOS = [pytest.param("cloudsim", "24h", id="cloudsim-24h"),
             pytest.param("bighost-patch", "6h", id="bighost-patch-6h")]


def state_json(db) -> dict:
    out = run_cli("state", "--db", f"sqlite:///{db}", "--json", "-", timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def run_metrics(data: dict) -> dict:
    assert data["metrics"], "presplit state shows no metrics"
    return {k: v for k, v in data["metrics"].items() if k not in PROCESS_KEYS}


def metrics_line(stdout: str) -> dict:
    line = next(x for x in stdout.splitlines() if x.startswith("metrics "))
    pairs = dict(kv.split("=", 1) for kv in line.split()[1:])
    return {k: v for k, v in pairs.items() if k not in PROCESS_KEYS}


def check_cloudsim_world(db) -> None:
    """Rebuild the CloudSim world from the journal as a restarted controller does; it must be sound."""
    from presplit.backends.cloudsim_world import CloudSimWorld
    from presplit.cli.simulate_cmd import load_scenario_trace
    from presplit.scenarios import resolve_scenario
    from presplit.scenarios.trace_fleet import build_fleet

    factory, traces = resolve_scenario("cloudsim")
    workload = load_scenario_trace(traces[0], "cloudsim")
    world = CloudSimWorld(workload, "presplit", fleet=build_fleet(factory, workload))
    journal = Journal(f"sqlite:///{db}")
    try:
        world.resume(journal.history(), world.model.interval_s)
    finally:
        journal.close()
    e = world.engine
    assert world.replay_mismatches == [], f"the policy proposed other moves at t={world.replay_mismatches[:3]}"
    assert world.invariants(e) == [], world.invariants(e)
    # every guest that runs is on exactly one host; one in flight is listed at its source and destination only
    listed = np.zeros(e.n_guests, np.int64)
    for h, guests in enumerate(e.lists):
        for g in guests:
            listed[g] += 1
            assert e.host_of[g] == h or (g, h) in e.incoming, f"guest {g} listed on host {h}, runs on {e.host_of[g]}"
    running = e.alive & (e.host_of >= 0)
    assert (listed[running] == 1 + np.array([sum(1 for gg, _ in e.incoming if gg == g)
                                             for g in np.flatnonzero(running)])).all()
    assert (listed[~running] == 0).all()


@pytest.mark.slow
@pytest.mark.parametrize("scenario, until", SCENARIOS)
def test_sigkills_and_restarts_lose_no_metrics(tmp_path, scenario, until):
    base = ["run", "--backend", "sim", "--scenario", scenario, "--until", until, "--quiet"]
    ref_db = tmp_path / "ref.db"
    ref = run_cli(*base, "--db", f"sqlite:///{ref_db}", timeout=300)
    assert ref.returncode == 0, ref.stderr
    reference = run_metrics(state_json(ref_db))

    db = tmp_path / "j.db"
    args = [*base, "--db", f"sqlite:///{db}"]
    rng = np.random.default_rng(20240611 if scenario == "cloudsim" else 611)
    total = count_events(ref_db)
    targets = np.sort(rng.uniform(0.01, 0.9, KILLS) * total).astype(int)
    kills, ever_placed = 0, np.zeros(0, np.int64)
    for round_ in range(KILLS):
        # At least a few events on from where the last round stopped, but never past the run's end: a round
        # whose target lies beyond the last event would let the run finish unkilled (how many events a run
        # writes is known from the uninterrupted one; restarts add a few reconciliation events).
        target = min(max(int(targets[round_]), count_events(db) + 20), int(0.97 * total))
        delay = float(rng.uniform(0.2, 1.5))
        proc = popen_cli(*args)
        started = time.monotonic()
        if round_ % 4 == 3:  # a random moment: start-up, replay, reconciliation or a tick
            while proc.poll() is None and time.monotonic() - started < delay:
                time.sleep(0.005)
        else:  # once the journal has grown; odd rounds while an action is started and not finished (if one
            wait_until = None  # comes within half a second)
            while proc.poll() is None:
                if count_events(db) >= target:
                    if not round_ % 2 or in_flight(db):
                        break
                    wait_until = wait_until or time.monotonic() + 0.5
                    if time.monotonic() > wait_until:
                        break
                time.sleep(0.001)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        _, err = proc.communicate(timeout=120)
        assert proc.returncode in (0, -signal.SIGKILL), err
        if not db.exists():
            continue  # killed before the journal was made
        if scenario == "cloudsim":
            check_cloudsim_world(db)
        else:
            placed = check_world(tmp_path / "j.db.world")
            assert np.isin(ever_placed, placed).all(), "a guest that ran is gone"
            ever_placed = np.union1d(ever_placed, placed)
        check_journal(f"sqlite:///{db}", finished=False)
    assert kills >= KILLS - 2, f"only {kills} of {KILLS} rounds were killed: the run ended first"

    done = run_cli(*args, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "stopped=False" in done.stdout
    data = state_json(db)
    assert data["open_plans"] == [], data["open_plans"]
    check_journal(f"sqlite:///{db}", finished=True)
    if scenario == "cloudsim":
        check_cloudsim_world(db)
    else:
        check_world(tmp_path / "j.db.world")
    got = run_metrics(data)
    assert got == reference, {k: (reference.get(k), got.get(k)) for k in set(reference) | set(got)
                              if reference.get(k) != got.get(k)}
    # the resumed run prints the whole run's metrics, as the uninterrupted one did
    assert metrics_line(done.stdout) == metrics_line(ref.stdout)
    assert any(e["event"] == "reconciled" for e in Journal(f"sqlite:///{db}").events()), "no kill landed in a plan"
