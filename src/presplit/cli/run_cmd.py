"""``presplit run``: the controller -- observe, forecast, plan and apply every tick, through the journal."""

from __future__ import annotations

import os
import signal
import socket
import time
import click


def _fraction(value: float) -> float:
    if not 0.0 <= value <= 1.0:  # also false for NaN
        raise click.BadParameter(f"{value!r} is not a fraction between 0 and 1", param_hint="'--fail-fraction'")
    return value


def duration_option(text: str | None, option: str, *, positive: bool = False) -> float | None:
    """A duration option (``5s``, ``15m``, ``24h``, seconds) checked: finite, not negative, or positive."""
    from presplit.durations import parse_duration

    if text is None:
        return None
    try:
        value = parse_duration(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=f"'{option}'") from None
    if positive and value <= 0:
        raise click.BadParameter(f"{text!r} is not a positive duration", param_hint=f"'{option}'")
    return value


def _scenario_kind(name: str):
    from presplit.scenarios import SCENARIOS, ScenarioError, load_scenario

    try:
        if name.strip().lower() in SCENARIOS:
            return "cloudsim", None
        scen = load_scenario(name)
    except ScenarioError as exc:
        raise click.BadParameter(str(exc), param_hint="'--scenario'") from None
    return ("cloudsim" if scen.engine == "cloudsim" else "domains"), scen


@click.command("run", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--backend", "backend_name", type=click.Choice(["sim", "qemu"]), default="sim", show_default=True,
              help="sim: the simulated world in its own store, in simulated time; qemu: real hosts, wall clock.")
@click.option("--scenario", required=True, metavar="NAME|FILE",
              help="Scenario: a domain scenario (e.g. bighost-patch or a YAML file) or cloudsim.")
@click.option("--db", required=True, metavar="URL",
              help="Journal: sqlite:///path.db (default kind) or postgresql://user@host/db.")
@click.option("--interval", default=None, metavar="DURATION",
              help="Control tick, e.g. 5s or 5m (default: the profile's, else the scenario's).")
@click.option("--until", default=None, metavar="DURATION",
              help="Stop at this time: simulated time since the world's start (sim), or since this controller "
                   "started (qemu). Default: the scenario's horizon (sim), forever (qemu).")
@click.option("--profile", "profile_path", default=None, type=click.Path(dir_okay=False), metavar="FILE",
              help="YAML profile: policies with args, and caps per_host / per_link / total.")
@click.option("--dry-run", is_flag=True, help="Recommend only: journal the plans as 'recommended', execute nothing.")
@click.option("--world", default=None, metavar="PATH",
              help="The simulated world's own store (default: beside a SQLite journal, <db>.world).")
@click.option("--trace", default=None, metavar="PATH", help="Trace overriding the scenario's.")
@click.option("--fail-fraction", default=0.0, type=float, show_default=True, callback=lambda _c, _p, v: _fraction(v),
              help="Fault injection: fail this fraction of executed actions, 0 to 1 (sim backend).")
@click.option("--forecaster", "forecaster_name", default=None, metavar="NAME",
              help="Forecast the presplit policy decides on (default: the profile's `forecaster:`, else the "
                   "policy's own: outlook on split domains, baseline-autopilot-1h for presplit-consolidate): "
                   "outlook, reactive or any model of `presplit forecast models` (the oracle needs the trace's "
                   "future: presplit simulate only).")
@click.option("--new-journal", is_flag=True,
              help="Start afresh: discard the journal's history and move the world store aside (renamed, kept).")
@click.option("--seed", default=0, type=int, show_default=True, help="Seed of the fault injection.")
@click.option("--quiet", is_flag=True, help="Print only the final summary line.")
@click.option("--max-plan-age", default=None, metavar="DURATION",
              help="A plan older than this is not resumed after a restart (its remaining actions are cancelled). "
                   "Default: no limit.")
