"""Stored AB posts (AB岗), members' absences and the day's cover (article 11).

The pairing is computed exactly as the command line's ``gis-grid ab-posts`` does
(:func:`gis_grid.town.town_ab_posts` on :func:`gis_grid.db.read.read_town`: adjacency with
rivers as barriers, weighted by the households' load and the members' homes) and stored in
``ab_posts`` as the town's current pairing, the previous one closed (``valid_to``), so the
history of who backed up whom is kept. A planner may also set one grid's cover by hand: an
adjacent grid, or any grid of the town with a reason.

:func:`cover_on` answers "who covers whom today": for each grid whose appointed member is
absent on the day, the stored AB partner if they are present and free, else the fallback of
:func:`gis_grid.backup.plan_absence` (the rest of the ring, an adjacent grid's member, one of
the second ring), each present member covering at most ``max_extra`` grids; grids nobody can
cover are listed with the reason. Row-level access uses it too: a member covering an absent
member's grid may see that grid's rows on that day (:meth:`DayCover.grids_covered_by`).

Examples
--------
>>> with engine.begin() as conn:  # doctest: +SKIP
...     store_ab_posts(conn, compute_ab_posts(conn, "511703109"), source="centre")
...     add_absence(conn, "M511703109001001", dt.date(2025, 3, 1), dt.date(2025, 3, 5),
...                 reason="病假", actor="centre")
...     cover_on(conn, "511703109", dt.date(2025, 3, 2)).assignments[0].cover_member
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis_grid.backup import ABPlan, plan_absence
from gis_grid.db.read import read_town
from gis_grid.errors import NotFoundError, RuleError
from gis_grid.members import _sql
from gis_grid.privacy import mask_phone
from gis_grid.town import town_ab_posts, town_adjacency, town_balance

__all__ = [
    "ABPostRecord",
    "CoverAssignment",
    "DayCover",
    "MemberRef",
    "StoredPairing",
    "UncoveredGrid",
    "compute_ab_posts",
    "cover_on",
    "grids_covered_by",
    "read_ab_posts",
    "set_ab_post",
    "store_ab_posts",
]


@dataclass(frozen=True)
class MemberRef:
    """A member by code and name (public: members are publicised); phone masked."""

    code: str
    name: str
    phone: str | None


def _ref(code: str | None, name: str | None, phone: str | None) -> MemberRef | None:
    return None if code is None else MemberRef(code, name or "", mask_phone(phone))


@dataclass(frozen=True)
class ABPostRecord:
    """Who covers one grid: ``cover_grid_code``'s member when ``grid_code``'s is absent."""

    grid_code: str
    grid: str | None
    member: MemberRef | None
    cover_grid_code: str
    cover_grid: str | None
    cover_member: MemberRef | None
    link: str
    group: int
    valid_from: dt.datetime | None
    source: str | None
    stale: bool


@dataclass(frozen=True)
class StoredPairing:
    """A town's AB posts: stored (or, for a preview, computed and not stored)."""

    town_code: str
    stored: bool
    posts: tuple[ABPostRecord, ...]
    uncovered: tuple[tuple[str, str], ...] = ()
    closed: int = 0


def _town(conn: Connection, town: str) -> tuple[str, str]:
    row = conn.execute(sa.text("SELECT code, name FROM towns WHERE code = :t"), {"t": town}).first()
    if row is None:
        msg = f"town {town!r} not found; GET /api/v1/towns lists the towns"
        raise NotFoundError(msg, problems=[{"field": "code", "value": town}])
    return str(row[0]), str(row[1])


def compute_ab_posts(conn: Connection, town: str) -> ABPlan:
    """Compute the town's AB-post pairing as ``gis-grid ab-posts`` does.

    Parameters
    ----------
    conn
        Connection to the platform database (read inside its transaction).
    town
        9-digit town code.

    Returns
    -------
    gis_grid.backup.ABPlan

    Raises
    ------
    NotFoundError
        Unknown town, or a town without grids.
    """
    data = read_town(conn, town)
    return town_ab_posts(data, town_adjacency(data), balance=town_balance(data))


