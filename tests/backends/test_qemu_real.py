"""The real backend against real components: QEMU guests (TCG unless KVM boots),
network namespaces, cgroup v1/v2 groups. No mocks; each test boots guests.

Heartbeats: the guest prints ``HB <n> <uptime>`` every 200 ms; the host
timestamps each line, so "the guest kept running" means the counter kept
rising and no host-clock gap between beats exceeded 1 s.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from presplit.backends.qemu import cgroups
from presplit.backends.qemu.cgroups import CgroupDomain, CgroupError, MemoryLimitError
from presplit.backends.qemu.cleanup import Teardown, cleanup_stale, find_qemu_processes, list_namespaces, run_tag
from presplit.backends.qemu.guest import GuestConfig, QemuGuest, max_gap, merged_beats
from presplit.backends.qemu.guest_image import Workload
from presplit.backends.qemu.migration import MIB, live_migrate

pytestmark = pytest.mark.qemu

MAX_GAP_S = 1.0


def _domain(td: Teardown, host: str, name: str, **kw) -> CgroupDomain:
    dom = CgroupDomain.create(host, name, **kw)
    td.add(f"cgroup {host}/{name}", lambda: dom.remove() if dom.exists else None)
    return dom


def test_workload_kernel_args():
    assert Workload.ramp(0, 100, 3, step_ms=500).kernel_args() == [
        "presplit.mode=steps", "presplit.hb_ms=200", "presplit.steps=0,50,100", "presplit.step_ms=500"]
    assert "presplit.dirty_mib=64" in Workload.dirty(64).kernel_args()
    with pytest.raises(ValueError):
        Workload(mode="dirty")


def test_boot_heartbeat_and_duty_steps(image, teardown, fabric):
    cfg = GuestConfig(name="boot", memory_mib=128, image=image, netns=fabric.hosts[0].netns,
                      workload=Workload.duty_steps([10, 90], step_ms=600))
    guest = QemuGuest(cfg, teardown=teardown).start()
    assert guest.status() == "running"
    assert guest.heartbeat.wait_beats(12, timeout=10), guest.heartbeat.tail()
    beats = guest.heartbeat.beats
    counters = [b.counter for b in beats]
    assert counters == sorted(counters) and len(set(counters)) == len(counters)
    assert beats[-1].guest_uptime > beats[0].guest_uptime
    assert guest.heartbeat.max_gap() < MAX_GAP_S
    assert {10, 90} <= {b.duty for b in beats}, "both duty-cycle steps should show in the heartbeat"
    pid = guest.pid
    guest.stop()
    assert not Path(f"/proc/{pid}").exists() or guest.proc.returncode is not None


def test_cgroup_domains_resize_and_move_while_beating(image, teardown, fabric):
    host = fabric.hosts[0].name
    d0 = _domain(teardown, host, "d0", cpus="0", memory_limit=512 * MIB)
    d1 = _domain(teardown, host, "d1", cpus="1")
    guest = QemuGuest(GuestConfig(name="cg", memory_mib=128, image=image, netns=fabric.hosts[0].netns,
                                  cgroup=d0, workload=Workload.cpu()), teardown=teardown).start()
    t_start = time.monotonic()
    assert set(guest.thread_ids()) <= d0.threads()
    guest.heartbeat.wait_beats(3, timeout=5)
    used = d0.usage()
    assert used.cpu_ns > 0 and used.memory_bytes > 32 * MIB and used.memory_limit_bytes == 512 * MIB

    # Lowering the limit below what the guest holds must fail clearly...
    with pytest.raises(MemoryLimitError) as err:
        d0.set_memory_limit(8 * MIB)
    assert err.value.usage > 8 * MIB and "current usage" in str(err.value)
    # ...raising it works.
    d0.set_memory_limit(1024 * MIB)
    assert d0.usage().memory_limit_bytes == 1024 * MIB

    d0.set_cpus("0-1")  # widen while running
    assert d0.cpus == "0-1"

    seconds = cgroups.move_process(guest.pid, d1)  # intra-host move: every thread
    assert seconds < 1.0
    assert set(guest.thread_ids()) <= d1.threads() and not d0.threads()
    with pytest.raises(CgroupError):
        d1.remove()  # not empty
    d0.remove()
    assert not d0.exists

    cpu_before = d1.usage().cpu_ns
    assert guest.heartbeat.wait_beats(5, timeout=5)
    assert d1.usage().cpu_ns > cpu_before, "CPU time is now charged to the new group"
    assert guest.heartbeat.max_gap(since=t_start) < MAX_GAP_S
    assert guest.status() == "running"


def test_live_migration_between_namespaces(image, teardown, fabric):
    src_ns, dst_ns = fabric.hosts[0], fabric.hosts[1]
    cg_src = _domain(teardown, src_ns.name, "mig", cpus="0-1")
    cg_dst = _domain(teardown, dst_ns.name, "mig", cpus="0-1")
    guest = QemuGuest(GuestConfig(name="mig", memory_mib=128, image=image, netns=src_ns.netns,
                                  cgroup=cg_src, workload=Workload.dirty(32)), teardown=teardown).start()
    assert guest.heartbeat.wait_beats(5, timeout=10)
    src_pid = guest.pid

    result = live_migrate(guest, netns=dst_ns.netns, cgroup=cg_dst, address=fabric.address(1),
                          bandwidth_bytes=256 * MIB, deadline_s=30, teardown=teardown)
    rec = result.record
    assert rec.succeeded, rec
    assert rec.downtime_ms is not None and 0 < rec.downtime_ms < 1000
    assert rec.total_ms and rec.total_ms > 0 and rec.transferred_bytes > 16 * MIB
    dest = result.guest
    assert dest is not guest and dest.status() == "running"
    assert not guest.alive, "the source QEMU is stopped after success"
    assert not Path(f"/proc/{src_pid}/cmdline").exists() or not Path(f"/proc/{src_pid}/cmdline").read_bytes()

    assert dest.heartbeat.wait_beats(5, timeout=5), dest.heartbeat.tail()
    last_src = guest.heartbeat.last
    first_dst = dest.heartbeat.beats[0]
    assert first_dst.counter > last_src.counter, "the counter continues at the destination"
    assert first_dst.guest_uptime >= last_src.guest_uptime
    assert max_gap(merged_beats(guest.heartbeat, dest.heartbeat)) < MAX_GAP_S
    assert set(dest.thread_ids()) <= cg_dst.threads(), "destination QEMU was born in the target domain"


def test_a_pause_limit_a_dirtying_guest_cannot_meet_is_relaxed_and_the_migration_completes(image, teardown, fabric):
    guest = QemuGuest(GuestConfig(name="tight", memory_mib=128, image=image, netns=fabric.hosts[0].netns,
                                  workload=Workload.dirty(64)), teardown=teardown).start()
    assert guest.heartbeat.wait_beats(3, timeout=10)
    # 1 ms leaves room for a quarter of a megabyte: a guest rewriting 64 MiB never gets there.
    result = live_migrate(guest, netns=fabric.hosts[1].netns, cgroup=None, address=fabric.address(1),
                          port=4600, bandwidth_bytes=64 * MIB, downtime_limit_ms=1, deadline_s=60.0,
                          relax_after_s=3.0, relaxed_downtime_ms=2000, teardown=teardown)
    rec = result.record
    assert rec.succeeded, rec
    print(f"tight limit relaxed: total {rec.total_ms} ms, downtime {rec.downtime_ms} ms")
    assert rec.downtime_limit_raised_ms == 2000 and rec.total_ms >= 3000
    assert result.guest.status() == "running" and result.guest.heartbeat.wait_beats(3, timeout=5)


def test_stalled_migration_is_cancelled_and_guest_stays_at_source(image, teardown, fabric):
    guest = QemuGuest(GuestConfig(name="stall", memory_mib=128, image=image, netns=fabric.hosts[0].netns,
                                  workload=Workload.dirty(64)), teardown=teardown).start()
    assert guest.heartbeat.wait_beats(3, timeout=10)
    # 2 MiB/s cannot carry 128 MiB within the 2 s deadline, let alone a dirtying guest.
    result = live_migrate(guest, netns=fabric.hosts[1].netns, cgroup=None, address=fabric.address(1),
                          port=4500, bandwidth_bytes=2 * MIB, deadline_s=2.0, teardown=teardown)
    assert result.record.status == "cancelled", result.record
    assert "not converging" in result.record.reason or "stalled" in result.record.reason
    assert result.guest is guest and guest.alive and guest.status() == "running"
    before = guest.heartbeat.last_counter
    assert guest.heartbeat.wait_beats(4, timeout=5)
    assert guest.heartbeat.last_counter > before
    assert not [p for p, n in find_qemu_processes(run_tag()) if p != guest.pid], "destination stopped"


_CHILD = textwrap.dedent("""
    import sys, time
    from presplit.backends.qemu.cgroups import CgroupDomain
    from presplit.backends.qemu.cleanup import Teardown
    from presplit.backends.qemu.guest import GuestConfig, QemuGuest
    from presplit.backends.qemu.netns import Fabric
    with Teardown() as td:
        fab = Fabric(1, octet=78, teardown=td).create()
        dom = CgroupDomain.create(fab.hosts[0].name, "d0", cpus="0")
        td.add("cgroup", dom.remove)
        QemuGuest(GuestConfig(name="child", memory_mib=96, netns=fab.hosts[0].netns, cgroup=dom),
                  teardown=td).start()
        print("READY", flush=True)
        time.sleep(120)
