"""Names of everything the real backend creates, and tearing it all down.

Owns two guarantees:

* :class:`Teardown` records each thing a run starts (QEMU processes, network
  namespaces, cgroups) with the function that undoes it, and undoes them in
  reverse order on normal exit, on an exception, and on SIGINT/SIGTERM.
* :func:`cleanup_stale` removes what a crashed run left behind: QEMU processes,
  namespaces, cgroups and QEMU work directories whose names carry the presplit prefix *and* the tag of
  a run whose process is gone.

Every name carries a run tag, ``p<pid-of-the-owning-process>`` (see
:func:`run_tag`), because several runs (test sessions of other developers, a
benchmark) may share one machine: a stale sweep must never touch a live run's
guests. A reused pid would hide a stale leftover until that process ends; that
is the safe direction to be wrong in.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

PREFIX = "presplit"
#: ``presplit-p<owner pid>-...``: QEMU ``-name`` values and namespace names.
_TAGGED = re.compile(rf"^{PREFIX}-p(\d+)-")
#: cgroup host directories under ``<controller>/presplit/``: ``p<owner pid>-...``.
_TAGGED_DIR = re.compile(r"^p(\d+)-")


def run_tag(pid: int | None = None) -> str:
    """The tag that marks resources owned by process ``pid`` (default: this one)."""
    return f"p{pid or os.getpid()}"


def _owner_alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def terminate_process(pid: int, *, term_timeout: float | None = 3.0, kill_timeout: float = 3.0) -> bool:
    """SIGTERM, then SIGKILL, one process by pid; True once it is gone (``term_timeout=None``: SIGKILL at once).

    Works for processes that are not our children too (stale ones), by polling
    /proc; for our own children, reap them with ``Popen.wait`` afterwards.
    """
    steps = ((signal.SIGTERM, term_timeout), (signal.SIGKILL, kill_timeout))
    for sig, timeout in steps if term_timeout is not None else steps[1:]:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return True
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _running(pid):
                return True
            time.sleep(0.02)
    return not _running(pid)


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):  # gone (or unreadable): not running
        return False
    return state != "Z"  # a zombie has exited; its parent just has not reaped it


@dataclass
class Teardown:
    """Undo everything registered, last first, whatever way the block ends.

    >>> with Teardown() as td:            # doctest: +SKIP
    ...     guest = QemuGuest(cfg, teardown=td).start()
    """

    handle_signals: bool = True
    errors: list[str] = field(default_factory=list)
    _steps: list[tuple[str, Callable[[], object]]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _old_handlers: dict[int, object] = field(default_factory=dict)

    def add(self, description: str, undo: Callable[[], object]) -> None:
        """Register ``undo`` (idempotent, please) to run at teardown."""
        with self._lock:
            self._steps.append((description, undo))

    def discard(self, description: str) -> None:
        """Forget a step whose resource was already released by its owner."""
        with self._lock:
            self._steps = [s for s in self._steps if s[0] != description]

    def close(self) -> list[str]:
        """Run every undo step, newest first; collect (do not raise) failures."""
        while True:
            with self._lock:
                if not self._steps:
                    break
                description, undo = self._steps.pop()
            try:
                undo()
            except Exception as exc:  # keep going: one failure must not leak the rest
                self.errors.append(f"{description}: {exc}")
        return self.errors

    def __enter__(self) -> Teardown:
        if self.handle_signals and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old_handlers[sig] = signal.signal(sig, self._on_signal)
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.close()
        finally:
            for sig, handler in self._old_handlers.items():
                signal.signal(sig, handler)  # type: ignore[arg-type]
            self._old_handlers.clear()

    def _on_signal(self, signum: int, frame: object) -> None:
        # Turn the signal into an exception so the with-block unwinds and
        # __exit__ tears down; SIGINT keeps its usual KeyboardInterrupt.
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise SystemExit(128 + signum)


@dataclass
class StaleReport:
    """What :func:`cleanup_stale` removed, and what it could not."""

    processes: list[int] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)
    cgroups: list[str] = field(default_factory=list)
    workdirs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.processes or self.namespaces or self.cgroups or self.workdirs or self.errors)


def _stale(owner: str, only_dead_owners: bool) -> bool:
    return not only_dead_owners or not _owner_alive(int(owner))


def find_qemu_processes(tag: str | None = None) -> list[tuple[int, str]]:
    """(pid, -name value) of QEMU processes named ``presplit-...`` (of run ``tag``)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if not argv or b"qemu-system" not in os.path.basename(argv[0]):
            continue
        args = [a.decode(errors="replace") for a in argv]
        for i, arg in enumerate(args[:-1]):
            if arg == "-name" and args[i + 1].startswith(f"{PREFIX}-"):
                name = args[i + 1].split(",")[0]
                if tag is None or name.startswith(f"{PREFIX}-{tag}-"):
                    found.append((int(proc.name), name))
    return found


def list_namespaces(tag: str | None = None) -> list[str]:
    """Network namespaces called ``presplit-...`` (of run ``tag``)."""
    netns_dir = Path("/var/run/netns")
    names = sorted(p.name for p in netns_dir.iterdir()) if netns_dir.is_dir() else []
    want = f"{PREFIX}-{tag}-" if tag else f"{PREFIX}-"
    return [n for n in names if n.startswith(want)]


def cleanup_stale(*, only_dead_owners: bool = True) -> StaleReport:
    """Remove presplit leftovers of runs whose owning process has gone.

    With ``only_dead_owners=False`` it removes every presplit resource on the
    machine, including live runs' (for an operator after a reboot-less crash).
    """
    from presplit.backends.qemu import cgroups  # late: cgroups imports this module

    report = StaleReport()
    for pid, name in find_qemu_processes():
        m = _TAGGED.match(name)
        if m and _stale(m.group(1), only_dead_owners):
            if terminate_process(pid):
                report.processes.append(pid)
            else:
                report.errors.append(f"QEMU {name} (pid {pid}) survived SIGKILL")
    for ns in list_namespaces():
        m = _TAGGED.match(ns)
        if m and _stale(m.group(1), only_dead_owners):
            proc = subprocess.run(["ip", "netns", "delete", ns], capture_output=True, text=True)
            if proc.returncode == 0:
                report.namespaces.append(ns)
            else:
                report.errors.append(f"ip netns delete {ns}: {proc.stderr.strip()}")
    for host_dir in cgroups.host_dirs():
        m = _TAGGED_DIR.match(host_dir.name)
        if m and _stale(m.group(1), only_dead_owners):
            removed, errors = cgroups.remove_tree(host_dir)
            report.cgroups += [str(p) for p in removed]
            report.errors += errors
    # QEMU work directories (serial logs, QMP sockets) made by QemuGuest.
    for workdir in Path(tempfile.gettempdir()).glob(f"{PREFIX}-p*-*"):
        m = _TAGGED.match(workdir.name)
        if m and workdir.is_dir() and _stale(m.group(1), only_dead_owners):
            shutil.rmtree(workdir, ignore_errors=True)
            report.workdirs.append(str(workdir))
    return report
