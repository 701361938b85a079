"""The ``presplit`` command group; subcommands register themselves here."""

from __future__ import annotations

import click

from presplit import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="presplit")
def cli() -> None:
    """presplit: predictive host domain splitting.

    Forecast every guest's demand, split hosts into smaller domains before it
    rises, place and balance guests across them, and recombine when it falls.
    Runs on a fast trace-driven simulator (the default) or on real hosts.
    """


# (module, command) of every subcommand, in the order ``presplit --help`` lists them.
SUBCOMMANDS = (
    ("presplit.cli.simulate_cmd", "simulate"),
    ("presplit.cli.explain_cmd", "explain"),
    ("presplit.cli.forecast_cmd", "forecast"),
    ("presplit.cli.run_cmd", "run"),
    ("presplit.cli.state_cmd", "state"),
    ("presplit.cli.serve_cmd", "serve"),
    ("presplit.cli.demo_cmd", "demo"),
    ("presplit.cli.fleet_cmd", "fleet"),
    ("presplit.cli.sweep_cmd", "sweep"),
    ("presplit.cli.report_cmd", "report"),
    ("presplit.cli.bench_cmd", "bench"),
)


def _register() -> None:
    # Each command module imports its heavy dependencies inside the command,
    # so registering all of them keeps ``presplit --help`` fast.
    import importlib

    for module, name in SUBCOMMANDS:
        cli.add_command(getattr(importlib.import_module(module), name))


_register()


if __name__ == "__main__":
    cli()
