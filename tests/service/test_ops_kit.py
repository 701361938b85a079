"""The ops kit in deploy/: Prometheus rules and their unit tests, the example scrape config, the Grafana
dashboard, the systemd unit, shell completion and the LICENSE (docs/operations.md says how to use them).

promtool comes with Debian's ``prometheus`` package (installed by scripts/setup-service-tests.sh through the
``setup_tools`` fixture); systemd-analyze with the ``systemd`` package (the unit's tests skip without it).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from service_support import free_port, start_prometheus

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
RULES = DEPLOY / "prometheus/presplit-rules.yml"
RULE_TESTS = DEPLOY / "prometheus/presplit-rules.test.yml"
PROM_EXAMPLE = DEPLOY / "prometheus/prometheus.example.yml"
DASHBOARD = DEPLOY / "grafana/presplit-dashboard.json"
UNIT = DEPLOY / "systemd/presplit.service"
ENV_EXAMPLE = DEPLOY / "systemd/presplit.env.example"
QEMU_DROPIN = DEPLOY / "systemd/presplit-qemu.conf"
OPERATIONS = ROOT / "docs/operations.md"

# What the dashboard's variables stand for when its queries are run here.
GRAFANA_VARS = {"$__rate_interval": "30s", "$job": "presplit", "$instance": ".+", "$host": ".+"}


# ------------------------------------------------------------------ helpers
@pytest.fixture(scope="module")
def promtool(setup_tools):
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool not found (Debian package prometheus; scripts/setup-service-tests.sh installs it)")
    return path


def presplit_bin() -> str:
    path = shutil.which("presplit") or str(Path(sys.executable).parent / "presplit")
    assert Path(path).exists(), "the presplit console script is not installed (pip install -e .)"
    return path


def rules() -> list[dict]:
    return [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]


def alerts() -> list[dict]:
    return [r for r in rules() if "alert" in r]


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def panels(dash: dict) -> list[dict]:
    out = []
    for p in dash["panels"]:
        out.append(p)
        out.extend(p.get("panels", []))
    return out


def dashboard_exprs(dash: dict) -> list[tuple[str, str]]:
    return [(p["title"], t["expr"]) for p in panels(dash) for t in p.get("targets", [])]


def grafana_to_promql(expr: str) -> str:
    for var, value in GRAFANA_VARS.items():
        expr = expr.replace(var, value)
    assert "$" not in expr, f"unknown Grafana variable in {expr!r}"
    return expr


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression reads: identifiers outside strings, ranges and by/without/on lists,
    not followed by '(' (functions); keywords and label names inside braces excluded."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", r"\1", text)
    text = re.sub(r"\{[^}]*\}", "", text)
    keywords = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool",
                "offset", "inf", "nan", "sum", "min", "max", "avg", "count", "group", "stddev", "stdvar", "topk",
                "bottomk", "quantile", "count_values"}  # aggregations: "sum by (x) (...)" is not followed by "("
    names = set()
    for m in re.finditer(r"(?<![\w:.])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:])(\s*\()?", text):
        name, call = m.group(1), m.group(2)
        if call or name.lower() in keywords:
            continue
        names.add(name)
    return names


def exported(served) -> tuple[set[str], dict[str, str]]:
    """Series names a running service exports (histograms with _bucket/_sum/_count), and family -> type."""
    text = served.client.get("/metrics").text
    families = {}
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            families[name] = kind
            names.add(name)
            if kind == "histogram":
                names.update(name + s for s in ("_bucket", "_sum", "_count"))
        elif line and not line.startswith("#"):
            names.add(re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0))
    return names, families


# ------------------------------------------------------------------ Prometheus rules
def test_rules_pass_promtool_check(promtool):
    out = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout


def test_rule_unit_tests_pass(promtool):
    out = subprocess.run([promtool, "test", "rules", str(RULE_TESTS)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout


def test_every_alert_has_for_severity_annotations_and_is_tested_both_ways():
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    cases = [c for t in tests for c in t.get("alert_rule_test", [])]
    names = [a["alert"] for a in alerts()]
    assert len(names) == len(set(names)) >= 7
    for a in alerts():
        assert "for" in a, f"{a['alert']} has no for:"
        assert a["labels"]["severity"] in {"critical", "warning"}, a["alert"]
        assert {"summary", "description"} <= set(a["annotations"]), a["alert"]
        mine = [c for c in cases if c["alertname"] == a["alert"]]
        assert any(c.get("exp_alerts") for c in mine), f"no test where {a['alert']} fires"
        assert any(not c.get("exp_alerts") for c in mine), f"no test where {a['alert']} stays quiet"
    assert {c["alertname"] for c in cases} <= set(names), "a test names an alert the rules do not have"
    for record in (r["record"] for r in rules() if "record" in r):
        assert any(record in e["expr"] for t in tests for e in t.get("promql_expr_test", [])), record


def test_example_prometheus_config_passes_promtool_check_config(promtool, tmp_path):
    token = tmp_path / "presplit.token"
    token.write_text("test-token\n")
    token.chmod(0o400)
    text = PROM_EXAMPLE.read_text()
    assert "/etc/prometheus/presplit.token" in text and "/etc/prometheus/rules/presplit-rules.yml" in text
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text(text.replace("/etc/prometheus/presplit.token", str(token))
                   .replace("/etc/prometheus/rules/presplit-rules.yml", str(RULES)))
    out = subprocess.run([promtool, "check", "config", str(cfg)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    job = next(j for j in yaml.safe_load(text)["scrape_configs"] if j["job_name"] == "presplit")
    assert job["authorization"]["credentials_file"] == "/etc/prometheus/presplit.token"
    assert job.get("metrics_path", "/metrics") == "/metrics"


# ------------------------------------------------------------------ Grafana
def test_dashboard_is_an_importable_grafana_dashboard():
    dash = dashboard()
    assert dash["schemaVersion"] >= 36
    assert [i["name"] for i in dash["__inputs"]] == ["DS_PROMETHEUS"]
    assert dash["__inputs"][0]["pluginId"] == "prometheus" and dash["__inputs"][0]["type"] == "datasource"
    assert dash["uid"] and dash["title"] and dash["id"] is None
    ds = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
    ids, boxes = set(), []
    for p in panels(dash):
        assert p["id"] not in ids, f"duplicate panel id {p['id']}"
        ids.add(p["id"])
        g = p["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24, p["title"]
        for other_title, o in boxes:  # no two panels overlap
            overlap = (g["x"] < o["x"] + o["w"] and o["x"] < g["x"] + g["w"] and g["y"] < o["y"] + o["h"]
                       and o["y"] < g["y"] + g["h"])
            assert not overlap, f"{p['title']!r} overlaps {other_title!r}"
        boxes.append((p["title"], g))
        if p["type"] == "row":
            continue
        assert p["datasource"] == ds, p["title"]
        assert p["targets"] and all(t["datasource"] == ds for t in p["targets"]), p["title"]
        assert p.get("description"), f"{p['title']!r} has no description"
        unit = p["fieldConfig"]["defaults"].get("unit")
        assert unit and unit not in {"short"}, f"{p['title']!r} has no readable unit"
    for var in dash["templating"]["list"]:
        assert var["datasource"] == ds, var["name"]
    titles = {p["title"] for p in panels(dash)}
    for wanted in ("Host CPU utilisation", "Host CPU forecast (p95, next tick)", "Hosts on", "Guests by status",
                   "Guests unplaced", "Actions by outcome", "Migrations by kind and outcome", "Plan duration (wall)",
                   "Forecast error", "Forecast interval coverage", "Tick duration (own work)", "Ticks rate"):
        assert wanted in titles


def test_dashboard_and_rules_read_only_metrics_the_service_exports(served):
    # The service has ticked at least once, so every family is there.
    served.wait_for(lambda: served.client.get("/api/status").json()["ticks"] >= 2, timeout=60)
    names, families = exported(served)
    assert "presplit_guests_unplaced" in families and families["presplit_ticks_total"] == "counter"
    records = {r["record"] for r in rules() if "record" in r}
    used: dict[str, set[str]] = {}
    for title, expr in dashboard_exprs(dashboard()):
        for n in metric_names(grafana_to_promql(expr)):
            used.setdefault(n, set()).add(f"dashboard panel {title!r}")
    for r in rules():
        for n in metric_names(r["expr"]):
            used.setdefault(n, set()).add(f"rule {r.get('alert') or r.get('record')}")
    for t in yaml.safe_load(RULE_TESTS.read_text())["tests"]:
        for s in t["input_series"]:
            used.setdefault(re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", s["series"]).group(0), set()).add(
                f"test {t['name']!r}")
    unknown = {n: sorted(w) for n, w in used.items() if n not in names | records | {"up"}}
    assert not unknown, f"metric names presplit does not export: {unknown}"
    assert {n for n in used if ":" in n} <= records
    # every exported family has a panel
    on_dashboard = set()
    for _, expr in dashboard_exprs(dashboard()):
        for n in metric_names(grafana_to_promql(expr)):
            on_dashboard.add(re.sub(r"_(bucket|sum|count)$", "", n) if n not in families else n)
    missing = set(families) - on_dashboard
    assert not missing, f"exported but on no dashboard panel: {sorted(missing)}"


def test_dashboard_queries_and_rules_work_on_a_real_prometheus(served, setup_tools, promtool, tmp_path):
    """Prometheus (Debian's) scrapes the service every second with the rules loaded: every rule evaluates
    without error, every dashboard query returns series, and the service's healthy demo fleet trips neither
    PresplitDown nor PresplitControlLoopStalled."""
    target = served.url.split("//", 1)[1]
    proc, api = start_prometheus(tmp_path, target, rules=RULES)

    def query(q):
        r = httpx.get(api + "/query", params={"query": q}, timeout=10)
        if r.status_code == 503:  # Prometheus answers 503 until its storage is ready: the wait below retries
            raise httpx.HTTPError(f"{q}: not ready: {r.text}")
        assert r.status_code == 200, f"{q}: {r.text}"
        return r.json()["data"]["result"]

    try:
        deadline = time.time() + 90
        while time.time() < deadline:
            assert proc.poll() is None, proc.stderr.read()
            try:
                if query("count_over_time(presplit_plans_total[1m]) >= 8") and \
                        query("count_over_time(presplit:control_loop_busy:ratio_rate5m[1m]) >= 3"):
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        else:
            raise AssertionError("Prometheus did not gather 8 s of presplit series")
        groups = httpx.get(api + "/rules", timeout=10).json()["data"]["groups"]
        evaluated = {r["name"]: r for g in groups for r in g["rules"]}
        assert set(evaluated) == {r.get("alert") or r.get("record") for r in rules()}
        bad = {n: r.get("lastError") for n, r in evaluated.items() if r["health"] != "ok"}
        assert not bad, bad
        empty = [title for title, expr in dashboard_exprs(dashboard()) if not query(grafana_to_promql(expr))]
        assert not empty, f"dashboard queries with no series: {empty}"
        for a in alerts():
            if a["alert"] in ("PresplitDown", "PresplitTargetMissing", "PresplitControlLoopStalled"):
                assert query(a["expr"]) == [], a["alert"]
        assert query('up{job="presplit"}')[0]["value"][1] == "1"
        busy = query("presplit:control_loop_busy:ratio_rate5m")
        assert len(busy) == 1 and 0 <= float(busy[0]["value"][1]) < 5
    finally:
        proc.terminate()
        proc.wait(20)


# ------------------------------------------------------------------ shell completion
def _complete(words: str, cword: int, shell: str = "bash") -> list[str]:
    env = {**os.environ, "COMP_WORDS": words, "COMP_CWORD": str(cword), "_PRESPLIT_COMPLETE": f"{shell}_complete"}
    out = subprocess.run([presplit_bin()], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


def test_bash_completion_script():
    env = {**os.environ, "_PRESPLIT_COMPLETE": "bash_source"}
    out = subprocess.run([presplit_bin()], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    script = out.stdout
    assert "_presplit_completion()" in script
    assert "complete -o nosort -F _presplit_completion presplit" in script
    assert "_PRESPLIT_COMPLETE=bash_complete" in script
    syntax = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True, timeout=30)
    assert syntax.returncode == 0, syntax.stderr


def test_completion_offers_subcommands_and_options():
    assert "plain,simulate" in _complete("presplit si", 1)
    assert {"plain,serve", "plain,simulate", "plain,state", "plain,sweep"} <= set(_complete("presplit s", 1))
    assert "plain,--backend" in _complete("presplit serve --ba", 2)
    assert {"plain,sim", "plain,qemu"} <= set(_complete("presplit serve --backend ", 3))


def test_bash_completion_in_a_real_bash():
    """Source the script as ~/.bashrc would and call the completion function bash would call on TAB."""
    bin_dir = str(Path(presplit_bin()).parent)
    script = ('eval "$(_PRESPLIT_COMPLETE=bash_source presplit)"\n'
              'complete -p presplit\n'
              'COMP_WORDS=(presplit si); COMP_CWORD=1; COMPREPLY=()\n'
              '_presplit_completion presplit\n'
              'echo "reply: ${COMPREPLY[*]}"\n')
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
    out = subprocess.run(["bash", "--norc", "--noprofile", "-c", script], env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert "-F _presplit_completion presplit" in out.stdout
    assert "reply: simulate" in out.stdout


def test_zsh_and_fish_completion_scripts():
    for shell, marker in (("zsh", "#compdef presplit"), ("fish", "complete --no-files --command presplit")):
        env = {**os.environ, "_PRESPLIT_COMPLETE": f"{shell}_source"}
        out = subprocess.run([presplit_bin()], env=env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0 and marker in out.stdout, (shell, out.stdout[:300], out.stderr)


# ------------------------------------------------------------------ systemd
def unit_settings(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        out.setdefault(key, []).append(value)
    return out


def test_systemd_unit_settings():
    s = unit_settings(UNIT.read_text())
    assert s["User"] == ["presplit"] and s["Group"] == ["presplit"]
    assert s["EnvironmentFile"] == ["/etc/presplit/presplit.env"]
    assert s["Restart"] == ["on-failure"] and s["KillSignal"] == ["SIGTERM"] and s["KillMode"] == ["mixed"]
    assert s["NoNewPrivileges"] == ["yes"] and s["ProtectSystem"] == ["strict"] and s["PrivateTmp"] == ["yes"]
    assert "/var/lib/presplit" in s["ReadWritePaths"] and s["WorkingDirectory"] == ["/var/lib/presplit"]
    assert "PRESPLIT_DB=sqlite:////var/lib/presplit/journal.db" in s["Environment"]
    (exec_start,) = s["ExecStart"]
    assert exec_start.startswith("/opt/presplit/bin/presplit serve ") and "--db ${PRESPLIT_DB}" in exec_start
    text = UNIT.read_text()
    assert "--token-file" in text and "qemu" in text and "root" in text
    env = unit_settings(ENV_EXAMPLE.read_text())
    assert "PRESPLIT_API_TOKEN" in env


def _unit_for_this_machine(tmp_path: Path) -> Path:
    unit = tmp_path / "presplit.service"
    unit.write_text(UNIT.read_text().replace("/opt/presplit/bin/presplit", presplit_bin()))
    return unit


def _verify(unit: Path):
    out = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60,
                         cwd=unit.parent)
    if out.returncode != 0 and ("Failed to" in out.stderr and "bus" in out.stderr):
        pytest.skip(f"systemd-analyze verify cannot run here: {out.stderr.strip()[:300]}")
    return out


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze not installed (Debian package systemd)")
def test_systemd_analyze_verify(tmp_path):
    # ExecStart must name an executable that exists: the installed presplit stands in for /opt/presplit.
    unit = _unit_for_this_machine(tmp_path)
    out = _verify(unit)
    # verify exits 0 on unknown keys and unparsable values, and says so on stderr: nothing may be said
    assert out.returncode == 0 and not out.stderr.strip(), out.stderr
    dropin = tmp_path / "presplit.service.d"
    dropin.mkdir()
    shutil.copy(QEMU_DROPIN, dropin / "qemu.conf")
    out = _verify(unit)
    assert out.returncode == 0 and not out.stderr.strip(), out.stderr


def _expand_exec_start(env: dict[str, str]) -> list[str]:
    """systemd's expansion: ${VAR} inside a word, $VAR alone as a word splits at whitespace."""
    (line,) = unit_settings(UNIT.read_text())["ExecStart"]
    argv = []
    for word in line.split():
        m = re.fullmatch(r"\$([A-Za-z_][A-Za-z0-9_]*)", word)
        if m:
            argv.extend(env.get(m.group(1), "").split())
        else:
            argv.append(re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", lambda v: env.get(v.group(1), ""), word))
    return argv


def test_the_units_command_line_serves_and_stops_on_sigterm(tmp_path):
    """What systemd would run: the unit's defaults overridden by the example env file, the paths moved to a
    temporary folder. It serves /metrics, takes the token from PRESPLIT_API_TOKEN, logs requests, and stops
    cleanly on SIGTERM."""
    s = unit_settings(UNIT.read_text())
    env = dict(v.split("=", 1) for v in s["Environment"])
    env.update({k: v[-1] for k, v in unit_settings(ENV_EXAMPLE.read_text()).items()})  # EnvironmentFile= wins
    port = free_port()
    env["PRESPLIT_LISTEN"] = f"127.0.0.1:{port}"
    env["PRESPLIT_DB"] = env["PRESPLIT_DB"].replace("/var/lib/presplit", str(tmp_path))
    env["PRESPLIT_ARGS"] += " --pace 0.1s"
    argv = _expand_exec_start(env)
    assert argv[1:4] == ["serve", "--backend", "sim"] and f"sqlite:///{tmp_path}/journal.db" in argv
    argv[0] = presplit_bin()
    proc = subprocess.Popen(argv, cwd=tmp_path, env={**os.environ, **env}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        while time.time() < deadline and proc.poll() is None:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/status", timeout=2).json()["ticks"] >= 1:
                    break
            except (httpx.HTTPError, ValueError, KeyError):
                pass
            time.sleep(0.2)
        assert proc.poll() is None, proc.stderr.read()
        assert "presplit_ticks_total" in httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=45)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    # uvicorn re-raises the SIGTERM it caught once the shutdown is done, so the process ends "killed by SIGTERM";
    # systemd counts that as a clean stop (SIGTERM is in every unit's success statuses).
    assert proc.returncode in (0, -signal.SIGTERM), stderr
    with sqlite3.connect(f"file:{tmp_path / 'journal.db'}?mode=ro", uri=True) as c:
        running = c.execute("SELECT count(*) FROM plans WHERE status = 'running'").fetchone()[0]
        plans = c.execute("SELECT count(*) FROM plans").fetchone()[0]
    assert plans >= 1 and running == 0, "the stop left a plan running: not a graceful shutdown"
    assert "mutations need the bearer token" in stdout
    assert '"GET /metrics" 200' in stderr  # --access-log from the env file
    assert env["PRESPLIT_API_TOKEN"] not in stdout + stderr
    assert (tmp_path / "journal.db").exists() and (tmp_path / "journal.db.world").exists()


# ------------------------------------------------------------------ documents
def test_operations_guide_covers_every_alert_and_the_kit():
    text = OPERATIONS.read_text()
    for a in alerts():
        assert f"### {a['alert']}" in text, f"docs/operations.md has no section for {a['alert']}"
    for path in ("deploy/systemd/presplit.service", "deploy/prometheus/presplit-rules.yml",
                 "deploy/grafana/presplit-dashboard.json", "deploy/prometheus/prometheus.example.yml",
                 "_PRESPLIT_COMPLETE=bash_source", "zsh_source", "fish_source", "--access-log", "pg_dump"):
        assert path in text, path


def test_license_is_apache_2():
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in text
    assert "END OF TERMS AND CONDITIONS" in text and len(text) > 11000
