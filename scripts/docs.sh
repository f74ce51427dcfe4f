#!/usr/bin/env bash
# The documentation and the notebooks, after `bash scripts/test.sh` (or serve.sh) set things up.
#
#   bash scripts/docs.sh build            # mkdocs build --strict into site/ (what CI runs)
#   bash scripts/docs.sh serve            # preview the pages at http://127.0.0.1:8001
#   bash scripts/docs.sh notebooks        # execute every notebook (pytest --nbmake), as CI does
#   bash scripts/docs.sh clear-notebooks  # strip outputs before committing
#
# The notebooks need GIS_GRID_DATABASE_URL (a PostGIS server where they may create a scratch
# database); scripts/test.sh exports it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export NO_MKDOCS_2_WARNING=1

case "${1:-build}" in
    build) exec .venv/bin/mkdocs build --strict ;;
    serve) exec .venv/bin/mkdocs serve --strict -a 127.0.0.1:8001 ;;
    notebooks) exec .venv/bin/pytest -p no:cacheprovider --nbmake notebooks/ ;;
    clear-notebooks)
        exec .venv/bin/python - notebooks/*.ipynb <<'PY'
import sys

import nbformat

for path in sys.argv[1:]:
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        cell.metadata.pop("execution", None)
    nbformat.write(nb, path)
    print(f"cleared {path}")
PY
        ;;
    *) echo "usage: bash scripts/docs.sh [build|serve|notebooks|clear-notebooks]" >&2; exit 2 ;;
esac
