"""Load test of presplit serve's read API on loopback: an open-loop client at a fixed rate, loop running.

Starts ``presplit serve`` (demo fleet, paced simulated world, SQLite journal)
as a subprocess, waits for it, then this process sends ``--rate`` requests per
second for ``--duration`` seconds (asyncio streams, a pool of keep-alive
connections) over a mix of read endpoints, and prints the achieved rate and
latency percentiles. Latency is measured from each request's *scheduled* send
time, so a server that falls behind is not flattered (no coordinated omission).

    python benchmarks/bench_api.py                  # the benchmark: 500 req/s for 60 s
    python benchmarks/bench_api.py --duration 5     # the smoke version the tests run
    python benchmarks/bench_api.py --url http://127.0.0.1:8080   # against a running service
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

PATHS = ["/api/status", "/api/hosts", "/api/domains", "/api/guests", "/api/fleet", "/api/fabric",
         "/api/timeline?limit=20", "/api/hosts/{host}", "/api/guests/{guest}", "/api/domains/{domain}",
         "/api/plans?limit=10", "/api/hosts/{host}/forecast"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(folder: Path, pace: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "PRESPLIT_API_TOKEN": "bench-token"}
    cmd = [sys.executable, "-c", "from presplit.cli.main import cli; cli(prog_name='presplit')", "serve",
           "--db", f"sqlite:///{folder / 'journal.db'}", "--listen", f"127.0.0.1:{port}", "--pace", pace]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"presplit serve exited: {proc.stderr.read()[-2000:]}")
        try:
            if httpx.get(url + "/api/status", timeout=1).json().get("ticks", 0) >= 2:
                return proc, url
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("presplit serve did not start within 60 s")


def percentile(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    k = min(len(xs) - 1, max(0, int(round(q * (len(xs) - 1)))))
    return xs[k]


class Conn:
    """One keep-alive HTTP/1.1 connection, raw asyncio streams: the client must cost far less than the server."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader = self.writer = None

    async def get(self, path: str) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\n\r\n".encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        body = await self.reader.readexactly(length) if length else b""
        return status, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def load(url: str, rate: float, duration: float, connections: int, seed: int) -> dict:
    rng = random.Random(seed)
    host, port = url.split("//", 1)[1].rsplit(":", 1)
    fleet = httpx.get(url + "/api/fleet", timeout=10).json()
    ids = {"host": [h["id"] for h in fleet["hosts"]], "guest": [g["id"] for g in fleet["guests"]],
           "domain": [d["id"] for d in fleet["domains"]]}
    status0 = fleet["status"]
    n = int(rate * duration)
    paths = [rng.choice(PATHS).format(host=rng.choice(ids["host"]), guest=rng.choice(ids["guest"]),
                                      domain=rng.choice(ids["domain"])) for _ in range(n)]
    lat: list[float] = []
    per_path: dict[str, list[float]] = {}
    errors: dict[str, int] = {}
    loop = asyncio.get_running_loop()
    jobs: asyncio.Queue = asyncio.Queue()
    conns = [Conn(host, int(port)) for _ in range(connections)]

    async def worker(conn: Conn) -> None:
        while True:
            item = await jobs.get()
            if item is None:
                return
            due, path = item
            try:
                status, _ = await conn.get(path)
                if status != 200:
                    errors[str(status)] = errors.get(str(status), 0) + 1
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                conn.close()
                conn.writer = None
            lat.append(loop.time() - due)
            per_path.setdefault(path.split("?")[0].rsplit("/", 1)[0] if path.count("/") > 2 else path.split("?")[0],
                                []).append(loop.time() - due)

    workers = [asyncio.create_task(worker(c)) for c in conns]
    started = time.perf_counter()
    t0 = loop.time() + 0.05
    for i, path in enumerate(paths):  # the open-loop schedule: request i is due at t0 + i / rate
        due = t0 + i / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        jobs.put_nowait((due, path))
    for _ in workers:
        jobs.put_nowait(None)
    await asyncio.gather(*workers)
    wall = time.perf_counter() - started
    for c in conns:
        c.close()
    status1 = httpx.get(url + "/api/status", timeout=10).json()
    metrics = httpx.get(url + "/metrics", timeout=10).text
    loop_s = {line.split()[0]: float(line.split()[-1]) for line in metrics.splitlines()
              if line.startswith("presplit_control_loop_duration_seconds_s")
              or line.startswith("presplit_control_loop_duration_seconds_c")}
    loop_sum = loop_s.get("presplit_control_loop_duration_seconds_sum")
    loop_n = loop_s.get("presplit_control_loop_duration_seconds_count")
    ms = [x * 1000 for x in lat]
    return {"requests": n, "wall_s": round(wall, 2), "achieved_rps": round(n / wall, 1),
            "p50_ms": round(percentile(ms, 0.50), 2), "p90_ms": round(percentile(ms, 0.90), 2),
            "p99_ms": round(percentile(ms, 0.99), 2), "max_ms": round(max(ms), 2), "errors": errors,
            "ticks_during_run": status1["ticks"] - status0["ticks"],
            "sim_time_s": [status0["now"], status1["now"]], "loop_running": status1["running"],
            "p99_ms_by_path": {k: round(percentile([x * 1000 for x in v], 0.99), 2)
                               for k, v in sorted(per_path.items())},
            "loop_tick_mean_ms": round(1000 * loop_sum / loop_n, 2) if loop_n else None}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=500.0, help="requests per second (default 500)")
    ap.add_argument("--duration", type=float, default=60.0, help="seconds (default 60)")
    ap.add_argument("--connections", type=int, default=32, help="keep-alive connections (default 32)")
    ap.add_argument("--pace", default="0.5s", help="the served loop's wall time per tick (default 0.5s)")
    ap.add_argument("--url", default=None, help="an already running service (default: start one)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", default=None, help="also write the result as JSON here")
    ap.add_argument("--max-p99-ms", type=float, default=None, help="exit 1 when p99 is above this")
    args = ap.parse_args(argv)
    proc = None
    with tempfile.TemporaryDirectory(prefix="presplit-bench-") as tmp:
        try:
            if args.url:
                url = args.url
            else:
                proc, url = start_server(Path(tmp), args.pace)
            result = asyncio.run(load(url, args.rate, args.duration, args.connections, args.seed))
        finally:
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
    result.update(rate=args.rate, duration_s=args.duration, connections=args.connections, pace=args.pace)
    print(f"{result['requests']} requests in {result['wall_s']} s: {result['achieved_rps']} req/s "
          f"(target {args.rate:g}); latency p50 {result['p50_ms']} ms, p90 {result['p90_ms']} ms, "
          f"p99 {result['p99_ms']} ms, max {result['max_ms']} ms; errors {result['errors'] or 'none'}; "
          f"control loop ticks during the run: {result['ticks_during_run']} "
          f"(t={result['sim_time_s'][0]:g} -> {result['sim_time_s'][1]:g} s)")
    print(json.dumps(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    ok = not result["errors"] and result["achieved_rps"] >= 0.95 * args.rate
    if args.max_p99_ms is not None and result["p99_ms"] > args.max_p99_ms:
        ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
