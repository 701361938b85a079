"""Wall time of ``presplit forecast backtest`` with its default models on the bundled Bitbrains week.

    python benchmarks/bench_backtest.py [--runs 3] [--resample 500] [--models default] [--resource cpu]

Runs the real command in a fresh process (``presplit forecast backtest --trace
WEEK --horizon 12 --json FILE``), so the figure includes starting Python,
importing presplit and reading the parquet, and prints for each run the whole
process wall time, the load average before it, and from the JSON each model's
series per second (fit + predict, the ``series_per_s`` column) and seconds.
``--resample N`` also times a fleet of N VMs made from the week by
``presplit fleet generate --guests N --seed 1`` (whole VM series drawn with
replacement, shifted by at most 3 steps, 5 % jitter), to show how the time
scales with the fleet.  The bar the issue sets: the defaults on a week of
~500 VMs in at most 3 minutes on this 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from importlib.resources import files
from pathlib import Path

WEEK = Path(str(files("presplit") / "data" / "bitbrains" / "rnd_2013-7_first7d.parquet"))


def presplit(*args: str, **kw) -> subprocess.CompletedProcess:
    """The installed ``presplit`` command (``python -m presplit.cli.main`` if it is not on PATH)."""
    exe = shutil.which("presplit")
    cmd = [exe, *args] if exe else [sys.executable, "-m", "presplit.cli.main", *args]
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def resample(guests: int, out: Path, seed: int = 1) -> Path:
    """A fleet of ``guests`` VMs resampled from the week; returns its trace file."""
    presplit("fleet", "generate", "--guests", str(guests), "--hosts", str(guests), "--from-trace", str(WEEK),
             "--seed", str(seed), "--out", str(out))
    return out / "trace.parquet"


def run_backtest(trace: Path, models: str, resource: str, horizon: int, tmp: Path) -> tuple[float, list[dict]]:
    out = tmp / "bt.json"
    t0 = time.perf_counter()
    presplit("forecast", "backtest", "--trace", str(trace), "--resource", resource, "--horizon", str(horizon),
             "--models", models, "--json", str(out))
    wall = time.perf_counter() - t0
    return wall, json.loads(out.read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3, help="runs per trace (the table shows each)")
    ap.add_argument("--models", default="default", help="--models of the backtest (default: its default set)")
    ap.add_argument("--resource", default="cpu")
    ap.add_argument("--horizon", type=int, default=12)
    ap.add_argument("--resample", type=int, default=0, metavar="N", help="also time a resampled fleet of N VMs")
    a = ap.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        traces = [("bundled week", WEEK)]
        if a.resample:
            traces.append((f"resampled {a.resample} VMs (seed 1)", resample(a.resample, tmp / "fleet")))
        cmd = (f"presplit forecast backtest --trace TRACE --resource {a.resource} --horizon {a.horizon} "
               f"--models {a.models} --json FILE")
        print(f"command: {cmd}")
        for label, trace in traces:
            for i in range(a.runs):
                load = os.getloadavg()
                wall, rows = run_backtest(trace, a.models, a.resource, a.horizon, tmp)
                done = [r for r in rows if not r.get("skipped")]
                busy = sum(r.get("seconds") or 0.0 for r in done)
                print(f"\n{label}, run {i + 1}: whole process {wall:.1f} s (models {busy:.1f} s), "
                      f"{len(done)} models, load average before {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}")
                for r in rows:
                    if r.get("skipped"):
                        print(f"  {r['model']:30s} skipped: {r['skipped']}")
                        continue
                    sps = r.get("series_per_s") or float("nan")
                    print(f"  {r['model']:30s} {sps:12,.0f} series/s  {r.get('seconds') or 0.0:7.2f} s  "
                          f"pinball_0.95 {r.get('pinball_0.95', float('nan')):.4f}")


if __name__ == "__main__":
    main()
