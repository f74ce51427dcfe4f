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
    $ gis-grid balance --town 511703109 --band 150-300 --by households
    $ gis-grid ab-posts --absent M511703109001001 --json
    $ gis-grid draw --town 511703109 --target 200 --dry-run --report plan.gpkg
"""

from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Callable, Sequence
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, ParamSpec, TypeVar

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
from gis_grid.errors import GridError, NotFoundError
from gis_grid.exchange.cli import app as exchange_app
from gis_grid.scale.cli import app as scale_app
from gis_grid.security.cli import users_app

if TYPE_CHECKING:
    import pandas as pd

    from gis_grid.report import TownReport

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
app.add_typer(users_app, name="users")
app.add_typer(exchange_app, name="exchange")
app.add_typer(scale_app, name="scale")

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


# --- Town reports: assignment, balance, adjacency, AB posts (gis_grid.town) -----------------

#: Rows printed of a list of problems (``--json`` gives them all); per-grid tables are whole.
MAX_ROWS = 30

TownOption = Annotated[
    str | None, typer.Option("--town", help="Town code, 9 digits [default: every town]")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables")]


class LoadBy(StrEnum):
    """The load a band applies to."""

    HOUSEHOLDS = "households"
    PEOPLE = "people"


class Barriers(StrEnum):
    """Natural lines that count as adjacency barriers (:data:`gis_grid.town.BARRIER_SETS`)."""

    RIVERS = "rivers"
    RIVERS_STREAMS = "rivers+streams"
    NONE = "none"


def _town_reports(
    town: str | None, *, absent: Sequence[str] = (), **options: Any
) -> list[TownReport]:
    """Read the town (or every town) in one snapshot and build its report."""
    from gis_grid.db.read import read_town, read_towns
    from gis_grid.town import absent_by_town, town_report

    def work(engine: sa.Engine) -> list[TownReport]:
        postgis_version(engine)  # a clear error if unreachable
        snapshot = engine.connect().execution_options(isolation_level="REPEATABLE READ")
        with snapshot as conn, conn.begin():
            codes = [town] if town else read_towns(conn)["code"].tolist()
            if not codes:
                msg = "no towns in the database: run 'gis-grid load' first"
                raise NotFoundError(msg)
            towns = [read_town(conn, code) for code in codes]
        away = absent_by_town(towns, absent) if absent else {}
        return [town_report(d, absent=away.get(d.code, ()), **options) for d in towns]

    return _with_engine(work)


def _cell(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool):
        return "✓" if value else ""
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else str(round(value, 4))
    return str(value)


def _table(
    frame: pd.DataFrame,
    title: str,
    columns: Sequence[str] | None = None,
    *,
    limit: int | None = None,
) -> Table:
    """Build a rich table of ``frame`` (its first ``limit`` rows) with bilingual headers."""
    from gis_grid.report import LABELS

    columns = list(columns or frame.columns)
    shown = frame if limit is None else frame.head(limit)
    more = f" (first {limit} of {len(frame)}; --json for all)" if len(shown) < len(frame) else ""
    table = Table(title=title + more, title_justify="left", header_style="bold")
    for column in columns:
        numeric = frame[column].dtype.kind in "iuf"
        table.add_column(LABELS.get(column, column), justify="right" if numeric else "left")
    for row in shown[columns].itertuples(index=False):
        table.add_row(*(_cell(value.item() if hasattr(value, "item") else value) for value in row))
    return table


def _report_console() -> Console:
    # Piped or captured output gets wide lines rather than wrapped 15-digit codes.
    wide = not console.is_terminal and "COLUMNS" not in os.environ
    return Console(width=200 if wide else None)


def _show(
    reports: list[TownReport],
    parts: tuple[str, ...],
    *,
    as_json: bool,
    render: Callable[[Console, TownReport], None],
) -> None:
    """Print the JSON of ``parts`` of every report, or ``render`` each on a report console."""
    if as_json:
        towns = [report.to_dict(parts) for report in reports]
        typer.echo(json.dumps({"towns": towns}, ensure_ascii=False, indent=2))
        return
    out = _report_console()
    for report in reports:
        render(out, report)


def _heading(out: Console, report: TownReport, line: str) -> None:
    out.print(f"\n[bold]━━ {report.code} {escape(report.name)} ━━[/]")
    out.print(line)


@app.command("assign")
@_friendly
def assign(town: TownOption = None, as_json: JsonOption = False) -> None:
    """Summarise assignment: points per grid, stored grid codes checked against the map."""
    reports = _town_reports(town, parts=("assignment",))

    def render(out: Console, report: TownReport) -> None:
        tables, summary = report.tables("assignment"), report.summary("assignment")
        verdict = (
            f"[green]all {summary['points']} points lie in their stored grid[/]"
            if summary["ok"]
            else f"[red]{summary['mismatched']} mismatched, {summary['unassigned']} outside "
            "every grid[/]"
        )
        _heading(out, report, verdict)
        out.print(_table(tables["layers"], "点位检查 points checked"))
        out.print(_table(tables["grids"], "各网格点数 points per grid (as located)"))
        for name in ("mismatches", "unassigned"):
            if len(tables[name]):
                out.print(_table(tables[name], name, limit=MAX_ROWS))

    _show(reports, ("assignment",), as_json=as_json, render=render)


@app.command("balance")
@_friendly
def balance(
    town: TownOption = None,
    band: Annotated[
        str | None, typer.Option(help="Load per member LOW-HIGH, e.g. 150-300 (flags outliers)")
    ] = None,
    by: Annotated[LoadBy, typer.Option(help="The load the band applies to")] = LoadBy.HOUSEHOLDS,
    home_limit: Annotated[
        float | None, typer.Option(min=0, help="Flag members living farther (m) from their grid")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Report load balance: per grid and member, spread, band flags, 一格一员, home distances."""
    from gis_grid.town import BandError, parse_band

    try:
        limits = None if band is None else parse_band(band)
    except BandError as exc:
        _fail(f"--band: {exc}")
    reports = _town_reports(
        town, band=limits, by=by.value, home_limit_m=home_limit, parts=("balance",)
    )

    def render(out: Console, report: TownReport) -> None:
        tables, s = report.tables("balance"), report.summary("balance")
        band_text = "no band" if s["band"] is None else "band {:g}-{:g}".format(*s["band"])
        _heading(
            out,
            report,
            f"{s['grids']} grids, {s['members']} members, {s['households']} households, "
            f"{s['people']} people; by {s['by']}, {band_text}: {s['outside_band']} outside",
        )
        out.print(_table(tables["grids"], "网格负荷 load per grid"))
        out.print(_table(tables["spread"], "离散程度 spread across grids"))
        if len(tables["issues"]):
            out.print(_table(tables["issues"], "问题 issues", limit=MAX_ROWS))
        else:
            within = "" if s["band"] is None else ", all within the band"
            out.print(f"[green]no issue: one member per grid{within}[/]")

    _show(reports, ("balance",), as_json=as_json, render=render)


