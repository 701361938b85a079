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

Operator changes are changes of the world like any other: ``launch`` (a new
guest arrives ``pending``, fed by a demand series appended to the workload)
and ``window`` (a maintenance window), one row each, replayed by the same
code by ``presplit run`` and ``presplit serve`` alike. ``cycle`` (set when the
store is created, kept in its ``meta`` table): at the end of the trace demand
starts again from the first sample, for a service that runs for as long as it
is up.

The world keeps the run's metrics as it changes -- what the domain engine
accounts (:class:`~presplit.sim.domain_metrics.DomainMetrics`: energy, SLATAH,
PDM, downtime, IO) and the counts :func:`~presplit.sim.domain_engine.run_domains`
keeps (moves, migrations, fabric GB, splits, merges, boots, patch windows met):
:class:`RunMetrics`, updated by the same functions when a change is made and
when it is replayed, and pickled with every snapshot. A change and the metrics
it produced are therefore one transaction: a SIGKILL never loses nor counts
twice a step, and :meth:`SimWorld.metrics_row` (and :meth:`SimWorld.finish`)
report the whole run however often the controller was restarted. A step
``[k dt, (k+1) dt)`` is accounted from the state at tick ``k`` after the
actions the controller applied at that instant, when the world first moves on
from it (the domain engine accounts it after the tick's actions too).

The store knows what it is: ``meta`` holds a ``world_id`` made at creation and
whatever the controller binds it to (:mod:`presplit.control.stores`); a file
that is not a SQLite database, fails SQLite's integrity check, or holds no
world is a :class:`~presplit.errors.StoreError`, never a silent rebuild.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import pickle
import random
import sqlite3
import uuid
from pathlib import Path

import numpy as np

from presplit.backends.base import BackendError, Capabilities, Receipt
from presplit.backends.sim_revert import revert_action
from presplit.errors import StoreError
from presplit.model.domains import Guest, PatchWindowSim
from presplit.plan import advance, apply_action


def _open_db(path: Path, *, create: bool) -> sqlite3.Connection:
    """A connection to the world store, checked: a damaged or foreign file is a StoreError."""
    if not create and not path.exists():
        raise StoreError(f"world store {path}: no simulated world here yet (no such file)")
    try:
        db = sqlite3.connect(str(path), timeout=30, isolation_level=None)
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=30000"):
            db.execute(f"PRAGMA {pragma}")
        verdict = db.execute("PRAGMA quick_check").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"world store {path}: {exc} (not a presplit world store, or damaged); "
                         "move it aside or give a fresh --world path") from None
    if verdict != "ok":
        db.close()
        raise StoreError(f"world store {path}: SQLite's integrity check failed ({verdict}); "
                         "move it aside or give a fresh --world path")
    return db


def holds_world(path: str | Path) -> bool:
    """Whether ``path`` holds a created world (raises StoreError for a damaged or foreign file)."""
    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        return False
    db = _open_db(path, create=False)
    try:
        has = db.execute("SELECT name FROM sqlite_master WHERE name = 'init'").fetchone()
        return bool(has and db.execute("SELECT 1 FROM init").fetchone())
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"world store {path}: {exc}") from None
    finally:
        db.close()


