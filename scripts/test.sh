#!/usr/bin/env bash
# README command 2: set everything up (PostGIS, Chromium, the locked Python environment) and run
# the whole test suite against a real PostGIS, after the linters. Extra arguments go to pytest.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
setup_all 1
cd "$GIS_GRID_ROOT"
log "ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
log "mypy"
.venv/bin/mypy
log "import contracts (api -> gis_grid <- maps)"
.venv/bin/lint-imports
log "pytest (PostGIS tests create and drop their own scratch database)"
.venv/bin/pytest "$@"
log "notebooks: executed top to bottom against the sample data (pytest --nbmake)"
.venv/bin/pytest -p no:cacheprovider --nbmake notebooks/
log "documentation: mkdocs build --strict (warnings are errors)"
NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict
