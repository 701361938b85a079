"""``presplit demo qemu --failover``: break the hosts and the controller, and watch the guests come back.

This process owns the *world* (every name carries its tag, ``p<pid>-ha``) and
plays the failures; the controller runs in a child process (``presplit demo
qemu-ha-controller``, :func:`presplit.demo.ha_agent.run_controller`) so that it can be
SIGKILLed and started again. A :class:`HeartbeatObserver` here follows every
QEMU process of the world and its serial log on its own, so the gaps reported
are measured from outside the controller.

1. **QEMU processes killed.** Once the four guests run (h0: vm0, vm1; h1:
   vm2, vm3; h2 empty), every QEMU process inside h1's namespace gets
   SIGKILL. The controller notices their silence after the heartbeat timeout,
   fences them and restarts them from their image on another host.
2. **A whole host killed.** Every process inside h0's namespace gets SIGKILL
   and the namespace is deleted (its link to the bridge goes with it); the
   controller takes h0 out of service and restarts its guests elsewhere.
3. **The controller killed during a live migration.** An operator's request
   makes the controller live-migrate a guest (capped at 16 MiB/s: a few
   seconds); while both QEMU processes exist and the journal has the action
   ``started``, the controller gets SIGKILL, and a new one is started. It
   adopts the running guests, settles the migration (finish or cancel, see
   :mod:`presplit.backends.qemu.failover`), reconciles the journal and carries on.

At the end the controller is stopped (SIGTERM), and every QEMU process of the
world is asked over QMP for its run state (``query-status``) while the process
table is scanned for each guest's name: ``guests_running`` counts guests with
exactly one QEMU process that is ``running`` and still beating,
``duplicate_guests`` those with more than one. Then everything is removed.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from presplit.backends.qemu import cgroups
from presplit.backends.qemu.cleanup import (
    PREFIX,
    Teardown,
    cleanup_stale,
    find_qemu_processes,
    list_namespaces,
    run_tag,
)
from presplit.backends.qemu.failover import (
    HB_TIMEOUT_S,
    FoundQemu,
    World,
    _sigkill,
    failover_spec,
    scan_qemu,
)
from presplit.backends.qemu.guest import HeartbeatMonitor
from presplit.backends.qemu.netns import kill_namespace_host, namespace_pids
from presplit.backends.qemu.qmp import QMPClient, QMPError

CLI = "from presplit.cli.main import cli; cli(prog_name='presplit')"
KILL_AFTER_S = 1.0  # phase 3: SIGKILL the controller this long after the migration's destination appeared


# --------------------------------------------------------------------------- heartbeats seen from outside
class HeartbeatObserver:
    """Every QEMU process of the run (found by name every ``scan_s``) and the beats on its serial log."""

    def __init__(self, tag: str, *, scan_s: float = 0.2) -> None:
        self.tag, self.scan_s = tag, scan_s
        self.procs: dict[int, tuple[str, HeartbeatMonitor, float]] = {}  # pid -> (guest, monitor, first seen)
        self._gone: dict[int, float] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="hb-observer", daemon=True)

    def start(self) -> HeartbeatObserver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        with self._lock:
            for _g, mon, _t in self.procs.values():
                mon.stop()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.scan()
            except Exception:  # noqa: BLE001 - an observer must not take the demo down
                pass
            self._stop.wait(self.scan_s)

    def scan(self) -> None:
        now = time.monotonic()
        live = {f.pid: f for f in scan_qemu(self.tag)}
        with self._lock:
            for pid, f in live.items():
                if pid not in self.procs and f.serial is not None:
                    self.procs[pid] = (f.guest, HeartbeatMonitor(f.serial), now)
            for pid, (_g, mon, _t) in self.procs.items():
                if pid in live:
                    self._gone.pop(pid, None)
                elif now - self._gone.setdefault(pid, now) > 3.0:
                    mon.stop()  # its beats stay

    def beats(self, guest: str) -> list[tuple[float, int]]:
        """(host time, pid) of every beat of ``guest`` on any of its processes, oldest first."""
        with self._lock:
            mons = [(pid, mon) for pid, (g, mon, _t) in self.procs.items() if g == guest]
        return sorted((b.host_time, pid) for pid, mon in mons for b in list(mon.beats))

    def last_before(self, guest: str, t: float) -> float | None:
        times = [bt for bt, _pid in self.beats(guest) if bt <= t]
        return times[-1] if times else None

    def first_after(self, guest: str, t: float, *, exclude: set[int] = frozenset()) -> tuple[float, int] | None:
        return next(((bt, pid) for bt, pid in self.beats(guest) if bt > t and pid not in exclude), None)

    def gaps(self, guest: str, since: float | None = None) -> list[tuple[float, float]]:
        """(start, length) of every gap between consecutive beats (after ``since``)."""
        times = [bt for bt, _pid in self.beats(guest) if since is None or bt >= since]
        return [(a, b - a) for a, b in zip(times, times[1:])]


# --------------------------------------------------------------------------- the controller as a process
class ControllerProcess:
    """``presplit demo qemu-ha-controller --world DIR`` in a child process, started, killed and restarted."""

    def __init__(self, world: World, echo) -> None:
        self.world, self.echo = world, echo
        self.proc: subprocess.Popen | None = None
        self.runs = 0
        self.pids: list[int] = []

    @property
    def log_path(self) -> Path:
        return self.world.dir / f"controller-{self.runs}.log"

    def start(self) -> int:
        self.runs += 1
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen([sys.executable, "-c", CLI, "demo", "qemu-ha-controller",
                                          "--world", str(self.world.dir)],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)  # a ^C goes to this process, which stops it
        self.pids.append(self.proc.pid)
        return self.proc.pid

    def tail(self, n: int = 25) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def status(self) -> dict | None:
        try:
            doc = json.loads(self.world.status_path.read_text())
        except (OSError, ValueError):
            return None
        return doc if self.proc is not None and doc.get("pid") == self.proc.pid else None

    def wait(self, predicate, *, timeout: float, what: str) -> dict:
        """Until the current controller's status satisfies ``predicate``; raises with its log otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            doc = self.status()
            if doc is not None and predicate(doc):
                return doc
            if self.proc.poll() is not None:
                raise RuntimeError(f"the controller exited ({self.proc.returncode}) waiting for {what}:\n"
                                   + self.tail())
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out after {timeout:g} s waiting for {what}; controller log:\n"
                                   + self.tail())
            time.sleep(0.1)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self, timeout: float = 30.0) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None


