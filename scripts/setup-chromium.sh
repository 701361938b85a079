#!/bin/sh
# Install headless Chromium (Debian package) for the report tests; a no-op when it is there.
# Idempotent: apt-get install of an installed package changes nothing.
set -eu
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
# The package lists may be missing in a fresh container; refresh them once if the install fails.
apt-get install -y --no-install-recommends chromium >/dev/null 2>&1 || {
    apt-get update -qq
    apt-get install -y --no-install-recommends chromium
}
test -x /usr/bin/chromium
