"""Checks of a submitted boundary or cutting line, before anything is read or written.

Each refusal names the field, what is wrong and where (lon/lat), and carries the same in
``problems`` for machines: a map can put a marker on a self-intersection.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import shapely
from shapely.geometry import shape

from gis_grid.crs import CHINA_BOUNDS, Datum, convert_geometry_datum, parse_datum
from gis_grid.errors import CoordinateError, GeometryError

__all__ = [
    "MAX_VERTICES",
    "TOLERANCE_M",
    "check_line",
    "check_polygon",
    "geometry_from_geojson",
    "version_tag",
]

#: Most vertices a submitted boundary or line may have (a village-scale grid has hundreds).
MAX_VERTICES = 10_000

#: Widest sliver (metres) an edit may leave, overhang or create along outlines without it
#: being a problem: drawing on a web map is precise to decimetres, not to the millimetre.
TOLERANCE_M = 0.5

#: "Self-intersection[107.4 30.96]": GEOS puts the location of the problem in brackets.
_WHERE = re.compile(r"\[\s*([-+0-9.eE]+)\s+([-+0-9.eE]+)(?:\s+[-+0-9.eE]+)?\s*\]")

_POLYGONAL = (3, 6)  # shapely type ids of Polygon and MultiPolygon


def version_tag(code: str, version: int) -> str:
    """Return the entity tag of a grid version: ``"<code>-v<version>"``, quotes included.

    The same tag ``GET /api/v1/grids/{code}`` sends as ``ETag`` (and the ``id`` of a grid
    feature inside the quotes); an edit must name it in ``If-Match``.

    Examples
    --------
    >>> version_tag("511703109001001", 2)
    '"511703109001001-v2"'
    """
    return f'"{code}-v{int(version)}"'


def geometry_from_geojson(
    geojson: Mapping[str, Any], *, field: str = "geometry", datum: Datum | str = Datum.CGCS2000
) -> shapely.Geometry:
    """Build a 2-D shapely geometry from a GeoJSON geometry mapping, in CGCS2000 lon/lat.

    Parameters
    ----------
    geojson
        ``{"type": ..., "coordinates": ...}``.
    field
        Name of the request field, for messages.
    datum
        Datum of the coordinates (``gcj02``/``bd09`` are converted vertex by vertex).

    Raises
    ------
    GeometryError
        The mapping is not a geometry shapely can build (e.g. a ring of 3 positions).
    CoordinateError
        A coordinate is not finite (checked before any datum conversion).
    """
    try:
        geom = shapely.force_2d(shape(dict(geojson)))
    except (ValueError, TypeError, KeyError, AttributeError, IndexError) as exc:
        msg = f"{field}: not a usable GeoJSON geometry: {exc}"
        raise GeometryError(msg, problems=[{"field": field, "problem": str(exc)}]) from exc
    _check_finite(geom, field)
    if parse_datum(datum) not in (Datum.CGCS2000, Datum.WGS84):
        geom = convert_geometry_datum(np.asarray([geom], dtype=object), source=datum)[0]
    return geom


def _check_finite(geom: shapely.Geometry, field: str) -> None:
    xy = shapely.get_coordinates(geom)
    bad = ~np.isfinite(xy).all(axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        msg = (
            f"{field}: vertex {i} has a coordinate that is not a finite number "
            f"({xy[i, 0]}, {xy[i, 1]}); give longitude and latitude in degrees"
        )
        problem = {"field": field, "vertex": i, "problem": "not finite"}
        raise CoordinateError(msg, problems=[problem])


def _check_range(xy: np.ndarray, field: str) -> None:
    minx, miny, maxx, maxy = CHINA_BOUNDS
    x, y = xy[:, 0], xy[:, 1]
    bad = ~((x >= minx) & (x <= maxx) & (y >= miny) & (y <= maxy))
    if not bad.any():
        return
    i = int(np.flatnonzero(bad)[0])
    swapped = minx <= y[i] <= maxx and miny <= x[i] <= maxy
    hint = (
        "latitude and longitude look swapped: give [lon, lat] (longitude first)"
        if swapped
        else f"outside China's range {minx}..{maxx} E, {miny}..{maxy} N (CGCS2000 degrees)"
    )
    msg = f"{field}: vertex {i} at ({x[i]}, {y[i]}): {hint}"
    problem = {"field": field, "vertex": i, "lon": float(x[i]), "lat": float(y[i])}
    raise CoordinateError(msg, problems=[problem | {"problem": "swapped" if swapped else "range"}])


def _common(geom: shapely.Geometry, field: str, kinds: tuple[int, ...], what: str) -> np.ndarray:
    if geom is None or shapely.is_empty(geom):
        msg = f"{field} is empty: give the {what} with its coordinates"
        raise GeometryError(msg, problems=[{"field": field, "problem": "empty"}])
    if shapely.get_type_id(geom) not in kinds:
        msg = f"{field} is a {type(geom).__name__}: give a {what}"
        raise GeometryError(msg, problems=[{"field": field, "problem": "type"}])
    _check_finite(geom, field)
    xy = shapely.get_coordinates(geom)
    if len(xy) > MAX_VERTICES:
        msg = f"{field} has {len(xy)} vertices, more than {MAX_VERTICES}: simplify it"
        raise GeometryError(msg, problems=[{"field": field, "problem": "too many vertices"}])
    _check_range(xy, field)
    return xy


def check_polygon(geom: shapely.Geometry, *, field: str = "geometry") -> shapely.Geometry:
    """Return ``geom`` if it is a usable grid boundary, else raise naming the problem.

    Non-empty, Polygon or MultiPolygon, finite coordinates in China's lon/lat range (swapped
    lat/lon named as such), at most :data:`MAX_VERTICES` vertices, and valid (OGC): a
    self-intersection is reported with its lon/lat.

    Parameters
    ----------
    geom
        The boundary, CGCS2000 lon/lat.
    field
        Name of the request field, for messages.

    Returns
    -------
    shapely.Geometry

    Raises
    ------
    GeometryError, CoordinateError
        With ``problems``: ``field``, ``problem`` and, where there is one, ``lon``/``lat``.

    Examples
    --------
    >>> bowtie = shapely.Polygon([(107, 31), (107.01, 31.01), (107.01, 31), (107, 31.01)])
    >>> check_polygon(bowtie)
    Traceback (most recent call last):
    ...
    gis_grid.errors.GeometryError: geometry is not a valid polygon: Self-intersection at ...
    """
    _common(geom, field, _POLYGONAL, "Polygon or MultiPolygon")
    if not shapely.is_valid(geom):
        reason = str(shapely.is_valid_reason(geom))
        problem: dict[str, object] = {"field": field, "problem": reason.split("[", 1)[0]}
        where = ""
        found = _WHERE.search(reason)
        if found:
            lon, lat = float(found.group(1)), float(found.group(2))
            problem |= {"lon": lon, "lat": lat}
            where = f" at lon/lat ({lon:.7f}, {lat:.7f})"
        msg = (
            f"{field} is not a valid polygon: {problem['problem']}{where}. "
            "Redraw it so that its outline does not cross itself"
        )
        raise GeometryError(msg, problems=[problem])
    return geom


def check_line(geom: shapely.Geometry, *, field: str = "line") -> shapely.Geometry:
    """Return ``geom`` if it is a usable cutting line (LineString, finite, in range).

    Raises
    ------
    GeometryError, CoordinateError
        Naming the field and the problem.

    Examples
    --------
    >>> check_line(shapely.LineString([(107.4, 31.0), (107.41, 31.0)])).geom_type
    'LineString'
    """
    xy = _common(geom, field, (1,), "LineString")
    if len(np.unique(xy, axis=0)) < 2:
        msg = f"{field} has no length: give at least two distinct positions"
        raise GeometryError(msg, problems=[{"field": field, "problem": "no length"}])
    return geom
