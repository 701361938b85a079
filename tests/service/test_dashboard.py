"""Headless Chromium (Debian's, driven by playwright-core) watches the dashboard while a simulated fleet runs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from service_support import Served

HERE = Path(__file__).parent


def test_the_dashboard_shows_the_fleet_and_a_migration_appears(setup_tools, tmp_path):
    node = shutil.which("node")
    assert node, "node is needed (scripts/setup-service-tests.sh installs it)"
    (tmp_path / "srv").mkdir()
    s = Served(tmp_path / "srv", pace_s=0.5)  # a fresh fleet: the first live migration comes at ~tick 12
    shot = tmp_path / "dashboard.png"
    try:
        env = {**os.environ, "PRESPLIT_CHROME_DIR": str(tmp_path / "chrome-profile"),
               "NODE_PATH": str(setup_tools)}
        out = subprocess.run([node, str(HERE / "dashboard.mjs"), s.url + "/dashboard/", str(shot)],
                             capture_output=True, text=True, timeout=150, env=env, cwd=str(HERE))
    finally:
        s.close()
    assert out.returncode == 0, out.stderr[-3000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["errors"] == [], seen
    assert seen["hosts"] == 8 and seen["domains"] >= 6 and seen["guests"] >= 20, seen
    assert seen["fabric_hosts"] == 8 and seen["fabric_links"] > 8
    assert seen["initial_migrations"] == 0 and "MigrateGuest" in seen["migration"], seen
    assert "migrate" in seen["migration"]  # the reason is shown
    assert seen["live"] == "on"
    assert seen["chart_title"].startswith("domain") and seen["chart_band"] == 1
    assert seen["external_requests"] == []
    assert shot.stat().st_size > 20_000
    keep = os.environ.get("PRESPLIT_SCREENSHOT")
    if keep:
        shutil.copy(shot, keep)
