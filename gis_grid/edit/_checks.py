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
    "MAX_FEATURES",
    "MAX_RINGS",
    "MAX_TOTAL_VERTICES",
    "MAX_VERTICES",
    "TOLERANCE_M",
    "check_feature_count",
    "check_geojson_limits",
    "check_geometry_limits",
    "check_line",
    "check_polygon",
    "geojson_size",
    "geometry_from_geojson",
    "version_tag",
]

# Limits on submitted geometries, the one place they are defined: grid edits, plans sent back,
# file imports. They bound the memory and GEOS time one request can take; real data is far
# below them (the sample's largest village outline has about 100 vertices and one ring).

#: Most vertices one geometry may have (a village-scale grid has hundreds).
MAX_VERTICES = 10_000
#: Most rings one (multi)polygon may have, outer rings and holes of all its parts together.
MAX_RINGS = 500
#: Most features one request or imported file may hold.
MAX_FEATURES = 50_000
#: Most vertices one request or imported file may hold, all features together.
MAX_TOTAL_VERTICES = 2_000_000

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


def _too_many(field: str, what: str, count: int, limit: int, **where: object) -> GeometryError:
    msg = f"{field} has {count} {what}, more than {limit}: simplify it"
    if what == "features":
        msg = f"{field} has {count} features, more than {limit}: split it by town"
    problem = {"field": field, "problem": f"too many {what}", "count": count, "limit": limit}
    return GeometryError(msg, problems=[problem | where])


def geojson_size(geojson: Mapping[str, Any]) -> tuple[int, int]:
    """Count the positions and rings of a GeoJSON geometry without building it.

    Cheap enough to run before shapely sees the coordinates, so an oversized body is refused
    before it costs GEOS any time. Lists are walked, not trusted: any nesting is counted.

    Parameters
    ----------
    geojson
        ``{"type": ..., "coordinates": ...}`` (a ``GeometryCollection``'s ``geometries`` too).

    Returns
    -------
    tuple of int
        ``(positions, rings)``; rings count for Polygon and MultiPolygon only.

    Examples
    --------
    >>> geojson_size({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]})
    (4, 1)
    """
    kind = geojson.get("type")
    if kind == "GeometryCollection":
        sizes = [geojson_size(g) for g in geojson.get("geometries") or [] if isinstance(g, Mapping)]
        return sum(s[0] for s in sizes), sum(s[1] for s in sizes)
    ring_depth = {"Polygon": 1, "MultiPolygon": 2}.get(str(kind))
    positions = rings = 0
    stack: list[tuple[object, int]] = [(geojson.get("coordinates"), 0)]
    while stack:
        node, depth = stack.pop()
        if not isinstance(node, list | tuple):
            continue
        if node and not isinstance(node[0], list | tuple):
            positions += 1  # a position: a list of numbers
            continue
        if depth == ring_depth:
            rings += 1
        stack.extend((child, depth + 1) for child in node)
    return positions, rings


def check_geojson_limits(geojson: Mapping[str, Any], *, field: str = "geometry") -> None:
    """Refuse a GeoJSON geometry over :data:`MAX_VERTICES` or :data:`MAX_RINGS`, unbuilt.

    Raises
    ------
    GeometryError
        Naming the field, the count and the limit (``problems``: ``too many vertices/rings``).

    Examples
    --------
    >>> check_geojson_limits({"type": "Point", "coordinates": [107.4, 31.0]})
    """
    positions, rings = geojson_size(geojson)
    if positions > MAX_VERTICES:
        raise _too_many(field, "vertices", positions, MAX_VERTICES)
    if rings > MAX_RINGS:
        raise _too_many(field, "rings", rings, MAX_RINGS)


def check_feature_count(count: int, *, field: str = "features") -> None:
    """Refuse more than :data:`MAX_FEATURES` features in one request or file.

    Examples
    --------
    >>> check_feature_count(MAX_FEATURES + 1, field="grids.gpkg")
    Traceback (most recent call last):
    ...
    gis_grid.errors.GeometryError: grids.gpkg has 50001 features, more than 50000: ...
    """
    if count > MAX_FEATURES:
        raise _too_many(field, "features", count, MAX_FEATURES)


