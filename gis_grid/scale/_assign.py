"""Assign partitioned points to grids on Dask: :func:`gis_grid.assign.assign_points` per part.

Every partition of points is assigned by the single-machine function itself, against the
whole grid layer, so each point gets exactly the answer it gets in memory (the border rule
and the distance to the nearest grid depend on the point and the grids only, never on which
other points share its partition). The grids are one key of the task graph: each worker
receives them once and builds its :class:`~gis_grid.assign.GridIndex` once (cached per
worker process), then reuses it for every partition it is given.
"""

from __future__ import annotations

import threading
import uuid
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from gis_grid.assign import GridIndex, assign_points, build_grid_index
from gis_grid.assign._index import grid_set
from gis_grid.crs import require_crs
from gis_grid.errors import DataFileError

if TYPE_CHECKING:
    import dask.dataframe as dd
    import dask_geopandas
    import geopandas as gpd

__all__ = ["ASSIGNED_COLUMNS", "assign_partitioned", "spatial_partition"]

#: Columns added to each point by :func:`assign_partitioned` (after the kept columns).
ASSIGNED_COLUMNS = ("grid", "distance_m", "nearest")

#: Grid indexes kept per worker process (one per grid version in use; ~100 MB each at most).
_CACHE_SIZE = 2
#: Grid codes as text with a proper missing value (Parquet and Arrow need a typed column).
_CODE = pd.StringDtype()
_cache: OrderedDict[str, GridIndex] = OrderedDict()
_cache_lock = threading.Lock()


def _worker_index(grids: gpd.GeoDataFrame, key: str, grid_id: str) -> GridIndex:
    """Return the index of ``grids`` on this worker: built on first use, then reused."""
    with _cache_lock:  # threads of one worker wait for a single build
        index = _cache.get(key)
        if index is None:
            index = build_grid_index(grids, grid_id=grid_id)
            _cache[key] = index
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
        _cache.move_to_end(key)
        return index


def _assign_part(
    part: gpd.GeoDataFrame, grids: gpd.GeoDataFrame, key: str, grid_id: str, keep: list[str]
) -> pd.DataFrame:
    """Assign one partition with the single-machine function (the unit of work of a task)."""
    index = _worker_index(grids, key, grid_id)
    with warnings.catch_warnings():
        # The CRS conversion was announced once on the client, not once per partition.
        warnings.simplefilter("ignore", UserWarning)
        result = assign_points(part, grids, grid_id=grid_id, index=index)
    codes = index.codes
    positions = result.positions
    grid = np.full(len(part), None, dtype=object)
    found = positions >= 0
    grid[found] = codes[positions[found]]
    out = pd.DataFrame(part[keep])  # the kept columns, dtypes and index as they were
    out["grid"] = pd.array(grid, dtype=_CODE)
    distance = np.full(len(part), np.nan)
    nearest = np.full(len(part), None, dtype=object)
    rows = result.unassigned["row"].to_numpy()
    distance[rows] = result.unassigned["distance_m"].to_numpy()
    nearest[rows] = result.unassigned["nearest"].to_numpy(dtype=object)
    out["distance_m"] = distance
    out["nearest"] = pd.array(nearest, dtype=_CODE)
    return out


def spatial_partition(
    points: dask_geopandas.GeoDataFrame, *, npartitions: int | None = None
) -> dask_geopandas.GeoDataFrame:
    """Reorder points so that each partition holds points close to each other (Hilbert curve).

    A thin wrapper of dask-geopandas ``spatial_shuffle(by="hilbert")``: points read in id
    order (from PostGIS, say) are scattered all over the area; after the shuffle each
    partition covers a compact region, so the grids a worker tests stay in its caches. It is
    a full shuffle of the data (disk-backed on a distributed cluster): worth it before
    repeated work on the same points, not for a single pass over points already stored in
    spatial order (partitioned GeoParquet written after a shuffle, or PostGIS clustered on
    a spatial index).

    Parameters
    ----------
    points
        Points with a CRS.
    npartitions
        Partitions of the result (default: as many as the input).

    Returns
    -------
    dask_geopandas.GeoDataFrame
        The same rows (index kept), spatially partitioned, with partition bounds known.
    """
    require_crs(points.crs, source="points")
    name = points._meta.index.name
    tagged = points.map_partitions(_tag_rows, meta=_tag_rows(points._meta))
    shuffled = tagged.spatial_shuffle(by="hilbert", npartitions=npartitions)
    # spatial_shuffle indexes the rows by their Hilbert distance: give them their own back.
    return shuffled.map_partitions(_untag_rows, name, meta=_untag_rows(tagged._meta, name))


