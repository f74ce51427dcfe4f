#!/usr/bin/env bash
# Stops the private PostgreSQL cluster that scripts/setup.sh started (data is kept).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
v=$(pg_major) || die "no PostgreSQL server installed"
pgdata="${GIS_GRID_PGDATA:-/var/lib/gis-grid/pg$v-$GIS_GRID_PGPORT}"
as_postgres "/usr/lib/postgresql/$v/bin/pg_ctl" -D "$pgdata" -m fast stop
