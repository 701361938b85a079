"""The simulated split-domain world as a store of its own, and a backend that fails on purpose.

Real hosts keep running when the controller dies; so must the simulated
world. :class:`SimWorld` keeps the world in its own SQLite file, apart from
the controller's journal, *event-sourced*: the initial ClusterState and
workload once, then one small row per change (``advance`` to a time,
``apply`` an action, ``revert`` one), with a snapshot every
``snapshot_every`` changes. Opening the file replays the events after the
last snapshot, so a controller killed at any instant finds the world exactly
as the last committed change left it; each change is one SQLite transaction,
so the world is never half-changed.

What an action does is :func:`presplit.plan.apply_action`, nothing else;
time is :func:`presplit.plan.advance` plus, at every tick of the workload
(``k x interval``), what :func:`presplit.sim.domain_engine.run_domains` does:
arrivals become ``pending`` and demand is set from the trace.

:class:`FaultyBackend` wraps any backend and fails a seeded fraction of
``execute`` calls, either before doing anything or *after* doing it (the
reply is lost), which is the case a revert must handle.
"""

from __future__ import annotations

import dataclasses
import pickle
import random
import sqlite3
from pathlib import Path

import numpy as np

from presplit.backends.base import BackendError, Capabilities, Receipt
from presplit.backends.sim_revert import revert_action
from presplit.model.domains import ABSENT, PENDING
from presplit.plan import advance, apply_action


class SimWorld:
    """A simulated world in ``path`` (SQLite); the controller talks to it as a :class:`Backend`."""

    def __init__(self, path: str | Path, *, initial=None, workload=None, snapshot_every: int = 500,
                 name: str = "sim") -> None:
        self.path = Path(path)
        self.snapshot_every = snapshot_every
        self.name = name
        self.db = sqlite3.connect(str(self.path), timeout=30, isolation_level=None)
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=30000"):
            self.db.execute(f"PRAGMA {pragma}")
        self.db.execute("CREATE TABLE IF NOT EXISTS init (id INTEGER PRIMARY KEY CHECK (id = 0), state BLOB, work BLOB)")
        self.db.execute("CREATE TABLE IF NOT EXISTS changes (seq INTEGER PRIMARY KEY, kind TEXT, payload BLOB)")
        self.db.execute("CREATE TABLE IF NOT EXISTS snapshots (seq INTEGER PRIMARY KEY, world BLOB)")
        row = self.db.execute("SELECT state, work FROM init").fetchone()
        if row is None:
            if initial is None or workload is None:
                raise BackendError(f"{self.path}: no simulated world here yet; create it from a scenario first")
            self.db.execute("INSERT INTO init VALUES (0, ?, ?)", (pickle.dumps(initial), pickle.dumps(workload)))
            row = (pickle.dumps(initial), pickle.dumps(workload))
        self.workload = pickle.loads(row[1])
        self.state, self.last_tick, self.seq = pickle.loads(row[0]), -1, 0
        snap = self.db.execute("SELECT seq, world FROM snapshots ORDER BY seq DESC LIMIT 1").fetchone()
        if snap is not None:
            self.seq = snap[0]
            self.state, self.last_tick = pickle.loads(snap[1])
        for seq, kind, payload in self.db.execute("SELECT seq, kind, payload FROM changes WHERE seq > ? ORDER BY seq",
                                                  (self.seq,)).fetchall():
            self._do(kind, pickle.loads(payload))
            self.seq = seq
        if self.last_tick < 0:
            self.advance(self.state.now)

    # ------------------------------------------------------------ the Backend protocol
    def capabilities(self) -> Capabilities:
        return Capabilities(self.name, simulated=True, interval_s=float(self.workload.interval_s), start_s=0.0)

    def observe(self):
        return self.state

    def execute(self, action) -> Receipt:
        new, out = apply_action(self.state, action)
        if not out.ok:
            return Receipt(False, out.reason, self.state.now, self.state.now)
        self._commit("apply", action, new)
        return Receipt(True, "", out.time, out.time + out.cost.seconds,
                       {"cost_s": out.cost.seconds, "downtime_s": out.cost.downtime_s})

    def revert(self, action, before: dict) -> Receipt:
        new, ok, reason = revert_action(self.state, action, before)
        if new is not self.state:
            self._commit("revert", (action, before), new)
        return Receipt(ok, reason, self.state.now, self.state.now)

    def advance(self, t: float) -> None:
        if t < self.state.now or (t == self.state.now and self.last_tick >= 0):
            return
        new, tick = self._advanced(self.state, self.last_tick, t)
        self._commit("advance", float(t), new, tick)

    # ------------------------------------------------------------ changes
    def _step(self, k: int, steps: int) -> int:
        """The trace sample that feeds tick k (the last one repeats past the end)."""
        return min(k, steps - 1)

    def _advanced(self, state, last_tick: int, t: float):
        w = self.workload
        dt = float(w.interval_s)
        k = last_tick + 1
        while k * dt <= t:
            state, _ = advance(state, k * dt)
            step = self._step(k, w.cpu.shape[1])
            arrive = (w.arrival_step <= k) & (state.guest_status == ABSENT)
            changes = {"demand_mips": w.cpu[:, step] * state.guest_mips}
            if arrive.any():
                changes["guest_status"] = np.where(arrive, PENDING, state.guest_status).astype(np.int8)
            if w.mem_mb is not None:
                changes["demand_mem_mb"] = np.minimum(w.mem_mb[:, step], state.guest_reserve[:, 1])
            state = state.evolve(**changes)
            last_tick = k
            k += 1
        state, _ = advance(state, t)
        return state, last_tick

    def _do(self, kind: str, payload) -> None:
        """Replay one committed change (deterministic: the same functions as the live path)."""
        if kind == "apply":
            new, out = apply_action(self.state, payload)
            if not out.ok:
                raise BackendError(f"{self.path}: replay diverged at {payload}: {out.reason}")
            self.state = new
        elif kind == "revert":
            self.state, _, _ = revert_action(self.state, *payload)
        elif kind == "advance":
            self.state, self.last_tick = self._advanced(self.state, self.last_tick, payload)
        else:
            raise BackendError(f"{self.path}: unknown change kind {kind!r}")

    def _commit(self, kind: str, payload, new_state, tick: int | None = None) -> None:
        seq = self.seq + 1
        last_tick = self.last_tick if tick is None else tick
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.execute("INSERT INTO changes VALUES (?, ?, ?)", (seq, kind, pickle.dumps(payload)))
            if seq % self.snapshot_every == 0:
                self.db.execute("INSERT INTO snapshots VALUES (?, ?)", (seq, pickle.dumps((new_state, last_tick))))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.seq, self.state, self.last_tick = seq, new_state, last_tick

    def close(self) -> None:
        self.db.close()


