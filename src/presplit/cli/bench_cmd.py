"""``presplit bench tick``: the control plane's cost per tick at a given fleet size."""

from __future__ import annotations

from pathlib import Path

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def bench() -> None:
    """Measure presplit at fleet scale."""


@bench.command("tick")
@click.option("--guests", type=click.IntRange(min=1), required=True, metavar="N",
              help="Guests in the synthetic fleet. Example: --guests 100000")
@click.option("--hosts", type=click.IntRange(min=1), required=True, metavar="M",
              help="Hosts (16 cores, memory sized for ~65 % fill). Example: --hosts 10000")
@click.option("--from-trace", "trace", type=click.Path(path_type=Path), default=None, metavar="PATH",
              help="Trace whose series the guests replay (resampled). Default: the bundled PlanetLab day 20110303.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the synthetic fleet.")
@click.option("--io", is_flag=True, help="Services carry guest IO and guests do IO, so the IO steps run too.")
@click.option("--json", "json_out", type=click.Path(allow_dash=True), default=None, metavar="FILE|-",
              help="Also write the figures as one JSON object; '-' writes it to stdout instead of the line. "
                   "Example: --json tick.json")
def tick(guests: int, hosts: int, trace: Path | None, seed: int, io: bool, json_out: str | None) -> None:
    """Time forecast + propose + order of one control tick of the presplit policy.

    Builds a running fleet of N guests on M hosts whose demand replays real
    series, runs 12 ticks to build forecast history, then times 3 ticks in
    which 0.1 % of the guests arrive and 1 % of the hosts have a patch window
    opening; reports the slowest of them. Applying the actions is not counted.

    Example: presplit bench tick --guests 10000 --hosts 1000 --json tick.json
    """
    from importlib.resources import files

    from presplit.cli.simulate_cmd import check_json_file, check_seed, is_stdout, load_user_trace, write_json
    from presplit.errors import InputError
    from presplit.scale.tick import build_fleet, measure_tick

    check_json_file(json_out)  # before the (long) measurement
    check_seed(seed)
    source_path = trace or Path(str(files("presplit") / "data" / "planetlab" / "20110303"))
    source = load_user_trace(source_path, "--from-trace")
    if "cpu" in source.resources and not source.resource("cpu").any():
        raise InputError(f"--from-trace: {source_path}: every guest's CPU is 0 in every step; expected a trace "
                         "with some CPU demand to replay")
    state, workload = build_fleet(guests, hosts, source, seed=seed, io=io)
    cost = measure_tick(state, workload)
    row = cost.as_dict()
    keys = ("guests", "hosts", "tick_s", "forecast_s", "propose_s", "order_s", "peak_rss_mb")
    if not is_stdout(json_out):
        click.echo("  ".join(f"{k}={row[k]:.4g}" if isinstance(row[k], float) else f"{k}={row[k]}" for k in keys)
                   + f"  actions={row['actions']}")
    if json_out:
        write_json(json_out, {k: row[k] for k in (*keys, "actions")})
