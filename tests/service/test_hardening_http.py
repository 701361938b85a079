"""The HTTP edge under bad input: every bad request is a 4xx with a reason, never a 5xx or a reset, and changes nothing.

One table of bad requests across the write endpoints (launch, window, profile, approve/reject/cancel) and some
reads: NaN/Infinity anywhere in a body (also nested in policy arguments), non-finite or negative durations,
huge strings, numbers and bodies, wrong types, unknown fields, bad or missing tokens, malformed JSON, empty
bodies, other content types, bad path and query parameters. Each case checks the status, a reason in the
response naming the field or the problem, that the response is small (inputs are not echoed whole), and
that the fleet, the profile, the windows and the journal are as they were.
Then: the token is checked before the body (401 before 413/415/422), HEAD on the dashboard, the access log.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import httpx
import pytest

from service_support import TOKEN, free_port, journal_rows, world_changes

JSON = "application/json"
BIG = 5 << 20  # over the 4 MiB body cap


def case(id_, method, path, *, status, reason, json=None, raw=None, ctype=JSON, token=TOKEN, params=None):
    return pytest.param(dict(method=method, path=path, status=status, reason=reason, json=json, raw=raw,
                             ctype=ctype, token=token, params=params), id=id_)


PROFILE = {"policies": [{"name": "presplit"}]}

CASES = [
    # ---- NaN / Infinity: Python's json reads them, no JSON has them
    case("guest-ram-NaN", "POST", "/api/guests", raw=b'{"ram_mb": NaN}', status=422, reason="ram_mb: numbers must be finite"),
    case("guest-ram-Infinity", "POST", "/api/guests", raw=b'{"ram_mb": Infinity}', status=422, reason="ram_mb: numbers must be finite"),
    case("guest-dirty-minus-Infinity", "POST", "/api/guests", raw=b'{"dirty_rate_mbps": -Infinity}', status=422,
         reason="dirty_rate_mbps: numbers must be finite"),
    case("guest-util-series-NaN", "POST", "/api/guests", raw=b'{"cpu_util": [0.2, NaN, 0.3]}', status=422,
         reason="cpu_util[1]: numbers must be finite"),
    case("guest-ram-1e999", "POST", "/api/guests", raw=b'{"ram_mb": 1e999}', status=422, reason="ram_mb: numbers must be finite"),
    case("body-is-NaN", "POST", "/api/guests", raw=b"NaN", status=422,
         reason="body: numbers must be finite (NaN/Infinity are not JSON)"),
    case("window-start-NaN", "POST", "/api/windows", raw=b'{"host": 0, "start": NaN}', status=422,
         reason="start: numbers must be finite"),
    case("window-start_in-Infinity", "POST", "/api/windows", raw=b'{"host": 0, "start_in": Infinity}', status=422,
         reason="start_in: numbers must be finite"),
    case("profile-args-nested-NaN", "PUT", "/api/profile",
         raw=b'{"policies": [{"name": "presplit", "args": {"target": [1, {"deep": NaN}]}}]}', status=422,
         reason="policies[0].args.target[1].deep: numbers must be finite"),
    case("profile-args-Infinity", "PUT", "/api/profile",
         raw=b'{"policies": [{"name": "presplit", "args": {"target": Infinity}}]}', status=422,
         reason="policies[0].args.target: numbers must be finite"),
    case("profile-interval-NaN-number", "PUT", "/api/profile", raw=b'{"policies": [{"name": "presplit"}], "interval": NaN}',
         status=422, reason="interval: numbers must be finite"),
    case("approve-note-NaN", "POST", "/api/plans/1/approve", raw=b'{"note": NaN}', status=422, reason="note: numbers must be finite"),
    # ---- durations given as strings
    case("window-start_in-nan", "POST", "/api/windows", json={"host": 0, "start_in": "nan"}, status=422, reason="finite"),
    case("window-start_in-inf", "POST", "/api/windows", json={"host": 0, "start_in": "inf"}, status=422, reason="finite"),
    case("window-start_in-minus-5m", "POST", "/api/windows", json={"host": 0, "start_in": "-5m"}, status=422,
         reason="'-5m'"),
    case("window-duration-minus-1h", "POST", "/api/windows", json={"host": 0, "duration": "-1h"}, status=422,
         reason="'-1h'"),
    case("window-duration-negative-number", "POST", "/api/windows", json={"host": 0, "duration": -60}, status=422,
         reason="negative"),
    case("window-patch_duration-nan", "POST", "/api/windows", json={"host": 0, "patch_duration": "nan"}, status=422,
         reason="finite"),
    case("window-duration-1e999s", "POST", "/api/windows", json={"host": 0, "duration": "1e999"}, status=422,
         reason="finite"),
    case("window-duration-zero", "POST", "/api/windows", json={"host": 0, "duration": 0}, status=422,
         reason="between 0 and 30 days"),
    case("window-duration-true", "POST", "/api/windows", json={"host": 0, "duration": True}, status=422,
         reason="duration"),
    case("profile-interval-nan", "PUT", "/api/profile", json={**PROFILE, "interval": "nan"}, status=422, reason="finite"),
    case("profile-interval-inf", "PUT", "/api/profile", json={**PROFILE, "interval": "inf"}, status=422, reason="finite"),
    case("profile-interval-zero", "PUT", "/api/profile", json={**PROFILE, "interval": "0s"}, status=422, reason="positive"),
    # ---- the fleet's own checks
    case("window-host-out-of-range", "POST", "/api/windows", json={"host": 99}, status=422, reason="no host 99"),
    case("window-host-negative", "POST", "/api/windows", json={"host": -1}, status=422, reason="no host -1"),
    case("window-host-unknown-name", "POST", "/api/windows", json={"host": "no-such-host"}, status=422,
         reason="no host named 'no-such-host'"),
    case("window-host-true", "POST", "/api/windows", json={"host": True}, status=422, reason="valid integer"),
    case("window-start-and-start_in", "POST", "/api/windows", json={"host": 0, "start": 10 ** 6, "start_in": "1h"},
         status=422, reason="not both"),
    case("window-start-in-the-past", "POST", "/api/windows", json={"host": 0, "start": 0}, status=422,
         reason="in the past"),
    case("window-start_in-ten-years", "POST", "/api/windows", json={"host": 0, "start_in": "3650d"}, status=422,
         reason="more than a year ahead"),
    case("guest-ram-does-not-fit", "POST", "/api/guests", json={"ram_mb": 10 ** 7}, status=422, reason="does not fit"),
    case("guest-util-over-1", "POST", "/api/guests", json={"cpu_util": [0.2, 1.5]}, status=422,
         reason="between 0 and 1"),
    case("guest-reserve-over-size", "POST", "/api/guests", json={"vcpus": 1, "mips_per_vcpu": 1000, "reserve_mips": 5000},
         status=422, reason="more than the guest's size"),
    case("profile-unknown-policy", "PUT", "/api/profile", json={"policies": [{"name": "no-such-policy"}]}, status=422,
         reason="unknown policy"),
    case("profile-unknown-arg", "PUT", "/api/profile", json={"policies": [{"name": "presplit", "args": {"bogus": 1}}]},
         status=422, reason="has no argument 'bogus'"),
    case("profile-cap-zero", "PUT", "/api/profile", json={**PROFILE, "caps": {"per_host": 0}}, status=422,
         reason="not a positive whole number"),
    case("profile-no-policies", "PUT", "/api/profile", json={"policies": []}, status=422, reason="at least 1"),
    # ---- huge inputs: refused without being echoed whole
    case("guest-id-500k-chars", "POST", "/api/guests", json={"id": "x" * 500_000}, status=422,
         reason="(500000 characters)"),
    case("guest-unknown-field-500k-name", "POST", "/api/guests", json={"y" * 500_000: 1}, status=422,
         reason="(500000 characters)"),
    case("window-host-name-500k", "POST", "/api/windows", json={"host": "h" * 500_000}, status=422,
         reason="(500000 characters)"),
    case("profile-arg-500k-string", "PUT", "/api/profile",
         json={"policies": [{"name": "presplit", "args": {"target": "t" * 500_000}}]}, status=422,
         reason="policies[0].args.target: 'tttt"),
    case("guest-vcpus-4000-digits", "POST", "/api/guests", raw=b'{"vcpus": ' + b"9" * 4000 + b"}", status=422,
         reason="an integer of about 4001 digits"),
    case("guest-vcpus-5000-digits", "POST", "/api/guests", raw=b'{"vcpus": ' + b"9" * 5000 + b"}", status=422,
         reason="4300 digits"),
    case("body-over-4MiB", "POST", "/api/guests", raw=b'{"id": "' + b"x" * BIG + b'"}', status=413,
         reason="at most 4194304 bytes"),
    # chunked: no Content-Length to refuse it by, the reading stops at the cap
    case("body-over-4MiB-chunked", "POST", "/api/guests", raw=lambda: (b" " * (1 << 20) for _ in range(5)),
         status=413, reason="over 4194304 bytes"),
    case("body-nested-5000-deep", "POST", "/api/guests", raw=b"[" * 5000 + b"]" * 5000, status=422,
         reason="nested deeper than"),
    case("profile-args-nested-40-deep", "PUT", "/api/profile",
         raw=b'{"policies": [{"name": "presplit", "args": {"target": ' + b"[" * 40 + b"]" * 40 + b"}}]}", status=422,
         reason="nested deeper than"),
    case("approve-note-too-long", "POST", "/api/plans/1/approve", json={"note": "n" * 100_000}, status=422,
         reason="at most 500 characters"),
    # ---- wrong types, unknown fields
    case("guest-vcpus-string", "POST", "/api/guests", json={"vcpus": "lots"}, status=422, reason="vcpus"),
    case("guest-util-dict", "POST", "/api/guests", json={"cpu_util": {"a": 1}}, status=422, reason="cpu_util"),
    case("guest-unknown-field", "POST", "/api/guests", json={"vcpus": 2, "colour": "red"}, status=422, reason="colour"),
    case("guest-body-is-a-list", "POST", "/api/guests", json=[1, 2], status=422, reason="valid dictionary"),
    case("profile-policies-string", "PUT", "/api/profile", json={"policies": "all of them"}, status=422,
         reason="policies"),
    case("profile-unknown-field", "PUT", "/api/profile", json={**PROFILE, "mode": "fast"}, status=422, reason="mode"),
    case("reject-unknown-field", "POST", "/api/plans/1/reject", json={"why": "no"}, status=422, reason="why"),
    case("cancel-note-number", "POST", "/api/plans/1/cancel", json={"note": 5}, status=422, reason="note"),
    # ---- tokens (the body is never looked at)
    case("guest-missing-token", "POST", "/api/guests", json={"id": "sneaky"}, token=None, status=401,
         reason="Authorization: Bearer"),
    case("window-wrong-token", "POST", "/api/windows", json={"host": 0}, token="wrong", status=401,
         reason="not valid"),
    case("profile-missing-token-malformed", "PUT", "/api/profile", raw=b"{not json", token=None, status=401,
         reason="Authorization: Bearer"),
    # ---- the body as such
    case("guest-malformed-json", "POST", "/api/guests", raw=b'{"vcpus": 2,', status=422, reason="JSON decode error"),
    case("profile-malformed-json", "PUT", "/api/profile", raw=b"{'policies': []}", status=422,
         reason="JSON decode error"),
    case("guest-empty-body", "POST", "/api/guests", raw=b"", status=422, reason="Field required"),
    case("guest-text-plain", "POST", "/api/guests", raw=b'{"vcpus": 2}', ctype="text/plain", status=415,
         reason="application/json"),
    case("window-form-encoded", "POST", "/api/windows", raw=b"host=0", ctype="application/x-www-form-urlencoded",
         status=415, reason="application/json"),
    case("profile-no-content-type", "PUT", "/api/profile", raw=b'{"policies": [{"name": "evacuate"}]}', ctype=None,
         status=415, reason="none given"),
    case("guest-not-utf8", "POST", "/api/guests", raw=b'{"id": "\xff\xfe"}', status=422, reason="utf-8"),
    # ---- path parameters of the writes
    case("approve-plan-abc", "POST", "/api/plans/abc/approve", status=422, reason="plan_id"),
    case("cancel-plan-unknown", "POST", "/api/plans/999999999/cancel", status=404, reason="no plan 999999999"),
    case("reject-plan-huge-id", "POST", "/api/plans/" + "9" * 30 + "/reject", status=404, reason="no plan"),
    case("approve-plan-float", "POST", "/api/plans/1.5/approve", status=422, reason="plan_id"),
    # ---- reads
    case("read-plan-abc", "GET", "/api/plans/abc", status=422, reason="plan_id"),
    case("read-plan-unknown", "GET", "/api/plans/999999", status=404, reason="no plan 999999"),
    case("read-plan-huge-id", "GET", "/api/plans/" + "9" * 40, status=404, reason="no plan"),
    case("read-guest-unknown", "GET", "/api/guests/999999", status=404, reason="no guest '999999'"),
    case("read-host-unknown", "GET", "/api/hosts/999999", status=404, reason="no host 999999"),
    case("read-host-NaN", "GET", "/api/hosts/NaN", status=422, reason="host_id"),
    case("read-domain-forecast-inf", "GET", "/api/domains/inf/forecast", status=422, reason="domain_id"),
    case("read-guests-huge-limit", "GET", "/api/guests", params={"limit": 10 ** 12}, status=422, reason="limit"),
    case("read-plans-huge-limit", "GET", "/api/plans", params={"limit": 10 ** 30}, status=422, reason="limit"),
    case("read-guests-offset-nan", "GET", "/api/guests", params={"offset": "nan"}, status=422, reason="offset"),
    case("read-domains-host-inf", "GET", "/api/domains", params={"host": "inf"}, status=422, reason="host"),
    case("read-events-after-negative", "GET", "/api/events", params={"after": -1}, status=422, reason="after"),
    case("read-timeline-limit-zero", "GET", "/api/timeline", params={"limit": 0}, status=422, reason="limit"),
    case("read-guests-status-20k-chars", "GET", "/api/guests", params={"status": "z" * 20_000}, status=422,
         reason="(20000 characters)"),
    case("read-windows-past-not-bool", "GET", "/api/windows", params={"past": "maybe"}, status=422, reason="past"),
]


# ------------------------------------------------------------------ what must not change


def _state(served) -> dict:
    c = served.client
    guests = c.get("/api/guests").json()
    plans, decisions, profile_meta = journal_rows(served)
    return {"world_changes": world_changes(served), "guests": sorted(g["id"] for g in guests),
            "counts_guests": c.get("/api/status").json()["counts"]["guests"],
            # a window's state (upcoming, open, past) moves with the clock; the windows themselves must not
            "windows": [{k: v for k, v in w.items() if k != "state"}
                        for w in c.get("/api/windows", params={"past": True}).json()],
            "profile": c.get("/api/profile").json(),
            "plans": plans, "decisions": decisions, "profile_meta": profile_meta}


def _same(before: dict, after: dict) -> None:
    # the loop keeps ticking: new plans may appear and a running one may finish (not as cancelled: nobody
    # cancelled it), but every finished plan keeps its status
    old = dict(before["plans"])
    new = dict(after["plans"])
    assert set(old) <= set(new)
    for pid, status in old.items():
        assert new[pid] == status or (status == "running" and new[pid] != "cancelled"), (pid, status, new[pid])
    drop = ("plans",)
    assert {k: v for k, v in after.items() if k not in drop} == {k: v for k, v in before.items() if k not in drop}


def _send(served, c: dict) -> httpx.Response:
    headers = {}
    if c["token"] is not None:
        headers["Authorization"] = f"Bearer {c['token']}"
    kw: dict = {"params": c["params"], "headers": headers}
    if c["json"] is not None:
        kw["json"] = c["json"]
    elif c["raw"] is not None:
        kw["content"] = c["raw"]() if callable(c["raw"]) else c["raw"]
        if c["ctype"] is not None:
            headers["Content-Type"] = c["ctype"]
    return served.client.request(c["method"], c["path"], **kw)


@pytest.fixture(scope="module")
def ticking(served):
    served.wait_for(lambda: served.client.get("/api/status").json()["ticks"] >= 2)  # the world's clock is past 0
    return served


@pytest.mark.parametrize("c", CASES)
def test_bad_input_is_a_4xx_with_a_reason_and_changes_nothing(ticking, c):
    served = ticking
    before = _state(served)
    r = _send(served, c)
    assert r.status_code == c["status"], (r.status_code, r.text[:500])
    assert 400 <= r.status_code < 500
    detail = r.json()["detail"]
    text = detail if isinstance(detail, str) else str(detail)
    assert c["reason"] in text, text[:1000]
    assert len(r.content) < 4000, f"{len(r.content)} bytes: the input is echoed back"
    assert TOKEN not in r.text
    if r.status_code == 401:
        assert r.headers["www-authenticate"] == "Bearer"
    _same(before, _state(served))


def test_the_table_covers_every_write_endpoint():
    writes = {(c.values[0]["method"], re.sub(r"/plans/[^/]+/", "/plans/{id}/", c.values[0]["path"]))
              for c in CASES if c.values[0]["method"] != "GET"}
    assert writes == {("POST", "/api/guests"), ("POST", "/api/windows"), ("PUT", "/api/profile"),
                      ("POST", "/api/plans/{id}/approve"), ("POST", "/api/plans/{id}/reject"),
                      ("POST", "/api/plans/{id}/cancel")}
    assert len(CASES) >= 25


# ------------------------------------------------------------------ the token first
BAD_BODIES = [
    pytest.param(b"{not json", JSON, 422, id="malformed"),
    pytest.param(b'{"ram_mb": NaN, "note": NaN, "policies": NaN, "host": NaN}', JSON, 422, id="NaN"),
    pytest.param(b'{"x": 1}', "text/plain", 415, id="text-plain"),
    pytest.param(b"[" * (BIG // 2) + b"]" * (BIG // 2), JSON, 413, id="over-4MiB"),
]
WRITES = [("POST", "/api/guests"), ("POST", "/api/windows"), ("PUT", "/api/profile"),
          ("POST", "/api/plans/1/approve"), ("POST", "/api/plans/1/reject"), ("POST", "/api/plans/1/cancel"),
          ("POST", "/api/plans/abc/cancel")]


@pytest.mark.parametrize("body,ctype,with_token", BAD_BODIES)
def test_the_token_is_checked_before_the_body(ticking, body, ctype, with_token: int):
    """Without a valid token every bad body is a 401 (nothing about the body is revealed); with it, the body's error."""
    c = ticking.client
    before = _state(ticking)
    for method, path in WRITES:
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            r = c.request(method, path, content=body, headers={"Content-Type": ctype, **headers})
            assert r.status_code == 401, (method, path, r.status_code, r.text[:300])
            assert r.headers["www-authenticate"] == "Bearer" and "bearer" in r.json()["detail"].lower()
        r = c.request(method, path, content=body, headers={"Content-Type": ctype, **ticking.auth()})
        # with the token: the body's own error (its size, type and JSON come before the path's 'abc')
        assert r.status_code == with_token, (method, path, r.status_code, r.text[:300])
    _same(before, _state(ticking))


