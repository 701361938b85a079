"""A real Prometheus (Debian's package, started here with a temporary config) scrapes /metrics."""

from __future__ import annotations

import time

import httpx

from service_support import start_prometheus


def test_prometheus_scrapes_presplit_series(served, setup_tools, tmp_path):
    target = served.url.split("//", 1)[1]
    proc, base = start_prometheus(tmp_path, target)
    api = base + "/query"
    try:
        def query(q):
            try:
                r = httpx.get(api, params={"query": q}, timeout=5)
            except httpx.HTTPError:
                return []
            return r.json()["data"]["result"] if r.status_code == 200 else []

        deadline = time.time() + 60
        util = fc = moves = up = []
        while time.time() < deadline and proc.poll() is None:
            up = query('up{job="presplit"}')
            util = query("presplit_host_cpu_utilisation")
            fc = query('presplit_domain_cpu_forecast_utilisation{quantile="0.95"}')
            moves = query("presplit_actions_total")
            if up and util and fc and moves:
                break
            time.sleep(0.5)
        assert proc.poll() is None, proc.stderr.read()
        assert up and up[0]["value"][1] == "1"
        assert len(util) == 8 and {r["metric"]["host"] for r in util} == {f"h-{i:02d}" for i in range(8)}
        assert fc and all(0 <= float(r["value"][1]) < 10 for r in fc)
        assert any(r["metric"]["kind"] == "PlaceGuest" for r in moves)
        loop = query("histogram_quantile(0.99, sum(rate(presplit_control_loop_duration_seconds_bucket[30s])) by (le))")
        assert loop is not None
    finally:
        proc.terminate()
        proc.wait(20)