class RunMetrics:
    """The run's metrics as the stored world accumulates them (pickled in its snapshots).

    The domain engine's accounting, done by the same code: :class:`DomainMetrics` steps, the
    counts of :func:`~presplit.sim.domain_engine.run_domains` per applied action, and the patch
    windows scored at the tick their end has come (met when every live domain of the host was
    patched inside the window). ``accounted`` is the last step whose interval was accounted.
    """

    COUNTS = ("intra_host_moves", "cross_host_migrations", "fabric_gb", "splits", "merges", "service_changes",
              "actions_refused", "energy_actions_j", "boots")

    def __init__(self, state) -> None:
        from presplit.sim.domain_metrics import DomainMetrics

        self.metrics = DomainMetrics(state)
        self.counts: dict = {k: 0.0 if k in ("fabric_gb", "energy_actions_j") else 0 for k in self.COUNTS}
        self.per_guest: dict[int, int] = {}  # cross-host migrations of each guest
        self.scored: dict[tuple, bool] = {}  # (host, start, end) of a window -> met
        self.accounted = -1

    def copy(self, *, metrics: bool = True) -> "RunMetrics":
        """A copy to change; ``metrics=False`` shares the DomainMetrics (for a change that only counts)."""
        new = copy.copy(self)
        if metrics:
            new.metrics = copy.deepcopy(self.metrics)
        new.counts, new.per_guest, new.scored = dict(self.counts), dict(self.per_guest), dict(self.scored)
        return new

    def applied(self, action, out) -> None:
        """Count an action the world carried out, by the simulator's own rule."""
        from presplit.sim.domain_engine import count_action

        g = count_action(self.counts, action, out)
        if g is not None:
            self.per_guest[g] = self.per_guest.get(g, 0) + 1

    def account(self, state, k: int, dt: float) -> None:
        """Step ``k``: the interval ``[k dt, (k+1) dt)`` from the state at its start."""
        self.metrics.step(state, dt, t0=k * dt)
        self.metrics.active_hosts.clear()  # not reported; kept from growing with the run
        self.accounted = k

    def score(self, state, t: float) -> None:
        """Score the windows whose end has come by ``t`` and that were not scored yet."""
        from presplit.sim.domain_engine import window_met

        for w in sorted(state.patch_windows, key=lambda w: w.end):
            key = (int(w.host), float(w.start), float(w.end))
            if w.end <= t and key not in self.scored:
                self.scored[key] = window_met(state, w.host, w.start, w.end)

    def row(self, state, last_tick: int, dt: float) -> dict:
        """The metrics of the run so far, keyed as ``presplit simulate``'s rows (without changing anything):
        the step of the tick the world stands at is accounted as if it moved on now, and the horizon is
        that step's end (windows ending by then are scored on the state there)."""
        from presplit.model.domains import PENDING
        from presplit.plan import advance

        acc = self.copy()
        if acc.accounted < last_tick:
            acc.account(state, last_tick, dt)
        horizon = (acc.accounted + 1) * dt
        end = advance(state, horizon)[0] if horizon > state.now else state
        acc.score(end, horizon)
        row = acc.metrics.finish()
        row.update(acc.counts)
        row["migrations"] = acc.counts["cross_host_migrations"]
        row["refused_actions"] = acc.counts["actions_refused"]
        row["guests_unplaced"] = int((end.guest_status == PENDING).sum())
        row["patch_windows_total"] = len(acc.scored)
        row["patch_windows_met"] = sum(1 for met in acc.scored.values() if met)
        row["max_migrations_per_guest"] = max(acc.per_guest.values(), default=0)
        row["horizon_s"] = horizon
        return {k: v.item() if hasattr(v, "item") else v for k, v in row.items()}


