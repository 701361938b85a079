"""The HA agent and the controller process of ``presplit demo qemu --failover``.

:class:`HAAgent` runs between control ticks (every :data:`POLL_S` seconds, in
the loop's clock): once a guest is found failed (missed heartbeats, see
:mod:`presplit.backends.qemu.failover`) it journals a plan of ``RestartGuest``
actions (:func:`plan_restarts`: one per failed guest, on a ready host other
than the one it failed on, least booked first) and runs it through the
applier, all at once; it also takes an operator's requests from the world
directory. :func:`run_controller` (the hidden ``presplit demo
qemu-ha-controller``) takes the journal's lease, starts or adopts the world
(:class:`~presplit.backends.qemu.failover.FailoverBackend`) and runs the
controller assembled by :func:`presplit.control.assemble.assemble`, with the
``presplit`` domain policy ticking every ``TICK_S`` seconds (its default
cool-down keeps guests from being moved in a short run, and every host is kept
on, so the journal holds only the agent's and the operator's plans).
"""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import threading
import time

import numpy as np

from presplit.backends.qemu.failover import (
    TICK_S,
    FailoverBackend,
    World,
    _write_atomic,
    failover_spec,
)
from presplit.model.domains import DOWN, RUNNING

POLL_S = 0.25           # the HA agent looks this often (between control ticks)
RETRY_S = 5.0           # a guest whose restart failed is tried again after this long
SUSPECT_S = 1.0         # a guest of a failed guest's host silent this long (5 beats) is waited for


# --------------------------------------------------------------------------- where failed guests restart
def plan_restarts(state, failed: list[int], *, silence: dict[int, float], last_beat: dict[int, float | None],
                  timeout_s: float) -> list:
    """One ``RestartGuest`` per failed guest: on a ready host other than the one it failed on (the failed
    host is suspect), the least booked domain (memory) first; its own host only when no other has room.
    Largest memory first, then guest order (first-fit decreasing, as vSphere HA orders by size)."""
    from presplit.plan import apply_action
    from presplit.plan.actions import RestartGuest

    sim, out = state, []
    for g in sorted(failed, key=lambda g: (-float(state.guest_reserve[g, 1]), g)):
        src = int(state.guest_domain[g])
        src_host = int(state.domains[src].host) if src >= 0 else -1
        doms = [d for d in sim.domains if d.live and d.state == "active" and sim.host_ready(d.host)]

        def booked(d):
            return float(sim.reserved[d.id, 1]) / max(float(d.capacity_mb), 1.0)

        order = sorted((d for d in doms if d.host != src_host), key=lambda d: (booked(d), d.id)) + \
            [d for d in doms if d.host == src_host]
        for d in order:
            why = (f"no heartbeat from {state.guests[g].id} for {silence[g]:.1f} s (timeout {timeout_s:g} s): "
                   f"restart it from its image on host {d.host} (domain {d.id})"
                   + ("" if d.host != src_host else ", its own host: no other has room"))
            action = RestartGuest(g, d.id, reason=why, details={"silence_s": round(silence[g], 3),
                                                                 "last_beat_mono": last_beat.get(g),
                                                                 "failed_host": src_host})
            new, res = apply_action(sim, action)
            if res.ok:
                sim = new
                out.append(action)
                break
    return out


