"""``presplit demo qemu``: presplit's split-domain cycle on real QEMU guests, end to end.

Two hosts (network namespaces on a bridge), four 128 MiB guests (``vm0`` runs
a CPU ramp 10 % -> 90 %, the others idle), two per host. Then, each phase a
plan journaled and run by the real :class:`~presplit.apply.applier.Applier`
against the :class:`~presplit.backends.qemu.backend.QemuBackend`:

1. **split** host h0's domain ahead of vm0's ramp (a new 1-CPU domain);
2. **move** vm1 into the new domain (intra-host: threads change groups);
3. **migrate** vm0, the ramping guest, to h1 (live, over QMP);
4. **patch** the emptied original domain;
5. **recombine** the two domains of h0 (vm1 re-pinned into the merged domain);
6. **migrate** vm0 back to h0 (its ramp is over).

The plan is scripted (the same every run), not proposed by the presplit policy
at run time: the policy's decisions depend on forecasts built over several
control ticks, which a one-minute demo on a 2-core machine cannot make
deterministic. Each action still goes through the same journal, applier,
pre- and post-conditions as ``presplit run``.

While it runs, a live view prints the domains (CPU set, CFS quota, memory
limit and use) and the guests (host, domain, heartbeat counter, largest gap,
measured CPU); at the end, a summary (and ``--json FILE``). Everything is
stopped on exit, on Ctrl-C and on failure (a :class:`~.cleanup.Teardown`).
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
from pathlib import Path

from presplit.backends.qemu.backend import GuestSpec, QemuBackend, QemuWorldSpec
from presplit.backends.qemu.guest_image import Workload
from presplit.plan.actions import (
    MergeDomains,
    MigrateGuest,
    MoveGuest,
    PatchDomain,
    SplitDomain,
)


def demo_spec(memory_mib: int = 128) -> QemuWorldSpec:
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

    def __init__(self, backend: QemuBackend, echo, every_s: float = 2.0) -> None:
        self.backend, self.echo, self.every = backend, echo, every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-view", daemon=True)

    def start(self) -> LiveView:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
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


def demo_summary(backend: QemuBackend, phases: list[dict], wall_s: float) -> dict:
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
            "events": [f"{t:7.2f} {text}" for t, text in backend.events]}


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
    return "\n".join(lines)


def run_demo(*, json_path: str | Path | None = None, hold_s: float = 2.0, memory_mib: int = 128,
             view_every_s: float = 2.0, echo=print, image=None) -> dict:
    """The whole demo; returns the summary (also written to ``json_path``)."""
    from presplit.backends.qemu.cleanup import Teardown, cleanup_stale

    cleanup_stale()  # leftovers of crashed earlier runs (only runs whose owner is gone)
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="presplit-demo-") as tmp, Teardown() as td:
        echo("starting 2 hosts (network namespaces) and booting 4 guests ...")
        backend = QemuBackend(demo_spec(memory_mib), teardown=td, image=image)
        backend.place_all({0: 0, 1: 0, 2: 1, 3: 1})
        echo(render(backend.summary(), backend.now()))
        echo("READY: all guests booted", )
        view = LiveView(backend, echo, view_every_s).start()
        td.add("live view", view.stop)
        try:
            phases = run_phases(backend, demo_phases(), journal_url=f"sqlite:///{tmp}/journal.db", hold_s=hold_s,
                                echo=echo)
        finally:
            view.stop()
        echo(render(backend.summary(), backend.now()))
        summary = demo_summary(backend, phases, time.monotonic() - t0)
        if json_path:
            Path(json_path).write_text(json.dumps(summary, indent=2, default=str))
        echo(format_summary(summary))
        echo("stopping guests, removing cgroups and namespaces ...")
    if td.errors:
        echo("clean-up problems: " + "; ".join(td.errors))
    return summary
