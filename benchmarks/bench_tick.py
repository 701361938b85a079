"""Per-tick cost of the control plane at 1k, 10k and 100k guests (issue: scale).

Usage: python benchmarks/bench_tick.py [--sizes 1000:100,10000:1000,100000:10000]

Each size runs ``presplit bench tick`` in its own process (so peak memory is
that size's), prints the table and the exponent of a least-squares fit of
log(tick_s) on log(guests): 1.0 is linear growth.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000:100,10000:1000,100000:10000", help="GUESTS:HOSTS,...")
    ap.add_argument("--io", action="store_true", help="services carry IO: the policy's IO steps run too")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for spec in args.sizes.split(","):
            guests, hosts = (int(x) for x in spec.split(":"))
            out = Path(tmp) / f"{guests}.json"
            subprocess.run([sys.executable, "-m", "presplit.cli.main", "bench", "tick", "--guests", str(guests),
                            "--hosts", str(hosts), "--json", str(out), *(["--io"] if args.io else [])],
                           check=True, stdout=subprocess.DEVNULL)
            rows.append(json.loads(out.read_text()))
    print(f"{'guests':>8} {'hosts':>7} {'tick_s':>8} {'forecast_s':>10} {'propose_s':>9} {'order_s':>8} "
          f"{'actions':>7} {'peak_rss_mb':>11}")
    for r in rows:
        print(f"{r['guests']:>8} {r['hosts']:>7} {r['tick_s']:>8.4f} {r['forecast_s']:>10.4f} {r['propose_s']:>9.4f} "
              f"{r['order_s']:>8.4f} {r['actions']:>7} {r['peak_rss_mb']:>11.0f}")
    if len(rows) >= 2:
        x = np.log([r["guests"] for r in rows])
        y = np.log([r["tick_s"] for r in rows])
        slope = np.polyfit(x, y, 1)[0]
        print(f"fitted exponent of tick_s in guests: {slope:.2f} (1.0 = linear)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
