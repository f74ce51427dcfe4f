"""Mapbox vector tiles of the platform's layers, built by PostGIS (``ST_AsMVT``).

One SQL statement per tile: the features whose bounding box meets the tile (GiST index on
``geom``, EPSG:4490) are clipped and quantised by ``ST_AsMVTGeom`` in Web Mercator and encoded
by ``ST_AsMVT``. Every layer lists the columns it puts into tiles (:class:`TileLayer`) and
nothing else is selected: no names of people, phones, addresses, or incident titles (free text
that may name residents). Grids carry their load (households and people), counted through the
``households.grid_code`` index for the grids of that tile only.

Point layers below :data:`CLUSTER_BELOW_ZOOM` are aggregated: one feature per 16-pixel cell
with a ``count``, so a low-zoom tile stays small and cheap (a district's points would cost
seconds per tile otherwise).

Tile coordinates follow the XYZ / OGC WebMercatorQuad scheme (``y`` counted from the north).

:func:`data_version` reads a number that changes whenever a row any tile shows changes
(migration 0006: statement-level triggers on the layers' tables and on households), so a
service may keep rendered tiles keyed by it and never serve one built from older rows.

Examples
--------
>>> check_tile(14, 13_277, 6_698)
>>> tile_lonlat_bounds(0, 0, 0)[0]
-180.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis_grid.errors import CoordinateError, NotFoundError

__all__ = [
    "CLUSTER_BELOW_ZOOM",
    "DATA_VERSION_SQL",
    "EXTENT",
    "MAX_ZOOM",
    "TILE_LAYERS",
    "TileLayer",
    "check_tile",
    "data_version",
    "get_tile_layer",
    "layer_extent",
    "layer_extent_sql",
    "render_tile",
    "tile_lonlat_bounds",
    "tile_sql",
]

#: Highest zoom served (about 0.04 m per tile pixel at 22, beyond any survey's precision).
MAX_ZOOM = 22
#: Tile extent in MVT units and the buffer kept around it (so outlines join seamlessly).
EXTENT = 4096
BUFFER = 64
#: Point layers are aggregated into cells below this zoom.
CLUSTER_BELOW_ZOOM = 13
_CLUSTER_CELL = 16  # pixels of a 256-pixel tile

#: The tile data version (migration 0006): the number of writing transactions committed on
#: the tables tiles show, and the newest one's id (a re-created table starts afresh).
DATA_VERSION_SQL = (
    "SELECT coalesce(sum(weight), 0)::text || ':' || coalesce(max(xid)::text, '') "
    "FROM gis_grid_tiles.changes"
)


@dataclass(frozen=True)
class TileLayer:
    """What one vector-tile layer holds.

    Parameters
    ----------
    name
        Layer name in URLs and inside the tile.
    table
        Main table (aliased ``t``).
    columns
        ``(name, SQL expression)`` of every attribute written into the tile. Nothing else is.
    where_sql
        Condition always applied (only current grid versions).
    join_sql
        Joins needed by the columns (the grid's load).
    points
        Whether the layer holds points (aggregated at low zoom).
    """

    name: str
    table: str
    columns: tuple[tuple[str, str], ...]
    where_sql: str = "TRUE"
    join_sql: str = ""
    points: bool = True


_POINT_PLACE = (("village_code", "t.village_code"), ("grid_code", "t.grid_code"))

#: The layers served as tiles.
TILE_LAYERS: dict[str, TileLayer] = {
    layer.name: layer
    for layer in (
        TileLayer(
            name="grids",
            table="grids",
            columns=(
                ("code", "t.code"),
                ("name", "t.name"),
                ("village_code", "t.village_code"),
                ("version", "t.version"),
                ("households", "hc.households"),
                ("people", "hc.people"),
            ),
            where_sql="t.valid_to IS NULL",
            join_sql=(
                "CROSS JOIN LATERAL (SELECT count(*)::int AS households, "
                "coalesce(sum(hh.people), 0)::int AS people FROM households hh "
                "WHERE hh.grid_code = t.code) hc"
            ),
            points=False,
        ),
        TileLayer(
            name="incidents",
            table="incidents",
            # The title and description are free text that may name people: left out.
            columns=(
                ("code", "t.code"),
                ("task_type_code", "t.task_type_code"),
                ("status", "t.status::text"),
                ("reported_at", "to_char(t.reported_at AT TIME ZONE 'Asia/Shanghai', "
                 "'YYYY-MM-DD\"T\"HH24:MI:SS')"),
                *_POINT_PLACE,
            ),
        ),
        TileLayer(
            name="pollution",
            table="pollution_points",
            columns=(("code", "t.code"), ("name", "t.name"), ("kind", "t.kind"), *_POINT_PLACE),
        ),
        TileLayer(
            name="hazards",
            table="hazards",
            columns=(
                ("code", "t.code"),
                ("name", "t.name"),
                ("kind", "t.kind"),
                ("level", "t.level"),
                *_POINT_PLACE,
            ),
        ),
    )
}  # fmt: skip


def get_tile_layer(name: str) -> TileLayer:
    """Return a tile layer by name.

    Raises
    ------
    NotFoundError
        Unknown layer; the message lists the layers.
    """
    try:
        return TILE_LAYERS[name]
    except KeyError:
        known = ", ".join(TILE_LAYERS)
        msg = f"tile layer {name!r} not found; the layers are: {known}"
        raise NotFoundError(msg, problems=[{"field": "layer", "value": name}]) from None


def check_tile(z: int, x: int, y: int) -> None:
    """Check that ``z/x/y`` names a tile of the WebMercatorQuad pyramid.

    Raises
    ------
    CoordinateError
        ``z`` outside 0..:data:`MAX_ZOOM`, or ``x``/``y`` outside 0..2**z - 1; ``problems``
        names the field and the allowed range.
    """
    if not 0 <= z <= MAX_ZOOM:
        msg = f"zoom z={z} is outside 0..{MAX_ZOOM}"
        raise CoordinateError(msg, problems=[{"field": "z", "min": 0, "max": MAX_ZOOM}])
    top = (1 << z) - 1
    for field, value in (("x", x), ("y", y)):
        if not 0 <= value <= top:
            msg = f"tile {field}={value} is outside 0..{top} at zoom {z}"
            raise CoordinateError(msg, problems=[{"field": field, "min": 0, "max": top}])


def tile_lonlat_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """Return a tile's ``(west, south, east, north)`` in degrees.

    Examples
    --------
    >>> [round(v, 4) for v in tile_lonlat_bounds(1, 1, 0)]
    [0.0, 0.0, 180.0, 85.0511]
    """
    n = 1 << z

    def lat(row: int) -> float:
        return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * row / n))))

    return x / n * 360 - 180, lat(y + 1), (x + 1) / n * 360 - 180, lat(y)


def tile_sql(layer: TileLayer, z: int, *, paramstyle: str = "named") -> str:
    """Return the SQL building one tile of ``layer`` at zoom ``z``.

    Points below :data:`CLUSTER_BELOW_ZOOM` are aggregated into cells with a ``count``.

    Parameters
    ----------
    layer
        From :data:`TILE_LAYERS`.
    z
        Zoom (decides whether points are aggregated).
    paramstyle
        ``"named"`` (``:z :x :y``, for :func:`sqlalchemy.text`) or ``"pyformat"``
        (``%(z)s %(x)s %(y)s``, for a psycopg cursor).
    """
    if paramstyle == "named":
        envelope = "ST_TileEnvelope(:z, :x, :y)"
    elif paramstyle == "pyformat":
        envelope = "ST_TileEnvelope(%(z)s, %(x)s, %(y)s)"
    else:
        msg = f"paramstyle {paramstyle!r} is neither 'named' nor 'pyformat'"
        raise ValueError(msg)
    # The tile's box in the data's CRS, widened by the buffer, so the GiST index selects.
    search = (
        f"ST_Transform(ST_Expand({envelope}, "
        f"(ST_XMax({envelope}) - ST_XMin({envelope})) * {BUFFER} / {EXTENT}), 4490)"
    )
    mvt_geom = f"ST_AsMVTGeom(ST_Transform(t.geom, 3857), {envelope}, {EXTENT}, {BUFFER}, true)"
    if layer.points and z < CLUSTER_BELOW_ZOOM:
        cell = f"(ST_XMax({envelope}) - ST_XMin({envelope})) / {256 // _CLUSTER_CELL}"
        rows = f"""
        SELECT ST_AsMVTGeom(ST_Centroid(ST_Collect(ST_Transform(t.geom, 3857))), {envelope},
                            {EXTENT}, {BUFFER}, true) AS geom,
               count(*)::int AS count
        FROM {layer.table} t
        WHERE t.geom && {search} AND {layer.where_sql}
        GROUP BY ST_SnapToGrid(ST_Transform(t.geom, 3857), {cell})
        """
    else:
        cols = ", ".join(f"{expr} AS {name}" for name, expr in layer.columns)
        rows = f"""
        SELECT {mvt_geom} AS geom, {cols}
        FROM {layer.table} t {layer.join_sql}
        WHERE t.geom && {search} AND {layer.where_sql}
        """
    return f"""
    WITH rows AS ({rows})
    SELECT ST_AsMVT(rows, '{layer.name}', {EXTENT}, 'geom')
    FROM rows WHERE rows.geom IS NOT NULL
    """


def render_tile(conn: Connection, layer: TileLayer, z: int, x: int, y: int) -> bytes:
    """Build one tile of ``layer``.

    Parameters
    ----------
    conn
        Connection on the platform database.
    layer
        From :data:`TILE_LAYERS`.
    z, x, y
        Tile coordinates (checked by :func:`check_tile`).

    Returns
    -------
    bytes
        The Mapbox vector tile (protobuf); empty when the tile holds no feature.

    Examples
    --------
    >>> data = render_tile(conn, TILE_LAYERS["grids"], 14, 13_277, 6_698)  # doctest: +SKIP
    """
    check_tile(z, x, y)
    data = conn.execute(sa.text(tile_sql(layer, z)), {"z": z, "x": x, "y": y}).scalar()
    return bytes(data) if data else b""


def layer_extent_sql(layer: TileLayer) -> str:
    """Return the SQL of a layer's lon/lat box.

    One row: west, south, east, north; NULLs when the layer has no feature.
    """
    return (
        f"SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
        f"(SELECT ST_Extent(t.geom)::geometry AS e FROM {layer.table} t "
        f"WHERE {layer.where_sql}) s"
    )


def layer_extent(conn: Connection, layer: TileLayer) -> tuple[float, float, float, float] | None:
    """Return the lon/lat box of a layer's features (``None`` when it has none).

    The exact extent (a scan of the layer's boxes, milliseconds at district scale): callers
    cache it (with :func:`data_version`) to answer tiles outside it without a query.
    """
    row = conn.execute(sa.text(layer_extent_sql(layer))).one()
    if row[0] is None:
        return None
    return float(row[0]), float(row[1]), float(row[2]), float(row[3])


def data_version(conn: Connection) -> str:
    """Return the tile data version: it changes whenever a row any tile shows changes.

    Read it in the same snapshot as the tiles it labels (a ``REPEATABLE READ`` transaction):
    a tile kept under a version was built from exactly the rows of that version.

    Examples
    --------
    >>> data_version(conn)  # doctest: +SKIP
    '1843:120931'
    """
    return str(conn.scalar(sa.text(DATA_VERSION_SQL)))
