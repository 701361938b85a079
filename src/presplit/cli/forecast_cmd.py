"""``presplit forecast``: rolling-origin backtests of the forecasting models, and plots."""

from __future__ import annotations

import math
import re
import sys

import click
import numpy as np

from presplit.durations import DurationError, parse_duration
from presplit.errors import InputError
from presplit.forecast.base import Context, ForecastError

_STEPS = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:steps?)?\s*$")


def parse_steps(text: str, interval_s: int, what: str) -> int:
    """'72' or '72 steps' -> steps; a duration ('30min', '6h', '1h30m', 'PT6H', presplit's one grammar)
    -> the nearest whole number of steps at this interval, at least one."""
    m = _STEPS.match(str(text))
    if m:  # a bare number counts steps here, not seconds: these options are about the trace's steps
        return int(float(m.group(1)))
    try:
        seconds = parse_duration(text, what=what)
    except DurationError as exc:
        raise InputError(f"{what}: {exc.problem} (expected a step count such as 72 or a duration such as "
                         "30min, 6h, 1h30m or PT6H)") from None
    return max(1, round(seconds / interval_s))


def check_horizon_threshold(horizon: int, threshold: float | None) -> None:
    """--horizon a positive number of steps, --threshold (None: not given) a finite number > 0."""
    if horizon <= 0:
        raise click.UsageError(f"--horizon must be a positive number of steps, got {horizon}")
    if threshold is not None and (not math.isfinite(threshold) or threshold <= 0):
        raise InputError(f"--threshold: {threshold!r} is not a finite number > 0 (expected an overload threshold, "
                         "e.g. 0.8 of capacity)")


def load_series(trace: str, resource: str):
    """The trace's ``[guests, time]`` series for one resource: utilisation where
    the capacity is known (so thresholds are fractions), raw usage otherwise."""
    from presplit.cli.simulate_cmd import load_user_trace

    w = load_user_trace(trace, "--trace")
    try:
        y = w.utilisation(resource)
        unit = "fraction of capacity"
    except ValueError:
        y, unit = w.resource(resource), w.units.get(resource, "trace units")
    except KeyError as e:
        raise InputError(f"--resource: {e.args[0]}") from None
    first = int(round((w.start_epoch_s or 0) / w.interval_s))
    return w, np.ascontiguousarray(y, dtype=np.float64), unit, Context(w.interval_s, first)


