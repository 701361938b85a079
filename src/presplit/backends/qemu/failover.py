"""Failover on real QEMU guests: a world that outlives its controller, and a backend that adopts it.

What vSphere HA does for a cluster, on this machine's namespace hosts:

- **The world outlives the controller.** The guests, their cgroup groups and
  the namespaces carry the tag of the process that owns the *world* (the
  ``presplit demo qemu --failover`` process, :mod:`presplit.demo.failover`), not of
  the controller: a controller that is SIGKILLed leaves every guest running,
  and stale sweeps (which look for dead owners) leave them alone. The
  controller (:func:`run_controller`, the hidden ``presplit demo
  qemu-ha-controller``) starts the world the first time and *adopts* it on
  every later start (:class:`FailoverBackend`): QEMU processes are found by
  name (``-name presplit-<tag>-<guest>``), their host and domain read from
  their cgroup, their QMP socket and serial log from their command line. Its
  model of the domains (the :class:`~presplit.model.cluster.ClusterState`
  mirror) is saved after every action; where the guests are is always read
  again from the processes.
- **Detection by missed heartbeats.** Each guest prints ``HB`` on its serial
  console every 200 ms; the controller follows the logs. A guest silent for
  ``hb_timeout_s`` (default 3 s) has failed: it is *fenced* (any QEMU process
  it still has is SIGKILLed, so a hung guest can never come back beside its
  restarted copy) and marked ``down`` with no end (the model's failed guest).
  A host whose namespace is gone is out of service (``host_ready_at`` = inf)
  until it is there again.
- **Restart from the image.** The HA agent
  (:class:`presplit.demo.ha_agent.HAAgent`) runs between control ticks
  (every 0.25 s, in the loop's clock), and once a failure is detected it
  journals a plan of ``RestartGuest`` actions (one per failed guest, on a
  ready host other than the one it failed on, least booked first) and runs it
  through the :class:`~presplit.apply.applier.Applier`, all at once. Here a
  guest has no disk: its "disk image" is the kernel, the initramfs and the
  kernel command line it was first booted with (its workload), so a restart is
  a cold boot of the same image in the new host's namespace and domain group;
  what was in its RAM is lost (its heartbeat counter starts again at 1), as a
  VM restarted by HA from its VMDK loses its memory. ``execute`` launches QEMU
  and returns; the guest is ``down`` (booting) until its userspace says
  ``PRESPLIT-READY``, then ``running``.
- **A controller killed during a live migration.** QEMU migrates on its own;
  the controller only polls. The restarted controller finds two QEMU processes
  for the guest (the source, and the destination started with ``-incoming``)
  and settles the migration *before* the journal is reconciled: while the
  stream still makes progress it lets it finish (up to ``SETTLE_MAX_S``), then
  keeps the destination and quits the source (``postmigrate``, paused); a
  migration that stalls or takes too long is cancelled (``migrate_cancel``),
  the source resumed if it was paused, the destination killed. Reconciliation
  then sees the guest at the destination (``done``: the action is journaled
  ``succeeded``) or at the source (``not_run``: back to ``planned``, and the
  resumed plan migrates it again). Either way one QEMU process runs the guest.
  The agent also kills, every second, any QEMU process of a guest that is not
  the one the controller runs it in.

This module is infrastructure only (the world directory, finding and
adopting QEMU processes, fencing, restarting); the agent, the controller
process and the orchestrator that breaks things are the demo's
(:mod:`presplit.demo.ha_agent`, :mod:`presplit.demo.failover`). They talk
through files in the world directory: ``status.json`` (written by the agent
on every poll) and ``commands/*.json`` (an operator's request, e.g. a live
migration, taken once).
"""

from __future__ import annotations

