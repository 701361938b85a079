"""The backend contract: the same tests on the simulated world and on real QEMU guests.

Both backends start from the same ClusterState (``build_state`` of one small
spec: 2 hosts of 2 CPUs x 1000 MIPS / 2048 MB, 4 guests of 96 MiB), and run
the same sequence: place, refusals, split, resize, intra-host move, revert,
patch (empty domain and with guests inside), merge, cross-host migration.
After every accepted action, a fresh ``observe()`` must satisfy the applier's
own post-condition (:func:`presplit.apply.conditions.postcondition`) and the
model's invariants; every refused action must leave the observed state
unchanged. On QEMU the tests also look at the real things: processes, their
cgroups and namespaces, CFS quotas, memory limits, heartbeats.

The module-scoped worlds are shared by the tests, which run in order.
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from presplit.apply.conditions import capture, postcondition
from presplit.plan.actions import Verdict
from presplit.backends.base import ALL_KINDS, Backend
from presplit.backends.qemu.backend import GuestSpec, QemuWorldSpec, build_state
from presplit.model.domains import DOWN, RUNNING
from presplit.plan.actions import (
    MergeDomains,
    MigrateGuest,
    MoveGuest,
    PatchDomain,
    PlaceGuest,
    ResizeDomain,
    SplitDomain,
)
from presplit.plan.invariants import violations

MIB = 1 << 20
SPEC = QemuWorldSpec(guests=tuple(GuestSpec(f"c{i}", 96) for i in range(4)), hosts=2, cores=2,
                     mips_per_core=1000.0, host_ram_mb=2048.0, provision_s=0.3, patch_duration_s=1.0)


class Harness:
    """One backend plus how to let time pass until a receipt's ``ready_at``."""

    def __init__(self, kind: str, backend) -> None:
        self.kind, self.backend = kind, backend

    @property
    def real(self) -> bool:
        return self.kind == "qemu"

    def settle(self, ready_at: float) -> None:
        if self.real:
            while self.backend.now() < ready_at + 0.05:
                time.sleep(0.05)
        else:
            self.backend.advance(max(ready_at, self.backend.observe().now) + 1e-3)

    def do(self, action):
        """Execute; on success wait for ready_at and check the post-condition on a fresh observation."""
        before_state = self.backend.observe()
        before = capture(before_state, action)
        r = self.backend.execute(action)
        assert r.ok, f"{action} refused: {r.reason}"
        self.settle(r.ready_at)
        s = self.backend.observe()
        verdict, why = postcondition(s, action, before)
        assert verdict == Verdict.DONE, f"{action.kind}: {verdict} ({why})"
        assert violations(s) == []
        return r, s, before


def _snapshot(s):
    return (s.guest_domain.tolist(), s.guest_status.tolist(), s.guest_dest.tolist(),
            [(d.host, d.cpu_mips, d.mem_mb, d.state) for d in s.domains])


@pytest.fixture(scope="module", params=["sim", pytest.param("qemu", marks=pytest.mark.qemu)])
def world(request, tmp_path_factory):
    if request.param == "sim":
        from presplit.backends.sim_world import SimWorld
        from presplit.sim.domain_engine import DomainWorkload

        n = len(SPEC.guests)
        work = DomainWorkload(np.full((n, 4), 0.2), None, np.zeros(n, np.int64), 300.0)
        w = SimWorld(tmp_path_factory.mktemp("sim") / "world.db", initial=build_state(SPEC), workload=work)
        yield Harness("sim", w)
        w.close()
        return
    request.getfixturevalue("stale_swept")  # sets up the guest image, sweeps dead runs' leftovers
    from presplit.backends.qemu.backend import QemuBackend, cpu_group_dirs
    from presplit.backends.qemu.cgroups import host_dirs
    from presplit.backends.qemu.cleanup import (
        Teardown,
        find_qemu_processes,
        list_namespaces,
        run_tag,
    )

    with Teardown(handle_signals=False) as td:
        backend = QemuBackend(SPEC, teardown=td, image=request.getfixturevalue("image"), octet=81)
        yield Harness("qemu", backend)
    assert not td.errors, td.errors
    tag = run_tag()
    assert not find_qemu_processes(tag), "a QEMU process outlived the backend"
    assert not {h.netns for h in backend.fabric.hosts} & set(list_namespaces(tag))
    assert not [p for p in host_dirs() if p.name.startswith(f"{tag}-h")]
    assert not cpu_group_dirs(tag)


