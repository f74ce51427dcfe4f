"""The seven-step incident workflow (数字化城市管理) and the rules of each step.

An incident goes 采集 report → 立案 accept → 派遣 dispatch → 处置 handle → 反馈 feedback →
核查结案 verify and close → 评价 evaluate (:class:`~gis_grid.db.models.IncidentStatus`).
:data:`TRANSITIONS` is the one table of the allowed steps; besides the straight line it allows,
by decision of this module:

- **不予立案 (rejected or duplicate)**: ``reported → closed`` and ``accepted → closed``. The
  centre closes a report that is not a grid matter, or that duplicates another, without
  dispatching it. A ``note`` giving the reason is required.
- **返工 (rework)**: ``handled → dispatched`` and ``feedback → dispatched``. Verification
  (核查) happens on the member's handling and feedback; when it fails the centre dispatches the
  incident again, with a ``note`` saying why and a new ``deadline``. The deadline clock starts
  again (``dispatched_at`` is the latest dispatch; every dispatch stays in the history).
- ``closed`` is left only for ``evaluated``; ``evaluated`` is final.

Rules of the steps:

- **dispatch** (派遣): only for task types the district approved (article 10,
  ``approval_state = 'approved'``), else :class:`~gis_grid.errors.RuleError` naming the type
  and its state. A ``deadline`` is required, later than now and than the report; it sets
  ``dispatched_at`` (the deadline clock starts) and ``deadline``.
- **close** sets ``closed_at``; **evaluate** requires ``evaluation``, 1 (poor) to 5
  (excellent).
- ``deadline`` is accepted only with a dispatch and ``evaluation`` only with an evaluation, so
  that a value given by mistake is refused, not silently dropped.

Every transition is recorded in ``incident_events`` (from, to, who, when, note) in the same
transaction as the change. The incident's row is read ``FOR UPDATE``: of two concurrent
transitions from the same state, the second waits for the first to commit, then sees the new
state and is refused (:class:`~gis_grid.errors.WorkflowError`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis_grid.db.models import ApprovalState, IncidentStatus
from gis_grid.errors import NotFoundError, RuleError, WorkflowError
from gis_grid.incidents._sql import INSERT_EVENT_SQL, LOCK_INCIDENT_SQL, UPDATE_INCIDENT_SQL
from gis_grid.privacy import redact_text

__all__ = [
    "CHINA_TIME",
    "EVALUATION_RANGE",
    "NOTE_REQUIRED",
    "TRANSITIONS",
    "EventRecord",
    "allowed_next",
    "check_transition",
    "record_event",
    "transition_incident",
]

S = IncidentStatus

#: The allowed transitions of an incident: current status → the statuses it may go to next.
TRANSITIONS: Mapping[IncidentStatus, frozenset[IncidentStatus]] = MappingProxyType(
    {
        S.REPORTED: frozenset({S.ACCEPTED, S.CLOSED}),
        S.ACCEPTED: frozenset({S.DISPATCHED, S.CLOSED}),
        S.DISPATCHED: frozenset({S.HANDLED}),
        S.HANDLED: frozenset({S.FEEDBACK, S.DISPATCHED}),
        S.FEEDBACK: frozenset({S.CLOSED, S.DISPATCHED}),
        S.CLOSED: frozenset({S.EVALUATED}),
        S.EVALUATED: frozenset(),
    }
)

#: Transitions off the straight line, which need a ``note`` giving the reason.
NOTE_REQUIRED: Mapping[tuple[IncidentStatus, IncidentStatus], str] = MappingProxyType(
    {
        (S.REPORTED, S.CLOSED): "rejected or duplicate (不予立案)",
        (S.ACCEPTED, S.CLOSED): "rejected or duplicate (不予立案)",
        (S.HANDLED, S.DISPATCHED): "rework after failed verification (返工)",
        (S.FEEDBACK, S.DISPATCHED): "rework after failed verification (返工)",
    }
)

#: Allowed evaluations (评价), 1 poor to 5 excellent.
EVALUATION_RANGE = range(1, 6)

#: Time zone of timestamps given without an offset: China Standard Time (UTC+08:00).
CHINA_TIME = dt.timezone(dt.timedelta(hours=8), "CST")

_ORDER = tuple(S)


def allowed_next(status: IncidentStatus | str) -> list[str]:
    """List the statuses an incident in ``status`` may go to, in workflow order.

    Examples
    --------
    >>> allowed_next("feedback")
    ['dispatched', 'closed']
    """
    nexts = TRANSITIONS[S(status)]
    return [s.value for s in _ORDER if s in nexts]


def check_transition(current: IncidentStatus | str, to: IncidentStatus | str) -> None:
    """Raise :class:`WorkflowError` unless ``current → to`` is in :data:`TRANSITIONS`.

    Raises
    ------
    WorkflowError
        Naming the current status and the allowed next ones.

    Examples
    --------
    >>> check_transition("reported", "accepted")
    >>> check_transition("reported", "handled")
    Traceback (most recent call last):
    ...
    gis_grid.errors.WorkflowError: cannot go from 'reported' to 'handled'; allowed next: \
