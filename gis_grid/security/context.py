"""The caller's identity and grids, set on the connection for row-level security.

:func:`set_context` runs, inside the request's transaction,
``set_config('gis_grid.user' | 'gis_grid.role' | 'gis_grid.grids', ..., true)`` (the
``SET LOCAL`` form: the settings end with the transaction, so a pooled connection never
carries one caller's identity into another's request). The policies of migration 0005 read
``gis_grid.role`` and ``gis_grid.grids``; without them no row of households, residents,
incidents, patrol logs or attachments is visible.

A member's grids are their own (while appointed) and, on a day their AB partner (or the
fallback cover) covers an absent member's grid, that grid too
(:func:`gis_grid.members.cover.grids_covered_by`). Working that out may plan the day's cover,
so it is cached for a minute per member and day.
"""

from __future__ import annotations

import datetime as dt
import threading
import time

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis_grid.members.cover import grids_covered_by
from gis_grid.security.accounts import User
from gis_grid.security.roles import Role

__all__ = ["CHINA_TIME", "clear_cache", "member_grids", "set_context"]

#: The day of a request is the day in China (UTC+08:00).
CHINA_TIME = dt.timezone(dt.timedelta(hours=8))

_CACHE_SECONDS = 60.0
_cache: dict[tuple[str, dt.date], tuple[float, tuple[str, ...]]] = {}
_lock = threading.Lock()

_SET = sa.text(
    "SELECT set_config('gis_grid.user', :user, true), set_config('gis_grid.role', :role, true), "
    "set_config('gis_grid.grids', :grids, true)"
)


def clear_cache() -> None:
    """Forget the cached grids (after an absence or AB post changed, and in tests)."""
    with _lock:
        _cache.clear()


def member_grids(conn: Connection, member_code: str, day: dt.date) -> tuple[str, ...]:
    """Return the grids a member may see on ``day``: their own and those they cover.

    Parameters
    ----------
    conn
        Connection in the request's transaction. The cover is planned with a read-all
        context set locally, then replaced by the caller's (see :func:`set_context`).
    member_code
        The member's code.
    day
        The day.

    Returns
    -------
    tuple of str
        Grid codes; empty for a member who is not appointed (or no longer exists).
    """
    key = (member_code, day)
    now = time.monotonic()
    with _lock:
        hit = _cache.get(key)
    if hit is not None and now - hit[0] < _CACHE_SECONDS:
        return hit[1]
    row = conn.execute(
        sa.text("SELECT code, grid_code, status::text FROM members WHERE code = :c"),
        {"c": member_code},
    ).first()
    if row is None or row[1] is None or row[2] != "appointed":
        grids: tuple[str, ...] = ()
    else:
        # The cover is planned on the whole town's loads: read them with a read-all context
        # (server-side only; the caller's own context replaces it before any route query).
        conn.execute(_SET, {"user": "system:cover", "role": Role.ANALYST.value, "grids": ""})
        covered = grids_covered_by(conn, str(row[0]), day)
        grids = (str(row[1]), *sorted(set(covered) - {str(row[1])}))
    with _lock:
        _cache[key] = (now, grids)
    return grids


def set_context(conn: Connection, user: User, *, day: dt.date | None = None) -> tuple[str, ...]:
    """Set the caller's user name, role and grids for the rest of the transaction.

    Parameters
    ----------
    conn
        Connection inside a transaction (``set_config(..., true)`` lasts until its end).
    user
        The logged-in account.
    day
        The day for the AB cover; default today in China.

    Returns
    -------
    tuple of str
        The grids set (empty for roles other than ``member``).

    Examples
    --------
    >>> with engine.begin() as conn:  # doctest: +SKIP
    ...     set_context(conn, user)
    ...     conn.scalar(sa.text("SELECT count(*) FROM residents"))  # the member's grids only
    """
    grids: tuple[str, ...] = ()
    if user.role is Role.MEMBER and user.member_code is not None:
        grids = member_grids(conn, user.member_code, day or dt.datetime.now(CHINA_TIME).date())
    conn.execute(_SET, {"user": user.username, "role": user.role.value, "grids": ",".join(grids)})
    return grids
