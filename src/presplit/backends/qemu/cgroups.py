"""Split domains as cgroups: one cpuset + memory (+ CPU accounting) group each.

Owns the cgroup side of the real backend: create a domain group
``presplit/<host>/<domain>``, set its CPUs, memory nodes and memory limit,
resize it, move every thread of a process into it, read its CPU and memory
usage, and remove it (only when empty).

Layout. cgroup v1 (what this machine kind mounts: one hierarchy per controller
under ``/sys/fs/cgroup/<controller>``) gets one directory per controller:
``cpuset``, ``memory`` and ``cpuacct`` (for CPU usage; it may be co-mounted as
``cpu,cpuacct``). cgroup v2 (a single ``cgroup2`` hierarchy) gets one directory
with the ``cpuset``, ``memory`` and ``cpu`` controllers enabled on the way
down. The v2 path is written to the kernel's documented interface but has not
run on this machine kind, which offers v1 only.

The ``presplit`` root is created under *this process's own* cgroup in each
hierarchy (``/sys/fs/cgroup/cpuset/presplit`` when that is the root), so limits
put on the caller by a container or a sandbox keep applying to its guests.

Two kernel facts shape the API (both seen on this machine kind):
* a v1 cpuset group accepts tasks only once ``cpuset.cpus`` *and*
  ``cpuset.mems`` are set, on it and on every ancestor;
* lowering a memory limit below the group's usage fails with EBUSY (after the
  kernel tried to reclaim), and v1 memory charges do not follow a moved process
  (``memory.move_charge_at_immigrate`` is rejected): usage stays with the old
  group. To move accounting with a guest, live-migrate it into a QEMU started
  in the target group instead.
"""

from __future__ import annotations

import errno
import os
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from presplit.backends.qemu.cleanup import PREFIX
from presplit.errors import PresplitError

V1_CONTROLLERS = ("cpuset", "memory", "cpuacct")


class CgroupError(PresplitError, RuntimeError):
    """A cgroup file could not be written or read; the message names it."""


class MemoryLimitError(CgroupError):
    """The memory limit could not be lowered below the group's current usage."""

    def __init__(self, path: Path, requested: int, usage: int, detail: str) -> None:
        super().__init__(
            f"cannot set memory limit of {path} to {requested} bytes: current usage is "
            f"{usage} bytes and the kernel could not reclaim enough ({detail})"
        )
        self.requested = requested
        self.usage = usage


@dataclass(frozen=True)
class DomainUsage:
    """Cumulative CPU time and current memory of one domain group."""

    cpu_ns: int
    memory_bytes: int
    memory_limit_bytes: int | None


# --- discovering the hierarchies -------------------------------------------
@cache
def _mounts() -> dict[str, Path]:
    """controller -> mount point for v1; ``{"unified": path}`` for a v2-only host."""
    v1: dict[str, Path] = {}
    v2: Path | None = None
    for line in Path("/proc/self/mounts").read_text().splitlines():
        _dev, mnt, fstype, opts, *_ = line.split()
        if fstype == "cgroup":
            for opt in opts.split(","):
                if opt in V1_CONTROLLERS:
                    v1.setdefault(opt, Path(mnt))
        elif fstype == "cgroup2" and v2 is None:
            v2 = Path(mnt)
    if all(c in v1 for c in ("cpuset", "memory")):
        return v1
    if v2 is not None and "cpuset" in (v2 / "cgroup.controllers").read_text().split():
        return {"unified": v2}
    raise CgroupError(
        f"need cgroup v1 cpuset+memory or cgroup v2 with cpuset; found v1 {sorted(v1)}, v2 {v2}"
    )


def cgroup_version() -> int:
    return 2 if "unified" in _mounts() else 1


