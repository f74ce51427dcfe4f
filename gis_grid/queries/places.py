"""Towns and villages with their counts, and "which grid is this point in".

Every function takes the caller's SQLAlchemy connection, returns plain domain objects and
raises :mod:`gis_grid.errors` on bad input, so the same queries serve the web service, the
command line and notebooks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis_grid.crs import CHINA_BOUNDS, Datum, convert_lonlat, parse_datum
from gis_grid.errors import CoordinateError, NotFoundError
from gis_grid.privacy import mask_phone
from gis_grid.queries._sql import (
    BBox,
    FeaturePage,
    FeatureSource,
    Where,
    area_km2_sql,
    feature_page,
    features,
)

__all__ = [
    "VILLAGES",
    "GridRef",
    "Lookup",
    "MemberRef",
    "PlaceRef",
    "TownSummary",
    "VillageSummary",
    "get_town",
    "get_village",
    "list_towns",
    "list_villages",
    "lookup_point",
    "require_village",
    "village_page",
]


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


# --- villages as GeoJSON ------------------------------------------------------------------

#: Villages with their current-grid, household and people counts and area (km²).
VILLAGES = FeatureSource(
    name="villages",
    from_sql=(
        "villages t JOIN towns tw ON tw.code = t.town_code "
        "LEFT JOIN LATERAL (SELECT count(*) AS households, "
        "coalesce(sum(hh.people), 0) AS people FROM households hh "
        "WHERE hh.village_code = t.code) hc ON true"
    ),
    properties=(
        ("code", "t.code"),
        ("name", "t.name"),
        ("kind", "t.kind::text"),
        ("town_code", "t.town_code"),
        ("town", "tw.name"),
        (
            "grids",
            "(SELECT count(*) FROM grids g WHERE g.valid_to IS NULL AND g.village_code = t.code)",
        ),
        ("households", "hc.households"),
        ("people", "hc.people"),
        ("area_km2", f"round(({area_km2_sql('t.geom')})::numeric, 4)"),
    ),
    id_sql="t.code",
    order_sql="t.code",
)


def village_page(
    conn: Connection,
    *,
    town: str | None = None,
    bbox: BBox | None = None,
    limit: int = 100,
    offset: int = 0,
) -> FeaturePage:
    """One page of villages (GeoJSON), optionally of one town or intersecting a box.

    Parameters
    ----------
    conn
        Connection to the platform database.
    town
        Only this town's villages (9-digit code).
    bbox
        Only villages intersecting this box.
    limit, offset
        Paging, by village code.

    Returns
    -------
    FeaturePage
    """
    where = Where().bbox(bbox)
    if town is not None:
        where.add("t.town_code = :town", town=town)
    return feature_page(conn, VILLAGES, where, limit=limit, offset=offset)


def get_village(conn: Connection, code: str) -> dict[str, Any]:
    """One village as a GeoJSON feature.

    Raises
    ------
    NotFoundError
        If there is no such village; the message names the code.
    """
    found = features(conn, VILLAGES, Where().add("t.code = :code", code=code))
    if not found:
        raise _village_not_found(code)
    return found[0]


def require_village(conn: Connection, code: str) -> str:
    """Return ``code`` if the village exists, else raise :class:`NotFoundError` naming it."""
    if conn.scalar(sa.text("SELECT 1 FROM villages WHERE code = :code"), {"code": code}) is None:
        raise _village_not_found(code)
    return code


def _village_not_found(code: str) -> NotFoundError:
    return NotFoundError(
        f"village {code!r} not found; GET /api/v1/villages lists the villages (12-digit codes)"
    )


# --- which grid is this point in ----------------------------------------------------------


@dataclass(frozen=True)
class PlaceRef:
    """A town, village, grid or member named by its code (and name)."""

    code: str
    name: str | None


@dataclass(frozen=True)
class GridRef:
    """A grid version named by its code, name and version number."""

    code: str
    name: str | None
    version: int


@dataclass(frozen=True)
class MemberRef:
    """A grid member: code, name (public: members are publicised, article 7), masked phone."""

    code: str
    name: str
    phone: str | None


@dataclass(frozen=True)
class Lookup:
    """Where a point lies: its town, village, current grid and that grid's appointed member.

    ``lon``/``lat`` are the point in CGCS2000, after conversion from the input datum.
    """

    lon: float
    lat: float
    datum: str
    town: PlaceRef
    village: PlaceRef
    grid: GridRef | None
    member: MemberRef | None


# The current grid covering the point decides the village (grids belong to one village); a
# point in a village but in no grid (a gap in the plan) still gets its village.
_LOOKUP_SQL = """
WITH pt AS (SELECT ST_SetSRID(ST_MakePoint(:lon, :lat), 4490) AS g),
gr AS (
    SELECT g.code, g.name, g.version, g.village_code
    FROM grids g, pt
    WHERE g.valid_to IS NULL AND ST_Covers(g.geom, pt.g)
    ORDER BY g.code LIMIT 1
),
vi AS (
    SELECT v.code FROM villages v, pt WHERE ST_Covers(v.geom, pt.g) ORDER BY v.code LIMIT 1
)
SELECT tw.code AS town_code, tw.name AS town_name, v.code AS village_code,
       v.name AS village_name, gr.code AS grid_code, gr.name AS grid_name,
       gr.version AS grid_version, m.code AS member_code, m.name AS member_name,
       m.phone AS member_phone
