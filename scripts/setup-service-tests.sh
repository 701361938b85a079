#!/bin/sh
# Install what tests/service needs: Prometheus, Chromium and chromedriver (Debian packages),
# and playwright-core (npm) into tests/service/node_modules. Never downloads a browser:
# playwright-core drives Debian's /usr/bin/chromium. Idempotent: a no-op when all is there.
set -eu
HERE=$(cd "$(dirname "$0")/.." && pwd)
need=""
[ -x /usr/bin/prometheus ] || need="$need prometheus"
[ -x /usr/bin/chromium ] || need="$need chromium"
[ -x /usr/bin/chromedriver ] || need="$need chromium-driver"
[ -x /usr/bin/systemd-analyze ] || need="$need systemd"  # verifies deploy/systemd/presplit.service
if [ -n "$need" ]; then
    export DEBIAN_FRONTEND=noninteractive
    # The package lists may be missing in a fresh container; refresh them once if the install fails.
    # shellcheck disable=SC2086
    apt-get install -y --no-install-recommends $need >/dev/null 2>&1 || {
        apt-get update -qq
        # shellcheck disable=SC2086
        apt-get install -y --no-install-recommends $need
    }
fi
# The Debian package starts nothing here (no systemd); the tests start Prometheus by hand.
test -x /usr/bin/prometheus
test -x /usr/bin/chromium
if [ ! -f "$HERE/tests/service/node_modules/playwright-core/package.json" ]; then
    command -v npm >/dev/null 2>&1 || {
        apt-get install -y --no-install-recommends nodejs npm >/dev/null 2>&1 || {
            apt-get update -qq; apt-get install -y --no-install-recommends nodejs npm; }
    }
    # PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: playwright-core downloads nothing anyway; belt and braces.
    (cd "$HERE/tests/service" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --no-save --no-audit --no-fund \
        --prefix "$HERE/tests/service" playwright-core@1 >/dev/null)
fi
test -f "$HERE/tests/service/node_modules/playwright-core/package.json"