def _plan_records(conn: Connection, town: str, plan: ABPlan) -> list[ABPostRecord]:
    """Return the computed pairing as records, named and with members, like the stored one."""
    names: dict[str, str | None] = {
        str(r[0]): r[1] for r in conn.execute(sa.text(_sql.GRID_NAMES), {"town": town})
    }
    members = {
        row["grid_code"]: _ref(row["code"], row["name"], row["phone"])
        for row in conn.execute(sa.text(_sql.APPOINTED_IN_TOWN), {"town": town}).mappings()
    }
    return [
        ABPostRecord(
            grid_code=str(grid),
            grid=names.get(str(grid)),
            member=members.get(str(grid)),
            cover_grid_code=str(row["backup_grid"]),
            cover_grid=names.get(str(row["backup_grid"])),
            cover_member=members.get(str(row["backup_grid"])),
            link=str(row["link"]),
            group=int(row["group"]),
            valid_from=None,
            source=None,
            stale=False,
        )
        for grid, row in plan.cover.iterrows()
    ]


def store_ab_posts(
    conn: Connection, town: str, plan: ABPlan, *, actor: str, dry_run: bool = False
) -> StoredPairing:
    """Store ``plan`` as the town's current pairing, closing the previous one.

    Parameters
    ----------
    conn
        A connection in a read-write transaction.
    town
        9-digit town code.
    plan
        :func:`compute_ab_posts` (or :func:`gis_grid.backup.pair_ab_posts` on the town).
    actor
        Who stores it (recorded in ``source``).
    dry_run
        Only return the pairing: nothing is written.

    Returns
    -------
    StoredPairing
        As :func:`read_ab_posts` reads it back (``stored=False`` for a dry run).
    """
    code, _ = _town(conn, town)
    uncovered = tuple((str(r.grid), str(r.reason)) for r in plan.uncovered.itertuples())
    if dry_run:
        # In the order read_ab_posts gives the stored pairing: by group, then grid.
        posts = sorted(_plan_records(conn, code, plan), key=lambda p: (p.group, p.grid_code))
        return StoredPairing(code, False, tuple(posts), uncovered)
    conn.execute(sa.text(_sql.LOCK_AB_POSTS), {"town": code})
    closed = conn.execute(sa.text(_sql.CLOSE_AB_POSTS), {"town": code}).rowcount
    source = f"pair_ab_posts (gis-grid ab-posts), stored by {actor}"
    rows = [
        {"town": code, "grid": str(grid), "cover": str(row["backup_grid"]),
         "link": str(row["link"]), "group_no": int(row["group"]), "source": source}
        for grid, row in plan.cover.iterrows()
    ]  # fmt: skip
    if rows:
        conn.execute(sa.text(_sql.INSERT_AB_POST), rows)
    stored = read_ab_posts(conn, code)
    return dataclasses.replace(stored, uncovered=uncovered, closed=int(closed or 0))


def read_ab_posts(conn: Connection, town: str, *, village: str | None = None) -> StoredPairing:
    """Return the town's current stored pairing (empty if none was stored).

    Parameters
    ----------
    conn
        Connection to the platform database.
    town
        9-digit town code.
    village
        Only the grids of this village (their covers may lie in another village).

    Raises
    ------
    NotFoundError
        Unknown town.
    """
    code, _ = _town(conn, town)
    rows = conn.execute(sa.text(_sql.AB_POSTS), {"town": code, "village": village}).mappings()
    posts = tuple(
        ABPostRecord(
            grid_code=r["grid_code"],
            grid=r["grid"],
            member=_ref(r["member_code"], r["member_name"], r["member_phone"]),
            cover_grid_code=r["cover_grid_code"],
            cover_grid=r["cover_grid"],
            cover_member=_ref(
                r["cover_member_code"], r["cover_member_name"], r["cover_member_phone"]
            ),
            link=r["link"],
            group=int(r["group_no"]),
            valid_from=r["valid_from"],
            source=r["source"],
            stale=bool(r["stale"]),
        )
        for r in rows
    )
    return StoredPairing(code, True, posts)