_ROW = "__gis_grid_row__"


def _tag_rows(part: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    return part.assign(**{_ROW: part.index.to_numpy()})


def _untag_rows(part: gpd.GeoDataFrame, name: object) -> gpd.GeoDataFrame:
    out = part.set_index(_ROW)
    out.index.name = name
    return out


def assign_partitioned(
    points: dask_geopandas.GeoDataFrame,
    grids: gpd.GeoDataFrame,
    *,
    grid_id: str = "code",
    keep: Sequence[str] = (),
) -> dd.DataFrame:
    """Assign partitioned points to the grids that cover them, one Dask task per partition.

    Each partition is assigned by :func:`gis_grid.assign.assign_points` against all the
    grids (sent once to each worker, which builds its grid index once), so the result equals
    the single-machine answer point for point: same border rule (a point on a border shared
    by several grids goes to the smallest code; interior beats boundary where grids
    overlap), and points outside every grid kept with the distance to the nearest grid.

    Parameters
    ----------
    points
        Points with a CRS (any number of partitions; see :func:`spatial_partition`). If the
        CRS differs from the grids', points are converted to the grids' CRS (warned once).
    grids
        Polygons with a CRS and a unique code column ``grid_id``: checked here, before any
        work is sent out.
    grid_id
        The grid code column.
    keep
        Columns of ``points`` to carry over (e.g. the point ids).

    Returns
    -------
    dask.dataframe.DataFrame
        Lazy, indexed like ``points``: the ``keep`` columns, then ``grid`` (code, missing
        for a point outside every grid), ``distance_m`` and ``nearest`` (for points outside
        every grid: metres to the nearest grid and its code; missing otherwise). Compute
        it, write it (``to_parquet``) or reduce it; nothing runs before.

    Raises
    ------
    CRSError
        Points or grids without a CRS.
    DataFileError
        A ``keep`` column that the points lack.
    GeometryError, DuplicateCodeError
        Bad grids, named by code (checked now). Bad points (null, non-point, NaN
        coordinates) fail the partition's task with the rows named, as in memory.

    Examples
    --------
    >>> import dask_geopandas  # doctest: +SKIP
    >>> parts = dask_geopandas.from_geopandas(households, npartitions=8)  # doctest: +SKIP
    >>> with dask_client() as client:  # doctest: +SKIP
    ...     located = assign_partitioned(parts, grids, keep=["id"]).compute()
    """
    points_crs = require_crs(points.crs, source="points")
    grid_crs = require_crs(grids.crs, source="grids")
    grid_set(grids, grid_id=grid_id)  # validation only: refuse bad grids before any task runs
    keep = list(keep)
    missing = [name for name in keep if name not in points.columns]
    if missing:
        msg = f"points have no column(s) {missing} to keep; they have {list(points.columns)}"
        raise DataFileError(msg, problems=[{"field": name} for name in missing])
    if not points_crs.equals(grid_crs):
        warnings.warn(
            f"points are in {points_crs.to_string()}, grids in {grid_crs.to_string()}: "
            "the points are converted to the grids' CRS",
            UserWarning,
            stacklevel=2,
        )
    import dask

    key = f"scale-grids-{uuid.uuid4().hex}"
    shared = dask.delayed(grids, name=key, traverse=False)
    meta = pd.DataFrame(
        {name: points._meta[name].iloc[:0] for name in keep}
        | {
            "grid": pd.Series([], dtype=_CODE),
            "distance_m": pd.Series([], dtype=np.float64),
            "nearest": pd.Series([], dtype=_CODE),
        },
        index=points._meta.index[:0],
    )
    return points.map_partitions(
        _assign_part, shared, key, grid_id, keep, meta=meta, align_dataframes=False
    )
