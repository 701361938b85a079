"""Running domain-engine scenarios for the CLI: policy checks, rows, the table.

``simulate`` hands a scenario whose engine is ``domains`` here; rows carry the
CloudSim metric keys plus the domain ones (:data:`DOMAIN_KEYS`).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor

from presplit.sim.runner import METRIC_KEYS

DOMAIN_KEYS = ("intra_host_moves", "cross_host_migrations", "fabric_gb", "guest_downtime_s", "migration_pause_s",
               "outage_s", "patch_windows_total", "patch_windows_met", "splits", "merges", "max_migrations_per_guest",
               "io_shortfall", "io_slatah", "service_changes",
               # failures and recovery (presplit.sim.failures): all zero when nothing fails
               "guests_lost", "failover_restarts", "failover_max_s", "failover_p95_s", "failure_downtime_s",
               "failover_capacity_short", "failures_injected", "migrations_failed")
INT_KEYS = {"migrations", "intra_host_moves", "cross_host_migrations", "patch_windows_total", "patch_windows_met",
            "splits", "merges", "max_migrations_per_guest", "service_changes", "refused_actions", "boots",
            "guests_unplaced", "guests_lost", "failover_restarts", "failover_capacity_short", "failures_injected",
            "migrations_failed"}
ALL_KEYS = tuple(dict.fromkeys((*METRIC_KEYS, *DOMAIN_KEYS)))


def check_domain_policies(policies: Sequence[str], scenario_name: str) -> list[str]:
    """The policies to run on a domain scenario (default: all domain policies); a PolicyError naming
    the first unknown one, or one of the CloudSim engine, and what fits."""
    from presplit.policies import PolicyError, make_policy
    from presplit.policies.registry import DOMAIN_POLICIES, engine_mismatch, engines

    names = list(policies) or list(DOMAIN_POLICIES)
    for name in names:
        try:
            make_policy(name)  # known at all? (unknown names would otherwise read as CloudSim ones)
            make_policy(name, engine="domains")
        except PolicyError as exc:
            raise PolicyError(f"--policy: {exc}") from None
        if "domains" not in engines(name):
            raise PolicyError("--policy: " + engine_mismatch(name, scenario_name, "domains",
                                                             other_scenarios=scenarios_of_engine("cloudsim")))
    return names


def scenarios_of_engine(engine: str) -> list[str]:
    """Shipped scenario names whose engine is ``engine`` (for error messages)."""
    from presplit.scenarios import ScenarioError, load_scenario
    from presplit.scenarios.loader import shipped_scenarios

    out = []
    for name in shipped_scenarios():
        try:
            if load_scenario(name).engine == engine:
                out.append(name)
        except ScenarioError:
            continue
    return out


def clean(row: dict) -> dict:
    out = {"trace": row["trace"], "policy": row["policy"]}
    for key in ALL_KEYS:
        value = row.get(key, float("nan"))  # a key the CloudSim runner adds later and we do not know yet
        value = value.item() if hasattr(value, "item") else value
        out[key] = value if isinstance(value, str) else int(value) if key in INT_KEYS else float(value)
    return out


def _one(args) -> dict:
    from presplit.scenarios.build import run_scenario

    scenario, policy, trace, seed, failures, forecaster = args
    row, _, _ = run_scenario(scenario, policy, trace=trace, seed=seed, failures=failures, forecaster=forecaster)
    return clean(row)


def _decides_on_forecasts(policy: str) -> bool:
    from presplit.policies import make_policy

    return bool(getattr(make_policy(policy, engine="domains"), "needs_forecasts", False))


def run_domain_rows(scenario, policies: Sequence[str], trace: str | None, seed: int, jobs: int,
                    *, progress: bool = True, failures=None, forecasters: Sequence[str] = ()) -> list[dict]:
    """One row per policy. Errors about the trace are :class:`ScenarioTraceError` (an InputError): its
    ``from_option`` says whether the path was the user's --trace or the scenario's own, and the message
    names the one it was. A progress bar goes to stderr when it is a terminal. ``failures`` (a
    :class:`presplit.sim.failures.FailureSpec`) replaces the scenario's own ``failures:``."""
    from presplit.cli.simulate_cmd import progress_bar
    from presplit.scenarios.build import scenario_trace

    scenario_trace(scenario, trace)  # a missing trace fails before any worker starts
    tasks = [(scenario, p, trace, seed, failures, f) for p in policies
             for f in (forecasters if forecasters and _decides_on_forecasts(p) else (None,))]
    rows: list[dict] = []
    with progress_bar(enabled=progress) as bar:
        task = bar.add_task(f"simulating {scenario.name}", total=len(tasks), last="")

        def done(row: dict) -> None:
            rows.append(row)
            bar.update(task, advance=1, last=row["policy"])

        if jobs > 1 and len(tasks) > 1:
            with ProcessPoolExecutor(max_workers=min(jobs, len(tasks))) as pool:
                for row in pool.map(_one, tasks):
                    done(row)
        else:
            for t in tasks:
                done(_one(t))
    return rows