def _pid(world, g):
    return world.backend.guests[g].pid


def _netns_inode(name: str) -> int:
    return os.stat(f"/var/run/netns/{name}").st_ino


def test_protocol_and_capabilities(world):
    assert isinstance(world.backend, Backend)
    caps = world.backend.capabilities()
    # Every kind, but a RestartGuest on QEMU (the failover backend's, tests/backends/test_failover_qemu.py).
    assert set(caps.kinds) == set(ALL_KINDS) - ({"RestartGuest"} if world.kind == "qemu" else set())
    assert caps.simulated == (world.kind == "sim")
    s = world.backend.observe()
    assert s.n_hosts == 2 and s.n_guests == 4 and [d.host for d in s.domains] == [0, 1]
    assert violations(s) == []


def test_place(world):
    for g, d in ((0, 0), (1, 0), (2, 1), (3, 1)):
        _, s, _ = world.do(PlaceGuest(g, d, reason="contract"))
    assert s.guest_domain.tolist() == [0, 0, 1, 1] and (s.guest_status == RUNNING).all()
    if world.real:
        b = world.backend
        for g, d in ((0, 0), (1, 0), (2, 1), (3, 1)):
            guest = b.guests[g]
            assert guest.alive and guest.status() == "running"
            assert set(guest.thread_ids()) <= b.cg[d].threads(), "QEMU runs in its domain's cpuset group"
            host = s.domains[d].host
            assert os.stat(f"/proc/{guest.pid}/ns/net").st_ino == _netns_inode(b.fabric.hosts[host].netns)
            assert guest.heartbeat.wait_beats(2, timeout=5)
        s = b.observe()
        assert (s.demand_mem_mb[:4] > 50).all(), "memory measured from the QEMU processes"


def test_refusals_leave_state_unchanged(world):
    b = world.backend
    before = _snapshot(b.observe())
    pids = {g: _pid(world, g) for g in range(4)} if world.real else None
    bad = [
        PlaceGuest(0, 1),                        # already running
        MigrateGuest(0, 0),                      # same host: that is a MoveGuest
        MoveGuest(0, 1),                         # another host: that is a MigrateGuest
        SplitDomain(0, ((5000.0, 100.0),)),      # more than the host has
        MergeDomains((0, 1)),                    # domains of two hosts
        PatchDomain(7),                          # no such domain
        ResizeDomain(0, 3000.0, 2048.0, 1),      # donor on another host
    ]
    for a in bad:
        r = b.execute(a)
        assert not r.ok and r.reason, a
        assert _snapshot(b.observe()) == before, f"{a} changed the world"
    if world.real:
        assert {g: _pid(world, g) for g in range(4)} == pids
        assert b.cg[0].cpus == "0-1" and b.cg[1].cpus == "0-1"


def test_split_and_resize(world):
    _r, s, _ = world.do(SplitDomain(0, ((1000.0, 1024.0),), reason="contract"))
    assert len(s.domains) == 3 and s.domains[2].host == 0 and s.domains[2].state == "active"
    assert (s.domains[0].cpu_mips, s.domains[0].mem_mb) == (1000.0, 1024.0)
    if world.real:
        b = world.backend
        assert (b.cg[0].cpus, b.cg[2].cpus) == ("0", "1")
        assert b.cg[2].usage().memory_limit_bytes == 1024 * MIB == b.cg[0].usage().memory_limit_bytes
        assert b.cpu_cg[2].quota_us == 100_000 == b.cpu_cg[0].quota_us
        assert set(b.guests[0].thread_ids()) <= b.cg[0].threads(), "guests stay in the shrunk parent"
    _, s, _ = world.do(ResizeDomain(2, 500.0, 768.0, 0, reason="contract"))
    assert (s.domains[2].cpu_mips, s.domains[0].cpu_mips) == (500.0, 1500.0)
    if world.real:
        b = world.backend
        assert b.cpu_cg[2].quota_us == 50_000 and b.cpu_cg[0].quota_us == 150_000
        assert b.cg[0].cpus == "0-1" and b.cg[2].cpus == "0", "1.5 CPUs -> 2 CPUs, shared with the 0.5"
        assert b.cg[2].usage().memory_limit_bytes == 768 * MIB


