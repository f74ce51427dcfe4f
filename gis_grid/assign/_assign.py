"""Assign points to the grid that covers them, and report the points no grid covers."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer

from gis_grid.assign._index import GridIndex, build_grid_index
from gis_grid.assign._inputs import point_coordinates
from gis_grid.errors import DataFileError

if TYPE_CHECKING:
    import geopandas as gpd
    from numpy.typing import NDArray
    from pyproj import CRS

__all__ = ["AssignmentResult", "assign_points", "check_index", "make_result", "nearest_grids"]

#: Degrees-to-metres anisotropy allowance when searching the nearest grid in lon/lat.
_NEAREST_SLACK = 1.05


@dataclass(frozen=True, eq=False)
class AssignmentResult:
    """Where each point goes, which points no grid covers, and what was converted.

    Attributes
    ----------
    grid
        The grid code of every point, aligned with the points' index (a categorical Series
        named after the code column whose categories are all the grid codes, in order);
        missing (``NaN``) for a point outside every grid. Built on first access.
    unassigned
        One row per point outside every grid, indexed like the points: ``row`` (0-based
        position), ``x``/``y`` (in the grids' CRS), ``distance_m`` (metres to the nearest
        grid, measured in the CGCS2000 Gauss-Krüger zone of the point when the grids are in
        degrees) and ``nearest`` (that grid's code). Built on first access.
    crs_note
        ``None``, or a sentence saying from which CRS the points were converted.
    index
        The grids (sorted by code) the points were assigned to; pass it to
        :func:`~gis_grid.assign.assign_points` again to skip the build.
    positions
        Position of each point's grid in ``index.codes`` (``-1``: none), as int32.
    x, y
        The points' coordinates in the grids' CRS (kept for :func:`reassign_points`).
    labels
        The points' index.
    outside
        The rows (0-based, ascending) of the points outside every grid.
    nearest_positions, nearest_distance
        For each row of ``outside``: the position in ``index.codes`` of the nearest grid
        (``-1``: no grid at all) and the distance to it in metres.
    reexamined
        After :func:`reassign_points`: the rows (0-based) that were located again;
        ``None`` after a full assignment.
    """

    crs_note: str | None
    index: GridIndex
    positions: NDArray[np.int32] = field(repr=False)
    x: NDArray[np.float64] = field(repr=False)
    y: NDArray[np.float64] = field(repr=False)
    labels: pd.Index = field(repr=False)
    outside: NDArray[np.intp] = field(repr=False)
    nearest_positions: NDArray[np.int32] = field(repr=False)
    nearest_distance: NDArray[np.float64] = field(repr=False)
    reexamined: NDArray[np.intp] | None = field(default=None, repr=False)
    cache: dict[str, Any] = field(default_factory=dict, repr=False)  # reassignment helpers

    def __len__(self) -> int:
        return len(self.positions)

    @cached_property
    def grid(self) -> pd.Series:
        """The grid code of every point, aligned with the points (see the class doc)."""
        return pd.Series(
            # Positions are valid codes by construction: skip pandas' O(n) range check.
            pd.Categorical.from_codes(
                self.positions, categories=self.index.code_index, validate=False
            ),
            index=self.labels,
            name=self.index.grid_id,
        )

    @cached_property
    def unassigned(self) -> pd.DataFrame:
        """The points outside every grid, with their nearest grid (see the class doc)."""
        outside = self.outside
        return pd.DataFrame(
            {
                "row": outside,
                "x": self.x[outside],
                "y": self.y[outside],
                "distance_m": self.nearest_distance,
                "nearest": self.index.codes[self.nearest_positions] if len(self.index) else None,
            },
            index=self.labels[outside],
        )

    @property
    def n_unassigned(self) -> int:
        """Number of points outside every grid."""
        return len(self.outside)


def _utm_like_zones(lon: NDArray[np.float64]) -> NDArray[np.int64]:
    """EPSG code of the CGCS2000 3-degree Gauss-Krüger zone of each longitude (clamped)."""
    central = 3 * np.floor((lon + 1.5) / 3)
    central = np.clip(central, 75, 135).astype(np.int64)
    return 4534 + (central - 75) // 3


def _best(
    n_points: int,
    point_i: NDArray[np.intp],
    position: NDArray[np.intp],
    distance: NDArray[np.float64],
) -> tuple[NDArray[np.int32], NDArray[np.float64]]:
    """Per point, the smallest distance; ties go to the smallest position (code)."""
    order = np.lexsort((position, distance, point_i))
    first = np.ones(order.size, dtype=bool)
    first[1:] = point_i[order][1:] != point_i[order][:-1]
    keep = order[first]
    best_pos = np.full(n_points, -1, dtype=np.int32)
    best_dist = np.full(n_points, np.nan)
    best_pos[point_i[keep]] = position[keep]
    best_dist[point_i[keep]] = distance[keep]
    return best_pos, best_dist


def nearest_grids(
    geometries: NDArray[np.object_],
    positions: NDArray[np.intp],
    crs: CRS,
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    *,
    tree: shapely.STRtree | None = None,
) -> tuple[NDArray[np.int32], NDArray[np.float64]]:
    """Nearest of ``geometries`` (at ``positions`` in code order) to each point, in metres.

    Projected CRSs measure in their own units (converted to metres); lon/lat data is
    measured in the Gauss-Krüger zone of each point, so the answer for a point does not
    depend on the extent of the grids. Ties go to the smallest code.
    """
    n = x.shape[0]
    if n == 0 or len(geometries) == 0:
        return np.full(n, -1, dtype=np.int32), np.full(n, np.nan)
    points = shapely.points(x, y)
    if tree is None:
        tree = shapely.STRtree(geometries)
    if not crs.is_geographic:
        (point_i, tree_i), dist = tree.query_nearest(points, return_distance=True)
        factor = crs.axis_info[0].unit_conversion_factor if crs.axis_info else 1.0
        return _best(n, point_i, positions[tree_i], dist * factor)
    # In degrees the nearest polygon may not be the nearest in metres: take every polygon
    # within the degree distance of the nearest, widened by 1 / cos(latitude), then measure.
    (point_i, _), d0 = tree.query_nearest(points, return_distance=True, all_matches=False)
    reach = np.empty(n)
    reach[point_i] = d0
    lat = np.minimum(np.abs(y) + reach, 80.0)
    reach *= _NEAREST_SLACK / np.cos(np.radians(lat))
    point_i, tree_i = tree.query(points, predicate="dwithin", distance=reach)
    zones = _utm_like_zones(x)
    dist = np.empty(point_i.size)
    for zone in np.unique(zones[point_i]):  # one zone, rarely two
        pairs = np.flatnonzero(zones[point_i] == zone)
        to_metres = Transformer.from_crs(crs, int(zone), always_xy=True)

        def project(coords: NDArray[np.float64], tr: Transformer = to_metres) -> Any:
            return np.column_stack(tr.transform(coords[:, 0], coords[:, 1]))

        used, inverse = np.unique(tree_i[pairs], return_inverse=True)
        shapes = shapely.transform(geometries[used], project)
        px, py = to_metres.transform(x[point_i[pairs]], y[point_i[pairs]])
        dist[pairs] = shapely.distance(shapes[inverse], shapely.points(px, py))
    return _best(n, point_i, positions[tree_i], dist)


def make_result(
    index: GridIndex,
    positions: NDArray[np.int32],
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    *,
    labels: pd.Index,
    crs_note: str | None,
    nearest: tuple[NDArray[np.int32], NDArray[np.float64]] | None = None,
    reexamined: NDArray[np.intp] | None = None,
    outside: NDArray[np.intp] | None = None,
) -> AssignmentResult:
    """Wrap located positions into an :class:`AssignmentResult` (measuring the misses).

    The frames (``grid``, ``unassigned``) are built on first access, not here.

    ``outside`` (the rows with no grid, ascending) saves a pass over the points if known.
    """
    if outside is None:
        outside = np.flatnonzero(positions < 0)
    if nearest is None:
        nearest = nearest_grids(
            index.geometries,
            np.arange(len(index)),
            index.crs,
            x[outside],
            y[outside],
            tree=index.tree,
        )
    near_pos, near_dist = nearest
    return AssignmentResult(
        crs_note=crs_note,
        index=index,
        positions=positions,
        x=x,
        y=y,
        labels=labels,
        outside=outside,
        nearest_positions=near_pos,
        nearest_distance=near_dist,
        reexamined=reexamined,
    )


def check_index(index: GridIndex, grids: gpd.GeoDataFrame, grid_id: str) -> None:
    """Refuse an index built from other grids (cheap checks: codes, order, bounds)."""
    same = (
        index.grid_id == grid_id
        and grid_id in grids.columns
        and len(index) == len(grids)
        and index.rows.max(initial=-1) < len(grids)
    )
    if same:
        codes = grids[grid_id].to_numpy(dtype=object)[index.rows]
        bounds = shapely.bounds(np.asarray(grids.geometry, dtype=object)[index.rows])
        same = bool(
            np.array_equal(codes, index.codes)
            and np.array_equal(bounds, shapely.bounds(index.geometries))
        )
    if not same:
        msg = (
            "index= was built from other grids than those given (codes, order or shapes "
            "differ); build it again with build_grid_index(grids) or leave index= out"
        )
        raise DataFileError(msg)


def assign_points(
    points: gpd.GeoDataFrame | gpd.GeoSeries,
    grids: gpd.GeoDataFrame,
    *,
    grid_id: str = "code",
    index: GridIndex | None = None,
) -> AssignmentResult:
    """Assign every point to the grid that covers it, in memory and vectorised.

    Households, pollution points, hazards and incidents alike: any point layer.

    Parameters
    ----------
    points
        Points with a CRS. If it differs from the grids' CRS they are converted to it (a
        ``UserWarning`` is issued and :attr:`AssignmentResult.crs_note` says so).
    grids
        Polygons with a CRS and a unique code column ``grid_id``.
    grid_id
        The grid code column.
    index
        A :class:`GridIndex` built from these same ``grids`` (reuse it across point layers
        of one grid version); built here if ``None``.

    Returns
    -------
    AssignmentResult
        ``grid`` (code per point), ``unassigned`` (points outside every grid with the
        distance in metres to the nearest one), ``crs_note``.

    Raises
    ------
    CRSError
        Points or grids without a CRS.
    GeometryError
        Null, empty or non-point points; null, empty, invalid or non-polygonal grids.
    CoordinateError
        Points with NaN or infinite coordinates. Every message names the offending rows.
    DataFileError, DuplicateCodeError
        Missing, duplicated or missing-valued grid codes; an ``index`` of other grids.

    Notes
    -----
    **Border rule.** "Inside" is decided exactly, in the grids' own coordinates. A point in
    the interior of one grid goes to that grid. A point on a border shared by several grids
    (an edge or a vertex) goes to the one with the **smallest code** (string order for text
    codes, so 15-digit codes compare as numbers). Where grids overlap, interior beats
    boundary, then the smallest code. A point on the outer boundary of the coverage goes to
    the grid whose boundary it is on. Points covered by no grid are reported, never dropped.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> grids = gpd.GeoDataFrame({"code": ["B", "A"]}, crs=4545,
    ...     geometry=[shapely.box(100, 0, 200, 100), shapely.box(0, 0, 100, 100)])
    >>> pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy([50, 100, 150, 260], [50] * 4),
    ...     crs=4545)
    >>> result = assign_points(pts, grids)
    >>> result.grid.tolist()  # the point at x=100 is on the shared border: smallest code
    ['A', 'A', 'B', nan]
    >>> result.unassigned[["distance_m", "nearest"]].to_dict("records")
    [{'distance_m': 60.0, 'nearest': 'B'}]
    """
    if index is None:
        index = build_grid_index(grids, grid_id=grid_id)
    else:
        check_index(index, grids, grid_id)
    x, y, note = point_coordinates(points, index.crs)
    positions = index.locate(x, y)
    return make_result(index, positions, x, y, labels=points.index, crs_note=note)
