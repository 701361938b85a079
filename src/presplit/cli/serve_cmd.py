"""``presplit serve``: the control loop plus the HTTP API, Prometheus metrics and the live dashboard."""

from __future__ import annotations

import click


def _listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise click.BadParameter(f"{text!r} is not HOST:PORT (e.g. 127.0.0.1:8080)", param_hint="'--listen'")
    host = host.strip("[]") or "127.0.0.1"
    return host, int(port)


@click.command("serve", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--backend", "backend_name", type=click.Choice(["sim", "qemu"]), default="sim", show_default=True,
              help="sim: the simulated world in its own store, paced for people; qemu: real hosts, wall clock.")
@click.option("--db", default="sqlite:///presplit.db", show_default=True, metavar="URL",
              help="Journal: sqlite:///path.db or postgresql://user@host/db.")
@click.option("--listen", default="127.0.0.1:8080", show_default=True, metavar="HOST:PORT")
@click.option("--scenario", default=None, metavar="NAME|FILE",
              help="Domain scenario (e.g. bighost-patch or a YAML file). Default: a small demo fleet.")
@click.option("--world", default=None, metavar="PATH", help="The simulated world's store (default: <db>.world).")
@click.option("--trace", default=None, metavar="PATH", help="Trace overriding the scenario's.")
@click.option("--profile", "profile_path", default=None, type=click.Path(dir_okay=False), metavar="FILE",
              help="YAML profile: policies with args, caps, interval.")
@click.option("--dry-run", is_flag=True, help="Recommend only: plans are journaled as 'recommended' until approved.")
@click.option("--interval", default=None, metavar="DURATION", help="Control tick (default: profile's, scenario's).")
@click.option("--pace", default="0.5s", show_default=True, metavar="DURATION",
              help="Wall time per tick of the simulated world (0: as fast as it goes).")
@click.option("--until", default=None, metavar="DURATION",
              help="Stop the loop at this (simulated) time; the API keeps serving. Default: run until stopped.")
@click.option("--token-file", default=None, type=click.Path(dir_okay=False), metavar="FILE",
              help="Bearer token for mutations (else the environment variable PRESPLIT_API_TOKEN).")
@click.option("--open-reads", is_flag=True, help="Serve reads without a token to any address (default: loopback only).")
@click.option("--forecaster", "forecaster_name", default=None, metavar="NAME",
              help="Forecast the policies decide on (default: the profile's `forecaster:`, else outlook); any of "
                   "`presplit forecast models` but the oracle.")
@click.option("--new-journal", is_flag=True,
              help="Start afresh: discard the journal's history and move the world store aside (renamed, kept).")
@click.option("--access-log", is_flag=True,
              help="Log one line per request to stderr: client, method, path, status, duration (never headers).")
@click.option("--max-plan-age", default=None, metavar="DURATION",
              help="Older plans are not approved (dry run: 409) nor resumed after a restart. "
                   "Default: 3 ticks with --dry-run, else no limit.")
