"""The selection workflow of grid members (articles 7 and 11).

A candidate applies (``applied``), the village recommends (``recommended``), the town
examines and vets (``examined``: the four exclusion flags of article 6 must be recorded),
publicises (``publicised``, 公示) and appoints (``appointed``). Article 11 replaces members
who do not suit (``dismissed``); a candidate may also withdraw or be rejected at any step
before appointment (→ ``dismissed``). :data:`TRANSITIONS` lists the allowed steps; each one
is recorded in ``member_status_changes`` with who made it and why.

Appointment checks eligibility (:func:`~gis_grid.members.eligibility.check_eligibility`) on
the appointment date and refuses with :class:`~gis_grid.errors.RuleError` listing every
failed rule; one grid has one appointed member (一格一员): a second is refused with
:class:`~gis_grid.errors.ConflictError` naming the one in office, unless the same request
replaces them.

Every function takes the caller's connection and works inside the caller's transaction:
an exception leaves it to the caller to roll back, so nothing partial is stored.

Examples
--------
>>> with engine.begin() as conn:  # doctest: +SKIP
...     create_member(conn, {"code": "C1", "name": "张三", ...}, actor="centre")
...     for step in ("recommended", "examined", "publicised", "appointed"):
...         transition_member(conn, "C1", step, actor="centre")
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis_grid.db.models import MemberStatus
from gis_grid.errors import ConflictError, NotFoundError, RuleError, WorkflowError
from gis_grid.members import _sql
from gis_grid.members.eligibility import (
    EXCLUSION_FLAGS,
    RankedCandidate,
    check_eligibility,
    rank_candidates,
    today_in_china,
)
from gis_grid.members.registry import (
    MemberDetail,
    check_current_grid,
    detail_from_row,
    get_member_detail,
    member_row,
    require_member_id,
    rule_error,
)

__all__ = [
    "TRANSITIONS",
    "StatusChange",
    "TransitionResult",
    "grid_candidates",
    "member_history",
    "transition_member",
]

S = MemberStatus

#: Allowed next steps from each status (article 7; article 11 for dismissal).
TRANSITIONS: dict[MemberStatus, tuple[MemberStatus, ...]] = {
    S.APPLIED: (S.RECOMMENDED, S.DISMISSED),
    S.RECOMMENDED: (S.EXAMINED, S.DISMISSED),
    S.EXAMINED: (S.PUBLICISED, S.DISMISSED),
    S.PUBLICISED: (S.APPOINTED, S.DISMISSED),
    S.APPOINTED: (S.DISMISSED,),
    S.DISMISSED: (),
}


@dataclass(frozen=True)
class StatusChange:
    """One recorded step of a member's workflow."""

    from_status: str | None
    to_status: str
    changed_at: dt.datetime
    actor: str | None
    note: str | None


@dataclass(frozen=True)
class TransitionResult:
    """The member after a transition, and the member it replaced (if any)."""

    member: MemberDetail
    replaced: MemberDetail | None
    history: tuple[StatusChange, ...]


def member_history(conn: Connection, code: str) -> list[StatusChange]:
    """Return the recorded workflow steps of a member, oldest first.

    Raises
    ------
    NotFoundError
        No such member.
    """
    member_id = require_member_id(conn, code)
    rows = conn.execute(sa.text(_sql.HISTORY), {"member_id": member_id}).mappings()
    return [StatusChange(**row) for row in rows]


# --- the workflow -----------------------------------------------------------------------------


def _record(
    conn: Connection, member_id: int, old: str | None, new: str, *, actor: str, note: str | None
) -> None:
    params = {"member_id": member_id, "from_status": old, "to_status": new}
    conn.execute(sa.text(_sql.RECORD_CHANGE), {**params, "actor": actor, "note": note})


def _set_status(conn: Connection, member_id: int, status: MemberStatus, **dates: Any) -> None:
    params = {"id": member_id, "status": status.value, "appointed_on": None}
    params |= {"dismissed_on": None, "grid_code": None, **dates}
    conn.execute(sa.text(_sql.SET_STATUS), params)


def _refuse_step(code: str, old: MemberStatus, new: MemberStatus) -> WorkflowError:
    allowed = [s.value for s in TRANSITIONS[old]]
    nexts = ", ".join(allowed) if allowed else "none (a dismissed member stays dismissed)"
    msg = f"member {code} is {old.value}: cannot go to {new.value}; allowed next steps: {nexts}"
    return WorkflowError(
        msg, problems=[{"field": "to", "from": old.value, "to": new.value, "allowed": allowed}]
    )