def check_geometry_limits(geoms: Any, *, field: str = "geometry") -> None:
    """Refuse geometries over the limits: vectorised over an array of geometries.

    Each geometry at most :data:`MAX_VERTICES` vertices and :data:`MAX_RINGS` rings; all
    together at most :data:`MAX_FEATURES` features and :data:`MAX_TOTAL_VERTICES` vertices.

    Parameters
    ----------
    geoms
        A shapely geometry or an array-like of them (``None`` counts as empty).
    field
        How messages name the input (a request field, or a file name).

    Raises
    ------
    GeometryError
        Naming the first feature over a limit (1-based ``feature`` in ``problems``).

    Examples
    --------
    >>> check_geometry_limits([shapely.Point(107.4, 31.0)] * 3, field="hazards.gpkg")
    """
    arr = np.atleast_1d(np.asarray(geoms, dtype=object))
    check_feature_count(len(arr), field=field)
    vertices = shapely.get_num_coordinates(arr)
    parts, owner = shapely.get_parts(arr, return_index=True)
    polygonal = shapely.get_type_id(parts) == 3
    per_part = np.where(polygonal, shapely.get_num_interior_rings(parts) + 1, 0)
    rings = np.bincount(owner, weights=per_part, minlength=len(arr)).astype(np.int64)
    single = len(arr) == 1
    for counts, what, limit in ((vertices, "vertices", MAX_VERTICES), (rings, "rings", MAX_RINGS)):
        over = np.flatnonzero(counts > limit)
        if len(over):
            i = int(over[0])
            where = field if single else f"{field}: feature {i + 1}"
            raise _too_many(where, what, int(counts[i]), limit, feature=i + 1)
    total = int(vertices.sum())
    if total > MAX_TOTAL_VERTICES:
        raise _too_many(field, "vertices in all", total, MAX_TOTAL_VERTICES)


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
        The mapping is not a geometry shapely can build (e.g. a ring of 3 positions), or it
        has more than :data:`MAX_VERTICES` positions or :data:`MAX_RINGS` rings (checked
        before it is built).
    CoordinateError
        A coordinate is not finite (checked before any datum conversion).
    """
    check_geojson_limits(geojson, field=field)
    _check_closed(geojson, field)
    try:
        geom = shapely.force_2d(shape(dict(geojson)))
    except (
        ValueError,
        TypeError,
        KeyError,
        AttributeError,
        IndexError,
        shapely.errors.ShapelyError,  # GEOS refusing, e.g. a LineString of one position
    ) as exc:
        msg = f"{field}: not a usable GeoJSON geometry: {exc}"
        raise GeometryError(msg, problems=[{"field": field, "problem": str(exc)}]) from exc
    _check_finite(geom, field)
    if parse_datum(datum) not in (Datum.CGCS2000, Datum.WGS84):
        geom = convert_geometry_datum(np.asarray([geom], dtype=object), source=datum)[0]
    return geom


def _check_closed(geojson: Mapping[str, Any], field: str) -> None:
    """Refuse a polygon ring whose last position is not its first (RFC 7946, 3.1.6).

    Shapely would close it silently, turning a ring the client left open (a lost vertex, a
    truncated upload) into a shape nobody drew.
    """
    kind = geojson.get("type")
    coords = geojson.get("coordinates")
    if kind not in ("Polygon", "MultiPolygon") or not isinstance(coords, list | tuple):
        return
    polygons = [coords] if kind == "Polygon" else list(coords)
    for i, rings in enumerate(polygons):
        for j, ring in enumerate(rings if isinstance(rings, list | tuple) else ()):
            if not isinstance(ring, list | tuple) or len(ring) < 3:
                continue  # too short to be a ring: shapely says so ("linearring ...")
            first, last = ring[0], ring[-1]
            try:
                start = [float(v) for v in first[:2]]
                end = [float(v) for v in last[:2]]
            except (TypeError, ValueError):
                continue
            if not np.isfinite([*start, *end]).all() or start == end:
                continue  # non-finite values are named by _check_finite
            where = f"ring {j + 1}" + (f" of polygon {i + 1}" if kind == "MultiPolygon" else "")
            msg = (
                f"{field}: {where} is not closed: it starts at ({start[0]}, {start[1]}) and "
                f"ends at ({end[0]}, {end[1]}); repeat the first position at the end "
                "(GeoJSON, RFC 7946)"
            )
            problem = {
                "field": field,
                "problem": "ring not closed",
                "polygon": i + 1,
                "ring": j + 1,
                "lon": start[0],
                "lat": start[1],
            }
            raise GeometryError(msg, problems=[problem])


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
    check_geometry_limits(geom, field=field)
    _check_finite(geom, field)
    xy = shapely.get_coordinates(geom)
    _check_range(xy, field)
    return xy


def check_polygon(geom: shapely.Geometry, *, field: str = "geometry") -> shapely.Geometry:
    """Return ``geom`` if it is a usable grid boundary, else raise naming the problem.

    Non-empty, Polygon or MultiPolygon, finite coordinates in China's lon/lat range (swapped
    lat/lon named as such), at most :data:`MAX_VERTICES` vertices and :data:`MAX_RINGS`
    rings, and valid (OGC): a
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
