"""In-memory assignment on random grids equals the border rule spelled out (Hypothesis).

``test_assign.py`` checks hand-made cases and one synthetic coverage against
:func:`tests.test_assign.brute_force` (every grid tested against every point: interior
first, then the smallest code). Here Hypothesis draws what the lookup raster finds hardest:
Voronoi coverages (tests/redraws.py) edited into overlaps, gaps, moved and split grids,
grids with holes, slivers narrower than a raster cell, in metres and in degrees, with raster
cells from a fraction of a grid to several grids wide; the points include every vertex (on
borders) and points outside. Every point must get the brute force's grid, and the points
outside every grid must be reported.

Deterministic (``derandomize``): the same examples every CI run.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from hypothesis import given
from hypothesis import strategies as st

from gis_grid.assign import assign_points, build_grid_index
from tests.redraws import coverage, edit, edit_chains, points_for, property_settings
from tests.test_assign import brute_force, codes_of

PROPERTY = property_settings(60)


@PROPERTY
@given(
    seed=st.integers(0, 2**16),
    n=st.integers(1, 30),
    crs=st.sampled_from([4545, 4490]),
    edits=edit_chains(),
    holes=st.lists(st.tuples(st.integers(0, 10**6), st.floats(0.05, 0.4)), max_size=2),
    sliver=st.booleans(),
    cells=st.sampled_from([None, 0.02, 0.2, 1.0, 3.0]),
)
def test_assignment_equals_brute_force(*, seed, n, crs, edits, holes, sliver, cells):
    grids = coverage(seed, n, crs)
    points = points_for(grids, seed)  # vertices of the coverage before the edits
    for op, pick, amount in edits:
        grids = edit(grids, op, pick, amount)
    grids = grids.reset_index(drop=True)
    minx, miny, maxx, maxy = grids.total_bounds
    side = max(maxx - minx, maxy - miny)
    for pick, size in holes:  # a hole in the middle of a grid (its points go elsewhere)
        i = pick % len(grids)
        centre = grids.geometry[i].representative_point()
        hole = shapely.box(*shapely.buffer(centre, size * side / 10, quad_segs=1).bounds)
        cut = shapely.difference(grids.geometry[i], hole)
        if not cut.is_empty and cut.geom_type in ("Polygon", "MultiPolygon"):
            grids.loc[i, "geometry"] = cut
    if sliver:  # a grid far thinner than a raster cell, across the others
        y = miny + (maxy - miny) / 3
        thin = shapely.box(minx, y, maxx, y + side * 1e-4)
        grids.loc[len(grids)] = ["Z0", thin]
    # Points along every final boundary, on it (to rounding) and a hair to either side: where
    # a raster cell the boundary crosses but the build missed would give the wrong grid.
    rng = np.random.default_rng(seed + 2)
    lines = np.repeat(np.asarray(grids.geometry.boundary.array), 20)
    along = shapely.line_interpolate_point(lines, rng.uniform(0, 1, lines.size), normalized=True)
    xy = shapely.get_coordinates(along)
    nudge = side * 1e-7 * rng.choice([-1.0, 0.0, 1.0], size=xy.shape)
    xy = np.concatenate([xy, xy + nudge])
    near = gpd.GeoDataFrame(geometry=gpd.points_from_xy(xy[:, 0], xy[:, 1]), crs=grids.crs)
    points = pd.concat([points, near], ignore_index=True)
    cell = None if cells is None else cells * side / np.sqrt(len(grids))
    index = build_grid_index(grids, cell_size=cell)
    result = assign_points(points, grids, index=index)
    expected = brute_force(points, grids)
    assert codes_of(result) == list(expected)
    outside = np.flatnonzero(expected == None)  # noqa: E711 - elementwise on objects
    assert result.unassigned["row"].tolist() == outside.tolist()
