"""Read one town's layers from PostGIS into GeoDataFrames, for analysis in memory.

:func:`read_town` reads everything the town-level reports need (:mod:`gis_grid.town`): the
town, its villages, its grids (current, or as they were at an instant), the serving members,
households, pollution points, hazards, incidents and the natural lines by kind. It takes the
caller's engine or connection and never builds one (geopandas' ``read_postgis`` style); given
an engine it reads every layer in one ``REPEATABLE READ`` transaction, so the layers agree
with each other even while a loader writes.

Minimum data (PIPL; article 9 of the Zhaojia measures): members come without phone, birth date
or gender; households without street address and without residents; incidents without their
free-text title. Every frame is in CGCS2000 (EPSG:4490) with its geometry column named
``geometry`` (a member's is their home).

Examples
--------
>>> from gis_grid.db.read import read_town  # doctest: +SKIP
>>> data = read_town(engine, "511703109")  # doctest: +SKIP
>>> len(data.grids), data.grids.crs.to_epsg()  # doctest: +SKIP
(26, 4490)
"""

from __future__ import annotations

import datetime as dt
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import geopandas as gpd
import pandas as pd
import sqlalchemy as sa

from gis_grid.crs import CGCS2000
from gis_grid.db.engine import DatabaseError
from gis_grid.db.models import NaturalLineKind
from gis_grid.errors import NotFoundError

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

__all__ = ["POINT_LAYERS", "TownData", "read_town", "read_towns"]

#: The point layers assigned to grids, in report order (attribute names of :class:`TownData`).
POINT_LAYERS = ("households", "pollution", "hazards", "incidents")

#: Tables :func:`read_town` needs (``natural_lines`` arrives with migration 0002).
_TABLES = (
    "towns", "villages", "grids", "members", "households", "pollution_points", "hazards",
    "incidents", "natural_lines",
)  # fmt: skip

#: Points of the town: by their village, or inside the town when no village was recorded.
_IN_TOWN = (
    "(left(t.village_code, 9) = :town OR (t.village_code IS NULL "
    "AND ST_Covers((SELECT tw.geom FROM towns AS tw WHERE tw.code = :town), t.geom)))"
)

#: Layer -> (query, index column or None). Every query binds ``:town``; grids bind ``:as_of``.
_QUERIES: dict[str, tuple[str, str | None]] = {
    "town": ("SELECT code, name, district_code, geom FROM towns WHERE code = :town", None),
    "villages": (
        "SELECT code, name, kind::text AS kind, ur_code, geom FROM villages "
        "WHERE town_code = :town ORDER BY code",
        None,
    ),
    "grids": (
        "SELECT code, village_code, seq, name, version, valid_from, valid_to, geom FROM grids "
        "WHERE left(village_code, 9) = :town AND CASE WHEN CAST(:as_of AS timestamptz) IS NULL "
        "THEN valid_to IS NULL ELSE valid_from <= :as_of "
        "AND (valid_to IS NULL OR valid_to > :as_of) END ORDER BY code",
        None,
    ),
    "members": (
        # No phone, birth date or gender: a report needs who serves which grid, and where.
        "SELECT code, name, status::text AS status, grid_code, home AS geom FROM members "
        "WHERE left(grid_code, 9) = :town ORDER BY code",
        None,
    ),
    "households": (
        "SELECT t.id, t.village_code, t.grid_code, t.people, t.geom FROM households AS t "
        f"WHERE {_IN_TOWN} ORDER BY t.id",
        "id",
    ),
    "pollution": (
        "SELECT t.id, t.code, t.name, t.kind, t.village_code, t.grid_code, t.geom "
        f"FROM pollution_points AS t WHERE {_IN_TOWN} ORDER BY t.id",
        "id",
    ),
    "hazards": (
        "SELECT t.id, t.code, t.name, t.kind, t.level, t.village_code, t.grid_code, t.geom "
        f"FROM hazards AS t WHERE {_IN_TOWN} ORDER BY t.id",
        "id",
    ),
    "incidents": (
        # The title is free text that may name people: left out.
        "SELECT t.id, t.code, t.status::text AS status, t.task_type_code AS type, "
        f"t.village_code, t.grid_code, t.geom FROM incidents AS t WHERE {_IN_TOWN} "
        "ORDER BY t.id",
        "id",
    ),
    "lines": (
        # A town's lines: digitised for it, or crossing it (rivers run on across towns).
        "SELECT t.id, t.kind::text AS kind, t.code, t.name, t.rank, t.geom "
        "FROM natural_lines AS t WHERE t.town_code = :town OR ST_Intersects(t.geom, "
        "(SELECT tw.geom FROM towns AS tw WHERE tw.code = :town)) ORDER BY t.kind, t.id",
        None,
    ),
}


