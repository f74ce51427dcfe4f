#!/usr/bin/env bash
# Sets up everything the platform needs on a Debian/Ubuntu machine, idempotently:
#   1. Debian packages (python3-venv, PostgreSQL + PostGIS, and for tests Chromium + CJK fonts);
#   2. the project's virtual environment in .venv/ with the locked dependencies (uv.lock);
#   3. a database: the one GIS_GRID_DATABASE_URL points at, or else a private PostgreSQL
#      cluster of our own (its own data directory and port, never touching other clusters).
# Sourced by scripts/serve.sh and scripts/test.sh; exports GIS_GRID_DATABASE_URL.
# Knobs (environment): GIS_GRID_DATABASE_URL, GIS_GRID_PGDATA, GIS_GRID_PGPORT, GIS_GRID_WITH_BROWSER.

set -euo pipefail

GIS_GRID_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
GIS_GRID_PGPORT="${GIS_GRID_PGPORT:-55432}"
UV_VERSION="0.13.9"
export UV_PYTHON_DOWNLOADS=never UV_PROJECT_ENVIRONMENT="$GIS_GRID_ROOT/.venv"

log() { printf '\033[1;34m[gis-grid]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31m[gis-grid] error:\033[0m %s\n' "$*" >&2; exit 1; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

as_postgres() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi
}

APT_UPDATED=0
apt_install() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
            || missing+=("$pkg")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    command -v apt-get >/dev/null || die "apt-get not found: install ${missing[*]} by hand"
    if [ "$APT_UPDATED" -eq 0 ]; then
        log "apt-get update"
        as_root apt-get update -qq
        APT_UPDATED=1
    fi
    log "installing Debian packages: ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
}

pg_major() {
    # Highest PostgreSQL major version whose server binaries are installed.
    local v
    v=$(ls -1 /usr/lib/postgresql 2>/dev/null | sort -n | tail -n 1)
    [ -n "$v" ] && [ -x "/usr/lib/postgresql/$v/bin/postgres" ] && echo "$v"
}

setup_system_packages() {
    local want_browser="${1:-0}"
    apt_install ca-certificates python3 python3-venv python3-dev build-essential
    if [ -z "${GIS_GRID_DATABASE_URL:-}" ]; then
        local v
        v=$(pg_major || true)
        if [ -z "$v" ]; then
            apt_install postgresql
            v=$(pg_major) || die "PostgreSQL server binaries not found after installing postgresql"
        fi
        apt_install "postgresql-$v-postgis-3" postgresql-contrib
    elif [ "$want_browser" = 1 ] && [ -z "$(pg_major || true)" ]; then
        # Tests also need the server binaries (the backup/restore test runs initdb,
        # pg_basebackup and a scratch cluster of its own); no "main" cluster is created.
        apt_install postgresql-common
        as_root sed -i 's/^#* *create_main_cluster *=.*/create_main_cluster = false/' \
            /etc/postgresql-common/createcluster.conf
        apt_install postgresql postgresql-client
    else
        apt_install postgresql-client
    fi
    if [ "$want_browser" = 1 ]; then
        apt_install chromium fonts-noto-cjk
    fi
}

setup_venv() {
    cd "$GIS_GRID_ROOT"
    if [ ! -x .venv/bin/python ]; then
        log "creating virtual environment .venv/"
        python3 -m venv .venv
    fi
    if ! .venv/bin/uv --version 2>/dev/null | grep -q "$UV_VERSION"; then
        log "installing uv $UV_VERSION into .venv/"
        .venv/bin/python -m pip install -q "uv==$UV_VERSION"
    fi
    log "installing locked Python dependencies (uv.lock)"
    # --inexact keeps uv itself, which is not one of the project's dependencies.
    .venv/bin/uv sync --frozen --inexact --extra dev --extra bench --extra notebooks --extra docs --extra scale -q
}

# shared_buffers for the private cluster: a quarter of the memory, between 128 MB (the
# PostgreSQL default) and 2 GB. The default alone is smaller than one district's households
# table and its indexes (~0.5 GB per million rows), so every spatial scan read them again.
shared_buffers() {
    local kb mb
    kb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo 2>/dev/null || echo 0)
    mb=$((kb / 1024 / 4))
    ((mb > 2048)) && mb=2048
    ((mb < 128)) && mb=128
    echo "${mb}MB"
}

