#!/usr/bin/env python
"""What the realistic model preset costs: one PlanetLab day under each preset, per policy.

    python benchmarks/bench_models.py [--runs N] [--trace DAY]

Runs the CloudSim engine in process on the bundled day 20110303 (or --trace)
for LR-MMT-1.2, presplit and DVFS, under the ``cloudsim`` and the
``realistic`` presets, N times each (default 5, one at a time), and prints
the median simulate time of each and the ratio realistic / cloudsim (the
issue's bound: at most 2x). Trace loading is outside the timed part.
"""

from __future__ import annotations

import argparse
import statistics
import sys

POLICIES = ("lr-mmt:1.2", "presplit", "dvfs", "thr-mmt:0.8", "mad-mmt:2.5")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, metavar="N")
    parser.add_argument("--trace", default=None, metavar="DAY", help="a PlanetLab day folder (default: bundled)")
    args = parser.parse_args(argv)

    from presplit.model.hardware import preset_fleet
    from presplit.scenarios import bundled_planetlab_day
    from presplit.sim.runner import run_simulation
    from presplit.traces import load_trace

    workload = load_trace(args.trace or bundled_planetlab_day("20110303"))
    print(f"trace {workload.name}: {workload.n_guests} guests, {workload.n_steps} steps; {args.runs} runs each")
    print(f"{'policy':12}{'cloudsim (s)':>14}{'realistic (s)':>15}{'ratio':>8}")
    worst = 0.0
    for policy in POLICIES:
        medians = {}
        for model in ("cloudsim", "realistic"):
            walls = []
            for _ in range(max(1, args.runs)):
                row, _ = run_simulation(workload, policy, fleet=preset_fleet(workload.n_guests, model))
                walls.append(row["wall_s"])
            medians[model] = statistics.median(walls)
        ratio = medians["realistic"] / medians["cloudsim"]
        worst = max(worst, ratio)
        print(f"{policy:12}{medians['cloudsim']:14.2f}{medians['realistic']:15.2f}{ratio:7.2f}x")
    print(f"worst ratio {worst:.2f}x (bound: 2x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
