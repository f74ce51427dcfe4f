"""Write a grid plan as a new grid version, in the caller's transaction.

:func:`apply_plan` replaces the current grids of some villages with a plan's grids: the old
versions are closed (``valid_to``), the new ones inserted (``version`` = the code's previous
version + 1, or 1), so history stays queryable "as of" any instant
(:func:`~gis_grid.db.read.read_town`). Households, pollution points, hazards and incidents of
those villages are then re-assigned to the new grids by
:func:`gis_grid.assign.reassign_in_database` (set-based, smallest code on a shared border), and
members whose grid code no longer exists are reported, never silently left dangling.

The plan is checked twice before anything is written: in memory against the database's
villages (:func:`gis_grid.plans.check_plan`: valid polygons, no gap, overlap or overhang wider
than the tolerance) and in SQL after it reached the database (``ST_IsValid``, ``ST_Covers`` of
each village by the union of its grids and of that union by the village, within the same
tolerance, in metres). Everything runs in a savepoint: on any error nothing is changed and the
caller's transaction stays usable; on success nothing is committed, the caller commits.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import pandas as pd
import sqlalchemy as sa

from gis_grid.assign import ASSIGNED_TABLES, reassign_in_database
from gis_grid.crs import CGCS2000
from gis_grid.db.write import copy_frame
from gis_grid.errors import NotFoundError
from gis_grid.measure import measure_crs
from gis_grid.plans import COVERAGE_TOLERANCE_M, PlanError, check_plan

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from gis_grid.districting import Plan

__all__ = ["AppliedPlan", "apply_plan"]

_GRID_NAME = re.compile(r"^(.*)第\d+网格$")

_PLAN_TABLE = """
CREATE TEMP TABLE plan_grids (
    code char(15) PRIMARY KEY, village_code char(12) NOT NULL, seq smallint NOT NULL,
    name text, geom geometry(MultiPolygon, 4490) NOT NULL
) ON COMMIT DROP
"""

#: Villages whose grids the plan does not tile, checked by PostGIS on the rows as stored.
_SQL_COVERAGE = """
WITH u AS (
    SELECT village_code, ST_Transform(ST_Union(geom), :srid) AS geom
    FROM plan_grids GROUP BY village_code
)
SELECT v.code,
       ST_Covers(ST_Buffer(u.geom, :tol), ST_Transform(v.geom, :srid)) AS covers_village,
       ST_Covers(ST_Buffer(ST_Transform(v.geom, :srid), :tol), u.geom) AS inside_village
FROM villages AS v JOIN u ON u.village_code = v.code
ORDER BY v.code
"""

_SQL_INVALID = """
SELECT code, ST_IsValidReason(geom) FROM plan_grids
WHERE NOT ST_IsValid(geom) OR ST_IsEmpty(geom) ORDER BY code
"""

_CLOSE = """
UPDATE grids SET valid_to = :t
WHERE valid_to IS NULL AND village_code = ANY(:villages)
RETURNING code, village_code, version
"""

_INSERT = """
INSERT INTO grids (code, village_code, seq, name, version, valid_from, geom, synthetic, source)
SELECT p.code, p.village_code, p.seq, p.name,
       coalesce((SELECT max(g.version) FROM grids AS g WHERE g.code = p.code), 0) + 1,
       :t, p.geom, v.synthetic, :source
FROM plan_grids AS p JOIN villages AS v ON v.code = p.village_code
ORDER BY p.code
RETURNING code, village_code, version
"""

#: Members of the villages whose grid code has no current grid, with the grid holding home.
_ORPHANS = """
SELECT m.code, m.name, m.status::text AS status, m.grid_code,
       (SELECT min(g.code) FROM grids AS g WHERE g.valid_to IS NULL AND m.home IS NOT NULL
          AND g.geom && m.home AND ST_Covers(g.geom, m.home)) AS home_grid
