"""``presplit report``: a self-contained HTML report from sweep results (see presplit.scale.report)."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("report", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("results", type=click.Path(path_type=Path, dir_okay=False), metavar="RESULTS.parquet")
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), default=Path("report.html"),
              show_default=True, metavar="FILE", help="HTML file to write. Example: --out report.html")
def report(results: Path, out: Path) -> None:
    """Write one HTML page (inline figures and CSS, no external links) from `presplit sweep` results.

    It shows energy, SLA violation and migrations per policy and day, energy
    against SLAV per trace with the Pareto front marked, the key metrics
    against each swept parameter, active hosts over time, the distribution of
    migrations per guest, and the comparison with the CloudSim reference runs
    and the fluid lower bound.

    \b
    Example:
      presplit report results.parquet --out report.html
    """
    from presplit.cli.simulate_cmd import check_output_file
    from presplit.scale.report import write_report

    check_output_file(out, "--out")  # before reading the results
    n = write_report(results, out)  # a ReportError (bad results file) is one line naming it
    click.echo(f"wrote {out} ({n} runs)", err=True)
