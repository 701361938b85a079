"""The ``presplit`` command group; subcommands register themselves here.

One error path for every command (:class:`Presplit`): click's own usage errors
exit 2; a :class:`~presplit.errors.PresplitError` prints one line naming the
input and what was expected, and exits with its ``exit_code`` (2 for bad
input, 1 for a runtime failure); anything else is a bug, reported in one line
too. ``--debug`` (or ``PRESPLIT_DEBUG=1``) shows the traceback instead.
"""

from __future__ import annotations

import os

import click

from presplit import __version__
from presplit.errors import PresplitError


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 2000 else text[:2000] + " ..."


class Presplit(click.Group):
    """The group that turns presplit's errors into one line and an exit code, never a traceback."""

    def invoke(self, ctx: click.Context):
        _RUNNING["path"] = "presplit"
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException, KeyboardInterrupt,
                SystemExit):
            raise
        except Exception as exc:  # noqa: BLE001 - the one place every command's failure is reported
            if _debug(ctx):
                raise
            where = _RUNNING["path"]
            if isinstance(exc, PresplitError):
                click.echo(f"{where}: error: {_one_line(exc)}", err=True)
                ctx.exit(exc.exit_code)
            if isinstance(exc, OSError) and exc.filename is not None:
                # A file the user named that cannot be read or written: their input, not our bug.
                click.echo(f"{where}: error: {exc.filename}: {exc.strerror or exc}", err=True)
                ctx.exit(2 if isinstance(exc, (FileNotFoundError, IsADirectoryError, NotADirectoryError,
                                               PermissionError)) else 1)
            click.echo(f"{where}: internal error: {type(exc).__name__}: {_one_line(exc)} "
                       "(run with presplit --debug for the traceback, and report it)", err=True)
            ctx.exit(1)


_RUNNING = {"path": "presplit"}  # the command being run, for the error line (a nested one: "presplit fleet generate")


def _track(command: click.Command) -> None:
    """Record ``presplit <sub> [<subsub>]`` when ``command`` starts, for :class:`Presplit`'s error line."""
    invoke = command.invoke

    def tracked(ctx: click.Context):
        _RUNNING["path"] = " ".join(["presplit", *ctx.command_path.split()[1:]])
        return invoke(ctx)

    command.invoke = tracked
    for sub in getattr(command, "commands", {}).values():
        _track(sub)


def _debug(ctx: click.Context) -> bool:
    root = ctx.find_root()
    return bool((root.params or {}).get("debug")) or os.environ.get("PRESPLIT_DEBUG") == "1"


@click.group(cls=Presplit, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="presplit")
@click.option("--debug", is_flag=True, help="Show the traceback of an error instead of one line.")
def cli(debug: bool) -> None:
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
    ("presplit.cli.policies_cmd", "policies"),
)


def _register() -> None:
    # Each command module imports its heavy dependencies inside the command,
    # so registering all of them keeps ``presplit --help`` fast.
    import importlib

    for module, name in SUBCOMMANDS:
        command = getattr(importlib.import_module(module), name)
        _track(command)
        cli.add_command(command)


_register()


if __name__ == "__main__":
    cli()
