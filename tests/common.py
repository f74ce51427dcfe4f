"""Canonical geometries and small builders reused across the test suite.

Coordinates are CGCS2000 lon/lat near Zhaojia Town (赵家镇, ~107.405 E, 30.964 N) unless the
name says otherwise, so they pass the "inside China" checks. Nothing here is real data.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

ZHAOJIA = (107.405, 30.964)  # Zhaojia town seat (WGS84 ~ CGCS2000), from data/README.md
DACHUAN_BOUNDS = (106.99, 30.82, 107.83, 31.42)  # WGS84 extent of Dachuan District
URUMQI = (87.6, 43.8)

_X, _Y = ZHAOJIA
_D = 0.01  # ~1 km

point = shapely.Point(_X, _Y)
line = shapely.LineString([(_X, _Y), (_X + _D, _Y + _D)])
square = shapely.box(_X, _Y, _X + _D, _Y + _D)
square_right = shapely.box(_X + _D, _Y, _X + 2 * _D, _Y + _D)  # shares square's east edge
polygon_with_hole = shapely.Polygon(
    [(_X, _Y), (_X + 2 * _D, _Y), (_X + 2 * _D, _Y + 2 * _D), (_X, _Y + 2 * _D)],
    holes=[[(_X + 0.5 * _D, _Y + 0.5 * _D), (_X + 1.5 * _D, _Y + 0.5 * _D),
            (_X + 1.5 * _D, _Y + 1.5 * _D), (_X + 0.5 * _D, _Y + 1.5 * _D)]],
)  # fmt: skip
multipolygon = shapely.MultiPolygon([square, shapely.box(_X + 3 * _D, _Y, _X + 4 * _D, _Y + _D)])
polygon_z = shapely.force_3d(square, 350.0)
#: Bow-tie: self-intersects at its centre, (_X + _D/2, _Y + _D/2).
bowtie = shapely.Polygon([(_X, _Y), (_X + _D, _Y + _D), (_X + _D, _Y), (_X, _Y + _D)])
BOWTIE_CROSSING = (_X + _D / 2, _Y + _D / 2)
empty_polygon = shapely.Polygon()
empty_point = shapely.Point()
#: Latitude first: what a swapped CSV or shapefile looks like.
point_swapped = shapely.Point(_Y, _X)
point_outside_china = shapely.Point(2.35, 48.85)  # Paris


def towns(crs: object = 4490) -> gpd.GeoDataFrame:
    """Three polygons with Chinese names and 9-digit town codes."""
    return gpd.GeoDataFrame(
        {
            "code": ["511703109", "511703110", "511703111"],
            "name": ["赵家镇", "亭子镇", "石梯镇"],
            "households": [1200, 950, 1430],
        },
        geometry=[square, square_right, polygon_with_hole],
        crs=crs,
    )


def dachuan_grid(n: int = 11) -> tuple[np.ndarray, np.ndarray]:
    """An ``n`` x ``n`` grid of lon/lat points spanning Dachuan."""
    minx, miny, maxx, maxy = DACHUAN_BOUNDS
    lon, lat = np.meshgrid(np.linspace(minx, maxx, n), np.linspace(miny, maxy, n))
    return lon.ravel(), lat.ravel()


def shapefile_parts(path: Path) -> dict[str, Path]:
    """The files of shapefile ``path`` by lower-case extension."""
    return {p.suffix.lower(): p for p in path.parent.glob(path.stem + ".*")}
