"""Assign points to grids inside PostGIS: set-based, polygon-driven, in the caller's transaction.

:func:`assign_in_database` (re)computes ``grid_code`` of every point of a table with one
statement; :func:`reassign_in_database` re-examines only the points a redraw can have moved;
:func:`unassigned_in_database` reports the points outside every current grid. Migration 0003
assigns new and moved rows on write with a trigger (same rule).

**Why polygon-driven.** Left to itself, PostgreSQL loops over the points and probes the grids'
GiST index for each (20 s for 1M points and 10,000 grids, ANCHORS.md): every ``ST_Covers``
call then gets another polygon, so PostGIS's prepared-geometry cache never hits. Here each grid
probes the points' GiST index through ``LATERAL (... OFFSET 0)`` (the ``OFFSET`` keeps the
planner from flattening the subquery back into a point-driven join), so consecutive calls share
the polygon and the cache hits (3-4 s).

**Border rule**, as in memory (:func:`~gis_grid.assign.assign_points`): a point covered by
several current grids (on a shared edge or vertex) goes to the **smallest code**. Unlike the
in-memory rule, an interior point of one grid that lies on the boundary of an *overlapping*
grid also goes to the smallest code; on a clean coverage (no overlaps) both rules agree.

**Unassigned points** keep ``grid_code = NULL`` and are reported with the distance in metres to
the nearest current grid, measured like in memory: in the CGCS2000 3-degree Gauss-Krüger zone
of the point (EPSG:4534-4554), ties to the smallest code.

**Transactions.** Each function runs in a SAVEPOINT on the caller's connection: if anything
fails, every change it made is undone (and the caller's transaction stays usable); on success
nothing is committed, the caller commits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd
import sqlalchemy as sa

from gis_grid.errors import DataFileError

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

__all__ = [
    "ASSIGNED_TABLES",
    "DatabaseAssignment",
    "assign_in_database",
    "changed_grid_codes",
    "reassign_in_database",
    "unassigned_in_database",
]

#: Point tables with ``village_code``, ``grid_code`` and a POINT ``geom`` in EPSG:4490.
ASSIGNED_TABLES = ("households", "pollution_points", "hazards", "incidents")

#: Degrees-to-metres anisotropy allowance when collecting nearest-grid candidates (as in memory).
_NEAREST_SLACK = 1.05


@dataclass(frozen=True)
class DatabaseAssignment:
    """What an assignment in the database did.

    Attributes
    ----------
    table
        The point table.
    examined
        Points whose grid was computed (all points of the table or town for a full run; the
        candidates for a re-assignment).
    assigned
        Of those, points now in a grid.
    changed
        Rows whose ``grid_code`` was written (it differed from the new answer).
    unassigned
        Every point of the table (or town) outside every current grid, one row each, never
        dropped: ``id``, ``code`` (the row's external code), ``distance_m`` (metres to the
        nearest current grid, NaN if there is none) and ``nearest`` (its code), sorted by id.
    """

    table: str
    examined: int
    assigned: int
    changed: int
    unassigned: pd.DataFrame = field(repr=False)

    @property
    def n_unassigned(self) -> int:
        """Number of points outside every current grid."""
        return len(self.unassigned)


def _check_table(table: str) -> str:
    if table not in ASSIGNED_TABLES:
        msg = f"cannot assign table {table!r}: choose one of {', '.join(ASSIGNED_TABLES)}"
        raise DataFileError(msg)
    return table


def _filters(town: str | None) -> tuple[str, str, dict[str, Any]]:
    """Return SQL filters on points (``t``) and grids (``g``) for one town, and params."""
    if town is None:
        return "", "", {}
    points = "AND left(t.village_code, 9) = :town"
    # Every current grid that can reach the town's points, not only the town's own grids: a
    # point gets the same grid whichever town is assigned, and the same as from the trigger.
    grids = "AND g.geom && (SELECT geom FROM towns WHERE code = :town)"
    return points, grids, {"town": town}


_ASSIGN = """
WITH hit AS (
    SELECT p.id, min(g.code) AS code
    FROM grids AS g
    CROSS JOIN LATERAL (
        SELECT t.id FROM {table} AS t
        WHERE t.geom && g.geom AND ST_Covers(g.geom, t.geom) {points}
        OFFSET 0
    ) AS p
    WHERE g.valid_to IS NULL {grids}
    GROUP BY p.id
), answer AS (
    SELECT t.id, hit.code FROM {table} AS t LEFT JOIN hit ON hit.id = t.id
    WHERE TRUE {points}
), written AS (
    UPDATE {table} AS t SET grid_code = answer.code FROM answer
    WHERE t.id = answer.id AND t.grid_code IS DISTINCT FROM answer.code
    RETURNING 1
)
SELECT (SELECT count(*) FROM answer), (SELECT count(*) FROM hit), (SELECT count(*) FROM written)
"""

# Proportional to the change: every step reads only the re-examined rows (btree on grid_code,
# GiST under the new shapes) and writes only the changed ones through the primary key.
# * A point under a changed shape is covered by that shape, and otherwise only by grids
#   touching it; by the border rule (smallest code) only a neighbour with a *smaller* code
#   can take it. So each shape's smaller-code neighbours (GiST on grids) are tested against
#   the shape's points, gathered once into arrays: consecutive ST_Covers calls share the
#   polygon and the prepared-geometry cache hits (a per-point probe of the grids' index cost
#   0.3-0.4 s of 0.6 s at 15,000 points; testing every neighbour, the shape itself
#   included, 0.15-0.25 s, about twice the tests). Only points of a changed grid outside
#   every changed shape are probed per point.
# * Nothing joins back to the whole table: the planner hash-joined the 15,000 answers with
#   all 1M points (a seq scan, 1-1.3 s of 1.9 s). The rows to write are handed to the
#   UPDATE as arrays (in id order, so that the primary key and the heap are visited in
#   order, and concurrent writers lock rows in the same order), whose unnest the planner
#   estimates small: a nested loop on the primary key, whatever the number of rows.
_REASSIGN = """
WITH changed AS (
    SELECT g.code, g.geom FROM grids AS g
    WHERE g.valid_to IS NULL AND g.code = ANY(:codes) {grids}
), under AS (
    SELECT c.code, c.geom AS shape, p.ids, p.geoms FROM changed AS c
    CROSS JOIN LATERAL (
        SELECT array_agg(t.id) AS ids, array_agg(t.geom) AS geoms FROM {table} AS t
        WHERE t.geom && c.geom AND ST_Covers(c.geom, t.geom) {points}
    ) AS p
    WHERE p.ids IS NOT NULL
), covering AS (
    -- The changed grid covers its points; only a neighbour with a smaller code can win.
    SELECT u.id, a.code FROM under AS a CROSS JOIN LATERAL unnest(a.ids) AS u(id)
    UNION ALL
    SELECT u.id, n.code
    FROM under AS a
    CROSS JOIN LATERAL (
        SELECT g.code, g.geom FROM grids AS g
        WHERE g.valid_to IS NULL AND g.geom && a.shape AND g.code < a.code {grids}
        OFFSET 0
    ) AS n
    CROSS JOIN LATERAL unnest(a.ids, a.geoms) AS u(id, geom)
    WHERE u.geom && n.geom AND ST_Covers(n.geom, u.geom)
), hit AS (
    SELECT id, min(code) AS code FROM covering GROUP BY id
), lost AS (
    SELECT t.id, t.geom, t.grid_code FROM {table} AS t
    WHERE t.grid_code = ANY(:codes) {points}
), answer AS (
    -- Points under a changed shape (hit), and points that left a changed grid (lost); a lost
    -- point under no changed shape is located by a probe of the grids' GiST index.
    SELECT coalesce(h.id, l.id) AS id, l.grid_code AS before, l.id IS NULL AS unknown,
        coalesce(h.code, (
            SELECT min(g.code) FROM grids AS g
            WHERE g.valid_to IS NULL AND g.geom && l.geom AND ST_Covers(g.geom, l.geom) {grids}
        )) AS code
    FROM hit AS h FULL JOIN lost AS l ON l.id = h.id
), written AS (
    UPDATE {table} AS t SET grid_code = w.code
    FROM (
        SELECT array_agg(id ORDER BY id) AS ids, array_agg(code ORDER BY id) AS codes FROM answer
        WHERE unknown OR before IS DISTINCT FROM code
    ) AS a
    CROSS JOIN LATERAL unnest(a.ids, a.codes) AS w(id, code)
    WHERE t.id = w.id AND t.grid_code IS DISTINCT FROM w.code
    RETURNING 1
)
SELECT (SELECT count(*) FROM answer), (SELECT count(code) FROM answer),
       (SELECT count(*) FROM written)
