"""``presplit fleet generate``: a larger scenario resampled from a real trace (see presplit.scale.synthetic)."""

from __future__ import annotations

from pathlib import Path

import click


@click.group("fleet", context_settings={"help_option_names": ["-h", "--help"]})
def fleet() -> None:
    """Build synthetic fleets for large-scale what-if runs."""


@fleet.command("generate")
@click.option("--guests", type=int, required=True, metavar="N",
              help="Number of synthetic guests. Example: --guests 5000")
@click.option("--hosts", type=int, required=True, metavar="M",
              help="Number of hosts the scenario runs on (CloudSim G4/G5 mix). Example: --hosts 4000")
@click.option("--from-trace", "source", required=True, metavar="PATH",
              help="Real trace to resample: a PlanetLab day folder, Bitbrains .csv (or folder) or a "
                   "long .parquet/.csv. Example: --from-trace data/planetlab/20110303")
@click.option("--seed", type=int, default=0, show_default=True, metavar="S",
              help="Seed; the same seed and inputs give identical files. Example: --seed 7")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), default=None, metavar="DIR",
              help="New folder to write (default: fleet-<N>g-<M>h-s<S>). Example: --out big-day")
@click.option("--max-shift", type=int, default=3, show_default=True, metavar="STEPS",
              help="Largest circular time shift, in trace steps, either way.")
@click.option("--jitter", type=float, default=0.05, show_default=True, metavar="SIGMA",
              help="Standard deviation of the per-sample multiplicative noise.")
@click.option("--json", "json_path", type=click.Path(allow_dash=True), default=None,
              metavar="FILE|-",
              help="Also write what was generated (out and the manifest: guests, hosts, steps, seed, ...) as JSON; "
                   "'-' writes it to stdout instead of the summary line. Example: --json -")
def generate(guests: int, hosts: int, source: str, seed: int, out: Path | None, max_shift: int,
             jitter: float, json_path: str | None) -> None:
    """Resample whole real guest series (with a small time shift and jitter) into a scenario folder.

    The folder holds manifest.json (hosts, guests, seed), the trace (a PlanetLab
    day folder, or trace.parquet for multi-resource traces) and provenance.csv.
    Pass the folder to `presplit sweep --trace`.

    \b
    Example:
      presplit fleet generate --guests 5000 --hosts 4000 --from-trace data/planetlab/20110303 --seed 1
    """
    from presplit.cli.simulate_cmd import check_json_file, is_stdout, load_user_trace, write_json
    from presplit.errors import InputError
    from presplit.scale.synthetic import check_fleet, check_output_folder, resample, write_scenario

    if guests < 1:
        raise InputError(f"--guests: expected a positive number of guests, got {guests}")
    if hosts < 1:
        raise InputError(f"--hosts: expected a positive number of hosts, got {hosts}")
    if seed < 0:
        raise InputError(f"--seed: expected a seed >= 0, got {seed}")
    out = out or Path(f"fleet-{guests}g-{hosts}h-s{seed}")
    check_output_folder(out)
    check_json_file(json_path)
    workload = load_user_trace(source, "--from-trace")
    # FleetError (an InputError) names the option or the guest and what was expected; nothing is written.
    check_fleet(workload, guests, hosts, source_path=source)
    result = resample(workload, guests, seed=seed, max_shift=max_shift, jitter=jitter)
    manifest = write_scenario(out, result, workload, hosts=hosts, seed=seed, source_path=source,
                              max_shift=max_shift, jitter=jitter)
    line = (f"wrote {manifest['guests']} guests x {manifest['steps']} steps for {manifest['hosts']} hosts "
            f"({manifest['trace_format']}) to {out}")
    click.echo(line, err=is_stdout(json_path))
    if json_path is not None:
        write_json(json_path, {"out": str(out), **manifest})
