#!/usr/bin/env python
"""Compare the simulator with CloudSim 3.0.3 on every (day, policy) row of the reference CSV.

    python scripts/parity.py [--reference CSV] [--days DIR ...] [--json out.json] [--jobs N]

Tolerances (relative to CloudSim): energy and migrations 5 %, SLATAH and PDM
10 %; a metric CloudSim reports as exactly 0 must be 0. Exits 1 on any FAIL,
2 on bad input.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_REFERENCE = REPO_ROOT.parent / "shared" / "data" / "cloudsim-reference.csv"
TOLERANCE = {"energy_kwh": 0.05, "migrations": 0.05, "slatah": 0.10, "pdm": 0.10}
REFERENCE_FLOATS = ("energy_kwh", "slatah", "pdm", "slav", "esv", "overall_sla_violation", "wall_s")


def fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def read_reference(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    needed = {"day", "policy", *TOLERANCE}
    if not rows or not needed <= set(rows[0]):
        fail(f"{path}: expected a CSV with columns {', '.join(sorted(needed))}")
    for row in rows:
        for key in REFERENCE_FLOATS:
            if key in row:
                row[key] = float(row[key])
        row["migrations"] = int(row["migrations"])
        if "max_rss_kb" in row:
            row["max_rss_kb"] = int(row["max_rss_kb"])
    return rows


def rel_error(ours: float, theirs: float) -> float:
    if theirs == 0:
        return 0.0 if ours == 0 else math.inf
    return (ours - theirs) / abs(theirs)


def compare(ours: dict, ref: dict) -> tuple[dict, bool]:
    errors = {key: rel_error(float(ours[key]), float(ref[key])) for key in TOLERANCE}
    ok = all(abs(errors[key]) <= tol for key, tol in TOLERANCE.items())
    return errors, ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", type=Path, default=None, metavar="CSV",
                        help=f"CloudSim reference CSV (default: {DEFAULT_REFERENCE})")
    parser.add_argument("--days", type=Path, nargs="+", metavar="DIR",
                        help="PlanetLab day folders, matched to the CSV's day column by folder name "
                             "(default: the bundled days)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write ours, CloudSim's and the errors as JSON")
    parser.add_argument("--jobs", type=int, default=2, metavar="N", help="parallel processes (default: 2)")
    args = parser.parse_args(argv)

    reference_path = args.reference or DEFAULT_REFERENCE
    if not reference_path.is_file():
        fail(f"reference CSV not found at {reference_path}; pass it with --reference PATH "
             f"(e.g. --reference /work/shared/data/cloudsim-reference.csv)")
    reference = read_reference(reference_path)

    from rich.console import Console
    from rich.table import Table

    from presplit.cli.simulate_cmd import run_tasks
    from presplit.policies import PolicyError, make_policy
    from presplit.scenarios import bundled_planetlab_day, resolve_scenario
    from presplit.traces import TraceError, read_planetlab

    day_names = list(dict.fromkeys(r["day"] for r in reference))
    if args.days:
        folders = {p.name or p.resolve().name: p for p in args.days}
    else:
        folders = {d: bundled_planetlab_day(d) for d in day_names}
    missing = [d for d in day_names if d not in folders or not folders[d].is_dir()]
    if missing:
        fail(f"no folder for day(s) {', '.join(missing)} of the reference; pass them with --days DIR ...")
    for policy in dict.fromkeys(r["policy"] for r in reference):
        try:
            make_policy(policy)
        except PolicyError as exc:
            fail(f"{reference_path}: {exc}")

    workloads, index = [], {}
    for day in day_names:
        try:
            workloads.append((read_planetlab(folders[day]), day))
        except TraceError as exc:
            fail(str(exc))
        index[day] = len(workloads) - 1

    fleet_factory, _ = resolve_scenario("cloudsim")
    tasks = [(index[r["day"]], r["policy"]) for r in reference]
    ours = run_tasks(workloads, tasks, fleet_factory=fleet_factory, jobs=max(1, args.jobs),
                     description="parity runs")

    table = Table(title=f"presplit vs CloudSim 3.0.3 ({reference_path.name})",
                  caption="rel. error = (ours - CloudSim) / CloudSim; tolerance 5 % energy and migrations, "
                          "10 % SLATAH and PDM (CloudSim's ratio-of-sums definitions)",
                  caption_justify="left")
    for name in ("day", "policy", "energy ours", "CloudSim", "err", "migr. ours", "CloudSim", "err",
                 "SLATAH ours", "CloudSim", "err", "PDM ours", "CloudSim", "err", "wall ours", "CloudSim",
                 "status"):
        table.add_column(name, justify="left" if name in ("day", "policy") else "right", no_wrap=True)

    report, n_fail = [], 0
    for ref, row in zip(reference, ours, strict=True):
        errors, ok = compare(row, ref)
        n_fail += not ok

        def err(key):
            e = errors[key]
            text = f"{e:+.1%}" if math.isfinite(e) else "inf"
            return text if abs(e) <= TOLERANCE[key] else f"[red]{text}[/red]"

        table.add_row(
            ref["day"], ref["policy"],
            f"{row['energy_kwh']:.2f}", f"{ref['energy_kwh']:.2f}", err("energy_kwh"),
            f"{row['migrations']:,}", f"{ref['migrations']:,}", err("migrations"),
            f"{row['slatah']:.4%}", f"{ref['slatah']:.4%}", err("slatah"),
            f"{row['pdm']:.4%}", f"{ref['pdm']:.4%}", err("pdm"),
            f"{row['wall_s']:.2f}", f"{ref['wall_s']:.2f}" if "wall_s" in ref else "-",
            "[green]PASS[/green]" if ok else "[bold red]FAIL[/bold red]")
        report.append({"day": ref["day"], "policy": ref["policy"], "status": "PASS" if ok else "FAIL",
                       "ours": row, "cloudsim": ref,
                       "rel_error": {k: (v if math.isfinite(v) else None) for k, v in errors.items()}})

    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, 200))
    console.print(table)
    console.print(f"{len(reference) - n_fail} PASS, {n_fail} FAIL of {len(reference)} rows")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 1 if n_fail else 0


if __name__ == "__main__":
    sys.exit(main())
