"""ResizeGuest on real QEMU: a running guest's memory goes through its virtio balloon, as the mirror says.

One host, one guest of 128 MiB. Its reservation is its RAM plus what the
spec books for QEMU itself, here 256 MB (more than QEMU takes under TCG, so
that the process's resident memory, the model's "uses now", stays below every
reservation the test asks for except the one meant to be refused for it).
The guest shrinks to 96 MiB of RAM while it keeps beating; ``query-balloon``
shows what it has; resizes that the model or the backend cannot do (below what
the guest uses now, above the RAM it booted with, below the guest kernel's
floor) are refused and change nothing; the revert gives the memory back.
"""

from __future__ import annotations

import pytest

from presplit.apply.conditions import capture, postcondition
from presplit.backends.qemu.backend import GuestSpec, QemuWorldSpec
from presplit.plan.actions import PlaceGuest, ResizeGuest, Verdict
from presplit.plan.invariants import violations

pytestmark = pytest.mark.qemu

MIB = 1 << 20
SPEC = QemuWorldSpec(guests=(GuestSpec("rs0", 128, reserve_mips=250.0),), hosts=1, cores=2,
                     mips_per_core=1000.0, host_ram_mb=2048.0, qemu_overhead_mb=256.0, provision_s=0.3)


@pytest.fixture(scope="module")
def backend(request):
    request.getfixturevalue("stale_swept")
    from presplit.backends.qemu.backend import QemuBackend
    from presplit.backends.qemu.cleanup import Teardown

    with Teardown(handle_signals=False) as td:
        b = QemuBackend(SPEC, teardown=td, image=request.getfixturevalue("image"), octet=83)
        r = b.execute(PlaceGuest(0, 0, reason="test"))
        assert r.ok, r.reason
        yield b
    assert not td.errors, td.errors


def _balloon_mib(b) -> float:
    return b.guests[0].qmp.execute("query-balloon")["actual"] / MIB


def test_shrink_through_the_balloon_while_the_guest_runs(backend):
    b = backend
    assert _balloon_mib(b) == pytest.approx(128, abs=1)
    s0 = b.observe()
    action = ResizeGuest(0, 400.0, 352.0, reason="right-size")
    before = capture(s0, action)
    assert before["guest_reserve"] == [250.0, 384.0]
    beat = b.guests[0].heartbeat.last_counter
    r = b.execute(action)
    assert r.ok, r.reason
    assert r.details["balloon_mib"] == pytest.approx(96, abs=1) and "admission" in r.details["cpu"]
    assert _balloon_mib(b) == pytest.approx(96, abs=1)
    s = b.observe()
    assert postcondition(s, action, before)[0] == Verdict.DONE
    assert s.guest_reserve[0].tolist() == [400.0, 352.0]
    assert s.reserved[0].tolist() == [400.0, 352.0] and violations(s) == []
    assert b.guests[0].heartbeat.wait_beats(3, timeout=5) and b.guests[0].heartbeat.last_counter > beat

    rv = b.revert(action, before)
    assert rv.ok, rv.reason
    assert _balloon_mib(b) == pytest.approx(128, abs=1)
    s = b.observe()
    assert s.guest_reserve[0].tolist() == [250.0, 384.0] and violations(s) == []


@pytest.mark.parametrize("mem_mb, why", [(64.0, "MB now"), (384.0 + 64, "hot-plug"), (256.0 + 60, "at least 80 MiB")])
def test_what_the_backend_cannot_do_is_refused_and_changes_nothing(backend, mem_mb, why):
    b = backend
    s0 = b.observe()
    r = b.execute(ResizeGuest(0, 250.0, mem_mb, reason="test"))
    assert not r.ok and why in r.reason, r.reason
    s = b.observe()
    assert s.guest_reserve[0].tolist() == s0.guest_reserve[0].tolist() and s.reserved.tolist() == s0.reserved.tolist()
    assert _balloon_mib(b) == pytest.approx(128, abs=1)
