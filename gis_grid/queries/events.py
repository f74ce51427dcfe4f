"""What members patrol and handle: pollution points, hazards, incidents, and task types.

Article 8.7 puts pollution discharge points and environmental hazards on the member's patrol;
incidents go through the seven-step workflow with a deadline once dispatched; article 10 admits
new kinds of work (task types) only after district approval.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection

from gis_grid.privacy import redact_text
from gis_grid.queries._sql import (
    CLOSED_STATUSES,
    BBox,
    FeaturePage,
    FeatureSource,
    Page,
    Where,
    distinct_values,
    feature_page,
    one_feature,
    one_record,
    record_page,
)

__all__ = [
    "HAZARDS",
    "INCIDENTS",
    "POLLUTION_POINTS",
    "TaskTypeRecord",
    "get_hazard",
    "get_incident",
    "get_pollution_point",
    "get_task_type",
    "hazard_kinds",
    "hazard_page",
    "incident_page",
    "pollution_kinds",
    "pollution_page",
    "task_type_codes",
    "task_type_page",
]

_CLOSED = ", ".join(f"'{s}'" for s in CLOSED_STATUSES)
_OVERDUE = f"(t.deadline < now() AND t.status::text NOT IN ({_CLOSED}))"


def _point_source(name: str, table: str, extra: tuple[tuple[str, str], ...]) -> FeatureSource:
    return FeatureSource(
        name=name,
        from_sql=f"{table} t LEFT JOIN villages v ON v.code = t.village_code",
        properties=(
            ("code", "t.code"),
            ("name", "t.name"),
            ("kind", "t.kind"),
            *extra,
            ("village_code", "t.village_code"),
            ("village", "v.name"),
            ("grid_code", "t.grid_code"),
            ("synthetic", "t.synthetic"),
        ),
        id_sql="t.code",
        order_sql="t.code",
    )


#: Pollution discharge points (排污点).
POLLUTION_POINTS = _point_source("pollution_points", "pollution_points", ())
#: Environmental and safety hazards (环境安全隐患), level 1 (minor) to 4 (major).
HAZARDS = _point_source("hazards", "hazards", (("level", "t.level"),))

#: Incidents. The free-text title is only in the single-incident view (redacted): lists show
#: the task type instead, as the map layers do.
INCIDENTS = FeatureSource(
    name="incidents",
    from_sql=(
        "incidents t LEFT JOIN villages v ON v.code = t.village_code "
        "LEFT JOIN task_types tt ON tt.code = t.task_type_code"
    ),
    properties=(
        ("id", "t.id"),
        ("code", "t.code"),
        ("task_type_code", "t.task_type_code"),
        ("task_type", "tt.name"),
        ("status", "t.status::text"),
        ("reported_at", "t.reported_at"),
        ("dispatched_at", "t.dispatched_at"),
        ("deadline", "t.deadline"),
        ("overdue", f"coalesce({_OVERDUE}, false)"),
        ("village_code", "t.village_code"),
        ("village", "v.name"),
        ("grid_code", "t.grid_code"),
        ("synthetic", "t.synthetic"),
    ),
)


def pollution_kinds(conn: Connection) -> list[str]:
    """List the kinds of pollution point stored (the values ``kind`` filters accept)."""
    return distinct_values(
        conn, "SELECT DISTINCT kind FROM pollution_points WHERE kind IS NOT NULL ORDER BY 1"
    )


def hazard_kinds(conn: Connection) -> list[str]:
    """List the kinds of hazard stored (the values ``kind`` filters accept)."""
    return distinct_values(
        conn, "SELECT DISTINCT kind FROM hazards WHERE kind IS NOT NULL ORDER BY 1"
    )


def task_type_codes(conn: Connection) -> list[str]:
    """List the codes of every task type (the values an incident ``type`` filter accepts)."""
    return distinct_values(conn, "SELECT code FROM task_types ORDER BY code")


def pollution_page(
    conn: Connection,
    *,
    kind: str | None = None,
    town: str | None = None,
    village: str | None = None,
    grid: str | None = None,
    bbox: BBox | None = None,
    limit: int = 100,
    offset: int = 0,
) -> FeaturePage:
    """One page of pollution discharge points (GeoJSON), by code.

    Parameters
    ----------
    conn
        Connection to the platform database.
    kind
        Only points of this kind (see :func:`pollution_kinds`).
    town, village, grid, bbox
        Only points of this town, village or grid, or inside this box.
    limit, offset
        Paging.

    Returns
    -------
    FeaturePage
    """
    where = Where().places(town=town, village=village, grid=grid).bbox(bbox)
    where.given("t.kind = :kind", kind=kind)
    return feature_page(conn, POLLUTION_POINTS, where, limit=limit, offset=offset)


def hazard_page(
    conn: Connection,
    *,
    kind: str | None = None,
    min_level: int | None = None,
    town: str | None = None,
    village: str | None = None,
    grid: str | None = None,
    bbox: BBox | None = None,
    limit: int = 100,
    offset: int = 0,
) -> FeaturePage:
    """One page of hazards (GeoJSON), by code.

    Parameters
    ----------
    conn
        Connection to the platform database.
    kind
        Only hazards of this kind (see :func:`hazard_kinds`).
    min_level
        Only hazards of at least this level (1 minor to 4 major).
    town, village, grid, bbox
        Only hazards of this town, village or grid, or inside this box.
    limit, offset
        Paging.

    Returns
    -------
    FeaturePage
    """
    where = Where().places(town=town, village=village, grid=grid).bbox(bbox)
    where.given("t.kind = :kind", kind=kind).given("t.level >= :min_level", min_level=min_level)
    return feature_page(conn, HAZARDS, where, limit=limit, offset=offset)


def _one(conn: Connection, source: FeatureSource, what: str, code: str) -> dict[str, Any]:
    where = Where().add("t.code = :code", code=code)
    listed_at = f"/api/v1/{source.name.replace('_', '-')}"
    return one_feature(
        conn, source, where, missing=f"{what} {code!r} not found; GET {listed_at} lists them"
    )


def get_pollution_point(conn: Connection, code: str) -> dict[str, Any]:
    """One pollution discharge point as a GeoJSON feature; 404 naming the code if unknown."""
    return _one(conn, POLLUTION_POINTS, "pollution point", code)


def get_hazard(conn: Connection, code: str) -> dict[str, Any]:
    """One hazard as a GeoJSON feature; 404 naming the code if unknown."""
    return _one(conn, HAZARDS, "hazard", code)


def incident_page(
    conn: Connection,
    *,
    task_type: str | None = None,
    statuses: Sequence[str] = (),
    town: str | None = None,
    village: str | None = None,
    grid: str | None = None,
    reported_from: dt.datetime | None = None,
    reported_to: dt.datetime | None = None,
    overdue: bool | None = None,
    bbox: BBox | None = None,
    limit: int = 100,
    offset: int = 0,
) -> FeaturePage:
    """One page of incidents (GeoJSON), by id.

    Parameters
    ----------
    conn
        Connection to the platform database.
    task_type
        Only incidents of this task type (code).
    statuses
        Only incidents in one of these workflow steps.
    town, village, grid, bbox
        Only incidents of this town, village or grid, or inside this box.
    reported_from, reported_to
        Only incidents reported in ``[reported_from, reported_to)`` (aware timestamps).
    overdue
        ``True``: only incidents whose deadline has passed and that are not closed;
        ``False``: only the others.
    limit, offset
        Paging.

    Returns
    -------
    FeaturePage
    """
    where = Where().places(town=town, village=village, grid=grid).bbox(bbox)
    where.given("t.task_type_code = :task_type", task_type=task_type)
    if statuses:
        where.add("t.status::text = ANY(:statuses)", statuses=list(statuses))
    where.given("t.reported_at >= :reported_from", reported_from=reported_from)
    where.given("t.reported_at < :reported_to", reported_to=reported_to)
    where.given(f"coalesce({_OVERDUE}, false) = :overdue", overdue=overdue)
    return feature_page(conn, INCIDENTS, where, limit=limit, offset=offset)


def get_incident(conn: Connection, incident_id: int) -> dict[str, Any]:
    """One incident as a GeoJSON feature, with its title (ID numbers and phones redacted).

    Raises
    ------
    NotFoundError
        If there is no such incident; the message names the id.
    """
    feature = one_feature(
        conn,
        INCIDENTS.with_properties(("title", "t.title")),
        Where().add("t.id = :id", id=incident_id),
        missing=f"incident {incident_id} not found; GET /api/v1/incidents lists the incidents",
    )
    feature["properties"]["title"] = redact_text(feature["properties"]["title"])
    return feature


# --- task types -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskTypeRecord:
    """A kind of grid work and its admission (准入) state; only approved kinds are assignable."""

    code: str
    name: str
    approval_state: str
    assignable: bool
    applied_on: dt.date | None
    reviewed_on: dt.date | None
    decided_on: dt.date | None
    decided_by: str | None
    sla_days: int | None
    incidents: int


_TASK_TYPES_FROM = "FROM task_types t"
_TASK_TYPES_SQL = f"""
SELECT t.code, t.name, t.approval_state::text AS approval_state, t.applied_on, t.reviewed_on,
       t.decided_on, t.decided_by, t.sla_days,
       (SELECT count(*) FROM incidents i WHERE i.task_type_code = t.code) AS incidents
{_TASK_TYPES_FROM}
WHERE {{where}}
ORDER BY t.code
LIMIT :limit OFFSET :offset
"""


def _task_type(row: Any) -> TaskTypeRecord:
    return TaskTypeRecord(
        code=row["code"],
        name=row["name"],
        approval_state=row["approval_state"],
        assignable=row["approval_state"] == "approved",
        applied_on=row["applied_on"],
        reviewed_on=row["reviewed_on"],
        decided_on=row["decided_on"],
        decided_by=row["decided_by"],
        sla_days=row["sla_days"],
        incidents=int(row["incidents"]),
    )


def task_type_page(
    conn: Connection, *, approval_state: str | None = None, limit: int = 100, offset: int = 0
) -> Page[TaskTypeRecord]:
    """One page of task types, by code, optionally in one approval state.

    Parameters
    ----------
    conn
        Connection to the platform database.
    approval_state
        ``"proposed"``, ``"applied"``, ``"reviewed"``, ``"approved"`` or ``"rejected"``.
    limit, offset
        Paging.

    Returns
    -------
    Page of TaskTypeRecord
    """
    where = Where().given("t.approval_state::text = :state", state=approval_state)
    return record_page(
        conn, _TASK_TYPES_SQL, _TASK_TYPES_FROM, where, _task_type, limit=limit, offset=offset
    )


def get_task_type(conn: Connection, code: str) -> TaskTypeRecord:
    """One task type by code; 404 naming the code if unknown."""
    return one_record(
        conn,
        _TASK_TYPES_SQL,
        _task_type,
        code=code,
        missing=f"task type {code!r} not found; GET /api/v1/task-types lists them",
    )
