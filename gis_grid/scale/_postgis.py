"""PostGIS in and out in chunks, on one machine or partitioned on Dask.

Nothing here holds a whole table in memory: PostGIS is read by keyset pagination (``WHERE
key > last ORDER BY key LIMIT n``: every page is an index range scan, unlike ``OFFSET``) and
written with ``COPY``, one chunk or partition at a time.

On a cluster, each partition's task opens its own connection from the database URL (an
engine cannot travel between processes), one small engine per worker process; the
single-machine functions :func:`iter_postgis` and :func:`copy_to_postgis` take the caller's
connection, as the rest of the library does.
"""

from __future__ import annotations

import itertools
import re
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import sqlalchemy as sa

from gis_grid.crs import require_crs
from gis_grid.errors import ConflictError, CRSError, DataFileError, NotFoundError

if TYPE_CHECKING:
    import dask_geopandas
    from pyproj import CRS

__all__ = [
    "copy_to_postgis",
    "iter_postgis",
    "read_postgis_partitioned",
    "write_postgis_partitioned",
]

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_engines: dict[str, sa.Engine] = {}
_engines_lock = threading.Lock()


def _identifier(name: str, what: str) -> str:
    if not _NAME.match(name):
        msg = f"{what} {name!r} is not a plain SQL name (letters, digits, underscores)"
        raise DataFileError(msg, problems=[{"field": what, "value": name}])
    return f'"{name}"'


def _table_srid(conn: sa.Connection, schema: str, table: str, geometry: str) -> int:
    for name, what in ((schema, "schema"), (table, "table"), (geometry, "geometry")):
        _identifier(name, what)  # refuse odd names before any query
    srid = conn.execute(
        sa.text(
            "SELECT srid FROM geometry_columns WHERE f_table_schema = :s "
            "AND f_table_name = :t AND f_geometry_column = :g"
        ),
        {"s": schema, "t": table, "g": geometry},
    ).scalar()
    if srid is None:
        msg = f"no geometry column {schema}.{table}.{geometry} in the database"
        raise NotFoundError(msg)
    if int(srid) == 0:
        msg = f"{schema}.{table}.{geometry} has no SRID: declare one (ST_SetSRID) first"
        raise CRSError(msg)
    return int(srid)


def _select(
    schema: str, table: str, *, key: str, geometry: str, columns: Sequence[str], where: str
) -> str:
    cols = ", ".join(_identifier(c, "column") for c in dict.fromkeys([key, *columns]))
    return (
        f"SELECT {cols}, ST_AsBinary({_identifier(geometry, 'geometry')}) AS geometry "
        f"FROM {_identifier(schema, 'schema')}.{_identifier(table, 'table')} "
        f"WHERE {where} ORDER BY {_identifier(key, 'key')}"
    )


def _frame(rows: Sequence[Any], names: list[str], crs: CRS) -> gpd.GeoDataFrame:
    data = pd.DataFrame.from_records(rows, columns=[*names, "geometry"])
    wkb = np.asarray([None if g is None else bytes(g) for g in data.pop("geometry")], dtype=object)
    return gpd.GeoDataFrame(data, geometry=shapely.from_wkb(wkb), crs=crs)


def iter_postgis(
    conn: sa.Connection,
    table: str,
    *,
    key: str = "id",
    geometry: str = "geom",
    columns: Sequence[str] = (),
    schema: str = "public",
    chunk_size: int = 100_000,
) -> Iterator[gpd.GeoDataFrame]:
    """Read a PostGIS table chunk by chunk, in ``key`` order (keyset pagination).

    Each chunk is one query ``WHERE key > last ORDER BY key LIMIT chunk_size``: an index range
    scan, so the 1000th chunk costs what the first did (``OFFSET`` would rescan everything
    before it), and no chunk but the current one is in memory.

    Parameters
    ----------
    conn
        The caller's connection (a ``REPEATABLE READ`` transaction gives all chunks one
        snapshot).
    table, schema
        The table.
    key
        A unique, indexed, orderable column (the primary key).
    geometry
        The geometry column; its SRID gives the chunks' CRS.
    columns
        Other columns to read (``key`` is always read).
    chunk_size
        Rows per chunk.

    Yields
    ------
    geopandas.GeoDataFrame
        ``key``, ``columns`` and ``geometry``, in the table's CRS.

    Raises
    ------
    NotFoundError
        No such table or geometry column.
    CRSError
        The geometry column has no SRID.

    Examples
    --------
    >>> for chunk in iter_postgis(conn, "households", columns=["people"]):  # doctest: +SKIP
    ...     total += chunk["people"].sum()
    """
    if chunk_size < 1:
        msg = f"chunk_size must be at least 1, got {chunk_size}"
        raise DataFileError(msg, problems=[{"field": "chunk_size", "value": chunk_size}])
    crs = require_crs(_table_srid(conn, schema, table, geometry), source=table)
    names = list(dict.fromkeys([key, *columns]))
    first = sa.text(
        _select(schema, table, key=key, geometry=geometry, columns=columns, where="TRUE")
        + " LIMIT :n"
    )
    after = sa.text(
        _select(
            schema,
            table,
            key=key,
            geometry=geometry,
            columns=columns,
            where=f"{_identifier(key, 'key')} > :last",
        )
        + " LIMIT :n"
    )
    rows = conn.execute(first, {"n": chunk_size}).all()
    while rows:
        yield _frame(rows, names, crs)
        if len(rows) < chunk_size:
            return
        rows = conn.execute(after, {"n": chunk_size, "last": rows[-1][0]}).all()


