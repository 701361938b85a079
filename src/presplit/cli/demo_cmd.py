"""``presplit demo qemu``: the split-domain cycle on real QEMU guests (see presplit.backends.qemu.demo).

Importing this module also registers the ``qemu`` backend (lazily: QEMU code is
loaded only when a backend is made), so ``presplit run --backend qemu`` finds it.
"""

from __future__ import annotations

import click


def _qemu_factory(**kw):
    from presplit.backends.qemu.backend import factory

    return factory(**kw)


def _register_backend() -> None:
    from presplit.backends.base import BACKENDS, register_backend

    if "qemu" not in BACKENDS:
        register_backend("qemu", _qemu_factory)


_register_backend()


@click.group("demo", context_settings={"help_option_names": ["-h", "--help"]})
def demo() -> None:
    """Demonstrations on real components."""


@demo.command("qemu")
@click.option("--json", "json_path", default=None, type=click.Path(dir_okay=False), metavar="FILE",
              help="Write the summary (guests, migrations, action counts) to FILE as JSON.")
@click.option("--hold", "hold_s", default=2.0, show_default=True, type=float,
              help="Seconds to let the guests run between phases.")
@click.option("--memory-mib", default=128, show_default=True, type=int, help="RAM of each guest.")
@click.option("--view-every", default=2.0, show_default=True, type=float, help="Seconds between live views.")
def qemu(json_path, hold_s, memory_mib, view_every) -> None:
    """2 hosts, 4 guests: split a host, move and migrate guests, patch a domain, recombine.

    Needs root (network namespaces, cgroups) and the guest image
    (scripts/setup-qemu.sh). Everything started is stopped on exit and on Ctrl-C.

    \b
    Example:
      presplit demo qemu --json demo.json
    """
    import os

    from presplit.backends.qemu.demo import run_demo

    if os.geteuid() != 0:
        raise click.ClickException("presplit demo qemu needs root (network namespaces and cgroups)")
    echo = lambda text: click.echo(text, nl=True)
    try:
        summary = run_demo(json_path=json_path, hold_s=hold_s, memory_mib=memory_mib, view_every_s=view_every,
                           echo=echo)
    except KeyboardInterrupt:
        click.echo("interrupted: everything started was stopped", err=True)
        raise SystemExit(130) from None
    bad = [g["id"] for g in summary["guests"] if not g["running"] or g["max_heartbeat_gap_s"] > 1.0]
    if bad:
        raise click.ClickException(f"guests {bad} stopped for more than 1 s or are not running exactly once")
