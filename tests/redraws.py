"""Random coverages and redraws, and the Hypothesis settings, for the property tests.

Used by the ``test_*_property.py`` modules and by ``test_assign_postgis.py``. Every property
test is deterministic (``derandomize``): CI runs the same examples every time; set
``GIS_GRID_PROPERTY_EXAMPLES`` (in memory) or ``GIS_GRID_PROPERTY_EXAMPLES_DB`` (PostGIS)
to search longer.
"""

from __future__ import annotations

import os

import geopandas as gpd
import numpy as np
import shapely
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

SIDE = 1000.0  # metres; the EPSG:4490 variant scales it to ~0.01 degrees

OPS = ("split", "merge", "remove", "grow", "shrink", "move", "add", "rename", "copy")

X0, Y0 = 500_000.0, 3_400_000.0  # EPSG:4545 (false easting, northing), near 108 E 30.7 N


def property_settings(examples: int, *, database: bool = False) -> settings:
    """Deterministic Hypothesis settings: ``examples`` unless the environment asks for more."""
    variable = "GIS_GRID_PROPERTY_EXAMPLES_DB" if database else "GIS_GRID_PROPERTY_EXAMPLES"
    checks = [HealthCheck.too_slow]
    if database:  # the rolled-back connection fixture serves every example (savepoints)
        checks.append(HealthCheck.function_scoped_fixture)
    return settings(
        max_examples=int(os.environ.get(variable, str(examples))),
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=checks,
    )


def edit_chains(*, min_size: int = 0, max_size: int = 4) -> st.SearchStrategy:
    """Lists of redraws ``(op, pick, amount)`` for :func:`edit`."""
    edit_step = st.tuples(st.sampled_from(OPS), st.integers(0, 10**6), st.floats(0.05, 0.95))
    return st.lists(edit_step, min_size=min_size, max_size=max_size)


def coverage(
    seed: int, n: int, crs: int, origin: tuple[float, float] = (107.5, 31.2)
) -> gpd.GeoDataFrame:
    """A Voronoi coverage of a square: ``n`` grids, codes in an order unlike the rows'."""
    rng = np.random.default_rng(seed)
    seeds = shapely.multipoints(rng.uniform(0, SIDE, size=(n, 2)))
    frame = shapely.box(0, 0, SIDE, SIDE)
    cells = shapely.get_parts(shapely.voronoi_polygons(seeds, extend_to=frame))
    cells = shapely.intersection(cells, frame)
    codes = [f"G{int(k):03d}" for k in rng.permutation(len(cells))]
    return place(gpd.GeoDataFrame({"code": codes}, geometry=cells, crs=4545), crs, origin)


def metric_coverage(seed: int, n: int) -> gpd.GeoDataFrame:
    """:func:`coverage` in EPSG:4545 at real Gauss-Krüger coordinates (from ``X0, Y0``)."""
    grids = coverage(seed, n, 4545)
    return grids.set_geometry(grids.geometry.translate(X0, Y0))


def place(frame: gpd.GeoDataFrame, crs: int, origin: tuple[float, float]) -> gpd.GeoDataFrame:
    """Metres as they are, or the same layout scaled to degrees from ``origin`` (lon, lat)."""
    if crs == 4545:
        return frame
    geoms = [
        shapely.affinity.affine_transform(g, [1e-5, 0, 0, 1e-5, *origin]) for g in frame.geometry
    ]
    return gpd.GeoDataFrame(frame.drop(columns="geometry"), geometry=geoms, crs=crs)


def points_for(grids: gpd.GeoDataFrame, seed: int) -> gpd.GeoDataFrame:
    """Random points, some outside, plus every vertex and edge midpoints of ``grids``."""
    rng = np.random.default_rng(seed + 1)
    minx, miny, maxx, maxy = grids.total_bounds
    w, h = maxx - minx, maxy - miny
    xy = rng.uniform((minx - 0.1 * w, miny - 0.1 * h), (maxx + 0.1 * w, maxy + 0.1 * h), (600, 2))
    vertices = shapely.get_coordinates(grids.geometry.boundary)
    # Midpoints of the frame's straight edges lie exactly on them (x or y is exact).
    edge = np.linspace(minx, maxx, 7)[1:-1]
    on_edges = np.column_stack([edge, np.full(edge.size, miny)])
    xy = np.concatenate([xy, vertices, on_edges])
    return gpd.GeoDataFrame(geometry=gpd.points_from_xy(xy[:, 0], xy[:, 1]), crs=grids.crs)


def fresh(code: str, taken: list[str]) -> str:
    """``code`` made unique among ``taken`` (a redraw never duplicates a code)."""
    while code in taken:
        code += "x"
    return code


def edit(grids: gpd.GeoDataFrame, op: str, pick: int, amount: float) -> gpd.GeoDataFrame:
    """Apply one redraw to a copy of ``grids``; ``pick`` chooses the grid, ``amount`` its size."""
    grids = grids.reset_index(drop=True)
    i = pick % len(grids)
    geoms = list(grids.geometry)
    codes = list(grids["code"])
    minx, miny, maxx, maxy = grids.total_bounds
    scale = max(maxx - minx, maxy - miny) / 20  # about a grid's half width
    shape, code = geoms[i], codes[i]
    if op == "split":
        x0, y0, x1, y1 = shape.bounds
        cut = x0 + (x1 - x0) * (0.2 + 0.6 * amount)
        west = shapely.intersection(shape, shapely.box(x0 - 1, y0 - 1, cut, y1 + 1))
        east = shapely.intersection(shape, shapely.box(cut, y0 - 1, x1 + 1, y1 + 1))
        if west.area > 0 and east.area > 0:
            geoms[i] = west
            geoms.append(east)
            codes.append(fresh(f"{code}s", codes))
    elif op == "merge":
        tree = shapely.STRtree(geoms)
        near = [int(j) for j in tree.query(shape, predicate="intersects") if int(j) != i]
        if near:
            j = near[int(amount * len(near)) % len(near)]
            keep, drop = (i, j) if codes[i] < codes[j] else (j, i)
            geoms[keep] = shapely.union(geoms[i], geoms[j])
            del geoms[drop], codes[drop]
    elif op == "remove" and len(geoms) > 1:
        del geoms[i], codes[i]
    elif op == "grow":
        geoms[i] = shape.buffer(scale * amount, quad_segs=2)
    elif op == "shrink":
        shrunk = shape.buffer(-scale * amount / 2, quad_segs=2)
        if not shrunk.is_empty:
            geoms[i] = shrunk
    elif op == "move":
        geoms[i] = shapely.affinity.translate(shape, scale * (amount - 0.5), scale * amount / 3)
    elif op == "add":
        x = minx + (maxx - minx) * amount
        geoms.append(shapely.box(x, maxy - scale, x + 2 * scale, maxy + scale))
        codes.append(fresh("A", codes))
    elif op == "rename":
        codes[i] = fresh(f"R{int(amount * 1000):03d}{code}", codes)
    elif op == "copy":  # equal shapes as new objects (as read again from the database)
        geoms = list(shapely.from_wkb(shapely.to_wkb(np.asarray(geoms, dtype=object))))
    return gpd.GeoDataFrame({"code": codes}, geometry=geoms, crs=grids.crs)