accepted, closed
    """
    here, there = S(current), S(to)
    if there in TRANSITIONS[here]:
        return
    nexts = allowed_next(here)
    shown = ", ".join(nexts) if nexts else "none (final state)"
    msg = f"cannot go from {here.value!r} to {there.value!r}; allowed next: {shown}"
    raise WorkflowError(
        msg,
        problems=[{"field": "to", "current": here.value, "to": there.value, "allowed": nexts}],
    )


@dataclass(frozen=True)
class EventRecord:
    """One recorded step of an incident's workflow (note with ID/phone numbers redacted)."""

    id: int
    incident_id: int
    from_status: str | None
    to_status: str
    at: dt.datetime
    actor: str | None
    note: str | None
    attachments: tuple[int, ...] = ()


def record_event(
    conn: Connection,
    incident_id: int,
    from_status: IncidentStatus | str | None,
    to_status: IncidentStatus | str,
    *,
    actor: str,
    note: str | None = None,
) -> EventRecord:
    """Insert one row of ``incident_events`` (who, when, note) and return it."""
    source = None if from_status is None else S(from_status).value
    target = S(to_status).value
    params = {
        "incident_id": incident_id,
        "from_status": source,
        "to_status": target,
        "actor": actor,
        "note": note,
    }
    row = conn.execute(sa.text(INSERT_EVENT_SQL), params).one()
    return EventRecord(
        id=int(row.id),
        incident_id=incident_id,
        from_status=source,
        to_status=target,
        at=row.at,
        actor=actor,
        note=redact_text(note),
    )


def _clean_note(note: str | None) -> str | None:
    text = None if note is None else note.strip()
    return text or None


def _aware(instant: dt.datetime) -> dt.datetime:
    return instant if instant.tzinfo is not None else instant.replace(tzinfo=CHINA_TIME)


def _check_step(
    row: Any,
    to: IncidentStatus,
    *,
    note: str | None,
    deadline: dt.datetime | None,
    evaluation: int | None,
) -> list[dict[str, object]]:
    """List the problems with the step's own data (the transition itself is already allowed)."""
    current = S(row.status)
    problems: list[dict[str, object]] = []
    reason = NOTE_REQUIRED.get((current, to))
    if reason is not None and note is None:
        problems.append(
            {"field": "note", "msg": f"{current.value} → {to.value} is a {reason}: give a note"}
        )
    if to is S.DISPATCHED:
        if deadline is None:
            problems.append(
                {"field": "deadline", "msg": "a dispatch needs a deadline (the clock starts now)"}
            )
        elif deadline <= row.now:
            problems.append(
                {
                    "field": "deadline",
                    "msg": f"deadline {deadline.isoformat()} is not in the future "
                    f"(now {row.now.isoformat()})",
                }
            )
        elif deadline <= row.reported_at:
            problems.append(
                {
                    "field": "deadline",
                    "msg": f"deadline {deadline.isoformat()} is not after the report "
                    f"({row.reported_at.isoformat()})",
                }
            )
    elif deadline is not None:
        problems.append(
            {"field": "deadline", "msg": f"a deadline is set only by a dispatch, not by {to.value}"}
        )
    if to is S.EVALUATED:
        if evaluation is None:
            problems.append({"field": "evaluation", "msg": "an evaluation (1-5) is required"})
        elif evaluation not in EVALUATION_RANGE:
            problems.append(
                {"field": "evaluation", "msg": f"evaluation must be 1 to 5, got {evaluation}"}
            )
    elif evaluation is not None:
        problems.append(
            {
                "field": "evaluation",
                "msg": f"an evaluation is given only with 'evaluated', not with {to.value}",
            }
        )
    return problems


