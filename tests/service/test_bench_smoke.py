"""The load test's 5-second smoke version: 500 req/s on loopback, the loop running, no errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_500_requests_per_second_for_5_seconds(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks/bench_api.py"), "--duration", "5",
                          "--json", str(tmp_path / "bench.json")], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr[-2000:]
    r = json.loads((tmp_path / "bench.json").read_text())
    assert r["errors"] == {} and r["achieved_rps"] >= 475
    assert r["loop_running"] and r["ticks_during_run"] >= 5
    # The 50 ms p99 target is the 60 s benchmark's (docs/benchmarks.md); on a shared two-core
    # machine a 5 s sample is noisy, so the smoke test guards against gross regressions only.
    assert r["p50_ms"] < 20 and r["p99_ms"] < 500, r
