#!/usr/bin/env bash
# README command 1: set everything up, load the sample data into PostGIS, serve the platform
# at http://127.0.0.1:8000 (GIS_GRID_HOST / GIS_GRID_PORT to change). Ctrl-C stops the server;
# the private database cluster keeps running (scripts/stop-db.sh stops it).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
setup_all 0
cd "$GIS_GRID_ROOT"
log "migrating the schema and loading the sample data (data/shapefiles)"
.venv/bin/gis-grid load data/shapefiles --replace
# The first administrator, if there is none (its password is printed once, or taken from
# GIS_GRID_ADMIN_PASSWORD); more accounts with: gis-grid users add NAME --role ROLE.
.venv/bin/gis-grid users bootstrap
log "serving as the application role (row-level security applies; docs/security.md)"
log "serving on http://${GIS_GRID_HOST:-127.0.0.1}:${GIS_GRID_PORT:-8000} (map: /map, API docs: /docs)"
exec .venv/bin/gis-grid serve --host "${GIS_GRID_HOST:-127.0.0.1}" --port "${GIS_GRID_PORT:-8000}"
