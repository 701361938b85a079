"""The simulated world as the service drives it: :class:`SimWorld` plus the two changes an operator makes.

``presplit serve`` lets an operator launch a guest (it arrives ``pending``; the
policy places it at the next tick) and add a maintenance window. Both are
changes of the world, so they are recorded like every other change of the
event-sourced store -- one row each (kinds ``launch`` and ``window``), one
SQLite transaction -- and replayed by the same code when the store is opened
again. A launched guest also needs a demand series: its row is appended to
the workload; rows of guests launched before the last snapshot are appended
again from their change rows when the store is opened.

``cycle``: the service runs for as long as it is up, so at the end of the
trace demand starts again from the first sample (recorded in the store, so a
replay sees the same demand). ``presplit run`` cannot open a store with these
change kinds (it refuses unknown kinds rather than guess).
"""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path

import numpy as np

from presplit.backends.base import BackendError
from presplit.backends.sim_world import SimWorld
from presplit.model.domains import PENDING, Guest, PatchWindowSim


class ServiceWorld(SimWorld):
    def __init__(self, path, *, cycle: bool = True, **kw) -> None:
        self._want_cycle = cycle
        super().__init__(path, **kw)
        self._sync_workload()

    # ------------------------------------------------------------ the store's flags
    @property
    def cycle(self) -> bool:
        flag = getattr(self, "_cycle", None)
        if flag is None:
            self.db.execute("CREATE TABLE IF NOT EXISTS service_meta (key TEXT PRIMARY KEY, value TEXT)")
            row = self.db.execute("SELECT value FROM service_meta WHERE key = 'cycle'").fetchone()
            if row is None:
                self.db.execute("INSERT INTO service_meta VALUES ('cycle', ?)", ("1" if self._want_cycle else "0",))
                flag = self._want_cycle
            else:
                flag = row[0] == "1"
            self._cycle = flag
        return flag

    # ------------------------------------------------------------ operator changes
    def launch_guest(self, guest: Guest, cpu: np.ndarray, mem_mb: np.ndarray | None = None) -> int:
        """Add ``guest`` as pending, fed by ``cpu`` (fractions per workload step); returns its index."""
        payload = {"guest": guest, "cpu": np.asarray(cpu, np.float64), "mem_mb": mem_mb,
                   "step": max(self.last_tick, 0)}
        new, work = self._launched(self.state, self.workload, payload)
        self._commit("launch", payload, new)
        self.workload = work
        return new.n_guests - 1

    def add_window(self, window: PatchWindowSim) -> None:
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
            arrival_step=np.append(work.arrival_step, payload["step"]))
        step = self._step(max(payload["step"], 0), steps)
        arrays = {
            "guest_domain": np.append(state.guest_domain, -1), "guest_dest": np.append(state.guest_dest, -1),
            "guest_status": np.append(state.guest_status, np.int8(PENDING)).astype(np.int8),
            "guest_mig_start": np.append(state.guest_mig_start, 0.0),
            "guest_mig_end": np.append(state.guest_mig_end, 0.0),
            "guest_down_start": np.append(state.guest_down_start, 0.0),
            "guest_down_end": np.append(state.guest_down_end, 0.0),
            "demand_mips": np.append(state.demand_mips, cpu[step] * g.mips),
            "demand_mem_mb": np.append(state.demand_mem_mb,
                                       g.ram_mb if work.mem_mb is None else work.mem_mb[-1, step]),
        }
        return state.evolve(guests=(*state.guests, g), **arrays), work

    @staticmethod
    def _windowed(state, window: PatchWindowSim):
        return state.evolve(patch_windows=tuple(sorted((*state.patch_windows, window), key=lambda w: w.start)))

    def _sync_workload(self) -> None:
        """Rows of guests launched before the snapshot the store was opened from."""
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

    # ------------------------------------------------------------ replay and time
    def _do(self, kind: str, payload) -> None:
        if kind == "launch":
            self._sync_workload()
            self.state, self.workload = self._launched(self.state, self.workload, payload)
        elif kind == "window":
            self.state = self._windowed(self.state, payload)
        else:
            if kind == "advance":
                self._sync_workload()
            super()._do(kind, payload)

    def _step(self, k: int, steps: int) -> int:
        # The demo fleet replays its trace round and round when ``cycle`` is on.
        return k % steps if self.cycle else min(k, steps - 1)


def open_world(path: str | Path, scenario=None, trace: str | None = None, *, cycle: bool = True) -> ServiceWorld:
    """Open the service's world in ``path``, creating it from a domain scenario when the file holds none."""
    import sqlite3

    path = Path(path)
    if path.exists():
        with sqlite3.connect(str(path)) as db:
            has = db.execute("SELECT name FROM sqlite_master WHERE name = 'init'").fetchone()
            if has and db.execute("SELECT 1 FROM init").fetchone():
                return ServiceWorld(path, cycle=cycle)
    if scenario is None:
        raise BackendError(f"{path}: no simulated world here yet and no scenario to create it from")
    from presplit.scenarios.build import build_run

    run = build_run(scenario, trace)
    work = dataclasses.replace(run.workload, cpu=run.workload.cpu[:, :run.n_steps],
                               mem_mb=None if run.workload.mem_mb is None else run.workload.mem_mb[:, :run.n_steps])
    return ServiceWorld(path, initial=run.state, workload=work, cycle=cycle)