"""

# Nearest current grid of each unassigned point, in metres in the point's Gauss-Krüger zone.
# The KNN operator finds the nearest in degrees (d0); every grid within d0 widened by the
# lon/lat anisotropy (1 / cos latitude, plus slack) is then measured in metres.
_UNASSIGNED = """
SELECT t.id, t.code, n.distance_m, n.code AS nearest
FROM {table} AS t
CROSS JOIN LATERAL (
    SELECT 4534 + (least(greatest(3 * floor((ST_X(t.geom) + 1.5) / 3), 75), 135)::int - 75) / 3
        AS srid
) AS zone
LEFT JOIN LATERAL (
    SELECT g.geom <-> t.geom AS d0 FROM grids AS g
    WHERE g.valid_to IS NULL ORDER BY g.geom <-> t.geom LIMIT 1
) AS k ON TRUE
LEFT JOIN LATERAL (
    SELECT g.code,
           ST_Distance(ST_Transform(g.geom, zone.srid), ST_Transform(t.geom, zone.srid))
               AS distance_m
    FROM grids AS g
    WHERE g.valid_to IS NULL
      AND ST_DWithin(g.geom, t.geom,
                     k.d0 * {slack} / cos(radians(least(abs(ST_Y(t.geom)) + k.d0, 80))))
    ORDER BY distance_m, g.code
    LIMIT 1
) AS n ON TRUE
WHERE t.grid_code IS NULL {points}
ORDER BY t.id
"""


def unassigned_in_database(
    conn: Connection, table: str, *, town: str | None = None
) -> pd.DataFrame:
    """Report the points of ``table`` outside every current grid (``grid_code IS NULL``).

    Parameters
    ----------
    conn
        Connection on the platform database.
    table
        One of :data:`ASSIGNED_TABLES`.
    town
        9-digit town code: only points of this town's villages.

    Returns
    -------
    pandas.DataFrame
        One row per such point, sorted by ``id``: ``id``, ``code``, ``distance_m`` (metres to
        the nearest current grid in the point's Gauss-Krüger zone; NaN without any grid) and
        ``nearest`` (that grid's code; ties go to the smallest code).

    Examples
    --------
    >>> report = unassigned_in_database(conn, "households")  # doctest: +SKIP
    >>> report.columns.tolist()  # doctest: +SKIP
    ['id', 'code', 'distance_m', 'nearest']
    """
    points, _, params = _filters(town)
    sql = _UNASSIGNED.format(table=_check_table(table), points=points, slack=_NEAREST_SLACK)
    rows = conn.execute(sa.text(sql), params).all()
    frame = pd.DataFrame(rows, columns=["id", "code", "distance_m", "nearest"])
    return frame.astype({"id": "int64", "distance_m": "float64"})


_SETTINGS_SAVE = "SELECT current_setting('work_mem'), current_setting('jit')"
_SETTINGS_SET = "SELECT set_config('work_mem', '256MB', true), set_config('jit', 'off', true)"
_SETTINGS_RESTORE = "SELECT set_config('work_mem', :work_mem, true), set_config('jit', :jit, true)"


def _run(
    conn: Connection, sql: str, table: str, town: str | None, params: dict[str, Any]
) -> DatabaseAssignment:
    points, grids, town_params = _filters(town)
    statement = sa.text(sql.format(table=table, points=points, grids=grids))
    with conn.begin_nested():
        # Sort and hash a million ids in memory, and skip JIT compilation (0.3-0.4 s for
        # nothing: the planner's estimates for these lateral joins are far too high);
        # is_local: undone at the end of the savepoint if it fails, restored below if not.
        saved = conn.execute(sa.text(_SETTINGS_SAVE)).one()
        conn.execute(sa.text(_SETTINGS_SET))
        examined, assigned, changed = conn.execute(statement, {**params, **town_params}).one()
        unassigned = unassigned_in_database(conn, table, town=town)
        conn.execute(sa.text(_SETTINGS_RESTORE), {"work_mem": saved[0], "jit": saved[1]})
    return DatabaseAssignment(
        table=table,
        examined=int(examined),
        assigned=int(assigned),
        changed=int(changed),
        unassigned=unassigned,
    )


def assign_in_database(
    conn: Connection, table: str, *, town: str | None = None
) -> DatabaseAssignment:
    """Set ``grid_code`` of every point of ``table`` to the current grid covering it.

    One set-based, polygon-driven statement (see the module doc); rows whose grid does not
    change are not written. Runs in a savepoint of the caller's transaction: on any error
    nothing is changed; on success nothing is committed.

    Parameters
    ----------
    conn
        Connection on the platform database (the caller commits).
    table
        One of :data:`ASSIGNED_TABLES`: households, pollution points, hazards, incidents.
    town
        9-digit town code: only the points of this town's villages (against every current
        grid that reaches the town).

    Returns
    -------
    DatabaseAssignment
        Counts, and every point outside every current grid with its distance.

    Raises
    ------
    DataFileError
        ``table`` is not a point table of the platform.

    Examples
    --------
    >>> with engine.begin() as conn:  # doctest: +SKIP
    ...     result = assign_in_database(conn, "households", town="511703109")
    >>> result.changed, result.unassigned.head()  # doctest: +SKIP
    """
    return _run(conn, _ASSIGN, _check_table(table), town, {})


def reassign_in_database(
    conn: Connection, table: str, codes: Iterable[str], *, town: str | None = None
) -> DatabaseAssignment:
    """Update ``grid_code`` after grids were redrawn, re-examining only the changed area.

    The re-examined points are those whose ``grid_code`` is one of ``codes`` (btree on
    ``grid_code``) and those inside the current shape of a grid of ``codes`` (GiST): together,
    the old and the new area of the changed grids. No other point can change grid: its grid
    is unchanged, still covers it, and no changed grid covers it now. The result equals
    :func:`assign_in_database` (tested), provided the table was assigned against the previous
    grid version (by a full run, an earlier re-assignment, or the on-write trigger).

    Parameters
    ----------
    conn
        Connection on the platform database (the caller commits).
    table
        One of :data:`ASSIGNED_TABLES`.
    codes
        Codes of the grids redrawn, added or removed (closed without successor), e.g. from
        :func:`changed_grid_codes`.
    town
        9-digit town code: only the points of this town's villages.

    Returns
    -------
    DatabaseAssignment
        ``examined`` counts the re-examined points; ``unassigned`` lists every point of the
        table (or town) outside every current grid.

    Raises
    ------
    DataFileError
        ``table`` is not a point table of the platform.

    Examples
    --------
    >>> with engine.begin() as conn:  # doctest: +SKIP
    ...     codes = changed_grid_codes(conn, since=redrawn_at)
    ...     result = reassign_in_database(conn, "households", codes)
    """
    params = {"codes": sorted(set(codes))}
    return _run(conn, _REASSIGN, _check_table(table), town, params)


def changed_grid_codes(conn: Connection, since: dt.datetime) -> list[str]:
    """Codes of the grids whose current shape changed at or after ``since``.

    A grid changed if a version of it began (redrawn or added) or ended (redrawn or removed)
    at or after ``since``.

    Parameters
    ----------
    conn
        Connection on the platform database.
    since
        A timezone-aware instant, e.g. the ``valid_from`` of the new versions.

    Returns
    -------
    list of str
        Sorted grid codes.

    Examples
    --------
    >>> changed_grid_codes(conn, dt.datetime(2025, 1, 1, tzinfo=dt.UTC))  # doctest: +SKIP
    ['511703109201001', '511703109201002']
    """
    sql = (
        "SELECT DISTINCT code FROM grids WHERE valid_from >= :since OR valid_to >= :since "
        "ORDER BY code"
    )
    return [str(code) for code in conn.scalars(sa.text(sql), {"since": since})]
