#!/usr/bin/env bash
# Installs presplit from this checkout into a virtual environment and prints its entry point.
# Works on a stock Debian 12 / Ubuntu 24.04 whose system Python refuses `pip install`
# (PEP 668, "externally-managed-environment"): presplit goes into its own venv, never
# into the system's Python. Idempotent: a second run only reinstalls presplit.
#
# Usage: scripts/install.sh [--core | EXTRAS] [--editable]
#   (nothing)         presplit[all]: every command (about 700 MB)
#   --core            no extras (about 185 MB): simulate and run on PlanetLab / cloudsim,
#                     state, bench; other commands name the extra they need
#   EXTRAS            a comma-separated list of extras, e.g. parquet,service
#                     (parquet forecast report cluster postgres service all test)
#   --editable        an editable install (source edits take effect without reinstalling)
# Environment: PYTHON (default python3), PRESPLIT_VENV (default .venv in this checkout).
#
# System packages the build needs, apt-installed when missing (as root, or through sudo):
#   gcc           compiles the C placement kernel
#   python3-dev   the Python headers the kernel includes (Python.h)
#   python3-venv  venv with pip (Debian leaves ensurepip out of python3 itself)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PYTHON=${PYTHON:-python3}
VENV=${PRESPLIT_VENV:-$ROOT/.venv}
extras=all
editable=()
for arg in "$@"; do
    case $arg in
        --core) extras= ;;
        --editable|-e) editable=(-e) ;;
        -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) echo "install.sh: unknown option $arg (see --help)" >&2; exit 2 ;;
        *) extras=$arg ;;
    esac
done

# 1. System packages, only those missing.
need=()
if ! command -v "$PYTHON" >/dev/null 2>&1; then
    need+=(python3 python3-dev python3-venv)
else
    if ! "$PYTHON" -c 'import sysconfig, os, sys; sys.exit(not os.path.isfile(os.path.join(sysconfig.get_paths()["include"], "Python.h")))'; then
        need+=(python3-dev)
    fi
    if ! "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1; then
        need+=(python3-venv)
    fi
fi
if ! command -v gcc >/dev/null 2>&1 && ! command -v cc >/dev/null 2>&1; then
    need+=(gcc)
fi
if [ ${#need[@]} -gt 0 ]; then
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "install.sh: missing ${need[*]} (a C compiler, the Python headers, venv); install them with your" \
             "system's package manager and rerun" >&2
        exit 1
    fi
    sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || { echo "install.sh: run as root to apt-get install ${need[*]}" >&2; exit 1; }
        sudo=(sudo)
    fi
    echo "install.sh: apt-get install ${need[*]}" >&2
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    hash -r
    # The headers must now be the interpreter's own (a python3 not from apt needs its own headers).
    "$PYTHON" -c 'import sysconfig, os, sys; sys.exit(not os.path.isfile(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' || {
        echo "install.sh: $PYTHON has no Python.h even after apt-get install python3-dev;" \
             "use the system python3 (PYTHON=/usr/bin/python3) or install its headers" >&2
        exit 1
    }
fi

# 2. The virtual environment (reused when it works; recreated when it has no pip, e.g. made before python3-venv).
if ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
    echo "install.sh: creating $VENV" >&2
    "$PYTHON" -m venv --clear "$VENV"
fi
[ -e "$VENV/.gitignore" ] || echo '*' > "$VENV/.gitignore"  # keep the venv out of git status

# 3. presplit itself, built from this checkout.
spec=$ROOT${extras:+[$extras]}
echo "install.sh: pip install ${editable[*]:+${editable[*]} }$spec (into $VENV)" >&2
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${editable[@]}" "$spec"

"$VENV/bin/presplit" --version >/dev/null
echo "install.sh: presplit is installed: $VENV/bin/presplit (run it by that path, or add $VENV/bin to PATH)" >&2