def run(backend_name, scenario, db, interval, until, profile_path, dry_run, world, trace, fail_fraction,
        forecaster_name, new_journal, seed, quiet, max_plan_age) -> None:
    """Run the controller until --until (or SIGTERM, which finishes the running action and exits cleanly).

    \b
    Examples:
      presplit run --backend sim --scenario cloudsim --db sqlite:///journal.db --until 24h
      presplit run --backend sim --scenario bighost-patch --db sqlite:///j.db --profile profile.yaml --dry-run
    """
    from presplit.apply.journal import Journal
    from presplit.apply.lease import lease_for, wait_for_lease
    from presplit.backends.base import BackendError, backend_factory
    from presplit.backends.base import Closes
    from presplit.control.assemble import assemble
    from presplit.control.clock import SimClock, WallClock
    from presplit.control.profile import ProfileError, build_policies, default_profile, load_profile
    from presplit.control.stores import bind, check_stores, open_bound, scenario_inputs, start_afresh, world_path_for
    from presplit.forecast.decision import check_for_controller

    say = (lambda *_: None) if quiet else click.echo
    interval_s = duration_option(interval, "--interval", positive=True)
    until_s = duration_option(until, "--until")
    max_plan_age_s = duration_option(max_plan_age, "--max-plan-age", positive=True)
    kind, scen = _scenario_kind(scenario)
    if scen is not None and backend_name == "sim":
        from presplit.scenarios.build import scenario_trace

        scenario_trace(scen, trace)  # a missing trace is one line before any store is touched
    try:
        profile = load_profile(profile_path) if profile_path else default_profile(kind)
        policies = build_policies(profile, kind)
    except ProfileError as exc:
        raise click.BadParameter(str(exc), param_hint="'--profile'") from None
    forecaster_name = check_for_controller(forecaster_name or profile.forecaster, "--forecaster")
    if backend_name == "qemu":
        try:
            factory = backend_factory("qemu")
        except BackendError as exc:
            raise click.ClickException(str(exc)) from None
    cloudsim = None
    if backend_name == "sim" and kind == "cloudsim":  # in memory: its trace is read before any store is touched
        cloudsim = _cloudsim_world(scenario, trace, profile, policies)
    journal = Journal(db, controller=f"{socket.gethostname()}:{os.getpid()}")
    inputs = scenario_inputs(scenario, scen, trace)
    world_path = world_path_for(db, world) if backend_name == "sim" and kind == "domains" else None
    if new_journal:
        aside = start_afresh(journal, world_path)
        say("started afresh: journal emptied" + (f", old world store moved to {aside}" if aside else ""))
    check_stores(journal, inputs, world_path)  # before waiting for a lease on stores that are not ours
    lease = lease_for(journal)
    stop_box: dict = {}

    def on_term(signum, _frame):
        loop = stop_box.get("loop")
        if loop is not None:
            loop.stop()
        else:
            stop_box["early"] = True
            raise SystemExit(0)

    signal.signal(signal.SIGTERM, on_term)
    wait_for_lease(lease, on_wait=lambda: say("another controller holds the lease; waiting to take over"))
    journal.set_meta("leader", {"controller": journal.controller, "since": time.time()})
    say(f"controller {journal.controller} holds the lease")
    try:
        if backend_name == "qemu":
            bind(journal, inputs)
            backend = factory(scenario=scen, profile=profile)
            clock = WallClock()
        elif cloudsim is not None:
            bind(journal, inputs)
            backend, policies = cloudsim
            if hasattr(backend.engine.policy, "forecaster_name"):  # the CloudSim engine's presplit decides on it
                backend.engine.policy.forecaster_name = forecaster_name
            clock = SimClock(0.0)
        else:
            from presplit.backends.sim_world import FaultyBackend, create_world

            backend = open_bound(journal, inputs, world_path, lambda path: create_world(path, scen, trace))
            clock = SimClock(backend.observe().now)
            if until_s is None:
                until_s = backend.workload.cpu.shape[1] * backend.workload.interval_s - backend.workload.interval_s
            if fail_fraction:
                backend = FaultyBackend(backend, fail_fraction, seed=seed + os.getpid())
        caps = backend.capabilities()
        tick = interval_s or profile.interval_s or caps.interval_s
        if cloudsim is not None:  # in memory: rebuilt from the journal's history, its clock where it stands
            clock = SimClock(backend.resume(journal.history(), tick))
        if backend_name == "qemu" and until_s is not None:
            until_s = clock.now() + until_s
        # replay: a restarted controller's forecasts first see again what the ticks before it had observed
        loop = assemble(backend, journal, clock, policies, profile.limits, interval_s=tick, until_s=until_s,
                        dry_run=dry_run, source=profile.label, forecaster=forecaster_name, replay=True,
                        max_plan_age_s=max_plan_age_s)
        stop_box["loop"] = loop
        say(f"running {profile.label} on {caps.name} every {tick:g} s until t={until_s} "
            f"({'dry run' if dry_run else 'applying'})")
        report = loop.run()
        unplaced = _unplaced(backend)
    finally:
        lease.release()
        if backend_name == "sim":  # the simulated world's store; real guests outlive the controller
            backend = locals().get("backend")
            if isinstance(backend, Closes):
                backend.close()
        journal.close()
    line = (f"ticks={report.ticks} plans={report.plans} actions={report.actions} "
            f"statuses={report.statuses} stopped={report.stopped} wall_s={report.wall_s:.2f}")
    click.echo(line)
    if report.failed_ticks:
        click.echo(f"warning: {report.failed_ticks} tick(s) failed; the last: {report.last_error['error']} "
                   f"(at t={report.last_error['tick']:g}; traceback in presplit state)", err=True)
    if unplaced:
        click.echo(f"warning: {unplaced} guest(s) could not be placed and are still pending at the end "
                   "(their demand counts as unserved)", err=True)
    metrics = report.metrics_row or report.metrics  # the whole run's, however often it was restarted
    if metrics:
        click.echo("metrics " + " ".join(f"{k}={v:.6g}" for k, v in sorted(metrics.items())
                                        if isinstance(v, (int, float)) and not isinstance(v, bool)))


def _unplaced(backend) -> int:
    from presplit.model.cluster import ClusterState

    state = backend.observe()
    if not isinstance(state, ClusterState):  # the CloudSim engine counts its own waiting guests
        return int(getattr(state, "guests_unplaced", 0) or 0)
    from presplit.model.domains import PENDING

    return int((state.guest_status == PENDING).sum())


def _cloudsim_world(scenario, trace, profile, policies):
    from presplit.backends.cloudsim_world import CloudSimPolicy, CloudSimWorld
    from presplit.cli.simulate_cmd import check_cloudsim_length, load_scenario_trace, load_user_trace
    from presplit.scenarios import resolve_scenario
    from presplit.scenarios.trace_fleet import build_fleet

    if len(profile.policies) != 1:
        raise click.BadParameter("the CloudSim world runs exactly one policy", param_hint="'--profile'")
    factory, traces = resolve_scenario(scenario)
    workload = load_user_trace(trace, "--trace") if trace else load_scenario_trace(traces[0], scenario)
    check_cloudsim_length(workload, f"--trace {trace}" if trace else f"scenario {scenario!r}")
    name = profile.policies[0].name
    return CloudSimWorld(workload, name, fleet=build_fleet(factory, workload)), [CloudSimPolicy(name)]
