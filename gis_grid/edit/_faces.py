"""The grids an edit may touch, cut into faces by one noding, and put back together.

Why faces: an edit moves shared edges, and the result must still be an exact coverage
(neighbours share the very same vertices along their common edges, no gap, no overlap). All
the boundaries involved (the current grids and the new lines: a redrawn outline, a cutting
line) are noded together once (:func:`shapely.union_all` of the lines) and polygonised into
faces; each operation only decides which grid owns each face, and every new grid is the
:func:`shapely.coverage_union_all` of its faces. Two grids sharing an edge then share the edges
of the faces between them, vertex for vertex, whatever the operation did.

Set operations run on the stored CGCS2000 lon/lat coordinates: a round trip through metres
would move every vertex by a few ulps, and untouched edges would no longer match the grids of
the next village. Widths, lengths and areas (tolerances) are measured in the Gauss-Krüger zone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import shapely
from pyproj import CRS, Transformer

from gis_grid.crs import CGCS2000
from gis_grid.errors import ConflictError

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = [
    "SNAP_TO_EDGE_M",
    "Faces",
    "Layout",
    "Outcome",
    "absorb_slivers",
    "arrange",
    "as_multi",
    "assemble",
    "dissolve",
    "lonlat",
    "narrow",
    "prune_nodes",
    "verify",
]

_WHERE = re.compile(r"\[\s*([-+0-9.eE]+)\s+([-+0-9.eE]+)")

#: A grid whose shape moves by less than this (metres) only gained a vertex ("noded").
_NODED_M = 1e-2

#: How far (metres) an existing edge moves to pass through a new vertex lying on it: a
#: vertex computed on an edge (a crossing) or read from rounded GeoJSON is off it by ulps to
#: millimetres, and would leave a spike that narrow beside the edge.
SNAP_TO_EDGE_M = 5e-3

_CHANGE_ORDER = {"redrawn": 0, "added": 1, "renamed": 2, "noded": 3, "retired": 4}


@dataclass(frozen=True)
class Layout:
    """Current grids of a village and of the villages touching it (CGCS2000 lon/lat).

    Attributes
    ----------
    village_code
        The village being edited.
    codes, villages, geoms
        One entry per grid: its code, its village and its shape.
    crs
        Where to measure (Gauss-Krüger zone).
    """

    village_code: str
    codes: NDArray[np.object_]
    villages: NDArray[np.object_]
    geoms: NDArray[np.object_]
    crs: CRS

    @cached_property
    def _to_metres(self) -> Transformer:
        return Transformer.from_crs(CGCS2000, self.crs, always_xy=True)

    def metres(self, geom: Any) -> Any:
        """Return ``geom`` (a geometry or an array of them) in the measuring CRS."""
        transformer = self._to_metres

        def move(xy: NDArray[np.float64]) -> NDArray[np.float64]:
            x, y = transformer.transform(xy[:, 0], xy[:, 1])
            return np.column_stack([x, y])

        return shapely.transform(geom, move)

    def degrees(self, geom: shapely.Geometry) -> shapely.Geometry:
        """Return ``geom`` (in the measuring CRS) back in CGCS2000 lon/lat."""
        transformer = self._to_metres

        def move(xy: NDArray[np.float64]) -> NDArray[np.float64]:
            x, y = transformer.transform(xy[:, 0], xy[:, 1], direction="INVERSE")
            return np.column_stack([x, y])

        return shapely.transform(geom, move)

    def index(self, code: str) -> int:
        """Position of grid ``code``."""
        return int(np.flatnonzero(self.codes == code)[0])

    @property
    def own(self) -> NDArray[np.bool_]:
        """Which grids belong to the edited village."""
        return np.asarray(self.villages == self.village_code, dtype=bool)


@dataclass
class Outcome:
    """Grids after an edit: shapes of the grids that change, and how they change.

    ``change`` is ``redrawn`` (shape changed), ``added`` (a new code), ``retired`` (closed,
    no successor) or ``noded`` (same shape, one more vertex where a moved edge meets it: its
    neighbour's vertex, so that shared edges stay identical).
    """

    geoms: dict[str, shapely.Geometry] = field(default_factory=dict)
    change: dict[str, str] = field(default_factory=dict)

    def codes(self, *kinds: str) -> list[str]:
        """Codes whose change is one of ``kinds`` (all if none given), in a stable order."""
        return sorted(
            (c for c, k in self.change.items() if not kinds or k in kinds),
            key=lambda c: (_CHANGE_ORDER[self.change[c]], c),
        )


def dissolve(geoms: NDArray[np.object_] | list[shapely.Geometry]) -> shapely.Geometry:
    """Return the union of polygons forming a coverage (exact), or of any polygons."""
    try:
        return shapely.coverage_union_all(geoms)
    except shapely.errors.GEOSException:  # not an exact coverage (stored data may not be)
        return shapely.union_all(geoms)


def as_multi(geom: shapely.Geometry) -> shapely.Geometry:
    """``geom`` as a normalised MultiPolygon (as stored), to compare shapes vertex by vertex."""
    parts = shapely.get_parts(geom)
    return shapely.normalize(shapely.multipolygons(parts[shapely.get_type_id(parts) == 3]))


def lonlat(geom: shapely.Geometry) -> dict[str, Any]:
    """Return a point inside ``geom`` as ``{"lon", "lat"}`` (rounded to 7 decimals, ~1 cm)."""
    point = shapely.point_on_surface(geom)
    return {"lon": round(float(point.x), 7), "lat": round(float(point.y), 7)}


def narrow(layout: Layout, geom: shapely.Geometry, width_m: float) -> bool:
    """Whether ``geom`` holds no disc ``width_m`` wide (a sliver, not land)."""
    if shapely.is_empty(geom):
        return True
    return bool(shapely.is_empty(shapely.buffer(layout.metres(geom), -width_m / 2)))


@dataclass(frozen=True)
class Faces:
    """The layout cut into faces by its boundaries and the new lines."""

    layout: Layout
    geoms: NDArray[np.object_]
    #: Position in the layout of the grid holding each face, -1 for none.
    old: NDArray[np.intp]

    def within(self, shape: shapely.Geometry) -> NDArray[np.bool_]:
        """Which faces lie inside ``shape`` (more than half of their area)."""
        area = shapely.area(self.geoms)
        inside = shapely.area(shapely.intersection(self.geoms, shape))
        return np.asarray(inside > 0.5 * area, dtype=bool)

    def union(self, mask: NDArray[np.bool_]) -> shapely.Geometry:
        """Return the faces selected by ``mask`` as one geometry (exact: a coverage union)."""
        parts = self.geoms[mask]
        if parts.size == 0:
            return shapely.Polygon()
        return dissolve(parts)


def arrange(layout: Layout, lines: list[shapely.Geometry]) -> Faces:
    """Node the layout's boundaries with ``lines`` and polygonise them into faces.

    Before noding, the existing edges pass through every vertex of ``lines`` lying within
    :data:`SNAP_TO_EDGE_M` of them (:func:`shapely.snap` of the edges to those vertices), so
    that a new line following an edge coincides with it exactly instead of ulps beside it.
    Each face is owned by the grid covering more than half of it (faces are either inside a
    grid or outside it; the half is for slivers a few ulps wide).
    """
    edges: Any = shapely.union_all(shapely.boundary(layout.geoms))
    if lines:
        vertices = shapely.multipoints(shapely.get_coordinates(lines))
        edges = shapely.snap(edges, vertices, SNAP_TO_EDGE_M / 111_320.0)
    linework = shapely.union_all([edges, *lines])
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(linework)))
    faces = faces[shapely.area(faces) > 0]
    tree = shapely.STRtree(layout.geoms)
    face_i, grid_i = tree.query(faces, predicate="intersects")
    share = shapely.area(shapely.intersection(faces[face_i], layout.geoms[grid_i]))
    share = share / shapely.area(faces[face_i])
    old = np.full(faces.size, -1, dtype=np.intp)
    # The grids do not overlap: at most one holds more than half of a face.
    major = share > 0.5
    old[face_i[major]] = grid_i[major]
    return Faces(layout, np.asarray(faces, dtype=object), old)


def absorb_slivers(faces: Faces, owner: NDArray[np.intp]) -> None:
    """Give each face thinner than a millimetre to the face across its longest edge (in place).

    A line that follows an existing edge, but from a computed crossing point, runs ulps off
    it: the noding leaves a face a few ulps wide between the two. Owned on its own, it would
    be a spike no wider than rounding, which turns into a self-intersection once projected
    to metres; joined to the face across its long edge, it is a harmless extra vertex.
    """
    metres = faces.layout.metres(faces.geoms)
    thin = shapely.area(metres) < 1e-3 * shapely.length(metres) / 2  # mean width < 1 mm
    if not thin.any():
        return
    tree = shapely.STRtree(faces.geoms)
    for k in np.flatnonzero(thin):
        near = tree.query(faces.geoms[k], predicate="intersects")
        near = near[~thin[near]]
        if near.size:
            edges = shapely.intersection(
                shapely.boundary(faces.geoms[k]), shapely.boundary(faces.geoms[near])
            )
            owner[k] = owner[near[np.argmax(shapely.length(edges))]]


def assemble(faces: Faces, owner: NDArray[np.intp], *, retired: tuple[str, ...] = ()) -> Outcome:
    """Build the grids from the faces' new owners, and say which changed and how.

    Grids whose faces are all gone must be listed in ``retired``; any other grid left
    without land is refused (:class:`ConflictError`).
    """
    layout = faces.layout
    out = Outcome()
    for i, code in enumerate(layout.codes):
        mine = owner == i
        if not mine.any():
            if code in retired:
                out.change[str(code)] = "retired"
                continue
            msg = (
                f"grid {code} would be left without land: the edit takes all of it. "
                f"Merge the grids instead (POST /api/v1/grids/{code}/merge)"
            )
            raise ConflictError(msg, problems=[{"grid": str(code), "problem": "emptied"}])
        new = as_multi(faces.union(mine))
        old = as_multi(layout.geoms[i])
        if shapely.equals_exact(new, old, tolerance=0):
            continue
        out.geoms[str(code)] = new
        # Same shape but for a vertex added on an edge: the vertex is a computed crossing,
        # off the straight edge by ulps, so the shapes differ by a sliver far below a mm.
        moved = shapely.symmetric_difference(new, old)
        out.change[str(code)] = "noded" if narrow(layout, moved, _NODED_M) else "redrawn"
    return out


def prune_nodes(layout: Layout, outcome: Outcome) -> None:
    """Drop ``noded`` changes whose new vertices no changed grid needs (in place).

    The noding puts a vertex wherever a new line meets an edge; on an edge whose other side
    did not change (e.g. the village's outline where a thin sliver was given back) the vertex
    serves nobody, and the grid needs no new version.
    """
    changed = [g for c, g in outcome.geoms.items() if outcome.change[c] != "noded"]
    used = {tuple(xy) for xy in shapely.get_coordinates(changed).tolist()}
    for code in outcome.codes("noded"):
        new = {tuple(xy) for xy in shapely.get_coordinates(outcome.geoms[code]).tolist()}
        old = {
            tuple(xy) for xy in shapely.get_coordinates(layout.geoms[layout.index(code)]).tolist()
        }
        if not (new - old) & used:
            del outcome.geoms[code], outcome.change[code]


def verify(layout: Layout, outcome: Outcome) -> None:
    """Check that the grids after the edit are valid and still an exact coverage.

    Raises
    ------
    ConflictError
        Naming the grid or the lon/lat of the edges that no longer match. Cannot happen for
        faces of one noding; a guard before anything is written.
    """
    geoms = layout.geoms.copy()
    keep = np.ones(len(geoms), dtype=bool)
    known = set(layout.codes)
    for code, change in outcome.change.items():
        if code not in known:
            continue
        i = layout.index(code)
        if change == "retired":
            keep[i] = False
        else:
            geoms[i] = outcome.geoms[code]
    extra = [g for c, g in outcome.geoms.items() if c not in known]
    final = np.concatenate([geoms[keep], np.asarray(extra, dtype=object)])
    invalid = np.flatnonzero(~shapely.is_valid(final))
    if invalid.size:
        reason = shapely.is_valid_reason(final[invalid[0]])
        msg = f"the edit would leave an invalid grid ({reason}); nothing was written"
        raise ConflictError(msg, problems=[{"problem": str(reason)}])
    changed = np.asarray(
        [g for c, g in outcome.geoms.items() if outcome.change[c] != "noded"], dtype=object
    )
    projected = layout.metres(changed)
    broken = np.flatnonzero(~shapely.is_valid(projected))
    if broken.size:
        reason = str(shapely.is_valid_reason(projected[broken[0]]))
        where = lonlat(changed[broken[0]])
        found = _WHERE.search(reason)
        if found:
            point = shapely.Point(float(found.group(1)), float(found.group(2)))
            where = lonlat(layout.degrees(point))
        msg = (
            f"the edit would leave a grid whose outline nearly touches itself near "
            f"({where['lon']}, {where['lat']}) ({reason.split('[')[0]} once measured in "
            "metres): move the new edge away from the neighbour's corner; nothing was written"
        )
        raise ConflictError(msg, problems=[{"problem": "near self-touch"} | where])
    if not shapely.coverage_is_valid(final):
        edges = shapely.coverage_invalid_edges(final)
        bad = [e for e in edges if e is not None and not shapely.is_empty(e)]
        problems = [{"problem": "edges do not match"} | lonlat(e) for e in bad[:5]]
        msg = (
            "the grids after the edit would not share their edges exactly (near "
            + ", ".join(f"({p['lon']}, {p['lat']})" for p in problems)
            + "); nothing was written"
        )
        raise ConflictError(msg, problems=problems)
