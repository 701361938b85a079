"""Scenario files: precise loader errors, shipped scenarios, and the CLI on the domain engine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from presplit.cli.main import cli
from presplit.scenarios import ScenarioError, load_scenario, resolve_scenario
from presplit.scenarios.build import build_run
from presplit.scenarios.loader import ScenarioFileError, load_scenario_file

BITBRAINS = Path(__file__).resolve().parents[3] / "shared" / "data" / "bitbrains" / "rnd_2013-7_first7d.parquet"
SMALL = """
name: small
hosts:
  - {name: h, count: 4, cores: 8, mips_per_core: 1000, ram_gb: 64, racks: 2,
     power_w: [100, 130, 150, 170, 190, 210, 230, 250, 270, 290, 310]}
services:
  minimal: [{name: vmm, cores: 1, mem_gb: 2}]
patch:
  duration_per_domain: 30m
  calendar:
    groups: {first: ["h-0?"]}
    rules: [{group: first, rrule: "FREQ=DAILY", dtstart: "2011-03-03T01:00", duration: 2h, tz: UTC}]
guests:
  trace: {trace}
  default_size: {{cores: 1, ram_gb: 2}}
  arrivals: at-start
start: "2011-03-03T00:00:00+00:00"
"""


def write(tmp_path, text, trace="day"):
    path = tmp_path / "s.yaml"
    path.write_text(text.replace("{trace}", str(trace)).replace("{{", "{").replace("}}", "}"))
    return path


@pytest.mark.parametrize("old, new, key, words", [
    ("cores: 8", "corez: 8", "hosts[0].corez", "unknown key"),
    ("cores: 8", "cores: many", "hosts[0].cores", "expected an integer"),
    ("racks: 2", "racks: 2, nic_gbit: fast", "hosts[0].nic_gbit", "number"),
    ("arrivals: at-start", "arrivals: soon", "guests.arrivals", "first-nonzero"),
    ("group: first", "group: second", "patch.calendar.rules[0].group", "unknown group"),
    ("duration_per_domain: 30m", "duration_per_domain: soon", "patch.duration_per_domain", "duration"),
    ("name: small", "name: small\nflavour: x", "flavour", "unknown key"),
    ("mem_gb: 2}]", "mem_gb: 2, disk_mb_s: -5}]", "services.minimal[0].disk_mb_s", "MB/s >= 0"),
    ("mem_gb: 2}]", "mem_gb: 2, net_mb_s: lots}]", "services.minimal[0].net_mb_s", "number"),
    ("name: small", "name: small\nmigration: {switchover_ms: -1}", "migration.switchover_ms", ">= 0"),
])
def test_loader_errors_name_file_and_key(tmp_path, old, new, key, words):
    path = write(tmp_path, SMALL.replace(old, new))
    with pytest.raises(ScenarioFileError) as err:
        load_scenario_file(path)
    assert err.value.key == key and str(path) in str(err.value) and words in str(err.value), str(err.value)


def test_service_io_capacities_are_read():
    model = load_scenario("bighost-patch").model
    assert model.io_modelled
    carried = {s.name: (s.disk_mb_s, s.net_mb_s) for s in (*model.minimal_services, *model.optional_services)}
    assert carried["vmm"][0] > 0 and carried["storage-proxy"][0] > carried["vmm"][0]
    assert carried["net-offload"][1] > carried["vmm"][1]


def test_missing_trace_says_so(tmp_path):
    path = write(tmp_path, SMALL, trace="nowhere/trace.parquet")
    with pytest.raises(ScenarioFileError) as err:
        build_run(load_scenario_file(path))
    text = str(err.value)
    assert str(path) in text and "guests.trace" in text and "nowhere/trace.parquet" in text and "--trace" in text


def test_small_scenario_builds_hosts_racks_and_windows(tmp_path):
    from tests_support import planetlab_day

    path = write(tmp_path, SMALL, trace=planetlab_day(tmp_path))
    run = build_run(load_scenario_file(path))
    s = run.state
    assert [h.rack for h in s.hosts] == ["r0", "r0", "r1", "r1"]
    assert s.n_guests == 6 and len(s.patch_windows) == 4  # daily, one day, 4 hosts h-00..h-03
    assert s.patch_windows[0].start == 3600.0 and s.patch_windows[0].end == 3 * 3600.0
    assert s.fabric.path(0, 1).hops == 1 and s.fabric.path(0, 2).hops == 4


def test_shipped_scenarios_and_cloudsim_name():
    assert load_scenario("cloudsim").engine == "cloudsim"
    big = load_scenario("bighost-patch")
    assert big.engine == "domains" and big.hosts[0].count == 40 and big.hosts[0].ram_mb == 384 * 1024
    factory, traces = resolve_scenario("cloudsim")
    assert factory(10).n_hosts == 800 and traces[0].name == "20110303"
    with pytest.raises(ScenarioError, match="domain engine"):
        resolve_scenario("bighost-patch")


def test_trace_override_is_checked(tmp_path):
    out = tmp_path / "o.json"
    result = CliRunner().invoke(cli, ["simulate", "--scenario", "bighost-patch", "--policy", "evacuate",
                                      "--trace", str(tmp_path / "missing.parquet"), "--json", str(out)])
    assert result.exit_code == 2 and "missing.parquet" in result.output and not out.exists()


def test_cloudsim_policy_on_domain_scenario_is_refused():
    result = CliRunner().invoke(cli, ["simulate", "--scenario", "bighost-patch", "--policy", "lr-mmt:1.2"])
    assert result.exit_code == 2 and "domain engine" in result.output and "evacuate" in result.output


@pytest.mark.skipif(not BITBRAINS.exists(), reason="the Bitbrains week is not here")
def test_simulate_bighost_patch_evacuate_json(tmp_path):
    out = tmp_path / "rows.json"
    result = CliRunner().invoke(cli, ["simulate", "--scenario", "bighost-patch", "--policy", "evacuate",
                                      "--trace", str(BITBRAINS), "--json", str(out)])
    assert result.exit_code == 0, result.output
    (row,) = json.loads(out.read_text())
    for key in ("intra_host_moves", "cross_host_migrations", "fabric_gb", "guest_downtime_s", "patch_windows_total",
                "patch_windows_met", "splits", "merges", "max_migrations_per_guest", "energy_kwh", "slatah", "pdm"):
        assert key in row
    assert row["patch_windows_total"] == 40 and row["patch_windows_met"] == 40
    assert row["cross_host_migrations"] > 0 and row["intra_host_moves"] == 0


def test_explain_prints_a_guests_actions(tmp_path):
    from tests_support import planetlab_day

    path = write(tmp_path, SMALL, trace=planetlab_day(tmp_path))
    result = CliRunner().invoke(cli, ["explain", "--scenario", str(path), "--guest", "vm_000"])
    assert result.exit_code == 0, result.output
    assert "PlaceGuest" in result.output and "headroom" in result.output  # presplit is the default
    bad = CliRunner().invoke(cli, ["explain", "--scenario", str(path), "--guest", "nope"])
    assert bad.exit_code == 2 and "no guest 'nope'" in bad.output
