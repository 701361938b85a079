"""Data out of the box: every shipped scenario finds its trace inside the package; PRESPLIT_DATA still overrides."""

from __future__ import annotations

import fnmatch
import hashlib
import re
import shutil
import tomllib
from importlib.resources import files
from pathlib import Path

import pytest

from presplit.scenarios import load_scenario
from presplit.scenarios.build import build_run, scenario_trace
from presplit.scenarios.loader import ScenarioTraceError, shipped_scenarios

REPO = Path(__file__).resolve().parents[1]
PACKAGE = Path(str(files("presplit")))
BITBRAINS = PACKAGE / "data" / "bitbrains" / "rnd_2013-7_first7d.parquet"


@pytest.fixture
def no_shared(monkeypatch, tmp_path):
    """PRESPLIT_DATA unset, run from an empty folder: nothing outside the package can supply a trace."""
    monkeypatch.delenv("PRESPLIT_DATA", raising=False)
    monkeypatch.chdir(tmp_path)


def _outside_package(path: Path) -> bool:
    return PACKAGE.resolve() not in path.resolve().parents


def test_bitbrains_week_is_bundled_intact():
    readme = (PACKAGE / "data" / "README.md").read_text()
    digest = re.search(r"sha256: `([0-9a-f]{64})`", readme).group(1)
    assert hashlib.sha256(BITBRAINS.read_bytes()).hexdigest() == digest
    assert "GWA-T-12" in readme and "TU Delft" in readme


def test_package_data_ships_every_bundled_file():
    patterns = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["presplit"]
    for path in (PACKAGE / "data").rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts:
            rel = path.relative_to(PACKAGE).as_posix()
            assert any(fnmatch.fnmatch(rel, p) for p in patterns), f"{rel} is not in package-data"


@pytest.mark.parametrize("name", sorted(shipped_scenarios()))
def test_every_shipped_scenario_finds_its_trace_in_the_package(no_shared, name):
    scenario = load_scenario(name)
    trace = scenario_trace(scenario)
    assert trace.exists()
    assert not _outside_package(trace), f"{name}: {trace} is outside the package"
    assert "shared" not in trace.resolve().parts


def test_bighost_patch_loads_from_the_bundled_copy(no_shared):
    scenario = load_scenario("bighost-patch")
    assert scenario_trace(scenario).resolve() == BITBRAINS.resolve()
    run = build_run(scenario)
    assert run.state.n_hosts == 40
    assert run.state.n_guests > 400  # 429 Bitbrains VMs, replicated up to the target load
    assert run.n_steps == 2016  # a week of 300 s steps


def test_presplit_data_overrides_the_bundled_copy(monkeypatch, tmp_path):
    own = tmp_path / "mine" / "bitbrains"
    own.mkdir(parents=True)
    shutil.copy(BITBRAINS, own / BITBRAINS.name)
    monkeypatch.setenv("PRESPLIT_DATA", str(tmp_path / "mine"))
    assert scenario_trace(load_scenario("bighost-patch")) == own / BITBRAINS.name
    monkeypatch.setenv("PRESPLIT_DATA", "")  # set but empty: as the shell's ${VAR:-default}, the bundled copy
    assert scenario_trace(load_scenario("bighost-patch")).resolve() == BITBRAINS.resolve()


def test_a_wrong_presplit_data_says_how_to_get_the_bundled_copy(monkeypatch, tmp_path):
    monkeypatch.setenv("PRESPLIT_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(ScenarioTraceError) as info:
        scenario_trace(load_scenario("bighost-patch"))
    text = str(info.value)
    assert "PRESPLIT_DATA" in text and "unset it to use the bundled copy" in text and "--trace" in text
