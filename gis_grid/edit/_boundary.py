"""A new outline for one grid, and what its neighbours become (pure shapely, no database).

Rules, in order:

1. The outline is snapped to the vertices of the grids around it within the tolerance, so a
   vertex drawn on a neighbour's corner lands exactly on it.
2. Land outside the grid's village (another village, another town, or no village) is refused
   with its location when it is wider than the tolerance; thinner slivers are trimmed.
3. Land the outline takes from a neighbour of the same village leaves that neighbour.
4. Land the grid gives up (the old grid minus the new outline) goes, piece by piece, to the
   neighbour of the same village sharing the longest border with the piece (ties: smallest
   code). A piece thinner than the tolerance that touches no neighbour stays with the grid;
   a wider one is a gap nobody can take: refused with its location.
5. Every neighbour must keep land and must not fall into more pieces than it had.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import shapely

from gis_grid.edit._checks import TOLERANCE_M
from gis_grid.edit._faces import (
    Faces,
    Layout,
    Outcome,
    absorb_slivers,
    arrange,
    assemble,
    dissolve,
    lonlat,
    narrow,
    prune_nodes,
    verify,
)
from gis_grid.errors import ConflictError, GeometryError

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["METRES_PER_DEGREE", "polygonal", "redraw", "shared_border_m", "snap_to_layout"]

#: Metres per degree of latitude: turns a tolerance in metres into a (smaller) one in degrees.
METRES_PER_DEGREE = 111_320.0

#: Shortest shared border (metres) that counts as one: less is a corner.
_MIN_BORDER_M = 1e-3


def polygonal(geom: shapely.Geometry) -> shapely.Geometry:
    """Return the polygons of ``geom`` (dropping lines and points an overlay may leave)."""
    parts = shapely.get_parts(geom)
    parts = parts[np.isin(shapely.get_type_id(parts), (3, 6))]
    if parts.size == 0:
        return shapely.Polygon()
    return shapely.union_all(parts)


def snap_to_layout(
    layout: Layout, geom: shapely.Geometry, tolerance_m: float = TOLERANCE_M
) -> shapely.Geometry:
    """Snap ``geom``'s vertices to the layout's vertices within the tolerance, if still valid."""
    reference = shapely.multipoints(shapely.get_coordinates(layout.geoms))
    snapped = shapely.snap(geom, reference, tolerance_m / METRES_PER_DEGREE)
    if (
        isinstance(snapped, shapely.Geometry)
        and shapely.is_valid(snapped)
        and not shapely.is_empty(snapped)
    ):
        return snapped
    return geom


def shared_border_m(layout: Layout, a: shapely.Geometry, b: shapely.Geometry) -> float:
    """Length (metres) of the border ``a`` and ``b`` share (0 for a corner or nothing)."""
    common = shapely.intersection(shapely.boundary(a), shapely.boundary(b))
    return float(shapely.length(layout.metres(common)))


def _outside(
    layout: Layout,
    code: str,
    geom: shapely.Geometry,
    tolerance_m: float,
    place: Callable[[float, float], str | None] | None,
) -> None:
    """Refuse land beyond the village wider than the tolerance, saying whose land it is."""
    village = dissolve(layout.geoms[layout.own])
    inside = polygonal(shapely.intersection(geom, village))
    if narrow(layout, inside, tolerance_m):
        where = lonlat(geom)
        msg = (
            f"geometry: the new outline of grid {code} lies outside its village "
            f"{layout.village_code} (near ({where['lon']}, {where['lat']})): a grid stays "
            "inside its village; check the coordinates (lon/lat order, datum)"
        )
        raise GeometryError(msg, problems=[{"field": "geometry", "problem": "outside"} | where])
    over = shapely.get_parts(polygonal(shapely.difference(geom, village)))
    problems: list[dict[str, object]] = []
    for piece in over:
        if narrow(layout, piece, tolerance_m):
            continue
        where = lonlat(piece)
        point = shapely.Point(where["lon"], where["lat"])
        holders = np.flatnonzero(shapely.covers(layout.geoms, point) & ~layout.own)
        named = place(where["lon"], where["lat"]) if place is not None else None
        if holders.size:
            whose = f"village {layout.villages[holders[0]]} (grid {layout.codes[holders[0]]})"
        else:
            whose = named or "no village of the platform"
        area = float(shapely.area(layout.metres(piece)))
        problems.append(
            {"field": "geometry", "problem": "outside the village", "area_m2": round(area, 1)}
            | where
            | {"in": whose}
        )
    if problems:
        listed = "; ".join(
            f"{p['area_m2']} m² in {p['in']} near ({p['lon']}, {p['lat']})" for p in problems[:5]
        )
        msg = (
            f"geometry: the new outline of grid {code} reaches outside its village "
            f"{layout.village_code} by more than {tolerance_m:g} m: {listed}. Village "
            "outlines are fixed; keep the grid inside its village"
        )
        raise GeometryError(msg, problems=problems)


def redraw(
    layout: Layout,
    code: str,
    geometry: shapely.Geometry,
    *,
    tolerance_m: float = TOLERANCE_M,
    place: Callable[[float, float], str | None] | None = None,
) -> Outcome:
    """Give grid ``code`` a new outline and adjust its neighbours so the village stays tiled.

    Parameters
    ----------
    layout
        The current grids of the grid's village and of the villages touching it.
    code
        The grid redrawn.
    geometry
        Its new outline (checked by :func:`~gis_grid.edit.check_polygon`), CGCS2000 lon/lat.
    tolerance_m
        Widest sliver tolerated (metres).
    place
        Names the village at a lon/lat beyond the layout (for messages), if given.

    Returns
    -------
    Outcome
        The grids that change (the grid itself, neighbours that gained or lost land,
        neighbours that only gained a vertex), with their new shapes.

    Raises
    ------
    GeometryError
        The outline reaches outside the village (location and whose land it is).
    ConflictError
        A gap no neighbour can take, a neighbour left without land or cut in pieces.
    """
    i = layout.index(code)
    geometry = snap_to_layout(layout, geometry, tolerance_m)
    _outside(layout, code, geometry, tolerance_m, place)
    village = dissolve(layout.geoms[layout.own])
    if not shapely.covers(village, geometry):
        geometry = polygonal(shapely.intersection(geometry, village))
    faces = arrange(layout, [shapely.boundary(geometry)])
    own_face = (faces.old >= 0) & layout.own[np.maximum(faces.old, 0)]
    inside = faces.within(geometry)
    owner = faces.old.copy()
    owner[inside & own_face] = i
    released = (faces.old == i) & ~inside
    owner[released] = -1
    _give_away(layout, faces, owner, released, i=i, tolerance_m=tolerance_m)
    absorb_slivers(faces, owner)
    outcome = assemble(faces, owner)
    prune_nodes(layout, outcome)
    _check_pieces(layout, outcome, code, geometry, tolerance_m)
    verify(layout, outcome)
    return outcome


def _give_away(
    layout: Layout,
    faces: Faces,
    owner: NDArray[np.intp],
    released: NDArray[np.bool_],
    *,
    i: int,
    tolerance_m: float,
) -> None:
    """Hand the land grid ``i`` gives up to its neighbours (rule 4), in place in ``owner``."""
    if not released.any():
        return
    pieces = shapely.get_parts(faces.union(released))
    of_face = np.full(faces.geoms.size, -1)
    for k, piece in enumerate(pieces):
        of_face[released & faces.within(piece)] = k
    candidates = [j for j in np.flatnonzero(layout.own) if j != i and (owner == j).any()]
    shapes = {j: faces.union(owner == j) for j in candidates}
    problems: list[dict[str, object]] = []
    for k, piece in enumerate(pieces):
        borders = [shared_border_m(layout, piece, shapes[j]) for j in candidates]
        best = int(np.argmax(borders)) if borders else -1
        if best >= 0 and borders[best] > _MIN_BORDER_M:
            owner[of_face == k] = candidates[best]
        elif narrow(layout, piece, tolerance_m):
            owner[of_face == k] = i
        else:
            area = float(shapely.area(layout.metres(piece)))
            problems.append({"problem": "gap", "area_m2": round(area, 1)} | lonlat(piece))
    if problems:
        listed = "; ".join(f"{p['area_m2']} m² near ({p['lon']}, {p['lat']})" for p in problems[:5])
        msg = (
            f"geometry: the new outline of grid {layout.codes[i]} leaves village land no "
            f"grid covers, and no neighbouring grid of the village borders it: {listed}. "
            "Keep that land in the grid, or redraw the neighbour first"
        )
        raise ConflictError(msg, problems=problems)


def _check_pieces(
    layout: Layout,
    outcome: Outcome,
    code: str,
    geometry: shapely.Geometry,
    tolerance_m: float,
) -> None:
    """Rule 5: no grid may fall into more pieces than it had (or than the outline has)."""
    problems: list[dict[str, object]] = []
    for other in outcome.codes("redrawn"):
        had = shapely.get_num_geometries(layout.geoms[layout.index(other)])
        if other == code:
            had = max(had, shapely.get_num_geometries(geometry))
        parts = shapely.get_parts(outcome.geoms[other])
        if len(parts) > had:
            smallest = parts[np.argmin(shapely.area(parts))]
            problems.append(
                {"grid": other, "problem": f"cut into {len(parts)} pieces"} | lonlat(smallest)
            )
            continue
        # Joined only by a neck thinner than the tolerance: cut in pieces for any practical
        # purpose (and the neck's edges may cross once projected to metres).
        metres = layout.metres(outcome.geoms[other])
        opened = shapely.buffer(shapely.buffer(metres, -tolerance_m / 2), tolerance_m / 2)
        pieces = shapely.get_parts(opened)
        if len(pieces) > had:
            smallest = layout.degrees(pieces[np.argmin(shapely.area(pieces))])
            problems.append(
                {
                    "grid": other,
                    "problem": f"cut into {len(pieces)} pieces joined by necks thinner than "
                    f"{tolerance_m:g} m",
                }
                | lonlat(smallest)
            )
    if problems:
        listed = "; ".join(
            f"grid {p['grid']} would be {p['problem']} (smallest near ({p['lon']}, {p['lat']}))"
            for p in problems
        )
        msg = f"geometry: the new outline of grid {code} would split grids: {listed}"
        raise ConflictError(msg, problems=problems)
