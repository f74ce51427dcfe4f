"""The editing operations on the database: redraw or rename, split, merge (one transaction).

Each operation: lock the village and its neighbours, check ``If-Match`` against the current
versions, compute the new grids in memory (:mod:`~gis_grid.edit._boundary`, ``_split``,
``_merge``), check them, write a new version of **only the grids that changed** (closing the
previous at the same instant), re-assign the points of the changed grids incrementally
(:func:`gis_grid.assign.reassign_in_database`), and report. Everything runs in a savepoint: an
error leaves nothing behind, and a dry run is the same work rolled back at the end, so its
answer (shapes, loads, points moved) is exactly what the real edit would do.

Why not :func:`gis_grid.db.plans.apply_plan`: it closes and re-inserts every grid of the
village, so the history would claim that grids the edit never touched changed; here history
says which grids changed. A drawn plan for a whole village still goes through ``apply_plan``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import shapely
import sqlalchemy as sa

from gis_grid import queries
from gis_grid.assign import ASSIGNED_TABLES, reassign_in_database
from gis_grid.edit._boundary import redraw
from gis_grid.edit._checks import TOLERANCE_M, check_line, check_polygon, version_tag
from gis_grid.edit._faces import Layout, Outcome
from gis_grid.edit._merge import merge
from gis_grid.edit._split import split
from gis_grid.edit._store import (
    CurrentGrid,
    check_versions,
    current_grid,
    lock_villages,
    new_grid_name,
    next_grid_code,
    read_layout,
    village_at,
    write_versions,
)
from gis_grid.errors import ConflictError
from gis_grid.privacy import mask_phone

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

__all__ = ["GridChange", "GridEdit", "edit_grid", "merge_grids", "split_grid"]


@dataclass(frozen=True)
class GridChange:
    """One grid an edit changed.

    Attributes
    ----------
    code
        The grid.
    change
        ``redrawn`` (new shape), ``added`` (new code), ``retired`` (closed, no successor),
        ``noded`` (same shape, a vertex added where a moved edge meets it), ``renamed``.
    version, previous_version
        The version written (``None`` if retired) and the one closed (``None`` if added).
    households, people
        Assigned to the grid after the edit (0 when retired).
    area_km2
        Area after the edit (``None`` when retired).
    """

    code: str
    change: str
    version: int | None
    previous_version: int | None
    households: int
    people: int
    area_km2: float | None

    @property
    def etag(self) -> str | None:
        """ETag of the new version (``None`` when retired)."""
        return None if self.version is None else version_tag(self.code, self.version)


@dataclass(frozen=True)
class GridEdit:
    """What an edit did (or, for a dry run, would do).

    Attributes
    ----------
    operation
        ``redraw``, ``rename``, ``split`` or ``merge``.
    dry_run
        True when nothing was written.
    valid_from
        When the new versions start (the transaction's ``now()``).
    grid
        The current version of the grid named in the request (the kept grid of a merge) as a
        GeoJSON feature, with its households, people and member.
    changes
        Every grid changed, as :class:`GridChange` (empty if the request changed nothing).
    features
        GeoJSON features of the changed grids that remain current (for a map preview).
    points_moved
        Per point table, rows whose grid changed.
    points_unassigned
        Points of the town outside every grid after the edit.
    retired_members
        Appointed members of retired grids (``code``, ``name``, masked ``phone``,
        ``grid_code``): they stay appointed to a retired code until someone decides.
    grids_without_member
        Current changed grids with no appointed member (e.g. the new piece of a split).
    """

    operation: str
    dry_run: bool
    valid_from: dt.datetime
    grid: dict[str, Any]
    changes: list[GridChange] = field(default_factory=list)
    features: list[dict[str, Any]] = field(default_factory=list)
    points_moved: dict[str, int] = field(default_factory=dict)
    points_unassigned: int = 0
    retired_members: list[dict[str, Any]] = field(default_factory=list)
    grids_without_member: list[str] = field(default_factory=list)

    @property
    def code(self) -> str:
        """Code of the grid named in the request (the kept grid of a merge)."""
        return str(self.grid["properties"]["code"])

    @property
    def etag(self) -> str:
        """ETag of the current version of that grid (unchanged by a dry run)."""
        props = self.grid["properties"]
        return version_tag(props["code"], props["version"])


Plan = Callable[[Layout], tuple[Outcome, dict[str, str | None]]]


def _reassign(conn: Connection, outcome: Outcome) -> tuple[dict[str, int], int]:
    """Re-assign the points of the changed grids, town by town (a noded grid may be next door)."""
    # Noded grids too: their shape moved by ulps, and a point on that edge may change side.
    moved = outcome.codes("redrawn", "added", "retired", "noded")
    counts, outside = dict.fromkeys(ASSIGNED_TABLES, 0), 0
    for town in sorted({code[:9] for code in moved}):
        for table in ASSIGNED_TABLES:
            result = reassign_in_database(conn, table, moved, town=town)
            counts[table] += result.changed
            outside += result.n_unassigned
    return counts, outside


_MEMBERS = """
SELECT code, name, phone, grid_code FROM members
WHERE status = 'appointed' AND grid_code = ANY(:codes) ORDER BY grid_code, code
"""


def _report(
    conn: Connection,
    *,
    operation: str,
    dry_run: bool,
    main: str,
    outcome: Outcome,
    valid_from: dt.datetime,
    versions: dict[str, dict[str, Any]],
    moved: tuple[dict[str, int], int],
) -> GridEdit:
    live = [c for c in outcome.codes() if outcome.change[c] != "retired"]
    where = queries.Where().add("t.valid_to IS NULL AND t.code = ANY(:codes)", codes=[main, *live])
    found = {f["properties"]["code"]: f for f in queries.features(conn, queries.GRIDS, where)}
    changes = []
    for code in outcome.codes():
        props = found[code]["properties"] if code in found else {}
        changes.append(
            GridChange(
                code=code,
                change=outcome.change[code],
                version=versions[code]["version"],
                previous_version=versions[code]["previous_version"],
                households=int(props.get("households") or 0),
                people=int(props.get("people") or 0),
                area_km2=props.get("area_km2"),
            )
        )
    retired = outcome.codes("retired")
    members = [
        {"code": r.code, "name": r.name, "phone": mask_phone(r.phone), "grid_code": r.grid_code}
        for r in conn.execute(sa.text(_MEMBERS), {"codes": retired})
    ]
    return GridEdit(
        operation=operation,
        dry_run=dry_run,
        valid_from=valid_from,
        grid=found[main],
        changes=changes,
        features=[found[c] for c in live],
        points_moved=moved[0],
        points_unassigned=moved[1],
        retired_members=members,
        grids_without_member=[c for c in live if found[c]["properties"].get("member_code") is None],
    )


def _run(
    conn: Connection,
    grids: list[str],
    *,
    if_match: Mapping[str, int] | None,
    operation: str,
    plan: Plan,
    actor: str,
    note: str | None,
    dry_run: bool,
) -> GridEdit:
    """Lock, check the versions, plan, write, re-assign and report, in one savepoint."""
    savepoint = conn.begin_nested()
    try:
        lock_villages(conn, [code[:12] for code in grids])
        current: list[CurrentGrid] = []
        for code in grids:
            current.append(current_grid(conn, code, lock=True))
        check_versions(current, if_match)
        villages = {g.village_code for g in current}
        if len(villages) > 1:
            msg = (
                f"other: grids {' and '.join(grids)} belong to different villages "
                f"({', '.join(sorted(villages))}); only grids of one village can be merged"
            )
            raise ConflictError(msg, problems=[{"field": "other", "problem": "other village"}])
        layout = read_layout(conn, current[0].village_code)
        outcome, names = plan(layout)
        kept = sorted(grids)[0] if operation == "merge" else grids[0]
        if not outcome.change:  # nothing changed: no version, no history entry
            now = conn.execute(sa.text("SELECT now()")).scalar_one()
            report = _report(
                conn,
                operation=operation,
                dry_run=dry_run,
                main=kept,
                outcome=outcome,
                valid_from=now,
                versions={},
                moved=(dict.fromkeys(ASSIGNED_TABLES, 0), 0),
            )
        else:
            source = f"{operation} by {actor}" + (f": {note}" if note else "")
            now, versions = write_versions(conn, outcome, names=names, source=source)
            moved = _reassign(conn, outcome)
            report = _report(
                conn,
                operation=operation,
                dry_run=dry_run,
                main=kept,
                outcome=outcome,
                valid_from=now,
                versions=versions,
                moved=moved,
            )
    except BaseException:
        savepoint.rollback()
        raise
    if dry_run:
        savepoint.rollback()
    else:
        savepoint.commit()
    return report


def edit_grid(
    conn: Connection,
    code: str,
    *,
    if_match: Mapping[str, int] | None,
    actor: str,
    geometry: shapely.Geometry | None = None,
    name: str | None = None,
    note: str | None = None,
    dry_run: bool = False,
    tolerance_m: float = TOLERANCE_M,
) -> GridEdit:
    """Redraw a grid's outline and/or rename it, as a new version, keeping the village tiled.

    A moved shared edge moves the neighbour too (same transaction): land taken from a
    neighbour leaves it, land given up goes to the neighbour sharing the longest border with
    it (see :mod:`gis_grid.edit._boundary`). Only grids that changed get a new version.

    Parameters
    ----------
    conn
        Connection in a read-write transaction (the caller commits).
    code
        The grid (15 digits).
    if_match
        Version per code from the client's ``If-Match`` (``None``: header missing).
    actor
        Who edits, recorded in ``grids.source``.
    geometry
        The new outline, CGCS2000 lon/lat (Polygon or MultiPolygon); ``None`` keeps it.
    name
        A new name; ``None`` keeps it.
    note
        Why, appended to ``source``.
    dry_run
        Do everything, report, and roll back: nothing stored changes.
    tolerance_m
        Widest sliver tolerated along outlines (metres).

    Returns
    -------
    GridEdit

    Raises
    ------
    NotFoundError, PreconditionRequiredError, PreconditionFailedError
        Unknown or retired grid; missing or stale ``If-Match``.
    GeometryError, CoordinateError, ConflictError
        A bad outline, or one the neighbours cannot follow (each with its lon/lat).

    Examples
    --------
    >>> edit = edit_grid(conn, "511703109209001", if_match={"511703109209001": 1},
    ...                  actor="centre", geometry=new_outline)  # doctest: +SKIP
    >>> [(c.code, c.change) for c in edit.changes]  # doctest: +SKIP
    [('511703109209001', 'redrawn'), ('511703109209002', 'redrawn')]
    """

    # The outline is checked once the grid is known and its version matches: an unknown
    # grid is 404 and a stale ETag 412 whatever the body says.
    def plan(layout: Layout) -> tuple[Outcome, dict[str, str | None]]:
        outcome = Outcome()
        if geometry is not None:
            outcome = redraw(
                layout,
                code,
                check_polygon(geometry),
                tolerance_m=tolerance_m,
                place=lambda lon, lat: village_at(conn, lon, lat),
            )
        names: dict[str, str | None] = {}
        if name is not None:
            old = conn.scalar(
                sa.text("SELECT name FROM grids WHERE code = :c AND valid_to IS NULL"), {"c": code}
            )
            if name != old:
                names[code] = name
                if code not in outcome.change:
                    outcome.geoms[code] = layout.geoms[layout.index(code)]
                    outcome.change[code] = "renamed"  # same shape (given or not)
        return outcome, names

    operation = "redraw" if geometry is not None else "rename"
    return _run(
        conn,
        [code],
        if_match=if_match,
        operation=operation,
        plan=plan,
        actor=actor,
        note=note,
        dry_run=dry_run,
    )


def split_grid(
    conn: Connection,
    code: str,
    line: shapely.Geometry,
    *,
    if_match: Mapping[str, int] | None,
    actor: str,
    name: str | None = None,
    note: str | None = None,
    dry_run: bool = False,
    tolerance_m: float = TOLERANCE_M,
) -> GridEdit:
    """Cut a grid in two along a line; the larger piece keeps the code.

    The other piece gets the village's next free number (never a retired one) and the name
    ``name`` or ``<village>第<n>网格``; it has no member yet (listed in
    ``grids_without_member``). Parameters, returns and errors as :func:`edit_grid`, with
    ``line`` the cutting LineString (CGCS2000 lon/lat); a line that does not cut the grid in
    exactly two pieces is a :class:`~gis_grid.errors.GeometryError` saying why.

    Examples
    --------
    >>> edit = split_grid(conn, "511703109209001", line, if_match={"511703109209001": 1},
    ...                   actor="centre")  # doctest: +SKIP
    >>> [c.change for c in edit.changes]  # doctest: +SKIP
    ['redrawn', 'added']
    """

    def plan(layout: Layout) -> tuple[Outcome, dict[str, str | None]]:
        new_code = next_grid_code(conn, layout.village_code)
        outcome = split(layout, code, check_line(line), new_code, tolerance_m=tolerance_m)
        return outcome, {new_code: name or new_grid_name(conn, new_code)}

    return _run(
        conn,
        [code],
        if_match=if_match,
        operation="split",
        plan=plan,
        actor=actor,
        note=note,
        dry_run=dry_run,
    )


def merge_grids(
    conn: Connection,
    code: str,
    other: str,
    *,
    if_match: Mapping[str, int] | None,
    actor: str,
    name: str | None = None,
    note: str | None = None,
    dry_run: bool = False,
) -> GridEdit:
    """Merge two neighbouring grids of a village; the smaller code keeps the union.

    The other grid is retired (its current version closed, no successor) and its points
    re-assigned; its appointed member is reported in ``retired_members`` and left as is.
    ``if_match`` must name the current version of both grids. Parameters and errors as
    :func:`edit_grid`; not neighbours, or different villages, is a
    :class:`~gis_grid.errors.ConflictError`.

    Examples
    --------
    >>> edit = merge_grids(conn, "511703109209001", "511703109209002", actor="centre",
    ...     if_match={"511703109209001": 1, "511703109209002": 1})  # doctest: +SKIP
    >>> [(c.code, c.change) for c in edit.changes]  # doctest: +SKIP
    [('511703109209001', 'redrawn'), ('511703109209002', 'retired')]
    """

    def plan(layout: Layout) -> tuple[Outcome, dict[str, str | None]]:
        outcome = merge(layout, code, other)
        keep = min(code, other)
        return outcome, ({keep: name} if name else {})

    return _run(
        conn,
        [code, other],
        if_match=if_match,
        operation="merge",
        plan=plan,
        actor=actor,
        note=note,
        dry_run=dry_run,
    )
