"""``gis-grid scale``: the province-scale batch on a Dask cluster, with a progress bar.

Registered in the main command line as a sub-app (``app.add_typer(scale_app, name="scale")``
in :mod:`gis_grid.cli`). Every command takes ``--scheduler tcp://HOST:PORT`` (default: the
``GIS_GRID_DASK_SCHEDULER`` environment variable, else a LocalCluster of ``--workers``
processes on this machine).

Examples
--------
.. code-block:: console

    $ gis-grid scale batch --workers 2 --band 150-300 --draw --out out/batch
    $ gis-grid scale batch --scheduler tcp://10.0.0.5:8786 --town 511703109
    $ gis-grid scale assign households.parquet --grids grids.gpkg --keep id --out located.parquet
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from gis_grid.errors import GridError
from gis_grid.scale._cluster import SCHEDULER_ENV

if TYPE_CHECKING:
    from gis_grid.scale._towns import TownResult

__all__ = ["app"]

P = ParamSpec("P")
R = TypeVar("R")

app = typer.Typer(
    help="Province-scale batch work on a Dask cluster (--scheduler) or a local one.",
    no_args_is_help=True,
)
console = Console()
err_console = Console(stderr=True)

SchedulerOption = Annotated[
    str | None,
    typer.Option(
        "--scheduler",
        envvar=SCHEDULER_ENV,
        help="Dask scheduler address tcp://HOST:PORT [default: a local cluster]",
    ),
]
WorkersOption = Annotated[
    int, typer.Option(min=1, help="Local cluster only: worker processes (one thread each)")
]
ThreadsOption = Annotated[
    bool,
    typer.Option(
        "--threads",
        help="Local cluster only: workers as threads of this process (no start-up; small runs)",
    ),
]
TimeoutOption = Annotated[
    float, typer.Option(min=0.1, help="Seconds to wait for the scheduler before giving up")
]


class LoadBy(StrEnum):
    """The load a band applies to."""

    HOUSEHOLDS = "households"
    PEOPLE = "people"


def _fail(message: str) -> NoReturn:
    err_console.print(f"[red]error:[/] {escape(message)}")
    raise typer.Exit(code=2)


def _friendly(func: Callable[P, R]) -> Callable[P, R]:
    """Print a platform error as one red line (exit status 2), without a traceback."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except GridError as exc:
            _fail(str(exc))

    return wrapper


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
    )


def _row(code: str, report: Any, plan: Any, errors: list[str]) -> list[str]:
    cells = [code, "", "", "", "", "", "", "", "", ""]
    if report is not None:
        check, balance, ab = (report.summary(p) for p in ("assignment", "balance", "ab_posts"))
        cells[1:7] = [
            report.name,
            str(balance["grids"]),
            str(balance["households"]),
            str(check["mismatched"] + check["unassigned"]),
            str(balance["outside_band"]),
            f"{ab['groups']} / {ab['uncovered']}",
        ]
    if plan is not None:
        q = plan.quality.summary
        cells[7:9] = [str(q["n_grids"]), f"{q['max_dev_pct']:.1f}"]
    cells[9] = "; ".join(errors)
    return cells


def _write(out: Path | None, name: str, payload: dict[str, Any]) -> None:
    if out is not None:
        text = json.dumps(payload, ensure_ascii=False, indent=1, default=str)
        (out / name).write_text(text, encoding="utf-8")


