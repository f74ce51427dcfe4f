"""Re-assignment after a redraw: only the points inside the changed area are located again.

A point's grid can change only if a grid covering it before or after the redraw changed: its
covering set is otherwise the same, and so is the winner of the border rule. So the points
re-examined are

* those assigned before to a grid that changed or disappeared (they lie inside its old shape),
* those covered by the new shape of a changed or added grid,
* those outside every grid before.

They are found without touching the other points: the points are bucketed once (a 256 × 256
grid of buckets sorted by radix sort, kept with the result and passed on to the next version),
and only the buckets under the changed shapes' bounding boxes are read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import shapely

from gis_grid.assign._assign import AssignmentResult, check_index, make_result, nearest_grids
from gis_grid.assign._index import BORDER, GridIndex, grid_order, object_ids, planar, resolve
from gis_grid.crs import require_crs
from gis_grid.errors import CRSError, DataFileError
from gis_grid.io import check_geometries

if TYPE_CHECKING:
    import geopandas as gpd
    from numpy.typing import NDArray
    from pyproj import CRS

__all__ = ["reassign_points"]

_SLACK = 1.05  # as in nearest_grids: metres vs degrees, plus Gauss-Krüger scale
_SIDE = 256  # buckets per side: keys fit in uint16, which numpy sorts by radix
_POLYGONAL = ("Polygon", "MultiPolygon")
_GATHER_SLICE = 1 << 18  # points per slice when carrying positions over to a new version


@dataclass(frozen=True)
class _Buckets:
    origin: tuple[float, float]
    size: tuple[float, float]
    order: NDArray[np.intp]  # point rows sorted by bucket
    starts: NDArray[np.intp]  # order[starts[k]:starts[k + 1]] are the rows of bucket k
    # The points' coordinates in that order: the points of a box are read from a few
    # contiguous runs instead of gathered from all over the arrays.
    xs: NDArray[np.float64]
    ys: NDArray[np.float64]

    def keys(
        self, x: NDArray[np.float64], y: NDArray[np.float64]
    ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        kx = np.clip(np.floor((x - self.origin[0]) / self.size[0]), 0, _SIDE - 1)
        ky = np.clip(np.floor((y - self.origin[1]) / self.size[1]), 0, _SIDE - 1)
        return kx.astype(np.int64), ky.astype(np.int64)


def _buckets(result: AssignmentResult) -> _Buckets:
    cached = result.cache.get("buckets")
    if isinstance(cached, _Buckets):
        return cached
    minx, miny, maxx, maxy = result.index.extent
    size = (max((maxx - minx) / _SIDE, 1e-12), max((maxy - miny) / _SIDE, 1e-12))
    none, nowhere = np.empty(0, np.intp), np.empty(0, np.float64)
    buckets = _Buckets((float(minx), float(miny)), size, none, none, nowhere, nowhere)
    kx, ky = buckets.keys(result.x, result.y)  # outside points clamp to the edge buckets
    key = (ky * _SIDE + kx).astype(np.uint16)
    order = np.argsort(key, kind="stable")
    starts = np.zeros(_SIDE * _SIDE + 1, dtype=np.intp)
    np.cumsum(np.bincount(key, minlength=_SIDE * _SIDE), out=starts[1:])
    buckets = _Buckets(buckets.origin, size, order, starts, result.x[order], result.y[order])
    result.cache["buckets"] = buckets
    return buckets


def _slots_in_boxes(
    buckets: _Buckets, boxes: NDArray[np.float64]
) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Pairs (slot, box) of the points in the buckets each box (minx, miny, maxx, maxy) touches.

    A slot indexes ``order``, ``xs`` and ``ys``. A point appears once per box whose buckets
    hold it; the caller filters by the exact shape.
    """
    x0, y0 = buckets.keys(boxes[:, 0], boxes[:, 1])
    x1, y1 = buckets.keys(boxes[:, 2], boxes[:, 3])
    nx, ny = x1 - x0 + 1, y1 - y0 + 1
    count = nx * ny
    box = np.repeat(np.arange(len(boxes)), count)
    local = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    keys = (y0[box] + local // nx[box]) * _SIDE + x0[box] + local % nx[box]
    starts, stops = buckets.starts[keys], buckets.starts[keys + 1]
    length = stops - starts
    offsets = np.repeat(starts - (np.cumsum(length) - length), length)
    return np.arange(length.sum()) + offsets, np.repeat(box, length)


def _distinct(values: NDArray[np.intp]) -> NDArray[np.intp]:
    """Sorted distinct values (a plain sort: np.unique's hash path is slower here)."""
    values = np.sort(values)
    keep = np.ones(values.size, dtype=bool)
    keep[1:] = values[1:] != values[:-1]
    return values[keep]


def _identical(
    old: GridIndex, old_pos: NDArray[np.intp], new: NDArray[np.object_]
) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """Tell which old/new pairs are the same object, and which others have equal coordinates.

    Returns ``(same, equal)``: the same object (the old objects are alive, held by the old
    index, so equal ids mean the same object), and another object with equal coordinates.
    """
    same = old.geometry_ids[old_pos] == object_ids(new)
    differ = np.flatnonzero(~same)
    equal = np.zeros_like(same)
    equal[differ] = shapely.equals_exact(old.geometries[old_pos[differ]], new[differ], 0.0)
    return same, equal


def _merged_order(
    grids: gpd.GeoDataFrame,
    grid_id: str,
    codes: NDArray[np.object_],
    old: GridIndex,
    old_pos: NDArray[np.intp],
) -> NDArray[np.intp]:
    """Rows of ``grids`` in code order, merging the known old order with the new codes.

    Checks what :func:`grid_order` checks (codes present, unique, orderable) at the cost of
    the few new codes only: sorting every code again would cost more than the update.
    """
    matched = np.flatnonzero(old_pos >= 0)
    added = np.flatnonzero(old_pos < 0)
    counts = np.bincount(old_pos[matched], minlength=len(old))
    new_codes = codes[added].tolist()  # few: plain Python, no pandas overhead
    try:
        if (counts > 1).any() or pd.isna(codes[added]).any() or len(set(new_codes)) < added.size:
            return grid_order(grids, grid_id)  # raises the standard message
        sort = np.array(sorted(range(added.size), key=new_codes.__getitem__), dtype=np.intp)
        added = added[sort]
        inverse = np.full(len(old), -1, dtype=np.intp)  # old position -> row, O(n) not a sort
        inverse[old_pos[matched]] = matched
        by_old = inverse[inverse >= 0]
        # How many kept codes sort before each new code.
        before = np.searchsorted(old.codes[inverse >= 0], codes[added])
    except TypeError:  # unhashable or unorderable codes
        return grid_order(grids, grid_id)  # raises the standard message
    key = np.concatenate([2 * np.arange(by_old.size) + 1, 2 * before])
    order = np.argsort(key, kind="stable")  # new codes in sorted order among equal keys
    return np.concatenate([by_old, added])[order]


def _new_grids(
    previous: AssignmentResult, grids: gpd.GeoDataFrame, grid_id: str, index: GridIndex | None
) -> tuple[GridIndex, NDArray[np.int32], NDArray[np.intp]]:
    """Compare versions: the new grid set, old -> new position (-2: changed), changed ones."""
    old = previous.index
    crs = require_crs(grids.crs, source="new grids")
    if crs is not old.crs and not crs.equals(old.crs, ignore_axis_order=True):
        msg = (
            f"new grids are in {crs.name}, the previous assignment in {old.crs.name}: "
            "convert them with .to_crs() first, or run assign_points() again"
        )
        raise CRSError(msg)
    if index is not None:
        check_index(index, grids, grid_id)
    column = grids[grid_id]
    old_pos = old.positions_in(column)
    # The codes as objects: the old index's for the codes it knows (no conversion of every
    # code from Arrow), the column's for the few others.
    codes = np.empty(len(grids), dtype=object)
    known = np.flatnonzero(old_pos >= 0)
    codes[known] = old.codes[old_pos[known]]
    unknown = np.flatnonzero(old_pos < 0)
    codes[unknown] = np.asarray(column.array.take(unknown), dtype=object)
    geoms = np.asarray(grids.geometry, dtype=object)
    rows = index.rows if index is not None else _merged_order(grids, grid_id, codes, old, old_pos)
    kept = np.flatnonzero(old_pos >= 0)
    same, equal = _identical(old, old_pos[kept], geoms[kept])
    other = kept[equal]  # unchanged, but a new object
    kept = kept[same | equal]
    is_changed = np.ones(len(grids), dtype=bool)
    is_changed[kept] = False
    changed = np.flatnonzero(is_changed)
    if changed.size:
        bad = shapely.is_missing(geoms[changed]) | ~np.isin(
            shapely.get_type_id(geoms[changed]), (3, 6)
        )
        if bad.any() or not shapely.is_valid(geoms[changed]).all():
            check_geometries(grids, source="new grids", id_field=grid_id, geom_types=_POLYGONAL)
    if index is None:
        merged = geoms.copy()
        merged[other] = old.geometries[old_pos[other]]  # equal and already prepared
        merged[changed] = planar(geoms[changed])
        index = GridIndex(
            codes=codes[rows],
            geometries=merged[rows],
            rows=rows,
            crs=old.crs,
            grid_id=grid_id,
            requested_cell_size=old.requested_cell_size,
            max_cells=old.max_cells,
        )
    position = np.empty(len(grids), dtype=np.intp)
    position[rows] = np.arange(len(grids))
    remap = np.full(len(old) + 1, -2, dtype=np.int32)
    remap[-1] = -1  # unassigned stays unassigned
    remap[old_pos[kept]] = position[kept]
    return index, remap, position[changed]


def _in_units(metres: NDArray[np.float64], crs: CRS) -> NDArray[np.float64]:
    """Metres as CRS units (degrees: as on the equator; :func:`_widened` makes it safe)."""
    if crs.is_geographic:
        return metres / 111_320.0
    return metres / (crs.axis_info[0].unit_conversion_factor if crs.axis_info else 1.0)


def _widened(reach: NDArray[np.float64], y: NDArray[np.float64], crs: CRS) -> NDArray[np.float64]:
    """Return a search radius (CRS units) that holds every grid within ``reach``.

    In lon/lat it is widened for the anisotropy, as in :func:`nearest_grids`; in metres only
    by a rounding margin.
    """
    if crs.is_geographic:
        return reach * _SLACK / np.cos(np.radians(np.minimum(np.abs(y) + reach, 80.0)))
    return reach * (1.0 + 1e-9)


def _near_unchanged(
    old: GridIndex,
    remap: NDArray[np.int32],
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    start: NDArray[np.float64],
) -> NDArray[np.intp]:
    """Old positions of the unchanged grids that can be the nearest to any of the points.

    Widen a search radius (CRS units) beyond ``start`` (no grid was nearer before) until it
    holds an unchanged grid, then once more for the lon/lat anisotropy: no unchanged grid
    outside the radius can be nearer.
    """
    points = np.asarray(shapely.points(x, y), dtype=object)
    minx, miny, maxx, maxy = old.extent
    span = float(max(maxx - minx, maxy - miny))
    step = np.full(x.size, span / np.sqrt(len(old)))  # about one grid's side
    reach = start + step
    todo = np.ones(x.size, dtype=bool)
    while todo.any():
        point_i, tree_i = old.tree.query(points[todo], predicate="dwithin", distance=reach[todo])
        hit = np.zeros(int(todo.sum()), dtype=bool)
        hit[point_i[remap[tree_i] >= 0]] = True
        grow = np.flatnonzero(todo)[~hit]
        todo[np.flatnonzero(todo)[hit]] = False
        step[grow] *= 2.0
        reach[grow] = start[grow] + step[grow]
        todo &= step < 4 * span  # then every grid was in reach: none is unchanged
    reach = _widened(reach, y, old.crs)
    _, tree_i = old.tree.query(points, predicate="dwithin", distance=reach)
    tree_i = np.unique(tree_i)
    return tree_i[remap[tree_i] >= 0]


def _nearest_after(
    previous: AssignmentResult,
    new: GridIndex,
    remap: NDArray[np.int32],
    changed: NDArray[np.intp],
    rows: NDArray[np.intp],
) -> tuple[NDArray[np.int32], NDArray[np.float64]]:
    """Nearest grid of the points ``rows`` (outside every new grid), in metres.

    For a point outside before whose nearest grid is unchanged, the nearest new grid is that
    one or a changed grid: only the changed grids are measured. For the others, the changed
    grids and the unchanged grids near the point are measured.
    """
    x, y = previous.x[rows], previous.y[rows]
    was_rows, was_dist = previous.outside, previous.nearest_distance
    at = np.minimum(np.searchsorted(was_rows, rows), max(was_rows.size - 1, 0))
    known = (was_rows[at] == rows) if was_rows.size else np.zeros(rows.size, dtype=bool)
    old_near = previous.nearest_positions
    near = np.full(rows.size, -2, dtype=np.int64)
    near[known] = np.where(old_near[at[known]] >= 0, remap[old_near[at[known]]], -2)
    cheap = near >= 0
    pos = np.full(rows.size, -1, dtype=np.int32)
    dist = np.full(rows.size, np.nan)
    if cheap.any():
        cheap_i = np.flatnonzero(cheap)
        prev_pos, prev_dist = near[cheap_i], was_dist[at[cheap_i]]
        pos[cheap_i], dist[cheap_i] = prev_pos, prev_dist
        # Only a changed grid within the previous distance can be nearer (or tie): measure
        # only the points that have one (usually none: they lie far from the redraw).
        shapes = new.geometries[changed]
        reach = _widened(_in_units(prev_dist, new.crs), y[cheap_i], new.crs)
        near_i, _ = shapely.STRtree(shapes).query(
            shapely.points(x[cheap_i], y[cheap_i]), predicate="dwithin", distance=reach
        )
        sub = np.unique(near_i)
        if sub.size:
            at_i = cheap_i[sub]
            c_pos, c_dist = nearest_grids(shapes, changed, new.crs, x[at_i], y[at_i])
            p_pos, p_dist = prev_pos[sub], prev_dist[sub]
            take = (c_pos >= 0) & ((c_dist < p_dist) | ((c_dist == p_dist) & (c_pos < p_pos)))
            pos[at_i] = np.where(take, c_pos, p_pos)
            dist[at_i] = np.where(take, c_dist, p_dist)
    if not cheap.all():
        hard = ~cheap
        metres = np.zeros(int(hard.sum()))
        metres[known[hard]] = was_dist[at[hard][known[hard]]]
        start = _in_units(np.nan_to_num(metres), previous.index.crs)
        near_old = _near_unchanged(previous.index, remap, x[hard], y[hard], start)
        subset = np.concatenate([changed, remap[near_old]])
        pos[hard], dist[hard] = nearest_grids(
            new.geometries[subset], subset, new.crs, x[hard], y[hard]
        )
    return pos, dist


def _locate_again(
    old: GridIndex,
    new: GridIndex,
    remap: NDArray[np.int32],
    changed: NDArray[np.intp],
    *,
    n_points: int,
    rows: NDArray[np.intp],
    pairs: tuple[NDArray[np.intp], NDArray[np.intp]],
    rx: NDArray[np.float64],
    ry: NDArray[np.float64],
) -> NDArray[np.int32]:
    """Locate the re-examined points ``rows`` (of ``n_points``) among the new grids.

    Candidates: the changed grids known to cover them (``pairs``: row, changed index; tested
    already) and the unchanged grids covering them. The old raster names those without a
    search or a test: a point in a raster cell holding grid ``g`` lies in the interior of
    ``g`` and of no other old grid, a point in an empty cell in none; only points in border
    cells (or without a raster) are searched and tested.
    """
    pair_row, pair_box = pairs
    slot_of = np.empty(n_points, dtype=np.int32)  # row -> its position in ``rows``
    slot_of[rows] = np.arange(rows.size, dtype=np.int32)
    point_i: list[NDArray[np.integer[Any]]] = [slot_of[pair_row]]
    grid_pos: list[NDArray[np.integer[Any]]] = [changed[pair_box]]
    shapes = [new.geometries[changed[pair_box]]]
    search = np.arange(rows.size)
    if "raster" in old.__dict__:  # built already; never build it here
        flat, inside = old.raster.cells(rx, ry)
        value = np.full(rows.size, BORDER, dtype=np.int32)
        value[inside] = old.raster.grid_of_cell[flat[inside]]
        single = np.flatnonzero(value >= 0)
        single = single[remap[value[single]] >= 0]
        point_i.append(single)
        grid_pos.append(remap[value[single]])
        shapes.append(old.geometries[value[single]])
        search = np.flatnonzero(value == BORDER)
    known = sum(part.size for part in point_i)
    p, t = old.tree.query(shapely.points(rx[search], ry[search]))
    keep = remap[t] >= 0
    point_i.append(search[p[keep]])
    grid_pos.append(remap[t[keep]])
    shapes.append(old.geometries[t[keep]])
    return resolve(
        rows.size,
        np.concatenate(point_i),
        np.concatenate(grid_pos),
        np.concatenate(shapes),
        x=rx,
        y=ry,
        known=known,
    )


def _carried_over(
    remap: NDArray[np.int32], before: NDArray[np.int32]
) -> tuple[NDArray[np.int32], bool]:
    """Every point's old position carried over to the new grid set.

    Returns ``(positions, gathered)``. The caller overwrites the rows of changed grids (all
    re-examined). When unchanged grids keep their positions (no grid added or removed before
    them: ``remap`` is the identity wherever it is not -2), a copy of ``before`` does: a
    memcpy instead of a gather through ``remap``, the largest cost of a small redraw at
    millions of points. Otherwise the gather marks changed grids' points -2, and the caller
    checks that none is left.
    """
    kept = np.flatnonzero(remap[:-1] >= 0)
    if np.array_equal(remap[kept], kept):
        return before.copy(), False
    # In slices: numpy converts int32 indices to intp first, and a converted slice stays in
    # cache (5M points: 6 ms instead of 14 ms; ``out=`` would make numpy buffer the output).
    positions = np.empty_like(before)
    for start in range(0, before.size, _GATHER_SLICE):
        stop = start + _GATHER_SLICE
        positions[start:stop] = np.take(remap, before[start:stop])
    return positions, True


def reassign_points(
    previous: AssignmentResult,
    new_grids: gpd.GeoDataFrame,
    *,
    grid_id: str | None = None,
    index: GridIndex | None = None,
) -> AssignmentResult:
    """Update an assignment after grids were redrawn, re-examining only the changed area.

    Parameters
    ----------
    previous
        The result of :func:`assign_points` (or of an earlier ``reassign_points``) for the
        previous grid version. Its points (their coordinates are kept in the result) are
        the ones re-assigned.
    new_grids
        All grids of the new version, in the same CRS. Grids whose code and geometry are
        unchanged are recognised (same object or exactly equal coordinates); the others
        (redrawn, added, removed) make up the changed area.
    grid_id
        The code column of ``new_grids``; by default the one of ``previous``.
    index
        A :class:`GridIndex` of ``new_grids``, if one was built already (its raster then
        locates the re-examined points); not needed.

    Returns
    -------
    AssignmentResult
        Equal to ``assign_points(points, new_grids)`` (tested), with ``reexamined`` listing
        the rows that were located again. Its ``index`` holds the new grids; its tree and
        raster are built only when needed.

    Raises
    ------
    CRSError
        The new grids have no CRS or another CRS than the previous assignment.
    GeometryError, DataFileError, DuplicateCodeError
        Bad new grids, as for :func:`assign_points` (only redrawn grids are re-validated).

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> from gis_grid.assign import assign_points
    >>> grids = gpd.GeoDataFrame({"code": ["A", "B"]}, crs=4545,
    ...     geometry=[shapely.box(0, 0, 100, 100), shapely.box(100, 0, 200, 100)])
    >>> pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy([50, 90, 150], [50] * 3), crs=4545)
    >>> before = assign_points(pts, grids)
    >>> moved = grids.copy()
    >>> moved.geometry = [shapely.box(0, 0, 80, 100), shapely.box(80, 0, 200, 100)]
    >>> after = reassign_points(before, moved)
    >>> before.grid.tolist(), after.grid.tolist()
    (['A', 'A', 'B'], ['A', 'B', 'B'])
    """
    old = previous.index
    grid_id = old.grid_id if grid_id is None else grid_id
    if grid_id not in new_grids.columns:
        msg = f"new grids: no column {grid_id!r}; pass grid_id= naming the code column"
        raise DataFileError(msg)
    new, remap, changed = _new_grids(previous, new_grids, grid_id, index)
    before = previous.positions
    x, y = previous.x, previous.y
    outside_before = previous.outside
    old_changed = np.flatnonzero(remap[:-1] == -2)
    if old_changed.size or changed.size:
        buckets = _buckets(previous)
        slot, _ = _slots_in_boxes(buckets, shapely.bounds(old.geometries[old_changed]))
        row = buckets.order[slot]
        lost = row[remap[before[row]] == -2]  # their old grid changed or went
        # Pairs (point, new shape) with the point in the shape's buckets, then in the shape
        # (the prepared test rejects points outside the shape's box first, at little cost).
        slot, box = _slots_in_boxes(buckets, shapely.bounds(new.geometries[changed]))
        shapes = new.geometries[changed[box]]
        covered = shapely.intersects_xy(shapes, buckets.xs[slot], buckets.ys[slot])
        row, box = buckets.order[slot[covered]], box[covered]
        rows = _distinct(np.concatenate([lost, row, outside_before]))
    else:
        rows = outside_before
        row = box = np.empty(0, dtype=np.intp)
    rx, ry = x[rows], y[rows]
    if index is not None:
        found = index.locate(rx, ry)
    else:
        found = _locate_again(
            old, new, remap, changed, n_points=len(x), rows=rows, pairs=(row, box), rx=rx, ry=ry
        )
    positions, gathered = _carried_over(remap, before)
    positions[rows] = found
    if gathered and positions.min(initial=0) < -1:  # pragma: no cover - would be a bug
        msg = "internal error: a point of a changed grid was not re-examined"
        raise AssertionError(msg)
    missing = rows[found < 0]
    nearest = _nearest_after(previous, new, remap, changed, missing)
    result = make_result(
        new,
        positions,
        x,
        y,
        labels=previous.labels,
        crs_note=previous.crs_note,
        nearest=nearest,
        reexamined=rows,
        outside=missing,
    )
    if "buckets" in previous.cache:  # same points: the next redraw reuses them
        result.cache["buckets"] = previous.cache["buckets"]
    return result