def _current_grid(conn: Connection, code: str, field: str) -> sa.RowMapping:
    row = conn.execute(sa.text(_sql.CURRENT_GRID), {"code": code}).mappings().first()
    if row is None:
        msg = f"{field} {code!r} is not a current grid (GET /api/v1/grids lists them)"
        raise NotFoundError(msg, problems=[{"field": field, "value": code}])
    return row


def set_ab_post(
    conn: Connection, grid: str, cover_grid: str, *, actor: str, reason: str | None = None
) -> ABPostRecord:
    """Set by hand which grid's member covers ``grid`` (replacing its current AB post).

    Parameters
    ----------
    conn
        A connection in a read-write transaction.
    grid, cover_grid
        Two current grids of one town.
    actor
        Who sets it (recorded in ``source``).
    reason
        Required when the grids share no border (article 11 pairs *adjacent* grids): why
        this cover anyway (e.g. the members live next to each other).

    Returns
    -------
    ABPostRecord
        ``link`` is ``"adjacent"``, or ``"manual"`` for an explained non-adjacent cover.

    Raises
    ------
    NotFoundError
        A grid that is not current.
    RuleError
        Same grid, grids of two towns, or non-adjacent grids without a reason.
    """
    if grid == cover_grid:
        msg = f"cover_grid_code {cover_grid} is the grid itself: a member cannot back up itself"
        raise RuleError(msg, problems=[{"field": "cover_grid_code", "value": cover_grid}])
    here = _current_grid(conn, grid, "grid_code")
    there = _current_grid(conn, cover_grid, "cover_grid_code")
    if here["town_code"] != there["town_code"]:
        msg = (
            f"cover_grid_code {cover_grid} is in town {there['town_code']}, grid {grid} in "
            f"{here['town_code']}: AB posts pair grids of one town"
        )
        raise RuleError(msg, problems=[{"field": "cover_grid_code", "value": cover_grid}])
    contact = conn.execute(sa.text(_sql.GRIDS_SHARE_BORDER), {"a": grid, "b": cover_grid}).one()
    explained = (reason or "").strip()
    if not contact.border and not explained:
        msg = (
            f"grids {grid} and {cover_grid} share no border ({contact.gap_m:.0f} m apart): "
            "article 11 pairs adjacent grids; give a reason to set this cover anyway"
        )
        raise RuleError(
            msg,
            problems=[{"field": "cover_grid_code", "rule": "adjacent", "gap_m": contact.gap_m}],
        )
    town = here["town_code"]
    conn.execute(sa.text(_sql.LOCK_AB_POSTS), {"town": town})
    group = conn.execute(sa.text(_sql.AB_POST_GROUP), {"grid": cover_grid}).scalar()
    conn.execute(sa.text(_sql.CLOSE_AB_POST), {"grid": grid})
    if group is None:
        group = conn.execute(sa.text(_sql.NEXT_AB_GROUP), {"town": town}).scalar_one()
    source = f"set by hand by {actor}" + (f": {explained}" if explained else "")
    conn.execute(
        sa.text(_sql.INSERT_AB_POST),
        {"town": town, "grid": grid, "cover": cover_grid, "group_no": int(group),
         "link": "adjacent" if contact.border else "manual", "source": source},
    )  # fmt: skip
    return next(p for p in read_ab_posts(conn, town).posts if p.grid_code == grid)


# --- the day's cover --------------------------------------------------------------------------