@app.command("batch")
@_friendly
def batch(  # typer passes the options by keyword
    *,
    scheduler: SchedulerOption = None,
    workers: WorkersOption = 2,
    threads: ThreadsOption = False,
    timeout: TimeoutOption = 10.0,
    town: Annotated[
        str | None, typer.Option(help="Town codes, comma-separated [default: every town]")
    ] = None,
    band: Annotated[
        str | None, typer.Option(help="Load per member LOW-HIGH, e.g. 150-300 (flags outliers)")
    ] = None,
    by: Annotated[LoadBy, typer.Option(help="The load balanced")] = LoadBy.HOUSEHOLDS,
    draw: Annotated[
        bool, typer.Option("--draw/--no-draw", help="Also draw every town's grids (dry run)")
    ] = False,
    target: Annotated[
        float | None, typer.Option(min=0, help="Drawing: load per grid; counts follow from it")
    ] = None,
    tolerance: Annotated[
        float, typer.Option(min=0, max=1, help="Drawing: band half-width (0.1 = ±10%)")
    ] = 0.1,
    from_files: Annotated[
        Path | None, typer.Option(help="Drawing: read towns from this folder of layers")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Write <town>.report.json (and <town>.plan.json) into this folder"),
    ] = None,
) -> None:
    """Check assignment, balance and AB posts of every town (and draw them), on Dask.

    One task per town on the cluster; results are printed as a table (and written to --out)
    as they arrive, so memory holds only the towns in flight. Drawing writes no grids: apply
    a plan with `gis-grid draw`.
    """
    from gis_grid.config import get_settings
    from gis_grid.scale._cluster import dask_client
    from gis_grid.scale._towns import (
        _chosen,
        database_draw_sources,
        draw_towns,
        exported_snapshot,
        file_draw_sources,
        town_reports,
    )
    from gis_grid.town import BandError, parse_band

    try:
        limits = None if band is None else parse_band(band)
    except BandError as exc:
        _fail(f"--band: {exc}")
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    url = get_settings().database_url
    wanted = None if town is None else [c.strip() for c in town.split(",") if c.strip()]
    reports: dict[str, Any] = {}
    plans: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    with (
        dask_client(scheduler, workers=workers, processes=not threads, timeout=timeout) as client,
        exported_snapshot(url) as (snapshot, known),
        _progress() as bar,
    ):
        bar.console.print(
            f"Dask scheduler {client.scheduler_info().get('address', '?')}, "
            f"{len(client.nthreads())} worker(s)"
        )
        codes = _chosen(wanted, known)
        task = bar.add_task("town reports", total=len(codes))

        def keep(kind: str, store: dict[str, Any]) -> Callable[[TownResult[Any]], None]:
            def done(result: TownResult[Any]) -> None:
                bar.advance(task)
                if result.error is not None:
                    errors.setdefault(result.code, []).append(f"{kind}: {result.error}")
                    return
                value: Any = result.value
                if kind == "report":
                    _write(
                        out,
                        f"{result.code}.report.json",
                        value.to_dict(("assignment", "balance", "ab_posts")),
                    )
                    store[result.code] = _row(result.code, value, None, [])
                else:
                    _write(
                        out,
                        f"{result.code}.plan.json",
                        {
                            "summary": value.quality.summary,
                            "issues": value.plan.issues.to_dict("records"),
                            "grids": value.quality.grids.to_dict("records"),
                        },
                    )
                    store[result.code] = value

            return done

        for _ in town_reports(
            url,
            codes,
            band=limits,
            by=by.value,
            snapshot=snapshot,
            client=client,
            progress=keep("report", reports),
        ):
            pass
        if draw:
            bar.update(task, description="drawing grids", completed=0)
            sources = (
                file_draw_sources(from_files, codes)
                if from_files is not None
                else database_draw_sources(url, codes, snapshot=snapshot)
            )
            for _ in draw_towns(
                sources,
                by=by.value,
                target=target,
                tolerance=tolerance,
                client=client,
                progress=keep("draw", plans),
            ):
                pass
    _print_table(codes, reports, plans, errors)
    if errors:
        _fail(f"{len(errors)} town(s) failed (see the last column)")


def _print_table(
    codes: list[str],
    reports: dict[str, Any],
    plans: dict[str, Any],
    errors: dict[str, list[str]],
) -> None:
    table = Table(title="省级批处理 province batch", title_justify="left", header_style="bold")
    for name in (
        "town", "name", "grids", "households", "misplaced", "outside band", "AB groups / uncovered",
        "drawn grids", "drawn max dev %", "error",
    ):  # fmt: skip
        table.add_column(name)
    for code in codes:
        row = reports.get(code) or _row(code, None, None, [])
        plan = plans.get(code)
        if plan is not None:
            q = plan.quality.summary
            row[7:9] = [str(q["n_grids"]), f"{q['max_dev_pct']:.1f}"]
        row[9] = "; ".join(errors.get(code, []))
        table.add_row(*(escape(cell) for cell in row))
    Console(width=200 if not console.is_terminal else None).print(table)


@app.command("assign")
@_friendly
def assign(  # typer passes the options by keyword
    points: Annotated[Path, typer.Argument(help="Points: a (partitioned) GeoParquet dataset")],
    *,
    grids: Annotated[Path, typer.Option(help="Grids: any vector file with a CRS")],
    out: Annotated[Path, typer.Option(help="Where to write the result (Parquet dataset)")],
    grid_id: Annotated[str, typer.Option(help="The grids' code column")] = "code",
    keep: Annotated[
        str, typer.Option(help="Columns of the points to carry over, comma-separated")
    ] = "",
    shuffle: Annotated[
        bool, typer.Option("--spatial-shuffle", help="Hilbert-sort the points first")
    ] = False,
    scheduler: SchedulerOption = None,
    workers: WorkersOption = 2,
    threads: ThreadsOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Assign partitioned points to grids (same border rule as one machine), on Dask."""
    import dask
    import dask.dataframe as dd
    from distributed import progress

    from gis_grid.io import read_layer
    from gis_grid.scale._assign import assign_partitioned, spatial_partition
    from gis_grid.scale._cluster import dask_client
    from gis_grid.scale._parquet import read_geoparquet

    grid_layer = read_layer(grids)
    columns = [c.strip() for c in keep.split(",") if c.strip()]
    with dask_client(scheduler, workers=workers, processes=not threads, timeout=timeout) as client:
        frame = read_geoparquet(points)
        if shuffle:
            frame = spatial_partition(frame)
        located = assign_partitioned(frame, grid_layer, grid_id=grid_id, keep=columns)
        future = client.compute(located.to_parquet(str(out), compute=False))
        progress(future)  # Dask's own bar, one tick per task
        future.result()
        written = dd.read_parquet(str(out), columns=["grid"])
        stats = dask.compute(written.shape[0], written["grid"].isna().sum())
    console.print(
        f"\n{stats[0]} points assigned in {frame.npartitions} partitions, {stats[1]} outside "
        f"every grid; written to {out}"
    )
