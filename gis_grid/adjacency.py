"""Adjacency of grids: which grids share a border, and how long it is in metres.

Grids of one village tile it without gaps or overlaps (DB6101/T 3185-2024), and a clean
coverage repeats every shared vertex exactly in both neighbours. Two grids then share a border
exactly where they share boundary *segments*: the segments are hashed (both endpoints, in the
Gauss-Krüger zone of the data) and sorted with numpy, which finds every shared segment at once.
That is about 7x faster than libpysal's Rook contiguity on 10,000 grids and also gives the
shared length (``benchmarks/adjacency.py``).

Real coverages are not always clean: a vertex of one grid may lie on an edge of its neighbour
without a twin (a T-junction), or a digitised border may miss its neighbour by centimetres.
Segments left without a twin are therefore checked again (``method="auto"``): for two grids
whose unmatched segments come within ``tolerance_m`` of each other, those segments are snapped
onto each other both ways (``shapely.snap``: vertices moved to, or inserted on, the other line
within the tolerance), so the shared stretch gets identical vertices in both, and an exact
overlay measures it; the length is added to the pair and the pair is marked ``exact=False``.
On a clean coverage the only unmatched segments are those on the outer edge of the coverage,
so the check costs almost nothing (the sample and benchmark coverages find no near miss). It
is slower than hashing where it is needed: 10,000 grids of which every other one has a vertex
every 50 m that its neighbours lack took about 7 s (``benchmarks/adjacency.py`` measures the
clean case). Borders further apart than the tolerance are not merged: repair such data first
(``shapely.coverage_simplify``, or QGIS "Snap geometries to layer").

Contacts shorter than ``min_shared_m`` (corner-only contacts and tiny slivers) are not
borders. They are dropped, or listed with ``contact="corner"`` when ``corners=True``.

Barrier lines (rivers, large streams) flag the pairs whose shared border they meet:
``barrier_m`` is the length of shared border lying within ``barrier_buffer_m`` of a barrier
(about the whole border when a river *is* the border, about twice the buffer where one crosses
it) and the remainder, ``shared_m - barrier_m``, is the part members can walk across.

Examples
--------
>>> import geopandas as gpd, shapely
>>> squares = [shapely.box(500_000 + 1000 * i, 3_400_000, 501_000 + 1000 * i, 3_401_000)
...            for i in range(3)]
>>> grids = gpd.GeoDataFrame({"code": ["A", "B", "C"]}, geometry=squares, crs=4545)
>>> build_adjacency(grids).pairs[["a", "b", "shared_m"]]
   a  b  shared_m
0  A  B    1000.0
1  B  C    1000.0
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gis_grid.crs import require_crs
from gis_grid.errors import DataFileError, GeometryError
from gis_grid.io import check_unique
from gis_grid.measure import measure_crs

if TYPE_CHECKING:
    import networkx as nx
    from numpy.typing import NDArray
    from pyproj import CRS

__all__ = ["PAIR_COLUMNS", "Adjacency", "build_adjacency", "grid_geometries"]

#: Columns of :attr:`Adjacency.pairs`.
PAIR_COLUMNS = ("a", "b", "shared_m", "barrier_m", "barrier", "contact", "exact")

# Odd 64-bit multipliers (splitmix64 / Fibonacci hashing) that spread float bit patterns.
_MIX = np.array(
    [0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB, 0xD6E8FEB86659FD93],
    dtype=np.uint64,
)


@dataclass(frozen=True)
class Adjacency:
    """The grids that share a border.

    Attributes
    ----------
    pairs
        One row per neighbouring pair, ``a < b`` in the order of the input grids: ``a``, ``b``
        (grid ids), ``shared_m`` (shared border, metres), ``barrier_m`` (shared border within
        the barrier buffer), ``barrier`` (a barrier meets the border), ``contact``
        (``"border"``, or ``"corner"`` for contacts shorter than ``min_shared_m`` kept with
        ``corners=True``) and ``exact`` (False when part of the border was found only within
        the tolerance, i.e. the coverage is not clean there).
    ids
        Every grid id in input order, including grids without neighbours.
    crs
        The projected CRS the lengths were measured in.
    """

    pairs: pd.DataFrame
    ids: pd.Index
    crs: CRS

    def to_networkx(self, *, corners: bool = False) -> nx.Graph:
        """Return an undirected networkx graph: one node per grid, edge data from ``pairs``.

        Parameters
        ----------
        corners
            Include corner contacts as edges too.
        """
        import networkx as nx

        graph = nx.Graph()
        graph.add_nodes_from(self.ids)
        rows = self.pairs if corners else self.pairs[self.pairs["contact"] == "border"]
        attrs = rows.drop(columns=["a", "b"]).to_dict("records")
        graph.add_edges_from(zip(rows["a"], rows["b"], attrs, strict=True))
        return graph

    def neighbours(self, grid: object) -> list[object]:
        """Ids of the grids sharing a border with ``grid`` (corner contacts excluded)."""
        rows = self.pairs[self.pairs["contact"] == "border"]
        return [*rows.loc[rows["a"] == grid, "b"], *rows.loc[rows["b"] == grid, "a"]]


def grid_geometries(
    grids: gpd.GeoDataFrame, *, id_field: str, crs: CRS | None = None
) -> tuple[pd.Index, NDArray[np.object_], CRS]:
    """Check grid polygons and return ``(ids, geometries in metres, measuring CRS)``.

    Parameters
    ----------
    grids
        Polygons with a CRS and a unique ``id_field``.
    id_field
        Column holding the grid ids (codes).
    crs
        Projected CRS to measure in; by default the Gauss-Krüger zone of the data.

    Raises
    ------
    CRSError
        The grids have no CRS.
    DataFileError, DuplicateCodeError
        ``id_field`` is missing or not unique.
    GeometryError
        Naming the rows whose geometry is missing, empty or not a polygon.
    """
    require_crs(grids.crs, source="grids")
    if id_field not in grids.columns:
        msg = (
            f"grids: no id field {id_field!r}; the fields are {[str(c) for c in grids.columns]}."
            " Pass id_field= naming the grid code column."
        )
        raise DataFileError(msg)
    check_unique(grids, id_field, source="grids")
    geoms = np.asarray(grids.geometry.array, dtype=object)
    types = shapely.get_type_id(geoms)
    bad = np.flatnonzero(~np.isin(types, (3, 6)) | shapely.is_empty(geoms))
    if bad.size:
        ids = grids[id_field].to_numpy()
        rows = ", ".join(f"row {i + 1} ({id_field}={ids[i]!r})" for i in bad[:5])
        msg = (
            f"grids: {bad.size} geometr{'y is' if bad.size == 1 else 'ies are'} missing, empty "
            f"or not a polygon: {rows}{' …' if bad.size > 5 else ''}. Grids must be polygons."
        )
        raise GeometryError(msg)
    target = crs if crs is not None else measure_crs(grids)
    projected = np.asarray(grids.geometry.to_crs(target).array, dtype=object)
    return pd.Index(grids[id_field].to_numpy()), projected, target


def _float_keys(values: NDArray[np.float64]) -> NDArray[np.uint64]:
    # +0.0 turns -0.0 into 0.0 so equal numbers have equal bit patterns.
    return np.ascontiguousarray(values + 0.0).view(np.uint64)


def _sorted_runs(keys: NDArray[np.uint64]) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Sort rows of ``keys`` so equal rows are consecutive; return ``(order, run id)``.

    One mixed 64-bit hash is sorted instead of all columns (4x less sorting). A hash
    collision between different rows is detected and answered by a full lexsort.
    """
    mixed = np.zeros(len(keys), dtype=np.uint64)
    for column in range(keys.shape[1]):
        part = keys[:, column] * _MIX[column]
        mixed ^= part ^ (part >> np.uint64(29))
    order = np.argsort(mixed, kind="stable")
    ordered = keys[order]
    same_key = (ordered[1:] == ordered[:-1]).all(axis=1)
    same_hash = mixed[order][1:] == mixed[order][:-1]
    if (same_hash & ~same_key).any():
        order = np.lexsort(keys.T[::-1])
        ordered = keys[order]
        same_key = (ordered[1:] == ordered[:-1]).all(axis=1)
    run = np.concatenate([[0], np.cumsum(~same_key)])
    return order, run