@dataclass(frozen=True)
class CoverAssignment:
    """A grid whose member is absent, and who covers it.

    ``rule`` is ``"ab_post"`` (the AB partner), ``"group"`` (another grid of the pair or
    ring), ``"neighbour"`` (an adjacent grid's member) or ``"second_ring"``.
    """

    grid_code: str
    grid: str | None
    absent: MemberRef
    absence_id: int
    absence_reason: str
    cover_member: MemberRef
    cover_grid_code: str
    rule: str
    hops: int


@dataclass(frozen=True)
class UncoveredGrid:
    """A grid whose member is absent and whom nobody can cover, and why."""

    grid_code: str
    grid: str | None
    absent: MemberRef
    absence_id: int
    reason: str


@dataclass(frozen=True)
class DayCover:
    """Who covers whom in a town on a day.

    ``pairing`` is ``"stored"`` (the stored AB posts), ``"computed"`` (none stored: the
    pairing ``gis-grid ab-posts`` computes) or ``"none"`` (nobody is absent).
    """

    town_code: str
    day: dt.date
    pairing: str
    assignments: tuple[CoverAssignment, ...]
    uncovered: tuple[UncoveredGrid, ...]

    def grids_covered_by(self, member: str) -> list[str]:
        """Return the grids ``member`` covers on the day (for row-level access)."""
        return [a.grid_code for a in self.assignments if a.cover_member.code == member]


def _with_stored(plan: ABPlan, stored: StoredPairing) -> ABPlan:
    """``plan`` (graph, load, members) with its pairing replaced by the stored one."""
    nodes = set(plan.graph.nodes)
    cover = {p.grid_code: p for p in stored.posts if {p.grid_code, p.cover_grid_code} <= nodes}
    by_group: dict[int, list[str]] = {}
    for post in cover.values():
        by_group.setdefault(post.group, []).append(post.grid_code)
    groups: list[tuple[str, ...]] = []
    position: dict[str, int] = {}
    for number in sorted(by_group):
        members = set(by_group[number])
        ring: list[str] = []
        # Follow grid -> its cover round the ring (g[i] is covered by g[i + 1]).
        for start in sorted(members):
            grid = start
            while grid in members and grid not in ring:
                ring.append(grid)
                grid = cover[grid].cover_grid_code
        groups.append(tuple(ring))
        position.update(dict.fromkeys(ring, len(groups) - 1))
    table = plan.members
    rows = [
        {
            "grid": grid,
            "group": position[grid],
            "kind": "pair" if len(groups[position[grid]]) == 2 else "ring",
            "backup_grid": post.cover_grid_code,
            "backup_member": next(iter(table.index[table["grid"] == post.cover_grid_code]), None),
            "link": post.link,
            "hops": 1 if post.link == "adjacent" else 2,
            "shared_m": 0.0,
            "gap_m": 0.0,
        }
        for grid, post in cover.items()
    ]
    frame = pd.DataFrame(rows, columns=[*plan.cover.columns, "grid"]).set_index("grid")
    return dataclasses.replace(plan, cover=frame, groups=tuple(groups))