# --------------------------------------------------------------------------- the HA agent and its clock
class HAAgent:
    """Between ticks: find failed guests, journal and apply their restarts; take an operator's requests."""

    def __init__(self, backend: FailoverBackend, journal, applier, world: World, *, echo=print) -> None:
        self.backend, self.journal, self.applier, self.world, self.echo = backend, journal, applier, world, echo
        self._last_sweep = 0.0
        self._tried: dict[int, float] = {}
        self.started = time.monotonic()

    def poll(self) -> None:
        try:
            self._poll()
        except Exception as exc:  # noqa: BLE001 - the agent must outlive a bad poll
            self.echo(f"HA poll failed: {type(exc).__name__}: {exc}")
            try:
                self.journal.record_event("ha_poll_failed", t=self.backend.now(), detail=f"{exc!r}")
            except Exception:  # noqa: BLE001
                pass
        finally:
            self.write_status()

    def _poll(self) -> None:
        b = self.backend
        state = b.observe()
        mono = time.monotonic()
        if mono - self._last_sweep >= 1.0:
            self._last_sweep = mono
            b.sweep_strays()
        failed = [g for g in b.failed(state) if mono - self._tried.get(g, -math.inf) >= RETRY_S]
        if failed:
            state, failed = self.gather(state, failed)
            self.recover(state, failed)
        self.take_commands()

    def gather(self, state, failed: list[int]) -> tuple:
        """Guests that fail together are restarted together. Once one guest has failed, its host's other
        guests that have been silent for ``SUSPECT_S`` already (the same failure, seen a beat later) are
        waited for -- until they reach the timeout too, or beat again -- rather than restarted a plan later."""
        b = self.backend
        hosts = {int(state.domains[int(state.guest_domain[g])].host) for g in failed if state.guest_domain[g] >= 0}
        deadline = time.monotonic() + b.hb_timeout_s
        while time.monotonic() < deadline:
            suspects = [g for g in range(state.n_guests) if g not in failed and state.guest_domain[g] >= 0
                        and (int(state.guest_status[g]) == RUNNING or (int(state.guest_status[g]) == DOWN
                                                                       and np.isinf(state.guest_down_end[g])))
                        and int(state.domains[int(state.guest_domain[g])].host) in hosts
                        and b.silence_s(g) >= SUSPECT_S]
            if not suspects:
                break
            time.sleep(0.05)
            state = b.observe()
            failed = sorted(set(failed) | {g for g in b.failed(state) if g in suspects})
        return state, failed

    def recover(self, state, failed: list[int]) -> None:
        from presplit.plan.ordering import Limits, order_actions

        b = self.backend
        silence = {g: b.silence_s(g) for g in failed}
        last = {g: b.last_beat(g) for g in failed}
        actions = plan_restarts(state, failed, silence=silence, last_beat=last, timeout_s=b.hb_timeout_s)
        mono = time.monotonic()
        for g in failed:
            self._tried[g] = mono
        if not actions:
            self.echo(f"HA: guests {[state.guests[g].id for g in failed]} failed and no host has room")
            return
        plan = order_actions(actions, Limits(per_host=None, per_link=None, total=None), state)
        pid = self.journal.record_plan(plan, tick=self.applier.clock.now(), source="ha")
        for a in actions:
            self.echo(f">>> HA t={b.now():6.1f} RestartGuest({state.guests[a.guest].id} -> domain {a.to_domain}): "
                      f"{a.reason}")
        res = self.applier.run(pid)
        self.echo(f"<<< HA plan {pid}: {res.status} in {time.monotonic() - mono:.1f} s")

    def take_commands(self) -> None:
        """Run each operator request left in ``commands/`` once (renamed first: a restart never repeats it)."""
        from presplit.plan.actions import MigrateGuest
        from presplit.plan.ordering import Limits, order_actions

        for path in sorted(self.world.commands.glob("*.json")):
            taken = path.with_suffix(".taken")
            os.replace(path, taken)
            cmd = json.loads(taken.read_text())
            b = self.backend
            state = b.observe()
            if cmd.get("kind") != "migrate":
                self.echo(f"unknown command {cmd}")
                continue
            g = next(i for i, s in enumerate(b.spec.guests) if s.id == cmd["guest"])
            dom = next(d.id for d in state.domains if d.live and d.host == int(cmd["to_host"]))
            action = MigrateGuest(g, dom, reason=cmd.get("reason", "operator request"))
            plan = order_actions([action], Limits(), state)
            pid = self.journal.record_plan(plan, tick=self.applier.clock.now(), source="operator")
            self.echo(f">>> operator t={b.now():6.1f} MigrateGuest({cmd['guest']} -> host {cmd['to_host']}, "
                      f"domain {dom}): {action.reason}")
            t0 = time.monotonic()
            res = self.applier.run(pid)
            self.echo(f"<<< operator plan {pid}: {res.status} in {time.monotonic() - t0:.1f} s")

    def write_status(self) -> None:
        doc = self.backend.status_doc()
        doc["agent_started_mono"] = self.started
        _write_atomic(self.world.status_path, json.dumps(doc, default=str).encode())


# --------------------------------------------------------------------------- the controller process
def run_controller(world_dir, *, echo=print, image=None) -> dict:
    """The controller of a failover world (``presplit demo qemu-ha-controller --world DIR``).

    Takes the journal's lease, starts the world (first run) or adopts it, then
    runs the control loop with the HA agent until SIGTERM. SIGKILL at any
    moment is allowed: the next controller adopts what it finds.
    """
    from presplit.apply.journal import Journal
    from presplit.apply.lease import lease_for, wait_for_lease
    from presplit.control.assemble import assemble
    from presplit.control.clock import WallClock
    from presplit.plan.ordering import Limits
    from presplit.policies.presplit.domains import DomainPresplit

    world = World.load(world_dir)
    journal = Journal(world.journal_url, controller=f"{socket.gethostname()}:{os.getpid()}")
    lease = lease_for(journal)
    stop = threading.Event()
    box: dict = {}

    def on_term(signum, _frame):
        stop.set()
        if "loop" in box:
            box["loop"].stop()
        else:
            raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    if not wait_for_lease(lease, stop=stop, on_wait=lambda: echo("another controller holds the lease; waiting")):
        return {}
    adopt = world.state_path.exists()
    spec = failover_spec(world.memory_mib)
    echo(f"controller pid {os.getpid()}: {'adopting the running world' if adopt else 'starting the world'} "
         f"({spec.hosts} hosts, {len(spec.guests)} guests, heartbeat timeout {world.hb_timeout_s:g} s)")
    backend = FailoverBackend(spec, world, adopt=adopt, echo=echo, image=image)
    try:
        if not adopt:
            backend.place_all(world.placement)
            backend.save()
        for rec in backend.adoption:
            journal.record_event("adopted", t=backend.now(), detail=json.dumps(rec, default=str))
            echo(f"adopt {rec['guest']}: {rec['decision']}")
        # The loop's wall clock, calling the agent every POLL_S while it waits for the next tick.
        clock = WallClock(start=backend.now(), slice_s=POLL_S)
        policy = DomainPresplit(spare_hosts=spec.hosts)  # keep every host on: each is failover capacity
        # The applier's own wall clock: the agent runs only between ticks, never in the middle of a plan.
        loop = assemble(backend, journal, clock, [policy], Limits(), interval_s=TICK_S, until_s=None,
                        source="failover:presplit", applier_clock=WallClock(start=backend.now()),
                        applier_kw={"poll_s": 0.2})
        agent = HAAgent(backend, journal, loop.applier, world, echo=echo)
        clock.on_idle = agent.poll
        box["loop"] = loop
        if stop.is_set():
            loop.stop()
        report = loop.run()
        echo(f"controller pid {os.getpid()} stops: ticks={report.ticks} plans={report.plans} "
             f"statuses={report.statuses}")
        return {"ticks": report.ticks, "plans": report.plans}
    finally:
        backend.close()
        lease.release()
        journal.close()