class SimWorld:
    """A simulated world in ``path`` (SQLite); the controller talks to it as a :class:`Backend`."""

    def __init__(self, path: str | Path, *, initial=None, workload=None, snapshot_every: int = 500,
                 name: str = "sim", cycle: bool = False, info: dict | None = None) -> None:
        self.path = Path(path)
        self.info = dict(info or {})  # written to meta when the store is created (the scenario's name, model)
        self.snapshot_every = snapshot_every
        self.name = name
        creating = initial is not None and workload is not None
        self.db = _open_db(self.path, create=creating)
        try:
            self._open(initial, workload, cycle)
        except sqlite3.DatabaseError as exc:
            self.db.close()
            raise StoreError(f"world store {self.path}: {exc} (damaged?)") from None
        except (pickle.UnpicklingError, EOFError, AttributeError, ValueError) as exc:
            self.db.close()
            raise StoreError(f"world store {self.path}: cannot read a stored change ({type(exc).__name__}: {exc}); "
                             "the store is damaged or from another presplit version") from None
        except BaseException:
            self.db.close()
            raise

    def _open(self, initial, workload, cycle: bool) -> None:
        self.db.execute("CREATE TABLE IF NOT EXISTS init (id INTEGER PRIMARY KEY CHECK (id = 0), state BLOB, work BLOB)")
        self.db.execute("CREATE TABLE IF NOT EXISTS changes (seq INTEGER PRIMARY KEY, kind TEXT, payload BLOB)")
        self.db.execute("CREATE TABLE IF NOT EXISTS snapshots (seq INTEGER PRIMARY KEY, world BLOB)")
        self.db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
        row = self.db.execute("SELECT state, work FROM init").fetchone()
        if row is None:
            if initial is None or workload is None:
                raise StoreError(f"world store {self.path}: no simulated world here yet; create it from a scenario "
                                 "first")
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("INSERT INTO init VALUES (0, ?, ?)", (pickle.dumps(initial), pickle.dumps(workload)))
            for key, value in (("world_id", uuid.uuid4().hex), ("cycle", bool(cycle)), *self.info.items()):
                self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))
            self.db.execute("COMMIT")
            row = (pickle.dumps(initial), pickle.dumps(workload))
        legacy = self.db.execute("SELECT name FROM sqlite_master WHERE name = 'service_meta'").fetchone()
        if legacy and self.get_meta("cycle") is None:  # stores written before the flag moved into meta
            flag = self.db.execute("SELECT value FROM service_meta WHERE key = 'cycle'").fetchone()
            self.set_meta("cycle", bool(flag and flag[0] == "1"))
        if self.get_meta("world_id") is None:
            self.set_meta("world_id", uuid.uuid4().hex)
        self.cycle = bool(self.get_meta("cycle"))
        self.workload = pickle.loads(row[1])
        self.state, self.last_tick, self.seq = pickle.loads(row[0]), -1, 0
        self.n_initial = self.state.n_guests  # guests beyond these were launched while the world ran
        self.acc = RunMetrics(self.state)
        self.ready: dict[str, float] = {}  # applied action -> when it is ready, while that is not past
        snap = self.db.execute("SELECT seq, world FROM snapshots ORDER BY seq DESC LIMIT 1").fetchone()
        if snap is not None:
            world = pickle.loads(snap[1])
            if len(world) == 4:  # a snapshot written before the metrics were kept is skipped: replay from init
                self.seq = snap[0]
                self.state, self.last_tick, self.acc, self.ready = world
        self._sync_workload()
        for seq, kind, payload in self.db.execute("SELECT seq, kind, payload FROM changes WHERE seq > ? ORDER BY seq",
                                                  (self.seq,)).fetchall():
            self._do(kind, pickle.loads(payload))
            self.seq = seq
        if self.last_tick < 0:
            self.advance(self.state.now)

    # ------------------------------------------------------------ what the store is
    @staticmethod
    def peek_meta(path: str | Path) -> dict:
        """The store's ``meta`` and its number of changes, without replaying it."""
        db = _open_db(Path(path), create=False)
        try:
            have = db.execute("SELECT name FROM sqlite_master WHERE name = 'meta'").fetchone()
            out = {k: json.loads(v) for k, v in db.execute("SELECT key, value FROM meta")} if have else {}
            out["changes"] = int(db.execute("SELECT COUNT(*) FROM changes").fetchone()[0])
            return out
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"world store {path}: {exc}") from None
        finally:
            db.close()

    @property
    def world_id(self) -> str:
        return self.get_meta("world_id")

    def get_meta(self, key: str):
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def set_meta(self, key: str, value) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    @property
    def changes(self) -> int:
        """How many changes the store holds (0: nothing happened in it yet but its first advance)."""
        return int(self.db.execute("SELECT COUNT(*) FROM changes").fetchone()[0])

    # ------------------------------------------------------------ the Backend protocol
    def capabilities(self) -> Capabilities:
        return Capabilities(self.name, simulated=True, interval_s=float(self.workload.interval_s), start_s=0.0)

    def observe(self):
        return self.state

    def execute(self, action) -> Receipt:
        new, out = apply_action(self.state, action)
        acc = self.acc.copy(metrics=False)  # an action only adds to the counts
        if not out.ok:
            # A refusal changes nothing but is counted (a row of its own, so a restart counts it once).
            acc.counts["actions_refused"] += 1
            self._commit("refused", action, self.state, acc=acc)
            return Receipt(False, out.reason, self.state.now, self.state.now)
        acc.applied(action, out)
        self._commit("apply", action, new, acc=acc, ready=(action, out.time + out.cost.seconds))
        return Receipt(True, "", out.time, out.time + out.cost.seconds,
                       {"cost_s": out.cost.seconds, "downtime_s": out.cost.downtime_s})

    def revert(self, action, before: dict) -> Receipt:
        new, ok, reason = revert_action(self.state, action, before)
        if new is not self.state:
            self._commit("revert", (action, before), new)
        return Receipt(ok, reason, self.state.now, self.state.now)

    def ready_at(self, action) -> float | None:
        """When an action the world carried out is ready (its receipt's ``ready_at``), while that is not past;
        None otherwise. A restarted applier waits for exactly this, as the one that died would have."""
        return self.ready.get(_key(action))

    def metrics_row(self) -> dict:
        """The run's metrics so far, keyed as ``presplit simulate``'s rows for a domain scenario (changes nothing)."""
        row = self.acc.row(self.state, self.last_tick, float(self.workload.interval_s))
        name = self.get_meta("run_name") or self.get_meta("scenario") or self.name
        return {"trace": name, "model": self.get_meta("model"), **row}

    def finish(self) -> dict:
        """The whole run's metrics (what the loop reports at the end; the world is left as it is)."""
        return self.metrics_row()

    def demand_at(self, t: float) -> tuple[np.ndarray, np.ndarray | None]:
        """The demand the world fed at the last tick at or before ``t``: (CPU MIPS, disk/network IO MB/s or None),
        one row per guest there is now; a guest launched after that tick has none yet (zeros). What a forecaster
        that watched the world from its start saw at ``t`` -- so a restarted controller can see it again."""
        w = self.workload
        k = max(int(np.floor(t / float(w.interval_s) + 1e-9)), 0)
        step = self._step(k, w.cpu.shape[1])
        s = self.state
        cpu = w.cpu[:s.n_guests, step] * s.guest_mips
        io = None if w.io_mb_s is None else np.array(w.io_mb_s[:s.n_guests, step, :])
        later = np.flatnonzero(np.arange(s.n_guests) >= self.n_initial)
        later = later[w.arrival_step[later] >= k]  # launched at or after tick k
        cpu[later] = 0.0
        if io is not None:
            io[later] = 0.0
        return cpu, io

    def advance(self, t: float) -> None:
        if t < self.state.now or (t == self.state.now and self.last_tick >= 0):
            return
        acc = self.acc.copy()
        new, tick = self._advanced(self.state, self.last_tick, t, acc)
        self._commit("advance", float(t), new, tick, acc=acc)

    # ------------------------------------------------------------ operator changes
    def launch_guest(self, guest: Guest, cpu: np.ndarray, mem_mb: np.ndarray | None = None) -> int:
        """Add ``guest`` as pending, fed by ``cpu`` (fractions per workload step); returns its index.

        The new state is built (and checked) before anything is written: a launch that cannot be
        applied raises and leaves the store as it was.
        """
        if guest.id in {g.id for g in self.state.guests}:
            raise BackendError(f"guest id {guest.id!r} is taken")
        payload = {"guest": guest, "cpu": np.asarray(cpu, np.float64), "mem_mb": mem_mb,
                   "step": max(self.last_tick, 0)}
        new, work = self._launched(self.state, self.workload, payload)
        self._commit("launch", payload, new)
        self.workload = work
        return new.n_guests - 1

    def add_window(self, window: PatchWindowSim) -> None:
        if not 0 <= window.host < self.state.n_hosts:
            raise BackendError(f"no host {window.host} (hosts are 0..{self.state.n_hosts - 1})")
        self._commit("window", window, self._windowed(self.state, window))

    def _launched(self, state, work, payload):
        g: Guest = payload["guest"]
        steps = work.cpu.shape[1]
        cpu = np.resize(payload["cpu"], steps)
        mem = payload["mem_mb"]
        work = dataclasses.replace(
            work, cpu=np.vstack([work.cpu, cpu[None, :]]),
            mem_mb=None if work.mem_mb is None else np.vstack(
                [work.mem_mb, np.resize(mem if mem is not None else g.ram_mb, steps)[None, :]]),
            arrival_step=np.append(work.arrival_step, payload["step"]),
            io_mb_s=None if work.io_mb_s is None else np.concatenate(
                [work.io_mb_s, np.zeros((1, *work.io_mb_s.shape[1:]))]))
        step = self._step(max(payload["step"], 0), steps)
        mem_now = g.ram_mb if work.mem_mb is None else min(float(work.mem_mb[-1, step]), g.ram_mb)
        return state.with_guest(g, demand_mips=cpu[step] * g.mips, demand_mem_mb=mem_now), work

    @staticmethod
    def _windowed(state, window: PatchWindowSim):
        return state.evolve(patch_windows=tuple(sorted((*state.patch_windows, window), key=lambda w: w.start)))

    def _sync_workload(self) -> None:
        """Workload rows of guests launched before the snapshot the store was opened from."""
        have = self.workload.cpu.shape[0]
        if have >= self.state.n_guests:
            return
        rows = self.db.execute("SELECT payload FROM changes WHERE kind = 'launch' AND seq <= ? ORDER BY seq",
                               (self.seq,)).fetchall()
        base = self.state.n_guests - len(rows)
        work = self.workload
        for k, (blob,) in enumerate(rows):
            if base + k >= have:
                _, work = self._launched(self.state, work, pickle.loads(blob))
        self.workload = work

    # ------------------------------------------------------------ changes
    def _step(self, k: int, steps: int) -> int:
        """The trace sample that feeds tick k: the last one repeats past the end, or, with ``cycle``, the
        trace starts again from its first sample."""
        return k % steps if self.cycle else min(k, steps - 1)

    def _advanced(self, state, last_tick: int, t: float, acc: RunMetrics):
        """Advance to ``t``, feeding every tick on the way; ``acc`` accounts each tick's step when the
        world moves on from it (with the actions applied at the tick) and scores the windows ended."""
        from presplit.sim.domain_engine import feed_tick

        w = self.workload
        dt = float(w.interval_s)
        k = last_tick + 1
        while True:
            if acc.accounted < last_tick and t > state.now:
                acc.account(state, last_tick, dt)
            if k * dt > t:
                break
            state, _ = advance(state, k * dt)
            state = feed_tick(state, w, k, self._step(k, w.cpu.shape[1]))
            acc.score(state, k * dt)
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
            self.acc.applied(payload, out)
            self._ready(payload, out.time + out.cost.seconds)
        elif kind == "refused":
            self.acc.counts["actions_refused"] += 1
        elif kind == "revert":
            self.state, _, _ = revert_action(self.state, *payload)
        elif kind == "advance":
            self.state, self.last_tick = self._advanced(self.state, self.last_tick, payload, self.acc)
            self._ready()
        elif kind == "launch":
            self.state, self.workload = self._launched(self.state, self.workload, payload)
        elif kind == "window":
            self.state = self._windowed(self.state, payload)
        else:
            raise StoreError(f"world store {self.path}: unknown change kind {kind!r} (written by a newer presplit?)")

    def _ready(self, action=None, at: float | None = None) -> None:
        """Replay: note when ``action`` is ready; forget what was ready before now (as :meth:`_commit` does)."""
        if action is not None:
            self.ready[_key(action)] = float(at)
        self.ready = {k: v for k, v in self.ready.items() if v >= self.state.now}

    def _commit(self, kind: str, payload, new_state, tick: int | None = None, *, acc: RunMetrics | None = None,
                ready: tuple | None = None) -> None:
        """One change, one transaction; ``acc``: the metrics after it (a snapshot holds state, metrics and the
        ready times of actions still running)."""
        seq = self.seq + 1
        last_tick = self.last_tick if tick is None else tick
        acc = self.acc if acc is None else acc
        times = dict(self.ready)
        if ready is not None:
            times[_key(ready[0])] = float(ready[1])
        times = {k: v for k, v in times.items() if v >= new_state.now}
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.execute("INSERT INTO changes VALUES (?, ?, ?)", (seq, kind, pickle.dumps(payload)))
            if seq % self.snapshot_every == 0:
                self.db.execute("INSERT INTO snapshots VALUES (?, ?)",
                                (seq, pickle.dumps((new_state, last_tick, acc, times))))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.seq, self.state, self.last_tick, self.acc, self.ready = seq, new_state, last_tick, acc, times

    def close(self) -> None:
        self.db.close()


