"""Cut a grid in two along a line (pure shapely, no database).

The line must cross the grid so that exactly two pieces result, neither thinner than the
tolerance. **The larger piece (area in metres) keeps the code**, its version history and its
appointed member; on equal areas the piece whose inside point lies further north, then further
west, keeps it (the order codes are numbered in). The other piece gets a new code.
Neighbours whose shared edge the line meets gain that vertex (a ``noded`` version), so that
shared edges stay identical.
"""

from __future__ import annotations

import numpy as np
import shapely
from shapely.ops import split as split_geometry

from gis_grid.edit._boundary import METRES_PER_DEGREE
from gis_grid.edit._checks import TOLERANCE_M
from gis_grid.edit._faces import (
    Layout,
    Outcome,
    absorb_slivers,
    arrange,
    as_multi,
    assemble,
    lonlat,
    narrow,
    prune_nodes,
    verify,
)
from gis_grid.errors import GeometryError

__all__ = ["split"]

#: How far (degrees, about 1 cm) the line is kept beyond the grid, so that it crosses the
#: grid's outline in the noding (an end exactly on the outline might miss it by an ulp).
_BEYOND = 1e-7


def _pieces(layout: Layout, code: str, line: shapely.Geometry, tolerance_m: float) -> np.ndarray:
    grid = layout.geoms[layout.index(code)]
    if not shapely.intersects(grid, line):
        where = lonlat(line)
        msg = (
            f"line: does not touch grid {code} (it passes near ({where['lon']}, {where['lat']})): "
            "draw it across the grid, from one side of its outline to another"
        )
        raise GeometryError(msg, problems=[{"field": "line", "problem": "misses"} | where])
    pieces = shapely.get_parts(split_geometry(grid, line))
    if len(pieces) != 2:
        problem = {"field": "line", "problem": f"{len(pieces)} pieces"}
        problems = [problem | lonlat(p) for p in pieces]
        reason = (
            "it does not cross the grid from one side of its outline to another (both ends "
            "must lie outside the grid)"
            if len(pieces) < 2
            else f"it cuts it into {len(pieces)} pieces; a split makes two"
        )
        msg = f"line: does not cut grid {code} into two pieces: {reason}"
        raise GeometryError(msg, problems=problems)
    thin = [p for p in pieces if narrow(layout, p, tolerance_m)]
    if thin:
        where = lonlat(thin[0])
        msg = (
            f"line: cuts only a sliver thinner than {tolerance_m:g} m off grid {code} near "
            f"({where['lon']}, {where['lat']})"
        )
        raise GeometryError(msg, problems=[{"field": "line", "problem": "sliver"} | where])
    return np.asarray(pieces, dtype=object)


def _keeper(layout: Layout, pieces: np.ndarray) -> int:
    """Index of the piece keeping the code: the larger, then the northern, then the western."""
    area = shapely.area(layout.metres(pieces))
    inner = shapely.point_on_surface(pieces)
    order = np.lexsort((shapely.get_x(inner), -shapely.get_y(inner), -np.round(area, 6)))
    return int(order[0])


def split(
    layout: Layout,
    code: str,
    line: shapely.Geometry,
    new_code: str,
    *,
    tolerance_m: float = TOLERANCE_M,
) -> Outcome:
    """Cut grid ``code`` along ``line``: the larger piece keeps the code, the other is ``new_code``.

    Parameters
    ----------
    layout
        The current grids of the grid's village and of the villages touching it.
    code
        The grid cut.
    line
        The cutting line (checked by :func:`~gis_grid.edit.check_line`), CGCS2000 lon/lat.
    new_code
        Code of the second piece (the next free number of the village).
    tolerance_m
        Thinnest piece allowed, and how far line ends snap to the grid's vertices (metres).

    Returns
    -------
    Outcome
        ``code`` redrawn, ``new_code`` added, and neighbours that gain a vertex.

    Raises
    ------
    GeometryError
        The line misses the grid, does not cut it in exactly two, or cuts off a sliver.
    """
    i = layout.index(code)
    grid = layout.geoms[i]
    line = shapely.snap(line, grid, tolerance_m / METRES_PER_DEGREE)
    pieces = _pieces(layout, code, line, tolerance_m)
    keep = _keeper(layout, pieces)
    inside = shapely.intersection(line, shapely.buffer(grid, _BEYOND))
    faces = arrange(layout, [inside])
    owner = faces.old.copy()
    mine = np.flatnonzero(faces.old == i)
    share = np.column_stack(
        [shapely.area(shapely.intersection(faces.geoms[mine], p)) for p in pieces]
    )
    added = len(layout.codes)  # owner index standing for the new grid
    owner[mine] = np.where(np.argmax(share, axis=1) == keep, i, added)
    absorb_slivers(faces, owner)
    outcome = assemble(faces, owner)
    outcome.geoms[new_code] = as_multi(faces.union(owner == added))
    outcome.change[new_code] = "added"
    if code not in outcome.change:  # pragma: no cover - a real cut always changes the grid
        outcome.geoms[code] = as_multi(faces.union(owner == i))
        outcome.change[code] = "redrawn"
    prune_nodes(layout, outcome)
    verify(layout, outcome)
    return outcome