start_private_cluster() {
    local v bindir pgdata sockdir
    v=$(pg_major) || die "no PostgreSQL server installed"
    bindir="/usr/lib/postgresql/$v/bin"
    pgdata="${GIS_GRID_PGDATA:-/var/lib/gis-grid/pg$v-$GIS_GRID_PGPORT}"
    sockdir="$pgdata/socket"
    if [ ! -f "$pgdata/PG_VERSION" ]; then
        log "creating a private PostgreSQL $v cluster in $pgdata (port $GIS_GRID_PGPORT)"
        as_root mkdir -p "$pgdata"
        as_root chown postgres:postgres "$pgdata"
        as_root chmod 700 "$pgdata"
        as_postgres "$bindir/initdb" -D "$pgdata" -U postgres -A trust -E UTF8 \
            --locale=C.UTF-8 >/dev/null
        as_postgres mkdir -p "$sockdir"
    fi
    if ! as_postgres "$bindir/pg_ctl" -D "$pgdata" status >/dev/null 2>&1; then
        log "starting the private cluster on 127.0.0.1:$GIS_GRID_PGPORT"
        as_postgres "$bindir/pg_ctl" -D "$pgdata" -l "$pgdata/server.log" -w -t 60 start \
            -o "-p $GIS_GRID_PGPORT -k $sockdir -c listen_addresses=127.0.0.1 -c fsync=on -c shared_buffers=$(shared_buffers)" \
            >/dev/null || { tail -n 20 "$pgdata/server.log" >&2; die "PostgreSQL did not start"; }
    fi
    local psql=("$bindir/psql" -h "$sockdir" -p "$GIS_GRID_PGPORT" -U postgres -v ON_ERROR_STOP=1 -qAt)
    # PostGIS in template1, so that every database created later (tests' scratch ones too) has it.
    as_postgres "${psql[@]}" -d template1 -c "SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS postgis; CREATE EXTENSION IF NOT EXISTS btree_gist;"
    if [ "$(as_postgres "${psql[@]}" -d postgres -c "SELECT 1 FROM pg_roles WHERE rolname='gis_grid'")" != 1 ]; then
        as_postgres "${psql[@]}" -d postgres -c "CREATE ROLE gis_grid LOGIN CREATEDB CREATEROLE PASSWORD 'gis_grid'"
    fi
    # Row-level security (docs/security.md): the owner (migrations, loading, the command line)
    # bypasses it; the web service connects as gis_grid_app, which owns nothing and cannot.
    as_postgres "${psql[@]}" -d postgres -c "ALTER ROLE gis_grid BYPASSRLS"
    if [ "$(as_postgres "${psql[@]}" -d postgres -c "SELECT 1 FROM pg_roles WHERE rolname='gis_grid_app'")" != 1 ]; then
        as_postgres "${psql[@]}" -d postgres -c "CREATE ROLE gis_grid_app LOGIN NOBYPASSRLS PASSWORD 'gis_grid_app'"
    fi
    as_postgres "${psql[@]}" -d postgres -c "ALTER ROLE gis_grid_app LOGIN NOSUPERUSER NOBYPASSRLS PASSWORD 'gis_grid_app'"
    # A runaway query of the service is cancelled rather than holding a pooled connection.
    as_postgres "${psql[@]}" -d postgres -c "ALTER ROLE gis_grid_app SET statement_timeout = '60s'"
    # The service derives its URL from GIS_GRID_DATABASE_URL (same server and database, role
    # gis_grid_app): no GIS_GRID_APP_DATABASE_URL here, or test servers on scratch databases
    # would log in against this one.
    if [ "$(as_postgres "${psql[@]}" -d postgres -c "SELECT 1 FROM pg_database WHERE datname='gis_grid'")" != 1 ]; then
        as_postgres "${psql[@]}" -d postgres -c "CREATE DATABASE gis_grid OWNER gis_grid"
    fi
    export GIS_GRID_DATABASE_URL="postgresql+psycopg://gis_grid:gis_grid@127.0.0.1:$GIS_GRID_PGPORT/gis_grid"
}

setup_database() {
    if [ -n "${GIS_GRID_DATABASE_URL:-}" ]; then
        log "using the existing database in GIS_GRID_DATABASE_URL"
    else
        start_private_cluster
    fi
    "$GIS_GRID_ROOT/.venv/bin/gis-grid" db check
}

setup_all() {
    local want_browser="${1:-0}"
    setup_system_packages "$want_browser"
    setup_venv
    setup_database
}