FROM members AS m
WHERE left(m.grid_code, 12) = ANY(:villages)
  AND NOT EXISTS (SELECT 1 FROM grids AS g WHERE g.code = m.grid_code AND g.valid_to IS NULL)
ORDER BY m.code
"""


@dataclass(frozen=True)
class AppliedPlan:
    """What :func:`apply_plan` wrote.

    Attributes
    ----------
    valid_from
        When the new versions start (and the old ones end).
    villages
        The villages whose grids were replaced.
    closed, added
        Grid versions ended and begun: ``code``, ``village_code``, ``version``.
    reassigned
        One row per point table: ``table``, ``examined``, ``assigned``, ``changed`` (rows
        whose ``grid_code`` was rewritten), ``unassigned`` (points of the town outside every
        current grid).
    unassigned
        Those points: ``table``, ``id``, ``code``, ``distance_m``, ``nearest``.
    orphaned_members
        Members whose ``grid_code`` no longer names a current grid (their grid was dropped):
        ``code``, ``name``, ``status``, ``grid_code``, ``home_grid`` (the current grid holding
        their home, a suggestion). Nothing is changed for them: reassigning a member is a
        decision (article 7), not geometry.
    """

    valid_from: dt.datetime
    villages: list[str]
    closed: pd.DataFrame = field(repr=False)
    added: pd.DataFrame = field(repr=False)
    reassigned: pd.DataFrame = field(repr=False)
    unassigned: pd.DataFrame = field(repr=False)
    orphaned_members: pd.DataFrame = field(repr=False)

    def summary(self) -> dict[str, Any]:
        """Return the counts: grids closed and added, points re-assigned, members orphaned."""
        return {
            "valid_from": self.valid_from.isoformat(),
            "villages": len(self.villages),
            "closed": len(self.closed),
            "added": len(self.added),
            "new_codes": int((self.added["version"] == 1).sum()),
            "dropped_codes": len(set(self.closed["code"]) - set(self.added["code"])),
            "points_changed": int(self.reassigned["changed"].sum()),
            "points_unassigned": len(self.unassigned),
            "orphaned_members": len(self.orphaned_members),
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the summary, the tables of points and members, the versions."""
        tables = {
            "reassigned": self.reassigned,
            "unassigned": self.unassigned,
            "orphaned_members": self.orphaned_members,
            "added": self.added,
            "closed": self.closed,
        }
        # Through pandas' JSON writer: NaN becomes null, numpy scalars plain numbers.
        return {"summary": self.summary()} | {
            name: json.loads(frame.to_json(orient="records", force_ascii=False))
            for name, frame in tables.items()
        }


def _scope(
    conn: Connection, town_code: str | None, village_codes: Sequence[str] | None
) -> gpd.GeoDataFrame:
    """Read (and lock until the end of the transaction) the villages replaced, EPSG:4490."""
    if (town_code is None) == (village_codes is None):
        msg = "apply_plan: give exactly one of town_code= or village_codes="
        raise ValueError(msg)
    params: dict[str, object]
    if town_code is not None:
        where, params = "town_code = :town", {"town": str(town_code)}
    else:
        where, params = "code = ANY(:codes)", {"codes": [str(c) for c in village_codes or ()]}
    # FOR UPDATE: two plans for the same villages wait for each other instead of racing.
    sql = f"SELECT code, name, geom FROM villages WHERE {where} ORDER BY code FOR UPDATE"
    frame = gpd.read_postgis(sa.text(sql), conn, geom_col="geom", crs=CGCS2000, params=params)
    if frame.empty:
        what = f"town {town_code}" if town_code is not None else f"villages {village_codes}"
        msg = f"no villages of {what} in the database: load them first ('gis-grid load')"
        raise NotFoundError(msg)
    if village_codes is not None:
        unknown = sorted(set(map(str, village_codes)) - set(frame["code"]))
        if unknown:
            msg = f"villages {unknown[:5]} are not in the database"
            raise NotFoundError(msg)
    return frame.rename(columns={"code": "vill_code"}).rename_geometry("geometry")


