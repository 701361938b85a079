"""Fast backtests: the default model set leaves the slow models out, they still run when named,
and the progress callback reports models and origins."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from presplit.forecast import ForecastError, names
from presplit.forecast.backtest import SLOW_MODELS, BacktestSpec, backtest, default_models, resolve_models


def make_day(folder: Path, n_vms: int = 5, seed: int = 3) -> Path:
    """A tiny PlanetLab-format day: ``n_vms`` files of 288 percentages."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    t = np.arange(288)
    for i in range(n_vms):
        wave = 40 + 25 * np.sin(2 * np.pi * t / 288 + i) + rng.normal(0, 8, 288)
        (folder / f"vm_{i:02d}").write_text("\n".join(str(int(v)) for v in np.clip(wave, 1, 99)) + "\n")
    return folder


@pytest.fixture(scope="module")
def day(tmp_path_factory) -> Path:
    return make_day(tmp_path_factory.mktemp("speed") / "20990102")


def invoke(*args):
    from presplit.cli.main import cli

    return CliRunner().invoke(cli, [str(a) for a in args])


def test_default_models_exclude_the_slow_ones():
    default = default_models()
    assert set(SLOW_MODELS) >= {"gbm-quantile", "stack-quantile", "select-quantile"}
    assert set(SLOW_MODELS) <= set(names())  # every opt-in name is a real model
    assert not set(default) & set(SLOW_MODELS)
    assert {"online-ses", "baseline-last", "baseline-autopilot-1h"} <= set(default)
    assert default == [n for n in names() if n not in SLOW_MODELS]  # registration order, nothing else dropped


def test_models_option_tokens():
    assert resolve_models(None) == resolve_models("") == resolve_models("default") == default_models()
    assert resolve_models("all") == names()
    with_gbm = resolve_models("default,gbm-quantile,online-ses")
    assert with_gbm == default_models() + ["gbm-quantile"]  # duplicates dropped, order kept
    assert resolve_models("select-quantile") == ["select-quantile"]
    with pytest.raises(ForecastError, match="unknown model.*nope"):
        resolve_models("online-ses,nope")


def test_progress_reports_models_and_origins():
    y = np.random.default_rng(2).random((6, 120))
    spec = BacktestSpec(history=48, horizon=6, step=12, refit=24)
    calls: list[tuple[str, int, int]] = []
    origins, results = backtest(y, ["baseline-last", "online-ses"], spec,
                                progress=lambda m, done, total: calls.append((m, done, total)))
    n = len(origins)
    want = [(m, i, n) for m in ("baseline-last", "online-ses") for i in range(n + 1)]
    assert calls == want
    assert all(r.metrics["seconds"] >= 0 for r in results)


def test_cli_default_run_has_no_slow_model_and_json_dash_is_clean(day):
    result = invoke("forecast", "backtest", "--trace", day, "--horizon", "12", "--json", "-")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)  # stdout holds the JSON and nothing else
    assert [r["model"] for r in rows] == default_models()


def test_cli_slow_model_still_runs_when_named(day):
    pytest.importorskip("lightgbm")
    result = invoke("forecast", "backtest", "--trace", day, "--horizon", "12", "--step", "36", "--refit", "1d",
                    "--models", "select-quantile", "--json", "-")
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    assert row["model"] == "select-quantile" and not row.get("skipped")
    assert np.isfinite(row["pinball_0.95"]) and 0 <= row["coverage_80"] <= 1


def test_help_names_the_default_and_the_opt_in_models():
    result = invoke("forecast", "backtest", "--help")
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    for name in SLOW_MODELS:
        assert name in text
    assert "--models all" in text and "default" in text and "online-ses" in text


def test_select_quantile_reuses_replays_with_the_same_numbers(monkeypatch):
    """The GBM replays kept from one predict to the next change nothing, across refits too."""
    pytest.importorskip("lightgbm")
    from presplit.forecast import Context
    from presplit.forecast import select as select_mod
    from presplit.forecast.backtest import run_model
    from presplit.forecast.gbm import GlobalGBM
    from presplit.forecast.select import SelectQuantile

    rng = np.random.default_rng(5)
    t = np.arange(240)  # hourly steps: 10 days, so features reach a full day back
    y = np.clip(0.4 + 0.2 * np.sin(2 * np.pi * t / 24 + rng.uniform(0, 6, (24, 1)))
                + 0.05 * rng.standard_normal((24, 240)), 0, 1)
    ctx = Context(interval_s=3600)
    spec = BacktestSpec(horizon=6, history=72, start=72, step=6, refit=36)
    origins = spec.validate(y.shape[1])
    calls = {"n": 0}
    design = select_mod.design

    def counted(*a, **k):
        calls["n"] += 1
        return design(*a, **k)

    monkeypatch.setattr(select_mod, "design", counted)
    runs = {}
    for reuse in (False, True):
        calls["n"] = 0
        model = SelectQuantile(gbm=GlobalGBM(max_anchors=800, rounds=20), reuse=reuse)
        runs[reuse] = (run_model(model, y, origins, spec, ctx), calls["n"])
    (plain, n_plain), (reused, n_reused) = runs[False], runs[True]
    np.testing.assert_array_equal(plain.quants, reused.quants)
    np.testing.assert_array_equal(plain.mean, reused.mean)
    assert n_reused < 0.7 * n_plain, (n_reused, n_plain)


def test_models_command_marks_the_opt_in_models():
    result = invoke("forecast", "models", "--json", "-")
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    for name in names():
        assert rows[name]["backtest"] == ("opt-in" if name in SLOW_MODELS else "default")
    text = invoke("forecast", "models").output
    assert all("opt-in" in line for line in text.splitlines() if line.split()[0] in SLOW_MODELS)