def _key(action) -> str:
    """An action by what it does (kind and arguments, not its reason)."""
    from presplit.plan.codec import dumps, encode_action

    enc = encode_action(action)
    return dumps([enc["kind"], enc["args"]])


def create_world(path: str | Path, scenario, trace: str | None = None, *, cycle: bool = False, **kw) -> SimWorld:
    """Open the world in ``path``, creating it from a domain scenario when the file holds none."""
    path = Path(path)
    if holds_world(path):
        return SimWorld(path, **kw)
    if scenario is None:
        raise StoreError(f"world store {path}: no simulated world here yet and no scenario to create it from")
    if path.exists() and path.stat().st_size == 0:
        path.unlink()  # an empty file is no world; SQLite would take it as a fresh database anyway
    from presplit.scenarios.build import build_run

    run = build_run(scenario, trace)
    info = {"run_name": scenario.name, "model": getattr(scenario, "model_preset", None)}
    work = dataclasses.replace(run.workload, cpu=run.workload.cpu[:, :run.n_steps],
                               mem_mb=None if run.workload.mem_mb is None else run.workload.mem_mb[:, :run.n_steps],
                               io_mb_s=None if run.workload.io_mb_s is None else run.workload.io_mb_s[:, :run.n_steps])
    return SimWorld(path, initial=run.state, workload=work, cycle=cycle, info=info, **kw)


