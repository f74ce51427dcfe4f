"""Per-town batch work on dask.distributed: reports (balance, AB posts) and grid drawing.

A town is the unit: its reports and its drawing need only its own layers, so each town is
one task (``client.submit``) running the single-machine functions
(:func:`gis_grid.town.town_report`, :func:`gis_grid.plans.draw_town`) on a worker. Results
come back as they complete, so the caller can write each one and drop it: the client never
holds more than the towns in flight.

Towns read from PostGIS share one snapshot: the client exports its ``REPEATABLE READ``
snapshot (``pg_export_snapshot()``) and every worker's transaction adopts it (``SET
TRANSACTION SNAPSHOT``), so all towns are read as of the same instant, as
``gis-grid balance`` reads them in one transaction on one machine.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

import sqlalchemy as sa

from gis_grid.errors import GridError, NotFoundError
from gis_grid.scale._postgis import _engine

if TYPE_CHECKING:
    from distributed import Client

    from gis_grid.plans import DrawInputs, TownPlan
    from gis_grid.report import TownReport

__all__ = [
    "TownResult",
    "database_draw_sources",
    "draw_towns",
    "exported_snapshot",
    "file_draw_sources",
    "town_reports",
]

T = TypeVar("T")

_SNAPSHOT = re.compile(r"^[0-9A-Fa-f-]+$")


@dataclass(frozen=True)
class TownResult(Generic[T]):
    """The outcome of one town's task.

    Attributes
    ----------
    code
        The town's code.
    value
        The result (a report or a drawn plan), ``None`` if the town failed.
    error
        ``None``, or the platform error that stopped the town (its class and message), so
        that one bad town does not stop a province's batch.
    """

    code: str
    value: T | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the town's work succeeded."""
        return self.error is None


def _guard(work: Callable[..., T], code: str, *args: Any, **kwargs: Any) -> TownResult[T]:
    """Run one town's work, turning a platform error into a failed result (bugs still raise)."""
    try:
        return TownResult(code, work(*args, **kwargs))
    except GridError as exc:
        return TownResult(code, None, f"{type(exc).__name__}: {exc}")


def _url_text(url: str | sa.URL) -> str:
    return url.render_as_string(hide_password=False) if isinstance(url, sa.URL) else str(url)


@contextmanager
def exported_snapshot(url: str | sa.URL) -> Iterator[tuple[str, list[str]]]:
    """Hold a ``REPEATABLE READ`` transaction open and export its snapshot for the workers.

    Parameters
    ----------
    url
        The database.

    Yields
    ------
    tuple of (str, list of str)
        The snapshot id (for ``SET TRANSACTION SNAPSHOT``) and the codes of every town in
        it, valid until the ``with`` block ends.
    """
    from gis_grid.db.read import read_towns

    engine = sa.create_engine(_url_text(url))
    try:
        conn = engine.connect().execution_options(isolation_level="REPEATABLE READ")
        with conn, conn.begin():
            snapshot = str(conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar())
            yield snapshot, read_towns(conn)["code"].astype(str).tolist()
    finally:
        engine.dispose()


