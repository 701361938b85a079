"""Shared helpers of the service tests (a plain module: conftest names clash across test folders)."""

from __future__ import annotations

import socket
import sqlite3
import threading
import time
from pathlib import Path

import httpx

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


def world_changes(served) -> int:
    """Operator changes (launches, windows) in the world store, read-only."""
    path = served.runner._world_path()
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as c:
        return c.execute("SELECT count(*) FROM changes WHERE kind IN ('launch', 'window')").fetchone()[0]


def journal_rows(served) -> tuple:
    """Plans, operator decisions and the stored profile in the journal, read-only."""
    path = served.db[len("sqlite:///"):]
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as c:
        return (c.execute("SELECT id, status FROM plans ORDER BY id").fetchall(),
                c.execute("SELECT count(*) FROM events WHERE event IN ('approved', 'rejected', 'cancelled')")
                .fetchone()[0], c.execute("SELECT value FROM meta WHERE key = 'profile'").fetchone())


def start_prometheus(tmp, target: str, rules=None):
    """Debian's Prometheus scraping ``target`` (host:port) every second, evaluating ``rules`` if given.

    Returns (process, API base URL ``http://127.0.0.1:PORT/api/v1``); the caller terminates the process.
    """
    import subprocess

    cfg = Path(tmp) / "prometheus.yml"
    rule_lines = f"  evaluation_interval: 1s\nrule_files: [\"{rules}\"]\n" if rules is not None else ""
    cfg.write_text("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n" + rule_lines
                   + "scrape_configs:\n  - job_name: presplit\n    static_configs:\n"
                   + f"      - targets: [\"{target}\"]\n")
    port = free_port()
    proc = subprocess.Popen(["prometheus", f"--config.file={cfg}", f"--storage.tsdb.path={Path(tmp) / 'data'}",
                             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return proc, f"http://127.0.0.1:{port}/api/v1"