def default_windows(n_steps: int, ctx: Context) -> tuple[int, int, int]:
    """History window, first origin and refit period: two days of history on
    traces of three days or more; on shorter ones windows grow from a quarter
    of the trace up to all of it."""
    d = ctx.steps_per_day
    if n_steps >= 3 * d:
        return 2 * d, 2 * d, d
    return n_steps, max(2, n_steps // 4), max(1, n_steps // 4)


@click.group()
def forecast() -> None:
    """Forecast guest demand: backtest the models, plot forecasts."""


def _fmt(v) -> str:
    if isinstance(v, float):
        return "-" if math.isnan(v) else (f"{v:.0f}" if abs(v) >= 1000 else f"{v:.3f}")
    return str(v)


COLUMNS = ("model", "mae", "mase", "pinball_0.5", "pinball_0.9", "pinball_0.95", "pinball_0.99",
           "coverage_80", "coverage_95", "overload_recall", "false_alarms_per_day", "lead_time_min",
           "fit_series_per_s", "predict_series_per_s", "series_per_s")
"""The JSON keys of the printed columns, in order (the JSON has every key of the results)."""


def headers(unit: str) -> list[str]:
    """The printed column titles, with units; ``unit`` is the series' (e.g. "fraction of capacity")."""
    u = "frac" if unit == "fraction of capacity" else unit
    return ["model", f"mae ({u})", "mase (ratio)", f"pinball_0.5 ({u})", f"pinball_0.9 ({u})", f"pinball_0.95 ({u})",
            f"pinball_0.99 ({u})", "coverage_80 (frac)", "coverage_95 (frac)", "overload_recall (frac)",
            "false_alarms (/day)", "lead_time (min)", "fit (series/s)", "predict (series/s)", "all (series/s)"]


def _backtest_help() -> str:
    from presplit.forecast.backtest import SLOW_MODELS

    width = max(map(len, SLOW_MODELS))
    slow = "\n".join(f"  {n:<{width}}  {why}" for n, why in SLOW_MODELS.items())
    return ("Rolling-origin evaluation of forecasting models on a trace.\n\n"
            "By default every registered model runs except the slow ones: the baselines and online-ses (the "
            "bundled Bitbrains week, 427 VMs x 7 days, in 13-28 s on 2 cores; `presplit forecast models` "
            "lists them). The slow models are opt-in, named in --models:\n\n"
            f"\b\n{slow}\n\n"
            "\b\nExamples:\n"
            "  --models default,gbm-quantile   the defaults and the GBM\n"
            "  --models select-quantile        that model alone\n"
            "  --models all                    every registered model, slow ones included\n\n"
            "A progress bar (models and origins done) goes to stderr when it is a terminal.")


@forecast.command(help=_backtest_help())
@click.option("--trace", required=True, type=click.Path(exists=True), help="PlanetLab folder, Bitbrains CSV folder or long parquet")
@click.option("--resource", default="cpu", show_default=True, help="one or more, comma-separated (cpu,mem)")
@click.option("--horizon", default=12, show_default=True, type=int, help="steps ahead")
@click.option("--models", default=None, metavar="NAMES",
              help="comma-separated model names, 'default' (every model but the slow ones; the default) "
                   "or 'all' (slow ones too), e.g. default,gbm-quantile")
@click.option("--history", default=None, help="history window (steps or a duration: 6h, 2d, 1h30m, PT6H); default: see docs")
@click.option("--start", default=None, help="first origin (steps or duration)")
@click.option("--step", default=None, help="steps between origins (default: the horizon)")
@click.option("--refit", default=None, help="refit period of models not refitted every tick")
@click.option("--threshold", default=0.8, show_default=True, type=float, help="overload threshold")
@click.option("--lead", "lead", default="15min", show_default=True, help="minimum warning time L")
@click.option("--guests", default=None, type=click.IntRange(min=1), help="only the first N guests (quick runs)")
@click.option("--json", "json_path", default=None, type=click.Path(dir_okay=False, allow_dash=True), metavar="FILE|-",
              help="write results as JSON ('-': to stdout, instead of the table)")
@click.option("--plot", "plot_path", default=None, type=click.Path(dir_okay=False),
              help="also save a PNG of the first model's forecasts")
@click.option("--scheduler", default=None, help="Dask scheduler address (tcp://host:8786): shard each forecast over its workers")
def backtest(trace, resource, horizon, models, history, start, step, refit, threshold, lead,
             guests, json_path, plot_path, scheduler) -> None:
    from presplit.cli.simulate_cmd import check_json_file, check_output_file, is_stdout, progress_bar, write_json
    from presplit.forecast.backtest import BacktestSpec, backtest as run, resolve_models

    check_json_file(json_path)  # before the (long) backtest
    table_out = not is_stdout(json_path)  # with --json - only the JSON goes to stdout
    check_output_file(plot_path, "--plot")
    check_horizon_threshold(horizon, threshold)
    try:
        chosen = resolve_models(models)
    except ForecastError as e:
        raise click.UsageError(f"--models: {e}") from None
    client = None
    if scheduler:
        from presplit.extras import require

        require("cluster", "distributed")
        from distributed import Client

        client = Client(scheduler)
    rows = []
    for res in [r.strip() for r in resource.split(",") if r.strip()]:
        w, y, unit, ctx = load_series(trace, res)
        if guests:
            y = y[:guests]
        hist0, start0, refit0 = default_windows(y.shape[1], ctx)
        spec = BacktestSpec(
            horizon=horizon,
            history=parse_steps(history, ctx.interval_s, "--history") if history else hist0,
            start=parse_steps(start, ctx.interval_s, "--start") if start else (None if history else start0),
            step=parse_steps(step, ctx.interval_s, "--step") if step else horizon,
            refit=parse_steps(refit, ctx.interval_s, "--refit") if refit else refit0,
            threshold=threshold,
            lead_steps=parse_steps(lead, ctx.interval_s, "--lead"))
        click.echo(f"{w.name} {res} ({unit}): {y.shape[0]} series x {y.shape[1]} steps of "
                   f"{ctx.interval_s} s; history {spec.history}, first origin {spec.first_origin}, "
                   f"step {spec.step}, refit {spec.refit}, horizon {spec.horizon}", err=True)
        with progress_bar() as bar:
            models_task = bar.add_task(f"backtest {res}: models", total=len(chosen), last="")
            origins_task = bar.add_task("  origins", total=None, last="")

            def progress(name: str, done: int, total: int) -> None:
                if done == 0:  # a model starts
                    bar.update(models_task, completed=chosen.index(name), last=name)
                    bar.reset(origins_task, total=total)
                else:
                    bar.update(origins_task, completed=done)

            try:
                origins, results = run(y, chosen, spec, ctx, client=client, progress=progress)
            except ForecastError as e:
                raise click.ClickException(str(e)) from None
            bar.update(models_task, completed=len(chosen), last="done")
        titles = headers(unit)
        widths = [30] + [max(12, len(t)) for t in titles[1:]]
        say = click.echo if table_out else (lambda *_a, **_k: None)
        say(f"\n{w.name} / {res}: {len(origins)} origins")
        say("  ".join(f"{t:>{n}}" if i else f"{t:<{n}}" for i, (t, n) in enumerate(zip(titles, widths))))
        for r in results:
            row = {"trace": w.name, "resource": res, **r.row()}
            rows.append(row)
            if r.skipped:
                say(f"{r.model:<30}  skipped: {r.skipped}")
                continue
            say("  ".join(f"{_fmt(row.get(c, float('nan'))):>{n}}" if i else f"{r.model:<{n}}"
                          for i, (c, n) in enumerate(zip(COLUMNS, widths))))
        if plot_path:
            from presplit.forecast.plot import plot_backtest

            done = [r for r in results if not r.skipped]
            if done:
                plot_backtest(plot_path, y, origins, done[0], spec, ctx, title=f"{w.name} {res}",
                              guest_ids=w.guest_ids[:y.shape[0]], threshold=threshold)
                click.echo(f"plot written to {plot_path}", err=True)
    if client is not None:
        client.close()
    if json_path:
        clean = [{k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in r.items()}
                 for r in rows]
        write_json(json_path, clean, indent=1)


@forecast.command()
@click.option("--trace", required=True, type=click.Path(exists=True))
@click.option("--model", "model_name", default="online-ses", show_default=True)
@click.option("--resource", default="cpu", show_default=True)
@click.option("--horizon", default=12, show_default=True, type=int)
@click.option("--at", "--origin", "at", default=None,
              help="forecast origin (steps or duration from the trace start; default: 3/4 of the trace)")
@click.option("--history", default=None, help="history window before the origin the model is fitted on (default: all)")
@click.option("--guests", default=4, show_default=True, type=click.IntRange(min=1),
              help="how many guests to draw: those over the threshold within the horizon, then in the last "
                   "day, then the most variable")
@click.option("--threshold", default=None, type=float,
              help="overload threshold drawn and used to pick guests [default: 0.8 where the series is a "
                   "fraction of capacity, none otherwise]")
@click.option("--window", default="1d", show_default=True,
              help="history shown before the origin (steps or duration)")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="PNG file")