def _engine(url: str) -> sa.Engine:
    """One small engine per worker process and database (engines cannot be pickled)."""
    with _engines_lock:
        engine = _engines.get(url)
        if engine is None:
            engine = sa.create_engine(url, pool_size=2, max_overflow=2, pool_pre_ping=True)
            _engines[url] = engine
        return engine


def _read_range(
    bounds: tuple[int, int],
    *,
    url: str,
    table: str,
    schema: str,
    key: str,
    geometry: str,
    fields: list[str],
    srid: int,
) -> gpd.GeoDataFrame:
    """One partition: rows with ``lo <= key < hi``, streamed through a server-side cursor."""
    where = f"{_identifier(key, 'key')} >= :lo AND {_identifier(key, 'key')} < :hi"
    sql = sa.text(_select(schema, table, key=key, geometry=geometry, columns=fields, where=where))
    names = list(dict.fromkeys([key, *fields]))
    chunks: list[Any] = []
    with _engine(url).connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=50_000).execute(
            sql, {"lo": bounds[0], "hi": bounds[1]}
        )
        for part in result.partitions():
            chunks.extend(part)
    frame = _frame(chunks, names, require_crs(srid, source=table))
    return frame.set_index(key, drop=False)


def read_postgis_partitioned(
    url: str | sa.URL,
    table: str,
    *,
    key: str = "id",
    geometry: str = "geom",
    columns: Sequence[str] = (),
    schema: str = "public",
    npartitions: int | None = None,
    partition_size: int = 1_000_000,
) -> dask_geopandas.GeoDataFrame:
    """Open a PostGIS table as a partitioned GeoDataFrame, one key range per partition.

    Only the key's minimum, maximum and an estimated row count are read now; each
    partition's task reads its range ``lo <= key < hi`` on a worker, through a server-side
    cursor (rows streamed in batches, never the table at once).

    Parameters
    ----------
    url
        Database URL the workers can reach (each worker connects itself).
    table, schema, key, geometry, columns
        As for :func:`iter_postgis`; ``key`` must be an integer column (ranges are cut on
        it: even ranges of ids, so gaps in the ids give smaller partitions).
    npartitions
        Number of partitions (default: rows / ``partition_size``).
    partition_size
        Target rows per partition when ``npartitions`` is not given.

    Returns
    -------
    dask_geopandas.GeoDataFrame
        Indexed by ``key`` (also kept as a column), in the table's CRS, with known
        divisions.

    Raises
    ------
    NotFoundError
        No such table or geometry column.
    DataFileError
        ``key`` is not an integer column.

    Examples
    --------
    >>> homes = read_postgis_partitioned(url, "households", columns=["people"])
    ... # doctest: +SKIP
    """
    import dask.dataframe as dd
    import dask_geopandas

    text = url.render_as_string(hide_password=False) if isinstance(url, sa.URL) else str(url)
    engine = sa.create_engine(text)
    try:
        with engine.connect() as conn:
            srid = _table_srid(conn, schema, table, geometry)
            qualified = f"{_identifier(schema, 'schema')}.{_identifier(table, 'table')}"
            low, high = conn.execute(
                sa.text(
                    f"SELECT min({_identifier(key, 'key')}), max({_identifier(key, 'key')}) "
                    f"FROM {qualified}"
                )
            ).one()
            estimate = conn.execute(
                sa.text("SELECT reltuples::bigint FROM pg_class WHERE oid = CAST(:t AS regclass)"),
                {"t": f"{schema}.{table}"},
            ).scalar()
            sample = _frame(
                conn.execute(
                    sa.text(
                        _select(
                            schema,
                            table,
                            key=key,
                            geometry=geometry,
                            columns=columns,
                            where="TRUE",
                        )
                        + " LIMIT 1"
                    )
                ).all(),
                list(dict.fromkeys([key, *columns])),
                require_crs(srid, source=table),
            )
    finally:
        engine.dispose()
    if low is not None and not isinstance(low, int | np.integer):
        msg = f"{table}.{key} is not an integer column: partitions are cut on integer keys"
        raise DataFileError(msg, problems=[{"field": "key", "value": key}])
    low, high = (0, 0) if low is None else (int(low), int(high))
    # reltuples is -1 (or 0) before the first ANALYZE: then count the key span instead.
    rows = int(estimate) if estimate and estimate > 0 else high - low + 1
    n = npartitions or max(1, -(-rows // partition_size))
    edges = np.unique(np.linspace(low, high + 1, n + 1).round().astype(np.int64))
    if edges.size < 2:
        edges = np.array([low, high + 1])
    ranges = [(int(a), int(b)) for a, b in itertools.pairwise(edges)]
    meta = sample.set_index(key, drop=False).iloc[:0]
    # Key ranges become divisions: the parts are sorted by key, so joins on it are cheap.
    divisions = [*edges[:-1].tolist(), int(edges[-1]) - 1]
    frame = dd.from_map(
        _read_range,
        ranges,
        url=text,
        table=table,
        schema=schema,
        key=key,
        geometry=geometry,
        fields=list(columns),  # not `columns`: from_map would take it as a projection
        srid=srid,
        meta=meta,
        divisions=divisions,
        enforce_metadata=False,
        label=f"read-postgis-{table}",
    )
    if not isinstance(frame, dask_geopandas.GeoDataFrame):  # backend registration fallback
        frame = dask_geopandas.from_dask_dataframe(frame, geometry="geometry")
    return frame


def _sql_type(series: pd.Series) -> str:
    kind = series.dtype.kind
    if kind == "b":
        return "boolean"
    if kind in "iu":
        return "bigint"
    if kind == "f":
        return "double precision"
    if kind == "M":
        return "timestamptz" if getattr(series.dtype, "tz", None) else "timestamp"
    return "text"


def _create_table(
    conn: sa.Connection,
    sample: gpd.GeoDataFrame,
    table: str,
    *,
    schema: str,
    geometry: str,
    srid: int,
    if_exists: Literal["fail", "append", "replace"],
) -> None:
    qualified = f"{_identifier(schema, 'schema')}.{_identifier(table, 'table')}"
    exists = conn.execute(
        sa.text("SELECT to_regclass(:t) IS NOT NULL"), {"t": f"{schema}.{table}"}
    ).scalar()
    if exists and if_exists == "fail":
        msg = f"table {schema}.{table} already exists: pass if_exists='append' or 'replace'"
        raise ConflictError(msg)
    if exists and if_exists == "append":
        return
    if exists:
        conn.exec_driver_sql(f"DROP TABLE {qualified}")
    names = [c for c in sample.columns if c != sample.geometry.name]
    cols = [f"{_identifier(c, 'column')} {_sql_type(sample[c])}" for c in names]
    cols.append(f"{_identifier(geometry, 'geometry')} geometry(Geometry, {srid})")
    conn.exec_driver_sql(f"CREATE TABLE {qualified} ({', '.join(cols)})")


def _copy_rows(
    conn: sa.Connection,
    frame: gpd.GeoDataFrame,
    table: str,
    *,
    schema: str,
    geometry: str,
    srid: int,
) -> int:
    """COPY one frame into the table through the connection's psycopg driver connection."""
    from psycopg import sql

    names = [c for c in frame.columns if c != frame.geometry.name]
    geoms = shapely.set_srid(np.asarray(frame.geometry, dtype=object), srid)
    ewkb = shapely.to_wkb(geoms, hex=True, include_srid=True)
    columns: list[Any] = [
        frame[c].astype(object).where(frame[c].notna(), None).to_numpy() for c in names
    ]
    columns.append(ewkb)
    statement = sql.SQL("COPY {}.{} ({}) FROM STDIN").format(
        sql.Identifier(schema),
        sql.Identifier(table),
        sql.SQL(", ").join(sql.Identifier(c) for c in [*names, geometry]),
    )
    raw: Any = conn.connection.driver_connection
    with raw.cursor() as cur, cur.copy(statement) as copy:
        for row in zip(*columns, strict=True):
            copy.write_row(row)
    return len(frame)


def copy_to_postgis(
    conn: sa.Connection,
    chunks: gpd.GeoDataFrame | Iterable[gpd.GeoDataFrame],
    table: str,
    *,
    schema: str = "public",
    geometry: str = "geom",
    if_exists: Literal["fail", "append", "replace"] = "fail",
) -> int:
    """Write GeoDataFrames to a PostGIS table with ``COPY``, one chunk at a time.

    The table is created from the first chunk's columns (``bigint``, ``double precision``,
    ``boolean``, ``timestamp``, ``text``, ``geometry(Geometry, srid)``) unless it exists and
    ``if_exists="append"``. Everything is written in the caller's transaction.

    Parameters
    ----------
    conn
        The caller's connection (psycopg 3 driver), inside a transaction.
    chunks
        One frame, or any iterable of frames (e.g. :func:`iter_postgis` of another table, or
        a generator): only one is in memory at a time. All must share the first one's CRS.
    table, schema, geometry
        Where to write.
    if_exists
        ``"fail"`` (refuse an existing table), ``"append"`` or ``"replace"``.

    Returns
    -------
    int
        Rows written.

    Raises
    ------
    CRSError
        A chunk without a CRS, or with another CRS than the first.
    ConflictError
        The table exists and ``if_exists="fail"``.
    """
    if isinstance(chunks, gpd.GeoDataFrame):
        chunks = [chunks]
    written = 0
    srid = 0
    crs: CRS | None = None
    for chunk in chunks:
        chunk_crs = require_crs(chunk.crs, source=f"chunk for {table}")
        if crs is None:
            crs = chunk_crs
            epsg = crs.to_epsg()
            if epsg is None:
                msg = f"{crs.name}: not an EPSG CRS; PostGIS needs an SRID (convert first)"
                raise CRSError(msg)
            srid = int(epsg)
            _create_table(
                conn,
                chunk,
                table,
                schema=schema,
                geometry=geometry,
                srid=srid,
                if_exists=if_exists,
            )
        elif not chunk_crs.equals(crs):
            msg = f"chunk in {chunk_crs.to_string()}, the first one in {crs.to_string()}"
            raise CRSError(msg)
        written += _copy_rows(conn, chunk, table, schema=schema, geometry=geometry, srid=srid)
    return written


def _write_part(
    part: gpd.GeoDataFrame, *, url: str, table: str, schema: str, geometry: str, srid: int
) -> pd.DataFrame:
    """COPY one partition in its own transaction; returns its row count."""
    with _engine(url).begin() as conn:
        n = _copy_rows(conn, part, table, schema=schema, geometry=geometry, srid=srid)
    return pd.DataFrame({"rows": [n]})


def write_postgis_partitioned(
    frame: dask_geopandas.GeoDataFrame,
    url: str | sa.URL,
    table: str,
    *,
    schema: str = "public",
    geometry: str = "geom",
    if_exists: Literal["fail", "append", "replace"] = "fail",
) -> int:
    """Write a partitioned GeoDataFrame to PostGIS: each worker ``COPY``s its partitions.

    The table is created first (as :func:`copy_to_postgis` does); then every partition is
    written in its own transaction by the worker holding it, in parallel. A failed
    partition leaves the others written: write to a staging table and rename it in one
    transaction when all is done if the target must change all at once.

    Parameters
    ----------
    frame
        The partitions, with a CRS that has an EPSG code.
    url
        Database URL the workers can reach.
    table, schema, geometry, if_exists
        As for :func:`copy_to_postgis`.

    Returns
    -------
    int
        Rows written.

    Raises
    ------
    CRSError
        No CRS, or one without an EPSG code.
    ConflictError
        The table exists and ``if_exists="fail"``.
    """
    crs = require_crs(frame.crs, source=f"the frame to write to {table}")
    epsg = crs.to_epsg()
    if epsg is None:
        msg = f"{crs.name}: not an EPSG CRS; PostGIS needs an SRID (convert first)"
        raise CRSError(msg)
    text = url.render_as_string(hide_password=False) if isinstance(url, sa.URL) else str(url)
    engine = sa.create_engine(text)
    try:
        with engine.begin() as conn:
            _create_table(
                conn,
                frame._meta,
                table,
                schema=schema,
                geometry=geometry,
                srid=int(epsg),
                if_exists=if_exists,
            )
    finally:
        engine.dispose()
    counts = frame.map_partitions(
        _write_part,
        url=text,
        table=table,
        schema=schema,
        geometry=geometry,
        srid=int(epsg),
        meta=pd.DataFrame({"rows": pd.Series([], dtype=np.int64)}),
        align_dataframes=False,
    )
    return int(counts["rows"].sum().compute())
