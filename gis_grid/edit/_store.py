"""The SQL of an edit: lock and read the grids involved, check versions, write new versions.

Locking: the rows of the edited village and of every village touching it are locked
(``FOR UPDATE``, in code order, as :func:`gis_grid.db.plans.apply_plan` locks its villages)
before any grid is read. Two edits whose grids may meet run one after the other, the second
seeing the first's result (and its new versions, so its stale ``If-Match`` is refused); taking
the locks in one order means two edits of neighbouring villages never deadlock.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import shapely
import sqlalchemy as sa

from gis_grid.codes import grid_code
from gis_grid.crs import gauss_kruger_crs
from gis_grid.edit._checks import version_tag
from gis_grid.edit._faces import Layout, Outcome
from gis_grid.errors import (
    ConflictError,
    NotFoundError,
    PreconditionFailedError,
    PreconditionRequiredError,
)

if TYPE_CHECKING:
    import datetime as dt

    from sqlalchemy.engine import Connection

__all__ = [
    "CurrentGrid",
    "check_versions",
    "current_grid",
    "lock_villages",
    "new_grid_name",
    "next_grid_code",
    "read_layout",
    "village_at",
    "write_versions",
]

_GRID_NAME = re.compile(r"^(.*)第\d+网格$")
_MAX_SEQ = 999


@dataclass(frozen=True)
class CurrentGrid:
    """The current version of a grid: code, village, version, name, shape (lon/lat)."""

    code: str
    village_code: str
    version: int
    name: str | None
    geom: shapely.Geometry


_LOCK = """
SELECT n.code FROM villages AS v
JOIN villages AS n ON n.geom && v.geom AND ST_Intersects(n.geom, v.geom)
WHERE v.code = ANY(:villages)
ORDER BY n.code
FOR UPDATE OF n
"""


def lock_villages(conn: Connection, villages: list[str]) -> None:
    """Lock the villages and every village touching them, in code order, until commit."""
    conn.execute(sa.text(_LOCK), {"villages": sorted(set(villages))})


def current_grid(conn: Connection, code: str, *, lock: bool = False) -> CurrentGrid:
    """Read the current version of grid ``code`` (locking its row if ``lock``).

    Raises
    ------
    NotFoundError
        The code is unknown, or the grid was retired (then its history is named).
    """
    row = conn.execute(
        sa.text(
            "SELECT code, village_code, version, name, ST_AsBinary(geom) AS wkb FROM grids "
            "WHERE code = :code AND valid_to IS NULL" + (" FOR UPDATE" if lock else "")
        ),
        {"code": code},
    ).first()
    if row is not None:
        geom = shapely.from_wkb(bytes(row.wkb))
        return CurrentGrid(row.code, row.village_code, int(row.version), row.name, geom)
    known = conn.scalar(sa.text("SELECT max(version) FROM grids WHERE code = :c"), {"c": code})
    if known is None:
        msg = f"grid {code!r} not found in any version; GET /api/v1/grids lists the current grids"
    else:
        msg = (
            f"grid {code!r} has no current version (it was retired); its history is at "
            f"GET /api/v1/grids/{code}/versions"
        )
    raise NotFoundError(msg, problems=[{"grid": code, "problem": "not found"}])


def check_versions(grids: list[CurrentGrid], if_match: Mapping[str, int] | None) -> None:
    """Refuse the edit unless ``if_match`` names the current version of every grid.

    Parameters
    ----------
    grids
        The grids the request edits, the one in the path first.
    if_match
        Versions by code, as the client's ``If-Match`` names them; ``None``: no header.

    Raises
    ------
    PreconditionRequiredError
        No ``If-Match`` at all, or (for a merge) no tag for the second grid.
    PreconditionFailedError
        A tag names another version than the current one: someone changed the grid since
        the client read it. The message gives the current ETag.
    """
    if if_match is None:
        tags = ", ".join(version_tag(g.code, g.version) for g in grids)
        msg = (
            f"If-Match is required to change grid {grids[0].code}: send the ETag of the "
            f"version you edited (GET /api/v1/grids/{{code}}), now If-Match: {tags}"
        )
        raise PreconditionRequiredError(msg, problems=[{"field": "If-Match", "problem": "missing"}])
    for k, grid in enumerate(grids):
        current = version_tag(grid.code, grid.version)
        given = if_match.get(grid.code)
        if given == grid.version:
            continue
        problem = {"field": "If-Match", "grid": grid.code, "etag": current}
        if given is None and k > 0:
            msg = (
                f"If-Match names no version of grid {grid.code}, which this request also "
                f"changes: list both ETags, e.g. If-Match: "
                f"{version_tag(grids[0].code, grids[0].version)}, {current}"
            )
            raise PreconditionRequiredError(msg, problems=[problem | {"problem": "missing"}])
        named = "no version of it" if given is None else version_tag(grid.code, given)
        msg = (
            f"If-Match: grid {grid.code} has changed since you read it: its current ETag is "
            f"{current}, the request named {named}. Read it again (GET /api/v1/grids/"
            f"{grid.code}), re-apply your change, and send If-Match: {current}"
        )
        raise PreconditionFailedError(
            msg, problems=[problem | {"problem": "stale", "current_version": grid.version}]
        )


_LAYOUT = """
SELECT g.code, g.village_code, ST_AsBinary(g.geom) AS wkb
FROM grids AS g, villages AS v
WHERE v.code = :v AND g.valid_to IS NULL
  AND (g.village_code = :v OR (g.geom && v.geom AND ST_Intersects(g.geom, v.geom)))
