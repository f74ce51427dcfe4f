"""``gis-grid exchange``: import and export files for GIS tools from the command line.

Register it in :mod:`gis_grid.cli` with
``app.add_typer(exchange_cli.app, name="exchange")`` (``from gis_grid.exchange import cli as
exchange_cli``).

Examples
--------
.. code-block:: console

    $ gis-grid exchange export grids out/grids.gpkg --town 511703109
    $ gis-grid exchange import hazards hazards_gbk.zip --dry-run
    $ gis-grid exchange import grids grids.gpkg --actor centre:wang --json
"""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import Annotated, NoReturn

import sqlalchemy as sa
import typer
from rich.console import Console
from rich.markup import escape

from gis_grid.config import get_settings
from gis_grid.db.engine import make_engine
from gis_grid.errors import GridError
from gis_grid.exchange._export import EXPORT_LAYERS
from gis_grid.exchange._import import IMPORT_LAYERS, import_layer
from gis_grid.export import export_layer

__all__ = ["app"]

app = typer.Typer(
    help="Import and export shapefile (zip), GeoPackage, GeoJSON and KML.",
    no_args_is_help=True,
)
console = Console()
err_console = Console(stderr=True)


def _fail(exc: GridError) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
    raise typer.Exit(code=2)


def _operator_context(conn: sa.Connection, actor: str | None) -> None:
    """Act as an administrator for this transaction (row-level security, migration 0005).

    Whoever runs the command line holds the database's credentials already; the setting
    ends with the transaction (``set_config(..., true)``).
    """
    conn.execute(
        sa.text(
            "SELECT set_config('gis_grid.role', 'admin', true), "
            "set_config('gis_grid.user', :user, true), set_config('gis_grid.grids', '', true)"
        ),
        {"user": f"cli:{actor or getpass.getuser()}"},
    )


@app.command("import")
def import_command(
    layer: Annotated[str, typer.Argument(help=", ".join(IMPORT_LAYERS))],
    path: Annotated[
        Path, typer.Argument(help="A .zip (shapefile), .shp, .gpkg, .geojson/.json or .kml")
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Report what would change; store nothing")
    ] = False,
    actor: Annotated[
        str | None, typer.Option(help="Who imports (recorded with new grid versions)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
) -> None:
    """Import LAYER from PATH: add and update by code (grids: a new version of their villages)."""
    engine = make_engine(get_settings().database_url)
    try:
        with engine.begin() as conn:
            _operator_context(conn, actor)
            report = import_layer(conn, layer, path, dry_run=dry_run, name=str(path), actor=actor)
    except GridError as exc:
        _fail(exc)
    finally:
        engine.dispose()
    if as_json:
        typer.echo(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
        return
    verb = "would change" if dry_run else "changed"
    counts = ", ".join(f"{k} {v}" for k, v in report.counts.items())
    console.print(
        f"{report.layer} from {escape(report.file)}: {report.features} features; {counts}"
    )
    for code, fields in list(report.changed.items())[:20]:
        console.print(f"  {verb} {code}: {', '.join(fields)}")
    for code, why in list(report.skipped.items())[:20]:
        console.print(f"  skipped {code}: {escape(why)}")
    if report.grid_versions:
        console.print(f"  grid versions: {report.grid_versions}")
    if dry_run:
        console.print("dry run: nothing was stored")


@app.command("export")
def export_command(
    layer: Annotated[str, typer.Argument(help=", ".join(EXPORT_LAYERS))],
    path: Annotated[Path, typer.Argument(help="Output: .gpkg .zip (shapefile) .geojson .kml")],
    town: Annotated[str | None, typer.Option(help="Only this town (9-digit code)")] = None,
) -> None:
    """Export LAYER to PATH (shapefiles UTF-8 with a .cpg; GeoPackage opens in QGIS)."""
    if layer not in EXPORT_LAYERS:
        err_console.print(f"[bold red]error:[/] unknown layer {layer!r}; use {EXPORT_LAYERS}")
        raise typer.Exit(code=2)
    engine = make_engine(get_settings().database_url)
    try:
        with engine.begin() as conn:
            _operator_context(conn, None)
            written, count = export_layer(conn, layer, path, town=town)
    except GridError as exc:
        _fail(exc)
    finally:
        engine.dispose()
    console.print(f"wrote {count} {layer} to {written}")