def transition_incident(
    conn: Connection,
    incident_id: int,
    to: IncidentStatus | str,
    *,
    actor: str,
    note: str | None = None,
    deadline: dt.datetime | None = None,
    evaluation: int | None = None,
) -> EventRecord:
    """Move an incident one step in its workflow and record the step.

    Runs in the caller's transaction: the incident's row is locked (``FOR UPDATE``) until it
    ends, the checks see the committed state, and the change and its event are stored together.

    Parameters
    ----------
    conn
        Connection in a read-write transaction.
    incident_id
        The incident.
    to
        The next status; see :data:`TRANSITIONS`.
    actor
        Who makes the step (recorded in the history).
    note
        Why; required for closing without dispatch and for rework (:data:`NOTE_REQUIRED`).
    deadline
        Required for a dispatch: later than now and than the report. Without an offset it is
        China Standard Time.
    evaluation
        Required for ``evaluated``: 1 (poor) to 5 (excellent).

    Returns
    -------
    EventRecord
        The recorded step.

    Raises
    ------
    NotFoundError
        No such incident.
    WorkflowError
        ``to`` is not an allowed next status (the message names the current and allowed ones).
    RuleError
        Dispatch of a task type the district has not approved (article 10), or a missing or
        wrong ``note``/``deadline``/``evaluation`` (``problems`` names each field).

    Examples
    --------
    >>> with engine.begin() as conn:  # doctest: +SKIP
    ...     transition_incident(conn, 7, "accepted", actor="centre:王主任")
    """
    target = S(to)
    row = conn.execute(sa.text(LOCK_INCIDENT_SQL), {"id": incident_id}).one_or_none()
    if row is None:
        msg = f"incident {incident_id} not found; GET /api/v1/incidents lists the incidents"
        raise NotFoundError(msg)
    check_transition(row.status, target)
    if target is S.DISPATCHED and row.approval_state != ApprovalState.APPROVED.value:
        msg = (
            f"task type {row.task_type_code!r} ({row.task_type}) is {row.approval_state!r}, "
            "not approved by the district: only approved kinds of work can be dispatched "
            "(article 10, 准入)"
        )
        raise RuleError(
            msg,
            problems=[
                {
                    "rule": "article 10",
                    "field": "task_type_code",
                    "task_type": row.task_type_code,
                    "approval_state": row.approval_state,
                }
            ],
        )
    note = _clean_note(note)
    deadline = None if deadline is None else _aware(deadline)
    problems = _check_step(row, target, note=note, deadline=deadline, evaluation=evaluation)
    if problems:
        detail = "; ".join(f"{p['field']}: {p['msg']}" for p in problems)
        msg = f"incident {incident_id} {row.status} → {target.value}: {detail}"
        raise RuleError(msg, problems=problems)
    conn.execute(
        sa.text(UPDATE_INCIDENT_SQL),
        {
            "id": incident_id,
            "to_status": target.value,
            "dispatch": target is S.DISPATCHED,
            "deadline": deadline,
            "close": target is S.CLOSED,
            "evaluation": evaluation,
        },
    )
    return record_event(conn, incident_id, row.status, target, actor=actor, note=note)
