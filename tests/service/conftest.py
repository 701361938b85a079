"""A running presplit service for the tests: uvicorn in a thread on a free loopback port, demo fleet, fast pace."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from service_support import Served

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def served(tmp_path_factory):
    s = Served(tmp_path_factory.mktemp("serve"))
    yield s
    s.close()


@pytest.fixture(scope="session")
def setup_tools():
    """Prometheus, Chromium and playwright-core, installed by scripts/setup-service-tests.sh when missing."""
    have = (shutil.which("prometheus") and Path("/usr/bin/chromium").exists()
            and (ROOT / "tests/service/node_modules/playwright-core/package.json").exists())
    if not have:
        out = subprocess.run(["sh", str(ROOT / "scripts/setup-service-tests.sh")], capture_output=True, text=True,
                             timeout=900)
        if out.returncode != 0:
            pytest.skip(f"scripts/setup-service-tests.sh failed: {out.stderr[-800:]}")
    return ROOT / "tests/service/node_modules"
