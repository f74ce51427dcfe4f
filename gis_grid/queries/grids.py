"""Grids: the current plan, the plan at any instant, one grid's history, per-grid statistics.

A row of ``grids`` is one version of a grid, valid over ``[valid_from, valid_to)``;
``valid_to IS NULL`` marks the current version (see :mod:`gis_grid.db.models`). Households,
points and members refer to a grid by its stable code, so counts describe the grid code's
present assignment and are given for current versions only.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis_grid.errors import NotFoundError
from gis_grid.privacy import mask_phone
from gis_grid.queries._sql import (
    CLOSED_STATUSES,
    BBox,
    FeaturePage,
    FeatureSource,
    Page,
    Where,
    area_km2_sql,
    feature_page,
    features,
)
from gis_grid.queries.places import MemberRef

__all__ = [
    "GRIDS",
    "GridStats",
    "get_grid",
    "get_grid_version",
    "grid_page",
    "grid_stats",
    "grid_stats_page",
    "grid_versions",
    "require_grid_code",
]

_CLOSED = ", ".join(f"'{s}'" for s in CLOSED_STATUSES)

# The appointed member of a grid code (one per grid, article 5; the lowest code if the data
# should ever hold two).
_MEMBER_JOIN = (
    "LEFT JOIN LATERAL (SELECT mm.code, mm.name, mm.phone FROM members mm "
    "WHERE mm.grid_code = t.code AND mm.status = 'appointed' ORDER BY mm.code LIMIT 1) m "
    "ON true"
)

#: Grid versions with their village, validity, area (km², Gauss-Krüger) and, for the current
#: version, the households and people assigned and the appointed member.
GRIDS = FeatureSource(
    name="grids",
    from_sql=(
        "grids t JOIN villages v ON v.code = t.village_code "
        "LEFT JOIN LATERAL (SELECT count(*) AS households, "
        "coalesce(sum(hh.people), 0) AS people FROM households hh "
        "WHERE t.valid_to IS NULL AND hh.grid_code = t.code) hc ON true "
        f"{_MEMBER_JOIN}"
    ),
    properties=(
        ("code", "t.code"),
        ("name", "t.name"),
        ("village_code", "t.village_code"),
        ("village", "v.name"),
        ("version", "t.version"),
        ("valid_from", "t.valid_from"),
        ("valid_to", "t.valid_to"),
        ("current", "t.valid_to IS NULL"),
        ("area_km2", f"round(({area_km2_sql('t.geom')})::numeric, 4)"),
        ("households", "CASE WHEN t.valid_to IS NULL THEN hc.households END"),
        ("people", "CASE WHEN t.valid_to IS NULL THEN hc.people END"),
        ("member_code", "CASE WHEN t.valid_to IS NULL THEN m.code END"),
        ("member", "CASE WHEN t.valid_to IS NULL THEN m.name END"),
        ("synthetic", "t.synthetic"),
    ),
    id_sql="t.code || '-v' || t.version",
    order_sql="t.code, t.version",
)


def grid_page(
    conn: Connection,
    *,
    as_of: dt.datetime | None = None,
    town: str | None = None,
    village: str | None = None,
    bbox: BBox | None = None,
    limit: int = 100,
    offset: int = 0,
) -> FeaturePage:
    """One page of the grid plan (GeoJSON): the current one, or the one valid at ``as_of``.

    Parameters
    ----------
    conn
        Connection to the platform database.
    as_of
        An aware timestamp: the versions valid then (``valid_from <= as_of < valid_to``).
        Before the first plan was loaded the page is empty.
    town, village
        Only this town's (9-digit) or village's (12-digit) grids.
    bbox
        Only grids intersecting this box.
    limit, offset
        Paging, by grid code.

    Returns
    -------
    FeaturePage
    """
    where = Where().places(town=town, village=village).bbox(bbox)
    if as_of is None:
        where.add("t.valid_to IS NULL")
    else:
        where.add("t.valid_from <= :as_of AND (t.valid_to IS NULL OR t.valid_to > :as_of)")
        where.params["as_of"] = as_of
    return feature_page(conn, GRIDS, where, limit=limit, offset=offset)


def require_grid_code(conn: Connection, code: str) -> str:
    """Return ``code`` if some version of the grid exists, else raise naming it."""
    if conn.scalar(sa.text("SELECT 1 FROM grids WHERE code = :code LIMIT 1"), {"code": code}):
        return code
    raise _grid_not_found(code)


def _grid_not_found(code: str) -> NotFoundError:
    return NotFoundError(
        f"grid {code!r} not found in any version; GET /api/v1/grids lists the current grids"
    )


def get_grid(conn: Connection, code: str) -> dict[str, Any]:
    """Get the current version of a grid as a GeoJSON feature.

    Raises
    ------
    NotFoundError
        If the code is unknown, or the grid has been retired (no current version); the
        message names the code and, for a retired grid, where its history is.
    """
    found = features(conn, GRIDS, Where().add("t.code = :code AND t.valid_to IS NULL", code=code))
    if found:
        return found[0]
    require_grid_code(conn, code)
    msg = (
        f"grid {code!r} has no current version (it was retired); its history is at "
        f"GET /api/v1/grids/{code}/versions"
    )
    raise NotFoundError(msg)


def grid_versions(conn: Connection, code: str) -> list[dict[str, Any]]:
    """Every version of a grid, oldest first, as GeoJSON features.

    Raises
    ------
    NotFoundError
        If no version of the grid exists.
    """
    found = features(conn, GRIDS, Where().add("t.code = :code", code=code))
    if not found:
        raise _grid_not_found(code)
    return found


def get_grid_version(conn: Connection, code: str, version: int) -> dict[str, Any]:
    """Version ``version`` of a grid as a GeoJSON feature.

    Raises
    ------
    NotFoundError
        If the grid or that version does not exist; the message names both.
    """
    where = Where().add("t.code = :code AND t.version = :version", code=code, version=version)
    found = features(conn, GRIDS, where)
    if found:
        return found[0]
    require_grid_code(conn, code)
    msg = (
        f"grid {code!r} has no version {version}; GET /api/v1/grids/{code}/versions "
        "lists its versions"
    )
    raise NotFoundError(msg)


# --- statistics -----------------------------------------------------------------------------


@dataclass(frozen=True)
class GridStats:
    """What one current grid holds: the numbers the planner balances and the centre watches.

    ``people`` is the sum of the households' registered sizes, ``residents`` the people with
    a resident record; ``area_km2`` is measured in the CGCS2000 Gauss-Krüger zone.
    """

    code: str
    name: str | None
    village_code: str
    village: str
    version: int
    area_km2: float
    households: int
    people: int
    residents: int
    people_per_km2: float | None
    pollution_points: int
    hazards: int
    incidents_open: int
    incidents_overdue: int
    member: MemberRef | None


_STATS_SQL = f"""
SELECT t.code, t.name, t.village_code, v.name AS village, t.version,
       {area_km2_sql("t.geom")} AS area_km2,
       hc.households, hc.people,
       (SELECT count(*) FROM residents r JOIN households hh ON hh.id = r.household_id
         WHERE hh.grid_code = t.code) AS residents,
       (SELECT count(*) FROM pollution_points pp WHERE pp.grid_code = t.code)
           AS pollution_points,
       (SELECT count(*) FROM hazards hz WHERE hz.grid_code = t.code) AS hazards,
       (SELECT count(*) FROM incidents i
         WHERE i.grid_code = t.code AND i.status::text NOT IN ({_CLOSED})) AS incidents_open,
       (SELECT count(*) FROM incidents i
         WHERE i.grid_code = t.code AND i.status::text NOT IN ({_CLOSED})
           AND i.deadline < now()) AS incidents_overdue,
       m.code AS member_code, m.name AS member_name, m.phone AS member_phone,
       count(*) OVER () AS matched