def _run_pairs(
    order: NDArray[np.intp], run: NDArray[np.intp]
) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """All pairs of rows inside each run of equal keys (runs are 2 long on a clean coverage)."""
    firsts, seconds = [], []
    for step in range(1, len(order)):  # a few steps: the longest run is short
        i = np.flatnonzero(run[:-step] == run[step:])
        if i.size == 0:
            break
        firsts.append(order[i])
        seconds.append(order[i + step])
    if not firsts:
        return np.empty(0, np.intp), np.empty(0, np.intp)
    return np.concatenate(firsts), np.concatenate(seconds)


def _ring_coordinates(
    geoms: NDArray[np.object_],
) -> tuple[NDArray[np.float64], NDArray[np.intp], NDArray[np.intp]]:
    """Coordinates of every ring, with the grid (position) and ring each belongs to."""
    parts, part_owner = shapely.get_parts(geoms, return_index=True)
    rings, ring_part = shapely.get_rings(parts, return_index=True)
    coords, coord_ring = shapely.get_coordinates(rings, return_index=True)
    return coords, part_owner[ring_part][coord_ring], coord_ring


def _segments(
    coords: NDArray[np.float64], owner: NDArray[np.intp], ring: NDArray[np.intp]
) -> tuple[NDArray[np.float64], NDArray[np.intp]]:
    """Boundary segments as ``(n, 4)`` endpoints (lowest first) and the grid of each."""
    inner = (ring[1:] == ring[:-1]) & (coords[1:] != coords[:-1]).any(axis=1)
    start, end = coords[:-1][inner], coords[1:][inner]
    swap = (start[:, 0] > end[:, 0]) | ((start[:, 0] == end[:, 0]) & (start[:, 1] > end[:, 1]))
    low = np.where(swap[:, None], end, start)
    high = np.where(swap[:, None], start, end)
    return np.hstack([low, high]), owner[:-1][inner]


