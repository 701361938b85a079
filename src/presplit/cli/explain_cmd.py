"""``presplit explain``: one guest's story in a domain-scenario run -- every action, why, and the numbers."""

from __future__ import annotations

import click

from presplit.cli.policies_cmd import POLICY_HELP


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


def _event_json(event) -> dict:
    """One action of the guest's story, for --json."""
    out = event.outcome
    row = {"time": _clock(event.time), "t_s": float(event.time), "action": event.action.kind,
           "args": {k: v for k, v in vars(event.action).items() if k not in ("reason", "details")},
           "outcome": "applied" if out.ok else f"refused: {out.reason}", "applied": bool(out.ok),
           "reason": event.action.reason, "numbers": {**event.action.details, **getattr(out, "details", {})}}
    if out.ok:
        c = out.cost
        row["cost"] = {"seconds": c.seconds, "downtime_s": c.downtime_s, "fabric_gb": c.fabric_gb}
    return row


@click.command("explain", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--scenario", required=True, metavar="NAME|FILE",
              help="Domain-engine scenario (shipped name or YAML file). Example: --scenario bighost-patch")
@click.option("--guest", "guest_id", required=True, metavar="ID",
              help="Guest id as the scenario names it (trace VM id, '#k' for replica k) or its index. "
                   "Example: --guest 1017")
@click.option("--policy", default="presplit", show_default=True, metavar="NAME",
              help="Domain-engine policy to run: " + POLICY_HELP + "; it must run on the domain engine "
                   "(presplit, evacuate, or a plugin with engine = 'domains'). Example: --policy evacuate")
@click.option("--trace", default=None, metavar="PATH",
              help="Trace overriding the scenario's. Example: --trace ../shared/data/bitbrains/rnd_2013-7_first7d.parquet")
@click.option("--json", "json_path", type=click.Path(allow_dash=True), default=None,
              metavar="FILE|-",
              help="Write the guest, its actions (time, t_s, action, args, outcome, applied, reason, numbers, cost) "
                   "and the run's counts as one JSON object; '-' writes it to stdout instead of the table. "
                   "Example: --json guest.json")
def explain(scenario: str, guest_id: str, policy: str, trace: str | None, json_path: str | None) -> None:
    """Run a scenario and print one guest's actions: time, action, outcome, reason and numbers.

    \b
    Example:
      presplit explain --scenario bighost-patch --guest 1017
      presplit explain --scenario bighost-patch --guest 1017 --json - | jq '.actions[].reason'
    """
    from rich.table import Table

    from presplit.cli.domain_runs import check_domain_policies, scenarios_of_engine
    from presplit.cli.simulate_cmd import check_json_file, print_table, progress_bar, write_json
    from presplit.errors import InputError
    from presplit.scenarios import load_scenario
    from presplit.scenarios.build import build_run, run_scenario

    # Everything is checked before the run: output, scenario, policy, trace, then the guest against the fleet.
    check_json_file(json_path)
    scen = load_scenario(scenario)  # an unknown name or a bad file: a ScenarioError, one line
    if scen.engine != "domains":
        raise InputError(f"--scenario: {scen.name!r} runs on the CloudSim engine; explain needs a domain "
                         f"scenario ({', '.join(scenarios_of_engine('domains')) or 'engine: domains'})")
    check_domain_policies([policy], scen.name)
    bar = progress_bar(counts=False)
    bar.start()
    try:
        task = bar.add_task(f"building {scen.name}", total=None, last="")
        built = build_run(scen, trace)  # a missing or bad trace, or a guest no host holds: ScenarioFileError
    except BaseException:
        bar.stop()
        raise
    state = built.state
    try:
        g = state.guest_index(guest_id)
    except KeyError:
        if not guest_id.isdigit() or int(guest_id) >= state.n_guests:
            sample = ", ".join(x.id for x in state.guests[:5])
            raise InputError(f"--guest: no guest {guest_id!r} in scenario {scen.name!r} (ids look like: {sample}, "
                             f"...; or an index 0..{state.n_guests - 1})") from None
        g = int(guest_id)
    try:
        bar.update(task, description=f"running {policy} on {scen.name}",
                   last=f"{built.n_steps} ticks of {built.workload.interval_s:g} s")
        row, result, run = run_scenario(scen, policy, trace=trace, record_events=True, run=built)
    finally:
        bar.stop()
    state = run.state
    spec = state.guests[g]
    mine = [e for e in result.events if getattr(e.action, "guest", None) == g or g in getattr(e.outcome, "guests", ())]
    table = Table(title=f"guest {spec.id} (#{g}): {spec.vcpus} vCPU x {spec.mips_per_vcpu:.0f} MIPS, "
                        f"{spec.ram_mb:.0f} MB, arrives at {spec.arrival_s:.0f} s; policy {policy}")
    for col in ("time (day hh:mm)", "t (s)", "action", "outcome", "reason", "numbers"):
        table.add_column(col, overflow="fold")
    for e in mine:
        outcome = "applied" if e.outcome.ok else f"refused: {e.outcome.reason}"
        table.add_row(_clock(e.time), f"{e.time:.0f}", repr(e.action).split("(reason=")[0] + _args(e.action),
                      outcome, e.action.reason, _numbers(e))
    print_table(table, json_path, width=200)
    counts = {k: row[k] for k in ("cross_host_migrations", "intra_host_moves", "patch_windows_met",
                                  "patch_windows_total")}
    if json_path is None or json_path != "-":
        click.echo(f"{len(mine)} actions touched this guest; run: {row['cross_host_migrations']} migrations, "
                   f"{row['intra_host_moves']} re-pins, {row['patch_windows_met']}/{row['patch_windows_total']} "
                   "windows met")
    if json_path is not None:
        write_json(json_path, {
            "scenario": scen.name, "policy": policy,
            "guest": {"index": g, "id": spec.id, "vcpus": spec.vcpus, "mips_per_vcpu": spec.mips_per_vcpu,
                      "ram_mb": spec.ram_mb, "arrival_s": spec.arrival_s},
            "actions": [_event_json(e) for e in mine], "run": counts}, what=f"{len(mine)} actions")


def _args(action) -> str:
    fields = {k: v for k, v in vars(action).items() if k not in ("reason", "details")}
    return "(" + ", ".join(f"{k}={v}" for k, v in fields.items()) + ")"