@dataclass(frozen=True)
class TownData:
    """One town's layers, each a GeoDataFrame in EPSG:4490 with a ``geometry`` column.

    Attributes
    ----------
    code, name
        The town's 9-digit NBS code and name.
    town
        One row: ``code``, ``name``, ``district_code``.
    villages
        ``code``, ``name``, ``kind`` (village/community), ``ur_code``.
    grids
        The grid versions valid at ``as_of`` (the current ones when ``as_of`` is ``None``):
        ``code``, ``village_code``, ``seq``, ``name``, ``version``, ``valid_from``,
        ``valid_to``; sorted by code.
    members
        Members and candidates of the town's grids (every status): ``code``, ``name``,
        ``status``, ``grid_code``; the geometry is the home (may be missing).
    households
        Indexed by ``id``: ``village_code``, ``grid_code`` (as stored), ``people``.
    pollution, hazards
        Indexed by ``id``: ``code``, ``name``, ``kind`` (hazards: ``level``),
        ``village_code``, ``grid_code``.
    incidents
        Indexed by ``id``: ``code``, ``status`` (workflow step), ``type`` (task type code),
        ``village_code``, ``grid_code``.
    lines
        Natural lines digitised for the town or crossing it, one frame per
        :class:`~gis_grid.db.models.NaturalLineKind` value (``"river"``, ``"stream"``,
        ``"ridge"``, ``"road"``), possibly empty: ``id``, ``code``, ``name``, ``rank``.
    as_of
        The instant the grids were read at, or ``None`` for the current grids. Members and
        points are not versioned: they are always today's, and their stored ``grid_code``
        refers to the current grids.
    """

    code: str
    name: str
    town: gpd.GeoDataFrame
    villages: gpd.GeoDataFrame
    grids: gpd.GeoDataFrame
    members: gpd.GeoDataFrame
    households: gpd.GeoDataFrame
    pollution: gpd.GeoDataFrame
    hazards: gpd.GeoDataFrame
    incidents: gpd.GeoDataFrame
    lines: dict[str, gpd.GeoDataFrame] = field(repr=False)
    as_of: dt.datetime | None = None

    def points(self, layer: str) -> gpd.GeoDataFrame:
        """Return the point layer named ``layer`` (one of :data:`POINT_LAYERS`)."""
        if layer not in POINT_LAYERS:
            msg = f"unknown point layer {layer!r}; use one of {', '.join(POINT_LAYERS)}"
            raise NotFoundError(msg)
        frame: gpd.GeoDataFrame = getattr(self, layer)
        return frame

    def serving_members(self) -> gpd.GeoDataFrame:
        """Return the appointed members (status ``appointed``): those who serve a grid."""
        return self.members[self.members["status"] == "appointed"]

    def barriers(self, kinds: Sequence[str]) -> gpd.GeoDataFrame | None:
        """Return the natural lines of the given kinds as one frame (``None`` if no kind).

        Parameters
        ----------
        kinds
            Kinds of line, e.g. ``("river",)`` or ``("river", "stream")``.

        Raises
        ------
        NotFoundError
            A kind that is not a :class:`~gis_grid.db.models.NaturalLineKind`.
        """
        unknown = [kind for kind in kinds if kind not in self.lines]
        if unknown:
            msg = f"unknown line kind(s) {unknown}; use {', '.join(self.lines)}"
            raise NotFoundError(msg)
        if not kinds:
            return None
        frames = [self.lines[kind] for kind in kinds]
        return gpd.GeoDataFrame(
            pd.concat(frames, ignore_index=True), geometry="geometry", crs=CGCS2000
        )

    def counts(self) -> dict[str, int]:
        """Rows per layer (lines per kind as ``lines.<kind>``), e.g. to compare with SQL."""
        names = ("villages", "grids", "members", *POINT_LAYERS)
        out = {name: len(getattr(self, name)) for name in names}
        out |= {f"lines.{kind}": len(frame) for kind, frame in self.lines.items()}
        return out


def _read(conn: sa.Connection, layer: str, params: dict[str, object]) -> gpd.GeoDataFrame:
    sql, index = _QUERIES[layer]
    frame = gpd.read_postgis(
        sa.text(sql), conn, geom_col="geom", crs=CGCS2000, params=params, index_col=index
    )
    return frame.rename_geometry("geometry")


