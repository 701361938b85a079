"""Policies as plugins: FILE.py:Class, module:Class and entry points, everywhere a policy name is accepted.

The example of docs/writing-a-policy.md runs through ``simulate`` and ``sweep`` (on a local Dask
cluster, whose workers load it by path), a module and an entry point plugin run through the
registry and the CLI, a domain-engine plugin runs under a ``presplit run`` profile with checked
arguments, and every way a plugin can be wrong is one line naming the spec.
"""

from __future__ import annotations

import json
import signal
import sys
import textwrap
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parents[1]))  # the tests' plain support modules
from cli_support import SMALL_SCENARIO, make_day  # noqa: E402

from presplit.cli.main import cli
from presplit.policies import CloudSimEnginePolicy, DomainEnginePolicy, PolicyError, engines, make_policy
from presplit.policies.registry import find_plugin

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "threshold_policy.py"
SPEC = "examples/threshold_policy.py:Threshold"

# A CloudSim-engine policy that starts guests as DVFS does and never migrates: its metrics are DVFS's.
STILL = '''
from presplit.policies.api import first_fit


class Still:
    """First fit, no migrations."""

    engine = "cloudsim"
    migrates = False
    place_initial = staticmethod(first_fit)

    def optimise(self, engine):
        return []
'''

# A domain-engine policy with a declared parameter: each arriving guest goes to the first domain that takes it.
PACKER = '''
from dataclasses import dataclass

from presplit.plan import PlaceGuest, apply_action
from presplit.policies.api import param


@dataclass
class Packer:
    """Each arriving guest in the first domain that takes it."""

    fill: float = param(0.9, gt=0, le=1, doc="a share of the domain (shown in the reason)")
    engine = "domains"

    def propose(self, state, forecasts, now):
        actions = []
        for g in state.pending_guests():
            for d in range(len(state.domains)):
                action = PlaceGuest(int(g), d, reason=f"first domain that takes it (fill {self.fill})")
                after, outcome = apply_action(state, action)
                if outcome.ok:
                    state = after
                    actions.append(action)
                    break
        return actions
'''




@pytest.fixture(scope="module")
def day(tmp_path_factory) -> Path:
    return make_day(tmp_path_factory.mktemp("traces") / "20990101")


def invoke(*args, **kw):
    previous = signal.getsignal(signal.SIGTERM)  # `presplit run` installs its own handler
    try:
        return CliRunner().invoke(cli, [str(a) for a in args], **kw)
    finally:
        signal.signal(signal.SIGTERM, previous)


# --------------------------------------------------------------------------- the documented example


def test_the_example_is_a_policy_of_at_most_30_lines():
    assert len(EXAMPLE.read_text().splitlines()) <= 30
    plugin = find_plugin(str(EXAMPLE) + ":Threshold")
    assert plugin.engines == ("cloudsim",)
    policy = make_policy(str(EXAMPLE) + ":Threshold")
    assert isinstance(policy, CloudSimEnginePolicy) and not isinstance(policy, DomainEnginePolicy)
    assert (policy.high, policy.low) == (0.8, 0.5)


def test_the_example_runs_through_simulate_beside_lr_mmt(monkeypatch, tmp_path):
    """The documented command, on the bundled PlanetLab day: the plugin's row carries its name."""
    monkeypatch.chdir(ROOT)
    out = tmp_path / "rows.json"
    result = invoke("simulate", "--policy", SPEC, "--policy", "lr-mmt:1.2", "--json", out)
    assert result.exit_code == 0, result.output
    assert "threshold_policy.py" in result.stdout and "lr-mmt:1.2" in result.stdout
    mine, lr = json.loads(out.read_text())
    assert (mine["trace"], mine["policy"], lr["policy"]) == ("20110303", SPEC, "lr-mmt:1.2")
    assert 0 < mine["energy_kwh"] < lr["energy_kwh"]  # it consolidates (the table in the doc has the numbers)
    assert 0 < mine["migrations"] < lr["migrations"]
    assert 0 < mine["slatah"] < 1 and mine["energy_over_bound"] >= 1.0