def cover_on(
    conn: Connection,
    town: str,
    day: dt.date,
    *,
    village: str | None = None,
    max_extra: int = 1,
) -> DayCover:
    """Say who covers the grids of the members absent on ``day`` (应急替补, article 11).

    Parameters
    ----------
    conn
        Connection to the platform database.
    town
        9-digit town code.
    day
        The day.
    village
        Only report the grids of this village (covers may come from another village).
    max_extra
        Most grids one present member covers besides their own.

    Returns
    -------
    DayCover
        The stored AB partner covers first; else :func:`gis_grid.backup.plan_absence`'s
        fallback; grids left without cover are in ``uncovered`` with the reason.

    Raises
    ------
    NotFoundError
        Unknown town.

    Examples
    --------
    >>> cover = cover_on(conn, "511703109", dt.date(2025, 3, 2))  # doctest: +SKIP
    >>> cover.grids_covered_by("M511703109001002")  # doctest: +SKIP
    ['511703109001001']
    """
    code, _ = _town(conn, town)
    absent_rows = conn.execute(sa.text(_sql.ABSENT_ON), {"town": code, "day": day}).mappings()
    absent = {row["code"]: row for row in absent_rows}
    if not absent:
        return DayCover(code, day, "none", (), ())
    stored = read_ab_posts(conn, code)
    plan = compute_ab_posts(conn, code)
    pairing = "computed"
    if stored.posts:
        plan, pairing = _with_stored(plan, stored), "stored"
    names: dict[str, str | None] = {
        str(r[0]): r[1] for r in conn.execute(sa.text(_sql.GRID_NAMES), {"town": code})
    }
    people = {
        row["code"]: MemberRef(row["code"], row["name"], mask_phone(row["phone"]))
        for row in conn.execute(sa.text(_sql.APPOINTED_IN_TOWN), {"town": code}).mappings()
    }
    away = [m for m in absent if m in plan.members.index]
    by_grid = {str(row["grid_code"]): row for row in absent.values()}
    assignments, uncovered = [], []
    if away:
        result = plan_absence(plan, away, max_extra=max_extra, include_vacant=False, strict=False)
        for a in result.assignments.to_dict("records"):
            grid, who = str(a["grid"]), by_grid[str(a["grid"])]
            assignments.append(
                CoverAssignment(
                    grid_code=grid,
                    grid=names.get(grid),
                    absent=people[who["code"]],
                    absence_id=int(who["absence_id"]),
                    absence_reason=str(who["reason"]),
                    cover_member=people[str(a["cover_member"])],
                    cover_grid_code=str(a["cover_grid"]),
                    rule=str(a["rule"]),
                    hops=int(a["hops"]),
                )
            )
        for u in result.uncovered.to_dict("records"):
            grid, who = str(u["grid"]), by_grid[str(u["grid"])]
            uncovered.append(
                UncoveredGrid(
                    grid, names.get(grid), people[who["code"]], int(who["absence_id"]),
                    str(u["reason"]),
                )
            )  # fmt: skip
    # Members whose grid is not a current grid of the town (retired): nobody is planned.
    for member in set(absent) - set(away):
        row = absent[member]
        uncovered.append(
            UncoveredGrid(
                row["grid_code"], None, people[member], int(row["absence_id"]),
                f"grid {row['grid_code']} is not a current grid of town {code}",
            )
        )  # fmt: skip
    if village is not None:
        assignments = [a for a in assignments if a.grid_code.startswith(village)]
        uncovered = [u for u in uncovered if u.grid_code.startswith(village)]
    return DayCover(
        code,
        day,
        pairing,
        tuple(sorted(assignments, key=lambda a: a.grid_code)),
        tuple(sorted(uncovered, key=lambda u: u.grid_code)),
    )


def grids_covered_by(conn: Connection, member: str, day: dt.date) -> list[str]:
    """Return the grids an appointed member covers on ``day`` besides their own.

    For row-level access: a member covering an absent member's grid may see that grid's
    rows on that day. Cheap when nobody in the town is absent (one query).

    Parameters
    ----------
    conn
        Connection to the platform database.
    member
        Member code.
    day
        The day.

    Returns
    -------
    list of str
        Grid codes, empty for a member who covers nobody (or is not appointed).

    Raises
    ------
    NotFoundError
        No such member.
    """
    grid = conn.execute(
        sa.text("SELECT grid_code, status::text FROM members WHERE code = :c"), {"c": member}
    ).first()
    if grid is None:
        msg = f"member {member!r} not found; GET /api/v1/members lists the members"
        raise NotFoundError(msg, problems=[{"field": "code", "value": member}])
    if grid[0] is None or grid[1] != "appointed":
        return []
    return cover_on(conn, str(grid[0])[:9], day).grids_covered_by(member)
