"""Grid editing that never loses an edit: redraw, rename, split and merge as new versions.

Every operation is guarded by the versions the client read (``If-Match``: a stale version is
refused, nobody's edit is overwritten), validated before anything is written (valid, non-empty
polygon inside its village; each problem named with its lon/lat), keeps the village exactly
tiled (a moved shared edge moves the neighbour in the same transaction, vertex for vertex),
writes a new version of only the grids that changed (the previous closed at the same instant,
history kept), and re-assigns the points of those grids incrementally. ``dry_run=True`` does
all of it and rolls back, to preview the new shapes and loads.

1. :func:`check_polygon` / :func:`check_line` check what the client sent;
2. :func:`edit_grid`, :func:`split_grid`, :func:`merge_grids` edit the database;
3. the pure geometry (no database) is in :func:`redraw`, :func:`split`, :func:`merge`, on a
   :class:`Layout` of the grids around the edit.

Examples
--------
>>> from gis_grid.edit import edit_grid
>>> with engine.begin() as conn:  # doctest: +SKIP
...     edit = edit_grid(conn, "511703109209001", geometry=outline, actor="centre",
...                      if_match={"511703109209001": 1})
>>> edit.etag, edit.points_moved["households"]  # doctest: +SKIP
('"511703109209001-v2"', 37)
"""

from gis_grid.edit._boundary import redraw
from gis_grid.edit._checks import (
    MAX_FEATURES,
    MAX_RINGS,
    MAX_TOTAL_VERTICES,
    MAX_VERTICES,
    TOLERANCE_M,
    check_feature_count,
    check_geojson_limits,
    check_geometry_limits,
    check_line,
    check_polygon,
    geojson_size,
    geometry_from_geojson,
    version_tag,
)
from gis_grid.edit._edit import GridChange, GridEdit, edit_grid, merge_grids, split_grid
from gis_grid.edit._faces import Layout, Outcome
from gis_grid.edit._merge import merge
from gis_grid.edit._split import split
from gis_grid.edit._store import read_layout

__all__ = [
    "MAX_FEATURES",
    "MAX_RINGS",
    "MAX_TOTAL_VERTICES",
    "MAX_VERTICES",
    "TOLERANCE_M",
    "GridChange",
    "GridEdit",
    "Layout",
    "Outcome",
    "check_feature_count",
    "check_geojson_limits",
    "check_geometry_limits",
    "check_line",
    "check_polygon",
    "edit_grid",
    "geojson_size",
    "geometry_from_geojson",
    "merge",
    "merge_grids",
    "read_layout",
    "redraw",
    "split",
    "split_grid",
    "version_tag",
]
