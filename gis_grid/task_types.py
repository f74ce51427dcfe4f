"""Admission (准入) of new kinds of grid work (article 10).

拟新纳入网格服务管理的工作事项，由乡镇综治中心向区提出申请，经区综治中心审核，报区政府批准后方可实施:
a new kind of work is *proposed* (requested) at the town, the town centre *applies* to the
district, the district centre *reviews*, and the district government *approves* — or the
review rejects it. Only approved kinds can be dispatched
(:func:`gis_grid.incidents.transition_incident`).

:data:`APPROVAL_TRANSITIONS` is the one table of allowed steps: ``proposed → applied →
reviewed → approved | rejected``, and ``applied → rejected`` (the district centre refuses at
review without forwarding, as in the sample's rejected types). ``approved`` and ``rejected``
are final: a refused kind comes back as a new proposal under a new code. Each step stamps its
date (``applied_on``, ``reviewed_on``, ``decided_on``) and a decision its authority
(``decided_by``).

The schema keeps no history table for task types: a step's ``note`` and actor are written to
this module's log (``gis_grid.task_types``) until one exists.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Mapping
from types import MappingProxyType

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis_grid.db.models import ApprovalState
from gis_grid.errors import DuplicateCodeError, NotFoundError, RuleError, WorkflowError
from gis_grid.queries import TaskTypeRecord, get_task_type

__all__ = [
    "APPROVAL_TRANSITIONS",
    "CODE_PATTERN",
    "create_task_type",
    "transition_task_type",
]

logger = logging.getLogger(__name__)

A = ApprovalState

#: The allowed steps of a task type's admission: current state → the states it may go to.
APPROVAL_TRANSITIONS: Mapping[ApprovalState, frozenset[ApprovalState]] = MappingProxyType(
    {
        A.PROPOSED: frozenset({A.APPLIED}),
        A.APPLIED: frozenset({A.REVIEWED, A.REJECTED}),
        A.REVIEWED: frozenset({A.APPROVED, A.REJECTED}),
        A.APPROVED: frozenset(),
        A.REJECTED: frozenset(),
    }
)

#: A task type's code: a letter or digit, then letters, digits, ``_`` or ``-`` (32 at most).
CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$"

#: The date column each state stamps.
_DATE_COLUMN = {
    A.APPLIED: "applied_on",
    A.REVIEWED: "reviewed_on",
    A.APPROVED: "decided_on",
    A.REJECTED: "decided_on",
}
_ORDER = tuple(A)

_CHINA_TIME = dt.timezone(dt.timedelta(hours=8), "CST")


def _today() -> dt.date:
    return dt.datetime.now(_CHINA_TIME).date()


def create_task_type(
    conn: Connection,
    *,
    code: str,
    name: str,
    sla_days: int | None = None,
    actor: str | None = None,
) -> TaskTypeRecord:
    """Propose a new kind of grid work; it starts ``proposed`` (requested) and not assignable.

    Parameters
    ----------
    conn
        Connection in a read-write transaction.
    code
        New code matching :data:`CODE_PATTERN` (e.g. ``"T19"``).
    name
        What the work is (e.g. ``"防溺水宣传巡查"``).
    sla_days
        Handling time limit once dispatched, in days (0 or more).
    actor
        Who requests it (recorded as the first step of its history).

    Returns
    -------
    TaskTypeRecord

    Raises
    ------
    RuleError
        Malformed code, empty name or negative ``sla_days`` (``problems`` names the field).
    DuplicateCodeError
        The code exists already.
    """
    problems: list[dict[str, object]] = []
    if not re.fullmatch(CODE_PATTERN, code):
        problems.append({"field": "code", "msg": f"code {code!r} must match {CODE_PATTERN}"})
    if not name.strip():
        problems.append({"field": "name", "msg": "name must not be empty"})
    if sla_days is not None and sla_days < 0:
        problems.append({"field": "sla_days", "msg": f"sla_days must be >= 0, got {sla_days}"})
    if problems:
        raise RuleError("; ".join(str(p["msg"]) for p in problems), problems=problems)
    if conn.scalar(sa.text("SELECT 1 FROM task_types WHERE code = :c"), {"c": code}):
        msg = f"task type {code!r} exists already; GET /api/v1/task-types/{code} shows it"
        raise DuplicateCodeError(msg, problems=[{"field": "code", "value": code}])
    conn.execute(
        sa.text(
            "INSERT INTO task_types (code, name, approval_state, sla_days, source) "
            "VALUES (:code, :name, 'proposed', :sla_days, 'api')"
        ),
        {"code": code, "name": name.strip(), "sla_days": sla_days},
    )
    conn.execute(
        sa.text(
            "INSERT INTO task_type_changes (task_type_code, to_state, effective_on, actor) "
            "VALUES (:code, 'proposed', :day, :actor)"
        ),
        {"code": code, "day": _today(), "actor": actor},
    )
    return get_task_type(conn, code)


def _allowed(state: ApprovalState) -> list[str]:
    return [s.value for s in _ORDER if s in APPROVAL_TRANSITIONS[state]]


def transition_task_type(
    conn: Connection,
    code: str,
    to: ApprovalState | str,
    *,
    actor: str,
    decided_by: str | None = None,
    on: dt.date | None = None,
    note: str | None = None,
) -> TaskTypeRecord:
    """Move a task type one step through its admission, under a row lock.

    Parameters
    ----------
    conn
        Connection in a read-write transaction.
    code
        The task type.
    to
        The next state (:data:`APPROVAL_TRANSITIONS`).
    actor
        Who records the step.
    decided_by
        The deciding authority (e.g. ``"区人民政府"``, ``"区综治中心"``): required for
        ``approved`` and ``rejected``, refused otherwise.
    on
        The day of the step (default today, China Standard Time): not in the future and not
        before the previous step's date.
    note
        Why (logged; see the module docstring).

    Returns
    -------
    TaskTypeRecord
        The task type after the step.

    Raises
    ------
    NotFoundError
        No such task type.
    WorkflowError
        The step is not allowed from the current state (the message names both and the
        allowed next states).
    RuleError
        ``decided_by`` missing or out of place, or ``on`` out of order.
    """
    target = A(to)
    row = conn.execute(
        sa.text(
            "SELECT approval_state::text AS state, applied_on, reviewed_on FROM task_types "
            "WHERE code = :code FOR UPDATE"
        ),
        {"code": code},
    ).one_or_none()
    if row is None:
        msg = f"task type {code!r} not found; GET /api/v1/task-types lists them"
        raise NotFoundError(msg)
    current = A(row.state)
    if target not in APPROVAL_TRANSITIONS[current]:
        nexts = _allowed(current)
        shown = ", ".join(nexts) if nexts else "none (final state)"
        msg = (
            f"task type {code!r} cannot go from {current.value!r} to {target.value!r}; "
            f"allowed next: {shown}"
        )
        raise WorkflowError(
            msg,
            problems=[
                {"field": "to", "current": current.value, "to": target.value, "allowed": nexts}
            ],
        )
    day = on if on is not None else _today()
    decided = (decided_by or "").strip() or None
    problems: list[dict[str, object]] = []
    deciding = target in {A.APPROVED, A.REJECTED}
    if deciding and decided is None:
        problems.append(
            {"field": "decided_by", "msg": f"{target.value} needs decided_by (the authority)"}
        )
    if not deciding and decided is not None:
        problems.append(
            {
                "field": "decided_by",
                "msg": f"decided_by is given only with a decision, not with {target.value}",
            }
        )
    previous = [d for d in (row.applied_on, row.reviewed_on) if d is not None]
    if day > _today():
        problems.append({"field": "on", "msg": f"on={day} is in the future"})
    elif previous and day < max(previous):
        problems.append(
            {"field": "on", "msg": f"on={day} is before the previous step ({max(previous)})"}
        )
    if problems:
        raise RuleError("; ".join(str(p["msg"]) for p in problems), problems=problems)
    column = _DATE_COLUMN[target]
    conn.execute(
        sa.text(
            f"UPDATE task_types SET approval_state = CAST(:to AS approval_state), "
            f"{column} = :day, decided_by = coalesce(:decided_by, decided_by) WHERE code = :code"
        ),
        {"to": target.value, "day": day, "decided_by": decided, "code": code},
    )
    conn.execute(
        sa.text(
            "INSERT INTO task_type_changes "
            "(task_type_code, from_state, to_state, effective_on, actor, decided_by, note) "
            "VALUES (:code, CAST(:from_state AS approval_state), CAST(:to AS approval_state), "
            ":day, :actor, :decided_by, :note)"
        ),
        {
            "code": code,
            "from_state": current.value,
            "to": target.value,
            "day": day,
            "actor": actor,
            "decided_by": decided,
            "note": note,
        },
    )
    return get_task_type(conn, code)
