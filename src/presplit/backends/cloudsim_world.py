"""The CloudSim-compatible engine behind the Backend protocol, so the control loop can drive it.

The control loop, journal and applier run a day of the CloudSim preset
through this adapter and must get *exactly* the numbers of
:func:`presplit.sim.runner.run_simulation`. The adapter therefore performs
the engine's own steps, in the engine's order, only cut where the loop needs
them (the engine's ``run`` does the same calls in one go):

- a tick (``advance`` to the next tick time): finish migrations that ended
  before it, then the fleet-wide update with a utilisation sample;
- ``execute(MigrateGuest(g, host))``: the engine starts that migration;
  the update that ``run`` does right after a tick's moves is done at the
  next ``advance`` (nothing reads the engine in between);
- ``advance`` between ticks (the applier waiting for a migration to land):
  finish migrations ending at or before that time, in end order.

Domains are hosts here (one per host, as on CloudSim's two-PE servers), so a
move is a :class:`MigrateGuest` whose ``to_domain`` is the host. This world
lives in the controller's process. Its conditions are its own (``conditions``
attribute): the applier's generic ones read a ClusterState.

A restarted controller rebuilds it with :meth:`CloudSimWorld.resume`: the
engine is deterministic given the same moves at the same times, and the
journal already holds them (each plan at its tick, each action's ``started``
event with the controller's clock; the controller hands them over as data,
``Journal.history()``), so the engine is replayed from t=0 --
every tick up to the journal's last, the policy asked at each (a policy that
remembers, or draws random numbers, is where it would be; its moves are
checked against the journal's), each started move executed at its time --
and stands exactly where an uninterrupted run would, metrics included. A move
journaled ``started`` whose call the crash cut short is executed by the
replay: the uninterrupted run would have made it, and reconciliation then
finds it in flight. No store of its own to keep in step with the journal.
"""

from __future__ import annotations

import logging

import numpy as np

from presplit.backends.base import BackendError, Capabilities, Receipt
from presplit.plan.actions import MigrateGuest

log = logging.getLogger("presplit.cloudsim")


