"""A running presplit service for the tests: uvicorn in a thread on a free loopback port, demo fleet, fast pace."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "test-token-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    def __init__(self, tmp: Path, *, pace_s: float = 0.2, dry_run: bool = False, token: str | None = TOKEN,
                 **cfg) -> None:
        import uvicorn

        from presplit.service.app import create_app
        from presplit.service.auth import Auth
        from presplit.service.runner import ServiceConfig

        self.tmp = tmp
        self.db = f"sqlite:///{tmp / 'journal.db'}"
        self.cfg = ServiceConfig(db=self.db, pace_s=pace_s, dry_run=dry_run, **cfg)
        self.app = create_app(self.cfg, auth=Auth(token))
        self.runner = self.app.state.runner
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False,
                                timeout_graceful_shutdown=2, lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if httpx.get(self.url + "/api/status", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        else:
            raise RuntimeError("the service did not start")
        self.client = httpx.Client(base_url=self.url, timeout=30)

    def auth(self, token: str = TOKEN) -> dict:
        return {"Authorization": f"Bearer {token}"}

    def wait_for(self, pred, timeout: float = 30.0, every: float = 0.1):
        deadline = time.time() + timeout
        while time.time() < deadline:
            value = pred()
            if value:
                return value
            time.sleep(every)
        raise AssertionError(f"condition not met within {timeout} s")

    def close(self) -> None:
        self.app.state.hub.close()
        self.server.should_exit = True
        self.thread.join(20)
        self.client.close()


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