FROM grids t
JOIN villages v ON v.code = t.village_code
LEFT JOIN LATERAL (
    SELECT count(*) AS households, coalesce(sum(hh.people), 0) AS people
    FROM households hh WHERE hh.grid_code = t.code
) hc ON true
{_MEMBER_JOIN}
WHERE t.valid_to IS NULL AND {{where}}
ORDER BY t.code
LIMIT :limit OFFSET :offset
"""


def _stats(row: Any) -> GridStats:
    area = float(row["area_km2"])
    member = None
    if row["member_code"] is not None:
        member = MemberRef(row["member_code"], row["member_name"], mask_phone(row["member_phone"]))
    return GridStats(
        code=row["code"],
        name=row["name"],
        village_code=row["village_code"],
        village=row["village"],
        version=int(row["version"]),
        area_km2=round(area, 4),
        households=int(row["households"]),
        people=int(row["people"]),
        residents=int(row["residents"]),
        people_per_km2=round(int(row["people"]) / area, 1) if area > 0 else None,
        pollution_points=int(row["pollution_points"]),
        hazards=int(row["hazards"]),
        incidents_open=int(row["incidents_open"]),
        incidents_overdue=int(row["incidents_overdue"]),
        member=member,
    )


def grid_stats(conn: Connection, code: str) -> GridStats:
    """Statistics of one current grid.

    Raises
    ------
    NotFoundError
        If the grid has no current version (unknown or retired).
    """
    sql = _STATS_SQL.format(where="t.code = :code")
    row = conn.execute(sa.text(sql), {"code": code, "limit": 1, "offset": 0}).mappings().first()
    if row is None:
        get_grid(conn, code)  # raises the precise 404 (unknown or retired)
        msg = f"grid {code!r} has no current version"
        raise NotFoundError(msg)
    return _stats(row)


def grid_stats_page(
    conn: Connection,
    *,
    town: str | None = None,
    village: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> Page[GridStats]:
    """Statistics of every current grid of a town or village (or of all), by grid code.

    Parameters
    ----------
    conn
        Connection to the platform database.
    town, village
        Only this town's or village's grids.
    limit, offset
        Paging, by grid code.

    Returns
    -------
    Page of GridStats
    """
    where = Where().places(town=town, village=village)
    sql = _STATS_SQL.format(where=where.sql)
    params = {**where.params, "limit": limit, "offset": offset}
    rows = conn.execute(sa.text(sql), params).mappings().all()
    if rows:
        matched = int(rows[0]["matched"])
    else:
        count_sql = f"SELECT count(*) FROM grids t WHERE t.valid_to IS NULL AND {where.sql}"
        matched = int(conn.scalar(sa.text(count_sql), where.params) or 0)
    return Page([_stats(r) for r in rows], matched, limit, offset)
