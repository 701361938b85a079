"""Shared inputs of the scale tests: small synthetic days, a swept-and-resumed results file, Chromium.

Everything is built in temporary folders from the bundled PlanetLab days, so
the tests need nothing outside the package.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from presplit.cli.main import cli
from presplit.scenarios import bundled_planetlab_day

ROOT = Path(__file__).resolve().parents[2]
DAYS = ("20110303", "20110306", "20110309")
SMALL_GUESTS, SMALL_HOSTS = 60, 100
SWEEP_ARGS = ["--policy", "thr-mmt", "--policy", "lr-mmt", "--policy", "presplit",
              "--param", "threshold=0.7,0.8,0.9", "--param", "safety=1.1,1.2,1.3",
              "--param", "target=0.85,0.9,0.95"]
N_RUNS = 27
PRESPLIT = [sys.executable, "-c", "from presplit.cli.main import cli; cli()"]


def generate(out: Path, day: str, *, seed: int = 1, guests: int = SMALL_GUESTS, hosts: int = SMALL_HOSTS,
             extra: tuple[str, ...] = ()):
    return CliRunner().invoke(cli, ["fleet", "generate", "--guests", str(guests), "--hosts", str(hosts),
                                    "--from-trace", str(bundled_planetlab_day(day)), "--seed", str(seed),
                                    "--out", str(out), *extra])


@pytest.fixture(scope="session")
def small_days(tmp_path_factory) -> list[Path]:
    """Three synthetic days (60 guests x 288 steps, 100 hosts), resampled from the bundled days."""
    root = tmp_path_factory.mktemp("days")
    out = []
    for i, day in enumerate(DAYS):
        path = root / f"syn-{day}"
        result = generate(path, day, seed=i)
        assert result.exit_code == 0, result.output
        out.append(path)
    return out


def trace_args(days) -> list[str]:
    return [a for d in days for a in ("--trace", str(d))]


@pytest.fixture(scope="session")
def resumed_sweep(tmp_path_factory, small_days) -> dict:
    """A 3 x 3 x 3 Dask sweep killed part-way (SIGKILL to its process group) and run again.

    Returns the paths and what was seen: parts on disk at the kill, and the
    second run's counts.
    """
    root = tmp_path_factory.mktemp("sweep")
    out = root / "results.parquet"
    parts = root / "results.parquet.parts"
    cmd = [*PRESPLIT, "sweep", *SWEEP_ARGS, *trace_args(small_days), "--workers", "2", "--out", str(out)]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)  # own group: the kill reaches the Dask workers too
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if parts.is_dir() and len(list(parts.glob("*.parquet"))) >= 5:
                break
            time.sleep(0.02)
        alive_at_kill = proc.poll() is None
        if alive_at_kill:
            os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    stderr = proc.stderr.read().decode()
    proc.stdout.close()
    proc.stderr.close()
    parts_at_kill = len(list(parts.glob("*.parquet"))) if parts.is_dir() else 0
    first_s = time.perf_counter() - started

    started = time.perf_counter()
    second = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=120)
    return {"out": out, "parts": parts, "alive_at_kill": alive_at_kill, "parts_at_kill": parts_at_kill,
            "first_stderr": stderr, "second": second, "first_s": first_s,
            "second_s": time.perf_counter() - started, "root": root}


@pytest.fixture(scope="session")
def chromium() -> str:
    """Path of headless Chromium, installed by scripts/setup-chromium.sh when missing."""
    path = "/usr/bin/chromium"
    if not os.access(path, os.X_OK):
        setup = subprocess.run(["sh", str(ROOT / "scripts" / "setup-chromium.sh")], capture_output=True,
                               text=True, timeout=600)
        if setup.returncode != 0 or not os.access(path, os.X_OK):
            pytest.skip(f"chromium is not installed and scripts/setup-chromium.sh failed: {setup.stderr[-500:]}")
    return path
