"""End to end on real QEMU guests: 2 hosts (namespaces), 4 guests, every action kind, heartbeats.

``run_demo`` is what ``presplit demo qemu`` runs: guests booted in their
domains, then the presplit domain policy in the ControlLoop on a wall clock
(3 s ticks) decides: ahead of host 0's patch window it splits the host,
patches the new domain, re-pins the guest, patches the emptied domain and
merges; when vm2's CPU ramp makes host 1's forecast cross ``relief`` it
live-migrates vm2 to host 0. Every plan is journaled and applied by the real
Applier against the QemuBackend; the test checks the actions carry the
policy's reasons. The guests' own
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


def test_presplit_policy_does_every_action_kind_and_guests_keep_beating(image, stale_swept, tmp_path, capsys):
    from presplit.demo.qemu import run_demo

    t0 = time.monotonic()
    out = tmp_path / "summary.json"
    lines: list[str] = []
    summary = run_demo(json_path=out, image=image, echo=lines.append, view_every_s=6.0, max_s=150.0)
    wall = time.monotonic() - t0
    assert json.loads(out.read_text())["guests"] == summary["guests"]
    log = "\n".join(lines[-60:])

    # every kind happened, decided by the policy (not scripted), every plan succeeded
    assert summary["splits"] >= 1 and summary["intra_host_moves"] >= 1 and summary["patches"] >= 1, log
    assert summary["merges"] >= 1 and len(summary["migrations"]) >= 1, log
    assert summary["phases"] and all(p["status"] == "succeeded" for p in summary["phases"]), summary["phases"]
    acts = summary["actions"]
    assert acts and all(a["status"] == "succeeded" for a in acts), acts

    def reasons(kind):
        return [a["reason"] for a in acts if a["kind"] == kind]

    assert any("patch window" in r for r in reasons("SplitDomain")), acts
    assert any("patch" in r and "re-pin" in r for r in reasons("MoveGuest")), acts
    assert sum("patch" in r for r in reasons("PatchDomain")) >= 2, acts  # the new domain, then the emptied one
    assert any("patched" in r and "merge" in r for r in reasons("MergeDomains")), acts
    assert any("forecast" in r and "crosses" in r for r in reasons("MigrateGuest")), acts

    for m in summary["migrations"]:
        assert m["status"] == "completed" and m["total_ms"] > 0 and 0 <= m["downtime_ms"] < 1000, m
    assert any(m["guest"] == "vm2" for m in summary["migrations"]), "the ramping guest moved"
    assert len(summary["guests"]) == 4
    for g in summary["guests"]:
        assert g["running"] and g["qemu_processes_now"] == 1, g  # exactly once, and running
        assert g["heartbeats"] > 100, g
        assert g["max_heartbeat_gap_s"] < 1.0, g
    with capsys.disabled():
        print(f"\ne2e (policy): {wall:.1f} s, {summary['ticks']} ticks; splits={summary['splits']} "
              f"moves={summary['intra_host_moves']} patches={summary['patches']} merges={summary['merges']}; gaps "
              + ", ".join(f"{g['id']}={g['max_heartbeat_gap_s']:.3f}s" for g in summary["guests"])
              + "; migrations " + ", ".join(f"{m['guest']} total={m['total_ms']:.0f}ms down={m['downtime_ms']:.0f}ms"
                                            for m in summary["migrations"]))
    # everything the demo started is gone (the tests' own module fabric is not the demo's)
    assert not any(leftovers(run_tag(), fabric_only=True).values()), leftovers(run_tag(), fabric_only=True)


@pytest.mark.parametrize("mode,marker", [("policy", ">>> "), ("scripted", ">>> migrate")])
def test_ctrl_c_of_the_demo_leaves_nothing(image, stale_swept, mode, marker):
    args = ["demo", "qemu"] + (["--scripted", "--hold", "1"] if mode == "scripted" else [])
    child = subprocess.Popen([sys.executable, "-c", CLI, *args],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    tag = run_tag(child.pid)
    try:
        seen = []
        deadline = time.monotonic() + 90
        for line in child.stdout:  # interrupt in the middle of the run, guests running
            seen.append(line)
            if line.startswith(marker) or time.monotonic() > deadline:
                break
        assert any(line.startswith(marker) for line in seen), "".join(seen) + child.stderr.read()
        assert find_qemu_processes(tag) and list_namespaces(tag), "the demo should be running now"
        child.send_signal(signal.SIGINT)
        child.communicate(timeout=60)
        assert child.returncode == 130, child.returncode
        assert not any(leftovers(tag).values()), leftovers(tag)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