def _valid_from(
    conn: Connection, villages: list[str], valid_from: dt.datetime | None
) -> dt.datetime:
    now: dt.datetime = conn.execute(sa.text("SELECT now()")).scalar_one()
    if valid_from is None:
        valid_from = now
    if valid_from.tzinfo is None or valid_from.utcoffset() is None:
        msg = f"valid_from={valid_from.isoformat()} has no time zone; give an aware datetime"
        raise ValueError(msg)
    if valid_from > now:
        # valid_to IS NULL means "current": a plan starting later would be current already.
        msg = f"valid_from={valid_from.isoformat()} is in the future; a plan starts now or earlier"
        raise PlanError(msg)
    latest = conn.execute(
        sa.text(
            "SELECT code, valid_from FROM grids WHERE valid_to IS NULL "
            "AND village_code = ANY(:v) ORDER BY valid_from DESC, code LIMIT 1"
        ),
        {"v": villages},
    ).first()
    if latest is not None and latest.valid_from >= valid_from:
        msg = (
            f"valid_from={valid_from.isoformat()} is not after the start of the current "
            f"version of grid {latest.code} ({latest.valid_from.isoformat()})"
        )
        raise PlanError(msg)
    return valid_from


def _names(conn: Connection, plan: gpd.GeoDataFrame, villages: gpd.GeoDataFrame) -> list[str]:
    """Grid names: the plan's, else the code's latest name, else '<village>第N网格'."""
    rows = conn.execute(
        sa.text(
            "SELECT DISTINCT ON (code) code, village_code, name FROM grids "
            "WHERE village_code = ANY(:v) AND name IS NOT NULL ORDER BY code, version DESC"
        ),
        {"v": villages["vill_code"].tolist()},
    ).all()
    latest = {row.code: row.name for row in rows}
    prefix = dict(zip(villages["vill_code"], villages["name"], strict=True))
    for row in rows:  # the village's own naming, e.g. '利群第1网格' -> '利群'
        match = _GRID_NAME.match(row.name)
        if match:
            prefix[row.village_code] = match.group(1)
    given = plan["name"] if "name" in plan.columns else pd.Series(None, index=plan.index)
    return [
        str(name)
        if isinstance(name, str) and name
        else latest.get(code, f"{prefix[village]}第{seq}网格")
        for code, village, seq, name in zip(
            plan["grid_code"], plan["vill_code"], plan["seq"], given, strict=True
        )
    ]


def _check_in_sql(conn: Connection, srid: int, tolerance_m: float) -> None:
    invalid = conn.execute(sa.text(_SQL_INVALID)).all()
    if invalid:
        listed = "; ".join(f"grid {code}: {reason}" for code, reason in invalid[:5])
        msg = f"PostGIS finds the plan's grids invalid: {listed}. Nothing was written."
        raise PlanError(msg)
    rows = conn.execute(sa.text(_SQL_COVERAGE), {"srid": srid, "tol": tolerance_m}).all()
    bad = [
        f"village {code}: "
        + ", ".join(
            text
            for ok, text in (
                (covers, "its grids do not cover it"),
                (inside, "its grids reach outside it"),
            )
            if not ok
        )
        for code, covers, inside in rows
        if not (covers and inside)
    ]
    if bad:
        msg = (
            f"PostGIS (ST_Covers, within {tolerance_m:g} m): " + "; ".join(bad[:5]) + ". "
            "Nothing was written."
        )
        raise PlanError(msg)