FROM villages v
JOIN towns tw ON tw.code = v.town_code
LEFT JOIN gr ON gr.village_code = v.code
LEFT JOIN LATERAL (
    SELECT mm.code, mm.name, mm.phone FROM members mm
    WHERE mm.grid_code = gr.code AND mm.status = 'appointed'
    ORDER BY mm.code LIMIT 1
) m ON true
WHERE v.code = coalesce((SELECT village_code FROM gr), (SELECT code FROM vi))
"""


def lookup_point(
    conn: Connection, lon: float, lat: float, *, datum: Datum | str = Datum.CGCS2000
) -> Lookup:
    """Find the town, village, current grid and appointed member at a point.

    Parameters
    ----------
    conn
        Connection to the platform database.
    lon, lat
        The point in degrees, in ``datum``.
    datum
        ``"cgcs2000"`` (default), ``"wgs84"``, ``"gcj02"`` (AMap, Tencent) or ``"bd09"``
        (Baidu); converted to CGCS2000 before the search.

    Returns
    -------
    Lookup
        The member's phone is masked.

    Raises
    ------
    CoordinateError
        If the point is not finite or lies outside China's range (with a hint when
        longitude and latitude look swapped).
    CRSError
        For an unknown datum.
    NotFoundError
        If no village contains the point; the message gives the coordinate.

    Examples
    --------
    >>> lookup_point(conn, 107.405, 30.964, datum="gcj02").village.name  # doctest: +SKIP
    '利群社区'
    """
    source = parse_datum(datum)
    minx, miny, maxx, maxy = CHINA_BOUNDS
    if not (math.isfinite(lon) and math.isfinite(lat)):
        msg = f"lon/lat must be finite numbers, got ({lon}, {lat})"
        raise CoordinateError(msg)
    if not (minx <= lon <= maxx and miny <= lat <= maxy):
        swapped = minx <= lat <= maxx and miny <= lon <= maxy
        hint = " Longitude and latitude look swapped." if swapped else ""
        msg = f"({lon}, {lat}) is outside China ({minx}-{maxx} E, {miny}-{maxy} N).{hint}"
        raise CoordinateError(msg)
    xs, ys = convert_lonlat([lon], [lat], source=source, target=Datum.CGCS2000)
    x, y = float(xs[0]), float(ys[0])
    row = conn.execute(sa.text(_LOOKUP_SQL), {"lon": x, "lat": y}).mappings().first()
    if row is None:
        shown = "" if source is Datum.CGCS2000 else f" ({source.value} {lon}, {lat})"
        msg = (
            f"no village contains the point lon={x:.7f}, lat={y:.7f} (CGCS2000){shown}; "
            "it is outside every loaded town"
        )
        raise NotFoundError(msg)
    grid = None
    if row["grid_code"] is not None:
        grid = GridRef(row["grid_code"], row["grid_name"], int(row["grid_version"]))
    member = None
    if row["member_code"] is not None:
        member = MemberRef(row["member_code"], row["member_name"], mask_phone(row["member_phone"]))
    return Lookup(
        lon=x,
        lat=y,
        datum=source.value,
        town=PlaceRef(row["town_code"], row["town_name"]),
        village=PlaceRef(row["village_code"], row["village_name"]),
        grid=grid,
        member=member,
    )