class FaultyBackend:
    """Fails ``fraction`` of execute calls (seeded): half before acting, half after acting (reply lost).

    It wraps the stored world (:class:`SimWorld`) and states the capabilities it forwards as methods of
    its own: ``isinstance`` on a capability protocol (:mod:`presplit.backends.base`) does not look
    through ``__getattr__`` on Python 3.12 and later."""

    def __init__(self, inner, fraction: float, seed: int = 0, modes=("before", "after")) -> None:
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"fault fraction {fraction!r} must be in [0, 1]")
        self.inner, self.fraction, self.modes = inner, fraction, tuple(modes)
        self.rng = random.Random(seed)
        self.injected: list[tuple[str, str]] = []

    def __getattr__(self, name):  # the world's own calls (launch_guest, workload, ...)
        return getattr(self.inner, name)

    # the Backend protocol and the stored world's capabilities, forwarded
    def capabilities(self):
        return self.inner.capabilities()

    def observe(self):
        return self.inner.observe()

    def revert(self, action, before: dict) -> Receipt:
        return self.inner.revert(action, before)

    def advance(self, t: float) -> None:
        self.inner.advance(t)

    def finish(self) -> dict:
        return self.inner.finish()

    def metrics_row(self) -> dict:
        return self.inner.metrics_row()

    def ready_at(self, action) -> float | None:
        return self.inner.ready_at(action)

    def demand_at(self, t: float):
        return self.inner.demand_at(t)

    def close(self) -> None:
        self.inner.close()

    def execute(self, action) -> Receipt:
        if self.rng.random() >= self.fraction:
            return self.inner.execute(action)
        mode = self.rng.choice(self.modes)
        self.injected.append((mode, action.kind))
        if mode == "after":
            self.inner.execute(action)
            raise BackendError(f"injected fault: {action.kind} ran but its reply was lost")
        raise BackendError(f"injected fault: {action.kind} was not carried out")
