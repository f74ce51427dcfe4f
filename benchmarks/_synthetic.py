"""Seeded synthetic data for benchmarks: Voronoi grids and clustered households.

Everything here is synthetic and reproducible from its seed; every frame carries a
``synthetic = "Y"`` column and ``attrs["source"]`` saying how it was made (DOMAIN.md).

The grids are a clean coverage (no gaps, no overlaps, shared vertices identical) of
100 km × 100 km in EPSG:4545 (CGCS2000 Gauss-Krüger CM 108 E, the zone of Dachuan), placed
around Dachuan so that the same data can be taken to EPSG:4490 and loaded into PostGIS.

API
---
``make_grids(n, *, seed)``
    ``n`` Voronoi grids with codes ``G0000001`` … numbered in a shuffled order (so that row
    order and code order differ), columns ``code``, ``synthetic``, ``geometry``.
``make_points(n, grids, *, seed, on_vertices=0.0, outside=0.0)``
    ``n`` clustered points (hamlets of varied size and spread plus a sparse background) over
    the grids' extent; optionally a fraction placed exactly on grid vertices (shared borders)
    and a fraction outside every grid. Columns ``pid``, ``synthetic``, ``geometry``.
``redraw(grids, *, fraction, seed)``
    Redraw ``fraction`` of the grids exactly (no new vertices, the coverage stays clean): half
    are split along a chord between two of their vertices (the new part gets code ``<code>b``),
    the others are merged with a neighbour (the merged grid keeps the smaller code).
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

__all__ = ["CRS", "EXTENT", "changed_codes", "make_grids", "make_points", "redraw"]

#: CGCS2000 / 3-degree Gauss-Krüger CM 108E.
CRS = "EPSG:4545"
#: (minx, miny, maxx, maxy) in EPSG:4545: 100 km × 100 km around Dachuan (~107.4 E, 31.1 N).
EXTENT = (440_000.0, 3_390_000.0, 540_000.0, 3_490_000.0)
#: Vertices snapped to this grid (metres) so that neighbours share identical coordinates.
_PRECISION = 0.001


def make_grids(n: int, *, seed: int) -> gpd.GeoDataFrame:
    """Return ``n`` Voronoi grids tiling :data:`EXTENT` exactly (a clean coverage).

    Seeds are drawn with a density that varies smoothly (denser in the centre, like a town
    around its seat) so that grid sizes vary by a factor of ~5.
    """
    rng = np.random.default_rng(seed)
    minx, miny, maxx, maxy = EXTENT
    # Rejection sampling against a smooth density: 1 at the centre, 0.2 at the corners.
    seeds = np.empty((0, 2))
    while len(seeds) < n:
        cand = rng.uniform((minx, miny), (maxx, maxy), size=(2 * n, 2))
        r = np.hypot(cand[:, 0] - (minx + maxx) / 2, cand[:, 1] - (miny + maxy) / 2)
        keep = rng.uniform(size=len(cand)) < 0.2 + 0.8 * np.exp(-((r / 35_000.0) ** 2))
        seeds = np.vstack([seeds, cand[keep]])
    seeds = seeds[:n]
    frame = shapely.box(*EXTENT)
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=frame))
    cells = shapely.intersection(cells, frame)
    # Clipping computes the frame crossings per cell; snapping makes neighbours agree exactly.
    cells = shapely.set_precision(cells, _PRECISION)
    cells = cells[~shapely.is_empty(cells)]
    codes = np.array([f"G{i:07d}" for i in rng.permutation(len(cells)) + 1])
    grids = gpd.GeoDataFrame({"code": codes, "synthetic": "Y"}, geometry=np.asarray(cells), crs=CRS)
    grids.attrs["source"] = f"benchmarks/_synthetic.py make_grids(n={n}, seed={seed})"
    return grids


def make_points(
    n: int,
    grids: gpd.GeoDataFrame,
    *,
    seed: int,
    on_vertices: float = 0.0,
    outside: float = 0.0,
) -> gpd.GeoDataFrame:
    """Return ``n`` clustered points over the extent of ``grids``.

    80 % of the points fall in Gaussian hamlets (sizes from a Pareto law, spreads 50-800 m),
    20 % uniformly; points drawn outside the extent are redrawn inside it. Then a fraction
    ``on_vertices`` is moved exactly onto grid vertices (most are shared by three grids) and
    a fraction ``outside`` is moved 1 m - 5 km outside the extent, west or east.
    """
    rng = np.random.default_rng(seed)
    minx, miny, maxx, maxy = (float(v) for v in grids.total_bounds)
    n_hamlets = max(1, n // 400)
    centres = rng.uniform((minx, miny), (maxx, maxy), size=(n_hamlets, 2))
    weights = rng.pareto(1.5, n_hamlets) + 1.0
    spread = rng.uniform(50.0, 800.0, n_hamlets)
    n_clustered = int(0.8 * n)
    which = rng.choice(n_hamlets, size=n_clustered, p=weights / weights.sum())
    xy = np.empty((n, 2))
    xy[:n_clustered] = centres[which] + rng.normal(size=(n_clustered, 2)) * spread[which, None]
    xy[n_clustered:] = rng.uniform((minx, miny), (maxx, maxy), size=(n - n_clustered, 2))
    lo, hi = np.array([minx, miny]), np.array([maxx, maxy])
    bad = ((xy < lo) | (xy > hi)).any(axis=1)
    xy[bad] = rng.uniform(lo, hi, size=(int(bad.sum()), 2))
    rows = rng.permutation(n)
    n_vertex = round(on_vertices * n)
    n_out = round(outside * n)
    if n_vertex:
        vertices = shapely.get_coordinates(np.asarray(grids.geometry))
        xy[rows[:n_vertex]] = vertices[rng.integers(0, len(vertices), n_vertex)]
    if n_out:
        out = rows[n_vertex : n_vertex + n_out]
        side = rng.integers(0, 2, n_out)
        offset = rng.uniform(1.0, 5_000.0, n_out)
        xy[out, 0] = np.where(side == 0, minx - offset, maxx + offset)
    points = gpd.GeoDataFrame(
        {"pid": np.arange(n, dtype=np.int64), "synthetic": "Y"},
        geometry=shapely.points(xy),
        crs=grids.crs,
    )
    points.attrs["source"] = (
        f"benchmarks/_synthetic.py make_points(n={n}, seed={seed}, "
        f"on_vertices={on_vertices}, outside={outside})"
    )
    return points


def _chord_split(polygon: shapely.Polygon) -> tuple[shapely.Polygon, shapely.Polygon] | None:
    """Split a convex polygon along the chord between two opposite vertices (no new vertex)."""
    ring = shapely.get_coordinates(polygon.exterior)[:-1]
    k = len(ring)
    if k < 4:
        return None
    j = k // 2
    first = shapely.Polygon(ring[: j + 1])
    second = shapely.Polygon(np.vstack([ring[j:], ring[:1]]))
    if not (first.is_valid and second.is_valid) or first.area == 0 or second.area == 0:
        return None
    return first, second


def redraw(grids: gpd.GeoDataFrame, *, fraction: float, seed: int) -> gpd.GeoDataFrame:
    """Return a copy of ``grids`` with ``fraction`` of them split or merged (see module doc).

    Only the redrawn grids change; every other row keeps its geometry object and code.
    """
    rng = np.random.default_rng(seed)
    geoms = np.asarray(grids.geometry, dtype=object).copy()
    codes = grids["code"].to_numpy(dtype=object).copy()
    n_target = max(1, round(fraction * len(grids)))
    tree = shapely.STRtree(geoms)
    touched = np.zeros(len(grids), dtype=bool)
    removed: list[int] = []
    extra_geoms: list[object] = []
    extra_codes: list[str] = []
    changed = 0
    # A handful of grids per redraw: a Python loop is fine here (benchmark set-up, not timed).
    for i in rng.permutation(len(grids)):
        if changed >= n_target:
            break
        if touched[i]:
            continue
        if changed % 2 == 0:
            parts = _chord_split(geoms[i])
            if parts is None:
                continue
            geoms[i] = parts[0]
            extra_geoms.append(parts[1])
            extra_codes.append(f"{codes[i]}b")
            touched[i] = True
            changed += 1
        else:
            neighbours = [
                j for j in tree.query(geoms[i], predicate="touches") if j != i and not touched[j]
            ]
            shared = [j for j in neighbours if geoms[i].intersection(geoms[j]).length > 0]
            if not shared:
                continue
            j = int(rng.choice(shared))
            keep, drop = (i, j) if codes[i] < codes[j] else (j, i)
            geoms[keep] = shapely.union(geoms[i], geoms[j])
            removed.append(drop)
            touched[[i, j]] = True
            changed += 2
    keep_rows = np.setdiff1d(np.arange(len(grids)), removed)
    out = gpd.GeoDataFrame(
        {
            "code": np.concatenate([codes[keep_rows], np.array(extra_codes, dtype=object)]),
            "synthetic": "Y",
        },
        geometry=np.concatenate([geoms[keep_rows], np.array(extra_geoms, dtype=object)]),
        crs=grids.crs,
    )
    out.attrs["source"] = f"{grids.attrs.get('source', 'grids')} + redraw(fraction={fraction})"
    return out


def changed_codes(old: gpd.GeoDataFrame, new: gpd.GeoDataFrame) -> pd.Index:
    """Codes whose geometry differs between two versions (added, removed or redrawn)."""
    a = old.set_index("code").geometry
    b = new.set_index("code").geometry
    both = a.index.intersection(b.index)
    differ = ~shapely.equals_exact(
        np.asarray(a.loc[both], dtype=object), np.asarray(b.loc[both], dtype=object), 0.0
    )
    return a.index.symmetric_difference(b.index).append(both[differ])
