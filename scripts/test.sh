#!/usr/bin/env bash
# Installs everything the test suite needs (idempotently) and runs it.
# Usage: scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages the tests drive for real: QEMU guests, cgroups and namespaces
# (setup-qemu.sh), PostgreSQL for the journal (setup-postgres.sh install),
# Chromium and Prometheus for the report and service tests. Each script does
# nothing when its packages are already there.
scripts/setup-qemu.sh
scripts/setup-postgres.sh install
scripts/setup-chromium.sh
if [ -x scripts/setup-service-tests.sh ]; then
    scripts/setup-service-tests.sh
fi

python3 -m pip install --quiet --disable-pip-version-check -e '.[test]'
exec python3 -m pytest -q "$@"