ORDER BY g.code
FOR UPDATE OF g
"""


def read_layout(conn: Connection, village_code: str) -> Layout:
    """Read (and lock) the current grids of a village and of the villages touching it."""
    rows = conn.execute(sa.text(_LAYOUT), {"v": village_code}).all()
    geoms = np.asarray([shapely.from_wkb(bytes(r.wkb)) for r in rows], dtype=object)
    own = np.asarray([r.village_code == village_code for r in rows])
    crs = gauss_kruger_crs(shapely.total_bounds(geoms[own]))
    return Layout(
        village_code=village_code,
        codes=np.asarray([r.code for r in rows], dtype=object),
        villages=np.asarray([r.village_code for r in rows], dtype=object),
        geoms=geoms,
        crs=crs,
    )


def next_grid_code(conn: Connection, village_code: str) -> str:
    """Return the code for a new grid of the village: one past the highest number ever used.

    Numbers of retired grids are never reused, so a code's history is one grid's. After 999,
    the smallest number never used.
    """
    used = set(
        conn.scalars(
            sa.text("SELECT DISTINCT seq FROM grids WHERE village_code = :v"), {"v": village_code}
        )
    )
    top = max(used, default=0)
    if top < _MAX_SEQ:
        return grid_code(village_code, top + 1)
    free = sorted(set(range(1, _MAX_SEQ + 1)) - used)
    if not free:
        msg = f"village {village_code} has used all 999 grid numbers; no new grid can be coded"
        raise ConflictError(msg)
    return grid_code(village_code, free[0])


def new_grid_name(conn: Connection, code: str) -> str:
    """Name a new grid like its village's others: ``<prefix>第<n>网格``."""
    village = code[:12]
    names = conn.scalars(
        sa.text(
            "SELECT name FROM grids WHERE village_code = :v AND name IS NOT NULL "
            "ORDER BY valid_from DESC, code"
        ),
        {"v": village},
    ).all()
    for name in names:
        match = _GRID_NAME.match(name)
        if match:
            return f"{match.group(1)}第{int(code[12:])}网格"
    village_name = conn.scalar(sa.text("SELECT name FROM villages WHERE code = :v"), {"v": village})
    return f"{village_name}第{int(code[12:])}网格"


def village_at(conn: Connection, lon: float, lat: float) -> str | None:
    """Name the village (and town) at a lon/lat, for messages; ``None`` outside every one."""
    row = conn.execute(
        sa.text(
            "SELECT v.code, v.name, t.name AS town FROM villages AS v "
            "JOIN towns AS t ON t.code = v.town_code "
            "WHERE ST_Covers(v.geom, ST_SetSRID(ST_MakePoint(:x, :y), 4490)) "
            "ORDER BY v.code LIMIT 1"
        ),
        {"x": lon, "y": lat},
    ).first()
    return None if row is None else f"village {row.code} ({row.name}, {row.town})"


_CLOSE = """
UPDATE grids SET valid_to = now()
WHERE valid_to IS NULL AND code = ANY(:codes)
RETURNING code, version, name, synthetic
"""

_INSERT = """
INSERT INTO grids (code, village_code, seq, name, version, valid_from, geom, synthetic, source)
SELECT u.code, left(u.code, 12), right(u.code, 3)::int, u.name, u.version, now(),
       ST_Multi(ST_GeomFromWKB(u.wkb, 4490)), u.synthetic, :source
FROM unnest(CAST(:codes AS text[]), CAST(:names AS text[]), CAST(:versions AS int[]),
            CAST(:wkbs AS bytea[]), CAST(:synthetic AS boolean[]))
     AS u(code, name, version, wkb, synthetic)
ORDER BY u.code
RETURNING code, version
"""


def write_versions(
    conn: Connection,
    outcome: Outcome,
    *,
    names: Mapping[str, str | None],
    source: str,
) -> tuple[dt.datetime, dict[str, dict[str, Any]]]:
    """Close the current version of every changed grid and insert the next one.

    Every changed grid (``outcome.change``) gets its current version closed at the
    transaction's ``now()``; all but the retired get version + 1 (version 1 for an added code)
    starting at the same instant, with the shape from ``outcome.geoms`` (or, for a grid only
    renamed, its current shape) and the name from ``names`` (default: unchanged).

    Returns
    -------
    tuple
        ``now()``, and per code ``{"previous_version", "version"}`` (``None`` where absent).
    """
    now: dt.datetime = conn.execute(sa.text("SELECT now()")).scalar_one()
    codes = outcome.codes()
    closed = {r.code: r for r in conn.execute(sa.text(_CLOSE), {"codes": codes})}
    rows = [c for c in codes if outcome.change[c] != "retired"]
    synthetic = conn.scalar(
        sa.text("SELECT bool_or(synthetic) FROM grids WHERE village_code = :v"),
        {"v": rows[0][:12] if rows else codes[0][:12]},
    )
    params = {
        "codes": rows,
        "names": [names.get(c, closed[c].name if c in closed else None) for c in rows],
        "versions": [closed[c].version + 1 if c in closed else 1 for c in rows],
        "wkbs": [shapely.to_wkb(shapely.force_2d(outcome.geoms[c])) for c in rows],
        "synthetic": [bool(closed[c].synthetic) if c in closed else bool(synthetic) for c in rows],
        "source": source,
    }
    inserted: dict[str, int] = {}
    if rows:
        inserted = {str(c): int(v) for c, v in conn.execute(sa.text(_INSERT), params)}
    versions = {
        c: {
            "previous_version": closed[c].version if c in closed else None,
            "version": inserted.get(c),
        }
        for c in codes
    }
    return now, versions