def test_move_within_host_and_revert(world):
    b = world.backend
    pid = _pid(world, 1) if world.real else None
    beat = b.guests[1].heartbeat.last_counter if world.real else 0
    action = MoveGuest(1, 2, reason="contract")
    _r, s, before = world.do(action)
    assert int(s.guest_domain[1]) == 2
    if world.real:
        assert _pid(world, 1) == pid, "an intra-host move keeps the process"
        assert set(b.guests[1].thread_ids()) <= b.cg[2].threads()
        assert b.guests[1].heartbeat.wait_beats(3, timeout=5) and b.guests[1].heartbeat.last_counter > beat
    rv = b.revert(action, before)
    assert rv.ok, rv.reason
    s = b.observe()
    assert int(s.guest_domain[1]) == 0 and violations(s) == []
    if world.real:
        assert set(b.guests[1].thread_ids()) <= b.cg[0].threads()
    # empty domain 0 for the patch: both of its guests go to the small sibling
    for g in (0, 1):
        world.do(MoveGuest(g, 2, reason="contract"))


def test_patch_empty_domain(world):
    _r, s, _ = world.do(PatchDomain(0, 1.0, reason="contract"))
    assert s.domains[0].state == "active" and np.isfinite(s.domains[0].patch_started)
    assert (s.guest_status == RUNNING).all()


def test_patch_pauses_guests_inside_and_resumes_them(world):
    b = world.backend
    r = b.execute(PatchDomain(1, 1.0, reason="contract"))
    assert r.ok, r.reason
    s = b.observe()
    assert s.domains[1].state == "patching" and s.guest_status[2] == DOWN and s.guest_status[3] == DOWN
    if world.real:
        assert b.guests[2].status() == "paused"
        n = b.guests[2].heartbeat.last_counter
        time.sleep(0.5)
        assert b.guests[2].heartbeat.last_counter <= n + 1, "a paused guest does not beat"
    world.settle(r.ready_at)
    s = b.observe()
    assert s.domains[1].state == "active" and s.guest_status[2] == RUNNING and s.guest_status[3] == RUNNING
    if world.real:
        assert b.guests[2].status() == "running" and b.guests[2].heartbeat.wait_beats(2, timeout=5)


def test_merge(world):
    _, s, _ = world.do(MergeDomains((0, 2), reason="contract"))
    assert s.domains[2].state == "merged" and s.guest_domain.tolist()[:2] == [0, 0]
    assert (s.domains[0].cpu_mips, s.domains[0].mem_mb) == (2000.0, 2048.0)
    if world.real:
        b = world.backend
        assert 2 not in b.cg and b.cg[0].cpus == "0-1" and b.cpu_cg[0].quota_us == 200_000
        for g in (0, 1):
            assert set(b.guests[g].thread_ids()) <= b.cg[0].threads()


def test_migrate_across_hosts(world):
    b = world.backend
    old = b.guests[2] if world.real else None
    r, s, _ = world.do(MigrateGuest(2, 0, reason="contract"))
    assert int(s.guest_domain[2]) == 0 and int(s.guest_dest[2]) == -1 and s.guest_status[2] == RUNNING
    if world.real:
        new = b.guests[2]
        assert new is not old and not old.alive and new.alive and new.status() == "running"
        assert r.details["total_ms"] > 0 and 0 <= r.details["downtime_ms"] < 1000
        assert os.stat(f"/proc/{new.pid}/ns/net").st_ino == _netns_inode(b.fabric.hosts[0].netns)
        assert set(new.thread_ids()) <= b.cg[0].threads()
        assert new.heartbeat.wait_beats(3, timeout=5)
        assert new.heartbeat.beats[0].counter > old.heartbeat.last_counter, "the guest's counter continued"
        assert b.migrations[-1].status == "completed"


def test_observe_after_all(world):
    s = world.backend.observe()
    assert violations(s) == [] and (s.guest_status == RUNNING).all()
    assert s.guest_domain.tolist() == [0, 0, 0, 1]
    if world.real:
        from presplit.backends.qemu.cleanup import find_qemu_processes, run_tag

        names = [n for _p, n in find_qemu_processes(run_tag())]
        for spec in SPEC.guests:
            assert sum(n.endswith(f"-{spec.id}") for n in names) == 1, "every guest runs exactly once"
        assert max(g["max_heartbeat_gap_s"] for g in world.backend.guest_report()
                   if g["id"] != "c2" and g["id"] != "c3") < 1.0
