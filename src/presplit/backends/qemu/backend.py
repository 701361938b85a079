"""The real backend: split domains as cgroups, guests as QEMU processes, hosts as namespaces.

:class:`QemuBackend` implements the :class:`~presplit.backends.base.Backend`
protocol (``capabilities``, ``observe``, ``execute``, ``revert``) on this
machine, with the pieces of this package:

- **hosts** are network namespaces on a bridge (:class:`~.netns.Fabric`);
- **split domains** are cgroup groups (:class:`~.cgroups.CgroupDomain`:
  cpuset + memory + cpuacct, plus a ``cpu`` group for the CFS quota);
- **guests** are :class:`~.guest.QemuGuest` processes booting the presplit
  guest image, each running the :class:`~.guest_image.Workload` given at launch
  and printing a heartbeat on its serial console.

It keeps a mirror of what it runs as a :class:`~presplit.model.cluster.ClusterState`.
Every ``execute(action)`` first applies the action to the mirror with
:func:`presplit.plan.apply_action` (the one definition of what an action means:
a refusal there is a refused :class:`Receipt` and nothing real happens), then
does the real operation, and only when that worked commits the new mirror. A
real operation that fails is undone as far as possible and the action is
refused with the reason, the mirror unchanged.

Mapping of a domain's allotment onto cgroups (``mips_per_core`` MIPS = one CPU):

- **CPU set**: ``n = clamp(round(cpu_mips / mips_per_core), 1, cores)`` CPUs.
  A host's live domains, in id order, take their CPUs round-robin from the
  host's CPU list starting after the previous domain's, so with more domains
  than CPUs (2 cores here) domains share CPUs;
- **CFS quota** (``cpu.cfs_quota_us`` over a 100 ms period): ``cpu_mips /
  mips_per_core`` CPUs' worth of time, so a 500 MIPS domain gets half a CPU
  even though its cpuset holds a whole one, and two domains sharing a CPU get
  their shares of it;
- **memory**: ``memory.limit_in_bytes = mem_mb MiB``. A guest reserves its RAM
  plus ``qemu_overhead_mb`` (QEMU's own memory), so a domain's limit holds its
  guests' QEMU processes. Lowering a limit below the group's usage is refused
  by the kernel (EBUSY); the limit then stays where it was and the backend
  retries on every ``observe`` (``summary()['domains'][i]['mem_limit_lag']``).
  That happens after an intra-host move: cgroup v1 leaves a moved process's
  memory charged to the group it was born in.

Actions:

- ``PlaceGuest``: boot QEMU inside the host's namespace and the domain's groups;
  returns once the guest's userspace is up (~2.6 s under TCG);
- ``MoveGuest`` (intra-host): move every thread of the QEMU process into the
  target groups (~20 ms, the guest keeps running); carried allotment resizes
  both groups;
- ``MigrateGuest`` (cross-host): :func:`~.migration.live_migrate` -- a
  destination QEMU born in the target namespace and domain, ``migrate`` over
  QMP, figures from ``query-migrate``. Blocking: ``execute`` returns when it
  completed (receipt ``details`` hold ``total_ms``/``downtime_ms``) or was
  cancelled (stall, deadline): then it is refused and the guest keeps running
  at the source;
- ``SplitDomain`` / ``ResizeDomain`` / ``MergeDomains``: create groups and
  rewrite the CPU sets, quotas and limits of the host's running groups; a merge
  moves the absorbed domains' guests into the first and removes the rest;
- ``PatchDomain``: the stand-in for patching a domain's services: the domain is
  out of service (``patching``, refuses guests) for the duration, and guests
  still inside are paused (QMP ``stop``) and resumed (``cont``) at its end --
  the model's "guests inside go down";
- ``PowerOn``/``PowerOff``: only the mirror (a namespace is not switched off);
- ``ResizeGuest``: the guest's memory through its virtio balloon (QMP
  ``balloon``, within the RAM it booted with); its CPU reservation is the
  domain's admission only (guests share their domain's groups).

Time: ``state.now`` is seconds since the backend was made (monotonic clock).
``observe()`` advances the mirror to now (provisioning and patches end),
re-checks every guest against its process (a QEMU that died makes its guest
``down``) and measures demand per guest from ``/proc/<pid>/stat`` (CPU time
of all QEMU threads) and ``VmRSS``; per-domain usage comes from cgroup
accounting (``summary()``).

Everything started is registered with a :class:`~.cleanup.Teardown`: guests
stop first, then cgroups go, then the namespaces.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Self

import numpy as np

from presplit.backends.base import ALL_KINDS, BackendError, Capabilities, Receipt
from presplit.backends.qemu import cgroups
from presplit.backends.qemu.cgroups import CgroupDomain, CgroupError, MemoryLimitError
from presplit.backends.qemu.cleanup import (
    _TAGGED_DIR,
    PREFIX,
    Teardown,
    _owner_alive,
    cleanup_stale,
    run_tag,
)
from presplit.backends.qemu.guest import (
    GuestConfig,
    GuestError,
    QemuGuest,
    max_gap,
    merged_beats,
)
from presplit.backends.qemu.guest_image import Workload
from presplit.backends.qemu.migration import MIB, MigrationError, live_migrate
from presplit.backends.qemu.netns import Fabric
from presplit.model.cluster import ClusterState
from presplit.model.domains import (
    DOWN,
    PENDING,
    RUNNING,
    DomainModel,
    Guest,
    HostSpec,
    PatchWindowSim,
    Service,
)
from presplit.model.fabric import Fabric as ModelFabric
from presplit.model.fabric import Link
from presplit.model.hardware import PowerModel
from presplit.plan import advance, apply_action
from presplit.plan.actions import (
    ACTION_KINDS,
    MergeDomains,
    MigrateGuest,
    MoveGuest,
    PatchDomain,
    PlaceGuest,
    PowerOff,
    PowerOn,
    ResizeDomain,
    ResizeGuest,
    SplitDomain,
)
from presplit.backends.qemu.qmp import QMPError

CFS_PERIOD_US = 100_000
BALLOON_FLOOR_MIB = 80  # a guest kernel of the presplit image needs about this much RAM to keep running
BALLOON_WAIT_S = 10.0  # how long a balloon may take to reach its target before a resize is refused
CPU_SAMPLE_MIN_S = 1.0  # a guest's CPU demand is a rate over at least this span


# --------------------------------------------------------------------------- specification
@dataclass(frozen=True)
class GuestSpec:
    """One guest: QEMU memory, the workload it runs from boot, what it reserves in a domain."""

    id: str
    memory_mib: int = 128
    workload: Workload = field(default_factory=Workload)
    reserve_mips: float = 250.0
    dirty_rate_mbps: float = 0.0  # the model's estimate, for the policy's what-ifs


@dataclass(frozen=True)
class QemuWorldSpec:
    """What the backend runs: ``hosts`` namespaces of ``cores`` CPUs x ``mips_per_core``, and guests.

    ``cores=None``: the CPUs this process may use. ``host_ram_mb`` is the
    memory a host's domains share (the sum of their limits).
    """

    guests: tuple[GuestSpec, ...]
    hosts: int = 2
    cores: int | None = None
    mips_per_core: float = 1000.0
    host_ram_mb: float = 2048.0
    qemu_overhead_mb: float = 128.0
    provision_s: float = 0.5
    patch_duration_s: float = 2.0
    interval_s: float = 5.0
    bandwidth_mib_s: int = 128
    migration_deadline_s: float = 30.0
    migration_stall_s: float = 5.0
    patch_windows: tuple[PatchWindowSim, ...] = ()
    services: tuple[Service, ...] = ()  # the minimal services of every domain (the model's overhead)

    def host_cores(self) -> int:
        return int(self.cores or len(os.sched_getaffinity(0)))


def build_state(spec: QemuWorldSpec) -> ClusterState:
    """The initial mirror: one active domain per host, every guest pending (arrived at t=0).

    A pure function, so the simulator can start from exactly the same world
    (the contract tests do).
    """
    cores = spec.host_cores()
    hosts = [HostSpec(f"h{i}", cores, spec.mips_per_core, spec.host_ram_mb, 1.0, "r0",
                      PowerModel((50.0,) * 11), boot_delay_s=0.0) for i in range(spec.hosts)]
    # one bridge: ~1 Gbit/s is about QEMU's default 128 MiB/s migration cap
    fabric = ModelFabric(tuple(Link(i, "br0", 1.0, 0.05) for i in range(spec.hosts)))
    model = DomainModel(migration_bw_share=1.0, provision_s=spec.provision_s, repin_s=0.02,
                        patch_duration_s=spec.patch_duration_s, interval_s=spec.interval_s,
                        minimal_services=tuple(spec.services))
    guests = [Guest(g.id, 1, spec.mips_per_core, g.memory_mib + spec.qemu_overhead_mb, g.dirty_rate_mbps,
                    g.reserve_mips) for g in spec.guests]
    state = ClusterState.initial(hosts, guests, fabric, model, patch_windows=spec.patch_windows)
    return state.evolve(guest_status=np.full(len(guests), PENDING, np.int8))


def cpu_layout(state: ClusterState, host: int, mips_per_core: float) -> dict[int, tuple[str, int]]:
    """domain id -> (cpuset list, CFS quota in us per 100 ms) for a host's live domains."""
    cores = state.hosts[host].cores
    out, start = {}, 0
    for dom in sorted(state.domains_of(host), key=lambda d: d.id):
        share = dom.cpu_mips / mips_per_core
        n = min(cores, max(1, round(share)))
        cpus = sorted((start + k) % cores for k in range(n))
        start = (start + n) % cores
        quota = max(1000, round(share * CFS_PERIOD_US))
        out[dom.id] = (",".join(str(c) for c in cpus), quota)
    return out