def render_domain_table(rows: Sequence[dict]):
    from rich.table import Table

    table = Table(caption="Domain engine. SLATAH, PDM and overall SLA violation: CloudSim's ratio-of-sums; "
                          "moves = intra-host re-pins, migr = cross-host live migrations; IO short = disk and network "
                          "IO the domains' services could not carry; svc = service set changes.",
                  caption_justify="left")
    cols = ["trace", "policy", "energy (kWh)", "E/bound (x)", "SLATAH (%)", "PDM (%)", "overall SLA (%)", "moves",
            "migr", "max migr/guest", "fabric (GB)", "downtime (guest-s)", "windows (met/total)", "splits",
            "merges", "IO short (%)", "svc", "wall (s)"]
    for c in cols:
        if c in ("trace", "policy"):
            table.add_column(c, justify="left", overflow="fold")
        else:
            table.add_column(c, justify="right", no_wrap=True, min_width=max(len(w) for w in c.split()))
    for r in rows:
        table.add_row(r["trace"], r["policy"], f"{r['energy_kwh']:.1f}", f"{r['energy_over_bound']:.3f}",
                      f"{r['slatah'] * 100:.3g}", f"{r['pdm'] * 100:.3g}",
                      f"{r['overall_sla_violation'] * 100:.3g}", f"{r['intra_host_moves']:,}",
                      f"{r['cross_host_migrations']:,}", str(r["max_migrations_per_guest"]), f"{r['fabric_gb']:,.0f}",
                      f"{r['guest_downtime_s']:,.1f}", f"{r['patch_windows_met']}/{r['patch_windows_total']}",
                      str(r["splits"]), str(r["merges"]), f"{r['io_shortfall'] * 100:.3g}",
                      f"{r['service_changes']:,}", f"{r['wall_s']:.2f}")
    if not any(r.get("failures_injected", 0) or r.get("failover_restarts", 0) for r in rows):
        return table
    from rich.console import Group

    return Group(table, render_failure_table(rows))


def render_failure_table(rows: Sequence[dict]):
    """Failures and recovery per row (presplit.sim.failures), printed under the main table when something failed."""
    from rich.table import Table

    table = Table(caption="Failures and recovery. lost = guests neither running nor being recovered at the end; "
                          "failover = from the failure to the guest running again; fail down = guest-seconds down "
                          "because of failures; reserve short = ticks some rack could not restart its worst host's "
                          "guests on its other hosts; migr failed = live migrations a failure aborted.",
                  caption_justify="left")
    cols = ["trace", "policy", "failures", "lost", "restarts", "failover max (s)", "failover p95 (s)",
            "fail down (guest-s)", "reserve short (ticks)", "migr failed"]
    for c in cols:
        table.add_column(c, justify="left" if c in ("trace", "policy") else "right", no_wrap=True)
    for r in rows:
        table.add_row(r["trace"], r["policy"], f"{r['failures_injected']:,}", f"{r['guests_lost']:,}",
                      f"{r['failover_restarts']:,}", f"{r['failover_max_s']:,.0f}", f"{r['failover_p95_s']:,.0f}",
                      f"{r['failure_downtime_s']:,.0f}", f"{r['failover_capacity_short']:,}",
                      f"{r['migrations_failed']:,}")
    return table
