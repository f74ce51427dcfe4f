"""Absences of appointed members (illness, leave, training): article 11's 应急替补.

An absence is a closed date range with a reason; an appointed member has at most one absence
on any day (overlaps are refused, naming the absence already recorded). The day's cover
follows from them (:func:`gis_grid.members.cover.cover_on`).

Examples
--------
>>> with engine.begin() as conn:  # doctest: +SKIP
...     add_absence(conn, "M511703109001001", date(2025, 3, 1), date(2025, 3, 5),
...                 reason="病假", actor="centre")
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis_grid.errors import ConflictError, NotFoundError, RuleError
from gis_grid.members import _sql
from gis_grid.members.registry import require_member_id

__all__ = ["AbsenceRecord", "add_absence", "delete_absence", "list_absences"]


@dataclass(frozen=True)
class AbsenceRecord:
    """A member's absence (illness, leave, training), both days included."""

    id: int
    member_code: str
    starts_on: dt.date
    ends_on: dt.date
    reason: str
    created_at: dt.datetime
    actor: str | None


def add_absence(
    conn: Connection,
    member: str,
    starts_on: dt.date,
    ends_on: dt.date,
    *,
    reason: str,
    actor: str,
) -> AbsenceRecord:
    """Record an absence of an appointed member.

    Raises
    ------
    NotFoundError
        No such member.
    RuleError
        ``ends_on`` before ``starts_on``, or no reason.
    ConflictError
        The member is not appointed, or is already absent on one of the days (the
        overlapping absence is named).
    """
    if ends_on < starts_on:
        msg = f"ends_on {ends_on} is before starts_on {starts_on}"
        raise RuleError(msg, problems=[{"field": "ends_on", "value": ends_on.isoformat()}])
    if not reason.strip():
        raise RuleError("reason is required", problems=[{"field": "reason"}])
    member_id = require_member_id(conn, member, lock=True)  # serialises this member's absences
    status = conn.execute(
        sa.text("SELECT status::text FROM members WHERE id = :id"), {"id": member_id}
    ).scalar_one()
    if status != "appointed":
        msg = f"member {member} is {status}: only an appointed member's absence needs cover"
        raise ConflictError(msg, problems=[{"field": "code", "status": status}])
    params = {"member_id": member_id, "starts_on": starts_on, "ends_on": ends_on}
    other = conn.execute(sa.text(_sql.OVERLAPPING_ABSENCE), params).mappings().first()
    if other is not None:
        msg = (
            f"member {member} is already absent {other['starts_on']}..{other['ends_on']} "
            f"(absence {other['id']}: {other['reason']}); change or delete that one first"
        )
        raise ConflictError(
            msg, problems=[{"field": "starts_on", "overlaps_absence": int(other["id"])}]
        )
    row = conn.execute(
        sa.text(_sql.INSERT_ABSENCE), {**params, "reason": reason.strip(), "actor": actor}
    ).mappings()
    return AbsenceRecord(member_code=member, **next(iter(row)))


def list_absences(conn: Connection, member: str) -> list[AbsenceRecord]:
    """Return a member's absences, earliest first (404 if no such member)."""
    member_id = require_member_id(conn, member)
    rows = conn.execute(sa.text(_sql.ABSENCES), {"member_id": member_id}).mappings()
    return [AbsenceRecord(**row) for row in rows]


def delete_absence(conn: Connection, absence_id: int) -> AbsenceRecord:
    """Delete an absence and return it (404 naming the id if there is none)."""
    row = conn.execute(sa.text(_sql.DELETE_ABSENCE), {"id": absence_id}).mappings().first()
    if row is None:
        msg = f"absence {absence_id} not found; GET /api/v1/members/{{code}}/absences lists them"
        raise NotFoundError(msg, problems=[{"field": "id", "value": absence_id}])
    return AbsenceRecord(**row)
