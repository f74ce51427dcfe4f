"""Supervision (督办, article 4): overdue incidents per grid and per member.

An incident is overdue when its deadline has passed and it is not closed or evaluated (the
same rule as the ``overdue`` filter of :func:`gis_grid.queries.incident_page`, which lists
them). This module adds what the centre supervises with: counts and days overdue per grid and
per responsible member, and the most overdue items first.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis_grid.incidents._sql import OVERDUE_ITEMS_SQL, OVERDUE_SQL
from gis_grid.queries import Where

__all__ = ["OverdueGroup", "OverdueItem", "OverdueSummary", "overdue_summary"]


@dataclass(frozen=True)
class OverdueGroup:
    """Overdue incidents of one grid or one member (``key`` is the grid or member code).

    ``key`` is ``None`` for incidents without a grid (or member). Days are fractional.
    """

    key: str | None
    name: str | None
    village_code: str | None
    village: str | None
    overdue: int
    max_days: float
    mean_days: float


@dataclass(frozen=True)
class OverdueItem:
    """One overdue incident and how many days past its deadline it is."""

    id: int
    task_type_code: str
    status: str
    deadline: dt.datetime
    days_overdue: float
    grid_code: str | None
    village_code: str | None
    village: str | None
    member_code: str | None
    member: str | None


@dataclass(frozen=True)
class OverdueSummary:
    """Overdue incidents: the total, per grid, per member, and the most overdue items."""

    overdue: int
    by_grid: list[OverdueGroup]
    by_member: list[OverdueGroup]
    items: list[OverdueItem]


def overdue_summary(
    conn: Connection,
    *,
    town: str | None = None,
    village: str | None = None,
    grid: str | None = None,
    limit: int = 100,
) -> OverdueSummary:
    """Summarise the overdue incidents for supervision (督办).

    Parameters
    ----------
    conn
        Connection to the platform database.
    town, village, grid
        Only incidents of this town, village or grid.
    limit
        At most this many items (most overdue first); the counts cover all.

    Returns
    -------
    OverdueSummary
        Groups ordered by count (descending) then code. The responsible member is the one
        assigned when the incident was reported or, for incidents recorded before assignment,
        the grid's appointed member.

    Examples
    --------
    >>> s = overdue_summary(conn, town="511703109")  # doctest: +SKIP
    >>> s.by_grid[0].key, s.by_grid[0].overdue  # doctest: +SKIP
    ('511703109003002', 3)
    """
    where = Where().places(town=town, village=village, grid=grid)
    groups: dict[str, list[OverdueGroup]] = {"grid": [], "member": []}
    rows = conn.execute(sa.text(OVERDUE_SQL.format(where=where.sql)), where.params)
    for r in rows:
        groups[r.level].append(
            OverdueGroup(
                key=None if r.key is None else str(r.key),
                name=r.member_name,
                village_code=r.village_code,
                village=r.village,
                overdue=int(r.overdue),
                max_days=round(float(r.max_days), 2),
                mean_days=round(float(r.mean_days), 2),
            )
        )
    items = [
        OverdueItem(
            id=int(r.id),
            task_type_code=r.task_type_code,
            status=r.status,
            deadline=r.deadline,
            days_overdue=round(float(r.days), 2),
            grid_code=r.grid_code,
            village_code=r.village_code,
            village=r.village,
            member_code=r.member_code,
            member=r.member_name,
        )
        for r in conn.execute(
            sa.text(OVERDUE_ITEMS_SQL.format(where=where.sql)), {**where.params, "limit": limit}
        )
    ]
    total = sum(g.overdue for g in groups["grid"])
    return OverdueSummary(total, groups["grid"], groups["member"], items)