@app.command("adjacency")
@_friendly
def adjacency(
    town: TownOption = None,
    barriers: Annotated[
        Barriers, typer.Option(help="Natural lines that count as barriers")
    ] = Barriers.RIVERS,
    as_json: JsonOption = False,
) -> None:
    """List adjacent grids: the border they share, and the part of it along a barrier."""
    from gis_grid.town import BARRIER_SETS

    reports = _town_reports(town, barriers=BARRIER_SETS[barriers.value], parts=("adjacency",))

    def render(out: Console, report: TownReport) -> None:
        s = report.summary("adjacency")
        isolated = ", ".join(s["isolated"]) or "none"
        _heading(
            out,
            report,
            f"{s['pairs']} pairs among {s['grids']} grids; barriers {barriers.value} "
            f"({s['barrier_lines']} lines): {s['barrier_pairs']} pairs; isolated: {isolated}",
        )
        pairs = report.tables("adjacency")["pairs"]
        columns = ["a", "b", "shared_m", "barrier_m", "barrier", "same_village", "exact"]
        out.print(_table(pairs, "相邻网格 adjacent grids", columns))

    _show(reports, ("adjacency",), as_json=as_json, render=render)


@app.command("ab-posts")
@_friendly
def ab_posts(
    town: TownOption = None,
    absent: Annotated[
        str | None, typer.Option(help="Absent member codes, comma-separated: who covers them")
    ] = None,
    max_extra: Annotated[
        int, typer.Option(min=1, help="Most grids a member covers besides their own")
    ] = 1,
    as_json: JsonOption = False,
) -> None:
    """Pair grids into AB posts (AB岗); with --absent, say who covers whom today."""
    codes = [code.strip() for code in (absent or "").split(",") if code.strip()]
    reports = _town_reports(town, absent=codes, max_extra=max_extra)
    parts = ("ab_posts", "absence") if codes else ("ab_posts",)

    def render(out: Console, report: TownReport) -> None:
        tables, s = report.tables("ab_posts"), report.summary("ab_posts")
        _heading(
            out,
            report,
            f"{s['groups']} groups (pairs {s['pairs']}, rings {s['rings']}); links "
            + ", ".join(f"{k} {v}" for k, v in s["links"].items())
            + f"; uncovered {s['uncovered']}",
        )
        out.print(_table(tables["groups"], "AB岗组 groups"))
        columns = ["grid", "member", "load", "backup_grid", "backup_member", "link", "shared_m"]
        out.print(_table(tables["cover"], "AB岗 who backs up each grid", columns))
        if len(tables["uncovered"]):
            out.print(_table(tables["uncovered"], "无人顶岗 uncovered"))
        if report.absence is not None:
            cover = report.tables("absence")
            out.print(_table(cover["assignments"], "今日顶岗 cover today"))
            busy = cover["load"][cover["load"]["covers"] != ""]
            out.print(_table(busy, "顶岗者负荷 load of the covering members"))

    _show(reports, parts, as_json=as_json, render=render)