import json
import math
import os
import pickle
import re
import signal
import subprocess
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from presplit.backends.qemu.backend import (
    GuestSpec,
    MigrationLog,
    QemuBackend,
    QemuWorldSpec,
    _Refuse,
    _set,
    sweep_stale_cpu_groups,
)
from presplit.backends.qemu.cleanup import PREFIX, _running, find_qemu_processes, terminate_process
from presplit.backends.qemu.guest import GuestConfig, GuestError, HeartbeatMonitor, QemuGuest
from presplit.backends.qemu.guest_image import Workload
from presplit.backends.qemu.migration import _await_running, _wait_settled
from presplit.backends.qemu.netns import Fabric, namespace_exists
from presplit.backends.qemu.qmp import QMPError
from presplit.model.domains import ABSENT, DOWN, GUEST_STATES, PENDING, RUNNING

HB_TIMEOUT_S = 3.0      # a guest silent this long has failed
BOOT_ESTIMATE_S = 3.0   # what a restart's receipt says (TCG boot to userspace ~2.6 s alone)
BOOT_TIMEOUT_S = 45.0   # a restart not up by then is fenced and tried again
SETTLE_MAX_S = 20.0     # a restarted controller lets an in-flight migration finish for at most this long
TICK_S = 3.0            # the control loop's tick
_MIGRATING = {"setup", "active", "pre-switchover", "device", "wait-unplug", "postcopy-active", "cancelling"}

#: initial placement {guest: domain}: h0 holds vm0 and vm1, h1 holds vm2 and vm3, h2 is the failover host
FAILOVER_PLACEMENT = {0: 0, 1: 0, 2: 1, 3: 1}


def failover_spec(memory_mib: int = 128) -> QemuWorldSpec:
    """Three hosts of 2 CPUs and 2 GiB, four idle guests; h2 starts empty (the failover capacity).

    Migrations are capped at 16 MiB/s (QEMU's default is 128), so a live
    migration of an idle guest takes a few seconds: long enough to kill the
    controller in the middle of one.
    """
    guests = tuple(GuestSpec(f"vm{i}", memory_mib, Workload.idle(), reserve_mips=250.0) for i in range(4))
    return QemuWorldSpec(guests=guests, hosts=3, cores=None, mips_per_core=1000.0, host_ram_mb=2048.0,
                         qemu_overhead_mb=128.0, provision_s=0.5, patch_duration_s=2.0, interval_s=TICK_S,
                         bandwidth_mib_s=16, migration_deadline_s=60.0, migration_stall_s=5.0)


# --------------------------------------------------------------------------- the world directory
@dataclass
class World:
    """What every controller of one world shares: its directory, tag, clock origin and settings."""

    dir: Path
    tag: str                 # owner tag of every name: the orchestrator's (``p<pid>-ha``)
    octet: int = 81
    t0: float = 0.0          # time.monotonic() at the world's creation: state.now = monotonic - t0
    memory_mib: int = 128
    hb_timeout_s: float = HB_TIMEOUT_S
    settle_max_s: float = SETTLE_MAX_S  # how long a restarted controller lets a migration it finds finish
    placement: dict = field(default_factory=lambda: dict(FAILOVER_PLACEMENT))

    @classmethod
    def create(cls, directory, tag: str, **kw) -> World:
        w = cls(Path(directory), tag, t0=time.monotonic(), **kw)
        w.dir.mkdir(parents=True, exist_ok=True)
        w.commands.mkdir(exist_ok=True)
        doc = {k: v for k, v in asdict(w).items() if k != "dir"}
        doc["placement"] = {str(k): v for k, v in w.placement.items()}
        (w.dir / "world.json").write_text(json.dumps(doc, indent=1))
        return w

    @classmethod
    def load(cls, directory) -> World:
        doc = json.loads((Path(directory) / "world.json").read_text())
        doc["placement"] = {int(k): int(v) for k, v in doc["placement"].items()}
        return cls(Path(directory), **doc)

    @property
    def fabric_tag(self) -> str:
        return f"{self.tag}-q{self.octet}"

    @property
    def journal_path(self) -> Path:
        return self.dir / "journal.db"

    @property
    def journal_url(self) -> str:
        return f"sqlite:///{self.journal_path}"

    @property
    def status_path(self) -> Path:
        return self.dir / "status.json"

    @property
    def state_path(self) -> Path:
        return self.dir / "mirror.pkl"

    @property
    def commands(self) -> Path:
        return self.dir / "commands"

    def fabric(self, n_hosts: int) -> Fabric:
        return Fabric(n_hosts, topology="bridge", octet=self.octet, tag=self.fabric_tag).adopt()

    def command(self, doc: dict) -> Path:
        """Leave an operator's request for the controller (taken once, in name order)."""
        path = self.commands / f"{time.time_ns()}.json"
        _write_atomic(path, json.dumps(doc).encode())
        return path


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


