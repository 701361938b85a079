"""The decision forecasts policies act on: additive rows, real oracles, every model able to drive a run."""

from __future__ import annotations

from importlib.resources import files

import numpy as np
import pytest
from click.testing import CliRunner

from presplit.cli.main import cli
from presplit.forecast.base import ForecastError
from presplit.forecast.decision import Oracle, forecaster_names, make_forecaster
from presplit.model.hardware import cloudsim_preset
from presplit.policies import make_policy
from presplit.sim.engine import Engine
from presplit.sim.runner import run_simulation
from presplit.traces import load_trace, read_planetlab

FAST = ["outlook", "reactive", "oracle", "baseline-last", "baseline-window-quantile-1h", "baseline-autopilot-1h",
        "online-ses"]


@pytest.fixture(scope="module")
def day():
    return read_planetlab(files("presplit") / "data" / "planetlab" / "20110303")


def _small(day, n=120):
    """Every 9th guest of the bundled day on a fleet sized like CloudSim's (800 hosts for 1,052 guests)."""
    util = np.ascontiguousarray(day.resource("cpu")[::9][:n])
    return util, cloudsim_preset(len(util), n_hosts=max(8, len(util) * 800 // 1052))


def test_rows_are_additive_and_bounds_take_the_sum():
    rng = np.random.default_rng(0)
    history = rng.uniform(0, 100, size=(5, 20))
    future = rng.uniform(0, 100, size=(5, 13))
    for name in ("outlook", "reactive", "oracle", "baseline-window-quantile-1h"):
        tick = make_forecaster(name, horizon=12).at(history, 40, future=future)
        rows = tick.rows()
        assert rows.shape[0] == 5 and np.all(np.isfinite(tick.upper(rows))), name
        assert tick.upper(rows[:2].sum(axis=0)) == pytest.approx(tick.upper(rows[:2].sum(axis=0)[None])[0])
    for name in ("reactive", "oracle"):  # bounds that are maxima never exceed the sum of the parts' bounds
        tick = make_forecaster(name, horizon=12).at(history, 40, future=future)
        rows = tick.rows()
        assert tick.upper(rows[0] + rows[1]) <= tick.upper(rows[0]) + tick.upper(rows[1]) + 1e-9, name
    oracle = make_forecaster("oracle", horizon=12).at(history, 40, future=future)
    assert oracle.upper(oracle.rows()).tolist() == future.max(axis=1).tolist()


def test_the_oracle_sees_now_and_the_horizon_and_nothing_beyond():
    history = np.zeros((2, 5))
    future = np.arange(2 * 20, dtype=float).reshape(2, 20)
    tick = Oracle(horizon=3).at(history, 0, future=future)
    assert tick.rows().shape == (2, 4) and tick.upper(tick.rows()).tolist() == [3.0, 23.0]
    with pytest.raises(ForecastError, match="simulation only"):
        Oracle(horizon=3).at(history, 0)


def test_a_policy_given_the_oracle_never_looks_past_its_horizon(day):
    """Two traces equal up to the first decision's horizon, different after it: the same first decision."""
    util, fleet = _small(day)
    horizon = make_policy("presplit").horizon_steps(Engine(fleet, util, make_policy("presplit")))

    def first_moves(u):
        policy = make_policy("presplit")
        policy.forecaster_name = "oracle"
        engine = Engine(fleet, u, policy)
        policy.place_initial(engine)
        engine.begin_tick(fleet.model.first_tick_s + fleet.model.interval_s)  # the first tick: sample 1
        return policy.optimise(engine)

    moves = first_moves(util)
    changed = util.copy()
    changed[:, 1 + horizon + 1:] = 1.0 - changed[:, 1 + horizon + 1:]  # everything past the horizon differs
    assert first_moves(changed) == moves and moves  # it decided something, and the same thing
    inside = util.copy()
    inside[:, 1 + horizon] = 1.0  # every guest peaks at the horizon's last step: the oracle must see it
    assert first_moves(inside) != moves


@pytest.mark.parametrize("name", FAST)
def test_each_fast_forecaster_drives_a_short_simulation(day, name):
    util, fleet = _small(day, n=60)
    fleet = type(fleet)(fleet.host_types, fleet.host_type_of, fleet.guest_types, fleet.guest_type_of,
                        type(fleet.model)(horizon_s=48 * 300.0 + 0.1))
    policy = make_policy("presplit")
    policy.forecaster_name = name
    result = Engine(fleet, util, policy).run()
    assert result.metrics["energy_kwh"] > 0
    assert all(name in d.numbers["forecast"] or name == "outlook" for d in policy.decisions)


def test_every_registered_model_is_a_forecaster_name():
    from presplit.forecast.registry import names

    assert set(names()) <= set(forecaster_names()) and {"outlook", "reactive", "oracle"} <= set(forecaster_names())


def test_simulate_rows_carry_the_forecaster_and_refuse_what_does_not_apply(tmp_path):
    out = tmp_path / "rows.json"
    day = str(files("presplit") / "data" / "planetlab" / "20110303")
    res = CliRunner().invoke(cli, ["simulate", "--trace", day, "--policy", "presplit", "--policy", "dvfs",
                                   "--forecaster", "reactive", "--forecaster", "oracle", "--json", str(out)])
    assert res.exit_code == 0, res.output
    import json

    rows = json.loads(out.read_text())
    assert [(r["policy"], r["forecaster"]) for r in rows] == [("presplit", "reactive"), ("presplit", "oracle"),
                                                              ("dvfs", "none")]
    reactive, oracle = rows[0], rows[1]
    assert oracle["esv"] <= 0.15 * reactive["esv"]  # a real oracle, not a weakened one
    bad = CliRunner().invoke(cli, ["simulate", "--policy", "presplit", "--forecaster", "crystal-ball"])
    assert bad.exit_code == 2 and "unknown" in bad.output and "oracle" in bad.output
    with pytest.raises(Exception, match="decides on no forecast"):
        run_simulation(load_trace(day), "dvfs", forecaster="oracle")


def test_run_takes_a_forecaster_from_its_option_or_its_profile_but_never_the_oracle(tmp_path):
    from presplit.service.demo import demo_scenario

    scen = demo_scenario(tmp_path / "demo")
    res = CliRunner().invoke(cli, ["run", "--scenario", str(scen), "--db", str(tmp_path / "a.db"), "--until", "1h",
                                   "--forecaster", "baseline-autopilot-1h"])
    assert res.exit_code == 0, res.output
    profile = tmp_path / "p.yaml"
    profile.write_text("policies: [presplit]\nforecaster: reactive\n")
    res = CliRunner().invoke(cli, ["run", "--scenario", "cloudsim", "--db", str(tmp_path / "b.db"), "--until", "1h",
                                   "--profile", str(profile)])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(cli, ["run", "--scenario", "cloudsim", "--db", str(tmp_path / "c.db"),
                                   "--forecaster", "oracle"])
    assert res.exit_code == 2 and "future" in res.output and not (tmp_path / "c.db").exists()
    profile.write_text("policies: [presplit]\nforecaster: crystal-ball\n")
    res = CliRunner().invoke(cli, ["run", "--scenario", "cloudsim", "--db", str(tmp_path / "d.db"),
                                   "--profile", str(profile)])
    assert res.exit_code == 2 and "forecaster" in res.output


def test_the_split_domain_policy_decides_on_any_forecaster(tmp_path):
    import json

    from presplit.service.demo import demo_scenario

    scen = demo_scenario(tmp_path / "demo")
    out = tmp_path / "rows.json"
    res = CliRunner().invoke(cli, ["simulate", "--scenario", str(scen), "--policy", "presplit", "--policy",
                                   "evacuate", "--forecaster", "reactive", "--forecaster", "oracle", "--json",
                                   str(out)])
    assert res.exit_code == 0, res.output
    rows = json.loads(out.read_text())
    assert [(r["policy"], r["forecaster"]) for r in rows] == [("presplit", "reactive"), ("presplit", "oracle"),
                                                              ("evacuate", "none")]
    assert rows[0]["energy_kwh"] != rows[1]["energy_kwh"] or rows[0]["migrations"] != rows[1]["migrations"]