# --------------------------------------------------------------------------- the cpu (CFS) group
def _cpu_root() -> Path | None:
    """``<cpu mount>/<own cpu cgroup>/presplit``, or None without a v1 ``cpu`` hierarchy."""
    mount = None
    for line in Path("/proc/self/mounts").read_text().splitlines():
        _dev, mnt, fstype, opts, *_ = line.split()
        if fstype == "cgroup" and "cpu" in opts.split(","):
            mount = Path(mnt)
            break
    if mount is None or not (mount / "cpu.cfs_quota_us").exists():
        return None
    own = ""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _id, controllers, path = line.split(":", 2)
        if "cpu" in controllers.split(","):
            own = path.lstrip("/")
    return mount / own / PREFIX


class CpuQuotaGroup:
    """``cpu/<own>/presplit/<host>/<domain>``: the CFS bandwidth limit of one domain (cgroup v1)."""

    def __init__(self, root: Path, host: str, name: str) -> None:
        self.path = root / host / name

    def create(self) -> CpuQuotaGroup:
        for level in (self.path.parent.parent, self.path.parent, self.path):
            level.mkdir(exist_ok=True)
        return self

    def set_quota(self, quota_us: int) -> None:
        (self.path / "cpu.cfs_period_us").write_text(str(CFS_PERIOD_US))
        (self.path / "cpu.cfs_quota_us").write_text(str(quota_us))

    @property
    def quota_us(self) -> int:
        return int((self.path / "cpu.cfs_quota_us").read_text())

    def add_process(self, pid: int) -> None:
        (self.path / "cgroup.procs").write_text(str(pid))
        for tid in Path(f"/proc/{pid}/task").iterdir():  # threads born meanwhile
            try:
                (self.path / "tasks").write_text(tid.name)
            except OSError:
                pass

    def remove(self) -> None:
        if self.path.is_dir():
            self.path.rmdir()
        try:
            self.path.parent.rmdir()
        except OSError:
            pass