""")


def _leftovers(tag: str) -> dict:
    return {
        "qemu": find_qemu_processes(tag),
        "netns": list_namespaces(tag),
        "cgroups": [p for p in cgroups.host_dirs() if p.name.startswith(f"{tag}-")],
    }


def test_cleanup_on_sigterm_and_after_crash(image, stale_swept):
    # Two child runs at once (boots overlap): one is asked to stop, one crashes.
    children = {sig: subprocess.Popen([sys.executable, "-c", _CHILD], stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True)
                for sig in (signal.SIGTERM, signal.SIGKILL)}
    try:
        for child in children.values():
            line = child.stdout.readline()
            assert line.strip() == "READY", child.stderr.read()
        for sig, child in children.items():
            tag = run_tag(child.pid)
            assert all(_leftovers(tag).values()), _leftovers(tag)
            child.send_signal(sig)
            child.wait(timeout=20)

        # SIGTERM: the child's Teardown undid everything itself.
        assert not any(_leftovers(run_tag(children[signal.SIGTERM].pid)).values())

        # SIGKILL: everything is left; cleanup_stale finds the dead owner and sweeps.
        crashed = run_tag(children[signal.SIGKILL].pid)
        assert all(_leftovers(crashed).values())
        report = cleanup_stale()
        assert not report.errors, report.errors
        assert report.processes and report.namespaces and report.cgroups and report.workdirs
        assert not any(_leftovers(crashed).values())
    finally:
        for child in children.values():
            if child.poll() is None:
                child.kill()
                child.wait()
        cleanup_stale()


def test_zz_this_run_left_nothing_behind(fabric):
    # Defined last, so it runs last in the module: everything the tests started
    # must be gone, except the module's fabric, which its fixture removes.
    tag = run_tag()
    assert not find_qemu_processes(tag)
    assert set(list_namespaces(tag)) == {h.netns for h in fabric.hosts} | {fabric.switch_netns}
    assert not [p for p in cgroups.host_dirs() if p.name.startswith(f"{tag}-")]