def _aggregate(
    a: NDArray[np.intp], b: NDArray[np.intp], length: NDArray[np.float64], n: int
) -> pd.DataFrame:
    """Sum ``length`` per unordered pair of grid positions (self-pairs dropped)."""
    keep = a != b
    low, high = np.minimum(a, b)[keep], np.maximum(a, b)[keep]
    key, inverse = np.unique(low.astype(np.int64) * n + high, return_inverse=True)
    total = np.bincount(inverse, weights=length[keep], minlength=key.size)
    return pd.DataFrame({"ia": key // n, "ib": key % n, "length": total})


def _gather(
    lines: NDArray[np.object_],
    segment: NDArray[np.intp],
    group: NDArray[np.intp],
    keep: NDArray[np.bool_],
    size: int,
) -> NDArray[np.object_]:
    """One multi-line per group of the kept ``lines[segment]`` (empty for a group without)."""
    order = np.lexsort((segment[keep], group[keep]))
    parts, groups = lines[segment[keep]][order], group[keep][order]
    out = np.full(size, shapely.MultiLineString(), dtype=object)
    present, starts = np.unique(groups, return_index=True)
    dense = np.repeat(np.arange(present.size), np.diff(np.append(starts, groups.size)))
    out[present] = shapely.multilinestrings(parts, indices=dense)
    return out


def _near_misses(
    segments: NDArray[np.float64], owner: NDArray[np.intp], tolerance: float, n: int
) -> tuple[pd.DataFrame, NDArray[np.object_], NDArray[np.intp]]:
    """Shared length between unmatched segments of different grids, snapped then overlaid."""
    lines = np.asarray(shapely.linestrings(segments.reshape(-1, 2, 2)), dtype=object)
    # The unmatched boundary of each grid as one multi-line: exact parts of a border are never
    # here, so snapping cannot change their hashed length.
    grid_ids, slot_of = np.unique(owner, return_inverse=True)
    order = np.argsort(slot_of, kind="stable")
    loose = np.asarray(shapely.multilinestrings(lines[order], indices=slot_of[order]), dtype=object)
    i, j = shapely.STRtree(loose).query(loose, predicate="dwithin", distance=tolerance)
    keep = i < j
    i, j = i[keep], j[keep]
    if i.size == 0:
        empty = pd.DataFrame({"ia": [], "ib": [], "length": [], "touch": []})
        return empty, np.empty(0, object), np.empty(0, np.int64)
    # Work only with the segments near the overlap of the two extents: a grid's unmatched
    # boundary can be long, the part near one neighbour is short. Whole segments are kept
    # (never cut), so no new vertex appears that snapping could pull onto the other line.
    bounds = shapely.bounds(loose)
    low = np.maximum(bounds[i, :2], bounds[j, :2]) - tolerance
    high = np.minimum(bounds[i, 2:], bounds[j, 2:]) + tolerance
    window = shapely.box(low[:, 0], low[:, 1], high[:, 0], high[:, 1])
    in_window, segment = shapely.STRtree(lines).query(window)
    first = _gather(lines, segment, in_window, slot_of[segment] == i[in_window], i.size)
    second = _gather(lines, segment, in_window, slot_of[segment] == j[in_window], i.size)
    # Snap both ways: the first takes the second's vertices (moved to or inserted on its
    # segments within the tolerance), then the second takes the first's. The shared stretch
    # then has identical vertices in both and an exact overlay measures it.
    first = shapely.snap(first, second, tolerance)
    second = shapely.snap(second, first, tolerance)
    shared = np.asarray(shapely.intersection(first, second), dtype=object)
    pairs = np.column_stack([grid_ids[i], grid_ids[j]])
    frame = pd.DataFrame(
        {
            "ia": pairs[:, 0],
            "ib": pairs[:, 1],
            "length": shapely.length(shared),
            "touch": ~shapely.is_empty(shared),
        }
    )
    return frame, shared, pairs[:, 0] * n + pairs[:, 1]


def _barrier_lengths(
    lines: NDArray[np.object_],
    pair_key: NDArray[np.int64],
    barriers: gpd.GeoDataFrame | gpd.GeoSeries,
    *,
    crs: CRS,
    buffer_m: float,
) -> pd.Series:
    """Length of border ``lines`` within ``buffer_m`` of a barrier, summed per pair key."""
    require_crs(barriers.crs, source="barriers")
    barrier_geoms = np.asarray(barriers.geometry.to_crs(crs).array, dtype=object)
    barrier_geoms = barrier_geoms[~shapely.is_missing(barrier_geoms)]
    if barrier_geoms.size == 0 or lines.size == 0:
        return pd.Series(dtype=float)
    zone = shapely.union_all(shapely.buffer(barrier_geoms, buffer_m))
    near = np.unique(shapely.STRtree(lines).query(zone, predicate="intersects"))
    inside = shapely.length(shapely.intersection(lines[near], zone))
    return pd.Series(inside).groupby(pair_key[near]).sum()


def build_adjacency(
    grids: gpd.GeoDataFrame,
    *,
    id_field: str = "code",
    min_shared_m: float = 1.0,
    tolerance_m: float = 0.1,
    corners: bool = False,
    barriers: gpd.GeoDataFrame | gpd.GeoSeries | None = None,
    barrier_buffer_m: float = 30.0,
    method: Literal["auto", "exact"] = "auto",
) -> Adjacency:
    """Build the graph of grids sharing a border, with shared lengths in metres.

    Parameters
    ----------
    grids
        Grid polygons (Polygon or MultiPolygon) with a CRS and a unique ``id_field``.
    id_field
        Column holding the grid codes.
    min_shared_m
        Shortest shared border that makes two grids neighbours. Shorter contacts (a corner,
        a sliver touching along a few centimetres) are corner contacts. With ``0`` every
        shared segment counts, as in libpysal's Rook contiguity.
    tolerance_m
        Borders whose vertices are not identical in both grids are matched when they lie
        within this distance (``method="auto"``): the snapping tolerance.
    corners
        Keep corner contacts in the result (``contact="corner"``, ``shared_m`` below
        ``min_shared_m``, often 0). Excluded by default: members cannot cross a corner.
    barriers
        Lines that separate grids (rivers, big streams), with a CRS.
    barrier_buffer_m
        Border within this distance of a barrier line counts as barrier border.
    method
        ``"auto"``: hash identical segments, then overlay the segments left unmatched
        (handles coverages whose shared vertices differ). ``"exact"``: hashing only, for a
        coverage known to be clean.

    Returns
    -------
    Adjacency
        The pairs (columns :data:`PAIR_COLUMNS`), every grid id and the measuring CRS.

    Raises
    ------
    CRSError
        ``grids`` or ``barriers`` has no CRS.
    DataFileError, DuplicateCodeError, GeometryError
        Missing or duplicated ids, or rows without a polygon (named in the message).

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> cells = [shapely.box(500_000 + 1000 * (k % 2), 3_400_000 + 1000 * (k // 2),
    ...                      501_000 + 1000 * (k % 2), 3_401_000 + 1000 * (k // 2))
    ...          for k in range(4)]
    >>> grids = gpd.GeoDataFrame({"code": list("ABCD")}, geometry=cells, crs=4545)
    >>> adjacency = build_adjacency(grids.to_crs(4490))
    >>> len(adjacency.pairs), adjacency.neighbours("A")
    (4, ['B', 'C'])
    >>> len(build_adjacency(grids, corners=True).pairs)  # A-D and B-C touch at a corner
    6
    """
    if method not in ("auto", "exact"):
        msg = f"method must be 'auto' or 'exact', not {method!r}"
        raise ValueError(msg)
    ids, geoms, crs = grid_geometries(grids, id_field=id_field)
    n = len(ids)
    coords, vertex_owner, ring = _ring_coordinates(geoms)
    segments, owner = _segments(coords, vertex_owner, ring)
    order, run = _sorted_runs(_float_keys(segments))
    first, second = _run_pairs(order, run)
    start, end = segments[:, :2], segments[:, 2:]
    seg_length = np.hypot(*(end - start).T)
    exact = _aggregate(owner[first], owner[second], seg_length[first], n)
    exact["touch"] = True
    exact["exact"] = True
    frames = [exact]

    shared_lines: list[NDArray[np.object_]] = []
    line_keys: list[NDArray[np.int64]] = []
    if barriers is not None:
        keep = owner[first] != owner[second]
        low = np.minimum(owner[first], owner[second])[keep].astype(np.int64)
        high = np.maximum(owner[first], owner[second])[keep]
        shared_lines.append(shapely.linestrings(segments[first[keep]].reshape(-1, 2, 2)))
        line_keys.append(low * n + high)

    if method == "auto":
        single = np.bincount(run, minlength=run[-1] + 1 if run.size else 0) == 1
        lonely = order[single[run]]
        if lonely.size:
            loose, loose_lines, loose_keys = _near_misses(
                segments[lonely], owner[lonely], tolerance_m, n
            )
            loose["exact"] = loose["length"] <= 0
            frames.append(loose)
            shared_lines.append(loose_lines)
            line_keys.append(loose_keys)

    if corners:
        frames.append(_vertex_contacts(coords, vertex_owner, n))

    table = pd.concat(frames, ignore_index=True)
    table = table.groupby(["ia", "ib"], as_index=False, sort=True).agg(
        length=("length", "sum"), touch=("touch", "any"), exact=("exact", "all")
    )
    border = table["length"] >= max(min_shared_m, np.finfo(float).tiny)
    table = table[border | (corners & table["touch"])].reset_index(drop=True)

    barrier_m = np.zeros(len(table))
    if barriers is not None:
        per_pair = _barrier_lengths(
            np.concatenate(shared_lines),
            np.concatenate(line_keys),
            barriers,
            crs=crs,
            buffer_m=barrier_buffer_m,
        )
        key = table["ia"].to_numpy(np.int64) * n + table["ib"].to_numpy(np.int64)
        barrier_m = per_pair.reindex(key, fill_value=0.0).to_numpy(float)
    ia, ib = table["ia"].to_numpy(np.intp), table["ib"].to_numpy(np.intp)
    pairs = pd.DataFrame(
        {
            "a": ids[ia],
            "b": ids[ib],
            "shared_m": table["length"].to_numpy(float),
            "barrier_m": np.minimum(barrier_m, table["length"].to_numpy(float)),
            "barrier": barrier_m > 0,
            "contact": np.where(table["length"] >= min_shared_m, "border", "corner"),
            "exact": table["exact"].to_numpy(bool),
        }
    )
    if min_shared_m <= 0:
        pairs["contact"] = np.where(table["length"] > 0, "border", "corner")
    return Adjacency(pairs=pairs, ids=ids, crs=crs)


def _vertex_contacts(coords: NDArray[np.float64], owner: NDArray[np.intp], n: int) -> pd.DataFrame:
    """Pairs of grids sharing at least one identical vertex (length 0: contact only)."""
    keys = np.column_stack([_float_keys(coords), owner.astype(np.uint64)])
    unique = np.unique(keys, axis=0)
    order, run = _sorted_runs(unique[:, :2])
    first, second = _run_pairs(order, run)
    owners = unique[:, 2].astype(np.intp)
    frame = _aggregate(owners[first], owners[second], np.zeros(first.size), n)
    frame["touch"] = True
    frame["exact"] = True
    return frame
