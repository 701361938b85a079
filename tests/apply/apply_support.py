"""Small worlds for the applier and control-loop tests: a synthetic trace, a domain scenario, a PostgreSQL server.

A plain module (conftest names clash across folders). ``small_scenario`` writes
a domain scenario of a few hosts fed by a synthetic PlanetLab-format day whose
load swings, so the ``evacuate`` policy places, balances, powers hosts off and
on; with ``calendar=True`` hosts also have patch windows to evacuate for.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
CLI = "from presplit.cli.main import cli; cli(prog_name='presplit')"


def synthetic_day(folder: Path, n_vms: int = 24, steps: int = 288, seed: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    t = np.arange(steps)
    for i in range(n_vms):
        phase = rng.uniform(0, 2 * np.pi)
        base = 45 + 35 * np.sin(2 * np.pi * t / rng.integers(24, 96) + phase)
        values = np.clip(base + rng.normal(0, 12, steps), 1, 99).astype(int)
        (folder / f"vm_{i:03d}").write_text("\n".join(map(str, values)) + "\n")
    return folder


def small_scenario(tmp: Path, *, hosts: int = 6, vms: int = 24, replicas: float = 2.0, horizon: str = "6h",
                   calendar: bool = True, seed: int = 0, steps: int = 288) -> Path:
    day = synthetic_day(tmp / "day", vms, steps=steps, seed=seed)
    cal = ""
    if calendar:
        cal = """  calendar:
    groups:
      a: ["h-00", "h-01"]
    rules:
      - {group: a, rrule: "FREQ=HOURLY;INTERVAL=3", dtstart: "2011-03-03T01:00", duration: 2h, tz: UTC, name: every 3h}
"""
    text = f"""name: tiny
engine: domains
interval_s: 300
horizon: {horizon}
start: 2011-03-03T00:00:00+00:00
hosts:
  - {{name: h, count: {hosts}, cores: 8, mips_per_core: 1000, ram_gb: 32, nic_gbit: 10, racks: 2,
      boot_delay_s: 60, power_w: [100, 120, 140, 160, 180, 200, 220, 240, 260, 280, 300]}}
services:
  minimal:
    - {{name: vmm, cores: 0.5, mem_gb: 1}}
migration: {{bandwidth_share: 0.5, provision_s: 30}}
patch:
  duration_per_domain: 10m
{cal}guests:
  trace: {day}
  default_size: {{cores: 2, ram_gb: 2}}
  source_mips_per_core: 1000
  cpu_overcommit: 2
  replicas: {replicas}
  seed: {seed}
  arrivals: first-nonzero
"""
    path = tmp / "tiny.yaml"
    path.write_text(text)
    return path


def run_cli(*args: str, timeout: float = 120, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", CLI, *args], capture_output=True, text=True,
                          timeout=timeout, env=env or os.environ.copy(), cwd=str(REPO))


def popen_cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", CLI, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=str(REPO))


def check_world(path) -> np.ndarray:
    """The world in its own store is sound; returns the guests placed (running, migrating or down in a patch)."""
    from presplit.backends.sim_world import SimWorld
    from presplit.model.domains import ABSENT, DOWN, MIGRATING, PENDING, RUNNING
    from presplit.plan.invariants import violations

    w = SimWorld(path)
    s = w.observe()
    w.close()
    assert violations(s) == []
    st = s.guest_status
    assert set(np.unique(st)) <= {ABSENT, PENDING, RUNNING, MIGRATING, DOWN}
    placed = np.flatnonzero((st == RUNNING) | (st == MIGRATING) | (st == DOWN))
    live = s.domain_arrays["live"]
    assert live[s.guest_domain[placed]].all(), "a guest sits in a domain that does not exist"
    for g in np.flatnonzero(st == DOWN):
        assert s.domains[int(s.guest_domain[g])].state == "patching", f"guest {g} down outside a patch"
    return placed


def check_journal(url, *, finished: bool) -> None:
    """Plans closed honestly; with ``finished``, nothing left open and every action's events tell its story."""
    from presplit.apply import Journal

    j = Journal(url)
    try:
        plans = j.plans()
        for p in plans:
            rows = j.actions_of(p["id"])
            statuses = {r["status"] for r in rows}
            if p["status"] == "succeeded":
                assert statuses == {"succeeded"}, (p["id"], statuses)
            if finished:
                assert p["status"] != "running"
                assert not statuses & {"started", "planned", "reverting"}, (p["id"], statuses)
        if finished:
            by_action: dict = {}
            for e in j.events():
                by_action.setdefault((e["plan_id"], e["idx"]), []).append(e["event"])
            for p in plans:
                for r in j.actions_of(p["id"]):
                    story = by_action[(p["id"], r["idx"])]
                    assert story[0] == "intent"
                    if r["status"] == "succeeded":
                        assert "started" in story and ({"finished", "reconciled"} & set(story)), story
                    if r["status"] == "reverted":
                        # Reverted by the applier, or -- killed while reverting -- by the reconciler.
                        by_reconcile = "reverting" in story and story[-1] == "reconciled"
                        assert "failed" in story and ("reverted" in story or by_reconcile), story
    finally:
        j.close()


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory):
    """A throwaway PostgreSQL cluster (scripts/setup-postgres.sh); yields its URL, stopped at the end."""
    import tempfile

    script = REPO / "scripts" / "setup-postgres.sh"
    folder = Path(tempfile.mkdtemp(prefix="presplit-pg-"))
    folder.chmod(0o755)  # the server runs as user postgres and must reach its data folder
    if shutil.which("pg_ctl") is None and not list(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl")):
        if os.geteuid() != 0:
            pytest.skip("PostgreSQL is not installed and we are not root to install it")
        subprocess.run(["bash", str(script), "install"], check=True, capture_output=True, timeout=600)
    out = subprocess.run(["bash", str(script), "start", str(folder)], capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        pytest.fail(f"could not start PostgreSQL: {out.stdout}\n{out.stderr}")
    url = out.stdout.strip().splitlines()[-1]
    yield url
    subprocess.run(["bash", str(script), "stop", str(folder)], capture_output=True, timeout=120)
    shutil.rmtree(folder, ignore_errors=True)


def count_events(db) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as c:
            return c.execute("SELECT count(*) FROM events").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def in_flight(db) -> bool:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as c:
            return c.execute("SELECT count(*) FROM actions WHERE status = 'started'").fetchone()[0] > 0
    except sqlite3.OperationalError:
        return False
