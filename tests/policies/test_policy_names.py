"""presplit's two policies have distinct names: ``presplit`` (split domains) and ``presplit-consolidate``
(the CloudSim fleet), and ``presplit`` keeps running the CloudSim-fleet one on the CloudSim engine."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parents[1]))  # the tests' plain support modules
from cli_support import SMALL_SCENARIO, make_day  # noqa: E402

from presplit.cli.main import cli
from presplit.policies import engines, make_policy
from presplit.policies.presplit.consolidation import PredictiveConsolidation
from presplit.policies.presplit.domains import DomainPresplit


def test_each_name_builds_its_policy_on_its_engine():
    assert engines("presplit") == ("cloudsim", "domains") and engines("presplit-consolidate") == ("cloudsim",)
    assert type(make_policy("presplit")) is PredictiveConsolidation
    assert type(make_policy("presplit-consolidate")) is PredictiveConsolidation
    assert type(make_policy("PRESPLIT-Consolidate")) is PredictiveConsolidation  # names are case-blind
    assert type(make_policy("presplit", engine="domains")) is DomainPresplit


def test_the_listing_names_both_with_their_engine():
    result = CliRunner().invoke(cli, ["policies", "--json", "-"])
    assert result.exit_code == 0, result.output
    rows = [(e["name"], e["engine"]) for e in json.loads(result.stdout)]
    assert rows[:2] == [("presplit", "domains"), ("presplit-consolidate", "cloudsim")]
    assert ("presplit", "cloudsim") not in rows  # one line per policy, not per spelling
    summary = {e["name"]: e["summary"] for e in json.loads(result.stdout)}
    assert "split-domain engine" in summary["presplit"]
    assert "CloudSim engine" in summary["presplit-consolidate"]
    assert "--policy presplit " in summary["presplit-consolidate"]


def test_on_the_cloudsim_engine_both_names_run_the_same_policy_and_rows_keep_the_name_given(tmp_path):
    day = make_day(tmp_path / "20990101", n_vms=20)
    out = tmp_path / "rows.json"
    result = CliRunner().invoke(cli, ["simulate", "--trace", str(day), "--policy", "presplit",
                                      "--policy", "presplit-consolidate", "--json", str(out)])
    assert result.exit_code == 0, result.output
    rows = json.loads(out.read_text())
    assert [r["policy"] for r in rows] == ["presplit", "presplit-consolidate"]
    volatile = {"policy", "wall_s", "peak_rss_mb"}
    same = [{k: v for k, v in r.items() if k not in volatile} for r in rows]
    assert same[0] == same[1]


def test_presplit_consolidate_is_refused_on_a_domain_scenario(tmp_path):
    trace = make_day(tmp_path / "20990101", n_vms=8)
    scenario = tmp_path / "small.yaml"
    scenario.write_text(SMALL_SCENARIO.format(trace=trace))
    result = CliRunner().invoke(cli, ["simulate", "--scenario", str(scenario), "--policy", "presplit-consolidate"])
    assert result.exit_code == 2
    assert "'presplit-consolidate' runs on the CloudSim engine only" in result.output, result.output


@pytest.mark.parametrize("name", ["presplit", "presplit-consolidate"])
def test_a_run_profile_takes_either_name_on_a_cloudsim_world(name):
    from presplit.control.profile import PolicySpec, Profile, build_policies

    (policy,) = build_policies(Profile((PolicySpec(name),)), "cloudsim")
    assert type(policy) is PredictiveConsolidation


def test_the_domain_engine_takes_the_policy_protocol_of_policies_api():
    from presplit.policies import api
    from presplit.sim import domain_engine

    assert domain_engine.Policy is api.Policy and domain_engine.DomainForecasts is api.DomainForecasts
    for name in ("presplit", "evacuate"):
        policy = make_policy(name, engine="domains")
        assert isinstance(policy, api.DomainEnginePolicy) and policy.name == name
    assert make_policy("presplit", engine="domains").needs_forecasts is True
