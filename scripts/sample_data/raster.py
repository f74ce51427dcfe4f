"""The working raster of a town: cost graphs, region growing, paths and clean coverages.

Villages and grids are grown on a raster from seed cells by a (cost-weighted, additively
offset) multi-source shortest-path search, so every region is connected and follows the cost
field (ridges and streams in the DEM town, a smooth random field in Zhaojia). The raster
regions are polygonised, simplified as a coverage, and rebuilt from the noded linework of all
boundaries (:func:`faces_to_regions`), which gives polygons that share every vertex along
their common edges: a clean coverage with no gaps and no overlaps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import rasterio.features
import shapely
from affine import Affine
from numpy.typing import NDArray
from scipy import sparse
from scipy.sparse import csgraph

__all__ = [
    "Frame",
    "cell_graph",
    "faces_to_regions",
    "grow_regions",
    "noded_faces",
    "path_edges",
    "regions_to_polygons",
]

# 16-neighbour moves (with knight moves) keep shortest paths close to straight lines in any
# direction, instead of the octagonal fronts and axis-parallel boundaries of 8 neighbours.
_OFFSETS = ((0, 1), (1, 0), (1, 1), (1, -1), (1, 2), (2, 1), (2, -1), (1, -2))


@dataclass(frozen=True)
class Frame:
    """A north-up raster in the working CRS (metres).

    Attributes
    ----------
    x0, y0
        West and north edges.
    res
        Cell size in metres.
    nrows, ncols
        Shape.
    """

    x0: float
    y0: float
    res: float
    nrows: int
    ncols: int

    @classmethod
    def around(cls, geom: shapely.Geometry, *, res: float, margin: float) -> Frame:
        """A frame covering ``geom`` plus ``margin`` metres, snapped to multiples of ``res``."""
        minx, miny, maxx, maxy = shapely.bounds(geom)
        x0 = np.floor((minx - margin) / res) * res
        y0 = np.ceil((maxy + margin) / res) * res
        ncols = int(np.ceil((maxx + margin - x0) / res))
        nrows = int(np.ceil((y0 - (miny - margin)) / res))
        return cls(float(x0), float(y0), float(res), nrows, ncols)

    @property
    def shape(self) -> tuple[int, int]:
        """``(nrows, ncols)``."""
        return self.nrows, self.ncols

    @property
    def size(self) -> int:
        """Number of cells."""
        return self.nrows * self.ncols

    @property
    def transform(self) -> Affine:
        """Affine transform from (col, row) to (x, y)."""
        return Affine(self.res, 0.0, self.x0, 0.0, -self.res, self.y0)

    def centres(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Cell-centre coordinates, flat arrays in row-major order."""
        cols = self.x0 + (np.arange(self.ncols) + 0.5) * self.res
        rows = self.y0 - (np.arange(self.nrows) + 0.5) * self.res
        xx, yy = np.meshgrid(cols, rows)
        return xx.ravel(), yy.ravel()

    def cell_of(self, x: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.int64]:
        """Flat index of the cell holding each point (clipped to the frame)."""
        col = np.clip(((np.asarray(x) - self.x0) // self.res).astype(np.int64), 0, self.ncols - 1)
        row = np.clip(((self.y0 - np.asarray(y)) // self.res).astype(np.int64), 0, self.nrows - 1)
        return row * self.ncols + col

    def mask(self, geom: shapely.Geometry, *, all_touched: bool = True) -> NDArray[np.bool_]:
        """Flat boolean mask of the cells ``geom`` touches."""
        return rasterio.features.geometry_mask(
            [geom],
            out_shape=self.shape,
            transform=self.transform,
            invert=True,
            all_touched=all_touched,
        ).ravel()


def cell_graph(
    frame: Frame,
    domain: NDArray[np.bool_],
    cost: NDArray[np.float64],
    *,
    elevation: NDArray[np.float64] | None = None,
    climb: float = 0.0,
    barrier: NDArray[np.float64] | None = None,
) -> sparse.csr_matrix:
    """Symmetric 16-neighbour graph of the ``domain`` cells, weighted by travel cost.

    An edge of length ``L`` between cells ``i`` and ``j`` weighs
    ``L * (cost[i] + cost[j]) / 2 + climb * |z[i] - z[j]| + barrier[i] + barrier[j]``
    (``barrier`` is an extra price for stepping onto a cell, e.g. a stream).

    Returns
    -------
    scipy.sparse.csr_matrix
        ``frame.size`` x ``frame.size``; cells outside ``domain`` have no edges.
    """
    idx = np.arange(frame.size).reshape(frame.shape)
    rows, cols, weights = [], [], []
    for dr, dc in _OFFSETS:
        r0, r1 = max(0, -dr), frame.nrows - max(0, dr)
        c0, c1 = max(0, -dc), frame.ncols - max(0, dc)
        a = idx[r0:r1, c0:c1].ravel()
        b = idx[r0 + dr : r1 + dr, c0 + dc : c1 + dc].ravel()
        keep = domain[a] & domain[b]
        a, b = a[keep], b[keep]
        w = np.hypot(dr, dc) * frame.res * (cost[a] + cost[b]) / 2
        if elevation is not None and climb:
            w = w + climb * np.abs(elevation[a] - elevation[b])
        if barrier is not None:
            w = w + barrier[a] + barrier[b]
        rows += [a, b]
        cols += [b, a]
        weights += [w, w]
    return sparse.csr_matrix(
        (np.concatenate(weights), (np.concatenate(rows), np.concatenate(cols))),
        shape=(frame.size, frame.size),
    )


def grow_regions(
    graph: sparse.csr_matrix,
    seeds: NDArray[np.int64],
    offsets: NDArray[np.float64] | None = None,
) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.int64]]:
    """Assign every reachable node to the seed with the least ``offset + path cost``.

    A virtual source node is linked to seed ``k`` by an edge of weight ``1 + offsets[k]``, so
    one Dijkstra run gives an additively weighted, connected partition (each node's shortest
    path runs through nodes of its own region).

    Returns
    -------
    tuple of ndarray
        ``(label, distance, predecessor)`` per node; label -1 where unreachable.
    """
    n = graph.shape[0]
    k = len(seeds)
    off = np.zeros(k) if offsets is None else np.asarray(offsets, dtype=float)
    coo = graph.tocoo()
    g = sparse.csr_matrix(
        (
            np.concatenate([coo.data, 1.0 + off - off.min()]),
            (np.concatenate([coo.row, np.full(k, n)]), np.concatenate([coo.col, seeds])),
        ),
        shape=(n + 1, n + 1),
    )
    dist, pred = csgraph.dijkstra(g, directed=True, indices=n, return_predecessors=True)
    dist, pred = dist[:n], pred[:n].astype(np.int64)
    ptr = np.where((pred == n) | (pred < 0), np.arange(n), pred)
    for _ in range(int(np.ceil(np.log2(max(n, 2)))) + 1):
        ptr = ptr[ptr]
    seed_label = np.full(n, -1, dtype=np.int64)
    seed_label[seeds] = np.arange(k)
    label = np.where(np.isfinite(dist), seed_label[ptr], -1)
    return label, dist, np.where(pred == n, -1, pred)


def path_edges(
    pred: NDArray[np.int64], targets: NDArray[np.int64]
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Edges ``(from, to)`` of the shortest-path-tree paths from each target to its root.

    All paths are walked together, one step per iteration, so the loop runs as many times as
    the longest path has cells, not once per cell.
    """
    cur = np.unique(np.asarray(targets, dtype=np.int64))
    cur = cur[pred[cur] >= 0]
    seen = np.zeros(pred.size, dtype=bool)
    src, dst = [], []
    while cur.size:
        seen[cur] = True
        nxt = pred[cur]
        src.append(cur)
        dst.append(nxt)
        cur = np.unique(nxt[~seen[nxt]])
        cur = cur[pred[cur] >= 0]
    if not src:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return np.concatenate(src), np.concatenate(dst)


def regions_to_polygons(
    frame: Frame, label: NDArray[np.int64], *, tolerance: float
) -> tuple[NDArray[np.object_], NDArray[np.int64]]:
    """Polygonise a label raster and simplify the pieces as one coverage.

    Returns
    -------
    tuple of ndarray
        ``(polygons, labels)``; a label may own several pieces (diagonal-only contacts).
    """
    grid = label.reshape(frame.shape).astype(np.int32)
    shapes = rasterio.features.shapes(
        grid, mask=grid >= 0, connectivity=4, transform=frame.transform
    )
    geoms, labels = [], []
    for geom, value in shapes:
        geoms.append(shapely.geometry.shape(geom))
        labels.append(int(value))
    # Raster outlines only carry corner vertices; a long edge of one piece can meet several
    # neighbours. Splitting every edge at each cell corner makes shared edges match vertex
    # for vertex, as a coverage must.
    polys = shapely.segmentize(np.asarray(geoms, dtype=object), frame.res)
    if tolerance > 0:
        polys = shapely.coverage_simplify(polys, tolerance, simplify_boundary=False)
    return polys, np.asarray(labels, dtype=np.int64)


def noded_faces(lines: list[shapely.Geometry]) -> NDArray[np.object_]:
    """Polygons formed by the fully noded union of ``lines`` (boundaries of anything)."""
    noded = shapely.union_all(shapely.get_parts(np.asarray(lines, dtype=object)))
    return shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))


def faces_to_regions(
    faces: NDArray[np.object_],
    labels: NDArray[np.int64],
    groups: NDArray[np.int64] | None = None,
) -> dict[int, shapely.Polygon]:
    """Dissolve faces by label into single polygons, merging stray parts into neighbours.

    A part cut off from the main body of its region goes to the adjacent region (of the same
    ``group``, when groups are given) with which it shares the longest edge. Faces come from
    one noded linework, so shared edges match vertex for vertex and the result is a valid
    coverage.

    Returns
    -------
    dict
        Label -> single-part polygon.
    """
    if groups is None:
        groups = np.zeros_like(labels)
    regions: dict[int, shapely.Geometry] = {}
    group_of: dict[int, int] = {}
    for lab in np.unique(labels):
        sel = labels == lab
        regions[int(lab)] = shapely.coverage_union_all(faces[sel])
        group_of[int(lab)] = int(groups[sel][0])
    for _ in range(10):
        stray = False
        for lab in list(regions):
            parts = shapely.get_parts(regions[lab])
            if parts.size <= 1:
                continue
            stray = True
            keep = parts[np.argmax(shapely.area(parts))]
            regions[lab] = keep
            others = [o for o in regions if o != lab and group_of[o] == group_of[lab]]
            geoms = np.asarray([regions[o] for o in others], dtype=object)
            for part in parts:
                if part is keep:
                    continue
                shared = shapely.length(shapely.intersection(part.boundary, geoms))
                if shared.size == 0 or shared.max() <= 0:
                    regions[lab] = shapely.union(regions[lab], part)  # isolated: keep it
                    continue
                best = others[int(np.argmax(shared))]
                regions[best] = shapely.coverage_union(regions[best], part)
        if not stray:
            break
    return {k: shapely.normalize(v) for k, v in regions.items()}
