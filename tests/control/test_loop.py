"""The control loop: CloudSim parity through the journal, dry run, SIGTERM, restarts, profiles, the CLI."""

from __future__ import annotations

import json
import signal
import sqlite3
import time

import pytest
from apply_support import popen_cli, run_cli, small_scenario, synthetic_day

from presplit.apply import Journal
from presplit.backends.cloudsim_world import CloudSimPolicy, CloudSimWorld
from presplit.control.clock import SimClock, parse_duration
from presplit.control.assemble import assemble
from presplit.model.hardware import cloudsim_preset
from presplit.plan.ordering import Limits
from presplit.sim.runner import run_simulation
from presplit.traces import load_trace


@pytest.mark.parametrize("policy", ["lr-mmt:1.2", "thr-mu:0.8", "presplit", "dvfs"])
def test_a_simulated_day_through_the_journal_equals_the_direct_simulation(tmp_path, policy):
    workload = load_trace(synthetic_day(tmp_path / "day", n_vms=60, seed=5))
    fleet = cloudsim_preset(workload.n_guests, n_hosts=40)
    _, direct = run_simulation(workload, policy, fleet=fleet)
    world = CloudSimWorld(workload, policy, fleet=fleet)
    journal = Journal(f"sqlite:///{tmp_path / 'j.db'}")
    loop = assemble(world, journal, SimClock(0.0), [CloudSimPolicy(policy)], Limits(None, None, None),
                    interval_s=world.capabilities().interval_s, until_s=fleet.model.horizon_s)
    report = loop.run()
    assert report.ticks == 287  # 24 h of 300 s ticks, as the engine steps
    assert report.metrics == direct.metrics
    assert report.actions == direct.metrics["migrations"]
    if report.actions:
        assert set(report.statuses) == {"succeeded"}
        assert sum(p["actions"].get("succeeded", 0) for p in journal.plans()) == report.actions


def test_dry_run_records_plans_and_changes_nothing(tmp_path):
    scen = small_scenario(tmp_path, horizon="2h")
    db = tmp_path / "j.db"
    out = run_cli("run", "--scenario", str(scen), "--db", f"sqlite:///{db}", "--dry-run", "--until", "1h")
    assert out.returncode == 0, out.stderr
    j = Journal(f"sqlite:///{db}")
    plans = j.plans()
    assert plans and {p["status"] for p in plans} == {"recommended"}
    assert {s for p in plans for s in p["actions"]} == {"recommended"}
    with sqlite3.connect(tmp_path / "j.db.world") as c:
        kinds = {k for (k,) in c.execute("SELECT DISTINCT kind FROM changes")}
    assert kinds == {"advance"}


def test_sigterm_finishes_the_running_action_and_exits_cleanly(tmp_path):
    scen = small_scenario(tmp_path, hosts=8, horizon="24h", replicas=1.5)
    db = tmp_path / "j.db"
    proc = popen_cli("run", "--scenario", str(scen), "--db", f"sqlite:///{db}")
    deadline = time.time() + 30
    started = 0
    while time.time() < deadline and proc.poll() is None and started < 30:
        try:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as c:
                started = c.execute("SELECT count(*) FROM events WHERE event = 'started'").fetchone()[0]
        except sqlite3.OperationalError:
            pass
        time.sleep(0.002)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "stopped=True" in out
    j = Journal(f"sqlite:///{db}")
    assert j.open_plans() == []
    for p in j.plans():
        assert not {"started", "planned", "reverting"} & set(p["actions"]), p


def test_a_restart_continues_from_the_last_tick(tmp_path):
    scen = small_scenario(tmp_path, horizon="4h")
    db = f"sqlite:///{tmp_path / 'j.db'}"
    first = run_cli("run", "--scenario", str(scen), "--db", db, "--until", "2h")
    second = run_cli("run", "--scenario", str(scen), "--db", db, "--until", "4h")
    assert "ticks=25 " in first.stdout and "ticks=24 " in second.stdout, (first.stdout, second.stdout)
    ticks = [p["tick"] for p in Journal(db).plans()]
    assert len(ticks) == len(set(ticks))


@pytest.mark.parametrize("profile, words", [
    ("policies: [{name: nosuch}]", "policies[0].name: unknown policy"),
    ("policies: [evacuate]\ncaps: {per_host: -2}", "caps.per_host: -2 is not a positive whole number"),
    ("policies: [{name: evacuate, args: {bogus: 1}}]", "policies[0].args.bogus: policy 'evacuate' has no argument"),
    ("policies: [lr-mmt:1.2]", "runs on the cloudsim world, this backend is domains"),
    ("policy: evacuate", "policy: unknown key"),
])
def test_bad_profiles_are_refused_before_anything_runs(tmp_path, profile, words):
    scen = small_scenario(tmp_path, horizon="1h")
    (tmp_path / "p.yaml").write_text(profile)
    out = run_cli("run", "--scenario", str(scen), "--db", f"sqlite:///{tmp_path / 'j.db'}",
                  "--profile", str(tmp_path / "p.yaml"))
    assert out.returncode == 2 and words in out.stderr, out.stderr
    assert not (tmp_path / "j.db").exists() and not (tmp_path / "j.db.world").exists()


def test_the_qemu_backend_is_registered():
    from presplit.backends.base import backend_factory

    assert backend_factory("qemu") is not None


def test_state_prints_hosts_domains_guests_and_plans(tmp_path):
    scen = small_scenario(tmp_path, horizon="1h")
    db = f"sqlite:///{tmp_path / 'j.db'}"
    with_profile = tmp_path / "p.yaml"
    with_profile.write_text("policies: [{name: evacuate, args: {high: 0.8}}]\ncaps: {per_host: 1, total: 3}\n")
    assert run_cli("run", "--scenario", str(scen), "--db", db, "--until", "30m", "--profile", str(with_profile)
                   ).returncode == 0
    out = run_cli("state", "--db", db, "--json", str(tmp_path / "s.json"))
    assert out.returncode == 0, out.stderr
    assert "plans (newest first)" in out.stdout and "succeeded" in out.stdout
    data = json.loads((tmp_path / "s.json").read_text())
    assert data["last_tick"] == 1800.0 and len(data["hosts"]) == 6
    assert {g["status"] for g in data["guests"]} <= {"running", "pending", "absent", "migrating"}
    assert all(g["domain"] >= 0 for g in data["guests"] if g["status"] == "running")
    assert data["plans"][-1]["limits"] == {"per_host": 1, "per_link": None, "total": 3}


def test_durations():
    assert parse_duration("5s") == 5 and parse_duration("24h") == 86400 and parse_duration("1h30m") == 5400
    assert parse_duration("300") == 300 and parse_duration(2.5) == 2.5
    for bad in ("5x", "-3", "h"):
        with pytest.raises(ValueError):
            parse_duration(bad)
