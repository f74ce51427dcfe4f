"""Province-scale batch work on Dask: the same answers as one machine, on many.

The batch operations of the spatial engine and of grid drawing, spread over a Dask cluster
(a scheduler address, or a LocalCluster started here), each running the single-machine
function on its share of the work so that the results are the same:

* :func:`assign_partitioned`: points partitioned with dask-geopandas (optionally
  :func:`spatial_partition`: Hilbert order) assigned by :func:`gis_grid.assign.assign_points`
  per partition against all the grids (one grid index per worker): same border rule, same
  report of points outside every grid.
* :func:`town_reports`: assignment check, balance and AB posts of each town
  (:func:`gis_grid.town.town_report`), one ``dask.distributed`` task per town, all towns
  read in one exported database snapshot.
* :func:`draw_towns`: :func:`gis_grid.plans.draw_town` per town.
* At scale, in and out: :func:`read_geoparquet` / :func:`write_geoparquet` (partitioned
  GeoParquet), :func:`read_postgis_partitioned` (key ranges read by the workers through
  server-side cursors) / :func:`write_postgis_partitioned` (``COPY`` per partition), and on
  one machine :func:`iter_postgis` (keyset pagination) / :func:`copy_to_postgis`.

The cluster is chosen by :func:`dask_client`: ``scheduler=`` (the command line's
``--scheduler``), else the ``GIS_GRID_DASK_SCHEDULER`` environment variable, else a
LocalCluster. See ``docs/scale.md``.

Examples
--------
>>> import dask_geopandas  # doctest: +SKIP
>>> with dask_client(workers=2):  # doctest: +SKIP
...     points = read_geoparquet("households.parquet")
...     located = assign_partitioned(points, grids, keep=["id"])
...     located.to_parquet("located.parquet")
"""

from gis_grid.scale._assign import ASSIGNED_COLUMNS, assign_partitioned, spatial_partition
from gis_grid.scale._cluster import SCHEDULER_ENV, SchedulerError, dask_client, scheduler_address
from gis_grid.scale._parquet import read_geoparquet, write_geoparquet
from gis_grid.scale._postgis import (
    copy_to_postgis,
    iter_postgis,
    read_postgis_partitioned,
    write_postgis_partitioned,
)
from gis_grid.scale._towns import (
    TownResult,
    database_draw_sources,
    draw_towns,
    exported_snapshot,
    file_draw_sources,
    town_reports,
)

__all__ = [
    "ASSIGNED_COLUMNS",
    "SCHEDULER_ENV",
    "SchedulerError",
    "TownResult",
    "assign_partitioned",
    "copy_to_postgis",
    "dask_client",
    "database_draw_sources",
    "draw_towns",
    "exported_snapshot",
    "file_draw_sources",
    "iter_postgis",
    "read_geoparquet",
    "read_postgis_partitioned",
    "scheduler_address",
    "spatial_partition",
    "town_reports",
    "write_geoparquet",
    "write_postgis_partitioned",
]
