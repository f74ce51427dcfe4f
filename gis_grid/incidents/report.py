"""Reporting an incident (采集): where it is, whose grid it is, who is responsible.

A location arrives as CGCS2000 longitude/latitude (a GeoJSON point) or as lon/lat in a datum
phones and web maps use (WGS84, GCJ-02, BD-09); it is checked (finite, inside China, not
swapped), converted to CGCS2000 (:func:`gis_grid.crs.convert_lonlat`) and must lie in a
current grid of one of the platform's towns, else :class:`~gis_grid.errors.CoordinateError`
giving the coordinate and the distance to the nearest town and grid. The database trigger of
migration 0003 assigns ``village_code`` and ``grid_code`` on insert; the responsible member is
the grid's appointed member or, when that member is absent on the day, the appointed member of
the grid's AB post (article 11, :func:`responsible_member`).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis_grid import queries
from gis_grid.crs import CHINA_BOUNDS, Datum, convert_lonlat, parse_datum
from gis_grid.db.models import IncidentStatus
from gis_grid.errors import CoordinateError, NotFoundError, RuleError
from gis_grid.incidents._sql import (
    DETAIL_SQL,
    EVENTS_SQL,
    INSERT_INCIDENT_SQL,
    LOCATE_SQL,
    RESPONSIBLE_SQL,
)
from gis_grid.incidents.workflow import CHINA_TIME, EventRecord, allowed_next, record_event
from gis_grid.privacy import mask_phone, redact_text

__all__ = [
    "Placed",
    "Reported",
    "Responsible",
    "check_lonlat",
    "get_incident_detail",
    "incident_events",
    "place_point",
    "report_incident",
    "require_incident",
    "responsible_member",
]


def _shown(value: float) -> float | str:
    # JSON has no NaN/Infinity: problems must stay serialisable.
    return value if math.isfinite(value) else str(value)


def check_lonlat(
    lon: float, lat: float, *, fields: tuple[str, str] = ("lon", "lat")
) -> tuple[float, float]:
    """Check that a longitude/latitude is finite and inside China, and not swapped.

    Parameters
    ----------
    lon, lat
        Degrees, in any of the supported datums.
    fields
        Names of the two values in the caller's input, used in the messages.

    Returns
    -------
    tuple of float
        ``(lon, lat)`` unchanged.

    Raises
    ------
    CoordinateError
        Naming the field and value; with a hint when longitude and latitude look swapped.

    Examples
    --------
    >>> check_lonlat(107.4, 31.0)
    (107.4, 31.0)
    >>> check_lonlat(31.0, 107.4)
    Traceback (most recent call last):
    ...
    gis_grid.errors.CoordinateError: lon=31.0, lat=107.4 look swapped: longitude comes first \
