"""Point input: coordinates in the grids' CRS, refusing what cannot be located."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np
import shapely
from pyproj import Transformer

from gis_grid.crs import require_crs
from gis_grid.errors import CoordinateError, GeometryError
from gis_grid.io._checks import pick_id_field

if TYPE_CHECKING:
    import geopandas as gpd
    from numpy.typing import NDArray
    from pyproj import CRS

__all__ = ["crs_name", "point_coordinates"]

#: How many offending rows a message spells out before summarising the rest.
_MAX_LISTED = 5
_POINT = 0  # shapely type id
_TYPE_NAMES = (
    "Point",
    "LineString",
    "LinearRing",
    "Polygon",
    "MultiPoint",
    "MultiLineString",
    "MultiPolygon",
    "GeometryCollection",
)


def crs_name(crs: CRS) -> str:
    """``EPSG:4490 (China Geodetic Coordinate System 2000)`` or the CRS's name."""
    code = crs.to_epsg()
    return f"EPSG:{code} ({crs.name})" if code is not None else crs.name


def _labels(points: gpd.GeoDataFrame | gpd.GeoSeries, rows: NDArray[np.intp]) -> list[str]:
    """``feature N (hh_id=...)`` for the given rows only (N counted from 1, as in io)."""
    shown = rows[:_MAX_LISTED]
    columns = getattr(points, "columns", None)
    id_field = None
    if columns is not None:
        id_field = pick_id_field(c for c in columns if c != points.geometry.name)
    labels = []
    for row in shown:  # at most _MAX_LISTED rows
        label = f"feature {row + 1}"
        if id_field is not None:
            label += f" ({id_field}={points[id_field].iloc[row]!s})"
        elif not isinstance(points.index[row], (int, np.integer)):
            label += f" (index {points.index[row]!r})"
        labels.append(label)
    return labels


def _refuse(
    points: gpd.GeoDataFrame | gpd.GeoSeries,
    rows: NDArray[np.intp],
    why: str,
    *,
    error: type[Exception],
    what: str,
    coords: tuple[NDArray[np.float64], NDArray[np.float64]] | None = None,
) -> None:
    if rows.size == 0:
        return
    labels = _labels(points, rows)
    if coords is not None:
        x, y = coords
        labels = [f"{lab} at ({x[r]}, {y[r]})" for lab, r in zip(labels, rows, strict=False)]
    more = f"; and {rows.size - len(labels)} more" if rows.size > len(labels) else ""
    msg = f"points: {rows.size} point(s) {why}: {'; '.join(labels)}{more}. {what}"
    raise error(msg)


def point_coordinates(
    points: gpd.GeoDataFrame | gpd.GeoSeries, grid_crs: CRS
) -> tuple[NDArray[np.float64], NDArray[np.float64], str | None]:
    """Return the points' ``x, y`` in ``grid_crs`` and a note if they were converted.

    Raises
    ------
    CRSError
        The points have no CRS.
    GeometryError
        A null, empty or non-point geometry, naming the rows.
    CoordinateError
        NaN or infinite coordinates (before or after conversion), naming the rows.
    """
    crs = require_crs(points.crs, source="points")
    geoms = np.asarray(points.geometry, dtype=object)
    types = shapely.get_type_id(geoms)
    _refuse(
        points,
        np.flatnonzero(types == -1),
        "have no geometry",
        error=GeometryError,
        what="Give every point a location or leave those rows out.",
    )
    wrong = np.flatnonzero(types != _POINT)
    if wrong.size:
        kinds = sorted(set(shapely.get_type_id(geoms[wrong]).tolist()))
        names = ", ".join(_TYPE_NAMES[k] for k in kinds)
        _refuse(
            points,
            wrong,
            f"are not points ({names})",
            error=GeometryError,
            what="Assign point layers only (use a representative point of other shapes).",
        )
    _refuse(  # GEOS 3.14 refuses get_x on an empty point
        points,
        np.flatnonzero(shapely.is_empty(geoms)),
        "are empty",
        error=GeometryError,
        what="Give every point a location or leave those rows out.",
    )
    x, y = shapely.get_x(geoms), shapely.get_y(geoms)
    bad = ~(np.isfinite(x) & np.isfinite(y))
    if bad.any():
        _refuse(
            points,
            np.flatnonzero(bad),
            "have NaN or infinite coordinates",
            error=CoordinateError,
            what="Fix or drop those rows (NaN usually means a missing lon/lat).",
            coords=(x, y),
        )
    if crs.equals(grid_crs, ignore_axis_order=True):
        return x, y, None
    transformer = Transformer.from_crs(crs, grid_crs, always_xy=True)
    gx, gy = transformer.transform(x, y)
    gx, gy = np.asarray(gx, dtype=np.float64), np.asarray(gy, dtype=np.float64)
    _refuse(
        points,
        np.flatnonzero(~(np.isfinite(gx) & np.isfinite(gy))),
        f"cannot be converted from {crs_name(crs)} to {crs_name(grid_crs)}",
        error=CoordinateError,
        what="Check the points' declared CRS.",
        coords=(x, y),
    )
    note = (
        f"points converted from {crs_name(crs)} to the grids' CRS {crs_name(grid_crs)} "
        "before assignment"
    )
    warnings.warn(note, UserWarning, stacklevel=3)
    return gx, gy, note