def _cpu_mount() -> Path | None:
    root = _cpu_root()
    if root is None:
        return None
    mount = root.parent
    while mount.parent != mount and (mount.parent / "cpu.cfs_quota_us").exists():
        mount = mount.parent
    return mount


def sweep_stale_cpu_groups() -> list[str]:
    """Remove ``cpu`` groups of runs whose owner is gone (``cleanup_stale`` covers the other controllers)."""
    mount = _cpu_mount()
    removed: list[str] = []
    if mount is None:
        return removed
    for pattern in (PREFIX, f"*/{PREFIX}", f"*/*/{PREFIX}", f"*/*/*/{PREFIX}"):
        for base in mount.glob(pattern):
            for host_dir in base.iterdir():
                m = _TAGGED_DIR.match(host_dir.name)
                if host_dir.is_dir() and m and not _owner_alive(int(m.group(1))):
                    done, _errors = cgroups.remove_tree(host_dir)
                    removed += [str(p) for p in done]
    return removed


def cpu_group_dirs(tag: str | None = None) -> list[Path]:
    """This machine's ``cpu`` host groups with the presplit prefix (of run ``tag``)."""
    root = _cpu_root()
    if root is None or not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and (tag is None or p.name.startswith(f"{tag}-")))


# --------------------------------------------------------------------------- the backend
@dataclass
class MigrationLog:
    guest: str
    from_domain: int
    to_domain: int
    status: str
    total_ms: float | None
    downtime_ms: float | None
    transferred_bytes: int
    wall_s: float
    reason: str = ""


