"""One QEMU guest process: start, watch its heartbeat, stop; and the KVM probe.

Owns the lifecycle of a ``qemu-system-x86_64`` process running the presplit
guest image: building its command line, starting it inside a network
namespace and a cgroup domain, connecting QMP, reading the heartbeat that the
guest prints on its serial port, and stopping it (QMP ``quit``, then SIGTERM,
then SIGKILL) so that no process is ever left behind.

Placement at start: the launcher is ``sh -c 'echo $$ > <cgroup>/tasks ...;
exec ip netns exec NS qemu ...'``, so QEMU is born inside the cgroup (every
thread it ever creates, and every page it allocates, is accounted there) and
inside the namespace. The cgroup files must be written *before* ``ip netns
exec``: that command remounts /sys in a private mount namespace, where the
cgroup mounts are not visible.

Acceleration: :func:`probe_kvm` boots the guest under KVM with a short
timeout and requires the guest's userspace to come up; the verdict is cached
per host kernel, QEMU and guest kernel. On a paravirtual KVM (``kvm_pvm``) a
stock kernel never gets there, so TCG is used.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from presplit.backends.qemu.cgroups import CgroupDomain
from presplit.backends.qemu.cleanup import PREFIX, Teardown, run_tag, terminate_process
from presplit.backends.qemu.guest_image import (
    MIN_GUEST_MIB,
    GuestImage,
    Workload,
    cache_dir,
    guest_image,
)
from presplit.backends.qemu.qmp import QMPClient, QMPError
from presplit.errors import PresplitError

QEMU = "qemu-system-x86_64"
_HB = re.compile(r"^HB (\d+) (\d+\.\d+)(?: (\d+))?")


class GuestError(PresplitError, RuntimeError):
    """QEMU failed to start, to boot, or to answer; the message has its log."""


# --- heartbeat ---------------------------------------------------------------
@dataclass(frozen=True)
class Beat:
    counter: int
    guest_uptime: float
    duty: int | None
    host_time: float  # time.monotonic() when the host read the line


class HeartbeatMonitor:
    """Follows a serial log file and timestamps each heartbeat on arrival.

    A thread polls the file every ``poll_s`` seconds (QEMU writes serial
    output to the file as the guest emits it), so host-clock gaps are exact to
    about ``poll_s``.
    """

    def __init__(self, path: Path, *, poll_s: float = 0.02, start_at_end: bool = False) -> None:
        self.path = Path(path)
        self.poll_s = poll_s
        # start_at_end: follow only what is written from now on (a guest another process started,
        # whose earlier beats would all be stamped with the time they were read)
        self._start = self.path.stat().st_size if start_at_end and self.path.exists() else 0
        self.beats: list[Beat] = []
        self.lines: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat:{self.path.name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        pos, partial = self._start, b""
        while not self._stop.is_set():
            try:
                with open(self.path, "rb") as fh:
                    fh.seek(pos)
                    data = fh.read()
            except FileNotFoundError:
                data = b""
            now = time.monotonic()
            if data:
                pos += len(data)
                partial += data
                *complete, partial = partial.split(b"\n")
                with self._lock:
                    for raw in complete:
                        line = raw.decode(errors="replace").strip("\r")
                        self.lines.append(line)
                        m = _HB.match(line)
                        if m:
                            duty = int(m.group(3)) if m.group(3) is not None else None
                            self.beats.append(Beat(int(m.group(1)), float(m.group(2)), duty, now))
            self._stop.wait(self.poll_s)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)

    @property
    def last(self) -> Beat | None:
        with self._lock:
            return self.beats[-1] if self.beats else None

    @property
    def last_counter(self) -> int:
        last = self.last
        return last.counter if last else 0

    def max_gap(self, since: float | None = None) -> float:
        """Largest host-clock gap between consecutive beats (after ``since``)."""
        with self._lock:
            times = [b.host_time for b in self.beats if since is None or b.host_time >= since]
        return max((b - a for a, b in zip(times, times[1:])), default=0.0)

    def wait_for(self, predicate, timeout: float) -> bool:
        """Poll until ``predicate(self)`` holds; False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self):
                return True
            time.sleep(self.poll_s)
        return predicate(self)

    def wait_beats(self, n: int, timeout: float) -> bool:
        """Wait until ``n`` more beats than now have arrived."""
        target = len(self.beats) + n
        return self.wait_for(lambda m: len(m.beats) >= target, timeout)

    def ready(self) -> bool:
        with self._lock:
            return any(line.startswith("PRESPLIT-READY") for line in self.lines) or bool(self.beats)

    def tail(self, n: int = 20) -> str:
        with self._lock:
            return "\n".join(self.lines[-n:])