@contextmanager
def _snapshot_connection(url: str, snapshot: str | None) -> Iterator[sa.Connection]:
    if snapshot is not None and not _SNAPSHOT.match(snapshot):
        msg = f"{snapshot!r} is not a PostgreSQL snapshot id"
        raise ValueError(msg)
    conn = _engine(url).connect().execution_options(isolation_level="REPEATABLE READ")
    with conn, conn.begin():
        if snapshot is not None:
            # Must be the transaction's first statement; the id was checked above.
            conn.exec_driver_sql(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
        yield conn


def _report_task(url: str, snapshot: str | None, code: str, options: dict[str, Any]) -> Any:
    from gis_grid.db.read import read_town
    from gis_grid.town import town_report

    with _snapshot_connection(url, snapshot) as conn:
        data = read_town(conn, code)
    return town_report(data, **options)


def _inputs_from_database(
    url: str, snapshot: str | None, code: str, lines: Sequence[str]
) -> DrawInputs:
    from gis_grid.db.read import read_town
    from gis_grid.plans import inputs_from_town

    with _snapshot_connection(url, snapshot) as conn:
        data = read_town(conn, code)
    return inputs_from_town(data, lines=lines)


def _draw_task(source: Any, options: dict[str, Any]) -> Any:
    from gis_grid.plans import draw_town

    inputs = source() if callable(source) else source
    return draw_town(inputs, **options)


def _default_client(client: Client | None) -> Client:
    if client is not None:
        return client
    from distributed import default_client

    try:
        return default_client()
    except ValueError as exc:
        from gis_grid.scale._cluster import SchedulerError

        msg = "no Dask client: run inside `with dask_client(...)` (gis_grid.scale) or pass client="
        raise SchedulerError(msg) from exc


def _run(
    client: Client | None,
    tasks: Mapping[str, tuple[Callable[..., Any], tuple[Any, ...]]],
    *,
    name: str,
    progress: Callable[[TownResult[Any]], None] | None,
) -> Iterator[TownResult[Any]]:
    """Submit one task per town and yield the results as they complete."""
    from distributed import as_completed

    client = _default_client(client)
    batch = uuid.uuid4().hex[:8]
    futures = [
        client.submit(_guard, work, code, *args, key=f"{name}-{code}-{batch}", pure=False)
        for code, (work, args) in tasks.items()
    ]
    for future in as_completed(futures):
        result: TownResult[Any] = future.result()  # a bug (not a GridError) raises here
        future.release()
        if progress is not None:
            progress(result)
        yield result


def town_reports(
    url: str | sa.URL,
    codes: Sequence[str] | None = None,
    *,
    parts: Collection[str] = ("assignment", "balance", "ab_posts"),
    band: tuple[float, float] | None = None,
    by: Literal["households", "people"] = "households",
    barriers: Sequence[str] = ("river",),
    home_limit_m: float | None = None,
    snapshot: str | None = None,
    client: Client | None = None,
    progress: Callable[[TownResult[Any]], None] | None = None,
) -> Iterator[TownResult[TownReport]]:
    """Report every town (assignment check, balance, AB posts), one Dask task per town.

    Each task reads its town from the database in the client's snapshot and runs
    :func:`gis_grid.town.town_report`: the reports equal those made on one machine.

    Parameters
    ----------
    url
        Database URL the workers can reach.
    codes
        Town codes (default: every town).
    parts, band, by, barriers, home_limit_m
        As for :func:`gis_grid.town.town_report`.
    snapshot
        A snapshot id from :func:`exported_snapshot` (held open by the caller) to read the
        towns in; ``None``: one is exported for the batch.
    client
        The Dask client (default: the current one, see
        :func:`~gis_grid.scale.dask_client`).
    progress
        Called with each town's result as it completes.

    Yields
    ------
    TownResult
        One per town, in completion order; ``value`` is the
        :class:`~gis_grid.report.TownReport`.

    Raises
    ------
    NotFoundError
        A code that is not a town of the database (checked on the first ``next()``,
        before any task is sent).
    SchedulerError
        No client.

    Examples
    --------
    >>> with dask_client(workers=2):  # doctest: +SKIP
    ...     for result in town_reports(url, band=(150, 300)):
    ...         print(result.code, result.value.summary("balance")["outside_band"])
    """
    options = {
        "parts": tuple(parts),
        "band": band,
        "by": by,
        "barriers": tuple(barriers),
        "home_limit_m": home_limit_m,
    }
    text = _url_text(url)
    if snapshot is None:
        with exported_snapshot(text) as (exported, known):
            chosen = _chosen(codes, known)
            tasks = {code: (_report_task, (text, exported, code, options)) for code in chosen}
            yield from _run(client, tasks, name="town-report", progress=progress)
        return
    from gis_grid.db.read import read_towns

    with _snapshot_connection(text, snapshot) as conn:
        known = read_towns(conn)["code"].astype(str).tolist()
    chosen = _chosen(codes, known)
    tasks = {code: (_report_task, (text, snapshot, code, options)) for code in chosen}
    yield from _run(client, tasks, name="town-report", progress=progress)


def _chosen(codes: Sequence[str] | None, known: list[str]) -> list[str]:
    if codes is None:
        if not known:
            msg = "no towns in the database: run 'gis-grid load' first"
            raise NotFoundError(msg)
        return known
    chosen = list(dict.fromkeys(str(code) for code in codes))
    unknown = [code for code in chosen if code not in known]
    if unknown:
        msg = f"no town(s) {unknown} in the database; the towns are {', '.join(known)}"
        raise NotFoundError(msg, problems=[{"field": "town", "value": c} for c in unknown])
    return chosen


def file_draw_sources(
    directory: str | Path,
    codes: Sequence[str],
    *,
    lines: Sequence[str] = ("rivers", "streams", "roads"),
) -> dict[str, Callable[[], DrawInputs]]:
    """Draw sources reading each town from a folder of layers, on the worker.

    Parameters
    ----------
    directory
        A folder of sample layers the workers can read (as ``gis-grid draw --from-files``).
    codes
        The towns.
    lines
        As for :func:`gis_grid.plans.inputs_from_files`.

    Returns
    -------
    dict
        Town code -> a function returning its :class:`~gis_grid.plans.DrawInputs`.
    """
    from gis_grid.plans import inputs_from_files

    return {
        str(code): partial(inputs_from_files, Path(directory), str(code), lines=tuple(lines))
        for code in codes
    }


def database_draw_sources(
    url: str | sa.URL,
    codes: Sequence[str],
    *,
    snapshot: str | None = None,
    lines: Sequence[str] = ("rivers", "streams", "roads"),
) -> dict[str, Callable[[], DrawInputs]]:
    """Draw sources reading each town from the database, on the worker.

    Parameters
    ----------
    url
        Database URL the workers can reach.
    codes
        The towns.
    snapshot
        A snapshot from :func:`exported_snapshot` to read every town in (``None``: each
        town its own transaction).
    lines
        As for :func:`gis_grid.plans.inputs_from_town`.

    Returns
    -------
    dict
        Town code -> a function returning its :class:`~gis_grid.plans.DrawInputs`.
    """
    text = _url_text(url)
    return {
        str(code): partial(_inputs_from_database, text, snapshot, str(code), tuple(lines))
        for code in codes
    }


def draw_towns(
    sources: Mapping[str, DrawInputs | Callable[[], DrawInputs]],
    *,
    by: Literal["households", "people"] = "households",
    target: float | None = None,
    tolerance: float = 0.1,
    grids_per_village: Literal["auto", "current"] = "auto",
    seed: int = 0,
    on_infeasible: Literal["raise", "report"] = "report",
    client: Client | None = None,
    progress: Callable[[TownResult[Any]], None] | None = None,
) -> Iterator[TownResult[TownPlan]]:
    """Draw the grids of many towns in parallel, one Dask task per town.

    Each task runs :func:`gis_grid.plans.draw_town` with the same options and seed as on
    one machine, so each town's plan is the same. Nothing is written to the database: write
    the plans you accept with :func:`gis_grid.db.plans.apply_plan`.

    Parameters
    ----------
    sources
        Town code -> its :class:`~gis_grid.plans.DrawInputs`, or a function making them on
        the worker (:func:`file_draw_sources`, :func:`database_draw_sources`): better for
        many towns, as only the function travels.
    by, target, tolerance, grids_per_village, seed, on_infeasible
        As for :func:`gis_grid.plans.draw_town`; ``"report"`` by default, so a town that
        cannot meet the band is drawn anyway with its issues listed. With ``"raise"`` it
        comes back as a failed :class:`TownResult`.
    client
        The Dask client (default: the current one).
    progress
        Called with each town's result as it completes.

    Yields
    ------
    TownResult
        One per town, in completion order; ``value`` is the
        :class:`~gis_grid.plans.TownPlan`.

    Examples
    --------
    >>> sources = file_draw_sources("data/shapefiles", ["511703109", "511703129"])
    ... # doctest: +SKIP
    >>> with dask_client(workers=2):  # doctest: +SKIP
    ...     plans = {r.code: r.value for r in draw_towns(sources)}
    """
    options = {
        "by": by,
        "target": target,
        "tolerance": tolerance,
        "grids_per_village": grids_per_village,
        "seed": seed,
        "on_infeasible": on_infeasible,
    }
    tasks = {code: (_draw_task, (source, options)) for code, source in sources.items()}
    yield from _run(client, tasks, name="draw-town", progress=progress)