# --------------------------------------------------------------------------- helpers
def sweep_world(tag: str) -> list[str]:
    """Remove everything of the world ``tag``: QEMU processes, namespaces, cgroup groups, work directories."""
    from presplit.backends.qemu.backend import cpu_group_dirs

    errors = []
    for pid, _name in find_qemu_processes(tag):
        _sigkill(pid)
    for ns in list_namespaces(tag):
        proc = subprocess.run(["ip", "netns", "delete", ns], capture_output=True, text=True)
        if proc.returncode != 0:
            errors.append(f"ip netns delete {ns}: {proc.stderr.strip()}")
    for host_dir in cgroups.host_dirs():
        if host_dir.name.startswith(f"{tag}-"):
            errors += cgroups.remove_tree(host_dir)[1]
    for host_dir in cpu_group_dirs(tag):
        for sub in sorted((p for p in host_dir.iterdir() if p.is_dir()), reverse=True):
            try:
                sub.rmdir()
            except OSError as exc:
                errors.append(f"{sub}: {exc}")
        try:
            host_dir.rmdir()
        except OSError as exc:
            errors.append(f"{host_dir}: {exc}")
    for workdir in Path(tempfile.gettempdir()).glob(f"{PREFIX}-{tag}-*"):
        if workdir.name.startswith(f"{PREFIX}-{tag}-world-"):
            continue  # the world directory goes last (its own teardown step)
        shutil.rmtree(workdir, ignore_errors=True)
    return errors


def _by_guest(found: list[FoundQemu]) -> dict[str, list[FoundQemu]]:
    out: dict[str, list[FoundQemu]] = {}
    for f in found:
        out.setdefault(f.guest, []).append(f)
    return out


