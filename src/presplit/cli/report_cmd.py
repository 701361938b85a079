"""placeholder"""
import click


@click.command("report")
def report() -> None:
    """(being written)"""
