#!/usr/bin/env bash
# Installs everything the test suite needs (idempotently) and runs it.
# Usage: scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages for the real-backend tests (QEMU guests, cgroups, namespaces).
if [ -x scripts/setup-qemu.sh ]; then
    scripts/setup-qemu.sh
fi

python3 -m pip install --quiet --disable-pip-version-check -e '.[test]'
exec python3 -m pytest -q "$@"