def merged_beats(*monitors: HeartbeatMonitor) -> list[Beat]:
    """Beats of one guest observed on several QEMUs (before/after migration), by host time."""
    return sorted((b for m in monitors for b in m.beats), key=lambda b: b.host_time)


def max_gap(beats: list[Beat]) -> float:
    return max((b.host_time - a.host_time for a, b in zip(beats, beats[1:])), default=0.0)


# --- configuration -----------------------------------------------------------
@dataclass(frozen=True)
class GuestConfig:
    """What to run and where. ``accel=None`` means: KVM if :func:`probe_kvm` says so."""

    name: str
    memory_mib: int = 128
    workload: Workload = field(default_factory=Workload)
    image: GuestImage | None = None
    accel: str | None = None
    netns: str | None = None
    cgroup: CgroupDomain | None = None
    extra_args: tuple[str, ...] = ()

    def placed(self, *, netns: str | None, cgroup: CgroupDomain | None) -> GuestConfig:
        """The same guest, somewhere else (a migration destination)."""
        return replace(self, netns=netns, cgroup=cgroup)


class QemuGuest:
    """A running (or runnable) QEMU process for one guest.

    ``incoming`` (e.g. ``"tcp:10.77.0.2:4444"``) starts it as a migration
    destination, paused until the migration stream arrives.
    """

    def __init__(self, config: GuestConfig, *, workdir: Path | None = None,
                 incoming: str | None = None, teardown: Teardown | None = None,
                 tag: str | None = None) -> None:
        if config.memory_mib < MIN_GUEST_MIB:
            raise ValueError(f"guest needs at least {MIN_GUEST_MIB} MiB (the kernel panics below ~80)")
        self.config = config
        self.incoming = incoming
        self.teardown = teardown
        self.tag = tag or run_tag()
        self.qemu_name = f"{PREFIX}-{self.tag}-{config.name}"
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix=f"{self.qemu_name}-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        suffix = "-in" if incoming else ""
        self.serial_log = self.workdir / f"serial{suffix}.log"
        self.qmp_path = self.workdir / f"qmp{suffix}.sock"
        self.qemu_log = self.workdir / f"qemu{suffix}.log"
        self.proc: subprocess.Popen | None = None
        self.qmp = QMPClient(self.qmp_path)
        self.heartbeat: HeartbeatMonitor | None = None
        self.accel = config.accel
        self.started_at: float | None = None
        self._teardown_key: str | None = None

    def __repr__(self) -> str:
        return f"QemuGuest({self.qemu_name!r}, pid={self.pid}, netns={self.config.netns})"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # -- start ----------------------------------------------------------------
    def command(self) -> list[str]:
        cfg = self.config
        image = cfg.image or guest_image()
        accel = self.accel or ("kvm" if probe_kvm(image) else "tcg")
        self.accel = accel
        argv = [
            QEMU,
            "-name", self.qemu_name,  # the marker cleanup_stale looks for
            "-accel", accel,
            "-m", str(cfg.memory_mib),
            "-smp", "1",
            "-nodefaults",  # no VGA/NIC/floppy: less to boot and to migrate
            "-no-reboot",   # with panic=-1 a guest panic ends the QEMU process
            "-kernel", str(image.kernel),
            "-initrd", str(image.initrd),
            "-append", image.append(cfg.workload),
            "-display", "none",
            "-monitor", "none",
            "-serial", f"file:{self.serial_log}",
            "-qmp", f"unix:{self.qmp_path},server=on,wait=off",
            "-device", "virtio-balloon-pci,id=balloon0",
            *cfg.extra_args,
        ]
        if self.incoming:
            argv += ["-incoming", self.incoming]
        return argv

    def start(self, *, wait: bool = True, timeout: float = 30.0, connect: bool = True) -> QemuGuest:
        """Launch QEMU; with ``wait``, until the guest's userspace is up (or,
        for an incoming guest, until QMP answers). ``connect=False`` (with ``wait=False``):
        return at once, QMP not connected yet (``qmp.connect`` later; several boots start together)."""
        if self.proc is not None:
            raise GuestError(f"{self} already started")
        qemu_argv = self.command()
        argv = qemu_argv
        if self.config.netns:
            argv = ["ip", "netns", "exec", self.config.netns, *argv]
        tasks = [str(p) for p in self.config.cgroup.tasks_files()] if self.config.cgroup else []
        launcher = [
            "sh", "-c",
            # join the cgroup(s) first, then become ip-netns-exec, then QEMU:
            # one pid throughout, so everything QEMU creates is accounted.
            'for t in $PRESPLIT_CG_TASKS; do echo $$ > "$t" || exit 97; done; exec "$@"',
            "presplit-launch", *argv,
        ]
        env = dict(os.environ, PRESPLIT_CG_TASKS=" ".join(tasks))
        for stale in (self.serial_log, self.qmp_path):
            stale.unlink(missing_ok=True)
        self.serial_log.touch()
        self.heartbeat = HeartbeatMonitor(self.serial_log)
        if self.teardown is not None and self._own_workdir:
            # registered before the QEMU step, so it runs after QEMU is gone
            self.teardown.add(f"workdir {self.workdir}", self.remove_workdir)
        with open(self.qemu_log, "wb") as log:
            self.proc = subprocess.Popen(
                launcher, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,  # a ^C in the terminal goes to us, and we stop QEMU in order
            )
        self.started_at = time.monotonic()
        if self.teardown is not None:
            self._teardown_key = f"qemu {self.qemu_name} pid {self.proc.pid}"
            self.teardown.add(self._teardown_key, self.stop)
        if not connect and not wait:
            return self
        try:
            self.qmp.connect(wait=timeout)
            if wait and not self.incoming:
                if not self.heartbeat.wait_for(lambda m: m.ready() or not self.alive, timeout):
                    raise GuestError(f"{self} did not reach userspace in {timeout:.0f} s")
                if not self.alive:
                    raise GuestError(f"{self} exited during boot")
        except (QMPError, GuestError) as exc:
            log = self.read_log()
            self.stop()
            raise GuestError(
                f"starting {self.qemu_name} failed: {exc}\ncommand: {' '.join(argv)}\n"
                f"qemu output: {log}\nserial tail: {self.heartbeat.tail(5) if self.heartbeat else ''}"
            ) from exc
        return self

    def read_log(self) -> str:
        try:
            return self.qemu_log.read_text(errors="replace").strip()
        except FileNotFoundError:
            return ""

    # -- queries ----------------------------------------------------------------
    def status(self) -> str:
        """QEMU's run state: ``running``, ``inmigrate``, ``postmigrate``, ``paused``..."""
        return self.qmp.execute("query-status")["status"]

    def thread_ids(self) -> list[int]:
        if not self.alive:
            return []
        return sorted(int(t.name) for t in Path(f"/proc/{self.pid}/task").iterdir())

    # -- stop -------------------------------------------------------------------
    def stop(self, *, timeout: float = 5.0) -> None:
        """QMP ``quit``, then SIGTERM, then SIGKILL; reaps the process. Idempotent."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                if self.qmp.connected:
                    self.qmp.execute("quit", timeout=2)
            except QMPError:
                pass  # QEMU may close the socket before it answers; the wait decides
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                terminate_process(self.proc.pid)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired as exc:
                raise GuestError(f"{self} survived SIGKILL") from exc
        self.qmp.close()
        if self.heartbeat is not None:
            self.heartbeat.stop()
        if self.teardown is not None and self._teardown_key:
            self.teardown.discard(self._teardown_key)

    def remove_workdir(self) -> None:
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> QemuGuest:
        return self if self.proc else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- KVM probe ---------------------------------------------------------------
def _probe_key(image: GuestImage) -> str:
    qemu_version = subprocess.run([QEMU, "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    return f"{os.uname().release}|{qemu_version}|{image.kernel_release}"


def probe_kvm(image: GuestImage | None = None, *, timeout: float = 10.0, refresh: bool = False) -> bool:
    """Can this host boot the guest under KVM to userspace within ``timeout``?

    The verdict is cached in ``<cache>/kvm-probe.json`` per host kernel, QEMU
    version and guest kernel: the probe costs up to ``timeout`` seconds.
    """
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False
    image = image or guest_image()
    verdict_file = cache_dir() / "kvm-probe.json"
    key = _probe_key(image)
    if not refresh:
        try:
            cached = json.loads(verdict_file.read_text())
            if cached.get("key") == key:
                return bool(cached["kvm"])
        except (FileNotFoundError, ValueError, KeyError):
            pass
    guest = QemuGuest(GuestConfig(name="kvm-probe", memory_mib=MIN_GUEST_MIB, image=image, accel="kvm"))
    t0 = time.monotonic()
    try:
        guest.start(timeout=timeout)
        ok = guest.heartbeat.wait_beats(1, timeout=max(1.0, timeout - (time.monotonic() - t0)))
        detail = "booted to userspace" if ok else "no heartbeat"
    except GuestError as exc:
        ok, detail = False, str(exc).splitlines()[0]
    finally:
        guest.stop()
        guest.remove_workdir()
    record = {"key": key, "kvm": ok, "detail": detail, "seconds": round(time.monotonic() - t0, 2)}
    tmp = verdict_file.with_name(f"{verdict_file.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record))
    tmp.rename(verdict_file)
    return ok