def test_the_example_sweeps_on_a_dask_cluster_whose_workers_load_it_by_path(monkeypatch, tmp_path, day):
    """The sweep hands workers the spec string (made absolute), never the class: they run in another
    folder here, so a relative path would not resolve; the rows match a sequential run in this process."""
    from presplit.scale.sweep import comparable, expand_runs, run_sweep

    monkeypatch.chdir(ROOT)
    specs = expand_runs([SPEC, "dvfs"], [("high", [0.7, 0.9])], [(day.name, str(day), 30)])
    assert [s.label for s in specs] == [f"{SPEC}[high=0.7]", f"{SPEC}[high=0.9]", "dvfs"]
    assert specs[0].source == f"{EXAMPLE}:Threshold" and specs[0].policy == SPEC
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    dask = run_sweep(specs, tmp_path / "dask.parquet", workers=1, progress=False)
    assert dask.done == 3 and not dask.failed, dask.failed
    seq = run_sweep(specs, tmp_path / "seq.parquet", sequential=True, progress=False)
    assert seq.done == 3 and not seq.failed, seq.failed
    rows = comparable(pq.read_table(tmp_path / "dask.parquet"))
    assert rows == comparable(pq.read_table(tmp_path / "seq.parquet"))
    by_run = {r["run"]: r for r in rows}
    assert by_run[f"{SPEC}[high=0.7]"]["policy"] == SPEC
    assert by_run[f"{SPEC}[high=0.7]"]["energy_kwh"] != by_run[f"{SPEC}[high=0.9]"]["energy_kwh"]


def test_sweep_and_report_cli_carry_the_plugins_name(monkeypatch, tmp_path, day):
    monkeypatch.chdir(ROOT)
    out = tmp_path / "r.parquet"
    result = invoke("sweep", "--sequential", "--policy", SPEC, "--param", "low=0.3,0.5", "--trace", day,
                    "--out", out, "--json", "-")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["done"], summary["failed"], summary["rows"]) == (2, [], 2)
    assert sorted(r["run"] for r in pq.read_table(out).to_pylist()) == [f"{SPEC}[low=0.3]", f"{SPEC}[low=0.5]"]
    html = tmp_path / "report.html"
    result = invoke("report", out, "--out", html)
    assert result.exit_code == 0, result.output
    assert f"{SPEC}[low=0.3]" in html.read_text()
    bad = invoke("sweep", "--sequential", "--policy", SPEC, "--param", "low=0,0.5", "--trace", day,
                 "--out", tmp_path / "bad.parquet")
    assert bad.exit_code == 2 and "--param low" in bad.output and "> 0" in bad.output, bad.output


# --------------------------------------------------------------------------- module:Class and entry points


@pytest.fixture
def still_module(tmp_path, monkeypatch) -> str:
    package = tmp_path / "mod_path" / "mylab"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "policies.py").write_text(STILL)
    monkeypatch.syspath_prepend(str(tmp_path / "mod_path"))
    return "mylab.policies:Still"


def test_module_class_runs_like_the_builtin_it_copies(still_module, day, tmp_path):
    assert engines(still_module) == ("cloudsim",)
    assert isinstance(make_policy(still_module), CloudSimEnginePolicy)
    out = tmp_path / "rows.json"
    result = invoke("simulate", "--trace", day, "--policy", still_module, "--policy", "dvfs", "--json", out)
    assert result.exit_code == 0, result.output
    still, dvfs = json.loads(out.read_text())
    assert still["policy"] == still_module
    for key in ("energy_kwh", "migrations", "slatah", "pdm", "overall_sla_violation"):
        assert still[key] == dvfs[key], key


