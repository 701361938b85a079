"""End to end on real QEMU guests: 2 hosts (namespaces), 4 guests, every action kind, heartbeats.

``run_demo`` is what ``presplit demo qemu`` runs: guests booted in their
domains, then a scripted plan -- split, intra-host move, cross-host live
migration, patch, recombination, migration back -- each phase journaled and
applied by the real Applier against the QemuBackend. The guests' own
heartbeats (counters printed on their serial consoles every 200 ms,
timestamped by the host) show that no guest stopped for more than 1 s, and
the process table that each guest ends running exactly once. Afterwards, and
after a Ctrl-C of ``presplit demo qemu``, nothing may be left: no QEMU
process, namespace or cgroup of the run.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from presplit.backends.qemu import cgroups
from presplit.backends.qemu.backend import cpu_group_dirs
from presplit.backends.qemu.cleanup import find_qemu_processes, list_namespaces, run_tag

pytestmark = pytest.mark.qemu

CLI = "from presplit.cli.main import cli; cli(prog_name='presplit')"


def leftovers(tag: str, fabric_only: bool = False) -> dict:
    ns = list_namespaces(tag)
    return {
        "qemu": find_qemu_processes(tag),
        "netns": [n for n in ns if "-q" in n] if fabric_only else ns,
        "cgroups": [p for p in cgroups.host_dirs() if p.name.startswith(f"{tag}-")
                    and (not fabric_only or "-q" in p.name)],
        "cpu_groups": cpu_group_dirs(tag),
    }


def test_scenario_with_every_action_kind_keeps_guests_beating(image, stale_swept, tmp_path, capsys):
    from presplit.backends.qemu.demo import run_demo

    t0 = time.monotonic()
    out = tmp_path / "summary.json"
    lines: list[str] = []
    summary = run_demo(json_path=out, hold_s=1.0, image=image, echo=lines.append, view_every_s=5.0)
    wall = time.monotonic() - t0
    assert json.loads(out.read_text())["guests"] == summary["guests"]

    assert summary["splits"] >= 1 and summary["intra_host_moves"] >= 1 and summary["patches"] >= 1
    assert summary["merges"] >= 1 and len(summary["migrations"]) >= 1
    assert all(p["status"] == "succeeded" for p in summary["phases"])
    for m in summary["migrations"]:
        assert m["status"] == "completed" and m["total_ms"] > 0 and 0 <= m["downtime_ms"] < 1000, m
    assert len(summary["guests"]) == 4
    for g in summary["guests"]:
        assert g["running"] and g["qemu_processes_now"] == 1, g  # exactly once, and running
        assert g["heartbeats"] > 20, g
        assert g["max_heartbeat_gap_s"] < 1.0, g
    assert summary["guests"][0]["qemu_processes_used"] == 3, "vm0 lived in 3 QEMUs (2 migrations)"
    with capsys.disabled():
        print(f"\ne2e: {wall:.1f} s; gaps " + ", ".join(f"{g['id']}={g['max_heartbeat_gap_s']:.3f}s"
                                                        for g in summary["guests"]) +
              "; migrations " + ", ".join(f"{m['guest']} total={m['total_ms']:.0f}ms down={m['downtime_ms']:.0f}ms"
                                          for m in summary["migrations"]))
    # everything the demo started is gone (the tests' own module fabric is not the demo's)
    assert not any(leftovers(run_tag(), fabric_only=True).values()), leftovers(run_tag(), fabric_only=True)


def test_ctrl_c_of_the_demo_leaves_nothing(image, stale_swept):
    child = subprocess.Popen([sys.executable, "-c", CLI, "demo", "qemu", "--hold", "1"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    tag = run_tag(child.pid)
    try:
        seen = []
        deadline = time.monotonic() + 90
        for line in child.stdout:  # interrupt in the middle of the plan, guests running
            seen.append(line)
            if line.startswith(">>> migrate") or time.monotonic() > deadline:
                break
        assert any(line.startswith(">>> migrate") for line in seen), "".join(seen) + child.stderr.read()
        assert find_qemu_processes(tag) and list_namespaces(tag), "the demo should be running now"
        child.send_signal(signal.SIGINT)
        child.communicate(timeout=60)
        assert child.returncode == 130, child.returncode
        assert not any(leftovers(tag).values()), leftovers(tag)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
