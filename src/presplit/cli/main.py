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


def _register() -> None:
    # Imported here so that ``presplit --help`` stays fast and a broken
    # optional subcommand cannot hide the others' help.
    from presplit.cli.simulate_cmd import simulate

    cli.add_command(simulate)
    from presplit.cli.forecast_cmd import forecast; cli.add_command(forecast)  # noqa: E702
    from presplit.cli.fleet_cmd import fleet; cli.add_command(fleet)  # noqa: E702
    from presplit.cli.sweep_cmd import sweep; cli.add_command(sweep)  # noqa: E702
    from presplit.cli.report_cmd import report; cli.add_command(report)  # noqa: E702
    from presplit.cli.explain_cmd import explain; cli.add_command(explain)  # noqa: E702
    from presplit.cli.run_cmd import run; cli.add_command(run)  # noqa: E702
    from presplit.cli.state_cmd import state; cli.add_command(state)  # noqa: E702
    from presplit.cli.serve_cmd import serve; cli.add_command(serve)  # noqa: E702
    from presplit.cli.demo_cmd import demo; cli.add_command(demo)  # noqa: E702


_register()