# --------------------------------------------------------------------------- finding QEMU processes
class PidProcess:
    """``Popen``'s ``poll``/``wait`` for a process this one did not start (an adopted QEMU)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None and not _running(self.pid):
            self.returncode = -1  # not our child: its exit status is its parent's to read
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"pid {self.pid}", timeout)
            time.sleep(0.02)
        return self.returncode


_CG = re.compile(r"/presplit/(?P<host>[^/]+)-h(?P<h>\d+)/d(?P<d>\d+)$")


@dataclass
class FoundQemu:
    """One QEMU process of the world, as the process table and its cgroup show it."""

    pid: int
    guest: str
    serial: Path | None
    qmp: Path | None
    incoming: str | None
    accel: str | None
    host: int | None
    domain: int | None

    def row(self) -> dict:
        return {"pid": self.pid, "incoming": self.incoming is not None, "host": self.host, "domain": self.domain}


def _opt(argv: list[str], flag: str) -> str | None:
    for i, a in enumerate(argv[:-1]):
        if a == flag:
            return argv[i + 1]
    return None


def qemu_argv(pid: int) -> list[str]:
    try:
        return [a.decode(errors="replace") for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")]
    except OSError:
        return []


def scan_qemu(tag: str, fabric_tag: str | None = None) -> list[FoundQemu]:
    """Every live QEMU process named ``presplit-<tag>-<guest>``, with where it runs."""
    out = []
    prefix = f"{PREFIX}-{tag}-"
    for pid, name in find_qemu_processes(tag):
        argv = qemu_argv(pid)
        serial, qmp = _opt(argv, "-serial"), _opt(argv, "-qmp")
        host = dom = None
        try:
            for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
                m = _CG.search(line.split(":", 2)[-1])
                if m and (fabric_tag is None or m["host"] == fabric_tag):
                    host, dom = int(m["h"]), int(m["d"])
                    break
        except OSError:
            continue  # gone meanwhile
        out.append(FoundQemu(pid, name[len(prefix):],
                             Path(serial[len("file:"):]) if serial and serial.startswith("file:") else None,
                             Path(qmp[len("unix:"):].split(",")[0]) if qmp and qmp.startswith("unix:") else None,
                             _opt(argv, "-incoming"), _opt(argv, "-accel"), host, dom))
    return out


def _sigkill(pid: int) -> None:
    terminate_process(pid, term_timeout=None, kill_timeout=5.0)


# --------------------------------------------------------------------------- the backend
class FailoverBackend(QemuBackend):
    """A :class:`QemuBackend` whose world outlives it: adopts running guests, detects failures, restarts.

    ``adopt=False``: create the namespaces and groups (the guests are placed by
    the caller). ``adopt=True``: take over the world an earlier controller of
    ``world`` left (see the module docstring). ``close()`` only detaches.
    """

    def __init__(self, spec: QemuWorldSpec, world: World, *, adopt: bool, image=None, echo=print) -> None:
        self.world = world
        self.hb_timeout_s = float(world.hb_timeout_s)
        self.echo = echo
        self.adopting = adopt
        self.lost: set[int] = set()               # hosts whose namespace is gone
        self.booting: dict[int, float] = {}       # guest -> monotonic launch of a restart not up yet
        self.watch_from: dict[int, float] = {}    # guest -> monotonic start/adoption of its process
        self.adoption: list[dict] = []            # what a restart found and decided, per guest
        self.restart_log: list[dict] = []
        self.strays: list[dict] = []
        super().__init__(spec, image=image, start=False, octet=world.octet, tag=world.tag)
        self.counts.setdefault("RestartGuest", 0)
        self._t0 = world.t0
        self.start()

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> FailoverBackend:
        sweep_stale_cpu_groups()
        self.fabric = Fabric(self.spec.hosts, topology="bridge", octet=self.octet, tag=self.world.fabric_tag)
        if self.adopting:
            self.fabric.adopt()
            if self.world.state_path.exists():
                self.state = pickle.loads(self.world.state_path.read_bytes())
        else:
            self.fabric.create()  # no teardown: the namespaces are the world's (the orchestrator sweeps them)
        ready = self.state.host_ready_at.copy()
        for h, host in enumerate(self.fabric.hosts):
            if namespace_exists(host.netns):
                self._sync_host(self.state, h)
                if not np.isfinite(ready[h]):
                    ready[h] = max(self.now(), self.state.now)
            else:
                self.lost.add(h)
                ready[h] = np.inf
        self.state = self.state.evolve(host_ready_at=ready)
        if self.adopting:
            self._adopt_all()
        self.save()
        return self

    def close(self) -> list[str]:
        """Detach: guests, groups and namespaces stay (they are the world's, not this controller's)."""
        with self.lock:
            for guest in self.guests.values():
                guest.qmp.close()
                if guest.heartbeat is not None:
                    guest.heartbeat.stop()
            self._closed = True
        return []

    def shutdown(self) -> None:
        self.close()

    def save(self) -> None:
        """The mirror (domains, allotments, bookings) for the next controller; placement is re-read anyway."""
        with self.lock:
            _write_atomic(self.world.state_path, pickle.dumps(self.state))

    # ------------------------------------------------------------------ the protocol
    def capabilities(self):
        caps = super().capabilities()
        kinds = tuple(dict.fromkeys((*caps.kinds, "RestartGuest")))
        # restarts return at once (the guest boots while the applier polls), so several may run together
        return replace(caps, kinds=kinds, max_concurrent=None)

    def execute(self, action):
        r = super().execute(action)
        if r.ok and action.kind == "RestartGuest":
            r = replace(r, ready_at=r.time + BOOT_ESTIMATE_S)
        self.save()
        return r

    # ------------------------------------------------------------------ heartbeats
    def last_beat(self, g: int) -> float | None:
        """Host clock (monotonic) of the guest's newest heartbeat on any of its QEMU processes."""
        times = [m.last.host_time for m in self.monitors[g] if m.last is not None]
        return max(times) if times else None

    def silence_s(self, g: int, mono: float | None = None) -> float:
        """Seconds since the guest last beat (or since its process was started or adopted, if later)."""
        mono = time.monotonic() if mono is None else mono
        ref = max(self.last_beat(g) or -math.inf, self.watch_from.get(g, -math.inf))
        return mono - ref if math.isfinite(ref) else math.inf

    def _adopt(self, g: int, d: int, guest: QemuGuest) -> None:
        super()._adopt(g, d, guest)
        self.watch_from[g] = time.monotonic()

    def _fence(self, guest: QemuGuest) -> None:
        """Make sure this QEMU can never run the guest again: SIGKILL, no QMP quit (it may hang)."""
        if guest.alive:
            try:
                os.kill(guest.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                guest.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        guest.qmp.close()
        if guest.heartbeat is not None:
            guest.heartbeat.stop()

    def _refresh(self):
        state = super()._refresh()  # processes gone -> down, demand, patch ends
        mono, now = time.monotonic(), max(self.now(), state.now)
        ready = state.host_ready_at.copy()
        status, d_start, d_end = state.guest_status.copy(), state.guest_down_start.copy(), state.guest_down_end.copy()
        back = []
        changed = False
        for h, host in enumerate(self.fabric.hosts):
            there = namespace_exists(host.netns)
            if not there and h not in self.lost:
                self.lost.add(h)
                ready[h] = np.inf
                self._log(f"host h{h}: namespace {host.netns} is gone: out of service")
                changed = True
            elif there and h in self.lost:
                self.lost.discard(h)
                ready[h] = now
                back.append(h)
                self._log(f"host h{h}: namespace back: in service again")
                changed = True
        for g in list(self.booting):
            guest = self.guests.get(g)
            if guest is not None and guest.alive and guest.heartbeat.ready() and self._connect(guest):
                status[g], d_end[g] = RUNNING, now
                up = time.monotonic()
                self.watch_from[g] = up  # its silence counts from here (READY comes a beat before the first HB)
                for rec in reversed(self.restart_log):
                    if rec["index"] == g and rec.get("up_mono") is None:
                        rec["up_mono"] = up
                        rec["boot_s"] = round(up - rec["launched_mono"], 3)
                        break
                self._log(f"guest {self.spec.guests[g].id}: up again after {up - self.booting.pop(g):.1f} s of boot")
                changed = True
            elif guest is None or not guest.alive or mono - self.booting[g] > BOOT_TIMEOUT_S:
                if guest is not None:
                    self._fence(guest)
                status[g], d_start[g], d_end[g] = DOWN, now, np.inf
                self._log(f"guest {self.spec.guests[g].id}: restart did not come up: fenced, to be tried again")
                del self.booting[g]
                changed = True
        for g, guest in self.guests.items():
            if g in self.booting or g in self.paused or int(status[g]) != RUNNING:
                continue
            silent = self.silence_s(g, mono)
            if silent > self.hb_timeout_s:
                self._fence(guest)
                status[g], d_start[g], d_end[g] = DOWN, now - silent, np.inf
                self._log(f"guest {self.spec.guests[g].id}: no heartbeat for {silent:.1f} s: failed, fenced "
                          f"(pid {guest.pid})")
                changed = True
        if changed:
            state = state.evolve(host_ready_at=ready, guest_status=status, guest_down_start=d_start,
                                 guest_down_end=d_end)
            for h in back:
                self._sync_host(state, h)
        return state

    @staticmethod
    def _connect(guest: QemuGuest) -> bool:
        if not guest.qmp.connected:
            try:
                guest.qmp.connect(wait=2.0)
            except QMPError:
                return False
        return True

    def failed(self, state=None) -> list[int]:
        """Guests a failure stopped (down, no end) whose silence has reached the timeout."""
        s = self.state if state is None else state
        mono = time.monotonic()
        return [g for g in range(s.n_guests) if int(s.guest_status[g]) == DOWN and np.isinf(s.guest_down_end[g])
                and self.silence_s(g, mono) >= self.hb_timeout_s]

    # ------------------------------------------------------------------ restart
    def _do_RestartGuest(self, state, new, a):
        g, d = a.guest, a.to_domain
        src = int(state.guest_domain[g])
        old = self.guests.pop(g, None)
        if old is not None:
            self._fence(old)  # whatever is left of it must not run beside the new copy
        guest = self._launch(g, d, new)
        try:
            guest.start(wait=False, connect=False)  # QMP once it is up: several restarts launch together
        except (GuestError, OSError) as exc:
            guest.remove_workdir()
            raise _Refuse(f"QEMU did not start: {str(exc).splitlines()[0]}") from exc
        self._adopt(g, d, guest)
        launched = time.monotonic()
        self.booting[g] = launched
        host = int(new.domains[d].host)
        self.restart_log.append({
            "guest": self.spec.guests[g].id, "index": g,
            "from_host": int(state.domains[src].host) if src >= 0 else None,
            "to_host": host, "to_domain": d, "pid": guest.pid, "launched_mono": launched,
            "last_beat_mono": a.details.get("last_beat_mono"), "silence_s": a.details.get("silence_s"),
            "up_mono": None})
        booting = new.evolve(guest_status=_set(new.guest_status, g, DOWN),
                             guest_down_end=_set(new.guest_down_end, g, self.now() + BOOT_TIMEOUT_S))
        return booting, {"pid": guest.pid, "host": host, "from_domain": src, "to_domain": d}

    # ------------------------------------------------------------------ strays
    def sweep_strays(self) -> list[dict]:
        """SIGKILL every QEMU process of the world that is not the one a guest runs in (no split brain)."""
        with self.lock:
            ids = {s.id: i for i, s in enumerate(self.spec.guests)}
            killed = []
            for f in scan_qemu(self.tag, self.world.fabric_tag):
                g = ids.get(f.guest)
                cur = self.guests.get(g) if g is not None else None
                if cur is not None and cur.pid == f.pid:
                    continue
                _sigkill(f.pid)
                rec = {"guest": f.guest, **f.row(), "t": round(self.now(), 3),
                       "why": "not the process the controller runs the guest in"}
                killed.append(rec)
                self._log(f"stray QEMU of {f.guest} (pid {f.pid}) killed")
            self.strays += killed
            return killed

    # ------------------------------------------------------------------ adoption
    def _attach(self, g: int, f: FoundQemu) -> QemuGuest | None:
        """A QemuGuest handle on a QEMU process found running (QMP connected); None if it does not answer."""
        spec = self.spec.guests[g]
        host = f.host if f.host is not None else 0
        cfg = GuestConfig(name=spec.id, memory_mib=spec.memory_mib, workload=spec.workload, image=self.image,
                          netns=self.fabric.hosts[host].netns, cgroup=self.cg.get(f.domain))
        workdir = f.serial.parent if f.serial is not None else None
        q = QemuGuest(cfg, workdir=workdir, incoming=f.incoming, tag=self.tag)
        if f.serial is not None:
            q.serial_log = f.serial
        if f.qmp is not None:
            q.qmp_path = f.qmp
            q.qmp.path = str(f.qmp)
        q.proc = PidProcess(f.pid)
        q.accel = f.accel
        q.started_at = time.monotonic()
        q.heartbeat = HeartbeatMonitor(q.serial_log, start_at_end=True)
        try:
            q.qmp.connect(wait=5.0)
        except QMPError:
            q.heartbeat.stop()
            _sigkill(f.pid)
            return None
        return q

    def _kill_copy(self, q: QemuGuest) -> None:
        try:
            q.stop(timeout=3.0)
        except GuestError:
            _sigkill(q.pid)

    def _settle_migration(self, src: QemuGuest) -> tuple[str, dict, str]:
        """An in-flight migration found on ``src``: let it finish while it progresses, else cancel it."""
        t0 = time.monotonic()
        info = src.qmp.execute("query-migrate")
        first = info.get("status", "none")
        best, last_change = -1, t0
        how = "not migrating"
        while info.get("status", "none") in _MIGRATING:
            how = "finished while the restarted controller waited"
            now = time.monotonic()
            sent = int(info.get("ram", {}).get("transferred", 0))
            if sent > best:
                best, last_change = sent, now
            stalled = now - last_change > self.spec.migration_stall_s
            if stalled or now - t0 >= self.world.settle_max_s:
                how = (f"cancelled by the restarted controller: {'no progress' if stalled else 'still copying'} "
                       f"after {now - t0:.1f} s")
                src.qmp.execute("migrate_cancel")
                _wait_settled(src)
                info = src.qmp.execute("query-migrate")
                break
            time.sleep(0.1)
            info = src.qmp.execute("query-migrate")
        if first == "completed":
            how = "had completed while no controller ran"
        status = info.get("status", "none")
        if status == "completed" and "cancelled" in how:
            how = "completed while being cancelled"
        return status, {**info, "seen_first": first, "waited_s": round(time.monotonic() - t0, 3)}, how

    def _resolve(self, g: int, copies: list[FoundQemu]) -> tuple[QemuGuest | None, FoundQemu | None, dict]:
        """Of the QEMU processes found for guest ``g``, keep exactly one running copy (or none)."""
        spec = self.spec.guests[g]
        rec: dict = {"guest": spec.id, "found": [], "decision": ""}
        handles: list[tuple[QemuGuest, FoundQemu]] = []
        for f in copies:
            q = self._attach(g, f)
            row = f.row()
            if q is None:
                row["status"] = "no QMP answer: killed"
            else:
                try:
                    row["status"] = q.status()
                    handles.append((q, f))
                except QMPError as exc:
                    row["status"] = f"query-status failed ({exc}): killed"
                    self._kill_copy(q)
            rec["found"].append(row)
        sources = [(q, f) for q, f in handles if f.incoming is None]
        dests = [(q, f) for q, f in handles if f.incoming is not None]
        keep: tuple[QemuGuest, FoundQemu] | None = None
        if sources and dests:
            src = sources[0]
            status, info, how = self._settle_migration(src[0])
            ram = info.get("ram", {})
            rec["migration"] = {"status": status, "seen_first": info["seen_first"], "waited_s": info["waited_s"],
                                "total_ms": info.get("total-time"), "downtime_ms": info.get("downtime"),
                                "transferred_mb": round(int(ram.get("transferred", 0)) / 1e6, 1), "how": how}
            if status == "completed":
                for q, f in dests:
                    try:
                        _await_running(q, timeout=5.0)
                        keep = (q, f)
                        break
                    except (QMPError, Exception):  # noqa: BLE001 - a destination that is not running is not kept
                        continue
            if keep is None:
                q = src[0]
                if q.status() != "running":
                    q.qmp.execute("cont")
                keep = src
                rec["decision"] = f"migration {how}: the guest stays at the source (h{src[1].host})"
            else:
                rec["decision"] = f"migration {how}: the guest runs at the destination (h{keep[1].host})"
            dom_from, dom_to = src[1].domain, dests[0][1].domain
            self.migrations.append(MigrationLog(spec.id, dom_from if dom_from is not None else -1,
                                                dom_to if dom_to is not None else -1,
                                                "completed" if keep is not src else status,
                                                info.get("total-time"), info.get("downtime"),
                                                int(ram.get("transferred", 0)), info["waited_s"],
                                                f"found in flight after a controller restart: {how}"))
        elif handles:
            running = [(q, f) for q, f in handles if q.status() == "running"]
            keep = running[0] if running else next(((q, f) for q, f in handles if f.incoming is None), None)
            if keep is not None and keep[0].status() != "running":
                st = keep[0].status()
                dom = keep[1].domain
                if st == "paused" and dom is not None and dom < len(self.state.domains) and \
                        self.state.domains[dom].state == "patching":
                    self.paused.add(g)
                else:
                    keep[0].qmp.execute("cont")
                rec["decision"] = f"one copy, {st}: " + ("kept paused (domain patching)" if g in self.paused
                                                         else "resumed")
            elif keep is not None:
                rec["decision"] = "one running copy: adopted"
            else:
                rec["decision"] = "only a destination that never received the guest: killed; the guest failed"
        else:
            rec["decision"] = "no QEMU process: the guest failed"
        for q, f in handles:
            if keep is None or q is not keep[0]:
                self._kill_copy(q)
                rec.setdefault("killed", []).append(f.pid)
        if keep is None:
            return None, None, rec
        rec["kept_pid"] = keep[1].pid
        return keep[0], keep[1], rec

    def _adopt_all(self) -> None:
        """Take over the guests the world runs; settle what a dead controller left half done."""
        found = scan_qemu(self.tag, self.world.fabric_tag)
        ids = {s.id: i for i, s in enumerate(self.spec.guests)}
        for f in found:
            if f.guest not in ids:
                _sigkill(f.pid)
                self.strays.append({"guest": f.guest, **f.row(), "why": "unknown guest"})
        s = self.state
        now = max(self.now(), s.now)
        dom, dest, status = s.guest_domain.copy(), s.guest_dest.copy(), s.guest_status.copy()
        d_start, d_end, mig_end = s.guest_down_start.copy(), s.guest_down_end.copy(), s.guest_mig_end.copy()
        for g, spec in enumerate(self.spec.guests):
            q, f, rec = self._resolve(g, [x for x in found if x.guest == spec.id])
            dest[g] = -1
            if q is None and int(status[g]) in (PENDING, ABSENT) and not rec["found"]:
                rec["decision"] = "never placed: nothing to adopt"
            elif q is None:
                if not (int(status[g]) == DOWN and np.isinf(d_end[g])):
                    d_start[g] = now
                status[g], d_end[g] = DOWN, np.inf
            else:
                if f.domain is not None and f.domain != int(dom[g]):
                    rec["mirror"] = f"domain {int(dom[g])} -> {f.domain} (where its process runs)"
                    mig_end[g] = now
                    dom[g] = f.domain
                self.guests[g] = q
                self.monitors[g].append(q.heartbeat)
                self.watch_from[g] = time.monotonic()
                if f.domain in self.cpu_cg:
                    self.cpu_cg[f.domain].add_process(q.pid)
                booted = f.incoming is not None  # a migration's destination: the guest booted at its source
                try:
                    log = q.serial_log.read_text(errors="replace")
                    booted = booted or "PRESPLIT-READY" in log or re.search(r"^HB \d", log, re.M) is not None
                except OSError:
                    pass
                if booted:
                    status[g] = RUNNING
                    if not np.isfinite(d_end[g]) or d_end[g] > now:
                        d_end[g] = now
                else:  # adopted while booting (a restart the dead controller had launched)
                    self.booting[g] = time.monotonic()
                    status[g], d_end[g] = DOWN, now + BOOT_TIMEOUT_S
                    rec["decision"] += "; still booting"
            self.adoption.append(rec)
            self._log(f"adopt {spec.id}: {rec['decision']}")
        self.state = s.evolve(guest_domain=dom, guest_dest=dest, guest_status=status, guest_down_start=d_start,
                              guest_down_end=d_end, guest_mig_end=mig_end)

    # ------------------------------------------------------------------ status
    def status_doc(self) -> dict:
        with self.lock:
            s = self.state
            mono = time.monotonic()
            guests = []
            for g, spec in enumerate(self.spec.guests):
                q = self.guests.get(g)
                d = int(s.guest_domain[g])
                guests.append({"id": spec.id, "index": g, "domain": d,
                               "host": int(s.domains[d].host) if d >= 0 else None,
                               "status": GUEST_STATES[int(s.guest_status[g])],
                               "pid": q.pid if q is not None and q.alive else None,
                               "booting": g in self.booting,
                               "silence_s": round(min(self.silence_s(g, mono), 1e9), 3)})
            hosts = [{"index": h, "name": f"h{h}", "netns": host.netns, "lost": h in self.lost,
                      "ready": bool(s.host_ready(h))} for h, host in enumerate(self.fabric.hosts)]
            return {"pid": os.getpid(), "mono": mono, "t": round(self.now(), 3), "hb_timeout_s": self.hb_timeout_s,
                    "hosts": hosts, "guests": guests, "restarts": list(self.restart_log), "adoption": self.adoption,
                    "strays": self.strays, "migrations": [m.__dict__ for m in self.migrations],
                    "events": [f"{t:7.2f} {text}" for t, text in self.events[-40:]]}