class QemuBackend:
    """The :class:`~presplit.backends.base.Backend` of real QEMU guests; see the module docstring.

    ``start()`` (called by the constructor unless ``start=False``) creates the
    namespaces and one domain group per host; guests boot on ``PlaceGuest``
    (or all at once with :meth:`place_all`). ``close()`` stops everything;
    with a ``teardown`` given, that teardown owns the clean-up instead.
    """

    name = "qemu"

    def __init__(self, spec: QemuWorldSpec, *, teardown: Teardown | None = None, image=None,
                 start: bool = True, octet: int = 79, tag: str | None = None) -> None:
        self.spec = spec
        self._own_td = teardown is None
        self.td = teardown or Teardown(handle_signals=False)
        self.image = image
        self.octet = octet
        self.tag = tag or run_tag()  # another owner's tag: a controller that outlives itself (failover.py)
        self.lock = threading.RLock()
        self._t0 = time.monotonic()
        self.state = build_state(spec)
        self.guests: dict[int, QemuGuest] = {}
        self.monitors: dict[int, list] = {i: [] for i in range(len(spec.guests))}
        self.cg: dict[int, CgroupDomain] = {}
        self.cpu_cg: dict[int, CpuQuotaGroup] = {}
        self.mem_lag: dict[int, tuple[int, int]] = {}
        self.paused: set[int] = set()
        self.migrations: list[MigrationLog] = []
        self.counts = dict.fromkeys(ACTION_KINDS, 0)  # every kind, so a new one is counted without a KeyError
        self.events: list[tuple[float, str]] = []
        self._cpu_sample: dict[int, tuple[int, float, float]] = {}
        self._port = 0
        self.fabric: Fabric | None = None
        self._cpu_root = _cpu_root()
        self._closed = False
        if start:
            self.start()

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> QemuBackend:
        sweep_stale_cpu_groups()
        # own fabric tag (still ``p<pid>-...``, so stale sweeps find it): no clash with another
        # fabric of this process
        self.fabric = Fabric(self.spec.hosts, topology="bridge", octet=self.octet, tag=f"{self.tag}-q{self.octet}",
                             teardown=self.td).create()
        # after the fabric, so it runs before the namespaces go
        self.td.add(f"qemu backend {self.tag}", self.shutdown)
        for h in range(self.state.n_hosts):
            self._sync_host(self.state, h)
        return self

    def close(self) -> list[str]:
        """Stop every guest, remove every group and namespace; returns clean-up errors."""
        if self._own_td:
            return self.td.close()
        self.shutdown()
        return []

    def shutdown(self) -> None:
        """Guests first (QMP quit, then signals), then the domain groups."""
        with self.lock:
            errors = []
            for g, guest in list(self.guests.items()):
                try:
                    guest.stop()
                    guest.remove_workdir()
                except Exception as exc:  # keep going: one failure must not leak the rest  # noqa: BLE001
                    errors.append(f"guest {g}: {exc}")
            self.guests.clear()
            for d in sorted(self.cg, reverse=True):
                for group in (self.cg.pop(d), self.cpu_cg.pop(d, None)):
                    try:
                        if group is not None and (not isinstance(group, CgroupDomain) or group.exists):
                            group.remove()
                    except Exception as exc:  # noqa: BLE001
                        errors.append(f"domain {d}: {exc}")
            self._closed = True
            if errors:
                raise BackendError("; ".join(errors))

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ the protocol
    def capabilities(self) -> Capabilities:
        # What it can do and undo: the kinds it has a "do it" (``_do_<Kind>``) and an "undo it" (``_undo_<Kind>``)
        # method for, out of every kind (RestartGuest: the failover backend's).
        kinds = tuple(k for k in ALL_KINDS if callable(getattr(self, f"_do_{k}", None)))
        reversible = tuple(k for k in kinds if callable(getattr(self, f"_undo_{k}", None)))
        return Capabilities("qemu", kinds=kinds, reversible=reversible,
                            simulated=False, interval_s=self.spec.interval_s, start_s=0.0, max_concurrent=1)

    def now(self) -> float:
        return time.monotonic() - self._t0

    def observe(self) -> ClusterState:
        with self.lock:
            self.state = self._refresh()
            return self.state

    def execute(self, action) -> Receipt:
        with self.lock:
            if self._closed:
                raise BackendError("the QEMU backend has been shut down")
            state = self._refresh()
            self.state = state
            new, out = apply_action(state, action)
            if not out.ok:
                return Receipt(False, out.reason, state.now, state.now)
            handler = getattr(self, f"_do_{action.kind}")
            t0 = time.monotonic()
            try:
                new, details = handler(state, new, action)
            except _Refuse as why:
                self._log(f"{action.kind} refused: {why}")
                return Receipt(False, str(why), state.now, self.now(), {"seconds": time.monotonic() - t0})
            except (CgroupError, GuestError, MigrationError, OSError) as exc:
                raise BackendError(f"{action.kind}: {exc}") from exc
            self.state = new
            self.counts[action.kind] += 1
            details = {"seconds": round(time.monotonic() - t0, 4), **details}
            self._log(f"{action.kind} {self._describe(action)} done in {details['seconds']:.2f} s")
            ready = max(self.now(), out.time + out.cost.seconds) if action.kind in ("SplitDomain", "PatchDomain") \
                else self.now()
            return Receipt(True, "", state.now, ready, details)

    def revert(self, action, before: dict) -> Receipt:
        """Undo ``action`` for real, through its kind's ``_undo_<Kind>`` (the kinds without one cannot be)."""
        with self.lock:
            state = self._refresh()
            self.state = state
            undo = getattr(self, f"_undo_{action.kind}", None)
            if undo is None:
                return Receipt(False, f"{action.kind} cannot be reverted", state.now, state.now)
            return undo(state, action, before)

    # ------------------------------------------------------------------ how each kind is undone
    def _undo_PlaceGuest(self, state, a: PlaceGuest, before: dict) -> Receipt:
        g = a.guest
        if int(state.guest_domain[g]) == a.domain and int(state.guest_status[g]) == RUNNING:
            guest = self.guests.pop(g, None)
            if guest is not None:
                guest.stop()
            self.state = state.evolve(guest_domain=_set(state.guest_domain, g, -1),
                                      guest_status=_set(state.guest_status, g, PENDING))
            return Receipt(True, "guest stopped, pending again", state.now, self.now())
        return Receipt(True, "guest not placed there: nothing to undo", state.now, state.now)

    def _undo_guest_move(self, state, a: MoveGuest | MigrateGuest, before: dict) -> Receipt:
        """A re-pin or a migration is undone by the same kind back to where the guest was."""
        g, src = a.guest, before.get("guest_domain", -1)
        if int(state.guest_domain[g]) == a.to_domain and int(state.guest_status[g]) == RUNNING and src >= 0:
            r = self.execute(replace(a, to_domain=src, reason=f"revert of {a.kind}"))
            return Receipt(r.ok, f"undone by {a.kind}" if r.ok else f"{a.kind} back refused: {r.reason}",
                           r.time, r.ready_at, r.details)
        return Receipt(True, "guest not at the destination: nothing to undo", state.now, state.now)

    _undo_MoveGuest = _undo_MigrateGuest = _undo_guest_move

    def _undo_power(self, state, a: PowerOn | PowerOff, before: dict) -> Receipt:
        if bool(state.host_on[a.host]) == isinstance(a, PowerOff):
            return Receipt(True, "host already as before", state.now, state.now)
        return self.execute(PowerOff(a.host, reason="revert") if isinstance(a, PowerOn)
                            else PowerOn(a.host, reason="revert"))

    _undo_PowerOn = _undo_PowerOff = _undo_power

    def _undo_domain_change(self, state, a: SplitDomain | ResizeDomain, before: dict) -> Receipt:
        """The mirror's undo (the simulated world's, targeted), then the host's cgroups brought to it."""
        from presplit.backends.sim_revert import revert_action

        new, ok, reason = revert_action(state, a, before)
        if ok and new is not state:
            host = state.domains[a.domain].host
            try:
                self._sync_host(new, host)
            except CgroupError as exc:
                self._sync_host(state, host)
                return Receipt(False, f"cgroups refused the undo: {exc}", state.now, self.now())
            self.state = new
        return Receipt(ok, reason, state.now, self.now())

    _undo_SplitDomain = _undo_ResizeDomain = _undo_domain_change

    # ------------------------------------------------------------------ what the loop may also use
    def summary(self) -> dict:
        """Hosts, domains (with their cgroups) and guests (with their processes and heartbeats), JSON-able."""
        with self.lock:
            s = self.state
            doms = []
            for d in s.domains:
                free = s.free(d.id) if d.live else (0.0, 0.0)
                row = {"id": d.id, "host": d.host, "state": d.state, "cpu_mips": d.cpu_mips, "mem_mb": d.mem_mb,
                       "free_mips": float(free[0]), "free_mb": float(free[1])}
                cg = self.cg.get(d.id)
                if cg is not None and cg.exists:
                    try:
                        use = cg.usage()
                        row.update(cpus=cg.cpus, cpu_s=use.cpu_ns / 1e9, mem_used_mb=use.memory_bytes / MIB,
                                   mem_limit_mb=None if use.memory_limit_bytes is None
                                   else use.memory_limit_bytes / MIB)
                    except CgroupError:
                        pass
                q = self.cpu_cg.get(d.id)
                if q is not None and q.path.is_dir():
                    row["cfs_quota_us"] = q.quota_us
                if d.id in self.mem_lag:
                    row["mem_limit_lag"] = {"requested_mb": self.mem_lag[d.id][0] / MIB,
                                            "usage_mb": self.mem_lag[d.id][1] / MIB}
                doms.append(row)
            return {"now": float(s.now), "backend": "qemu",
                    "hosts": [{"id": h, "name": spec.name, "netns": self.fabric.hosts[h].netns if self.fabric else None,
                               "on": bool(s.host_on[h]), "ready": s.host_ready(h), "rack": spec.rack}
                              for h, spec in enumerate(s.hosts)],
                    "domains": doms, "guests": self.guest_report(),
                    "migrations": [m.__dict__ for m in self.migrations],
                    "counts": dict(self.counts)}

    def guest_report(self) -> list[dict]:
        from presplit.model.domains import GUEST_STATES

        s = self.state
        out = []
        for i, spec in enumerate(self.spec.guests):
            guest = self.guests.get(i)
            beats = merged_beats(*self.monitors[i])
            out.append({
                "id": spec.id, "index": i, "domain": int(s.guest_domain[i]),
                "host": int(s.domains[int(s.guest_domain[i])].host) if s.guest_domain[i] >= 0 else None,
                "status": GUEST_STATES[int(s.guest_status[i])],
                "running": bool(guest is not None and guest.alive),
                "pid": guest.pid if guest is not None and guest.alive else None,
                "qemu_processes": len(self.monitors[i]),
                "heartbeat": beats[-1].counter if beats else 0,
                "duty": beats[-1].duty if beats else None,
                "max_heartbeat_gap_s": round(max_gap(beats), 3),
                "demand_mips": round(float(s.demand_mips[i]), 1),
                "demand_mem_mb": round(float(s.demand_mem_mb[i]), 1),
            })
        return out

    def finish(self) -> dict:
        gaps = [g["max_heartbeat_gap_s"] for g in self.guest_report()]
        return {"migrations": len(self.migrations), "max_heartbeat_gap_s": max(gaps, default=0.0),
                **{f"n_{k}": v for k, v in self.counts.items() if v}}

    def place_all(self, placement: dict[int, int], *, timeout: float = 60.0) -> None:
        """Boot guests ``{guest: domain}`` in parallel (each a PlaceGuest through the mirror).

        Raises :class:`BackendError` if one is refused or does not boot; the
        guests that did boot stay placed.
        """
        with self.lock:
            state = self.state = self._refresh()
            started = []
            for g, d in placement.items():
                action = PlaceGuest(g, d, reason="initial placement")
                new, out = apply_action(state, action)
                if not out.ok:
                    raise BackendError(f"placing guest {g} in domain {d}: {out.reason}")
                guest = self._launch(g, d, state)
                try:
                    guest.start(wait=False, timeout=timeout)
                except GuestError as exc:
                    raise BackendError(f"guest {g}: {exc}") from exc
                started.append((g, d, guest))
                state = new
            failed = []
            for g, d, guest in started:
                hb = guest.heartbeat
                if not hb.wait_for(lambda m, q=guest: m.ready() or not q.alive, timeout) or not guest.alive:
                    failed.append(f"guest {g} did not boot: {hb.tail(3)}")
                    guest.stop()
                    guest.remove_workdir()
                    continue
                self._adopt(g, d, guest)
                self.state, _ = apply_action(self.state, PlaceGuest(g, d, reason="initial placement"))
                self.counts["PlaceGuest"] += 1
                self._log(f"PlaceGuest guest={g} domain={d} (parallel boot)")
            if failed:
                raise BackendError("; ".join(failed))

    # ------------------------------------------------------------------ observation
    def _refresh(self) -> ClusterState:
        now = max(self.now(), self.state.now)
        state = self.state
        # guests whose patch downtime is over resume first (the model wakes them in advance())
        for g in sorted(self.paused):
            if state.guest_down_end[g] <= now:
                guest = self.guests.get(g)
                if guest is not None and guest.alive:
                    guest.qmp.execute("cont")
                self.paused.discard(g)
        state, _ = advance(state, now)
        status = state.guest_status.copy()
        down_start, down_end = state.guest_down_start.copy(), state.guest_down_end.copy()
        demand, mem = state.demand_mips.copy(), state.demand_mem_mb.copy()
        changed = False
        for g, guest in self.guests.items():
            if not guest.alive:
                if int(status[g]) == RUNNING or (int(status[g]) == DOWN and np.isfinite(down_end[g])):
                    status[g], down_start[g], down_end[g] = DOWN, now, np.inf  # the QEMU process is gone
                    self._log(f"guest {self.spec.guests[g].id}: QEMU process {guest.pid} is gone")
                    changed = True
                continue
            cpu, rss = _proc_usage(guest.pid)
            t = time.monotonic()
            prev = self._cpu_sample.get(g)
            if prev is None or prev[0] != guest.pid:
                self._cpu_sample[g] = (guest.pid, cpu, t)
            elif t - prev[2] >= CPU_SAMPLE_MIN_S:
                # CPU time ticks in 10 ms steps: a rate over a shorter span (observes in quick
                # succession, e.g. the applier polling) would be mostly quantisation noise
                demand[g] = max(0.0, (cpu - prev[1]) / (t - prev[2])) * self.spec.mips_per_core
                self._cpu_sample[g] = (guest.pid, cpu, t)
            mem[g] = rss
            changed = True
        if changed:
            state = state.evolve(guest_status=status, guest_down_start=down_start, guest_down_end=down_end,
                                 demand_mips=demand, demand_mem_mb=mem)
        for d, (requested, _usage) in list(self.mem_lag.items()):
            self._set_memory(d, requested)
        return state

    # ------------------------------------------------------------------ cgroups
    def _sync_host(self, state: ClusterState, host: int) -> None:
        """Make the host's groups match the mirror: create, set cpus / quota / memory limit."""
        hname = self.fabric.hosts[host].name
        layout = cpu_layout(state, host, self.spec.mips_per_core)
        for d, (cpus, quota) in layout.items():
            dom = state.domains[d]
            cg = self.cg.get(d)
            if cg is None:
                cg = CgroupDomain.create(hname, f"d{d}", cpus=cpus)
                self.cg[d] = cg
                if self._cpu_root is not None:
                    self.cpu_cg[d] = CpuQuotaGroup(self._cpu_root, hname, f"d{d}").create()
            else:
                cg.set_cpus(cpus)
            if d in self.cpu_cg:
                self.cpu_cg[d].set_quota(quota)
            self._set_memory(d, int(dom.mem_mb * MIB))

    def _set_memory(self, d: int, limit: int) -> None:
        cg = self.cg[d]
        try:
            cg.set_memory_limit(limit)
            self.mem_lag.pop(d, None)
        except MemoryLimitError as exc:
            self.mem_lag[d] = (limit, exc.usage)

    def _remove_domain(self, d: int) -> None:
        cg, q = self.cg.pop(d, None), self.cpu_cg.pop(d, None)
        self.mem_lag.pop(d, None)
        if cg is not None and cg.exists:
            cg.remove()
        if q is not None:
            q.remove()

    def _join(self, guest: QemuGuest, d: int) -> None:
        """Every thread of the guest's QEMU into domain ``d``'s groups."""
        cgroups.move_process(guest.pid, self.cg[d])
        if d in self.cpu_cg:
            self.cpu_cg[d].add_process(guest.pid)

    # ------------------------------------------------------------------ actions
    def _do_PlaceGuest(self, state, new, a: PlaceGuest):
        g, d = a.guest, a.domain
        old = self.guests.get(g)
        if old is not None and old.alive:
            raise _Refuse(f"guest {g} already has a QEMU process ({old.pid})")
        guest = self._launch(g, d, state)
        try:
            guest.start()
        except GuestError as exc:
            guest.remove_workdir()
            raise _Refuse(f"QEMU did not boot: {str(exc).splitlines()[0]}") from exc
        self._adopt(g, d, guest)
        return new, {"pid": guest.pid, "accel": guest.accel}

    def _launch(self, g: int, d: int, state) -> QemuGuest:
        spec, host = self.spec.guests[g], state.domains[d].host
        return QemuGuest(GuestConfig(name=spec.id, memory_mib=spec.memory_mib, workload=spec.workload,
                                     image=self.image, netns=self.fabric.hosts[host].netns, cgroup=self.cg[d]),
                         teardown=self.td, tag=self.tag)

    def _adopt(self, g: int, d: int, guest: QemuGuest) -> None:
        if d in self.cpu_cg:
            self.cpu_cg[d].add_process(guest.pid)
        self.guests[g] = guest
        self.monitors[g].append(guest.heartbeat)

    def _do_MoveGuest(self, state, new, a: MoveGuest):
        g, src, dst = a.guest, int(state.guest_domain[a.guest]), a.to_domain
        host = state.domains[dst].host
        guest = self._live(g)
        self._sync_host(new, host)
        try:
            seconds = cgroups.move_process(guest.pid, self.cg[dst])
            if dst in self.cpu_cg:
                self.cpu_cg[dst].add_process(guest.pid)
        except (CgroupError, OSError) as exc:
            self._join(guest, src)
            self._sync_host(state, host)
            raise _Refuse(f"moving the threads of {guest.pid} failed: {exc}") from exc
        return new, {"move_s": round(seconds, 4), "pid": guest.pid}

    def _do_MigrateGuest(self, state, new, a: MigrateGuest):
        g, src, dst = a.guest, int(state.guest_domain[a.guest]), a.to_domain
        guest = self._live(g)
        host = state.domains[dst].host
        self._port = (self._port + 1) % 400
        t_start = self.now()
        result = live_migrate(guest, netns=self.fabric.hosts[host].netns, cgroup=self.cg[dst],
                              address=self.fabric.address(host), port=20000 + 5 * self._port,
                              bandwidth_bytes=self._migration_cap(state, state.domains[src].host, host),
                              downtime_limit_ms=None if a.max_downtime_s is None else max(
                                  1, int(round(a.max_downtime_s * 1000))),
                              # A tight pause limit a dirtying guest cannot meet is relaxed to the
                              # model's own limit a third of the way to the deadline.
                              relax_after_s=self.spec.migration_deadline_s / 3,
                              relaxed_downtime_ms=int(round(state.model.max_downtime_s * 1000)),
                              deadline_s=self.spec.migration_deadline_s, stall_s=self.spec.migration_stall_s,
                              teardown=self.td)
        rec = result.record
        self.migrations.append(MigrationLog(self.spec.guests[g].id, src, dst, rec.status, rec.total_ms,
                                            rec.downtime_ms, rec.transferred_bytes, round(rec.wall_s, 3),
                                            rec.reason))
        details = {"status": rec.status, "total_ms": rec.total_ms, "downtime_ms": rec.downtime_ms,
                   "transferred_bytes": rec.transferred_bytes, "reason": rec.reason,
                   "downtime_limit_raised_ms": rec.downtime_limit_raised_ms}
        if not rec.succeeded:
            raise _Refuse(f"migration {rec.status}: {rec.reason}; the guest keeps running at the source")
        dest = result.guest
        if dst in self.cpu_cg:
            self.cpu_cg[dst].add_process(dest.pid)
        self.guests[g] = dest
        self.monitors[g].append(dest.heartbeat)
        end = self.now()
        down = (rec.downtime_ms or 0.0) / 1000.0
        landed = new.evolve(guest_domain=_set(new.guest_domain, g, dst), guest_dest=_set(new.guest_dest, g, -1),
                            guest_status=_set(new.guest_status, g, RUNNING),
                            guest_mig_start=_set(new.guest_mig_start, g, t_start),
                            guest_mig_end=_set(new.guest_mig_end, g, end),
                            guest_down_start=_set(new.guest_down_start, g, end - down),
                            guest_down_end=_set(new.guest_down_end, g, end))
        return landed, {**details, "pid": dest.pid}

    def _do_SplitDomain(self, state, new, a: SplitDomain):
        host = state.domains[a.domain].host
        self._sync_or_undo(state, new, host)
        return new, {"new_domains": list(range(len(state.domains), len(new.domains))),
                     "cpus": {d: c for d, (c, _q) in cpu_layout(new, host, self.spec.mips_per_core).items()}}

    def _do_ResizeDomain(self, state, new, a: ResizeDomain):
        host = state.domains[a.domain].host
        self._sync_or_undo(state, new, host)
        return new, {}

    def _do_MergeDomains(self, state, new, a: MergeDomains):
        target, rest = a.domains[0], a.domains[1:]
        host = state.domains[target].host
        self._sync_or_undo(state, new, host)
        moved = []
        for g in np.flatnonzero(np.isin(state.guest_domain, rest)):
            guest = self.guests.get(int(g))
            if guest is not None and guest.alive:
                self._join(guest, target)
                moved.append(int(g))
        for d in rest:
            self._remove_domain(d)
        return new, {"repinned": moved}

    def _do_PatchDomain(self, state, new, a: PatchDomain):
        inside = [int(g) for g in np.flatnonzero((state.guest_domain == a.domain) & (state.guest_status == RUNNING))]
        for g in inside:
            guest = self._live(g)
            guest.qmp.execute("stop")
            self.paused.add(g)
        return new, {"paused": inside, "until": new.domains[a.domain].patch_until}

    def _do_ResizeGuest(self, state, new, a: ResizeGuest):
        """A guest's reservation: its memory through the virtio balloon; its CPU as the domain's admission.

        Guests share their domain's groups on this backend (there is no cgroup
        per guest), so the CFS quota and memory limit the kernel enforces are
        the domain's, and a resize leaves them as they are: the CPU
        reservation is what the controller admits into the domain (the
        mirror's booking), and says so in the receipt. Memory is real: the
        guest's RAM is set with QMP ``balloon`` to the new reservation minus
        QEMU's own overhead and must lie between ``BALLOON_FLOOR_MIB`` (below
        it the guest kernel runs out) and the RAM the guest booted with (``-m``:
        no memory hot-plug here). The guest's driver gives pages back on its
        own time: ``query-balloon`` is read until it shows the target; if it
        does not within ``BALLOON_WAIT_S`` the balloon is set back and the
        action refused.
        """
        g, was_mb = a.guest, float(state.guest_reserve[a.guest, 1])
        details = {"cpu": "admission only: the guest shares its domain's CFS quota"}
        if abs(float(a.mem_mb) - was_mb) <= 1e-6:
            return new, details
        guest, overhead = self._live(g), self.spec.qemu_overhead_mb
        booted = self.spec.guests[g].memory_mib
        target = float(a.mem_mb) - overhead
        if target > booted + 1e-6:
            raise _Refuse(f"guest {g} booted with {booted} MiB and this backend does not hot-plug memory: "
                          f"at most {booted + overhead:g} MB, not {float(a.mem_mb):g}")
        if target < BALLOON_FLOOR_MIB:
            raise _Refuse(f"guest {g} needs at least {BALLOON_FLOOR_MIB} MiB of RAM ({BALLOON_FLOOR_MIB + overhead:g} "
                          f"MB with QEMU's overhead), not {float(a.mem_mb):g} MB")
        try:
            actual = self._balloon(guest, int(round(target * MIB)))
        except QMPError as exc:
            raise _Refuse(f"the balloon of guest {g} refused: {exc}") from exc
        if abs(actual - target * MIB) > MIB:  # not there in time: give the guest back what it had
            try:
                self._balloon(guest, int(round((was_mb - overhead) * MIB)))
            except QMPError:
                pass  # the refusal below says what happened; observe() sees the guest as it is
            raise _Refuse(f"the balloon of guest {g} reached {actual / MIB:.0f} MiB, not {target:g} MiB, "
                          f"within {BALLOON_WAIT_S:g} s")
        return new, {**details, "balloon_mib": round(actual / MIB, 1)}

    def _balloon(self, guest: QemuGuest, target_bytes: int) -> int:
        """Ask the guest's balloon for ``target_bytes`` of RAM; the RAM it has once there (or when time ran out)."""
        guest.qmp.execute("balloon", {"value": target_bytes})
        deadline = time.monotonic() + BALLOON_WAIT_S
        while True:
            actual = int(guest.qmp.execute("query-balloon")["actual"])
            if abs(actual - target_bytes) <= MIB or time.monotonic() > deadline:
                return actual
            time.sleep(0.05)

    def _undo_ResizeGuest(self, state, a: ResizeGuest, before: dict) -> Receipt:
        # the kind's own revert decides on the mirror whether there is anything to undo; a real undo
        # is the resize back, balloon included
        new, ok, reason = a.revert(state, before)
        if not ok or new is state:
            return Receipt(ok, reason, state.now, state.now)
        was = before["guest_reserve"]
        return self.execute(ResizeGuest(a.guest, was[0], was[1], reason="revert of ResizeGuest"))

    def _do_PowerOn(self, state, new, a):
        return new, {}

    def _do_PowerOff(self, state, new, a):
        return new, {}

    def _do_SetMigrationShare(self, state, new, a):
        # Takes effect on the next migration from or to the host: its QEMU max-bandwidth.
        return new, {"migration_cap_mib_s": self._migration_cap(new, a.host, a.host) / MIB}

    # ------------------------------------------------------------------ helpers
    def _migration_cap(self, state, src_host: int, dst_host: int) -> int:
        """QEMU's max-bandwidth (bytes/s): the spec's rate at the model's default share, scaled by the hosts' share."""
        share = float(min(state.host_mig_share[src_host], state.host_mig_share[dst_host]))
        return int(self.spec.bandwidth_mib_s * MIB * share / state.model.migration_bw_share)

    def _sync_or_undo(self, state, new, host) -> None:
        try:
            self._sync_host(new, host)
        except CgroupError as exc:
            try:
                self._sync_host(state, host)
            finally:
                raise _Refuse(f"cgroups refused the change: {exc}") from exc

    def _live(self, g: int) -> QemuGuest:
        guest = self.guests.get(g)
        if guest is None or not guest.alive:
            raise _Refuse(f"guest {g} has no running QEMU process")
        return guest

    def _log(self, text: str) -> None:
        self.events.append((round(self.now(), 3), text))

    def _describe(self, a) -> str:
        fields = {k: v for k, v in a.__dict__.items() if k not in ("reason", "details")}
        return " ".join(f"{k}={v}" for k, v in fields.items())