def _all_running(doc: dict) -> bool:
    return all(g["status"] == "running" and g["pid"] for g in doc["guests"])


def _journal_rows(world: World, sql: str, args: tuple = ()) -> list[tuple]:
    """Rows of a query on the journal, opened read-only (another process writes it)."""
    db = sqlite3.connect(f"file:{world.journal_path}?mode=ro", uri=True, timeout=5)
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


def _journal_status(world: World, kind: str) -> list[str]:
    """Statuses of the journal's actions of ``kind``, newest plan first."""
    try:
        rows = _journal_rows(world, "SELECT status FROM actions WHERE kind = ? ORDER BY plan_id DESC", (kind,))
    except sqlite3.Error:
        return []
    return [r[0] for r in rows]


def _journal_events(world: World, names: tuple[str, ...]) -> list[dict]:
    rows = _journal_rows(world, "SELECT e.plan_id, e.idx, e.event, e.t, e.detail, a.kind FROM events e "
                                "LEFT JOIN actions a ON a.plan_id = e.plan_id AND a.idx = e.idx ORDER BY e.rowid")
    return [{"plan": p, "action": i, "kind": k, "event": ev, "t": t, "detail": d}
            for p, i, ev, t, d, k in rows if ev in names]


def _qmp_status(f: FoundQemu) -> str:
    if f.qmp is None:
        return "no QMP socket"
    client = QMPClient(f.qmp, timeout=5.0)
    try:
        client.connect(wait=5.0)
        return client.execute("query-status")["status"]
    except QMPError as exc:
        return f"QMP error: {exc}"
    finally:
        client.close()


