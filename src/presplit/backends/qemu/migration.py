"""Live migration of a guest between two QEMU processes (two "hosts").

Owns one migration: start the destination QEMU with ``-incoming tcp:IP:PORT``
inside the target namespace and cgroup, set the source's bandwidth cap and
downtime limit, ``migrate``, poll ``query-migrate`` until it completes, fails
or stalls, and return a :class:`MigrationRecord` with QEMU's own figures.

On success the source QEMU is stopped and the destination is the guest. A
migration that makes no progress for ``stall_s`` or has not converged by
``deadline_s`` (a guest dirtying memory faster than the cap can carry never
converges; auto-converge did not help within 30 s on this machine kind) is
cancelled with ``migrate_cancel``: the guest keeps running at the source and
the destination QEMU is stopped.

QEMU 7.2 quirk: ``query-migrate`` can say ``completed`` with zero total time
and no downtime for a moment; the figures are re-read ~100 ms later.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

from presplit.backends.qemu.cgroups import CgroupDomain
from presplit.backends.qemu.cleanup import Teardown
from presplit.backends.qemu.guest import GuestError, QemuGuest
from presplit.backends.qemu.qmp import QMPError
from presplit.errors import PresplitError

MIB = 1024 * 1024


class MigrationError(PresplitError, RuntimeError):
    """The migration could not be started, or left the guest in an unknown state."""


@dataclass
class MigrationRecord:
    """What happened, in QEMU's figures where QEMU gives them."""

    status: str  # "completed", "cancelled" (stalled / not converging / asked), "failed"
    reason: str = ""
    total_ms: float | None = None
    downtime_ms: float | None = None
    setup_ms: float | None = None
    transferred_bytes: int = 0
    ram_total_bytes: int = 0
    dirty_sync_count: int = 0
    bandwidth_cap_bytes: int | None = None
    downtime_limit_raised_ms: int | None = None  # set when a tight limit would not converge and was raised
    wall_s: float = 0.0
    progress: list[tuple[float, int, int]] = field(default_factory=list)  # (t, transferred, remaining)

    @property
    def succeeded(self) -> bool:
        return self.status == "completed"

    def as_dict(self) -> dict:
        d = asdict(self)
        d.pop("progress")
        return d


@dataclass
class MigrationResult:
    record: MigrationRecord
    #: the guest after the call: the destination if it completed, else the source
    guest: QemuGuest


def start_destination(source: QemuGuest, *, netns: str | None, cgroup: CgroupDomain | None,
                      address: str, port: int = 4444, tries: int = 5,
                      teardown: Teardown | None = None, timeout: float = 15.0) -> QemuGuest:
    """Start a paused QEMU with the source's configuration, listening on ``address``.

    Tries the next port when the chosen one is taken (QEMU then exits at once).
    """
    config = source.config.placed(netns=netns, cgroup=cgroup)
    last: Exception | None = None
    for p in range(port, port + tries):
        dest = QemuGuest(config, incoming=f"tcp:{address}:{p}", teardown=teardown or source.teardown,
                         tag=source.tag)
        dest.accel = source.accel
        try:
            dest.start(timeout=timeout)
            status = dest.status()
            if status != "inmigrate":
                dest.stop()
                raise MigrationError(f"destination {dest} is {status!r}, expected 'inmigrate'")
            return dest
        except GuestError as exc:
            last = exc
            dest.remove_workdir()
            if "Address already in use" not in str(exc):
                break
    raise MigrationError(f"could not start a migration destination on {address}: {last}")


def _figures(info: dict, record: MigrationRecord) -> None:
    ram = info.get("ram", {})
    record.transferred_bytes = int(ram.get("transferred", record.transferred_bytes))
    record.ram_total_bytes = int(ram.get("total", record.ram_total_bytes))
    record.dirty_sync_count = int(ram.get("dirty-sync-count", record.dirty_sync_count))
    if "total-time" in info:
        record.total_ms = float(info["total-time"])
    if "downtime" in info:
        record.downtime_ms = float(info["downtime"])
    if "setup-time" in info:
        record.setup_ms = float(info["setup-time"])