def serve(backend_name, db, listen, scenario, world, trace, profile_path, dry_run, interval, pace, until, token_file,
          open_reads, forecaster_name, new_journal, access_log, max_plan_age) -> None:
    """Run the controller and serve the API, /metrics and the dashboard until SIGTERM or Ctrl-C.

    \b
    Examples:
      PRESPLIT_API_TOKEN=s3cret presplit serve --db sqlite:///serve.db
      presplit serve --scenario bighost-patch --token-file token.txt --listen 0.0.0.0:8080 --dry-run
    Then open http://127.0.0.1:8080/ (dashboard), /openapi.json, /metrics.
    """
    from presplit.extras import require

    require("service", "fastapi", "uvicorn", "prometheus_client")
    import uvicorn

    from presplit.backends.base import BackendError, backend_factory
    from presplit.cli.run_cmd import duration_option
    from presplit.forecast.decision import check_for_controller
    from presplit.control.profile import ProfileError, load_profile
    from presplit.service.app import create_app
    from presplit.service.auth import Auth, TokenError, is_loopback, load_token
    from presplit.service.runner import ServiceConfig

    host, port = _listen(listen)
    interval_s = duration_option(interval, "--interval", positive=True)
    until_s = duration_option(until, "--until")
    pace_s = duration_option(pace, "--pace")
    forecaster_name = check_for_controller(forecaster_name, "--forecaster")
    max_plan_age_s = duration_option(max_plan_age, "--max-plan-age", positive=True)
    if profile_path:
        try:
            load_profile(profile_path)
        except ProfileError as exc:
            raise click.BadParameter(str(exc), param_hint="'--profile'") from None
    if backend_name == "qemu":
        try:
            backend_factory("qemu")
        except BackendError as exc:
            raise click.ClickException(str(exc)) from None
    scen = None
    if scenario is not None:
        from presplit.scenarios import ScenarioError, load_scenario

        try:
            scen = load_scenario(scenario)
        except ScenarioError as exc:
            raise click.BadParameter(str(exc), param_hint="'--scenario'") from None
        if scen.engine != "domains":
            raise click.BadParameter(f"{scenario!r} runs on the CloudSim engine; serve needs a domain scenario",
                                     param_hint="'--scenario'")
    if scen is not None and backend_name == "sim":
        from presplit.scenarios.build import scenario_trace

        scenario_trace(scen, trace)
    if not new_journal:
        _check_stores(db, world, scenario, scen, trace, backend_name)
    try:
        token = load_token(token_file)
    except TokenError as exc:
        raise click.BadParameter(str(exc), param_hint="'--token-file'") from None
    cfg = ServiceConfig(db=db, backend=backend_name, scenario=scenario, world=world, trace=trace,
                        profile_path=profile_path, dry_run=dry_run, interval_s=interval_s, until_s=until_s,
                        forecaster=forecaster_name,
                        pace_s=pace_s, new_journal=new_journal, max_plan_age_s=max_plan_age_s)
    if access_log:
        _log_to_stderr()
    app = create_app(cfg, auth=Auth(token, open_reads=open_reads), access_log=access_log)
    click.echo(f"presplit serve on http://{host if ':' not in host else f'[{host}]'}:{port}/ "
               f"(mutations {'need the bearer token' if token else 'disabled: no token'}; reads "
               f"{'open' if open_reads else 'open on loopback' if not is_loopback(host) else 'open (loopback)'})")
    # uvicorn's own access log stays off: it logs at INFO, which log_level="warning" silenced (so --access-log
    # used to log nothing), and has no duration. The app's AccessLog middleware logs instead.
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                            timeout_graceful_shutdown=3, lifespan="on")
    server = _Server(config, app)
    server.run()


def _check_stores(db, world, scenario, scen, trace, backend_name) -> None:
    """The journal and world checks of ``presplit run``, before the server starts (a mismatch is one line, exit 1,
    not a service that serves an error). The demo fleet's scenario is written when the loop starts: it is
    checked there."""
    from presplit.apply.journal import Journal
    from presplit.control.stores import check_stores, scenario_inputs, world_path_for

    journal = Journal(db)
    try:
        if scenario is not None:
            world_path = world_path_for(db, world) if backend_name == "sim" else None
            check_stores(journal, scenario_inputs(scenario, scen, trace), world_path)
    finally:
        journal.close()


def _log_to_stderr() -> None:
    import logging
    import sys

    from presplit.service.app import ACCESS_LOG

    if not any(getattr(h, "_presplit_access", False) for h in ACCESS_LOG.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        handler._presplit_access = True
        ACCESS_LOG.addHandler(handler)
    ACCESS_LOG.setLevel(logging.INFO)
    ACCESS_LOG.propagate = False  # one line per request, not again through whatever the root logger does


class _Server:
    """uvicorn.Server that ends the live streams first, so a shutdown does not wait on open dashboards."""

    def __new__(cls, config, app):
        import uvicorn

        class Server(uvicorn.Server):
            def handle_exit(self, sig, frame):
                app.state.hub.close()
                super().handle_exit(sig, frame)

        return Server(config)
