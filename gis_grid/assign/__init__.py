"""Assign points (households, pollution points, hazards, incidents) to grids, in memory.

:func:`assign_points` gives every point the code of the grid covering it, vectorised (no
Python loop per point): a :class:`GridIndex`, built once per grid version, answers most points
from a lookup raster of grid positions and tests only points near a border exactly.
:func:`reassign_points` updates an assignment after grids were redrawn by re-examining only
the points in the changed area; the result equals a full re-run.

The same in PostGIS, on the platform's tables (same border rule): :func:`assign_in_database`
(one set-based, polygon-driven statement), :func:`reassign_in_database` (only the points of
the changed grids), :func:`unassigned_in_database`; migration 0003 assigns rows on insert.

**Border rule.** A point on a border shared by several grids (edge or vertex) goes to the
grid with the smallest code; where grids overlap, a grid containing the point in its interior
beats one it only touches. Points outside every grid are reported with the distance (metres)
to the nearest grid, never dropped.

Examples
--------
>>> import geopandas as gpd, shapely
>>> from gis_grid.assign import assign_points
>>> grids = gpd.GeoDataFrame({"code": ["A", "B"]}, crs=4545,
...     geometry=[shapely.box(0, 0, 100, 100), shapely.box(100, 0, 200, 100)])
>>> pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy([10, 100, 300], [10, 10, 10]), crs=4545)
>>> result = assign_points(pts, grids)
>>> result.grid.tolist(), result.unassigned["distance_m"].tolist()
(['A', 'A', nan], [100.0])
"""

from gis_grid.assign._assign import AssignmentResult, assign_points
from gis_grid.assign._index import GridIndex, build_grid_index
from gis_grid.assign._postgis import (
    ASSIGNED_TABLES,
    DatabaseAssignment,
    assign_in_database,
    changed_grid_codes,
    reassign_in_database,
    unassigned_in_database,
)
from gis_grid.assign._reassign import reassign_points

__all__ = [
    "ASSIGNED_TABLES",
    "AssignmentResult",
    "DatabaseAssignment",
    "GridIndex",
    "assign_in_database",
    "assign_points",
    "build_grid_index",
    "changed_grid_codes",
    "reassign_in_database",
    "reassign_points",
    "unassigned_in_database",
]