class _Refuse(Exception):
    """The real operation did not happen (or was undone): a refused Receipt."""


def _set(arr: np.ndarray, idx, value) -> np.ndarray:
    out = arr.copy()
    out[idx] = value
    return out


_TICK = os.sysconf("SC_CLK_TCK")


def _proc_usage(pid: int) -> tuple[float, float]:
    """(CPU seconds of all threads, resident MiB) of a process; zeros if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        cpu = (int(stat[11]) + int(stat[12])) / _TICK
        rss = 0.0
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024.0
        return cpu, rss
    except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
        return 0.0, 0.0


# --------------------------------------------------------------------------- registration
def small_world(n_guests: int = 4, *, memory_mib: int = 128, ramp_guests: tuple[int, ...] = (0,),
                **kw) -> QemuWorldSpec:
    """2 hosts, ``n_guests`` idle guests of ``memory_mib``; guests in ``ramp_guests`` run a CPU ramp."""
    guests = tuple(GuestSpec(f"vm{i}", memory_mib,
                             Workload.ramp(10, 90, 5, step_ms=2000) if i in ramp_guests else Workload.idle())
                   for i in range(n_guests))
    return QemuWorldSpec(guests=guests, **kw)


def load_world_spec(path: str | Path) -> QemuWorldSpec:
    """A real-run scenario (YAML, see ``scenarios/small.yaml``) -> :class:`QemuWorldSpec`."""
    import yaml

    data = yaml.safe_load(Path(path).read_text()) or {}
    real = data.get("_qemu", data.get("qemu", data))
    guests = []
    for i, g in enumerate(real.get("guests", [])):
        wl = g.get("workload", "idle")
        if isinstance(wl, dict):
            kind = wl.get("mode", "idle")
            if kind == "ramp":
                workload = Workload.ramp(int(wl.get("start", 10)), int(wl.get("end", 90)), int(wl.get("steps", 5)),
                                         int(wl.get("step_ms", 2000)))
            elif kind == "dirty":
                workload = Workload.dirty(int(wl["mib"]), int(wl.get("rate", 0)))
            elif kind == "steps":
                workload = Workload.duty_steps(wl["duties"], int(wl.get("step_ms", 1000)))
            else:
                workload = Workload(mode=kind)
        else:
            workload = Workload(mode=str(wl))
        guests.append(GuestSpec(str(g.get("id", f"vm{i}")), int(g.get("memory_mib", 128)), workload,
                                float(g.get("reserve_mips", 250)), float(g.get("dirty_rate_mbps", 0))))
    keys = ("hosts", "cores", "mips_per_core", "host_ram_mb", "qemu_overhead_mb", "provision_s",
            "patch_duration_s", "interval_s", "bandwidth_mib_s", "migration_deadline_s")
    return QemuWorldSpec(guests=tuple(guests), **{k: real[k] for k in keys if k in real})


def factory(scenario=None, profile=None, *, spec: QemuWorldSpec | None = None, place: bool = True,
            **kw) -> QemuBackend:
    """What ``presplit run --backend qemu`` builds: the world of ``scenario``'s ``_qemu:`` section
    (a file path or a loaded scenario with a ``path``), else :func:`small_world`; guests placed
    round-robin over the hosts. Stopped at interpreter exit."""
    import atexit

    # A controller killed with SIGKILL cannot tear down its guests; sweep what dead
    # runs left (their owner pid is in every name) before starting new ones.
    cleanup_stale(only_dead_owners=True)
    if spec is None:
        path = getattr(scenario, "path", None) or (scenario if isinstance(scenario, (str, Path)) else None)
        spec = load_world_spec(path) if path and _has_qemu_section(path) else small_world()
    backend = QemuBackend(spec, **kw)
    atexit.register(backend.close)
    if place:
        try:
            backend.place_all({g: g % backend.state.n_hosts for g in range(len(spec.guests))})
        except BaseException:
            backend.close()
            raise
    return backend


def _has_qemu_section(path) -> bool:
    try:
        import yaml

        data = yaml.safe_load(Path(path).read_text()) or {}
        return "_qemu" in data or "qemu" in data
    except (OSError, ValueError):
        return False