# --------------------------------------------------------------------------- the run
def run_failover(*, json_path: str | Path | None = None, echo=print, memory_mib: int = 128,
                 hb_timeout_s: float = HB_TIMEOUT_S, phase_timeout_s: float = 90.0,
                 kill_after_s: float = KILL_AFTER_S) -> dict:
    """The three failure phases (module docstring); returns the summary (also written to ``json_path``)."""
    cleanup_stale()  # leftovers of crashed earlier runs (only runs whose owner is gone)
    t_start = time.monotonic()
    tag = f"{run_tag()}-ha"
    spec = failover_spec(memory_mib)
    ids = [g.id for g in spec.guests]
    world_dir = Path(tempfile.mkdtemp(prefix=f"{PREFIX}-{tag}-world-"))
    world = World.create(world_dir, tag, memory_mib=memory_mib, hb_timeout_s=hb_timeout_s)
    fabric = world.fabric(spec.hosts)
    netns = {h.index: h.netns for h in fabric.hosts}
    phases: list[dict] = []
    restarts: list[dict] = []
    controller_kills = 0
    with Teardown() as td:
        td.add("world directory", lambda: _keep_logs(world_dir) or shutil.rmtree(world_dir, ignore_errors=True))
        td.add("world sweep", lambda: sweep_world(tag))
        ctl = ControllerProcess(world, echo)
        td.add("controller", ctl.kill)
        obs = HeartbeatObserver(tag).start()
        td.add("observer", obs.stop)
        try:
            echo(f"world {tag}: 3 hosts (network namespaces), 4 guests of {memory_mib} MiB; heartbeat timeout "
                 f"{hb_timeout_s:g} s")
            pid = ctl.start()
            echo(f"controller started (pid {pid}); booting the guests ...")
            doc = ctl.wait(_all_running, timeout=phase_timeout_s + 60, what="the guests to boot")
            time.sleep(1.0)  # a few beats before anything breaks
            echo(_table(doc))

            # ---- phase 1: the QEMU processes of one host die
            host = 1
            victims = _qemu_in(tag, netns[host])
            echo(f"\n=== phase 1: SIGKILL every QEMU process on h{host}: "
                 + ", ".join(f"{f.guest} (pid {f.pid})" for f in victims))
            t_fail = time.monotonic()
            for f in victims:
                os.kill(f.pid, signal.SIGKILL)
            phase, recs = _await_restarts(ctl, obs, victims, host, t_fail, phase_timeout_s, echo,
                                          what="QEMU processes killed")
            phases.append({"phase": 1, **phase})
            restarts += recs

            # ---- phase 2: a whole host dies
            doc = ctl.status()
            host = next(g["host"] for g in doc["guests"] if g["id"] == ids[0])
            victims = _qemu_in(tag, netns[host])
            echo(f"\n=== phase 2: kill host h{host}: SIGKILL everything in namespace {netns[host]}, delete it "
                 f"({', '.join(f.guest for f in victims)} run there)")
            t_fail = time.monotonic()
            killed = kill_namespace_host(netns[host])
            phase, recs = _await_restarts(ctl, obs, victims, host, t_fail, phase_timeout_s, echo,
                                          what="namespace host killed", lost=True)
            phase["killed_pids"] = killed
            phases.append({"phase": 2, **phase})
            restarts += recs
            failed_host = f"h{host}"

            # ---- phase 3: the controller dies during a live migration
            doc = ctl.status()
            live_hosts = [h["index"] for h in doc["hosts"] if h["ready"]]
            g3 = next(g for g in doc["guests"] if g["host"] in live_hosts)
            to_host = next(h for h in live_hosts if h != g3["host"])
            echo(f"\n=== phase 3: live-migrate {g3['id']} h{g3['host']} -> h{to_host} (operator request), "
                 f"SIGKILL the controller during it, start a new one")
            t_cmd = time.monotonic()
            world.command({"kind": "migrate", "guest": g3["id"], "to_host": to_host,
                           "reason": f"operator: rebalance, {g3['id']} to h{to_host}"})
            dest = _wait_for(lambda: next((f for f in scan_qemu(tag) if f.guest == g3["id"] and f.incoming), None),
                             timeout=30, what=f"the migration destination of {g3['id']}")
            echo(f"    destination QEMU pid {dest.pid} started (-incoming {dest.incoming}); "
                 f"killing the controller in {kill_after_s:g} s")
            time.sleep(kill_after_s)
            copies = [f for f in scan_qemu(tag) if f.guest == g3["id"]]
            journal_said = (_journal_status(world, "MigrateGuest") or ["?"])[0]
            in_flight = len(copies) == 2 and journal_said == "started"
            old_pid = ctl.proc.pid
            t_kill = time.monotonic()
            ctl.kill()
            controller_kills += 1
            echo(f"    SIGKILL controller pid {old_pid}: journal says MigrateGuest {journal_said}; "
                 f"{g3['id']} has {len(copies)} QEMU processes: "
                 + ", ".join(f"pid {f.pid} on h{f.host}{' (-incoming)' if f.incoming else ''}" for f in copies))
            pid = ctl.start()
            echo(f"    controller restarted (pid {pid}); it adopts the world and reconciles the journal")
            doc = ctl.wait(lambda d: _all_running(d) and all(
                len(v) == 1 for v in _by_guest(scan_qemu(tag)).values()), timeout=phase_timeout_s,
                what="the restarted controller to settle")
            t_settled = time.monotonic()
            for rec in doc["adoption"]:
                echo(f"    adopted {rec['guest']}: {rec['decision']}")
            time.sleep(2.0)  # the guests keep beating under the new controller
            g3_after = next(g for g in ctl.status()["guests"] if g["id"] == g3["id"])
            gaps3 = obs.gaps(g3["id"], since=t_cmd)
            phases.append({
                "phase": 3, "what": "controller SIGKILLed during a live migration", "guest": g3["id"],
                "from_host": f"h{g3['host']}", "to_host": f"h{to_host}", "killed_after_s": round(t_kill - t_cmd, 3),
                "in_flight_at_kill": in_flight, "journal_at_kill": journal_said,
                "processes_at_kill": [f.row() for f in copies], "old_controller": old_pid, "new_controller": pid,
                "restart_to_settled_s": round(t_settled - t_kill, 3),
                "adoption": doc["adoption"], "ended_on": f"h{g3_after['host']}",
                "max_gap_s": round(max((d for _s, d in gaps3), default=0.0), 3),
            })

            # ---- the end: stop the controller, then ask every QEMU process found
            wall_loop = time.monotonic() - t_start
            final_doc = ctl.status()
            rc = ctl.stop()
            echo(f"\ncontroller stopped (SIGTERM, exit {rc}); checking every QEMU process over QMP")
            found = scan_qemu(tag)
            per_guest = _by_guest(found)
            check_t = time.monotonic()
            guests = []
            for gid in ids:
                procs = per_guest.get(gid, [])
                rows = [{**f.row(), "qmp_status": _qmp_status(f)} for f in procs]
                beating = (obs.beats(gid) or [(0.0, 0)])[-1][0] > check_t - 2.0
                gaps = obs.gaps(gid)
                fails = [r for r in restarts if r["guest"] == gid]
                # A restart's gap is the one that overlaps its silence (last beat before the kill .. first
                # beat of the new process): a beat the dying process sent just after t_fail moves its start.
                windows = [(r["gap_start"], r["gap_start"] + r["gap_s"]) for r in fails if r["gap_start"] is not None]
                other = [d for s_, d in gaps if not any(s_ < end and s_ + d > start for start, end in windows)]
                guests.append({
                    "id": gid, "processes": rows, "host": f"h{procs[0].host}" if len(procs) == 1 else None,
                    "running": len(rows) == 1 and rows[0]["qmp_status"] == "running" and beating,
                    "heartbeats": len(obs.beats(gid)), "restarts": len(fails),
                    "max_gap_s": round(max((d for _s, d in gaps), default=0.0), 3),
                    "max_gap_outside_restarts_s": round(max(other, default=0.0), 3)})
            reconciled = _journal_events(world, ("reconciled", "adopted"))
        except BaseException:
            echo("controller log (tail):\n" + ctl.tail())
            raise
        summary = {
            "failed_host": failed_host,
            "restarted_guests": len(restarts),
            "restart_max_s": round(max((r["gap_s"] for r in restarts), default=0.0), 3),
            "duplicate_guests": sum(len(g["processes"]) > 1 for g in guests),
            "guests_running": sum(g["running"] for g in guests),
            "guests_total": len(ids),
            "controller_kills": controller_kills,
            "hb_timeout_s": hb_timeout_s,
            "phases": phases, "restarts": [{k: v for k, v in r.items() if k != "gap_start"} for r in restarts],
            "guests": guests,
            "reconciled": [{k: e[k] for k in ("plan", "action", "kind", "event", "detail")} for e in reconciled],
            "controllers": ctl.pids, "strays_killed": final_doc.get("strays", []) if final_doc else [],
            "accel": _accel(found),
            "wall_s": round(wall_loop, 2),
        }
        if json_path:
            Path(json_path).write_text(json.dumps(summary, indent=2, default=str))
        echo(format_failover(summary))
        echo("removing guests, cgroups and namespaces ...")
    if td.errors:
        echo("clean-up problems: " + "; ".join(td.errors))
    return summary


