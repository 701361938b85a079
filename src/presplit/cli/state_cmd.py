"""``presplit state``: what the controller knows now -- hosts, domains, guests, plans -- read from the journal."""

from __future__ import annotations

import json

import click


def _recommended(journal) -> list[int]:
    """Plans waiting for an operator's decision (dry run), oldest first."""
    import sqlalchemy as sa

    from presplit.apply.journal import plans

    with journal.engine.connect() as conn:
        return [int(r[0]) for r in conn.execute(sa.select(plans.c.id).where(plans.c.status == "recommended")
                                                .order_by(plans.c.id))]


def gather(db: str, plans_limit: int | None = 20) -> dict:
    """What ``presplit state`` shows. ``open_plans``: plans being applied (``running``); ``recommended_plans``:
    dry-run recommendations waiting for an operator (open too, but nothing runs until one is approved)."""
    from presplit.apply.journal import Journal

    journal = Journal(db, create=False)
    try:
        observed = journal.get_meta("observed") or {}
        guests = observed.get("guests", [])
        return {"last_tick": journal.get_meta("last_tick"), "now": observed.get("now"),
                "hosts": observed.get("hosts", []), "domains": observed.get("domains", []),
                "guests": guests, "plans": journal.plans(plans_limit),
                "open_plans": journal.open_plans(), "recommended_plans": _recommended(journal),
                "last_error": journal.get_meta("last_error"),
                "guests_unplaced": sum(1 for g in guests if g.get("status") == "pending"),
                "store": journal.get_meta("store"),
                # the run's metrics so far, keyed as ``presplit simulate``'s rows (a simulated world; written
                # every tick, the whole run's at the end, restarts included)
                "metrics": journal.get_meta("metrics")}
    finally:
        journal.close()


def _metrics_table(metrics: dict):
    """The run's metrics so far, one row per key (numbers to 6 significant digits)."""
    from rich.table import Table

    m = metrics
    where = f"up to t={m['horizon_s']:g} s" if isinstance(m.get("horizon_s"), (int, float)) else (
        f"up to t={m['now']:g} s" if isinstance(m.get("now"), (int, float)) else "so far")
    table = Table(title=f"run metrics ({m.get('policy', '?')} on {m.get('trace', '?')}, {where})")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in m.items():
        if key in ("policy", "trace", "horizon_s", "now"):
            continue
        shown = f"{value:.6g}" if isinstance(value, float) else str(value)
        table.add_row(key, shown)
    return table


@click.command("state", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--db", required=True, metavar="URL", help="The controller's journal (sqlite:///... or postgresql://...).")
@click.option("--json", "json_path", default=None, type=click.Path(dir_okay=False, writable=True), metavar="FILE",
              help="Also write everything as JSON to FILE ('-' for standard output only).")
@click.option("--plans", "plans_limit", default=20, show_default=True, help="How many recent plans to list.")
def state(db: str, json_path: str | None, plans_limit: int) -> None:
    """Print the controller's view: hosts, domains, guests (domain and status), recent plans and their status.

    \b
    Example:
      presplit state --db sqlite:///journal.db --json state.json
    """
    from rich.console import Console
    from rich.table import Table

    data = gather(db, plans_limit)
    if json_path == "-":
        click.echo(json.dumps(data, indent=1, default=str))
        return
    if json_path:
        with open(json_path, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1, default=str)
    console = Console()
    open_parts = [f"{what}: {', '.join(map(str, ids))}" for what, ids in
                  (("running", data["open_plans"]), ("recommended (awaiting approval)", data["recommended_plans"]))
                  if ids]
    console.print(f"last tick t={data['last_tick']}, world observed at t={data['now']}; "
                  f"open plans: {'; '.join(open_parts) or 'none'}", highlight=False, soft_wrap=True)
    err = data["last_error"]
    if err:
        console.print(f"[red]last error[/red] at tick t={err.get('tick')}: {err.get('error')}"
                      + (f" ({err['failed_ticks']} failed ticks)" if err.get("failed_ticks") else ""),
                      markup=True, highlight=False)
        if err.get("traceback"):
            console.print(err["traceback"].rstrip(), markup=False, highlight=False)
    if data["guests_unplaced"]:
        console.print(f"[yellow]{data['guests_unplaced']} guest(s) pending: not placed yet[/yellow]")
    if data["metrics"]:
        console.print(_metrics_table(data["metrics"]))
    hosts = Table(title=f"hosts ({len(data['hosts'])})")
    for col in ("id", "name", "on", "ready", "rack"):
        hosts.add_column(col)
    for h in data["hosts"][:50]:
        hosts.add_row(*(str(h.get(c, "")) for c in ("id", "name", "on", "ready", "rack")))
    doms = Table(title=f"domains ({len(data['domains'])})")
    for col in ("id", "host", "state", "cpu_mips", "mem_mb", "free_mips", "free_mb"):
        doms.add_column(col, justify="right")
    for d in data["domains"][:50]:
        doms.add_row(*(f"{d[c]:.0f}" if isinstance(d[c], float) else str(d[c])
                       for c in ("id", "host", "state", "cpu_mips", "mem_mb", "free_mips", "free_mb")))
    by_status: dict = {}
    for g in data["guests"]:
        by_status[g["status"]] = by_status.get(g["status"], 0) + 1
    guests = Table(title=f"guests ({len(data['guests'])}: {by_status})")
    for col in ("id", "domain", "status"):
        guests.add_column(col)
    for g in data["guests"][:30]:
        guests.add_row(str(g["id"]), str(g.get("domain", g.get("host"))), g["status"])
    plans = Table(title="plans (newest first)")
    for col in ("id", "tick", "status", "source", "actions"):
        plans.add_column(col)
    for p in data["plans"]:
        plans.add_row(str(p["id"]), f"{p['tick']:g}", p["status"], p["source"],
                      ", ".join(f"{k}={v}" for k, v in sorted(p["actions"].items())))
    for t in (hosts, doms, guests, plans):
        console.print(t)
    if len(data["guests"]) > 30:
        console.print(f"... {len(data['guests']) - 30} more guests (use --json FILE for all)")
