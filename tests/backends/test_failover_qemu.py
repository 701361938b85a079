"""Failover on real QEMU guests: hosts and the controller die, the guests do not stay down, none runs twice.

``presplit demo qemu --failover`` (3 namespace hosts, 4 guests; the controller
a child process): SIGKILL one host's QEMU processes, then kill a whole host
(every process in its namespace, and the namespace), then SIGKILL the
controller during a live migration and start a new one. The JSON must say:
every guest ends running (one QEMU process each, QMP ``running``, still
beating), no guest runs twice, and no restarted guest's heartbeat stopped for
more than 15 s. Afterwards nothing of the run is left.

The second test takes the other fate of an in-flight migration: a restarted
controller that does not wait (``settle_max_s=0``) cancels it, kills the
destination and keeps the guest running at its source.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from presplit.backends.qemu import cgroups
from presplit.backends.qemu.backend import cpu_group_dirs
from presplit.backends.qemu.cleanup import find_qemu_processes, list_namespaces, run_tag

pytestmark = [pytest.mark.qemu, pytest.mark.slow]

CLI = "from presplit.cli.main import cli; cli(prog_name='presplit')"
KEYS = ("failed_host", "restarted_guests", "restart_max_s", "duplicate_guests", "guests_running", "guests_total",
        "controller_kills")


def leftovers(tag: str) -> dict:
    return {
        "qemu": find_qemu_processes(tag),
        "netns": list_namespaces(tag),
        "cgroups": [p for p in cgroups.host_dirs() if p.name.startswith(f"{tag}-")],
        "cpu_groups": cpu_group_dirs(tag),
    }


def test_failover_demo_restarts_every_guest_and_survives_a_controller_kill(image, stale_swept, tmp_path, capsys):
    out = tmp_path / "failover.json"
    t0 = time.monotonic()
    child = subprocess.Popen([sys.executable, "-c", CLI, "demo", "qemu", "--failover", "--json", str(out)],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    tag = f"{run_tag(child.pid)}-ha"
    try:
        log, _ = child.communicate(timeout=400)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    wall = time.monotonic() - t0
    assert child.returncode == 0, log[-4000:]
    s = json.loads(out.read_text())
    assert all(k in s for k in KEYS), sorted(s)

    # the done-when numbers
    assert s["guests_total"] == 4
    assert s["guests_running"] == s["guests_total"], (s["guests"], log[-3000:])
    assert s["duplicate_guests"] == 0, s["guests"]
    assert s["restart_max_s"] <= 15.0, s["restarts"]
    assert s["controller_kills"] == 1
    assert s["failed_host"] == "h0"

    # phases 1 and 2: both guests of the failed host restarted elsewhere, after the heartbeat timeout
    assert s["restarted_guests"] == 4, s["restarts"]
    for r in s["restarts"]:
        assert r["to_host"] != r["from_host"], r
        assert r["gap_s"] is not None and s["hb_timeout_s"] <= r["gap_s"] <= 15.0, r
        assert s["hb_timeout_s"] - 0.3 <= r["detected_after_s"] <= s["hb_timeout_s"] + 2.0, r
    assert [p["failed_host"] for p in s["phases"][:2]] == ["h1", "h0"]

    # phase 3: the controller died with the migration in flight; the new one left exactly one copy
    p3 = s["phases"][2]
    assert p3["in_flight_at_kill"] and p3["journal_at_kill"] == "started", p3
    assert len(p3["processes_at_kill"]) == 2, p3
    vm = next(a for a in p3["adoption"] if a["guest"] == p3["guest"])
    assert len(vm["found"]) == 2 and len(vm.get("killed", [])) == 1, vm
    assert p3["max_gap_s"] < 1.0, p3  # a live migration, not a restart
    reconciled = [e for e in s["reconciled"] if e["event"] == "reconciled" and e["kind"] == "MigrateGuest"]
    assert reconciled, s["reconciled"]
    for g in s["guests"]:
        assert len(g["processes"]) == 1 and g["processes"][0]["qmp_status"] == "running", g
        assert g["max_gap_outside_restarts_s"] < 1.0, g

    assert not any(leftovers(tag).values()), leftovers(tag)
    with capsys.disabled():
        print(f"\nfailover demo: {wall:.1f} s wall; " + " ".join(f"{k}={s[k]}" for k in KEYS)
              + "; gaps " + ", ".join(f"{r['guest']}@{r['from_host']}->{r['to_host']}={r['gap_s']:.2f}s "
                                      f"(detect {r['detected_after_s']:.2f}s)" for r in s["restarts"])
              + f"; phase 3: {vm['decision']}")


def test_restarted_controller_cancels_an_in_flight_migration_it_will_not_wait_for(image, stale_swept, tmp_path):
    from presplit.backends.qemu.failover import FailoverBackend, World, failover_spec, scan_qemu
    from presplit.demo.failover import sweep_world
    from presplit.backends.qemu.migration import start_destination
    from presplit.model.domains import RUNNING

    tag = f"{run_tag()}-hat"
    world = World.create(tmp_path / "world", tag, octet=83, memory_mib=96, settle_max_s=0.0, placement={0: 0})
    spec = failover_spec(96)
    src = dest = None
    try:
        first = FailoverBackend(spec, world, adopt=False, image=image)
        first.place_all({0: 0})
        first.save()
        src = first.guests[0]
        dest = start_destination(src, netns=first.fabric.hosts[1].netns, cgroup=first.cg[1],
                                 address=first.fabric.address(1), port=21000)
        src.qmp.execute("migrate-set-parameters", {"max-bandwidth": 2 << 20})  # 2 MiB/s: a long migration
        src.qmp.execute("migrate", {"uri": dest.incoming})
        time.sleep(0.5)
        assert src.qmp.execute("query-migrate")["status"] == "active"
        dest.qmp.close()
        first.close()  # the controller is gone: its QMP connections close, QEMU migrates on

        second = FailoverBackend(spec, world, adopt=True, image=image)
        rec = second.adoption[0]
        assert "cancelled by the restarted controller" in rec["decision"], rec
        assert "stays at the source" in rec["decision"], rec
        assert rec["killed"] == [dest.pid], rec
        assert [f.pid for f in scan_qemu(tag) if f.guest == "vm0"] == [src.pid]
        assert second.guests[0].status() == "running"
        state = second.observe()
        assert int(state.guest_status[0]) == RUNNING and int(state.guest_domain[0]) == 0
        assert second.guests[0].heartbeat.wait_beats(3, timeout=10), "the guest keeps beating at its source"
        assert [r["decision"] for r in second.adoption[1:]] == ["never placed: nothing to adopt"] * 3
        second.close()
    finally:
        for q in (dest, src):
            if q is not None and q.proc is not None and q.proc.poll() is None:
                q.proc.kill()
            if q is not None and q.proc is not None:
                q.proc.wait(timeout=10)
        sweep_world(tag)
    assert not any(leftovers(tag).values()), leftovers(tag)
