#!/usr/bin/env bash
# Throwaway PostgreSQL servers for the journal's tests (Debian's postgresql package).
#
#   setup-postgres.sh install        apt-get install postgresql if no pg_ctl is found (idempotent)
#   setup-postgres.sh start DIR      initdb a cluster in DIR (as user postgres), start it on 127.0.0.1
#                                    at a free port, create database presplit; prints its URL last
#   setup-postgres.sh stop DIR       stop the cluster in DIR (fast shutdown)
#
# Nothing is registered with the system's own clusters (no pg_ctlcluster, no systemd).
set -euo pipefail

pg_bin() {
    local bin
    bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
    if [ -z "$bin" ] || [ ! -x "$bin/pg_ctl" ]; then
        echo "no PostgreSQL binaries under /usr/lib/postgresql/*/bin; run: $0 install" >&2
        return 1
    fi
    echo "$bin"
}

as_pg() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

cmd=${1:-}
case "$cmd" in
install)
    if ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
        echo "PostgreSQL already installed: $(pg_bin)"
        exit 0
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends postgresql >/dev/null
    echo "installed: $(pg_bin)"
    ;;
start)
    dir=${2:?usage: $0 start DIR}
    bin=$(pg_bin)
    mkdir -p "$dir"
    data="$dir/data"
    if [ "$(id -u)" = 0 ]; then chown postgres: "$dir"; fi
    if [ ! -f "$data/PG_VERSION" ]; then
        as_pg "$bin/initdb" -D "$data" -U postgres --auth=trust --no-sync -E UTF8 >"$dir/initdb.log" 2>&1
    fi
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    # fsync off: a throwaway test cluster; the journal's own durability is SQLite's/PG's job in production.
    as_pg "$bin/pg_ctl" -D "$data" -l "$dir/server.log" -w -t 60 \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off" start >/dev/null
    echo "$port" >"$dir/port"
    as_pg "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -qtAc "CREATE DATABASE presplit" >/dev/null 2>&1 || true
    echo "postgresql://postgres@127.0.0.1:$port/presplit"
    ;;
stop)
    dir=${2:?usage: $0 stop DIR}
    bin=$(pg_bin)
    if [ -f "$dir/data/postmaster.pid" ]; then
        as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    fi
    echo "stopped"
    ;;
*)
    echo "usage: $0 install | start DIR | stop DIR" >&2
    exit 2
    ;;
esac
