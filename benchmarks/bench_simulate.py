#!/usr/bin/env python
"""Whole-process cost of ``presplit simulate`` on day 20110303 with LR-MMT-1.2, against CloudSim.

    python benchmarks/bench_simulate.py [--runs N]

Runs ``presplit simulate --trace <bundled 20110303> --policy lr-mmt:1.2 --json TMP``
as a subprocess N times (default 5), one at a time. Wall time is measured
around the whole process (interpreter start, imports, trace loading,
simulation, output); peak memory is the process's own peak RSS as written to
the JSON (``peak_rss_mb``, from getrusage), cross-checked with
getrusage(RUSAGE_CHILDREN).ru_maxrss. CloudSim's figures are those of the same
row of the reference CSV, measured on this machine kind (run alone).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# From /work/shared/data/cloudsim-reference.csv, row (20110303, lr-mmt:1.2).
CLOUDSIM_WALL_S = 18.06
CLOUDSIM_MAX_RSS_KB = 1_554_656
POLICY = "lr-mmt:1.2"


def presplit_command() -> list[str]:
    script = Path(sys.executable).with_name("presplit")
    if script.exists():
        return [str(script)]
    found = shutil.which("presplit")
    if found:
        return [found]
    return [sys.executable, "-c", "from presplit.cli.main import cli; cli()"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, metavar="N", help="number of runs (default: 5)")
    args = parser.parse_args(argv)

    from presplit.scenarios import bundled_planetlab_day

    trace = bundled_planetlab_day("20110303")
    walls, sim_walls, rss_mb = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        cmd = [*presplit_command(), "simulate", "--trace", str(trace), "--policy", POLICY, "--json", str(out)]
        print("command:", " ".join(cmd))
        for i in range(max(1, args.runs)):
            out.unlink(missing_ok=True)
            started = time.perf_counter()
            proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            wall = time.perf_counter() - started
            if proc.returncode != 0:
                print(proc.stderr, file=sys.stderr)
                print(f"run {i + 1} failed with exit code {proc.returncode}", file=sys.stderr)
                return 1
            (row,) = json.loads(out.read_text())
            walls.append(wall)
            sim_walls.append(row["wall_s"])
            rss_mb.append(row["peak_rss_mb"])
            print(f"run {i + 1}: process {wall:6.2f} s, simulate {row['wall_s']:6.2f} s, "
                  f"peak RSS {row['peak_rss_mb']:7.1f} MB, energy {row['energy_kwh']:.2f} kWh, "
                  f"{row['migrations']} migrations")
    children_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0

    median, best = statistics.median(walls), min(walls)
    peak = max(rss_mb)
    cloudsim_mb = CLOUDSIM_MAX_RSS_KB / 1024.0
    print()
    print(f"{'':28}{'presplit':>12}{'CloudSim':>12}{'CloudSim/ours':>15}")
    print(f"{'process wall, median (s)':28}{median:12.2f}{CLOUDSIM_WALL_S:12.2f}{CLOUDSIM_WALL_S / median:14.1f}x")
    print(f"{'process wall, min (s)':28}{best:12.2f}{CLOUDSIM_WALL_S:12.2f}{CLOUDSIM_WALL_S / best:14.1f}x")
    print(f"{'in-process simulate, median':28}{statistics.median(sim_walls):12.2f}{'':12}"
          f"{CLOUDSIM_WALL_S / statistics.median(sim_walls):14.1f}x")
    print(f"{'peak RSS (MB)':28}{peak:12.1f}{cloudsim_mb:12.1f}{cloudsim_mb / peak:14.1f}x")
    print(f"(getrusage RUSAGE_CHILDREN max RSS over all runs: {children_mb:.1f} MB; "
          f"CloudSim's {CLOUDSIM_MAX_RSS_KB:,} KB is the JVM's whole-process peak)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