def apply_plan(
    conn: Connection,
    plan_grids: Plan | gpd.GeoDataFrame,
    *,
    town_code: str | None = None,
    village_codes: Sequence[str] | None = None,
    valid_from: dt.datetime | None = None,
    source: str = "drawn",
    note: str | None = None,
    tolerance_m: float = COVERAGE_TOLERANCE_M,
) -> AppliedPlan:
    """Write a plan as the new grid version of its villages, and re-assign their points.

    Parameters
    ----------
    conn
        Connection on the platform database; the caller commits (``engine.begin()``).
    plan_grids
        A :class:`~gis_grid.districting.Plan` or grid polygons with a CRS and 15-digit
        ``grid_code`` (village code + sequence; see :func:`gis_grid.plans.plan_frame`),
        optionally a ``name``.
    town_code, village_codes
        Which villages the plan replaces (exactly one): every village of the town, or these.
        The plan must tile each of them, and only them.
    valid_from
        When the new version starts (time-zone aware, not in the future, after the current
        version began); default: the transaction's ``now()``.
    source
        Written to ``grids.source`` (provenance); ``note`` is appended as ``source: note``.
    note
        Free text saying why, e.g. ``"redrawn 2026, target 200 households"``.
    tolerance_m
        Widest gap, overlap or overhang sliver tolerated along the outlines (metres).

    Returns
    -------
    AppliedPlan

    Raises
    ------
    PlanError
        The plan does not tile the villages (gap, overlap, overhang: village, grid and
        lon/lat), invalid or duplicate grids, a bad ``valid_from``. Nothing is written.
    NotFoundError
        The town or villages are not in the database.
    ValueError
        Both or neither of ``town_code`` and ``village_codes``; a naive ``valid_from``.

    Examples
    --------
    >>> with engine.begin() as conn:  # doctest: +SKIP
    ...     applied = apply_plan(conn, drawn.plan, town_code="511703109", note="2026 redraw")
    >>> applied.summary()["added"]  # doctest: +SKIP
    26
    """
    with conn.begin_nested():
        villages = _scope(conn, town_code, village_codes)
        scope = villages["vill_code"].tolist()
        plan = check_plan(plan_grids, villages, tolerance_m=tolerance_m)
        start = _valid_from(conn, scope, valid_from)
        plan["name"] = _names(conn, plan, villages)
        srid = int(measure_crs(villages).to_epsg() or 0)
        conn.execute(sa.text("DROP TABLE IF EXISTS pg_temp.plan_grids"))
        conn.execute(sa.text(_PLAN_TABLE))
        copy_frame(
            conn,
            "plan_grids",
            plan.rename(columns={"grid_code": "code", "vill_code": "village_code"}),
            ["code", "village_code", "seq", "name"],
            geom_column="geom",
            multi=True,
        )
        _check_in_sql(conn, srid, tolerance_m)
        params = {"t": start, "villages": scope}
        columns = ["code", "village_code", "version"]
        closed = pd.DataFrame(conn.execute(sa.text(_CLOSE), params).all(), columns=columns)
        written = f"{source}: {note}" if note else source
        added = pd.DataFrame(
            conn.execute(sa.text(_INSERT), {**params, "source": written}).all(), columns=columns
        )
        conn.execute(sa.text("DROP TABLE pg_temp.plan_grids"))
        codes = sorted(set(closed["code"]) | set(added["code"]))
        rows, lost = [], []
        for town in sorted({code[:9] for code in scope}):
            for table in ASSIGNED_TABLES:
                result = reassign_in_database(conn, table, codes, town=town)
                rows.append(
                    {
                        "table": table,
                        "town": town,
                        "examined": result.examined,
                        "assigned": result.assigned,
                        "changed": result.changed,
                        "unassigned": result.n_unassigned,
                    }
                )
                lost.append(result.unassigned.assign(table=table))
        orphans = pd.DataFrame(
            conn.execute(sa.text(_ORPHANS), {"villages": scope}).all(),
            columns=["code", "name", "status", "grid_code", "home_grid"],
        )
    unassigned = pd.concat(lost, ignore_index=True)
    return AppliedPlan(
        valid_from=start,
        villages=scope,
        closed=closed.sort_values("code", ignore_index=True),
        added=added.sort_values("code", ignore_index=True),
        reassigned=pd.DataFrame(rows),
        unassigned=unassigned[["table", "id", "code", "distance_m", "nearest"]],
        orphaned_members=orphans,
    )