def _appoint(
    conn: Connection,
    row: Mapping[Any, Any],
    *,
    on: dt.date,
    actor: str,
    note: str | None,
    replaces: str | None,
) -> MemberDetail | None:
    """Appoint the member of ``row``; dismiss ``replaces`` first. Return the replaced one."""
    code, grid_code = row["code"], row["grid_code"]
    if grid_code is None:
        raise rule_error("grid_code", f"member {code} has no grid_code: set the grid first")
    check_current_grid(conn, grid_code)
    if row["applied_on"] is not None and on < row["applied_on"]:
        msg = f"on={on} is before {code} applied ({row['applied_on']}): give the appointment date"
        raise rule_error("on", msg, on)
    failures = check_eligibility(row, on=on, stage="appointment")
    if failures:
        rules = ", ".join(f"{p.rule} ({p.reason})" for p in failures)
        msg = f"member {code} cannot be appointed on {on.isoformat()}: article 6 — {rules}"
        raise RuleError(msg, problems=[p.as_dict() for p in failures])
    holders = conn.execute(sa.text(_sql.APPOINTED_IN_GRID), {"grid": grid_code}).mappings().all()
    replaced = None
    for holder in holders:
        if holder["code"] != replaces:
            msg = (
                f"grid {grid_code} already has an appointed member: {holder['code']} "
                f"({holder['name']}); one member per grid (一格一员). Dismiss them first, or "
                f"appoint with replaces={holder['code']!r}"
            )
            problem = {"field": "grid_code", "grid_code": grid_code}
            raise ConflictError(msg, problems=[problem | {"appointed_member": holder["code"]}])
        why = f"replaced by {code} (article 11 递补)" + (f": {note}" if note else "")
        _record(conn, holder["id"], S.APPOINTED, S.DISMISSED, actor=actor, note=why)
        _set_status(conn, holder["id"], S.DISMISSED, dismissed_on=on)
        replaced = holder["code"]
    if replaces is not None and replaced is None:
        msg = f"replaces={replaces!r} is not the appointed member of grid {grid_code}"
        raise rule_error("replaces", msg, replaces)
    _set_status(conn, row["id"], S.APPOINTED, appointed_on=on)
    _record(conn, row["id"], row["status"], S.APPOINTED, actor=actor, note=note)
    return get_member_detail(conn, replaced, on=on) if replaced else None


def transition_member(
    conn: Connection,
    code: str,
    to: MemberStatus | str,
    *,
    actor: str,
    note: str | None = None,
    reason: str | None = None,
    replacement: str | None = None,
    replaces: str | None = None,
    on: dt.date | None = None,
) -> TransitionResult:
    """Move a member one step in the workflow and record it.

    Parameters
    ----------
    conn
        A connection in a read-write transaction.
    code
        The member.
    to
        The next status (:data:`TRANSITIONS`).
    actor
        Who makes the step (recorded).
    note
        Why, or the reference of the decision (recorded).
    reason
        Required for ``dismissed``: why the member or candidate leaves (article 11).
    replacement
        With ``dismissed`` of an appointed member: a publicised candidate appointed to the
        grid in the same step (递补).
    replaces
        With ``appointed``: the member in office whom this appointment replaces (dismissed).
    on
        The day of the step (appointment and dismissal dates); default today in China.

    Returns
    -------
    TransitionResult

    Raises
    ------
    NotFoundError
        No such member (or replacement).
    WorkflowError
        A step not allowed from the current status; names the allowed next steps.
    RuleError
        Examination without the vetting flags, appointment of an ineligible member (every
        failed rule listed), dismissal without a reason.
    ConflictError
        The grid already has an appointed member.
    """
    day = on or today_in_china()
    try:
        new = MemberStatus(to)
    except ValueError:
        allowed = ", ".join(s.value for s in MemberStatus)
        raise rule_error("to", f"unknown status {to!r}; the statuses are {allowed}") from None
    require_member_id(conn, code, lock=True)
    row = member_row(conn, code)
    old = MemberStatus(row["status"])
    if new not in TRANSITIONS[old]:
        raise _refuse_step(code, old, new)
    if (replacement is not None and new is not S.DISMISSED) or (
        replaces is not None and new is not S.APPOINTED
    ):
        field = "replacement" if replacement is not None else "replaces"
        raise rule_error(
            field, f"{field} is only for a {'dismissal' if replacement else 'appointment'}"
        )
    if new is S.EXAMINED:
        _require_vetting(row)
    if new is S.APPOINTED:
        replaced = _appoint(conn, row, on=day, actor=actor, note=note, replaces=replaces)
        return _result(conn, code, day, replaced)
    if new is S.DISMISSED:
        return _dismiss(conn, row, day=day, actor=actor, note=note, reason=reason,
                        replacement=replacement)  # fmt: skip
    _set_status(conn, row["id"], new)
    _record(conn, row["id"], old, new, actor=actor, note=note)
    return _result(conn, code, day, None)


