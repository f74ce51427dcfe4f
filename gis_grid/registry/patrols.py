"""Pollution discharge points and hazards, and the patrols of them (article 8.7).

Members patrol every pollution discharge point (排污点) and environmental or safety hazard
(环境安全隐患) of their grid and report serious findings upwards (对可能引起较大影响的…要及时上报).
Points are written like households (:mod:`gis_grid.registry.location`: grid by the database
trigger; a point in a gap of the plan is stored and reported with the nearest grid; a point in
no village is refused).

**Patrol logs.** A patrol names its time (not in the future; :data:`CLOCK_SKEW` of handheld
clocks tolerated), the finding, whether it is serious, and optionally the member. Its
``grid_code`` is the target's at the time of the patrol (row-level access by grid).

**A serious finding becomes an incident** in the ``reported`` step, at the target's location
(the trigger assigns its grid), with the grid's appointed member responsible, a first workflow
event recording who reported it, and ``patrol_logs.incident_id`` linking both. Its task type
is ``task_type_code`` when given, else the default of the target (:data:`DEFAULT_TASK_TYPES`:
T03 排污点及污染纠纷巡查 for pollution points, T04 环境安全隐患上报 for hazards). Either must
exist and be approved by the district (准入, article 10); otherwise the patrol is refused and
the caller is asked for an approved ``task_type_code``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis_grid.crs import Datum
from gis_grid.errors import DuplicateCodeError, NotFoundError
from gis_grid.privacy import redact_text
from gis_grid.queries import Page
from gis_grid.registry._common import changed, check_code, fail, refusing_duplicates, source_of
from gis_grid.registry.location import Placement, place_point, point_sql, to_cgcs2000

__all__ = [
    "CLOCK_SKEW",
    "DEFAULT_TASK_TYPES",
    "HAZARD_KINDS",
    "POLLUTION_KINDS",
    "SITE_FIELDS",
    "PatrolRecord",
    "Site",
    "SiteSaved",
    "add_patrol",
    "create_site",
    "patrol_page",
    "update_site",
]

Site = Literal["pollution", "hazard"]

#: Kinds of pollution discharge point (the sample's, and ``other``).
POLLUTION_KINDS = ("sewage", "livestock", "factory", "other")
#: Kinds of hazard (the sample's, and ``other``).
HAZARD_KINDS = ("landslide", "flood", "fire", "building", "other")
#: Task type of the incident a serious finding creates, unless the patrol names one.
DEFAULT_TASK_TYPES: Mapping[str, str] = {"pollution": "T03", "hazard": "T04"}
#: How far in the future a patrol time may lie (clocks of handheld terminals drift).
CLOCK_SKEW = dt.timedelta(minutes=5)
#: Fields a PATCH may change (hazards also ``level``).
SITE_FIELDS = ("name", "kind", "level", "location")


@dataclass(frozen=True)
class _Table:
    table: str
    what: str
    path: str
    kinds: tuple[str, ...]
    fk: str


_TABLES: dict[str, _Table] = {
    "pollution": _Table(
        "pollution_points", "pollution point", "pollution-points", POLLUTION_KINDS,
        "pollution_point_id",
    ),
    "hazard": _Table("hazards", "hazard", "hazards", HAZARD_KINDS, "hazard_id"),
}  # fmt: skip


@dataclass(frozen=True)
class SiteSaved:
    """A pollution point or hazard as written, and where it lies."""

    code: str
    name: str
    kind: str | None
    level: int | None
    placement: Placement
    previous_grid_code: str | None = None
    moved: bool = False


@dataclass(frozen=True)
class PatrolRecord:
    """One patrol log (the finding with ID and phone numbers redacted)."""

    id: int
    target: str
    target_code: str
    grid_code: str | None
    patrolled_at: dt.datetime
    finding: str
    serious: bool
    member_code: str | None
    incident_id: int | None
    incident_status: str | None
    task_type_code: str | None
    created_at: dt.datetime


def _spec(site: str) -> _Table:
    if site not in _TABLES:
        msg = f"unknown site {site!r}; use 'pollution' or 'hazard'"
        raise ValueError(msg)
    return _TABLES[site]


def _check_text(value: Any, field: str, limit: int) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise fail(f"{field} must be 1-{limit} characters of text", field, "text")
    return value.strip()


def _check_kind(spec: _Table, kind: Any) -> str | None:
    if kind is not None and kind not in spec.kinds:
        msg = f"unknown {spec.what} kind {kind!r}; allowed: {', '.join(spec.kinds)}"
        raise fail(msg, "kind", "enum", allowed=list(spec.kinds))
    return kind if kind is None else str(kind)


def _check_level(spec: _Table, level: Any, *, required: bool) -> int | None:
    if spec.table != "hazards":
        if level is not None:
            raise fail("only hazards have a level", "level", "not_applicable")
        return None
    if level is None and not required:
        return None
    if isinstance(level, bool) or not isinstance(level, int) or not 1 <= level <= 4:
        raise fail(f"level must be 1 (minor) to 4 (major), got {level!r}", "level", "range")
    return level


def _duplicate(spec: _Table, code: str) -> DuplicateCodeError:
    msg = f"{spec.what} {code!r} already exists; PATCH /api/v1/{spec.path}/{code} changes it"
    return DuplicateCodeError(msg, [{"field": "code", "rule": "unique", "code": code}])


def _locked(conn: Connection, spec: _Table, code: str) -> Any:
    row = (
        conn.execute(
            sa.text(
                f"SELECT id, code, name, kind, {'level' if spec.table == 'hazards' else 'NULL'} "
                f"AS level, grid_code, ST_X(geom) AS lon, ST_Y(geom) AS lat "
                f"FROM {spec.table} WHERE code = :code FOR UPDATE"
            ),
            {"code": code},
        )
        .mappings()
        .first()
    )
    if row is None:
        msg = f"{spec.what} {code!r} not found; GET /api/v1/{spec.path} lists them"
        raise NotFoundError(msg)
    return row


def create_site(
    conn: Connection,
    site: Site,
    *,
    code: str,
    name: str,
    kind: str | None,
    lon: float,
    lat: float,
    datum: Datum | str = Datum.CGCS2000,
    level: int | None = None,
    actor: str,
) -> SiteSaved:
    """Register a pollution point (``site="pollution"``) or hazard (``"hazard"``).

    Parameters
    ----------
    conn
        Connection in the caller's read-write transaction.
    site
        ``"pollution"`` or ``"hazard"``.
    code, name, kind
        New code, name, and kind (:data:`POLLUTION_KINDS` / :data:`HAZARD_KINDS`).
    lon, lat, datum
        The point and its datum (converted to CGCS2000).
    level
        Hazards: 1 (minor) to 4 (major), required; pollution points have none.
    actor
        Who registers it (stored as the row's ``source``).

    Returns
    -------
    SiteSaved

    Raises
    ------
    RuleError, CoordinateError
        A bad field (named) or a point in no village.
    DuplicateCodeError
        The code exists.
    """
    spec = _spec(site)
    check_code(code, spec.what)
    name = _check_text(name, "name", 100)
    kind = _check_kind(spec, kind)
    level = _check_level(spec, level, required=True)
    x, y = to_cgcs2000(lon, lat, datum)
    if conn.scalar(sa.text(f"SELECT 1 FROM {spec.table} WHERE code = :code"), {"code": code}):
        raise _duplicate(spec, code)
    placement = place_point(conn, x, y)
    level_column = ", level" if spec.table == "hazards" else ""
    level_value = ", :level" if spec.table == "hazards" else ""
    with refusing_duplicates(conn, lambda _c: _duplicate(spec, code)):
        stored = conn.scalar(
            sa.text(
                f"INSERT INTO {spec.table} (code, name, kind{level_column}, village_code, geom, "
                f"synthetic, source) VALUES (:code, :name, :kind{level_value}, :village, "
                f"{point_sql()}, false, :source) RETURNING grid_code"
            ),
            {
                "code": code,
                "name": name,
                "kind": kind,
                "level": level,
                "village": placement.village_code,
                "lon": x,
                "lat": y,
                "source": source_of(actor),
            },
        )
    return SiteSaved(code, name, kind, level, _grid(placement, stored))


def _grid(placement: Placement, stored: str | None) -> Placement:
    if stored == placement.grid_code:
        return placement
    return Placement(**{**placement.__dict__, "grid_code": stored})


def update_site(
    conn: Connection, site: Site, code: str, changes: Mapping[str, Any], *, actor: str
) -> SiteSaved:
    """Change a point's name, kind, level (hazards) or location (re-assigned).

    Parameters
    ----------
    changes
        Any of ``name``, ``kind``, ``level`` (hazards) and ``location`` (``lon``, ``lat``,
        ``datum``).

    Raises
    ------
    NotFoundError, RuleError, CoordinateError
        No such point, a bad field (named), a point in no village.
    """
    del actor
    spec = _spec(site)
    changed(changes, SITE_FIELDS, spec.what)
    row = _locked(conn, spec, code)
    values = {"name": row["name"], "kind": row["kind"], "level": row["level"]}
    sets: dict[str, Any] = {}
    if "name" in changes:
        sets["name"] = values["name"] = _check_text(changes["name"], "name", 100)
    if "kind" in changes:
        sets["kind"] = values["kind"] = _check_kind(spec, changes["kind"])
    if "level" in changes:
        sets["level"] = values["level"] = _check_level(spec, changes["level"], required=True)
    placement = None
    if "location" in changes:
        location = changes["location"]
        x, y = to_cgcs2000(location["lon"], location["lat"], location.get("datum", "cgcs2000"))
        placement = place_point(conn, x, y)
    assignments = [f"{name} = :{name}" for name in sets]
    params: dict[str, Any] = {**sets, "id": row["id"]}
    if placement is not None:
        assignments += [f"geom = {point_sql()}", "village_code = :village"]
        params |= {"lon": placement.lon, "lat": placement.lat, "village": placement.village_code}
    stored = row["grid_code"]
    if assignments:
        stored = conn.scalar(
            sa.text(
                f"UPDATE {spec.table} SET {', '.join(assignments)} WHERE id = :id "
                "RETURNING grid_code"
            ),
            params,
        )
    if placement is None:
        placement = place_point(conn, float(row["lon"]), float(row["lat"]), refuse=False)
    return SiteSaved(
        code=code,
        name=values["name"],
        kind=values["kind"],
        level=values["level"],
        placement=_grid(placement, stored),
        previous_grid_code=row["grid_code"],
        moved=placement is not None and "location" in changes,
    )


def _check_time(patrolled_at: Any) -> dt.datetime:
    if not isinstance(patrolled_at, dt.datetime) or patrolled_at.utcoffset() is None:
        raise fail("patrolled_at must be a timestamp with a time zone", "patrolled_at", "timestamp")
    now = dt.datetime.now(dt.UTC)
    if patrolled_at > now + CLOCK_SKEW:
        msg = f"patrolled_at {patrolled_at.isoformat()} is in the future (now {now.isoformat()})"
        raise fail(msg, "patrolled_at", "not_future")
    return patrolled_at


def _member_id(conn: Connection, member_code: str | None) -> int | None:
    if member_code is None:
        return None
    row = conn.execute(
        sa.text("SELECT id, status::text AS status FROM members WHERE code = :code"),
        {"code": member_code},
    ).first()
    if row is None:
        msg = f"member {member_code!r} not found; GET /api/v1/members lists the members"
        raise fail(msg, "member_code", "exists")
    if row.status != "appointed":
        msg = f"member {member_code!r} is {row.status}, not appointed: only serving members patrol"
        raise fail(msg, "member_code", "appointed")
    return int(row.id)


def _task_type(conn: Connection, site: str, code: str | None) -> str:
    field_given = code is not None
    code = code if code is not None else DEFAULT_TASK_TYPES[site]
    state = conn.scalar(
        sa.text("SELECT approval_state::text FROM task_types WHERE code = :code"), {"code": code}
    )
    if state == "approved":
        return code
    why = "does not exist" if state is None else f"is {state}, not approved by the district"
    if field_given:
        msg = (
            f"task type {code!r} {why}: only approved task types can be assigned (article 10); "
            "GET /api/v1/task-types?approval_state=approved lists them"
        )
    else:
        msg = (
            f"a serious finding becomes an incident, and the default task type {code!r} {why}: "
            "give an approved task_type_code (GET /api/v1/task-types?approval_state=approved)"
        )
    raise fail(msg, "task_type_code", "approved", value=code)


def add_patrol(
    conn: Connection,
    site: Site,
    code: str,
    *,
    patrolled_at: dt.datetime,
    finding: str,
    serious: bool = False,
    member_code: str | None = None,
    task_type_code: str | None = None,
    actor: str,
) -> PatrolRecord:
    """Log a patrol of a pollution point or hazard; a serious finding reports an incident.

    Parameters
    ----------
    conn
        Connection in the caller's read-write transaction.
    site, code
        The target: ``"pollution"`` or ``"hazard"`` and its code.
    patrolled_at
        When (time-zone aware; not in the future).
    finding
        What was found (free text; returned with ID and phone numbers redacted).
    serious
        Report the finding as an incident (see the module notes).
    member_code
        The patrolling member (appointed).
    task_type_code
        Task type of the incident (approved); default :data:`DEFAULT_TASK_TYPES`.
    actor
        Who logs it; recorded as the incident's reporter (the member's code when given).

    Returns
    -------
    PatrolRecord

    Raises
    ------
    NotFoundError
        No such target.
    RuleError
        A bad field (named): time in the future, unknown or unappointed member, a task type
        that is not approved.
    """
    spec = _spec(site)
    target = _locked(conn, spec, code)
    at = _check_time(patrolled_at)
    finding = _check_text(finding, "finding", 2000)
    member_id = _member_id(conn, member_code)
    task_type = _task_type(conn, site, task_type_code) if serious else None
    if not serious and task_type_code is not None:
        _task_type(conn, site, task_type_code)  # checked all the same: a typo is reported
    incident_id = None
    if serious:
        reporter = member_code or actor
        incident_id = conn.scalar(
            sa.text(
                "INSERT INTO incidents (task_type_code, title, status, geom, description, "
                "reported_by, member_id, synthetic, source) "
                f"SELECT :task_type, :title, 'reported', t.geom, :finding, :reporter, "
                "(SELECT m.id FROM members m WHERE m.grid_code = t.grid_code "
                "AND m.status = 'appointed'), false, :source "
                f"FROM {spec.table} t WHERE t.id = :target RETURNING id"
            ),
            {
                "task_type": task_type,
                "title": f"巡查发现：{target['name']}（{spec.what} {code}）",
                "finding": finding,
                "reporter": reporter,
                "source": source_of(actor),
                "target": target["id"],
            },
        )
        conn.execute(
            sa.text(
                "INSERT INTO incident_events (incident_id, from_status, to_status, actor, note) "
                "VALUES (:id, NULL, 'reported', :actor, :note)"
            ),
            {
                "id": incident_id,
                "actor": actor,
                "note": f"serious finding of a patrol of {spec.what} {code}",
            },
        )
    patrol_id = conn.scalar(
        sa.text(
            f"INSERT INTO patrol_logs ({spec.fk}, member_id, grid_code, patrolled_at, finding, "
            "serious, incident_id) VALUES (:target, :member, :grid, :at, :finding, :serious, "
            ":incident) RETURNING id"
        ),
        {
            "target": target["id"],
            "member": member_id,
            "grid": target["grid_code"],
            "at": at,
            "finding": finding,
            "serious": serious,
            "incident": incident_id,
        },
    )
    where = ("p.id = :patrol_id", {"patrol_id": int(patrol_id)})
    return _patrols(conn, spec, where, limit=1, offset=0).items[0]


_PATROLS_FROM = """
FROM patrol_logs p
JOIN {table} t ON t.id = p.{fk}
LEFT JOIN members m ON m.id = p.member_id
LEFT JOIN incidents i ON i.id = p.incident_id
"""

_PATROLS_SQL = """
SELECT p.id, t.code AS target_code, p.grid_code, p.patrolled_at, p.finding, p.serious,
       m.code AS member_code, p.incident_id, i.status::text AS incident_status,
       i.task_type_code, p.created_at
{from_sql}
WHERE {where}
ORDER BY p.patrolled_at DESC, p.id DESC
LIMIT :limit OFFSET :offset
"""


def _patrols(
    conn: Connection,
    spec: _Table,
    where: tuple[str, dict[str, Any]],
    *,
    limit: int,
    offset: int,
) -> Page[PatrolRecord]:
    condition, params = where
    from_sql = _PATROLS_FROM.format(table=spec.table, fk=spec.fk)
    rows = conn.execute(
        sa.text(_PATROLS_SQL.format(from_sql=from_sql, where=condition)),
        {**params, "limit": limit, "offset": offset},
    ).mappings()
    items = [
        PatrolRecord(
            id=int(row["id"]),
            target=spec.what,
            target_code=row["target_code"],
            grid_code=row["grid_code"],
            patrolled_at=row["patrolled_at"],
            finding=redact_text(row["finding"]),
            serious=bool(row["serious"]),
            member_code=row["member_code"],
            incident_id=row["incident_id"],
            incident_status=row["incident_status"],
            task_type_code=row["task_type_code"],
            created_at=row["created_at"],
        )
        for row in rows
    ]
    matched = conn.scalar(sa.text(f"SELECT count(*) {from_sql} WHERE {condition}"), params)
    return Page(items, int(matched or 0), limit, offset)


def patrol_page(
    conn: Connection, site: Site, code: str, *, limit: int = 100, offset: int = 0
) -> Page[PatrolRecord]:
    """One page of a target's patrol logs, newest first.

    Raises
    ------
    NotFoundError
        No such target (the message names the code).
    """
    spec = _spec(site)
    target = conn.scalar(sa.text(f"SELECT id FROM {spec.table} WHERE code = :code"), {"code": code})
    if target is None:
        msg = f"{spec.what} {code!r} not found; GET /api/v1/{spec.path} lists them"
        raise NotFoundError(msg)
    where = (f"p.{spec.fk} = :target", {"target": int(target)})
    return _patrols(conn, spec, where, limit=limit, offset=offset)
