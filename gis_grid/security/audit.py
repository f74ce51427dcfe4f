"""The append-only audit log of accesses to personal data (PIPL: access control with logs).

Every unmasking is written here, granted or not: who (user name and role), whose record
(resident id), which fields, why (the reason the caller gave), when, and the outcome. The
application role may only insert and read; a trigger refuses UPDATE, DELETE and TRUNCATE for
every role, the owner included (migration 0005).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

__all__ = ["AuditRecord", "Outcome", "count_recent", "read_log", "record"]

Outcome = Literal["granted", "denied", "rate_limited"]


@dataclass(frozen=True)
class AuditRecord:
    """One entry of the audit log."""

    id: int
    at: dt.datetime
    username: str
    role: str
    action: str
    resident_id: int | None
    fields: list[str]
    reason: str | None
    outcome: str
    detail: str | None


def record(
    conn: Connection,
    *,
    username: str,
    role: str,
    action: str,
    resident_id: int | None,
    fields: Sequence[str],
    reason: str | None,
    outcome: Outcome,
    detail: str | None = None,
) -> int:
    """Append an entry; returns its id.

    Parameters
    ----------
    conn
        Connection in a transaction (commit it even when the request itself fails, so
        that refusals are logged too).
    username, role
        Who asked.
    action
        What: ``"unmask"``.
    resident_id
        Whose record.
    fields
        Which personal fields.
    reason
        Why, as the caller gave it.
    outcome
        ``granted``, ``denied`` (not found / not allowed) or ``rate_limited``.
    detail
        A short note (why refused).
    """
    new_id = conn.scalar(
        sa.text(
            "INSERT INTO audit_log (username, role, action, resident_id, fields, reason, "
            "outcome, detail) VALUES (:u, :r, :a, :res, :f, :why, :o, :d) RETURNING id"
        ),
        {
            "u": username,
            "r": role,
            "a": action,
            "res": resident_id,
            "f": list(fields),
            "why": reason,
            "o": outcome,
            "d": detail,
        },
    )
    return int(new_id)


def count_recent(conn: Connection, username: str, action: str, *, seconds: int) -> int:
    """How many entries ``username`` made for ``action`` in the last ``seconds`` (rate limit)."""
    return int(
        conn.scalar(
            sa.text(
                "SELECT count(*) FROM audit_log WHERE username = :u AND action = :a "
                "AND at > now() - make_interval(secs => :s)"
            ),
            {"u": username, "a": action, "s": seconds},
        )
        or 0
    )


def read_log(
    conn: Connection, *, username: str | None = None, resident_id: int | None = None
) -> list[AuditRecord]:
    """Entries, newest first, optionally of one user or one resident."""
    rows = (
        conn.execute(
            sa.text(
                "SELECT * FROM audit_log WHERE (:u IS NULL OR username = :u) "
                "AND (CAST(:r AS int) IS NULL OR resident_id = :r) ORDER BY id DESC"
            ),
            {"u": username, "r": resident_id},
        )
        .mappings()
        .all()
    )
    return [
        AuditRecord(
            id=int(row["id"]),
            at=row["at"],
            username=row["username"],
            role=row["role"],
            action=row["action"],
            resident_id=row["resident_id"],
            fields=list(row["fields"]),
            reason=row["reason"],
            outcome=row["outcome"],
            detail=row["detail"],
        )
        for row in rows
    ]
