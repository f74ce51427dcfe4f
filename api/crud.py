"""Read queries behind the service: towns and villages with their counts, in SQL.

No web framework here: every function takes an SQLAlchemy connection, returns plain domain
objects and raises :mod:`gis_grid.errors` on bad input, so the same queries serve the API,
the command line and notebooks. Map layers are in :mod:`api.layers`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis_grid.errors import CoordinateError, NotFoundError

__all__ = [
    "GEOJSON_DIGITS",
    "BBox",
    "TownSummary",
    "VillageSummary",
    "area_km2_sql",
    "get_town",
    "list_towns",
    "list_villages",
    "parse_bbox",
]

#: Decimal digits of coordinates in GeoJSON: 1e-7 degrees is about 1 cm.
GEOJSON_DIGITS = 7

# SRID of the CGCS2000 3-degree Gauss-Krüger zone (CM in easting, EPSG:4534-4554) holding a
# geometry's centroid: the same rule as gis_grid.crs.gauss_kruger_epsg, evaluated per row.
_GK_SRID = (
    "(4534 + (LEAST(GREATEST(round(ST_X(ST_Centroid({g})) / 3) * 3, 75), 135)::int - 75) / 3)"
)


def area_km2_sql(geom: str) -> str:
    """Return SQL for the area in km² of a geometry column, measured in its Gauss-Krüger zone.

    Examples
    --------
    >>> "ST_Transform(t.geom" in area_km2_sql("t.geom")
    True
    """
    return f"ST_Area(ST_Transform({geom}, {_GK_SRID.format(g=geom)})) / 1e6"


@dataclass(frozen=True)
class BBox:
    """A longitude/latitude bounding box (CGCS2000 = WGS84 at this scale)."""

    minx: float
    miny: float
    maxx: float
    maxy: float


def parse_bbox(text: str) -> BBox:
    """Parse ``"minx,miny,maxx,maxy"`` in degrees, checking order and range.

    Parameters
    ----------
    text
        Four comma-separated numbers.

    Returns
    -------
    BBox
        The box.

    Raises
    ------
    ValueError
        If there are not four finite numbers or a minimum is not below its maximum.
    CoordinateError
        If the box leaves the longitude/latitude range (or looks swapped).

    Examples
    --------
    >>> parse_bbox("107.3,31.0,107.6,31.3")
    BBox(minx=107.3, miny=31.0, maxx=107.6, maxy=31.3)
    """
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 4:
        msg = f"bbox needs 4 comma-separated numbers minx,miny,maxx,maxy; got {len(parts)}"
        raise ValueError(msg)
    try:
        minx, miny, maxx, maxy = (float(p) for p in parts)
    except ValueError:
        msg = f"bbox values must be numbers (degrees), got {text!r}"
        raise ValueError(msg) from None
    if not all(map(_finite, (minx, miny, maxx, maxy))):
        msg = f"bbox values must be finite numbers, got {text!r}"
        raise ValueError(msg)
    if not (
        -180 <= minx <= 180 and -180 <= maxx <= 180 and -90 <= miny <= 90 and -90 <= maxy <= 90
    ):
        swapped = -90 <= minx <= 90 and -90 <= maxx <= 90
        hint = " (longitude first: minx,miny,maxx,maxy)" if swapped else ""
        msg = (
            f"bbox {text!r} is outside longitude -180..180 / latitude -90..90; give degrees "
            f"in CGCS2000/WGS84{hint}"
        )
        raise CoordinateError(msg)
    if not (minx < maxx and miny < maxy):
        msg = f"bbox {text!r}: minx must be < maxx and miny < maxy"
        raise ValueError(msg)
    return BBox(minx, miny, maxx, maxy)


def _finite(value: float) -> bool:
    return math.isfinite(value)


# --- towns and villages -------------------------------------------------------------------


@dataclass(frozen=True)
class TownSummary:
    """A town (乡镇/街道) with the counts the centre looks at first."""

    code: str
    name: str
    district_code: str
    villages: int
    grids: int
    households: int
    people: int
    area_km2: float


@dataclass(frozen=True)
class VillageSummary:
    """A village or community (村/社区) with its counts."""

    code: str
    name: str
    town_code: str
    kind: str
    grids: int
    households: int
    people: int
    area_km2: float


_TOWNS_SQL = f"""
SELECT t.code, t.name, t.district_code,
       (SELECT count(*) FROM villages v WHERE v.town_code = t.code) AS villages,
       (SELECT count(*) FROM grids g
         WHERE g.valid_to IS NULL AND left(g.village_code, 9) = t.code) AS grids,
       coalesce(h.households, 0) AS households,
       coalesce(h.people, 0) AS people,
       {area_km2_sql("t.geom")} AS area_km2
FROM towns t
LEFT JOIN LATERAL (
    SELECT count(*) AS households, sum(hh.people) AS people
    FROM households hh WHERE left(hh.village_code, 9) = t.code
) h ON true
WHERE (CAST(:code AS text) IS NULL OR t.code = :code)
ORDER BY t.code
"""

_VILLAGES_SQL = f"""
SELECT v.code, v.name, v.town_code, v.kind::text AS kind,
       (SELECT count(*) FROM grids g
         WHERE g.valid_to IS NULL AND g.village_code = v.code) AS grids,
       coalesce(h.households, 0) AS households,
       coalesce(h.people, 0) AS people,
       {area_km2_sql("v.geom")} AS area_km2
FROM villages v
LEFT JOIN LATERAL (
    SELECT count(*) AS households, sum(hh.people) AS people
    FROM households hh WHERE hh.village_code = v.code
) h ON true
WHERE v.town_code = :town
ORDER BY v.code
"""


def list_towns(conn: Connection) -> list[TownSummary]:
    """All towns with village/grid/household counts and area (km², Gauss-Krüger).

    Parameters
    ----------
    conn
        Connection to the platform database.

    Returns
    -------
    list of TownSummary
        Ordered by code.
    """
    rows = conn.execute(sa.text(_TOWNS_SQL), {"code": None}).mappings()
    return [_town(row) for row in rows]


def get_town(conn: Connection, code: str) -> TownSummary:
    """One town by its 9-digit code.

    Raises
    ------
    NotFoundError
        If there is no such town; the message names the code.
    """
    row = conn.execute(sa.text(_TOWNS_SQL), {"code": code}).mappings().first()
    if row is None:
        msg = f"town {code!r} not found; GET /api/v1/towns lists the towns"
        raise NotFoundError(msg)
    return _town(row)


def list_villages(conn: Connection, town: TownSummary) -> list[VillageSummary]:
    """List the villages of a town, with counts and area.

    Parameters
    ----------
    conn
        Connection to the platform database.
    town
        The town (from :func:`get_town`).

    Returns
    -------
    list of VillageSummary
        Ordered by code.
    """
    rows = conn.execute(sa.text(_VILLAGES_SQL), {"town": town.code}).mappings()
    return [
        VillageSummary(
            code=row["code"],
            name=row["name"],
            town_code=row["town_code"],
            kind=row["kind"],
            grids=int(row["grids"]),
            households=int(row["households"]),
            people=int(row["people"]),
            area_km2=round(float(row["area_km2"]), 4),
        )
        for row in rows
    ]


def _town(row: Any) -> TownSummary:
    return TownSummary(
        code=row["code"],
        name=row["name"],
        district_code=row["district_code"],
        villages=int(row["villages"]),
        grids=int(row["grids"]),
        households=int(row["households"]),
        people=int(row["people"]),
        area_km2=round(float(row["area_km2"]), 4),
    )
