"""Building blocks of grids: faces of the village boundaries, natural lines and Voronoi cells.

All linework (village boundaries, natural lines, the boundaries of grids that must be kept,
and the edges of a Voronoi diagram of seeds) is noded and polygonised: the faces tile every
village exactly and neighbours share identical vertices, so any union of faces is a clean
coverage whose boundaries follow natural lines or straight Voronoi edges, never pixels.

Noding keeps the outlines exact. The drawn lines (Voronoi edges, natural lines) are taken to
the villages' storage CRS (EPSG:4490 in the database) and noded once, without any snapping,
with the village outlines and the kept grids *as stored*: noding only adds vertices, so every
face's outer edge carries the village's own coordinates and the grids of a village tile it
exactly, not within a re-projection round trip (the earlier noding in metres on a 1 cm grid
left the grids ~0.1 m off their outline). The faces are then projected to metres (a pointwise,
deterministic transform: shared vertices stay bitwise identical) for the areas, lengths and
adjacency the partition works on.

Seeds are households sampled in proportion to their load (so blocks carry similar loads)
plus a jittered lattice over empty land (so blocks there stay compact). Faces much smaller
than a typical block (slivers between a line and a Voronoi edge) are merged into the
neighbour they share most border with; the merged groups are the *units* the partition moves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import shapely
from scipy.spatial import cKDTree

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["Units", "build_units"]

#: A shared segment lies on a line when its midpoint is this close (metres).
_ON_LINE_M = 0.05
#: Widest sliver between a village outline and a kept grid joined to that grid (metres).
_SLIVER_M = 1.0
#: Faces smaller than this share of a village's typical block are merged into a neighbour.
_SLIVER_SHARE = 0.08


@dataclass(frozen=True)
class Units:
    """Faces, the units they form, and the units' adjacency (all in metres).

    ``edges`` has one row per pair of units of the same village sharing a border: ``a < b``,
    ``length`` (m), ``guide_m`` and ``barrier_m`` (the parts of it lying on guide or barrier
    lines). ``cut`` is the label of the face's enclosing cut polygon (a kept grid), or -1.
    ``faces`` are in metres, ``store_faces`` the same faces in the storage CRS (exact
    village outlines: dissolve these for the grids).
    """

    faces: NDArray[np.object_]
    store_faces: NDArray[np.object_]
    face_unit: NDArray[np.intp]
    village: NDArray[np.intp]
    cut: NDArray[np.intp]
    load: NDArray[np.float64]
    people: NDArray[np.float64]
    households: NDArray[np.float64]
    point_unit: NDArray[np.intp]
    edges: pd.DataFrame

    @property
    def n(self) -> int:
        """Number of units."""
        return len(self.village)


def _seeds(
    village: shapely.Geometry,
    xy: NDArray[np.float64],
    weight: NDArray[np.float64],
    m: int,
    rng: np.random.Generator,
) -> NDArray[np.float64]:
    unique: NDArray[np.intp] = (
        np.unique(np.round(xy, 1), axis=0, return_index=True)[1]
        if len(xy)
        else np.empty(0, dtype=np.intp)
    )
    chosen = np.empty((0, 2))
    if len(unique):
        p = weight[unique] + 0.25
        take = rng.choice(len(unique), size=min(m, len(unique)), replace=False, p=p / p.sum())
        chosen = xy[unique[take]]
    spacing = float(np.sqrt(shapely.area(village) / max(m, 1)))
    minx, miny, maxx, maxy = shapely.bounds(village)
    ys = np.arange(miny + spacing / 2, maxy, spacing * 0.866)
    xs = np.arange(minx + spacing / 2, maxx + spacing, spacing)
    gx, gy = np.meshgrid(xs, ys)
    gx = gx + (np.arange(len(ys))[:, None] % 2) * spacing / 2
    lattice = np.column_stack([gx.ravel(), gy.ravel()])
    lattice += rng.uniform(-0.15, 0.15, lattice.shape) * spacing
    lattice = lattice[shapely.contains_xy(village, lattice[:, 0], lattice[:, 1])]
    if len(chosen) and len(lattice):
        dist, _ = cKDTree(chosen).query(lattice)
        lattice = lattice[dist > 0.7 * spacing]
    seeds = np.vstack([chosen, lattice])
    if len(seeds) == 0:
        seeds = shapely.get_coordinates(shapely.point_on_surface(village))
    return seeds


def _segments(
    faces: NDArray[np.object_],
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.intp]]:
    # get_rings ignores multi-polygons: take their parts first (given units may be multipart).
    parts, part_owner = shapely.get_parts(faces, return_index=True)
    rings, ring_part = shapely.get_rings(parts, return_index=True)
    owner = part_owner[ring_part]
    coords, ring = shapely.get_coordinates(rings, return_index=True)
    same = ring[:-1] == ring[1:]
    return coords[:-1][same], coords[1:][same], owner[ring[:-1][same]]


def _on_lines(mid: NDArray[np.float64], lines: NDArray[np.object_]) -> NDArray[np.bool_]:
    if not len(lines):
        return np.zeros(len(mid), dtype=bool)
    tree = shapely.STRtree(lines)
    hit, _ = tree.query(shapely.points(mid), predicate="dwithin", distance=_ON_LINE_M)
    out = np.zeros(len(mid), dtype=bool)
    out[hit] = True
    return out


def face_edges(
    faces: NDArray[np.object_], guides: NDArray[np.object_], barriers: NDArray[np.object_]
) -> pd.DataFrame:
    """Pairs of faces sharing boundary segments, with shared, guide and barrier lengths."""
    p0, p1, owner = _segments(faces)
    swap = (p0[:, 0] > p1[:, 0]) | ((p0[:, 0] == p1[:, 0]) & (p0[:, 1] > p1[:, 1]))
    a = np.where(swap[:, None], p1, p0)
    b = np.where(swap[:, None], p0, p1)
    # Neighbours share bitwise identical vertices (one noding, a pointwise transform): the
    # segment's coordinates themselves are the key.
    keys = np.hstack([a, b])
    _, inverse, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.ravel()
    twice = counts[inverse] == 2
    idx = np.flatnonzero(twice)
    idx = idx[np.argsort(inverse[idx], kind="stable")]
    first, second = idx[0::2], idx[1::2]
    fa, fb = owner[first], owner[second]
    length = np.hypot(*(b[first] - a[first]).T)
    mid = (a[first] + b[first]) / 2
    frame = pd.DataFrame(
        {
            "a": np.minimum(fa, fb),
            "b": np.maximum(fa, fb),
            "length": length,
            "guide_m": length * _on_lines(mid, guides),
            "barrier_m": length * _on_lines(mid, barriers),
        }
    )
    frame = frame[frame["a"] != frame["b"]]
    return frame.groupby(["a", "b"], as_index=False).sum()


def _merge_slivers(
    area: NDArray[np.float64],
    small: NDArray[np.bool_],
    edges: pd.DataFrame,
    group: NDArray[np.intp],
) -> NDArray[np.intp]:
    """Map each face to a unit: small faces join the neighbour they share most border with."""
    n = len(area)
    parent = np.arange(n)
    ea, eb, el = (edges[c].to_numpy() for c in ("a", "b", "length"))
    across = (edges["barrier_m"] > 0.5 * edges["length"]).to_numpy()
    ok = group[ea] == group[eb]
    src = np.concatenate([ea[ok], eb[ok]])
    dst = np.concatenate([eb[ok], ea[ok]])
    length = np.concatenate([el[ok], el[ok]])
    barrier = np.concatenate([across[ok], across[ok]])
    sel = small[src]
    # Prefer a neighbour on the same side of barriers, then one that is not itself small,
    # then the longest shared border.
    order = np.lexsort((-length[sel], small[dst[sel]], barrier[sel]))
    s, d = src[sel][order], dst[sel][order]
    firsts = np.unique(s, return_index=True)[1]
    parent[s[firsts]] = d[firsts]
    for _ in range(32):
        parent = parent[parent]
    stuck = small & small[parent] & (parent != np.arange(n))
    parent[stuck] = np.flatnonzero(stuck)  # a cycle of slivers: each stays its own unit
    for _ in range(32):
        parent = parent[parent]
    return np.unique(parent, return_inverse=True)[1].ravel()


def _identity(geoms: NDArray[np.object_]) -> NDArray[np.object_]:
    return geoms


def _faces(
    drawn: NDArray[np.object_],
    outlines: NDArray[np.object_],
    cuts: NDArray[np.object_],
    to_store: Callable[[NDArray[np.object_]], NDArray[np.object_]],
) -> tuple[NDArray[np.object_], NDArray[np.intp]]:
    """Faces (storage CRS) inside the villages, and the village of each (module docstring)."""
    linework = np.concatenate([to_store(drawn), shapely.boundary(outlines), shapely.boundary(cuts)])
    noded = shapely.union_all(linework)
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    inner = shapely.point_on_surface(faces)
    pts, hit = shapely.STRtree(outlines).query(inner, predicate="within")
    face_village = np.full(len(faces), -1, dtype=np.intp)
    face_village[pts] = hit
    keep = face_village >= 0
    return faces[keep], face_village[keep]


def build_units(
    villages: NDArray[np.object_],
    xy: NDArray[np.float64],
    people: NDArray[np.float64],
    load: NDArray[np.float64],
    *,
    point_village: NDArray[np.intp],
    blocks: NDArray[np.int64],
    guides: NDArray[np.object_],
    barriers: NDArray[np.object_],
    cuts: NDArray[np.object_] | None = None,
    seed: int = 0,
    outlines: NDArray[np.object_] | None = None,
    to_store: Callable[[NDArray[np.object_]], NDArray[np.object_]] = _identity,
    to_metres: Callable[[NDArray[np.object_]], NDArray[np.object_]] = _identity,
    cuts_cover: bool = False,
) -> Units:
    """Polygonise villages, lines, cuts and Voronoi edges into units (see module docstring).

    ``blocks[i]`` is the number of seeds wanted in village ``i``. ``villages``, ``xy``,
    ``guides`` and ``barriers`` are in metres; ``outlines`` (the villages as stored, default
    ``villages``) and ``cuts`` (kept grids) are in the storage CRS, reached from metres with
    ``to_store`` and back with ``to_metres``. ``cuts_cover``: the cuts are a whole plan
    meant to cover the villages (slivers along the outlines join them).
    """
    rng = np.random.default_rng(seed)
    seeds = [
        _seeds(villages[i], xy[point_village == i], load[point_village == i], int(blocks[i]), rng)
        for i in range(len(villages))
    ]
    all_seeds = np.unique(np.round(np.vstack(seeds), 2), axis=0)
    extent = shapely.box(*shapely.total_bounds(villages)).buffer(100.0)
    voronoi = shapely.voronoi_polygons(
        shapely.multipoints(all_seeds), extend_to=extent, only_edges=True
    )
    cut_geoms = cuts if cuts is not None else np.empty(0, dtype=object)
    store_faces, face_village = _faces(
        np.concatenate([shapely.get_parts(voronoi), guides, barriers]),
        villages if outlines is None else outlines,
        cut_geoms,
        to_store,
    )
    faces = to_metres(store_faces)
    face_cut = np.full(len(faces), -1, dtype=np.intp)
    if len(cut_geoms):
        inner = shapely.point_on_surface(store_faces)
        pts, hit = shapely.STRtree(cut_geoms).query(inner, predicate="within")
        face_cut[pts] = hit
        # When the cuts are a whole plan (rebalance), slivers between a village outline and
        # grids that were re-projected or digitised (off the outline by millimetres) join the
        # nearest grid within 1 m. Locked grids (drawing) are kept as they are.
        loose = np.flatnonzero(face_cut < 0) if cuts_cover else np.empty(0, dtype=np.intp)
        if loose.size:
            tree = shapely.STRtree(to_metres(cut_geoms))
            near = shapely.point_on_surface(faces[loose])
            pts, hit = tree.query_nearest(near, max_distance=_SLIVER_M, all_matches=False)
            face_cut[loose[pts]] = hit
    edges = face_edges(faces, guides, barriers)
    # Households: the face covering each point (a point on a shared edge takes the first).
    tree = shapely.STRtree(faces)
    pts, hit = tree.query(shapely.points(xy), predicate="intersects")
    point_face = np.full(len(xy), -1, dtype=np.intp)
    point_face[pts[::-1]] = hit[::-1]
    lost = np.flatnonzero(point_face < 0)
    if lost.size:  # on a village edge, off the re-projected faces by a rounding error
        point_face[lost] = tree.query_nearest(shapely.points(xy[lost]), all_matches=False)[1]
    area = shapely.area(faces)
    typical = shapely.area(villages) / np.maximum(blocks, 1)
    # A sliver is small in area *and* in load: in a dense hamlet every Voronoi cell is far
    # smaller than the village's typical block, and merging them would make one huge unit.
    face_load = np.bincount(point_face, weights=load, minlength=len(faces))
    village_load = np.bincount(point_village, weights=load, minlength=len(villages))
    typical_load = village_load / np.maximum(blocks, 1)
    small = (area < _SLIVER_SHARE * typical[face_village]) & (
        face_load <= _SLIVER_SHARE * typical_load[face_village]
    )
    group = face_village * (len(cut_geoms) + 1) + face_cut + 1
    face_unit = _merge_slivers(area, small, edges, group)
    n = int(face_unit.max()) + 1
    unit_village = np.zeros(n, dtype=np.intp)
    unit_village[face_unit] = face_village
    unit_cut = np.full(n, -1, dtype=np.intp)
    unit_cut[face_unit] = face_cut
    point_unit = face_unit[point_face]
    unit_edges = edges.assign(a=face_unit[edges["a"]], b=face_unit[edges["b"]])
    ua, ub = unit_edges["a"].to_numpy(), unit_edges["b"].to_numpy()
    unit_edges = unit_edges.assign(a=np.minimum(ua, ub), b=np.maximum(ua, ub))
    unit_edges = unit_edges[
        (unit_edges["a"] != unit_edges["b"])
        & (unit_village[unit_edges["a"]] == unit_village[unit_edges["b"]])
    ]
    unit_edges = unit_edges.groupby(["a", "b"], as_index=False).sum()
    return Units(
        faces=faces,
        store_faces=store_faces,
        face_unit=face_unit,
        village=unit_village,
        cut=unit_cut,
        load=np.bincount(point_unit, weights=load, minlength=n).astype(float),
        people=np.bincount(point_unit, weights=people, minlength=n).astype(float),
        households=np.bincount(point_unit, minlength=n).astype(float),
        point_unit=point_unit,
        edges=unit_edges.reset_index(drop=True),
    )
