"""``presplit demo qemu``: the presplit policy deciding on real QEMU guests, end to end.

A face, like the CLI: it drives the QEMU backend (:mod:`presplit.backends.qemu`)
through the controller, so it lives outside ``backends/``.

Two hosts (network namespaces on a bridge, 2 CPUs x 1000 MIPS each), four
128 MiB guests: ``vm0`` on host 0; ``vm1``, ``vm2`` and ``vm3`` on host 1.
``vm2`` idles for a minute after its boot, then ramps its CPU 40 -> 70 ->
100 % (the guest image's ``steps`` workload). Then the ``presplit`` domain
policy (:class:`~presplit.policies.presplit.domains.DomainPresplit`) runs in
the controller :func:`presplit.control.assemble.assemble` builds (as for
``presplit run``) on a :class:`~presplit.control.clock.WallClock`, every
:data:`TICK_S` seconds: observe the
:class:`~presplit.backends.qemu.backend.QemuBackend` (demand from the QEMU
processes' CPU time), forecast (the observed outlook, as ``presplit run``
does), propose, order, journal, apply.

Host 0 gets a patch window :data:`WINDOW_AFTER_TICKS` ticks after the loop
starts. What the policy then does, by itself:

1. one tick ahead of the window (``lead_s``) it **splits** host 0's domain;
2. when the window opens it **patches** the new (empty) domain;
3. it **re-pins** vm0 into the patched domain (an intra-host move carrying
   vm0's CPU and memory) and **patches** the emptied domain;
4. it **merges** the two domains again;
5. once vm2's ramp makes host 1's forecast cross ``relief`` (and host 0's
   window is over, so host 0 may take guests again) its balancing agent
   **live-migrates** vm2 to host 0.

The loop stops at the first quiet tick after every kind happened (at most
``max_s``). Time and thresholds are scaled for a one-minute run on 2 cores
(see the constants below and docs/real-backend.md): ticks of 3 s instead of
300 s, lead 3 s, 6 s per domain patch, cool-down 36 s, ``relief`` 15 % (a
single TCG vCPU is at most half of a 2-CPU host, and measured CPU under TCG
is low and noisy).

``--scripted`` (``run_demo(scripted=True)``) runs the earlier fixed plan
instead (:func:`demo_phases`), each phase one journaled plan through the
:class:`~presplit.apply.applier.Applier`.

While it runs, a live view prints the domains (CPU set, CFS quota, memory
limit and use) and the guests (host, domain, heartbeat counter, largest gap,
measured CPU); each applied plan is printed with the policy's reasons; at the
end, a summary (and ``--json FILE``). Everything is stopped on exit, on
Ctrl-C and on failure (a :class:`~.cleanup.Teardown`).
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
from pathlib import Path

from presplit.backends.qemu.backend import GuestSpec, QemuBackend, QemuWorldSpec
from presplit.backends.qemu.guest_image import Workload
from presplit.model.domains import PatchWindowSim, Service
from presplit.plan.actions import (
    MergeDomains,
    MigrateGuest,
    MoveGuest,
    PatchDomain,
    SplitDomain,
)

# --------------------------------------------------------------------------- the policy-driven world
#: The demo's time scale. The presplit policy's defaults are for a fleet ticking every 5 min
#: (split 10 min ahead of a window, 30 min per domain patch); here everything is seconds.
TICK_S = 3.0            # control tick (policy default world: 300 s)
LEAD_S = TICK_S         # split one tick before host 0's window opens (policy default: 600 s)
PATCH_S = 6.0           # patching one domain (default model: 1800 s)
WINDOW_AFTER_TICKS = 2.5  # host 0's window opens this many ticks after the loop's first tick ...
WINDOW_S = 30.0         # ... and stays open this long
RELIEF = 0.15           # balance a domain whose forecast crosses 15 % of its CPU (policy default: 100 %)
TARGET = 0.8            # a destination must stay under 80 % (policy default)
COOLDOWN_S = 12 * TICK_S  # a migrated guest stays 12 ticks (policy default: 3600 s = 12 x 300 s)
RAMP_IDLE_STEPS = 20    # vm2 idles 20 x 3 s after its boot (host 0 is patched meanwhile), then ramps
RAMP_STEP_MS = 3000
SERVICES = (Service("vmm", 50.0, 64.0),)  # every domain's own overhead: what a split must give the new one


def ramp_workload() -> Workload:
    """vm2: idle for a minute, then 40 -> 70 -> 100 % of its vCPU for 48 s, then idle again (repeats)."""
    duties = [0] * RAMP_IDLE_STEPS + [40, 70] + [100] * 16 + [0] * 10
    return Workload.duty_steps(duties, RAMP_STEP_MS)


def demo_spec(memory_mib: int = 128) -> QemuWorldSpec:
    """The world presplit decides on: h0 holds vm0, h1 holds vm1, vm2 (the ramp) and vm3.

    Each guest reserves ``memory_mib`` + 128 MiB (QEMU's own) and 250 MIPS.
    Hosts have 2 CPUs x 1000 MIPS and ``host_ram_mb = 4 x reserve + 64``
    (1088 MiB for 128 MiB guests): room for h0 to take vm2 with the headroom
    a later patch split needs, but not for h1 to take vm0 back as well -- so
    once vm2 has moved, its neighbour stays where it is.
    """
    reserve_mb = memory_mib + 128
    guests = (GuestSpec("vm0", memory_mib, Workload.idle(), reserve_mips=250.0),
              GuestSpec("vm1", memory_mib, Workload.idle(), reserve_mips=250.0),
              GuestSpec("vm2", memory_mib, ramp_workload(), reserve_mips=250.0),
              GuestSpec("vm3", memory_mib, Workload.idle(), reserve_mips=250.0))
    return QemuWorldSpec(guests=guests, hosts=2, cores=None, mips_per_core=1000.0,
                         host_ram_mb=4.0 * reserve_mb + 64.0, qemu_overhead_mb=128.0, provision_s=0.5,
                         patch_duration_s=PATCH_S, interval_s=TICK_S, services=SERVICES)


#: initial placement {guest: domain}: h0 = vm0, h1 = vm1, vm2, vm3
DEMO_PLACEMENT = {0: 0, 1: 1, 2: 1, 3: 1}


def demo_policy():
    """The ``presplit`` domain policy with the demo's time scale and thresholds."""
    from presplit.policies.presplit.domains import DomainPresplit

    return DomainPresplit(target=TARGET, relief=RELIEF, lead_s=LEAD_S, cooldown_s=COOLDOWN_S)


def patch_window(first_tick: float) -> PatchWindowSim:
    start = first_tick + WINDOW_AFTER_TICKS * TICK_S
    return PatchWindowSim(host=0, start=start, end=start + WINDOW_S, duration_s=PATCH_S, rule="demo")


# --------------------------------------------------------------------------- the scripted world (--scripted)
def scripted_spec(memory_mib: int = 128) -> QemuWorldSpec:
    guests = (GuestSpec("vm0", memory_mib, Workload.ramp(10, 90, 5, step_ms=2000), reserve_mips=500.0),
              *(GuestSpec(f"vm{i}", memory_mib, Workload.idle(), reserve_mips=250.0) for i in (1, 2, 3)))
    return QemuWorldSpec(guests=guests, hosts=2, cores=None, mips_per_core=1000.0, host_ram_mb=2048.0,
                         provision_s=0.5, patch_duration_s=2.0, interval_s=5.0)


def demo_phases() -> list[tuple[str, list]]:
    """(title, actions): the scripted plan. Domain 2 is the one the split creates."""
    return [
        ("split h0 ahead of vm0's ramp", [SplitDomain(0, ((1000.0, 1024.0),),
                                                      reason="vm0's demand ramps up: carve a 1-CPU domain")]),
        ("move vm1 into the new domain", [MoveGuest(1, 2, reason="make room in domain 0 for the patch")]),
        ("migrate vm0 (ramping) to h1", [MigrateGuest(0, 1, reason="vm0's ramp: move it to the idler host")]),
        ("patch the emptied domain d0", [PatchDomain(0, 2.0, reason="patch window: d0 is empty")]),
        ("recombine h0", [MergeDomains((0, 2), reason="patched: merge the split domains back")]),
        ("migrate vm0 back to h0", [MigrateGuest(0, 0, reason="the ramp is over: rebalance")]),
    ]


def render(summary: dict, t: float) -> str:
    """A compact text view of domains and guests."""
    lines = [f"--- t={t:6.1f} s " + "-" * 60]
    for d in summary["domains"]:
        if d["state"] == "merged":
            continue
        lines.append(f"  d{d['id']} h{d['host']} {d['state']:<12} {d['cpu_mips']:6.0f} MIPS {d['mem_mb']:5.0f} MB"
                     f"  cpus={d.get('cpus', '?'):<4} quota={d.get('cfs_quota_us', 0) / 1000:5.0f}ms"
                     f"  mem {d.get('mem_used_mb', 0):5.0f}/{d.get('mem_limit_mb') or 0:5.0f} MiB")
    for g in summary["guests"]:
        where = f"h{g['host']}/d{g['domain']}" if g["host"] is not None else "-"
        lines.append(f"  {g['id']:<4} {where:<7} {g['status']:<9} pid={g['pid'] or '-':<7} hb={g['heartbeat']:<4}"
                     f" duty={g['duty'] if g['duty'] is not None else '-':<3} gap={g['max_heartbeat_gap_s']:.2f}s"
                     f" cpu={g['demand_mips']:5.0f} MIPS rss={g['demand_mem_mb']:4.0f} MiB")
    return "\n".join(lines)


class LiveView:
    """Prints the backend's view every ``every_s`` seconds from a thread."""

    def __init__(self, backend: QemuBackend, echo, every_s: float = 2.0, *, observe: bool = True) -> None:
        self.backend, self.echo, self.every, self.observe = backend, echo, every_s, observe
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-view", daemon=True)

    def start(self) -> LiveView:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                if self.observe:  # with the control loop running, its observes keep the mirror current
                    self.backend.observe()
                self.echo(render(self.backend.summary(), self.backend.now()))
            except Exception as exc:  # the view must never take the demo down  # noqa: BLE001
                self.echo(f"  (view: {exc})")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def run_phases(backend: QemuBackend, phases, *, journal_url: str, hold_s: float = 2.0, echo=print) -> list[dict]:
    """Run each phase as one journaled plan through the Applier; returns per-phase results."""
    from presplit.apply.applier import Applier
    from presplit.apply.journal import Journal
    from presplit.control.clock import WallClock
    from presplit.plan.ordering import Limits, order_actions

    journal = Journal(journal_url, controller="demo")
    clock = WallClock(start=backend.now())
    applier = Applier(backend, journal, clock, poll_s=0.1, action_timeout_s=120.0)
    results = []
    for title, actions in phases:
        t0 = time.monotonic()
        echo(f">>> {title}: " + "; ".join(f"{a.kind}({_args(a)})" for a in actions))
        plan = order_actions(actions, Limits(), backend.observe())
        pid = journal.record_plan(plan, tick=clock.now(), source="demo")
        res = applier.run(pid)
        events = [e for e in journal.events(pid) if e.get("event") in ("finished", "failed")]
        results.append({"phase": title, "status": res.status, "seconds": round(time.monotonic() - t0, 3),
                        "failed": res.failed})
        echo(f"<<< {title}: {res.status} in {time.monotonic() - t0:.2f} s" +
             (f" failed={res.failed} {events}" if res.failed else ""))
        if res.status != "succeeded":
            raise RuntimeError(f"phase {title!r} did not succeed: {res.failed}")
        time.sleep(hold_s)
    return results


def _args(a) -> str:
    return ", ".join(f"{k}={v}" for k, v in a.__dict__.items() if k not in ("reason", "details"))


# --------------------------------------------------------------------------- the policy-driven run
KINDS_WANTED = ("SplitDomain", "MoveGuest", "PatchDomain", "MergeDomains", "MigrateGuest")


def _make_loop_class():
    from presplit.control.loop import ControlLoop

    class DemoLoop(ControlLoop):  # built by control.assemble (loop=DemoLoop)
        """The ControlLoop, narrating each tick's plan and ending once every action kind happened.

        It ends after the first tick without actions that follows the last wanted
        kind (the policy has settled), or at ``until_s``.
        """

        def __init__(self, *args, echo, log: list, **kw) -> None:
            super().__init__(*args, **kw)
            self.echo, self.log = echo, log

        def tick(self, t: float, report) -> None:
            plans = report.plans
            super().tick(t, report)
            if report.plans == plans:
                if self._done():
                    self.until = t  # settled: this was the last tick
                return
            plan = self.journal.plans(limit=1)[0]
            rows = self.journal.actions_of(plan["id"])
            self.log.append({"phase": f"tick {t:g}", "tick": t, "plan": plan["id"], "status": plan["status"],
                             "actions": [r["action"]["kind"] for r in rows]})
            for r in rows:
                a = r["action"]
                self.echo(f">>> t={t:6.1f} {a['kind']}({_fmt_args(a['args'])}) {r['status']}: {a['reason']}")

        def _done(self) -> bool:
            c = self.backend.counts
            done = all(c[k] >= 1 for k in KINDS_WANTED if k != "MigrateGuest")
            return done and any(m.status == "completed" for m in self.backend.migrations)

    return DemoLoop


def _fmt_args(args: dict) -> str:
    def short(v):
        return f"{v:.0f}" if isinstance(v, float) else str(v)

    return ", ".join(f"{k}={short(v)}" for k, v in args.items() if v is not None)


def run_policy(backend: QemuBackend, *, journal_url: str, max_s: float = 150.0, echo=print) -> dict:
    """Run the presplit policy in the ControlLoop on the backend (wall clock) until it has done every kind.

    Returns ``{"plans": [...], "actions": [...], "ticks": n, "policy": {...}, "window": (start, end)}``.
    """
    from presplit.apply.journal import Journal
    from presplit.control.assemble import assemble
    from presplit.control.clock import WallClock
    from presplit.plan.ordering import Limits

    policy = demo_policy()
    journal = Journal(journal_url, controller="demo")
    clock = WallClock(start=backend.now())
    log: list = []
    until = clock.now() + max_s
    loop = assemble(backend, journal, clock, [policy], Limits(), interval_s=TICK_S, until_s=until,
                    source="demo:presplit", applier_kw={"poll_s": 0.2}, loop=_make_loop_class(),
                    loop_kw={"echo": echo, "log": log})
    first = loop.first_tick()
    window = patch_window(first)
    with backend.lock:  # host 0's patch calendar starts with the loop (boot times vary)
        backend.state = backend.state.evolve(patch_windows=(window,))
    echo(f"presplit policy (relief {policy.relief:.0%}, target {policy.target:.0%}, lead {policy.lead_s:g} s, "
         f"cooldown {policy.cooldown_s:g} s) every {TICK_S:g} s; host 0's patch window "
         f"{window.start:.1f}-{window.end:.1f} s ({PATCH_S:g} s per domain); vm2 ramps after ~"
         f"{RAMP_IDLE_STEPS * RAMP_STEP_MS / 1000:g} s")
    report = loop.run()
    actions = []
    for plan in reversed(journal.plans()):
        for r in journal.actions_of(plan["id"]):
            a = r["action"]
            actions.append({"tick": plan["tick"], "kind": a["kind"], "args": a["args"], "status": r["status"],
                            "reason": a["reason"]})
    return {"plans": log, "actions": actions, "ticks": report.ticks, "window": (window.start, window.end),
            "policy": {"name": policy.name, "relief": policy.relief, "target": policy.target,
                       "lead_s": policy.lead_s, "cooldown_s": policy.cooldown_s, "tick_s": TICK_S,
                       "patch_s": PATCH_S}}


def demo_summary(backend: QemuBackend, phases: list[dict], wall_s: float, extra: dict | None = None) -> dict:
    """The JSON summary: guests (running exactly once, heartbeat gaps), migrations, action counts."""
    from presplit.backends.qemu.cleanup import find_qemu_processes

    backend.observe()
    names = [n for _pid, n in find_qemu_processes(backend.tag)]
    guests = []
    for g in backend.guest_report():
        n_proc = sum(n == f"presplit-{backend.tag}-{g['id']}" for n in names)
        guests.append({"id": g["id"], "running": bool(g["running"] and g["status"] == "running" and n_proc == 1),
                       "qemu_processes_now": n_proc, "qemu_processes_used": g["qemu_processes"],
                       "max_heartbeat_gap_s": g["max_heartbeat_gap_s"], "heartbeats": g["heartbeat"],
                       "host": g["host"], "domain": g["domain"]})
    migrations = [{"guest": m.guest, "from_domain": m.from_domain, "to_domain": m.to_domain, "status": m.status,
                   "total_ms": m.total_ms, "downtime_ms": m.downtime_ms, "transferred_mb":
                   round(m.transferred_bytes / 1e6, 1), "wall_s": m.wall_s} for m in backend.migrations]
    c = backend.counts
    accel = next((q.accel for q in backend.guests.values()), None)
    return {"guests": guests, "migrations": migrations, "splits": c["SplitDomain"],
            "intra_host_moves": c["MoveGuest"], "patches": c["PatchDomain"], "merges": c["MergeDomains"],
            "placements": c["PlaceGuest"], "phases": phases, "accel": accel, "wall_s": round(wall_s, 2),
            "events": [f"{t:7.2f} {text}" for t, text in backend.events], **(extra or {})}


def format_summary(s: dict) -> str:
    lines = ["", "=== summary " + "=" * 60,
             (f"splits={s['splits']} intra_host_moves={s['intra_host_moves']} migrations={len(s['migrations'])} "
             f"patches={s['patches']} merges={s['merges']} accel={s['accel']} wall={s['wall_s']:.1f} s"),
             "guest  running  max heartbeat gap  heartbeats  QEMU processes used"]
    for g in s["guests"]:
        lines.append(f"{g['id']:<6} {g['running']!s:<8} {g['max_heartbeat_gap_s']:>10.3f} s {g['heartbeats']:>10}"
                     f" {g['qemu_processes_used']:>10}")
    lines.append("migration            status     total (ms)  downtime (ms)  sent (MB)")
    for m in s["migrations"]:
        lines.append(f"{m['guest']:<4} d{m['from_domain']} -> d{m['to_domain']}       {m['status']:<10} "
                     f"{m['total_ms'] or 0:>10.0f} {m['downtime_ms'] or 0:>14.0f} {m['transferred_mb']:>10.1f}")
    if s.get("actions"):
        lines.append("decided by the presplit policy (tick, action, status, reason):")
        for a in s["actions"]:
            lines.append(f"  {a['tick']:6.1f} {a['kind']:<13} {a['status']:<9} {a['reason']}")
    return "\n".join(lines)


def run_demo(*, json_path: str | Path | None = None, hold_s: float = 2.0, memory_mib: int = 128,
             view_every_s: float = 2.0, echo=print, image=None, scripted: bool = False,
             max_s: float = 150.0) -> dict:
    """The whole demo; returns the summary (also written to ``json_path``).

    By default the presplit policy decides (:func:`run_policy`, for at most
    ``max_s`` seconds of control loop); ``scripted=True`` runs the fixed plan
    of :func:`demo_phases` instead (``hold_s`` between its phases).
    """
    from presplit.backends.qemu.cleanup import Teardown, cleanup_stale

    cleanup_stale()  # leftovers of crashed earlier runs (only runs whose owner is gone)
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="presplit-demo-") as tmp, Teardown() as td:
        echo("starting 2 hosts (network namespaces) and booting 4 guests ...")
        spec = scripted_spec(memory_mib) if scripted else demo_spec(memory_mib)
        backend = QemuBackend(spec, teardown=td, image=image)
        backend.place_all({0: 0, 1: 0, 2: 1, 3: 1} if scripted else DEMO_PLACEMENT)
        echo(render(backend.summary(), backend.now()))
        echo("READY: all guests booted", )
        view = LiveView(backend, echo, view_every_s, observe=scripted).start()
        td.add("live view", view.stop)
        journal_url = f"sqlite:///{tmp}/journal.db"
        extra = {}
        try:
            if scripted:
                phases = run_phases(backend, demo_phases(), journal_url=journal_url, hold_s=hold_s, echo=echo)
            else:
                extra = run_policy(backend, journal_url=journal_url, max_s=max_s, echo=echo)
                phases = extra.pop("plans")
        finally:
            view.stop()
        echo(render(backend.summary(), backend.now()))
        summary = demo_summary(backend, phases, time.monotonic() - t0, extra)
        if json_path:
            Path(json_path).write_text(json.dumps(summary, indent=2, default=str))
        echo(format_summary(summary))
        echo("stopping guests, removing cgroups and namespaces ...")
    if td.errors:
        echo("clean-up problems: " + "; ".join(td.errors))
    return summary