# --- Drawing grids: a new grid version (gis_grid.plans, gis_grid.db.plans) ------------------

#: Bilingual headers of the quality table.
_QUALITY_LABELS = {
    "grid_code": "网格\ngrid", "vill_code": "村/社区\nvillage", "households": "户数\nhouseholds",
    "people": "人数\npeople", "load": "负荷\nload", "target": "目标\ntarget",
    "dev_pct": "偏差 %\ndev", "polsby_popper": "紧凑度\nPolsby-Popper",
    "natural_share": "沿自然线\nnatural share", "crossings": "跨越\ncrossings",
}  # fmt: skip


class GridsPerVillage(StrEnum):
    """How many grids each village gets when no target is given."""

    AUTO = "auto"
    CURRENT = "current"


def _quality_table(frame: pd.DataFrame) -> pd.DataFrame:
    drawn = frame["drawn_m"].to_numpy()
    share = (frame["natural_m"] / frame["drawn_m"].where(drawn > 0)).round(2)
    out = frame.assign(
        dev_pct=frame["dev_pct"].round(1),
        polsby_popper=frame["polsby_popper"].round(2),
        natural_share=share,
        load=frame["load"].round(1),
        target=frame["target"].round(1),
        people=frame["people"].astype(int),
    )
    return out[list(_QUALITY_LABELS)].rename(columns=_QUALITY_LABELS)


def _print_infeasible(report: pd.DataFrame, message: str) -> NoReturn:
    out = _report_console()
    out.print(_table(report, "无法满足 what cannot be met"))
    _fail(message)


def _print_applied(out: Console, applied: Any) -> None:
    s = applied.summary()
    out.print(
        f"[green]wrote a new grid version from {s['valid_from']}:[/] {s['closed']} grids "
        f"closed, {s['added']} added ({s['new_codes']} new codes, {s['dropped_codes']} codes "
        f"dropped); {s['points_changed']} points re-assigned"
    )
    reassigned = applied.reassigned.drop(columns="examined")
    out.print(_table(reassigned, "重新落格 points re-assigned"))
    if len(applied.unassigned):
        out.print(f"[red]{len(applied.unassigned)} points lie outside every current grid:[/]")
        out.print(_table(applied.unassigned, "格外点 outside every grid", limit=MAX_ROWS))
    if len(applied.orphaned_members):
        out.print(
            f"[yellow]{len(applied.orphaned_members)} members serve a grid code that no longer "
            "exists (not changed; home_grid is the grid holding their home):[/]"
        )
        out.print(_table(applied.orphaned_members, "无格网格员 members without a grid"))
    else:
        out.print("every member's grid code still exists")