(lon=107.4, lat=31.0)
    """
    fx, fy = fields
    minx, miny, maxx, maxy = CHINA_BOUNDS
    for name, value in ((fx, lon), (fy, lat)):
        if not math.isfinite(value):
            msg = f"{name} must be a finite number of degrees, got {value}"
            raise CoordinateError(msg, problems=[{"field": name, "value": _shown(value)}])
    if minx <= lat <= maxx and miny <= lon <= maxy and not miny <= lat <= maxy:
        msg = f"{fx}={lon}, {fy}={lat} look swapped: longitude comes first ({fx}={lat}, {fy}={lon})"
        raise CoordinateError(msg, problems=[{"field": fx, "lon": lon, "lat": lat}])
    for name, value, low, high in ((fx, lon, minx, maxx), (fy, lat, miny, maxy)):
        if not low <= value <= high:
            msg = f"{name}={value} is outside China's range {low}..{high} degrees"
            raise CoordinateError(msg, problems=[{"field": name, "value": value}])
    return lon, lat


@dataclass(frozen=True)
class Placed:
    """A point in CGCS2000 inside a current grid of a town of the platform."""

    lon: float
    lat: float
    datum: str
    town_code: str
    grid_code: str


def place_point(
    conn: Connection,
    lon: float,
    lat: float,
    *,
    datum: Datum | str = Datum.CGCS2000,
    fields: tuple[str, str] = ("lon", "lat"),
) -> Placed:
    """Check a point, convert it to CGCS2000 and find the town and current grid it lies in.

    Parameters
    ----------
    conn
        Connection to the platform database.
    lon, lat
        The point in degrees, in ``datum``.
    datum
        ``"cgcs2000"``, ``"wgs84"``, ``"gcj02"`` (AMap, Tencent) or ``"bd09"`` (Baidu).
    fields
        Names of the two values in the caller's input, used in the messages.

    Returns
    -------
    Placed

    Raises
    ------
    CoordinateError
        Not finite, outside China, swapped, or outside every town / current grid of the
        platform: the message gives the coordinate and the distance to the nearest town and
        grid; ``problems`` carries them with the field names.
    CRSError
        For an unknown datum.
    """
    source = parse_datum(datum)
    check_lonlat(lon, lat, fields=fields)
    xs, ys = convert_lonlat([lon], [lat], source=source, target=Datum.CGCS2000)
    x, y = float(xs[0]), float(ys[0])
    row = conn.execute(sa.text(LOCATE_SQL), {"lon": x, "lat": y}).one()
    if row.town_code is not None and row.grid_code is not None:
        return Placed(x, y, source.value, row.town_code, row.grid_code)
    given = "" if source is Datum.CGCS2000 else f" ({source.value} {lon}, {lat})"
    where = f"{fields[0]}={x:.7f}, {fields[1]}={y:.7f} (CGCS2000){given}"
    problem: dict[str, object] = {"field": fields[0], "lon": x, "lat": y, "datum": source.value}
    if row.town_code is None:
        what = "outside every town of the platform"
        if row.nearest_town_code is not None:
            what += (
                f"; the nearest is {row.nearest_town} ({row.nearest_town_code}), "
                f"{row.town_metres:.0f} m away"
            )
            problem.update(nearest_town=row.nearest_town_code, town_m=round(row.town_metres))
    else:
        what = f"inside town {row.town_code} but in no current grid (a gap in the plan)"
    if row.nearest_grid_code is not None:
        what += f"; nearest grid {row.nearest_grid_code}, {row.grid_metres:.0f} m away"
        problem.update(nearest_grid=row.nearest_grid_code, grid_m=round(row.grid_metres))
    msg = f"the point {where} is {what}. Check the coordinate and its datum."
    raise CoordinateError(msg, problems=[problem])


@dataclass(frozen=True)
class Responsible:
    """Who handles a grid's incidents on a day, and why.

    ``rule`` is ``"appointed"`` (the grid's member is present), ``"ab_cover"`` (absent, the
    AB post's member covers), ``"appointed_absent"`` (absent and no present cover: the grid's
    member stays responsible and the centre sees it), or ``"unstaffed"`` (no appointed member
    and no present cover: ``member_id`` is ``None``).
    """

    member_id: int | None
    rule: str


def _china_today() -> dt.date:
    return dt.datetime.now(CHINA_TIME).date()


def responsible_member(
    conn: Connection, grid_code: str, *, on: dt.date | None = None
) -> Responsible:
    """Find the member responsible for a grid's new incidents on a day (article 11, AB岗).

    Parameters
    ----------
    conn
        Connection to the platform database.
    grid_code
        The grid.
    on
        The day; default today in China Standard Time.

    Returns
    -------
    Responsible
        From the stored AB-post pairing (``ab_posts``, current rows) and ``absences``.
    """
    day = on if on is not None else _china_today()
    row = conn.execute(sa.text(RESPONSIBLE_SQL), {"grid": grid_code, "on": day}).one()
    if row.own_id is not None and row.own_present:
        return Responsible(int(row.own_id), "appointed")
    if row.cover_id is not None and row.cover_present:
        return Responsible(int(row.cover_id), "ab_cover")
    if row.own_id is not None:
        return Responsible(int(row.own_id), "appointed_absent")
    return Responsible(None, "unstaffed")


@dataclass(frozen=True)
class Reported:
    """A newly reported incident: its id, place, responsible member and first event."""

    id: int
    grid_code: str
    village_code: str | None
    responsible: Responsible
    event: EventRecord


def _require_task_type(conn: Connection, code: str) -> None:
    if conn.scalar(sa.text("SELECT 1 FROM task_types WHERE code = :c"), {"c": code}) is None:
        codes = ", ".join(queries.task_type_codes(conn))
        msg = f"task_type_code {code!r} is not a known task type; known: {codes}"
        raise RuleError(msg, problems=[{"field": "task_type_code", "value": code}])


def report_incident(
    conn: Connection,
    *,
    task_type_code: str,
    title: str,
    lon: float,
    lat: float,
    actor: str,
    datum: Datum | str = Datum.CGCS2000,
    description: str | None = None,
    fields: tuple[str, str] = ("lon", "lat"),
) -> Reported:
    """Store a reported incident, assigned to its grid and responsible member.

    Parameters
    ----------
    conn
        Connection in a read-write transaction.
    task_type_code
        A known task type. Any admission state may be reported; only approved types can be
        dispatched (article 10, :func:`~gis_grid.incidents.workflow.transition_incident`).
    title, description
        What happened (free text; ID and phone numbers in it are masked when read).
    lon, lat, datum
        Where, in ``datum`` (converted to CGCS2000; GCJ-02 and BD-09 are never stored).
    actor
        Who reports (a member's code or the centre), stored as ``reported_by``.
    fields
        Names of the coordinate fields in the caller's input, for the messages.

    Returns
    -------
    Reported
        The new incident's id, grid and village (from the database trigger), the
        responsible member and the first event (``None → reported``).

    Raises
    ------
    CoordinateError
        See :func:`place_point`.
    RuleError
        Unknown task type, or an empty title.

    Examples
    --------
    >>> with engine.begin() as conn:  # doctest: +SKIP
    ...     new = report_incident(conn, task_type_code="T02", title="路灯损坏", lon=107.41,
    ...                           lat=30.96, datum="gcj02", actor="centre:王主任")
    """
    if not title.strip():
        raise RuleError("title must not be empty", problems=[{"field": "title"}])
    _require_task_type(conn, task_type_code)
    placed = place_point(conn, lon, lat, datum=datum, fields=fields)
    responsible = responsible_member(conn, placed.grid_code)
    row = conn.execute(
        sa.text(INSERT_INCIDENT_SQL),
        {
            "task_type_code": task_type_code,
            "title": title.strip(),
            "description": (description or "").strip() or None,
            "lon": placed.lon,
            "lat": placed.lat,
            "actor": actor,
            "member_id": responsible.member_id,
        },
    ).one()
    event = record_event(conn, int(row.id), None, IncidentStatus.REPORTED, actor=actor)
    return Reported(
        id=int(row.id),
        grid_code=row.grid_code,
        village_code=row.village_code,
        responsible=responsible,
        event=event,
    )


def require_incident(conn: Connection, incident_id: int) -> int:
    """Return ``incident_id`` if the incident exists, else raise :class:`NotFoundError`."""
    if conn.scalar(sa.text("SELECT 1 FROM incidents WHERE id = :id"), {"id": incident_id}) is None:
        msg = f"incident {incident_id} not found; GET /api/v1/incidents lists the incidents"
        raise NotFoundError(msg)
    return incident_id


def get_incident_detail(conn: Connection, incident_id: int) -> dict[str, Any]:
    """One incident as a GeoJSON feature with its workflow data.

    The properties of :func:`gis_grid.queries.get_incident` plus ``description`` (redacted),
    ``reported_by``, ``closed_at``, ``evaluation``, the current ``grid`` (code, name,
    version), the responsible ``member`` (code, name, masked phone) and ``allowed_next``.

    Raises
    ------
    NotFoundError
        If there is no such incident.
    """
    feature = queries.get_incident(conn, incident_id)
    row = conn.execute(sa.text(DETAIL_SQL), {"id": incident_id}).one()
    props = feature["properties"]
    props["description"] = redact_text(row.description)
    props["reported_by"] = row.reported_by
    props["closed_at"] = row.closed_at
    props["evaluation"] = row.evaluation
    props["grid"] = (
        None
        if row.grid_code is None
        else {"code": row.grid_code, "name": row.grid_name, "version": int(row.grid_version)}
    )
    props["member"] = (
        None
        if row.member_code is None
        else {
            "code": row.member_code,
            "name": row.member_name,
            "phone": mask_phone(row.member_phone),
        }
    )
    props["allowed_next"] = allowed_next(props["status"])
    return feature


def incident_events(conn: Connection, incident_id: int) -> list[EventRecord]:
    """List the recorded steps of an incident, oldest first, with their attachments' ids.

    Raises
    ------
    NotFoundError
        If there is no such incident.
    """
    require_incident(conn, incident_id)
    rows = conn.execute(sa.text(EVENTS_SQL), {"id": incident_id})
    return [
        EventRecord(
            id=int(r.id),
            incident_id=incident_id,
            from_status=r.from_status,
            to_status=r.to_status,
            at=r.at,
            actor=r.actor,
            note=redact_text(r.note),
            attachments=tuple(int(a) for a in r.attachments),
        )
        for r in rows
    ]
