"""``presplit explain``: one guest's story in a domain-scenario run -- every action, why, and the numbers."""

from __future__ import annotations

import click


def _clock(t: float) -> str:
    day, rest = divmod(int(t), 86400)
    return f"d{day} {rest // 3600:02d}:{rest % 3600 // 60:02d}"


def _numbers(event) -> str:
    out = event.outcome
    parts = [f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
             for k, v in {**event.action.details, **getattr(out, "details", {})}.items()]
    if out.ok:
        c = out.cost
        parts += [f"took={c.seconds:.3g}s", f"downtime={c.downtime_s:.3g}s", f"fabric={c.fabric_gb:.3g}GB"]
    return ", ".join(parts)


@click.command("explain", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--scenario", required=True, metavar="NAME|FILE",
              help="Domain-engine scenario (shipped name or YAML file). Example: --scenario bighost-patch")
@click.option("--guest", "guest_id", required=True, metavar="ID",
              help="Guest id as the scenario names it (trace VM id, '#k' for replica k) or its index. "
                   "Example: --guest 1017")
@click.option("--policy", default="presplit", show_default=True, metavar="NAME",
              help="Domain-engine policy to run. Example: --policy evacuate")
@click.option("--trace", default=None, metavar="PATH",
              help="Trace overriding the scenario's. Example: --trace ../shared/data/bitbrains/rnd_2013-7_first7d.parquet")
def explain(scenario: str, guest_id: str, policy: str, trace: str | None) -> None:
    """Run a scenario and print one guest's actions: time, action, outcome, reason and numbers.

    \b
    Example:
      presplit explain --scenario bighost-patch --guest 1017
    """
    from rich.console import Console
    from rich.table import Table

    from presplit.cli.domain_runs import check_domain_policies, scenarios_of_engine
    from presplit.errors import InputError
    from presplit.scenarios import load_scenario
    from presplit.scenarios.build import build_run, run_scenario

    # Everything is checked before the run: scenario, policy, trace, then the guest against the built fleet.
    scen = load_scenario(scenario)  # an unknown name or a bad file: a ScenarioError, one line
    if scen.engine != "domains":
        raise InputError(f"--scenario: {scen.name!r} runs on the CloudSim engine; explain needs a domain "
                         f"scenario ({', '.join(scenarios_of_engine('domains')) or 'engine: domains'})")
    check_domain_policies([policy], scen.name)
    built = build_run(scen, trace)  # a missing or bad trace, or a guest no host holds: ScenarioFileError
    state = built.state
    try:
        g = state.guest_index(guest_id)
    except KeyError:
        if not guest_id.isdigit() or int(guest_id) >= state.n_guests:
            sample = ", ".join(x.id for x in state.guests[:5])
            raise InputError(f"--guest: no guest {guest_id!r} in scenario {scen.name!r} (ids look like: {sample}, "
                             f"...; or an index 0..{state.n_guests - 1})") from None
        g = int(guest_id)
    row, result, run = run_scenario(scen, policy, trace=trace, record_events=True, run=built)
    state = run.state
    spec = state.guests[g]
    mine = [e for e in result.events if getattr(e.action, "guest", None) == g or g in getattr(e.outcome, "guests", ())]
    table = Table(title=f"guest {spec.id} (#{g}): {spec.vcpus} vCPU x {spec.mips_per_vcpu:.0f} MIPS, "
                        f"{spec.ram_mb:.0f} MB, arrives at {spec.arrival_s:.0f} s; policy {policy}")
    for col in ("time", "t_s", "action", "outcome", "reason", "numbers"):
        table.add_column(col, overflow="fold")
    for e in mine:
        outcome = "applied" if e.outcome.ok else f"refused: {e.outcome.reason}"
        table.add_row(_clock(e.time), f"{e.time:.0f}", repr(e.action).split("(reason=")[0] + _args(e.action),
                      outcome, e.action.reason, _numbers(e))
    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, 200))
    console.print(table)
    click.echo(f"{len(mine)} actions touched this guest; run: {row['cross_host_migrations']} migrations, "
               f"{row['intra_host_moves']} re-pins, {row['patch_windows_met']}/{row['patch_windows_total']} "
               "windows met")


def _args(action) -> str:
    fields = {k: v for k, v in vars(action).items() if k not in ("reason", "details")}
    return "(" + ", ".join(f"{k}={v}" for k, v in fields.items()) + ")"
