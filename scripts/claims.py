"""presplit against LR-MMT-1.2 on PlanetLab days, on a model preset: the claims of the splitting policy.

Usage: python scripts/claims.py [--days DIR ...] [--model cloudsim|realistic] [--jobs N] [--json FILE]

For every day folder (default: the bundled days) it runs ``presplit`` and
``lr-mmt:1.2`` through ``presplit simulate``'s runner and checks:
ESV <= 0.25x LR-MMT, migrations <= 0.3x, SLATAH and overall SLA violation no
higher than LR-MMT's, energy <= 1.25x the fluid bound. Exits 1 if any fails.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from importlib.resources import files
from pathlib import Path

from presplit.cli.simulate_cmd import run_pairs
from presplit.model.hardware import preset_fleet
from presplit.traces import load_trace


def _ratio(a: float, b: float) -> float:
    """a / b, where 0 / 0 is 0 (both perfect) and a / 0 is infinite."""
    if b == 0:
        return 0.0 if a == 0 else float("inf")
    return a / b


def _vs(key: str):
    """presplit's ``key`` over LR-MMT's."""
    return lambda p, b: _ratio(p[key], b[key])


CHECKS = (
    ("esv", "ESV vs LR-MMT", _vs("esv"), 0.25),
    ("migrations", "migrations vs LR-MMT", _vs("migrations"), 0.30),
    ("slatah", "SLATAH vs LR-MMT", _vs("slatah"), 1.0),
    ("overall_sla_violation", "overall SLA vs LR-MMT", _vs("overall_sla_violation"), 1.0),
    ("energy_over_bound", "energy / fluid bound", lambda p, b: p["energy_over_bound"], 1.25),
    ("max_ram_ratio", "memory / RAM (realistic)", lambda p, b: max(p["max_ram_ratio"], b["max_ram_ratio"]), 1.0),
)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    bundled = files("presplit") / "data" / "planetlab"
    ap.add_argument("--days", nargs="*", type=Path, default=None, help="PlanetLab day folders")
    ap.add_argument("--model", choices=("cloudsim", "realistic"), default="cloudsim",
                    help="model preset (the memory check applies to realistic only)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    days = args.days or sorted(Path(str(bundled)).iterdir())
    workloads = [(load_trace(d), Path(d).name) for d in days]
    factory = functools.partial(preset_fleet, model=args.model)
    rows = run_pairs(workloads, ["presplit", "lr-mmt:1.2"], fleet_factory=factory, jobs=args.jobs)
    checks = [c for c in CHECKS if args.model == "realistic" or c[0] != "max_ram_ratio"]
    by = {(r["trace"], r["policy"]): r for r in rows}
    failed = 0
    report = []
    print(f"{'day':10} {'check':24} {'presplit':>10} {'lr-mmt':>10} {'ratio':>7} {'limit':>6}  verdict")
    for day in [Path(d).name for d in days]:
        p, b = by[(day, "presplit")], by[(day, "lr-mmt:1.2")]
        for key, label, ratio, limit in checks:
            value = ratio(p, b)
            ok = value <= limit
            failed += not ok
            report.append({"day": day, "check": label, "ratio": value, "limit": limit, "ok": ok,
                           "presplit": p[key], "lr-mmt": b[key]})
            print(f"{day:10} {label:24} {p[key]:10.4g} {b[key]:10.4g} {value:7.3f} {limit:6.2f}  "
                  f"{'PASS' if ok else 'FAIL'}")
    if args.json:
        args.json.write_text(json.dumps({"checks": report, "runs": rows}, indent=2))
    for day in [Path(d).name for d in days]:
        p, b = by[(day, "presplit")], by[(day, "lr-mmt:1.2")]
        print(f"{day}: energy over the bound of the demand the model serves (CloudSim deallocates idle "
              f"guests): presplit {p['energy_over_served_bound']:.3f}, lr-mmt {b['energy_over_served_bound']:.3f}")
    print(f"\n{len(report) - failed} PASS, {failed} FAIL")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