@pytest.fixture
def installed(tmp_path, monkeypatch) -> Path:
    """A package installed in a folder on sys.path: a dist-info folder with entry points, and its module."""
    site = tmp_path / "site"
    dist = site / "mylab_policies-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: mylab-policies\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(textwrap.dedent("""
        [presplit.policies]
        still = mylab_ep:Still
        packer = mylab_ep:Packer
        broken = mylab_ep:Nothing
        dvfs = mylab_ep:Still
    """))
    (site / "mylab_ep.py").write_text(STILL + PACKER)
    monkeypatch.syspath_prepend(str(site))
    return site


def test_entry_point_plugins_by_name(installed, day, tmp_path):
    assert engines("still") == ("cloudsim",) and engines("packer") == ("domains",)
    assert "still" in find_plugin("still").origin and "mylab-policies" in find_plugin("still").origin
    assert type(make_policy("dvfs")).__name__ == "FirstFit"  # built-in names win
    out = tmp_path / "rows.json"
    result = invoke("simulate", "--trace", day, "--policy", "still", "--json", out)
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())[0]["policy"] == "still"
    listing = invoke("policies", "--json", "-")
    assert listing.exit_code == 0, listing.output
    entries = {(e["name"], e["engine"]): e for e in json.loads(listing.stdout)}
    assert entries["still", "cloudsim"]["source"].startswith("entry point still = mylab_ep:Still")
    assert entries["packer", "domains"]["parameters"][0] | {"doc": ""} == {
        "name": "fill", "type": "float", "default": 0.9, "bounds": {"gt": 0, "le": 1}, "range": "> 0 and <= 1",
        "doc": ""}
    assert "no class 'Nothing'" in entries["broken", ""]["error"]
    assert "shadowed" in entries["dvfs", ""]["error"]
    assert "an installed plugin (broken, dvfs, packer, still)" in invoke("simulate", "--policy", "nope").output


def test_entry_point_via_mocked_entry_points(monkeypatch, tmp_path):
    """The group and the name are what the registry asks importlib.metadata for."""
    from importlib import metadata

    (tmp_path / "mocked_mod.py").write_text(STILL)
    monkeypatch.syspath_prepend(str(tmp_path))
    asked = []

    def fake(**kw):
        asked.append(kw)
        return [metadata.EntryPoint("mocked", "mocked_mod:Still", "presplit.policies")]

    monkeypatch.setattr(metadata, "entry_points", fake)
    assert engines("mocked") == ("cloudsim",)
    assert asked == [{"group": "presplit.policies"}]


# --------------------------------------------------------------------------- profiles (run, serve)


def test_a_domain_plugin_in_a_run_profile_with_checked_args(tmp_path, day):
    from presplit.control.profile import ProfileError, build_policies, load_profile

    plugin = tmp_path / "packer.py"
    plugin.write_text(PACKER)
    scenario = tmp_path / "small.yaml"
    scenario.write_text(SMALL_SCENARIO.format(trace=day))
    profile = tmp_path / "p.yaml"
    profile.write_text(f"policies: [{{name: {plugin}:Packer, args: {{fill: 0.5}}}}]\n")
    (policy,) = build_policies(load_profile(profile), "domains")
    assert policy.fill == 0.5
    for args, words in [("{fill: 2}", "policies[0].args.fill: 2"), ("{fil: 1}", "has no argument 'fil'")]:
        profile.write_text(f"policies: [{{name: {plugin}:Packer, args: {args}}}]\n")
        with pytest.raises(ProfileError, match=words.replace("[", r"\[").replace("]", r"\]")):
            load_profile(profile)
    profile.write_text(f"policies: [{{name: {plugin}:Packer, args: {{fill: 0.5}}}}]\n")
    result = invoke("run", "--scenario", scenario, "--db", f"sqlite:///{tmp_path / 'j.db'}", "--until", "1h",
                    "--profile", profile)
    assert result.exit_code == 0, result.output
    assert "ticks=13 " in result.output and "statuses={'succeeded': 1}" in result.output, result.output
    result = invoke("simulate", "--scenario", scenario, "--policy", f"{plugin}:Packer", "--json", "-")
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    assert row["policy"] == f"{plugin}:Packer"
    explain = invoke("explain", "--scenario", scenario, "--guest", "vm_000", "--policy", f"{plugin}:Packer",
                     "--json", "-")
    assert explain.exit_code == 0, explain.output
    story = json.loads(explain.stdout)
    assert story["actions"][0]["action"] == "PlaceGuest" and "fill 0.9" in story["actions"][0]["reason"]


# --------------------------------------------------------------------------- one-line errors


def _write(tmp_path, text: str, name: str = "plug.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


@pytest.mark.parametrize("source, spec, words", [
    (None, "missing.py:X", ["file missing.py not found", "FILE.py:Class"]),
    (STILL, "plug.py:Nope", ["plug.py has no class 'Nope'", "it defines Still"]),
    (STILL, "plug.py:first_fit", ["first_fit in plug.py is a function, not a class"]),
    ("class Thing:\n    pass\n", "plug.py:Thing", ["class Thing is not a policy", "propose(state, forecasts, now)"]),
    ("class Half:\n    engine = 'cloudsim'\n    def optimise(self, e):\n        return []\n", "plug.py:Half",
     ["declares engine = 'cloudsim' but is not a CloudSim-engine policy", "place_initial(engine)", "migrates"]),
    ("class Odd:\n    engine = 'openstack'\n    def propose(self, s, f, n):\n        return []\n", "plug.py:Odd",
     ["declares engine = 'openstack'", "expected 'cloudsim', 'domains'"]),
    (PACKER, "plug.py:Packer", ["runs on the domain engine only", "scenario 'cloudsim'"]),
    ("def broken(:\n", "plug.py:X", ["plug.py:1: syntax error"]),
    ("raise RuntimeError('no licence server')\n", "plug.py:X", ["importing plug.py failed",
                                                                 "RuntimeError: no licence server"]),
    ("import not_installed_anywhere\n", "plug.py:X", ["importing plug.py failed", "not_installed_anywhere"]),
    (STILL.replace("class Still:", "class Still:\n    def __init__(self, needed):\n        pass\n"),
     "plug.py:Still", ["Still() failed", "give every parameter a default"]),
    (STILL, "plug.py", ["expected FILE.py:Class"]),
    (None, "no_such_package.policies:Mine", ["no module named 'no_such_package'", "package.module:Class"]),
])
def test_a_bad_plugin_is_one_line_naming_the_spec(tmp_path, monkeypatch, source, spec, words):
    if source is not None:
        _write(tmp_path, source)
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out.json"
    result = invoke("simulate", "--policy", spec, "--json", out)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("presplit simulate: error: --policy: "), result.output
    assert f"policy {spec!r}" in lines[0], lines[0]
    for w in words:
        assert w in lines[0], (w, lines[0])
    assert not out.exists()
    if "domain engine" not in lines[0]:  # the registry says the same to callers of make_policy
        with pytest.raises(PolicyError, match=words[0].replace("(", r"\(").replace(")", r"\)")):
            make_policy(spec)


def test_engine_mismatch_and_errors_on_the_other_commands(tmp_path, day):
    plugin = _write(tmp_path, PACKER)
    still = _write(tmp_path, STILL, "still.py")
    scenario = tmp_path / "small.yaml"
    scenario.write_text(SMALL_SCENARIO.format(trace=day))
    result = invoke("sweep", "--policy", f"{plugin}:Packer", "--trace", day, "--out", tmp_path / "r.parquet")
    assert result.exit_code == 2 and "runs on the domain engine" in result.output, result.output
    result = invoke("simulate", "--scenario", scenario, "--policy", f"{still}:Still")
    assert result.exit_code == 2 and "runs on the CloudSim engine only" in result.output, result.output
    assert "or a plugin whose class says engine = 'domains'" in result.output
    result = invoke("explain", "--scenario", scenario, "--guest", "vm_000", "--policy", f"{still}:Still")
    assert result.exit_code == 2 and "runs on the CloudSim engine only" in result.output, result.output
    profile = tmp_path / "p.yaml"
    profile.write_text(f"policies: [{{name: {still}:Still}}]\n")
    result = invoke("run", "--scenario", scenario, "--db", f"sqlite:///{tmp_path / 'j.db'}", "--profile", profile)
    assert result.exit_code == 2 and "this backend is domains" in result.output, result.output
    assert not (tmp_path / "r.parquet").exists() and not (tmp_path / "j.db").exists()
