"""`presplit simulate --model realistic` and a scenario's `model:` key, on both engines."""

from __future__ import annotations

import json

from click.testing import CliRunner

from presplit.cli.main import cli
from presplit.scenarios import load_scenario, resolve_scenario


def test_simulate_model_realistic_rows(tmp_path):
    out = tmp_path / "rows.json"
    res = CliRunner().invoke(cli, ["simulate", "--model", "realistic", "--policy", "lr-mmt:1.2", "--policy",
                                   "presplit", "--json", str(out)])
    assert res.exit_code == 0, res.output
    rows = json.loads(out.read_text())
    for row in rows:
        assert row["model"] == "realistic"
        assert row["max_ram_ratio"] <= 1.0 and row["refused_actions"] == 0
        assert row["fluid_bound_kwh"] > 5 * row["fluid_bound_cpu_kwh"]
        assert row["energy_kwh"] >= row["fluid_bound_kwh"]
    lr, ps = rows
    assert ps["energy_kwh"] < lr["energy_kwh"] and ps["migrations"] < lr["migrations"]


def test_the_cloudsim_preset_reports_its_memory_overcommit(tmp_path):
    out = tmp_path / "rows.json"
    res = CliRunner().invoke(cli, ["simulate", "--policy", "lr-mmt:1.2", "--json", str(out)])
    assert res.exit_code == 0, res.output
    row = json.loads(out.read_text())[0]
    assert row["model"] == "cloudsim" and row["max_ram_ratio"] > 4.0  # CloudSim lets hosts hold 10x their RAM
    assert row["fluid_bound_kwh"] == row["fluid_bound_cpu_kwh"]


def test_a_scenario_file_chooses_its_model(tmp_path):
    day = resolve_scenario("cloudsim")[1][0]
    path = tmp_path / "real.yaml"
    path.write_text(f"name: real\nengine: cloudsim\nmodel: realistic\nguests:\n  trace: {day}\n")
    factory, _ = resolve_scenario(str(path))
    assert factory(10).model.name == "realistic"
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nengine: cloudsim\nmodel: magic\n")
    res = CliRunner().invoke(cli, ["simulate", "--scenario", str(bad)])
    assert res.exit_code == 2 and "model" in res.output and "cloudsim or realistic" in res.output


def test_a_domain_scenario_under_the_realistic_model_gets_its_host_defaults(tmp_path):
    from presplit.service.demo import demo_scenario

    path = demo_scenario(tmp_path / "demo")
    text = path.read_text().replace("      boot_delay_s: 60, ", "      ")
    path.write_text(text.replace("name: demo", "name: demo\nmodel: realistic"))
    scen = load_scenario(str(path))
    assert scen.model_preset == "realistic"
    assert scen.hosts[0].boot_delay_s == 180.0 and scen.hosts[0].off_power_w == 10.0


def test_the_bitbrains_scenario_runs_the_week_on_its_own_vm_sizes(tmp_path):
    from presplit.traces import load_trace

    factory, (trace,) = resolve_scenario("bitbrains")
    week = load_trace(trace)
    fleet = factory(week)
    assert fleet.n_guests == week.n_guests and fleet.model.name == "realistic"
    assert fleet.model.horizon_s == week.n_steps * week.interval_s  # the whole week, not CloudSim's day
    ram = fleet.guest_attr("ram_mb")
    assert ram.max() <= 16 * 1024 and fleet.host_attr("ram_mb").min() == 16 * 1024
    out = tmp_path / "rows.json"
    res = CliRunner().invoke(cli, ["simulate", "--scenario", "bitbrains", "--policy", "presplit", "--policy", "dvfs",
                                   "--json", str(out)])
    assert res.exit_code == 0, res.output
    for row in json.loads(out.read_text()):
        assert row["model"] == "realistic" and row["max_ram_ratio"] <= 1.0
        assert row["energy_kwh"] >= row["fluid_bound_kwh"] > 3 * row["fluid_bound_cpu_kwh"]
    day = str(resolve_scenario("cloudsim")[1][0])  # a PlanetLab day records no VM sizes
    res = CliRunner().invoke(cli, ["simulate", "--scenario", "bitbrains", "--trace", day, "--policy", "dvfs"])
    assert res.exit_code == 2 and "provisioned CPU and memory" in res.output
