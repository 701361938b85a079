"""``presplit demo qemu``: the presplit policy on real QEMU guests (see presplit.demo.qemu)."""

from __future__ import annotations

import click

from presplit.cli.options import Duration


@click.group("demo", context_settings={"help_option_names": ["-h", "--help"]})
def demo() -> None:
    """Demonstrations on real components."""


@demo.command("qemu")
@click.option("--json", "json_path", default=None, type=click.Path(dir_okay=False), metavar="FILE",
              help="Write the summary (guests, migrations, action counts) to FILE as JSON.")
@click.option("--scripted", is_flag=True,
              help="Run the old fixed plan (split, move, migrate, patch, merge, migrate back) instead of "
                   "letting the presplit policy decide.")
@click.option("--max-seconds", "max_s", default=150.0, show_default=True, type=Duration(positive=True),
              help="Stop the control loop after this long even if not every action kind happened.")
@click.option("--hold", "hold_s", default=2.0, show_default=True, type=Duration(),
              help="With --scripted: how long to let the guests run between phases (e.g. 2s).")
@click.option("--memory-mib", default=128, show_default=True, type=int, help="RAM of each guest.")
@click.option("--view-every", default=2.0, show_default=True, type=Duration(positive=True),
              help="Time between live views (e.g. 2s).")
@click.option("--failover", is_flag=True,
              help="Break things instead: kill one host's QEMU processes, then a whole host (namespace), then "
                   "the controller during a live migration; the controller restarts the guests and adopts the "
                   "world after its own restart. --json then holds failed_host, restarted_guests, "
                   "restart_max_s, duplicate_guests, guests_running, guests_total, controller_kills.")
@click.option("--heartbeat-timeout", "hb_timeout_s", default=3.0, show_default=True, type=Duration(low=0.5, high=60.0),
              help="With --failover: a guest silent this long (heartbeats every 200 ms) has failed.")
def qemu(json_path, scripted, max_s, hold_s, memory_mib, view_every, failover, hb_timeout_s) -> None:
    """2 hosts, 4 guests, the presplit policy deciding every 3 s: it splits host 0 ahead of its
    patch window, patches the new domain, re-pins the guest, patches the old domain and merges;
    then it live-migrates the guest whose CPU ramps on host 1. Ends when every kind happened.

    Needs root (network namespaces, cgroups) and the guest image
    (scripts/setup-qemu.sh). Everything started is stopped on exit and on Ctrl-C.

    With --failover: 3 hosts, 4 guests; SIGKILL a host's QEMU processes, then kill a whole host, then
    SIGKILL the controller during a live migration and start it again. Fails unless every guest ends
    running exactly once and every restart took at most 15 s (heartbeat gap).

    \b
    Example:
      presplit demo qemu --json demo.json
      presplit demo qemu --scripted          # the fixed plan of earlier versions
      presplit demo qemu --failover --json failover.json
    """
    import os

    from presplit.demo.qemu import run_demo

    if os.geteuid() != 0:
        raise click.ClickException("presplit demo qemu needs root (network namespaces and cgroups)")
    echo = lambda text: click.echo(text, nl=True)
    if failover:
        _failover(json_path, memory_mib, hb_timeout_s, echo)
        return
    try:
        summary = run_demo(json_path=json_path, hold_s=hold_s, memory_mib=memory_mib, view_every_s=view_every,
                           echo=echo, scripted=scripted, max_s=max_s)
    except KeyboardInterrupt:
        click.echo("interrupted: everything started was stopped", err=True)
        raise SystemExit(130) from None
    bad = [g["id"] for g in summary["guests"] if not g["running"] or g["max_heartbeat_gap_s"] > 1.0]
    if bad:
        raise click.ClickException(f"guests {bad} stopped for more than 1 s or are not running exactly once")
    missing = [k for k in ("splits", "intra_host_moves", "patches", "merges") if not summary[k]]
    if not summary["migrations"]:
        missing.append("migrations")
    if missing:
        raise click.ClickException(f"no {', '.join(missing)} within {max_s:g} s")


RESTART_MAX_S = 15.0  # the done-when bound of the failover demo (heartbeat gap of a restarted guest)


def _failover(json_path, memory_mib, hb_timeout_s, echo) -> None:
    from presplit.demo.failover import run_failover

    try:
        s = run_failover(json_path=json_path, echo=echo, memory_mib=memory_mib, hb_timeout_s=hb_timeout_s)
    except KeyboardInterrupt:
        click.echo("interrupted: everything started was stopped", err=True)
        raise SystemExit(130) from None
    problems = []
    if s["guests_running"] != s["guests_total"]:
        problems.append(f"{s['guests_total'] - s['guests_running']} guest(s) not running exactly once")
    if s["duplicate_guests"]:
        problems.append(f"{s['duplicate_guests']} guest(s) run in more than one QEMU process")
    if s["restart_max_s"] > RESTART_MAX_S:
        problems.append(f"a restart took {s['restart_max_s']:.1f} s (> {RESTART_MAX_S:g} s)")
    if problems:
        raise click.ClickException("; ".join(problems))


@demo.command("qemu-ha-controller", hidden=True)
@click.option("--world", "world_dir", required=True, type=click.Path(file_okay=False, exists=True))
def qemu_ha_controller(world_dir) -> None:
    """The controller of a `presplit demo qemu --failover` world (started, killed and restarted by it)."""
    from presplit.demo.ha_agent import run_controller

    run_controller(world_dir, echo=lambda text: click.echo(text))
