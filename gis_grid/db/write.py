"""Write checked sample layers into PostGIS inside the caller's transaction.

Rows go in with ``COPY ... FROM STDIN`` (one round trip per table, geometry as hex EWKB, the
CSV built by pandas in C), not one ``INSERT`` per row. Points are then assigned to their
village and current grid by one ``UPDATE`` per table, written polygon-driven (each polygon
probes the points' GiST index through a ``LATERAL`` subquery) so that PostGIS reuses each
prepared polygon for all the points it holds.

Everything here runs on the connection the caller passes, inside the caller's transaction:
:func:`gis_grid.load.load_sample` opens it with ``engine.begin()``, so any error rolls
everything back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import psycopg
import shapely
import sqlalchemy as sa

from gis_grid.db.models import SRID
from gis_grid.errors import DuplicateCodeError, GridError

if TYPE_CHECKING:
    import geopandas as gpd
    from sqlalchemy.engine import Connection

    from gis_grid.load import Layer, LoadReport

__all__ = [
    "LOCATED_TABLES",
    "WRITE_STEPS",
    "DatabaseRefusedError",
    "assign_locations",
    "copy_frame",
    "delete_lines",
    "delete_towns",
    "upsert_frame",
    "write_sample",
]

#: Tables of points assigned spatially to a village and grid after loading.
LOCATED_TABLES = ("households", "pollution_points", "hazards", "incidents")

#: Layers written, in foreign-key order (task types before the incidents that use them).
_WRITE_ORDER = (
    "towns", "villages", "grids", "rivers", "streams", "roads", "task_types", "members",
    "households", "residents", "pollution", "hazards", "incidents",
)  # fmt: skip

#: Degrees added around the files' extent when picking the town-less lines a load replaces:
#: ~10 cm, so that float rounding cannot leave out a line that defines the extent itself.
_EXTENT_PAD = 1e-6

#: Progress steps of :func:`write_sample`, for a caller's progress bar.
WRITE_STEPS = (
    "checking towns already loaded",
    "writing districts",
    *(f"writing {name}" for name in _WRITE_ORDER),
    *(f"assigning {table} to villages and grids" for table in LOCATED_TABLES),
    "updating planner statistics",
)


class DatabaseRefusedError(GridError):
    """The database refused rows the file checks let through (a constraint fired)."""

    @classmethod
    def from_dbapi(
        cls, exc: sa.exc.DBAPIError | psycopg.Error, layers: Mapping[str, Layer]
    ) -> GridError:
        """Turn a driver error into a message naming the file, constraint and values.

        Parameters
        ----------
        exc
            The error SQLAlchemy raised, or psycopg's own (from ``COPY``, which runs on
            the driver connection).
        layers
            The sample layers, to name the file that feeds the table.

        Returns
        -------
        GridError
            A :class:`~gis_grid.errors.DuplicateCodeError` for unique violations, else a
            :class:`DatabaseRefusedError`.
        """
        orig = exc.orig if isinstance(exc, sa.exc.DBAPIError) else exc
        diag = getattr(orig, "diag", None)
        table = getattr(diag, "table_name", None)
        constraint = getattr(diag, "constraint_name", None)
        primary = getattr(diag, "message_primary", None) or str(orig).splitlines()[0]
        detail = getattr(diag, "message_detail", None)
        files = [layer.file for layer in layers.values() if layer.table == table]
        # natural_lines is fed by several files; the detail's key names the kind.
        where = " or ".join(files) if files else (f"table {table}" if table else "the database")
        msg = f"{where}: the database refused the data: {primary}"
        if constraint:
            msg += f" (constraint {constraint})"
        if detail:
            msg += f". {detail}"
        msg += ". Nothing was loaded."
        if getattr(orig, "sqlstate", None) == "23505":
            return DuplicateCodeError(msg)
        return cls(msg)


def _ewkb(geometry: gpd.GeoSeries, *, multi: bool) -> np.ndarray:
    """Hex EWKB with SRID 4490; polygons and lines promoted to multi-part when ``multi``."""
    geoms = np.asarray(geometry, dtype=object)
    if multi:
        types = shapely.get_type_id(geoms)
        for single_type, make_multi in (
            (shapely.GeometryType.POLYGON, shapely.multipolygons),
            (shapely.GeometryType.LINESTRING, shapely.multilinestrings),
        ):
            single = types == single_type
            if single.any():
                geoms = geoms.copy()
                count = int(single.sum())
                geoms[single] = make_multi(geoms[single], indices=np.arange(count))
    geoms = shapely.set_srid(geoms, SRID)
    return np.asarray(shapely.to_wkb(geoms, hex=True, include_srid=True), dtype=object)


def copy_frame(
    conn: Connection,
    table: str,
    frame: pd.DataFrame,
    columns: Sequence[str],
    *,
    geom_column: str | None = None,
    multi: bool = False,
) -> int:
    """COPY the ``columns`` of ``frame`` (and its geometry) into ``table``.

    Parameters
    ----------
    conn
        Connection inside the caller's transaction (psycopg 3 driver).
    table
        Target table (our own identifier, never user input).
    frame
        The rows; for a GeoDataFrame its active geometry goes into ``geom_column``.
    columns
        Columns to copy, named as in the table.
    geom_column
        Table column receiving the geometry, or ``None``.
    multi
        Promote polygons and lines to multi-part (for MULTIPOLYGON / MULTILINESTRING columns).

    Returns
    -------
    int
        Rows copied.
    """
    data = frame.loc[:, list(columns)].copy()
    names = list(columns)
    if geom_column is not None:
        data[geom_column] = _ewkb(frame.geometry, multi=multi)
        names.append(geom_column)
    text = data.to_csv(index=False, header=False, na_rep="\\N")
    driver: Any = conn.connection.driver_connection
    statement = f"COPY {table} ({', '.join(names)}) FROM STDIN WITH (FORMAT csv, NULL '\\N')"
    with driver.cursor() as cursor, cursor.copy(statement) as copy:
        copy.write(text)
    return len(data)


def upsert_frame(
    conn: Connection, table: str, frame: pd.DataFrame, columns: Sequence[str], *, update: bool
) -> int:
    """Insert rows keyed by the table's primary key, skipping or updating existing ones.

    Parameters
    ----------
    conn
        Connection inside the caller's transaction.
    table
        ``districts`` or ``task_types`` (tables keyed by ``code``).
    frame
        Rows with a ``code`` column and ``columns``.
    columns
        Columns to write, ``code`` first.
    update
        Update existing rows (``--replace``) instead of keeping them.

    Returns
    -------
    int
        Rows inserted or updated.
    """
    temp = f"incoming_{table}"
    conn.execute(sa.text(f"CREATE TEMP TABLE {temp} (LIKE {table} INCLUDING DEFAULTS)"))
    copy_frame(conn, temp, frame, columns)
    names = ", ".join(columns)
    others = [c for c in columns if c != "code"]
    action = (
        "DO UPDATE SET " + ", ".join(f"{c} = EXCLUDED.{c}" for c in others)
        if update and others
        else "DO NOTHING"
    )
    result = conn.execute(
        sa.text(
            f"INSERT INTO {table} ({names}) SELECT {names} FROM {temp} ON CONFLICT (code) {action}"
        )
    )
    conn.execute(sa.text(f"DROP TABLE {temp}"))
    return int(result.rowcount)


def delete_towns(conn: Connection, towns: Sequence[str]) -> None:
    """Delete the towns and everything in them (grid history too), for a replacing load.

    Only rows inside the towns go: a code in the files that another town already uses is
    refused by the unique constraints rather than taken from that town.

    Parameters
    ----------
    conn
        Connection inside the caller's transaction.
    towns
        9-digit town codes.
    """
    params = {"towns": list(towns)}
    in_towns = "left(village_code, 9) = ANY(:towns)"
    for sql in (
        "DELETE FROM natural_lines WHERE town_code = ANY(:towns)",
        *(f"DELETE FROM {t} WHERE {in_towns}" for t in LOCATED_TABLES),  # residents cascade
        "DELETE FROM members WHERE left(grid_code, 9) = ANY(:towns)",
        f"DELETE FROM grids WHERE {in_towns}",
        "DELETE FROM villages WHERE town_code = ANY(:towns)",
        "DELETE FROM towns WHERE code = ANY(:towns)",
    ):
        conn.execute(sa.text(sql), params)


def delete_lines(
    conn: Connection, towns: Sequence[str], extent: tuple[float, float, float, float]
) -> int:
    """Delete the natural lines a replacing load supersedes.

    Those are the lines of ``towns``, and the lines without a town (river pieces outside
    every town) lying wholly inside ``extent``. Give the extent of everything the load
    writes, its own lines included: a reload of the same files then always deletes the
    lines it is about to write again, and a town-less line of a neighbouring load that only
    enters the extent stays.

    Parameters
    ----------
    conn
        Connection inside the caller's transaction.
    towns
        9-digit town codes.
    extent
        ``(minx, miny, maxx, maxy)`` in degrees (EPSG:4490).

    Returns
    -------
    int
        Lines deleted.
    """
    minx, miny, maxx, maxy = extent
    pad = _EXTENT_PAD
    result = conn.execute(
        sa.text(
            "DELETE FROM natural_lines WHERE town_code = ANY(:towns) OR (town_code IS NULL "
            "AND ST_CoveredBy(geom, ST_MakeEnvelope(:minx, :miny, :maxx, :maxy, 4490)))"
        ),
        {
            "towns": list(towns),
            "minx": minx - pad,
            "miny": miny - pad,
            "maxx": maxx + pad,
            "maxy": maxy + pad,
        },
    )
    return int(result.rowcount)


def _extent(
    frames: Mapping[str, gpd.GeoDataFrame], names: Sequence[str]
) -> tuple[float, float, float, float]:
    """``(minx, miny, maxx, maxy)`` of the named layers present in ``frames``."""
    boxes = np.vstack([frames[n].total_bounds for n in names if n in frames and len(frames[n])])
    return (
        float(boxes[:, 0].min()),
        float(boxes[:, 1].min()),
        float(boxes[:, 2].max()),
        float(boxes[:, 3].max()),
    )


_ASSIGN_VILLAGE = """
WITH hit AS (
    SELECT DISTINCT ON (p.id) p.id, v.code
    FROM villages AS v
    CROSS JOIN LATERAL (
        SELECT t.id FROM {table} AS t
        WHERE t.geom && v.geom AND ST_Covers(v.geom, t.geom)
          AND left(t.village_code, 9) = ANY(:towns)
        OFFSET 0
    ) AS p
    WHERE v.town_code = ANY(:towns)
    ORDER BY p.id, v.code
)
UPDATE {table} AS t SET village_code = hit.code
FROM hit WHERE t.id = hit.id AND t.village_code IS DISTINCT FROM hit.code
"""

_ASSIGN_GRID = """
WITH hit AS (
    SELECT DISTINCT ON (p.id) p.id, g.code
    FROM grids AS g
    CROSS JOIN LATERAL (
        SELECT t.id FROM {table} AS t
        WHERE t.geom && g.geom AND ST_Covers(g.geom, t.geom)
          AND left(t.village_code, 9) = ANY(:towns)
        OFFSET 0
    ) AS p
    WHERE g.valid_to IS NULL AND left(g.village_code, 9) = ANY(:towns)
    ORDER BY p.id, g.code
)
UPDATE {table} AS t SET grid_code = hit.code FROM hit WHERE t.id = hit.id
"""


def assign_locations(conn: Connection, table: str, towns: Sequence[str]) -> tuple[int, int]:
    """Assign the points of ``table`` in ``towns`` to the village and current grid covering them.

    A point on a shared border is covered by both polygons; it goes to the lower code, so
    the result does not depend on the plan PostgreSQL picks.

    Parameters
    ----------
    conn
        Connection inside the caller's transaction.
    table
        One of :data:`LOCATED_TABLES`.
    towns
        Town codes whose points are (re)assigned.

    Returns
    -------
    tuple of int
        ``(moved, unassigned)``: points whose village changed from the file's value, and
        points in no current grid (their ``grid_code`` stays NULL).
    """
    params = {"towns": list(towns)}
    moved = conn.execute(sa.text(_ASSIGN_VILLAGE.format(table=table)), params).rowcount
    conn.execute(sa.text(_ASSIGN_GRID.format(table=table)), params)
    unassigned = conn.scalar(
        sa.text(
            f"SELECT count(*) FROM {table} "
            "WHERE left(village_code, 9) = ANY(:towns) AND grid_code IS NULL"
        ),
        params,
    )
    return int(moved), int(unassigned or 0)


def _columns(frame: pd.DataFrame, drop: Sequence[str] = ()) -> list[str]:
    geometry = getattr(frame, "_geometry_column_name", None)
    return [c for c in frame.columns if c != geometry and c not in drop]


def _write_districts(conn: Connection, towns: pd.DataFrame, *, replace: bool) -> int:
    """Upsert the districts the towns name (the name from the towns file, else the code)."""
    districts = towns.groupby("district_code", as_index=False).first()
    names = districts.get("district_name", pd.Series(pd.NA, index=districts.index))
    districts = pd.DataFrame(
        {
            "code": districts["district_code"],
            "name": names.fillna(districts["district_code"]),
            "synthetic": districts.get("synthetic", False),
            "source": districts.get("source"),
        }
    )
    return upsert_frame(
        conn, "districts", districts, ["code", "name", "synthetic", "source"], update=replace
    )


def _members_villages(conn: Connection) -> None:
    """Give members the village their grid lies in (its code starts with the village code)."""
    conn.execute(
        sa.text(
            "UPDATE members AS m SET village_code = v.code FROM villages AS v "
            "WHERE m.village_code IS NULL AND v.code = left(m.grid_code, 12)"
        )
    )


def _sealed_residents(frame: pd.DataFrame) -> pd.DataFrame:
    """Residents with ID numbers and phones encrypted, hashed and masked (never in clear)."""
    from gis_grid.security.crypto import FIELDS, default_keys, seal_many

    keys = default_keys()
    out = frame.copy()
    for column in FIELDS:
        if column not in out.columns:
            continue
        values = [v if isinstance(v, str) and v.strip() else None for v in out[column]]
        enc, hashes, masked = seal_many(values, keys, column)
        out[f"{column}_enc"], out[f"{column}_hash"], out[f"{column}_masked"] = enc, hashes, masked
        out = out.drop(columns=[column])
    return out


def write_sample(
    conn: Connection,
    frames: Mapping[str, gpd.GeoDataFrame],
    *,
    report: LoadReport,
    replace: bool = False,
    step: Callable[[str], None] | None = None,
) -> None:
    """Write checked layers (see :func:`gis_grid.load.read_sample`) and assign points.

    Parameters
    ----------
    conn
        Connection inside the caller's transaction; nothing is committed here.
    frames
        Layer name -> checked frame, with the tables' column names.
    report
        Filled with rows written, points moved and unassigned.
    replace
        Delete the files' towns (and all their contents) first, and the natural lines they
        supersede (:func:`delete_lines`); otherwise towns already in the database are an
        error.
    step
        Called with the name of each step of :data:`WRITE_STEPS`.

    Raises
    ------
    DuplicateCodeError
        Towns already loaded and ``replace`` not set.
    sqlalchemy.exc.DBAPIError
        A constraint refused rows (the caller turns it into a :class:`DatabaseRefusedError`).
    """
    from gis_grid.load import LAYERS

    def progress(name: str) -> None:
        if step is not None:
            step(name)

    towns = frames["towns"]
    town_codes = towns["code"].tolist()
    progress(WRITE_STEPS[0])
    present = conn.scalars(
        sa.text("SELECT code FROM towns WHERE code = ANY(:c) ORDER BY code"), {"c": town_codes}
    ).all()
    if present and not replace:
        msg = (
            f"towns.shp: town(s) {', '.join(present)} already loaded; load with --replace "
            "(replace=True) to replace their data. Nothing was loaded."
        )
        raise DuplicateCodeError(msg)
    if replace:
        from gis_grid.load import LINE_LAYERS

        delete_lines(conn, town_codes, _extent(frames, ("towns", *LINE_LAYERS)))
    if present:
        delete_towns(conn, town_codes)

    progress("writing districts")
    report.rows["districts"] = _write_districts(conn, towns, replace=replace)

    for name in _WRITE_ORDER:
        progress(f"writing {name}")
        if name not in frames:
            continue
        layer = LAYERS[name]
        frame = frames[name]
        if name == "towns":
            columns = _columns(frame, drop=("district_name",))
        elif name == "residents":
            ids = conn.execute(
                sa.text("SELECT code, id FROM households WHERE code = ANY(:c)"),
                {"c": frame["household_code"].unique().tolist()},
            ).all()
            lookup = pd.DataFrame(ids, columns=["household_code", "household_id"])
            frame = _sealed_residents(frame.merge(lookup, on="household_code", how="left"))
            columns = _columns(frame, drop=("household_code",))
        else:
            columns = _columns(frame)
        if name == "task_types":
            report.rows[layer.table] = upsert_frame(
                conn, layer.table, frame, columns, update=replace
            )
            continue
        geom = layer.geom_column if layer.geometry is not None else None
        multi = layer.geometry is not None and any(t.startswith("Multi") for t in layer.geometry)
        copied = copy_frame(conn, layer.table, frame, columns, geom_column=geom, multi=multi)
        # Rows per table: the natural-lines layers add up in one table.
        report.rows[layer.table] = report.rows.get(layer.table, 0) + copied

    for table in LOCATED_TABLES:
        progress(f"assigning {table} to villages and grids")
        if table in report.rows:
            moved, unassigned = assign_locations(conn, table, town_codes)
            report.moved[table] = moved
            report.unassigned[table] = unassigned

    if "members" in report.rows:
        _members_villages(conn)
    progress(WRITE_STEPS[-1])
    conn.execute(sa.text("ANALYZE " + ", ".join(sorted(report.rows))))
