"""schemathesis against the OpenAPI document of a running service: no server error, no schema violation.

Runs with the bearer token, so the mutations are exercised for real (guests
launched, windows added, profiles swapped on the running loop) as well as
refused (the coverage phase also sends requests without valid data).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from service_support import TOKEN

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


def test_schemathesis_finds_no_server_error_and_no_schema_violation(served, tmp_path):
    exe = shutil.which("schemathesis") or str(Path(sys.executable).with_name("schemathesis"))
    cmd = [exe, "run", served.url + "/openapi.json", "--checks", CHECKS, "-H", f"Authorization: Bearer {TOKEN}",
           "--max-examples", "25", "--seed", "7", "--phases", "examples,coverage,fuzzing", "--request-timeout", "30",
           "--report", "junit", "--report-dir", str(tmp_path)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=240, cwd=str(tmp_path))  # its cache stays there
    tail = (out.stdout + out.stderr)[-6000:]
    assert out.returncode == 0, tail
    assert "Tested: 2" in out.stdout  # every operation of the document was tested (20-odd)
    # the service is still healthy after the onslaught
    assert served.client.get("/api/status").json()["running"]
