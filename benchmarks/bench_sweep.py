#!/usr/bin/env python
"""Sequential vs Dask wall time of a 3 x 3 x 3 sweep on the bundled PlanetLab days.

    python benchmarks/bench_sweep.py [--workers 2]

Policies thr-mmt (threshold 0.7, 0.8, 0.9), lr-mmt (safety 1.1, 1.2, 1.3) and
presplit (target 0.85, 0.9, 0.95) on the three full bundled days (898 to
1061 guests, 800 hosts): 27 runs. Each variant starts from an empty results
file; the Dask time includes starting the local cluster. Both results are
checked to be equal (apart from the per-run wall time and memory).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

from presplit.scale.sweep import comparable, expand_runs, run_sweep
from presplit.scenarios import bundled_planetlab_day

DAYS = ("20110303", "20110306", "20110309")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    traces = [(d, str(bundled_planetlab_day(d)), None) for d in DAYS]
    specs = expand_runs(["thr-mmt", "lr-mmt", "presplit"],
                        [("threshold", [0.7, 0.8, 0.9]), ("safety", [1.1, 1.2, 1.3]),
                         ("target", [0.85, 0.9, 0.95])], traces)
    with tempfile.TemporaryDirectory() as tmp:
        seq_out, dask_out = Path(tmp) / "seq.parquet", Path(tmp) / "dask.parquet"
        t0 = time.perf_counter()
        run_sweep(specs, seq_out, sequential=True, progress=False)
        seq_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        run_sweep(specs, dask_out, workers=args.workers, progress=False)
        dask_s = time.perf_counter() - t0
        seq, dsk = pq.read_table(seq_out), pq.read_table(dask_out)
        same = comparable(seq) == comparable(dsk)
        run_s = sum(seq.column("wall_s").to_pylist())
    print(f"{len(specs)} runs (3 policies x 3 values x 3 days, full bundled days)")
    print(f"sequential: {seq_s:6.1f} s  (simulation alone {run_s:.1f} s)")
    print(f"dask, {args.workers} workers: {dask_s:6.1f} s  (speed-up {seq_s / dask_s:.2f}x, cluster start included)")
    print(f"identical results: {same}")


if __name__ == "__main__":
    main()