class CloudSimWorld:
    def __init__(self, workload, policy: str, *, fleet=None, seed: int = 0) -> None:
        from presplit.model.hardware import cloudsim_preset
        from presplit.policies import make_policy
        from presplit.sim.engine import Engine

        self.workload, self.policy_name = workload, policy
        self.fleet = fleet or cloudsim_preset(workload.n_guests)
        self.engine = Engine(self.fleet, np.asarray(workload.resource("cpu")), make_policy(policy, seed=seed))
        self.model = self.fleet.model
        self.engine.policy.place_initial(self.engine)
        self.next_tick = self.start = self.model.first_tick_s + self.model.interval_s
        self._moved_at: float | None = None
        self.conditions = self
        self.later: dict[int, set[int]] = {}  # guest -> destinations a later move of the same step superseded
        self.finished: dict | None = None
        self.sharing: dict[tuple[int, int], int] = {}  # (guest, host) -> migrations sharing its busier NIC
        self._bounds: tuple | None = None
        self.replay_mismatches: list[float] = []

    # ------------------------------------------------------------ Backend protocol
    def capabilities(self) -> Capabilities:
        return Capabilities("cloudsim", kinds=("MigrateGuest",), reversible=(), simulated=True,
                            interval_s=self.model.interval_s, start_s=self.start)

    def observe(self):
        return self.engine

    def execute(self, action) -> Receipt:
        e = self.engine
        if not isinstance(action, MigrateGuest):
            return Receipt(False, f"{action.kind} is not a CloudSim action", e.now, e.now)
        why = self.precondition(e, action)
        if why is not None:
            return Receipt(False, why, e.now, e.now)
        seq = e._seq
        g, h = int(action.guest), int(action.to_domain)
        if e.in_migration[g]:
            # a second move of a guest in flight: it lands at h after passing the first destination
            self.later.setdefault(g, set()).update(d for gg, d in e.incoming if gg == g)
        e._start_migration(g, h, e.now, self.sharing.pop((g, h), 1))
        self._moved_at = e.now
        end = next(item[0] for item in e._pending if item[1] == seq)
        return Receipt(True, "", e.now, end)

    def order(self, actions, limits, state=None):
        """CloudSim starts every move of a step at once -- two moves of one guest included -- so no
        dependencies here (the generic ordering would make the second wait for the first to land)."""
        from presplit.plan.ordering import ActionPlan, PlannedAction

        if self.model.precopy:  # the step's moves share NICs as the engine's own step counts them
            moves = [(int(a.guest), int(a.to_domain)) for a in actions]
            self.sharing = dict(zip(moves, self.engine.nic_shares(moves)))
        return ActionPlan(tuple(PlannedAction(i, a) for i, a in enumerate(actions)), limits)

    def revert(self, action, before: dict) -> Receipt:
        raise BackendError("the CloudSim engine cannot cancel a migration")

    def advance(self, t: float) -> None:
        e = self.engine
        self._flush()
        if t >= self.next_tick:
            e.begin_tick(t)
            self.next_tick = t + self.model.interval_s
        else:
            # ends at or before t: the applier waits exactly until a migration's end
            e._finish_migrations_until(float(np.nextafter(t, np.inf)))

    def finish(self) -> dict:
        """End the run as the engine's ``run`` does; the metrics dict it would return."""
        e, m = self.engine, self.model
        self._flush()
        metrics = e.finish_metrics(int((m.horizon_s - m.first_tick_s) // m.interval_s))
        self.finished = metrics
        return metrics

    # ------------------------------------------------------------ metrics
    def metrics_row(self) -> dict:
        """The run's metrics so far (the whole run's after :meth:`finish`), keyed as ``presplit simulate``'s rows;
        the fluid bounds are the whole trace's. Changes nothing."""
        from presplit.sim.runner import best_watts_per_mips, fluid_bound_cpu_kwh, fluid_bound_kwh

        e, m = self.engine, self.model
        metrics = dict(self.finished) if self.finished is not None else self._so_far()
        if self._bounds is None:
            self._bounds = (fluid_bound_kwh(self.workload, self.fleet), fluid_bound_cpu_kwh(self.workload, self.fleet),
                            best_watts_per_mips(self.fleet))
        bound, bound_cpu, w_per_mips = self._bounds
        served = metrics.pop("served_mips_s", 0.0) * w_per_mips / 3.6e6
        energy = metrics["energy_kwh"]
        row = {"trace": getattr(self.workload, "name", None), "policy": self.policy_name, **metrics,
               "fluid_bound_kwh": bound, "fluid_bound_cpu_kwh": bound_cpu, "model": m.name,
               "energy_over_bound": energy / bound if bound else float("nan"), "served_bound_kwh": served,
               "energy_over_served_bound": energy / served if served else float("nan"), "now": float(e.now)}
        return {k: v.item() if hasattr(v, "item") else v for k, v in row.items()}

    def _so_far(self) -> dict:
        """What ``Engine.finish_metrics`` would say now, without landing the migrations in flight."""
        e, m = self.engine, self.model
        metrics = e.metrics.finish(e.migrations)
        if getattr(e.policy, "non_power_aware", False):
            ticks = max(int(round((e.now - m.first_tick_s) / m.interval_s)), 0)
            metrics["energy_kwh"] = float(e.h_power[:, -1].sum() * ticks * m.interval_s / 3.6e6)
        metrics.update(max_ram_ratio=getattr(e, "max_ram_ratio", 0.0), refused_actions=getattr(e, "refused", 0),
                       boots=getattr(e, "boots", 0), migration_pause_s=getattr(e, "pause_s", 0.0),
                       guests_unplaced=len(getattr(e, "waiting", ())))
        return metrics

    # ------------------------------------------------------------ restart
    def resume(self, history, interval_s: float | None = None) -> float:
        """Replay a journaled run into this fresh engine (see the module docstring); returns the time the
        engine stands at, where the restarted controller's clock starts (0 with an empty journal).

        ``history``: the journal's run as data (``Journal.history()``: last tick, plans at their ticks with
        their actions, ``started`` events in order), so this world reads no journal itself."""
        last = history.last_tick
        if last is None:
            return 0.0
        iv = float(interval_s or self.model.interval_s)
        plan_rows, acts, starts = history.plans, history.actions, history.starts
        # One timeline: a tick begins (the policy is asked), then the plans made at it, then the moves
        # started at or after it, in the order the controller started them.
        items = []
        t = self.start
        while t <= last:
            items.append((t, 0, 0, None))
            t = t + iv  # repeated addition, as the loop steps
        for pid, tick in plan_rows:
            items.append((float(tick), 1, int(pid), None))
        for eid, pid, idx, at in starts:
            items.append((float(at), 2, int(eid), (int(pid), int(idx))))
        items.sort(key=lambda x: (x[0], x[1], x[2]))
        by_tick = {float(tick): acts.get(int(pid), []) for pid, tick in plan_rows}
        pos, mismatched = 0.0, []
        for at, kind, key, ref in items:
            if kind == 0:
                self.advance(at)
                pos = at
                self._check_policy(at, by_tick.get(at, []), mismatched)
            elif kind == 1:
                if acts.get(key):
                    self.order(acts[key], None)
            else:
                if at > pos:
                    self.advance(at)
                    pos = at
                pid, idx = ref
                self.execute(acts[pid][idx])
        if mismatched:
            log.warning("replaying the journal: the policy proposed other moves than the journal holds at "
                        "%d tick(s) (first t=%g); the journal's moves were replayed", len(mismatched), mismatched[0])
        self.replay_mismatches = mismatched
        return pos

    def _check_policy(self, t: float, planned: list, mismatched: list) -> None:
        """Ask the policy at a replayed tick, as the loop did (its own state moves on); compare with the journal."""
        e = self.engine
        if not e.policy.migrates:
            return
        try:
            moves = [(int(g), int(h)) for g, h in e.policy.optimise(e)]
        except Exception:  # noqa: BLE001 - the tick may have failed the first time too; the journal decides
            log.exception("policy failed at replayed tick t=%g", t)
            moves = None
        if moves != [(int(a.guest), int(a.to_domain)) for a in planned]:
            mismatched.append(t)

    def _flush(self) -> None:
        if self._moved_at is not None:
            self.engine._update(self._moved_at)
            self._moved_at = None

    # ------------------------------------------------------------ conditions on the engine
    @staticmethod
    def precondition(e, a) -> str | None:
        g, h = int(a.guest), int(a.to_domain)
        if not (0 <= g < e.n_guests and 0 <= h < e.n_hosts):
            return f"no guest {g} or host {h}"
        if not e.alive[g]:
            return f"guest {g} is gone (CloudSim deallocated it)"
        # A guest already migrating may be moved again in the same step: CloudSim does so (it
        # empties hosts that just received guests), and parity keeps it.
        if e.host_of[g] == h and not e.in_migration[g]:
            return f"guest {g} is already on host {h}"
        return None

    @staticmethod
    def capture(e, a) -> dict:
        return {"time": float(e.now), "host": int(e.host_of[a.guest])}

    def postcondition(self, e, a, before: dict) -> tuple[str, str]:
        g, h = int(a.guest), int(a.to_domain)
        if (g, h) in e.incoming:
            return "pending", f"guest {g} migrating to host {h}"
        if e.host_of[g] == h:
            return "done", f"guest {g} runs on host {h}"
        if h in self.later.get(g, ()):
            return "done", f"guest {g} passed host {h} and moved on, as a later move of the step asked"
        if e.host_of[g] == before.get("host") and not e.in_migration[g]:
            return "not_run", f"guest {g} still on host {before.get('host')}"
        return "failed", f"guest {g} on host {int(e.host_of[g])}, expected {h}"

    @staticmethod
    def invariants(e) -> list[str]:
        seen = np.zeros(e.n_guests, np.int64)
        for lst in e.lists:
            np.add.at(seen, np.asarray(lst, np.int64), 1)
        expected = (e.host_of >= 0).astype(np.int64)
        for g, _ in e.incoming:  # listed at the source and at every destination in flight
            expected[g] += 1
        bad = np.flatnonzero(seen != expected)
        return [f"guests {bad[:5].tolist()} listed on {seen[bad[:5]].tolist()} hosts"] if len(bad) else []

    def summary(self) -> dict:
        e = self.engine
        return {"now": float(e.now), "hosts": [{"id": h, "guests": len(e.lists[h]),
                                                "util_mips": float(e.h_util_mips[h])} for h in range(e.n_hosts)],
                "domains": [], "guests": [{"id": g, "host": int(e.host_of[g]),
                                           "status": "migrating" if e.in_migration[g] else (
                                               "running" if e.alive[g] else "completed")} for g in range(e.n_guests)]}


class CloudSimPolicy:
    """A CloudSim-engine policy as a controller policy: the engine's own policy object proposes the moves."""

    kind = "cloudsim"

    def __init__(self, name: str) -> None:
        self.name = name

    def propose(self, engine, forecasts, now: float) -> list:
        if not engine.policy.migrates:
            return []
        return [MigrateGuest(int(g), int(h), reason=f"{self.name}: consolidation step at t={now:g} s",
                             details={"from_host": int(engine.host_of[g])}) for g, h in engine.policy.optimise(engine)]