def _check_schema(conn: sa.Connection) -> None:
    inspector = sa.inspect(conn)
    missing = [table for table in _TABLES if not inspector.has_table(table)]
    if missing:
        msg = (
            f"table(s) {', '.join(missing)} missing: the schema is not up to date. "
            "Run 'gis-grid db upgrade' (then 'gis-grid load --replace' to load the lines)."
        )
        raise DatabaseError(msg)


def _known_towns(conn: sa.Connection) -> str:
    rows = conn.execute(sa.text("SELECT code, name FROM towns ORDER BY code")).all()
    return ", ".join(f"{code} ({name})" for code, name in rows) or "none: load data first"


def _check_as_of(as_of: dt.datetime | None) -> None:
    if as_of is not None and (as_of.tzinfo is None or as_of.utcoffset() is None):
        # A naive instant would be read in the server's time zone: never guess it.
        msg = f"as_of={as_of.isoformat()} has no time zone; give an aware datetime"
        raise ValueError(msg)


def _read_town(conn: sa.Connection, town_code: str, as_of: dt.datetime | None) -> TownData:
    _check_schema(conn)
    params: dict[str, object] = {"town": town_code, "as_of": as_of}
    town = _read(conn, "town", params)
    if town.empty:
        msg = f"no town {town_code!r} in the database; the towns are {_known_towns(conn)}"
        raise NotFoundError(msg)
    frames = {name: _read(conn, name, params) for name in _QUERIES if name not in ("town", "lines")}
    lines = _read(conn, "lines", params)
    by_kind = {
        kind.value: lines[lines["kind"] == kind.value].drop(columns="kind").reset_index(drop=True)
        for kind in NaturalLineKind
    }
    return TownData(
        code=str(town["code"].iloc[0]),
        name=str(town["name"].iloc[0]),
        town=town,
        lines=by_kind,
        as_of=as_of,
        **frames,
    )


@contextmanager
def _connection(conn_or_engine: sa.Connection | sa.Engine) -> Iterator[sa.Connection]:
    if isinstance(conn_or_engine, sa.Connection):
        yield conn_or_engine  # the caller's connection and transaction, as they are
        return
    # One snapshot for every layer, so that the layers agree even during a load.
    with (
        conn_or_engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn,
        conn.begin(),
    ):
        yield conn


def read_town(
    conn_or_engine: sa.Connection | sa.Engine,
    town_code: str,
    *,
    as_of: dt.datetime | None = None,
) -> TownData:
    """Read a town's villages, grids, members, points and natural lines.

    Parameters
    ----------
    conn_or_engine
        The caller's connection (used as is, inside its transaction) or engine (one
        ``REPEATABLE READ`` transaction is opened for the read and closed after it).
    town_code
        The town's 9-digit NBS code, e.g. ``"511703109"``.
    as_of
        Read the grid versions valid at this instant (time-zone aware):
        ``valid_from <= as_of < valid_to``. ``None`` reads the current grids
        (``valid_to IS NULL``).

    Returns
    -------
    TownData
        Every layer in EPSG:4490 (see :class:`TownData` for the columns).

    Raises
    ------
    NotFoundError
        No town with that code (the message lists the towns there are).
    DatabaseError
        The schema lacks a table (not migrated).
    ValueError
        ``as_of`` without a time zone.

    Examples
    --------
    >>> data = read_town(engine, "511703129")  # doctest: +SKIP
    >>> data.name, len(data.grids), len(data.lines["river"])  # doctest: +SKIP
    ('河市镇', 39, 1)
    """
    _check_as_of(as_of)
    with _connection(conn_or_engine) as conn:
        return _read_town(conn, str(town_code), as_of)


def read_towns(conn_or_engine: sa.Connection | sa.Engine) -> gpd.GeoDataFrame:
    """Read every town: ``code``, ``name``, ``district_code`` and polygon, sorted by code.

    Parameters
    ----------
    conn_or_engine
        The caller's connection or engine.

    Returns
    -------
    geopandas.GeoDataFrame
        In EPSG:4490; empty when nothing is loaded.

    Examples
    --------
    >>> read_towns(engine)["code"].tolist()  # doctest: +SKIP
    ['511703109', '511703129']
    """
    sql = "SELECT code, name, district_code, geom FROM towns ORDER BY code"
    frame = gpd.read_postgis(sa.text(sql), conn_or_engine, geom_col="geom", crs=CGCS2000)
    return frame.rename_geometry("geometry")