def plot(trace, model_name, resource, horizon, at, history, guests, threshold, window, out) -> None:
    """Save a PNG of one forecast against what followed, for the most informative guests.

    The model is fitted on the history before the origin; the picture shows
    the last day before it and the horizon (shaded), the forecast's median and
    p25-p75 / p05-p95 intervals, the actual values after the origin, the
    overload threshold, and a zoom on the last hours. Guests are named by
    their trace ids.
    """
    from presplit.cli.simulate_cmd import check_output_file, progress_bar
    from presplit.forecast import create
    from presplit.forecast.plot import plot_forecast

    check_output_file(out, "--out")
    check_horizon_threshold(horizon, threshold)
    try:
        model = create(model_name)
    except ForecastError as e:
        raise click.UsageError(str(e)) from None
    with progress_bar(counts=False) as bar:
        task = bar.add_task("loading the trace", total=None, last=str(trace))
        w, y, unit, ctx = load_series(trace, resource)
        origin = parse_steps(at, ctx.interval_s, "--at") if at else (3 * y.shape[1]) // 4
        lo = max(0, origin - parse_steps(history, ctx.interval_s, "--history")) if history else 0
        shown = parse_steps(window, ctx.interval_s, "--window")
        if threshold is None and unit == "fraction of capacity":
            threshold = 0.8
        bar.update(task, description=f"fitting {model_name} and drawing", last=f"{y.shape[0]} series")
        try:
            drawn = plot_forecast(out, model, y, lo, origin, horizon, ctx, guests, title=f"{w.name} {resource}",
                                  threshold=threshold, guest_ids=w.guest_ids, window=shown,
                                  unit=f"{resource} ({unit})")
        except ForecastError as e:
            raise click.ClickException(str(e)) from None
    click.echo(f"plot written to {out}: " + ", ".join(f"{g} ({r})" for g, r in zip(drawn.labels, drawn.reasons)))