def _keep_logs(world_dir: Path) -> None:
    """``PRESPLIT_FAILOVER_LOGS=DIR``: copy the controllers' logs and the journal there before the world goes."""
    keep = os.environ.get("PRESPLIT_FAILOVER_LOGS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        for f in [*world_dir.glob("controller-*.log"), world_dir / "journal.db", world_dir / "status.json"]:
            if f.exists():
                shutil.copy2(f, Path(keep) / f.name)


def _accel(found: list[FoundQemu]) -> str | None:
    return next((f.accel for f in found if f.accel), None)


def _qemu_in(tag: str, ns: str) -> list[FoundQemu]:
    inside = set(namespace_pids(ns))
    return [f for f in scan_qemu(tag) if f.pid in inside]


def _wait_for(fn, *, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = fn()
        if out:
            return out
        time.sleep(0.05)
    raise RuntimeError(f"timed out after {timeout:g} s waiting for {what}")


def _await_restarts(ctl: ControllerProcess, obs: HeartbeatObserver, victims: list[FoundQemu], host: int,
                    t_fail: float, timeout: float, echo, *, what: str, lost: bool = False) -> tuple[dict, list[dict]]:
    """Wait until every victim guest beats again from a new process elsewhere; measure each one's gap."""
    killed = {f.pid for f in victims}
    names = sorted({f.guest for f in victims})

    def settled(doc):
        if lost and not doc["hosts"][host]["lost"]:
            return False
        if not _all_running(doc):
            return False
        by_id = {g["id"]: g for g in doc["guests"]}
        return all(by_id[n]["pid"] not in killed and obs.first_after(n, t_fail, exclude=killed) for n in names)

    doc = ctl.wait(settled, timeout=timeout, what=f"the guests of h{host} to restart")
    by_id = {g["id"]: g for g in doc["guests"]}
    recs = []
    for n in names:
        last = obs.last_before(n, t_fail)
        first, new_pid = obs.first_after(n, t_fail, exclude=killed)
        ctl_rec = next((r for r in reversed(doc["restarts"]) if r["guest"] == n and r["launched_mono"] > t_fail),
                       {})
        rec = {"guest": n, "phase_what": what, "from_host": f"h{host}", "to_host": f"h{by_id[n]['host']}",
               "new_pid": new_pid, "gap_s": round(first - last, 3) if last is not None else None,
               "gap_start": round(last, 6) if last is not None else None,
               "restart_s": round(first - t_fail, 3),
               "detected_after_s": round(ctl_rec["launched_mono"] - t_fail, 3) if ctl_rec else None,
               "silence_at_detection_s": ctl_rec.get("silence_s"), "boot_s": ctl_rec.get("boot_s")}
        recs.append(rec)
        echo(f"    {n}: h{host} -> {rec['to_host']}: heartbeat gap {rec['gap_s']:.2f} s (restart detected "
             f"{rec['detected_after_s']} s after the kill, boot {rec['boot_s']} s)")
    return {"what": what, "failed_host": f"h{host}", "guests": names,
            "seconds": round(time.monotonic() - t_fail, 3)}, recs


def _table(doc: dict) -> str:
    lines = ["  guest  host  status    pid      silence"]
    for g in doc["guests"]:
        lines.append(f"  {g['id']:<6} h{g['host']}    {g['status']:<9} {g['pid'] or '-':<8} {g['silence_s']:.2f} s")
    return "\n".join(lines)


def format_failover(s: dict) -> str:
    lines = ["", "=== failover summary " + "=" * 50,
             f"failed host {s['failed_host']}  restarted guests {s['restarted_guests']}  "
             f"restart max {s['restart_max_s']:.2f} s  duplicates {s['duplicate_guests']}  "
             f"running {s['guests_running']}/{s['guests_total']}  controller kills {s['controller_kills']}  "
             f"accel {s['accel']}  wall {s['wall_s']:.1f} s",
             "restart  guest  from -> to   heartbeat gap  detected after  boot"]
    for r in s["restarts"]:
        lines.append(f"  {r['phase_what'][:22]:<22} {r['guest']:<5} {r['from_host']} -> {r['to_host']}"
                     f"   {r['gap_s']:>8.2f} s   {r['detected_after_s'] or 0:>8.2f} s   {r['boot_s'] or 0:>5.2f} s")
    p3 = next((p for p in s["phases"] if p["phase"] == 3), None)
    if p3:
        lines.append(f"controller killed {p3['killed_after_s']:.1f} s into migrating {p3['guest']} "
                     f"{p3['from_host']} -> {p3['to_host']} (in flight: {p3['in_flight_at_kill']}); "
                     f"it ended on {p3['ended_on']}, largest gap {p3['max_gap_s']:.2f} s")
        for rec in p3["adoption"]:
            if rec.get("migration"):
                lines.append(f"  restarted controller: {rec['decision']}")
    lines.append("guest  QEMU processes (QMP status)      max gap outside restarts")
    for g in s["guests"]:
        procs = ", ".join(f"pid {p['pid']} h{p['host']} {p['qmp_status']}" for p in g["processes"]) or "none"
        lines.append(f"  {g['id']:<5} {procs:<34} {g['max_gap_outside_restarts_s']:.2f} s")
    return "\n".join(lines)