# ------------------------------------------------------------------ HEAD, access log
def test_head_on_the_dashboard_and_the_root(ticking):
    c = ticking.client
    r = c.head("/dashboard/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html") and r.content == b""
    assert int(r.headers["content-length"]) == len(c.get("/dashboard/").content)
    r = c.head("/")
    assert r.status_code in (302, 307) and r.headers["location"] == "/dashboard/"
    assert c.head("/dashboard/app.js").status_code == 200


def test_access_log_has_one_line_per_request(tmp_path):
    """presplit serve --access-log (a real uvicorn on a free loopback port) logs method, path, status, duration."""
    port = free_port()
    env = {**os.environ, "PRESPLIT_API_TOKEN": TOKEN}
    cmd = [sys.executable, "-c", "from presplit.cli.main import cli; cli()", "serve", "--access-log",
           "--listen", f"127.0.0.1:{port}", "--db", f"sqlite:///{tmp_path / 'journal.db'}", "--pace", "0.2s"]
    err = tmp_path / "stderr.txt"
    with open(err, "wb") as fh:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=fh, env=env, cwd=tmp_path)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + 90
        while True:
            try:
                if httpx.get(url + "/api/status", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.time() < deadline, err.read_text()[-2000:]
            time.sleep(0.2)
        with httpx.Client(base_url=url, timeout=30) as c:
            assert c.get("/api/hosts/999", params={"secret": "in-the-query"}).status_code == 404
            assert c.post("/api/guests", json={"vcpus": 1}).status_code == 401
            assert c.post("/api/guests", content=b"{bad", headers={"Authorization": f"Bearer {TOKEN}",
                                                                      "Content-Type": JSON}).status_code == 422
            assert c.head("/dashboard/").status_code == 200
            assert c.get("/api/evil%0Aline").status_code == 404
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    log = err.read_text()
    lines = log.splitlines()
    pattern = r'127\.0\.0\.1:\d+ "{} {}" {} \d+\.\d ms$'
    for method, path, status in [("GET", "/api/status", 200), ("GET", "/api/hosts/999", 404),
                                 ("POST", "/api/guests", 401), ("POST", "/api/guests", 422),
                                 ("HEAD", "/dashboard/", 200), ("GET", "/api/evil%0Aline", 404)]:
        assert any(re.search(pattern.format(method, re.escape(path), status), ln) for ln in lines), (method, path,
                                                                                                       log[-3000:])
    assert TOKEN not in log and "in-the-query" not in log and "Authorization" not in log