@forecast.command("models")
@click.option("--json", "json_path", default=None, metavar="FILE|-", help="Also write the list as JSON ('-': stdout).")
def models_cmd(json_path) -> None:
    """Every forecaster, one line each: the decision forecasters policies act on (outlook, reactive, oracle) and
    every model of `presplit forecast backtest`, all of which `presplit simulate --forecaster NAME` takes."""
    from presplit.cli.simulate_cmd import is_stdout, write_json
    from presplit.forecast.backtest import SLOW_MODELS
    from presplit.forecast.decision import BUILTIN, forecaster_names
    from presplit.forecast.registry import MODELS
    from presplit.registry import entry_point_origin

    about = {"outlook": "presplit's outlook: window quantile plus trend of the summed observed series (the "
                           "split-domain presplit's default)",
             "reactive": "the last observed value, no margin",
             "oracle": "the trace's true demand from now to the horizon, nothing beyond (simulation only)",
             # models whose class has no docstring line of its own
             "baseline-last": "the last value, flat over the horizon",
             "gbm-quantile": "one global LightGBM quantile model over every series (lags, time of day)",
             "online-ses": "online simple exponential smoothing with conformal intervals",
             "stack-quantile": "LightGBM stacked on the baselines' own forecasts (slow)",
             "select-quantile": "per guest, the expert with the lowest recent pinball loss (slow)",
             "baseline-autopilot-1h": "Autopilot's decayed percentile, weights halving every hour (Rzadca et al., "
                                      "EuroSys 2020); presplit-consolidate's default, with calibrated host bounds",
             "baseline-autopilot-12h": "Autopilot's decayed percentile, weights halving every 12 hours (Rzadca "
                                       "et al., EuroSys 2020)"}
    installed = {name: ep for name, ep in MODELS.entry_points().items() if name not in MODELS.shadowed()}
    rows = []
    for name in forecaster_names():
        row = {"name": name, "kind": "decision" if name in BUILTIN else "model"}
        if name in installed:  # an installed package's model: say where it comes from, list it even if broken
            row["source"] = entry_point_origin(installed[name])
        try:
            if name in about:
                text = about[name]
            elif name.startswith("baseline-window-mean-"):
                text = f"the mean of the last {name.rsplit('-', 1)[1]}, flat over the horizon"
            elif MODELS.entry(name).summary:
                text = MODELS.entry(name).summary
            else:
                model = MODELS.create(name)
                doc = (type(model).__doc__ or "").strip().splitlines()
                text = (doc[0] if doc else type(model).__name__).rstrip(".:")
        except ForecastError as exc:
            text, row["error"] = f"error: {exc}", str(exc)
        row["about"] = text
        if name not in BUILTIN:  # does `forecast backtest` run it by default, or only when named (slow)?
            row["backtest"] = "opt-in" if name in SLOW_MODELS else "default"
        rows.append(row)
    if is_stdout(json_path):
        write_json(json_path, rows, indent=1)
        return
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        opt_in = "  [backtest: opt-in, slow; --models NAME]" if r.get("backtest") == "opt-in" else ""
        source = f"  [{r['source']}]" if "source" in r else ""
        click.echo(f"{r['name']:<{width}}  {r['about']}{opt_in}{source}")
    if json_path:
        write_json(json_path, rows, indent=1)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(forecast())