def _result(
    conn: Connection, code: str, day: dt.date, replaced: MemberDetail | None
) -> TransitionResult:
    member = get_member_detail(conn, code, on=day)
    return TransitionResult(member, replaced, tuple(member_history(conn, code)))


def _require_vetting(row: Mapping[Any, Any]) -> None:
    """Refuse the examination step while a vetting flag is still unknown (NULL)."""
    unset = [f for f in EXCLUSION_FLAGS if row[f] is None]
    if unset:
        msg = (
            f"member {row['code']} cannot be examined before the vetting (审查) is recorded: "
            f"{', '.join(unset)} not set (PATCH the member with true/false)"
        )
        problems = [
            {"field": f, "rule": EXCLUSION_FLAGS[f][0], "reason": "not yet vetted"} for f in unset
        ]
        raise RuleError(msg, problems=problems)


def _dismiss(
    conn: Connection,
    row: Mapping[Any, Any],
    *,
    day: dt.date,
    actor: str,
    note: str | None,
    reason: str | None,
    replacement: str | None,
) -> TransitionResult:
    """Dismiss (or, before appointment, withdraw) a member; appoint ``replacement`` if given."""
    code, old = row["code"], MemberStatus(row["status"])
    if not reason or not reason.strip():
        raise rule_error("reason", f"dismissing {code} needs a reason (article 11)")
    if old is S.APPOINTED and row["appointed_on"] is not None and day < row["appointed_on"]:
        msg = f"on={day} is before the appointment of {code} on {row['appointed_on']}"
        raise rule_error("on", msg, day)
    if replacement is not None and old is not S.APPOINTED:
        msg = f"{code} is {old.value}: only an appointed member is replaced"
        raise rule_error("replacement", msg, replacement)
    text = reason.strip() + (f" — {note}" if note else "")
    _set_status(conn, row["id"], S.DISMISSED, dismissed_on=day)
    suffix = f" (replaced by {replacement})" if replacement else ""
    _record(conn, row["id"], old, S.DISMISSED, actor=actor, note=text + suffix)
    if replacement is None:
        return _result(conn, code, day, None)
    _appoint_replacement(conn, replacement, row, day=day, actor=actor, note=text)
    return _result(conn, replacement, day, get_member_detail(conn, code, on=day))


def _appoint_replacement(
    conn: Connection,
    code: str,
    leaving: Mapping[Any, Any],
    *,
    day: dt.date,
    actor: str,
    note: str,
) -> None:
    """Appoint candidate ``code`` to the grid the member of ``leaving`` has just left."""
    if code == leaving["code"]:
        raise rule_error("replacement", "a member cannot replace themselves", code)
    try:
        require_member_id(conn, code, lock=True)
    except NotFoundError as exc:
        raise NotFoundError(str(exc), problems=[{"field": "replacement", "value": code}]) from None
    row = member_row(conn, code)
    if row["status"] != S.PUBLICISED:
        msg = (
            f"replacement {code} is {row['status']}: only a publicised (公示) candidate can be "
            "appointed"
        )
        raise WorkflowError(msg, problems=[{"field": "replacement", "status": row["status"]}])
    grid = leaving["grid_code"]
    if row["grid_code"] not in (None, grid):
        msg = f"replacement {code} applied for grid {row['grid_code']}, not {grid}"
        raise rule_error("replacement", msg, code)
    conn.execute(sa.text("UPDATE members SET grid_code = :g WHERE id = :id"),
                 {"g": grid, "id": row["id"]})  # fmt: skip
    _appoint(conn, {**row, "grid_code": grid}, on=day, actor=actor,
             note=f"replaces {leaving['code']}: {note}", replaces=None)  # fmt: skip


def grid_candidates(
    conn: Connection, grid_code: str, *, on: dt.date | None = None
) -> list[RankedCandidate]:
    """Rank the candidates (not yet appointed or dismissed) who applied for a grid.

    Parameters
    ----------
    conn
        Connection to the platform database.
    grid_code
        A current grid.
    on
        The day ages are checked on (default today in China).

    Returns
    -------
    list of RankedCandidate
        Each ``member`` a :class:`MemberDetail`; see
        :func:`~gis_grid.members.eligibility.rank_candidates` for the order.

    Raises
    ------
    NotFoundError
        Unknown or retired grid.
    """
    day = on or today_in_china()
    check_current_grid(conn, grid_code)
    rows = conn.execute(sa.text(_sql.MEMBER.format(where=_sql.CANDIDATES)), {"grid": grid_code})
    ranked = rank_candidates(rows.mappings().all(), on=day)
    return [
        RankedCandidate(r.rank, detail_from_row(r.member, on=day), r.score, r.eligible, r.problems)
        for r in ranked
    ]