def create_world(path: str | Path, scenario, trace: str | None = None, **kw) -> SimWorld:
    """Open the world in ``path``, creating it from a domain scenario when the file holds none."""
    path = Path(path)
    if path.exists():
        with sqlite3.connect(str(path)) as db:
            has = db.execute("SELECT name FROM sqlite_master WHERE name = 'init'").fetchone()
            if has and db.execute("SELECT 1 FROM init").fetchone():
                return SimWorld(path, **kw)
    from presplit.scenarios.build import build_run

    run = build_run(scenario, trace)
    work = dataclasses.replace(run.workload, cpu=run.workload.cpu[:, :run.n_steps],
                               mem_mb=None if run.workload.mem_mb is None else run.workload.mem_mb[:, :run.n_steps])
    return SimWorld(path, initial=run.state, workload=work, **kw)


class FaultyBackend:
    """Fails ``fraction`` of execute calls (seeded): half before acting, half after acting (reply lost)."""

    def __init__(self, inner, fraction: float, seed: int = 0, modes=("before", "after")) -> None:
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"fault fraction {fraction!r} must be in [0, 1]")
        self.inner, self.fraction, self.modes = inner, fraction, tuple(modes)
        self.rng = random.Random(seed)
        self.injected: list[tuple[str, str]] = []

    def __getattr__(self, name):  # observe, revert, capabilities, advance, close ...
        return getattr(self.inner, name)

    def execute(self, action) -> Receipt:
        if self.rng.random() >= self.fraction:
            return self.inner.execute(action)
        mode = self.rng.choice(self.modes)
        self.injected.append((mode, action.kind))
        if mode == "after":
            self.inner.execute(action)
            raise BackendError(f"injected fault: {action.kind} ran but its reply was lost")
        raise BackendError(f"injected fault: {action.kind} was not carried out")