def live_migrate(
    source: QemuGuest,
    *,
    netns: str | None,
    cgroup: CgroupDomain | None,
    address: str,
    port: int = 4444,
    bandwidth_bytes: int | None = None,
    downtime_limit_ms: int | None = None,
    deadline_s: float = 30.0,
    stall_s: float = 5.0,
    poll_s: float = 0.05,
    teardown: Teardown | None = None,
    stop_source: bool = True,
    relax_after_s: float | None = None,
    relaxed_downtime_ms: int = 300,
) -> MigrationResult:
    """Migrate ``source`` to a new QEMU in ``netns``/``cgroup`` listening on ``address``.

    ``bandwidth_bytes`` caps the stream (QEMU's default is 128 MiB/s);
    ``downtime_limit_ms`` is the pause QEMU may take for the last copy (default 300).
    A tight limit may never be met by a guest that dirties memory fast: after
    ``relax_after_s`` still copying, the limit is raised to
    ``relaxed_downtime_ms`` once (recorded in ``downtime_limit_raised_ms``), which
    is what forces such a migration to complete.
    """
    if not source.alive:
        raise MigrationError(f"source {source} is not running")
    t0 = time.monotonic()
    dest = start_destination(source, netns=netns, cgroup=cgroup, address=address, port=port,
                             teardown=teardown)
    record = MigrationRecord(status="active")
    try:
        params: dict = {}
        if bandwidth_bytes is not None:
            params["max-bandwidth"] = int(bandwidth_bytes)
        if downtime_limit_ms is not None:
            params["downtime-limit"] = int(downtime_limit_ms)
        if params:
            source.qmp.execute("migrate-set-parameters", params)
        record.bandwidth_cap_bytes = source.qmp.execute("query-migrate-parameters").get("max-bandwidth")
        source.qmp.execute("migrate", {"uri": dest.incoming})
        relax = None if relax_after_s is None or (downtime_limit_ms or 300) >= relaxed_downtime_ms else (
            relax_after_s, relaxed_downtime_ms)
        _poll(source, record, t0=time.monotonic(), deadline_s=deadline_s, stall_s=stall_s, poll_s=poll_s,
              relax=relax)
    except QMPError as exc:
        record.status, record.reason = "failed", str(exc)
    record.wall_s = time.monotonic() - t0

    if record.status == "completed":
        _await_running(dest, timeout=5.0)
        if stop_source:
            source.stop()
        return MigrationResult(record, dest)

    # Not completed: make sure the guest runs at the source, drop the destination.
    if record.status == "active":
        record.status = "cancelled"
    try:
        source.qmp.execute("migrate_cancel")
        if _wait_settled(source) == "completed":
            # The last copy was already under way: the guest now lives at the
            # destination, which is as good as a success.
            _figures(source.qmp.execute("query-migrate"), record)
            record.status, record.reason = "completed", f"completed while cancelling ({record.reason})"
            record.wall_s = time.monotonic() - t0
            _await_running(dest, timeout=5.0)
            if stop_source:
                source.stop()
            return MigrationResult(record, dest)
        if source.status() != "running":
            source.qmp.execute("cont")
    except QMPError as exc:
        dest.stop()
        raise MigrationError(f"cancelled migration left the source in doubt: {exc}") from exc
    dest.stop()
    dest.remove_workdir()
    return MigrationResult(record, source)


def _poll(source: QemuGuest, record: MigrationRecord, *, t0: float, deadline_s: float,
          stall_s: float, poll_s: float, relax: tuple[float, int] | None = None) -> None:
    last_progress_t, best_transferred = t0, -1
    while True:
        info = source.qmp.execute("query-migrate")
        status = info.get("status", "none")
        now = time.monotonic()
        if relax is not None and status == "active" and now - t0 > relax[0]:
            source.qmp.execute("migrate-set-parameters", {"downtime-limit": int(relax[1])})
            record.downtime_limit_raised_ms, relax = int(relax[1]), None
        _figures(info, record)
        ram = info.get("ram", {})
        record.progress.append((now - t0, int(ram.get("transferred", 0)), int(ram.get("remaining", 0))))
        if status == "completed":
            for _ in range(20):  # the 7.2 quirk: figures can lag the status
                if record.total_ms and record.downtime_ms is not None:
                    break
                time.sleep(0.1)
                _figures(source.qmp.execute("query-migrate"), record)
            record.status = "completed"
            return
        if status in ("failed", "cancelled"):
            record.status = status
            record.reason = info.get("error-desc", f"QEMU reported {status}")
            return
        if record.transferred_bytes > best_transferred:
            best_transferred, last_progress_t = record.transferred_bytes, now
        elif now - last_progress_t > stall_s:
            record.reason = f"stalled: no bytes transferred for {stall_s:.1f} s"
            return
        if now - t0 > deadline_s:
            record.reason = (f"not converging: {int(ram.get('remaining', 0)) // MIB} MiB still dirty "
                             f"after {deadline_s:.1f} s (dirty syncs: {record.dirty_sync_count})")
            return
        time.sleep(poll_s)


def _wait_settled(source: QemuGuest, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = source.qmp.execute("query-migrate").get("status", "none")
        if status in ("cancelled", "failed", "completed", "none"):
            return status
        time.sleep(0.05)
    raise QMPError(f"migration on {source} did not settle after migrate_cancel within {timeout} s")


def _await_running(dest: QemuGuest, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    status = "?"
    while time.monotonic() < deadline:
        status = dest.status()
        if status == "running":
            return
        time.sleep(0.05)
    raise MigrationError(f"migration completed but destination {dest} is {status!r}, not running")


def lower_bound_s(ram_bytes: int, bandwidth_bytes: int) -> float:
    """Time to copy the guest's RAM once at the cap: a floor for a full copy
    (zero pages travel as flags, so an idle guest can beat it)."""
    return ram_bytes / bandwidth_bytes