def _own_path(controller: str) -> str:
    """This process's cgroup path in ``controller``'s hierarchy ('' for v2)."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _id, controllers, path = line.split(":", 2)
        if (controller == "" and controllers == "") or controller in controllers.split(","):
            return path.lstrip("/")
    return ""


def presplit_roots() -> dict[str, Path]:
    """controller -> ``.../presplit`` directory (created by :meth:`CgroupDomain.create`)."""
    mounts = _mounts()
    if "unified" in mounts:
        return {"unified": mounts["unified"] / _own_path("") / PREFIX}
    return {c: mounts[c] / _own_path(c) / PREFIX for c in V1_CONTROLLERS if c in mounts}


def host_dirs() -> list[Path]:
    """Every ``presplit/<host>`` directory on the machine, ours or other runs'.

    Looks a few levels deep because each run nests its root under its own
    cgroup, which differs between runs (sandboxes give each job a group).
    """
    found: set[Path] = set()
    for mount in set(_mounts().values()):
        for pattern in (PREFIX, f"*/{PREFIX}", f"*/*/{PREFIX}", f"*/*/*/{PREFIX}"):
            for root in mount.glob(pattern):
                found.update(p for p in root.iterdir() if p.is_dir())
    return sorted(found)


def remove_tree(path: Path, *, busy_wait_s: float = 2.0) -> tuple[list[Path], list[str]]:
    """rmdir ``path`` and its sub-groups, deepest first; moves no tasks.

    A group whose last process was just killed stays busy (EBUSY) until the kernel
    has reaped it, so a busy group is retried for up to ``busy_wait_s``.
    """
    removed, errors = [], []
    deadline = time.monotonic() + busy_wait_s
    for d in sorted((p for p in path.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)) + [path]:
        while True:
            try:
                d.rmdir()
                removed.append(d)
                break
            except OSError as exc:
                if exc.errno == errno.EBUSY and time.monotonic() < deadline:
                    time.sleep(0.05)
                    continue
                errors.append(f"rmdir {d}: {exc.strerror}")
                break
    return removed, errors


# --- small file helpers ----------------------------------------------------
def _write(path: Path, value: str) -> None:
    try:
        with open(path, "w") as fh:
            fh.write(value)
    except OSError as exc:
        raise CgroupError(f"writing {value!r} to {path} failed: {exc.strerror}") from exc


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError as exc:
        raise CgroupError(f"reading {path} failed: {exc.strerror}") from exc


def _thread_ids(pid: int) -> set[int]:
    try:
        return {int(t.name) for t in Path(f"/proc/{pid}/task").iterdir()}
    except FileNotFoundError as exc:
        raise CgroupError(f"process {pid} does not exist") from exc


# --- the domain ------------------------------------------------------------
class CgroupDomain:
    """One split domain: ``presplit/<host>/<domain>`` in every hierarchy used."""

    def __init__(self, host: str, name: str) -> None:
        self.host = host
        self.name = name
        self.version = cgroup_version()
        self.paths = {c: root / host / name for c, root in presplit_roots().items()}

    def __repr__(self) -> str:
        return f"CgroupDomain({self.host!r}, {self.name!r}, v{self.version})"

    def _path(self, controller: str) -> Path:
        return self.paths["unified" if self.version == 2 else controller]

    @property
    def exists(self) -> bool:
        return all(p.is_dir() for p in self.paths.values())

    # -- lifecycle ------------------------------------------------------------
    @classmethod
    def create(cls, host: str, name: str, *, cpus: str, mems: str = "0",
               memory_limit: int | None = None) -> CgroupDomain:
        """Create (or reuse) the group and set cpus, mems and memory limit."""
        dom = cls(host, name)
        for controller, path in dom.paths.items():
            for level in (path.parent.parent, path.parent, path):  # presplit, host, domain
                fresh = not level.exists()
                level.mkdir(exist_ok=True)
                if fresh and controller == "unified":
                    cls._enable_v2_controllers(level.parent)
                if fresh and controller == "cpuset" and level != path:
                    # Ancestors get all of their parent's CPUs and nodes; the
                    # domain's own set is narrowed below.
                    _write(level / "cpuset.cpus", _read(level.parent / "cpuset.cpus"))
                    _write(level / "cpuset.mems", _read(level.parent / "cpuset.mems"))
            if controller == "unified":
                cls._enable_v2_controllers(path.parent)
        dom.set_mems(mems)
        dom.set_cpus(cpus)
        if memory_limit is not None:
            dom.set_memory_limit(memory_limit)
        return dom

    @staticmethod
    def _enable_v2_controllers(parent: Path) -> None:
        wanted = [c for c in ("cpuset", "memory", "cpu")
                  if c in _read(parent / "cgroup.controllers").split()]
        _write(parent / "cgroup.subtree_control", " ".join(f"+{c}" for c in wanted))

    def remove(self) -> None:
        """rmdir the domain group (and its host group when that is left empty)."""
        busy = self.threads()
        if busy:
            raise CgroupError(f"{self} still has threads {sorted(busy)[:8]}; move or stop them first")
        for path in self.paths.values():
            if path.is_dir():
                try:
                    path.rmdir()
                except OSError as exc:
                    raise CgroupError(f"rmdir {path}: {exc.strerror}") from exc
            # The host group goes when its last domain does; the presplit root
            # stays, since another run may be creating a host under it now.
            try:
                path.parent.rmdir()
            except OSError:
                pass  # not empty: other domains of this host still use it

    # -- resizing ---------------------------------------------------------------
    def set_cpus(self, cpus: str) -> None:
        """Set the CPU list (``"0"``, ``"0-1"``, ``"0,2"``); works while tasks run."""
        _write(self._path("cpuset") / "cpuset.cpus", cpus)

    def set_mems(self, mems: str) -> None:
        _write(self._path("cpuset") / "cpuset.mems", mems)

    @property
    def cpus(self) -> str:
        name = "cpuset.cpus.effective" if self.version == 2 else "cpuset.effective_cpus"
        return _read(self._path("cpuset") / name)

    def set_memory_limit(self, limit: int | None) -> None:
        """Set (None: remove) the memory limit; :class:`MemoryLimitError` if below usage."""
        if self.version == 2:
            path, value = self._path("memory") / "memory.max", "max" if limit is None else str(limit)
        else:
            path, value = self._path("memory") / "memory.limit_in_bytes", "-1" if limit is None else str(limit)
        try:
            with open(path, "w") as fh:
                fh.write(value)
        except OSError as exc:
            if exc.errno == errno.EBUSY and limit is not None:
                raise MemoryLimitError(path, limit, self.usage().memory_bytes, exc.strerror) from exc
            raise CgroupError(f"writing {value!r} to {path} failed: {exc.strerror}") from exc

    # -- tasks ------------------------------------------------------------------
    def tasks_files(self) -> list[Path]:
        """Files to write a pid into to put a new process in this domain."""
        if self.version == 2:
            return [self.paths["unified"] / "cgroup.procs"]
        return [p / "tasks" for p in self.paths.values()]

    def threads(self) -> set[int]:
        """Thread ids currently in the group (cpuset hierarchy)."""
        name = "cgroup.threads" if self.version == 2 else "tasks"
        text = _read(self._path("cpuset") / name)
        return {int(t) for t in text.split()} if text else set()

    def add_process(self, pid: int) -> float:
        """Move every thread of ``pid`` here; returns the seconds it took.

        Writes the pid to ``cgroup.procs`` (moves the whole thread group), then
        checks each thread and writes stragglers (threads born meanwhile) one
        by one to ``tasks``.
        """
        t0 = time.perf_counter()
        for controller, path in self.paths.items():
            _write(path / "cgroup.procs", str(pid))
            if self.version == 1:
                for _ in range(3):
                    missing = _thread_ids(pid) - {int(t) for t in _read(path / "tasks").split()}
                    if not missing:
                        break
                    for tid in missing:
                        try:
                            _write(path / "tasks", str(tid))
                        except CgroupError:
                            if Path(f"/proc/{pid}/task/{tid}").exists():
                                raise  # a thread that exited meanwhile is fine
                else:
                    raise CgroupError(f"threads {sorted(missing)} of {pid} did not join {path}")
        return time.perf_counter() - t0

    # -- usage ------------------------------------------------------------------
    def usage(self) -> DomainUsage:
        if self.version == 2:
            path = self.paths["unified"]
            stat = dict(line.split() for line in _read(path / "cpu.stat").splitlines())
            limit = _read(path / "memory.max")
            return DomainUsage(
                cpu_ns=int(stat["usage_usec"]) * 1000,
                memory_bytes=int(_read(path / "memory.current")),
                memory_limit_bytes=None if limit == "max" else int(limit),
            )
        cpu = int(_read(self.paths["cpuacct"] / "cpuacct.usage")) if "cpuacct" in self.paths else 0
        mem = self.paths["memory"]
        limit = int(_read(mem / "memory.limit_in_bytes"))
        # v1 reports "no limit" as a huge page-rounded number near 2**63.
        return DomainUsage(
            cpu_ns=cpu,
            memory_bytes=int(_read(mem / "memory.usage_in_bytes")),
            memory_limit_bytes=None if limit >= 2**62 else limit,
        )


def move_process(pid: int, destination: CgroupDomain) -> float:
    """Intra-host move: all threads of ``pid`` into ``destination``; seconds taken."""
    return destination.add_process(pid)


def online_cpus() -> str:
    """CPUs this process may use, as a cpuset list (e.g. ``"0-1"``)."""
    cpus = sorted(os.sched_getaffinity(0))
    return ",".join(str(c) for c in cpus)
