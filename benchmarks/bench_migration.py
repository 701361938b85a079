"""Live-migration figures of the real backend, as a markdown table.

Boots one guest per configuration (RAM size x workload) in namespace h0 and
migrates it back and forth between two network namespaces (h0 <-> h1, each
QEMU born in its host's cgroup domain) ``--runs`` times. Prints, per
configuration, QEMU's total time and downtime (median, min, max), bytes
transferred, the copy-once lower bound (guest RAM / bandwidth cap; an idle
guest beats it because zero pages travel as flags), and the largest gap
between guest heartbeats the host observed across all runs.

    python benchmarks/bench_migration.py [--runs 5] [--sizes 128,256] [--bandwidth-mib 128]

Needs root and ``scripts/setup-qemu.sh`` (run it first).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from presplit.backends.qemu.cgroups import CgroupDomain
from presplit.backends.qemu.cleanup import Teardown, cleanup_stale
from presplit.backends.qemu.guest import GuestConfig, QemuGuest, max_gap, merged_beats
from presplit.backends.qemu.guest_image import Workload, guest_image
from presplit.backends.qemu.migration import MIB, MigrationRecord, live_migrate
from presplit.backends.qemu.netns import Fabric


def _spread(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values):.0f} ({min(values):.0f}-{max(values):.0f})"


def bench_one(td: Teardown, fabric: Fabric, domains: list[CgroupDomain], *, ram_mib: int,
              workload: Workload, runs: int, bandwidth: int) -> tuple[list[MigrationRecord], float]:
    image = guest_image()
    guest = QemuGuest(GuestConfig(name=f"b{ram_mib}{workload.mode}", memory_mib=ram_mib, image=image,
                                  workload=workload, netns=fabric.hosts[0].netns, cgroup=domains[0]),
                      teardown=td).start()
    guest.heartbeat.wait_beats(5, timeout=10)  # let the workload get going
    monitors = [guest.heartbeat]
    records = []
    here = 0
    for i in range(runs):
        there = 1 - here
        result = live_migrate(guest, netns=fabric.hosts[there].netns, cgroup=domains[there],
                              address=fabric.address(there), port=4444 + i, bandwidth_bytes=bandwidth,
                              deadline_s=60, teardown=td)
        records.append(result.record)
        if not result.record.succeeded:
            print(f"  run {i}: {result.record.status}: {result.record.reason}", file=sys.stderr)
            continue
        guest, here = result.guest, there
        monitors.append(guest.heartbeat)
        guest.heartbeat.wait_beats(3, timeout=5)  # settle before the next hop
    gap = max_gap(merged_beats(*monitors))
    guest.stop()
    return records, gap


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sizes", default="128,256", help="guest RAM sizes in MiB")
    parser.add_argument("--bandwidth-mib", type=int, default=128, help="cap in MiB/s (QEMU's default: 128)")
    parser.add_argument("--dirty-fraction", type=float, default=0.5,
                        help="share of guest RAM the dirtying workload rewrites in a loop")
    args = parser.parse_args(argv)
    bandwidth = args.bandwidth_mib * MIB
    sizes = [int(s) for s in args.sizes.split(",")]

    cleanup_stale()
    rows = []
    t0 = time.monotonic()
    with Teardown() as td:
        fabric = Fabric(2, teardown=td).create()
        domains = []
        for h in fabric.hosts:
            dom = CgroupDomain.create(h.name, "bench", cpus="0-1")
            td.add(f"cgroup {h.name}", dom.remove)
            domains.append(dom)
        for ram in sizes:
            for workload in (Workload.idle(), Workload.dirty(int(ram * args.dirty_fraction))):
                label = "idle" if workload.mode == "idle" else f"dirtying {workload.dirty_mib} MiB"
                print(f"{ram} MiB, {label}: {args.runs} migrations ...", file=sys.stderr)
                records, gap = bench_one(td, fabric, domains, ram_mib=ram, workload=workload,
                                         runs=args.runs, bandwidth=bandwidth)
                ok = [r for r in records if r.succeeded]
                rows.append((
                    ram, label, f"{len(ok)}/{len(records)}",
                    _spread([r.total_ms for r in ok if r.total_ms is not None]),
                    _spread([r.downtime_ms for r in ok if r.downtime_ms is not None]),
                    _spread([r.transferred_bytes / 1e6 for r in ok]),
                    f"{1000 * ram * MIB / bandwidth:.0f}",
                    f"{1000 * gap:.0f}",
                ))
    elapsed = time.monotonic() - t0

    print(f"\nLive migration between two network namespaces, TCG guests, cap {args.bandwidth_mib} MiB/s, "
          f"{args.runs} runs each ({elapsed:.0f} s in all). Figures: median (min-max).\n")
    print("| guest RAM (MiB) | workload | completed | total (ms) | downtime (ms) | transferred (MB) "
          "| RAM/cap bound (ms) | max heartbeat gap (ms) |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(str(c) for c in row) + " |")
    if td.errors:
        print(f"\nteardown errors: {td.errors}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