@app.command("draw")
@_friendly
def draw(  # typer passes the options by keyword
    *,
    town: Annotated[str, typer.Option("--town", help="Town code, 9 digits")],
    by: Annotated[LoadBy, typer.Option(help="The load balanced")] = LoadBy.HOUSEHOLDS,
    target: Annotated[
        float | None, typer.Option(min=0, help="Load per grid; counts follow from it")
    ] = None,
    grids_per_village: Annotated[
        GridsPerVillage,
        typer.Option(
            help="Without --target: auto = the town's current grid count shared out by load; "
            "current = each village keeps its count"
        ),
    ] = GridsPerVillage.AUTO,
    tolerance: Annotated[
        float, typer.Option(min=0, max=1, help="Band half-width around the target (0.1 = ±10%)")
    ] = 0.1,
    lines: Annotated[
        str, typer.Option(help="Natural lines to follow: rivers,streams,roads,ridges or none")
    ] = "rivers,streams,roads",
    dem: Annotated[
        Path | None, typer.Option(help="DEM file: add streams and ridgelines from it")
    ] = None,
    from_files: Annotated[
        Path | None, typer.Option(help="Draw from this folder of layers, not the database")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Draw and report; write nothing")
    ] = False,
    report: Annotated[
        Path | None, typer.Option(help="Write the plan and its quality to .gpkg or .json")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the drawing")] = 0,
    note: Annotated[str | None, typer.Option(help="Why: stored with the new grids' source")] = None,
    accept_issues: Annotated[
        bool, typer.Option("--accept-issues", help="Write even if some grids miss the band")
    ] = False,
) -> None:
    """Draw a town's grids, report their quality, and write them as a new grid version."""
    from gis_grid.db.plans import apply_plan
    from gis_grid.db.read import read_town
    from gis_grid.districting import InfeasibleError
    from gis_grid.plans import draw_town, inputs_from_files, inputs_from_town, write_plan_report

    if report is not None and report.suffix.lower() not in (".gpkg", ".json"):
        _fail(f"--report {report}: write the report as .gpkg or .json")  # before any writing
    kinds = [] if lines.strip() == "none" else [k.strip() for k in lines.split(",") if k.strip()]
    out = _report_console()
    with err_console.status("reading the town") as status:
        if from_files is not None:
            inputs = inputs_from_files(from_files, town, lines=kinds, dem=dem)
        else:
            data = _with_engine(lambda engine: read_town(engine, town))
            inputs = inputs_from_town(data, lines=kinds, dem=dem)
        try:
            drawn = draw_town(
                inputs,
                by=by.value,
                target=target,
                tolerance=tolerance,
                grids_per_village=grids_per_village.value,
                seed=seed,
                step=status.update,
            )
        except InfeasibleError as exc:
            status.stop()
            _print_infeasible(exc.report, f"{exc}. Nothing was written.")
    plan, quality = drawn.plan, drawn.quality
    out.print(
        f"\n[bold]━━ {inputs.code} {escape(inputs.name)} ━━[/] drawn from {escape(inputs.source)}"
        f" by {plan.by}, ±{plan.tolerance:.0%}, in {plan.seconds:.1f} s; natural lines: "
        + (", ".join(f"{k} {n}" for k, n in inputs.lines["kind"].value_counts().items()) or "none")
    )
    out.print(_table(_quality_table(quality.grids), "方案质量 plan quality"))
    out.print(quality.line())
    if not plan.ok:
        out.print(_table(plan.issues, "未满足 not met", limit=MAX_ROWS))
    applied = None
    if dry_run:
        out.print("[yellow]dry run: nothing written[/]")
    elif not plan.ok and not accept_issues:
        _fail(
            f"{len(plan.issues)} requirement(s) not met (listed above); nothing was written. "
            "Redraw (--tolerance, --target, --seed) or write anyway with --accept-issues."
        )
    else:

        def write(engine: sa.Engine) -> Any:
            with engine.begin() as conn:
                return apply_plan(conn, plan, town_code=inputs.code, note=note)

        with err_console.status("writing the new grid version"):
            applied = _with_engine(write)
        _print_applied(out, applied)
    if report is not None:
        written = write_plan_report(
            report, drawn, applied=None if applied is None else applied.to_dict()
        )
        out.print(f"report written to {written}")


if __name__ == "__main__":
    app()
