"""The ``gis-grid`` command line: database checks and migrations, loading, exporting, counts.

``app`` holds the commands that need no web stack; :mod:`api.cli` imports it and adds
``serve``, so the core library never imports uvicorn or FastAPI. Errors the platform raises on
bad input or state (:class:`~gis_grid.errors.GridError`) print one red line and exit with
status 2, without a traceback.

Examples
--------
.. code-block:: console

    $ gis-grid db check
    $ gis-grid load data/shapefiles --replace
    $ gis-grid export grids out/grids.gpkg --town 511703109
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, NoReturn, ParamSpec, TypeVar

import sqlalchemy as sa
import typer
from alembic.util.exc import CommandError
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from gis_grid.config import get_settings
from gis_grid.db import migrate
from gis_grid.db.engine import DatabaseError, make_engine, postgis_version
from gis_grid.errors import GridError

__all__ = ["app"]

P = ParamSpec("P")
R = TypeVar("R")

app = typer.Typer(
    name="gis-grid",
    help="Village-level grid management (网格化管理) on PostGIS.",
    no_args_is_help=True,
    add_completion=False,
)
db_app = typer.Typer(help="Check and migrate the database.", no_args_is_help=True)
app.add_typer(db_app, name="db")

console = Console()
err_console = Console(stderr=True)

#: Tables counted by ``gis-grid info``, in display order.
TABLES = (
    "districts", "towns", "villages", "grids", "members", "households", "residents",
    "pollution_points", "hazards", "task_types", "incidents", "natural_lines",
)  # fmt: skip


@app.callback()
def _main() -> None:
    """Village-level grid management (网格化管理) on PostGIS."""


def _fail(message: str) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    raise typer.Exit(code=2)


def _friendly(func: Callable[P, R]) -> Callable[P, R]:
    """Turn the platform's errors into a red message and exit status 2."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except GridError as exc:
            _fail(str(exc))
        except CommandError as exc:  # alembic: unknown revision and the like
            _fail(f"migration: {exc}")
        except sa.exc.OperationalError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            _fail(f"database unreachable: {reason}. Is GIS_GRID_DATABASE_URL right?")

    return wrapper


def _url() -> str:
    return get_settings().database_url


def _with_engine(work: Callable[[sa.Engine], R]) -> R:
    engine = make_engine(_url())
    try:
        return work(engine)
    finally:
        engine.dispose()


@db_app.command("check")
@_friendly
def db_check() -> None:
    """Connect, report the PostgreSQL/PostGIS versions and the schema revision."""

    def check(engine: sa.Engine) -> tuple[str, str, str | None]:
        version = postgis_version(engine)
        with engine.connect() as conn:
            server = str(conn.scalar(sa.text("SHOW server_version")))
        return server, version, migrate.current_revision(engine.url)

    server, version, revision = _with_engine(check)
    head = migrate.head()
    state = (
        "up to date"
        if revision == head
        else f"at {revision or 'no revision'}, head is {head}: run 'gis-grid db upgrade'"
    )
    console.print(f"PostgreSQL {server}, PostGIS {version.split()[0]}; schema {state}")


@db_app.command("upgrade")
@_friendly
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision")] = "head",
) -> None:
    """Migrate the database up to REVISION (the newest by default)."""
    migrate.upgrade(_url(), revision)
    console.print(f"schema at revision {migrate.current_revision(_url())}")


@db_app.command("downgrade")
@_friendly
def db_downgrade(
    revision: Annotated[str, typer.Argument(help="Target revision ('base' drops everything)")],
) -> None:
    """Migrate the database down to REVISION ('base' removes the platform's tables)."""
    migrate.downgrade(_url(), revision)
    console.print(f"schema at revision {migrate.current_revision(_url()) or 'base'}")


@app.command("load")
@_friendly
def load(
    directory: Annotated[
        Path | None,
        typer.Argument(help="Folder of the sample layers [default: GIS_GRID_SAMPLE_DATA_DIR]"),
    ] = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Replace the data of the towns in the files")
    ] = False,
) -> None:
    """Migrate the database, then check and load the sample layers in one transaction."""
    from gis_grid.load import load_sample

    folder = directory if directory is not None else get_settings().sample_data_dir
    migrate.upgrade(_url())
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description:<45}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task("starting", total=None)

        def progress(step: str, done: int, total: int) -> None:
            bar.update(task, description=step, completed=done, total=total)

        report = _with_engine(
            lambda engine: load_sample(folder, engine, replace=replace, progress=progress)
        )
    table = Table(title=f"loaded {folder} in {report.seconds:.2f} s")
    for column in ("table", "rows", "outside every grid", "village corrected"):
        table.add_column(column, justify="left" if column == "table" else "right")
    for name, rows in report.rows.items():
        unassigned = report.unassigned.get(name)
        moved = report.moved.get(name)
        table.add_row(
            name,
            str(rows),
            "" if unassigned is None else str(unassigned),
            "" if moved is None else str(moved),
        )
    console.print(table)
    if report.missing_layers:
        console.print(f"[yellow]absent optional layers:[/] {', '.join(report.missing_layers)}")


@app.command("export")
@_friendly
def export(
    layer: Annotated[
        str,
        typer.Argument(help="towns, villages, grids, members, households, ..., rivers, roads"),
    ],
    path: Annotated[Path, typer.Argument(help="Output file: .gpkg .geojson .shp .zip .kml")],
    town: Annotated[str | None, typer.Option(help="Export only this town (9-digit code)")] = None,
) -> None:
    """Export LAYER to PATH (personal data such as ID numbers and phones is never exported)."""
    from gis_grid.export import export_layer

    written, count = _with_engine(lambda engine: export_layer(engine, layer, path, town=town))
    console.print(f"wrote {count} {layer} to {written}")


@app.command("info")
@_friendly
def info() -> None:
    """Show the number of rows in each table (current grids apart)."""

    def counts(engine: sa.Engine) -> list[tuple[str, int]]:
        postgis_version(engine)  # a clear error if unreachable
        with engine.connect() as conn:
            present = set(sa.inspect(conn).get_table_names())
            missing = [t for t in TABLES if t not in present]
            if missing:
                msg = f"tables {', '.join(missing)} missing: run 'gis-grid db upgrade'"
                raise DatabaseError(msg)
            rows = [
                (t, int(conn.scalar(sa.text(f"SELECT count(*) FROM {t}")) or 0)) for t in TABLES
            ]
            current = conn.scalar(sa.text("SELECT count(*) FROM grids WHERE valid_to IS NULL"))
        rows.insert(4, ("grids (current)", int(current or 0)))
        return rows

    table = Table(title="rows per table")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, count in _with_engine(counts):
        table.add_row(name, str(count))
    console.print(table)


if __name__ == "__main__":
    app()
