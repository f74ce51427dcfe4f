"""The initial grid plan: balanced grids inside every village, coded by gis_grid.codes.

Per village, households are clustered with k-means into ``k = round(households / 220)``
groups; grids are grown on the town's cost graph from the household nearest each cluster
centre, and additive offsets are tuned for a few rounds so that overloaded grids shrink
(a capacity-balanced, connected partition). The raster regions of all villages are then
rebuilt into polygons from one noded linework, so grids tile their village exactly and
villages tile the town, vertex for vertex.

Grid codes are the library's own: :func:`gis_grid.codes.grid_codes` (the 12-digit village code
plus a 3-digit sequence numbered west->east, north->south by that module's row rule), applied
to each village's grids in lon/lat (EPSG:4490), exactly as they are written out, so the
shipped codes are what the platform's quality check expects.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray

from gis_grid.codes import grid_codes
from scripts.sample_data import WORK_EPSG
from scripts.sample_data.raster import (
    faces_to_regions,
    grow_regions,
    noded_faces,
    regions_to_polygons,
)
from scripts.sample_data.settle import Town, _kmeans

__all__ = ["HOUSEHOLDS_PER_GRID", "build_grids"]

#: Households per grid aimed at (national practice: 200-300 per member; 150-300 here).
HOUSEHOLDS_PER_GRID = 220


def _balanced_regions(
    rng: np.random.Generator, town: Town, village: shapely.Polygon, hh_xy: NDArray
) -> NDArray[np.int64]:
    """Label raster (full frame, -1 outside) of the grids of one village."""
    frame = town.frame
    n = len(hh_xy)
    k = max(1, round(n / HOUSEHOLDS_PER_GRID))
    idx = np.flatnonzero(frame.mask(village.buffer(3 * frame.res)))
    sub = town.graph[idx][:, idx]
    hh_local = np.searchsorted(idx, frame.cell_of(hh_xy[:, 0], hh_xy[:, 1]))
    centres = hh_xy.mean(axis=0, keepdims=True) if k == 1 else _kmeans(rng, hh_xy, k)
    near = np.argmin(
        np.hypot(hh_xy[:, None, 0] - centres[:, 0], hh_xy[:, None, 1] - centres[:, 1]), axis=0
    )
    seeds = np.unique(hh_local[near])
    k = seeds.size
    offsets = np.zeros(k)
    step = 0.4 * np.sqrt(village.area / k)
    best, best_dev = None, np.inf
    for it in range(40):
        lab, _, _ = grow_regions(sub, seeds, offsets)
        loads = np.bincount(lab[hh_local], minlength=k)
        dev = loads / loads.mean() - 1
        if np.abs(dev).max() < best_dev:
            best, best_dev = lab, float(np.abs(dev).max())
        if best_dev < 0.15:
            break
        offsets += step * 0.93**it * np.clip(dev, -1, 1)
    full = np.full(frame.size, -1, dtype=np.int64)
    full[idx] = best
    return full


def build_grids(rng: np.random.Generator, town: Town) -> gpd.GeoDataFrame:
    """Grow the grid plan of every village of ``town`` and rebuild the village polygons.

    The town's villages are replaced by the union of their grids (same shape, with the
    extra vertices where grid lines meet the village edge), keeping both coverages exact.

    Returns
    -------
    geopandas.GeoDataFrame
        ``grid_code``, ``vill_code``, ``seq``, ``grid_name``, ``households``, ``people`` in
        EPSG:4545.
    """
    villages = town.villages
    hh = town.households
    pieces, piece_grid, piece_vill = [], [], []
    grid_vill: list[int] = []
    for vi, vrow in enumerate(villages.itertuples()):
        sel = (hh["vill_code"] == vrow.vill_code).to_numpy()
        full = _balanced_regions(rng, town, vrow.geometry, hh.loc[sel, ["x", "y"]].to_numpy())
        full = np.where(full >= 0, full + len(grid_vill), -1)
        polys, labels = regions_to_polygons(town.frame, full, tolerance=town.frame.res * 1.2)
        pieces.append(polys)
        piece_grid.append(labels)
        piece_vill.append(np.full(len(labels), vi))
        grid_vill += [vi] * (int(full.max()) + 1 - len(grid_vill))
    pieces_a = np.concatenate(pieces)
    piece_grid_a = np.concatenate(piece_grid)
    piece_vill_a = np.concatenate(piece_vill)

    vgeoms = villages.geometry.to_numpy()
    near_v = shapely.buffer(vgeoms[piece_vill_a], 10.0)
    lines = [*shapely.boundary(vgeoms), *shapely.intersection(shapely.boundary(pieces_a), near_v)]
    faces = noded_faces(lines)
    rep = shapely.point_on_surface(faces)
    faces, rep = (
        faces[shapely.contains(town.polygon, rep)],
        rep[shapely.contains(town.polygon, rep)],
    )
    fi, vi = shapely.STRtree(vgeoms).query(rep, predicate="within")
    face_vill = np.full(len(faces), -1)
    face_vill[fi] = vi
    fi, pi = shapely.STRtree(pieces_a).query(rep, predicate="within")
    ok = piece_vill_a[pi] == face_vill[fi]
    face_grid = np.full(len(faces), -1)
    face_grid[fi[ok]] = piece_grid_a[pi[ok]]
    if (face_grid < 0).any():  # a sliver outside every piece: nearest grid of its village
        for f in np.flatnonzero(face_grid < 0):
            cand = np.flatnonzero(piece_vill_a == face_vill[f])
            face_grid[f] = piece_grid_a[cand[np.argmin(shapely.distance(pieces_a[cand], rep[f]))]]
    regions = faces_to_regions(faces, face_grid, groups=face_vill)

    labels = np.array(sorted(regions))
    geoms = np.asarray([regions[k] for k in labels], dtype=object)
    vill_idx = np.array([face_vill[np.flatnonzero(face_grid == k)[0]] for k in labels])
    grids = gpd.GeoDataFrame(
        {"vill_code": villages["vill_code"].to_numpy()[vill_idx]}, geometry=geoms, crs=WORK_EPSG
    )
    new_v = [shapely.coverage_union_all(geoms[vill_idx == i]) for i in range(len(villages))]
    town.villages = villages.set_geometry(gpd.GeoSeries(new_v, crs=WORK_EPSG, index=villages.index))

    # Codes from the geometries as written (EPSG:4490), by the library's single numbering rule.
    lonlat = grids.geometry.to_crs(4490).to_numpy()
    codes = np.empty(len(grids), dtype=object)
    for i, vill_code in enumerate(town.villages["vill_code"]):
        sel = vill_idx == i
        codes[sel] = grid_codes(vill_code, lonlat[sel])
    grids["grid_code"] = codes.astype(str)
    grids["seq"] = grids["grid_code"].str[12:].astype(np.int64)
    short = town.villages.set_index("vill_code")["vill_name"].str.replace(
        r"(社区居民委员会|村民委员会)$", "", regex=True
    )
    grids["grid_name"] = grids["vill_code"].map(short) + "第" + grids["seq"].astype(str) + "网格"
    pts = shapely.points(hh[["x", "y"]].to_numpy())
    hi, gi = shapely.STRtree(grids.geometry.to_numpy()).query(pts, predicate="intersects")
    first = pd.Series(gi, index=hi).groupby(level=0).min().reindex(range(len(hh)))
    hh["grid_code"] = grids["grid_code"].to_numpy()[first.to_numpy()]
    stats = hh.groupby("grid_code").agg(households=("people", "size"), people=("people", "sum"))
    grids = grids.join(stats, on="grid_code").sort_values("grid_code", ignore_index=True)
    return grids[["grid_code", "vill_code", "seq", "grid_name", "households", "people", "geometry"]]
