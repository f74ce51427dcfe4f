"""Coordinate reference systems and Chinese datum conversions.

The platform stores everything in CGCS2000 geographic coordinates (EPSG:4490) and measures
areas and lengths in the CGCS2000 3-degree Gauss-Krüger zone of the data (EPSG:4513-4533 with
zone numbers, EPSG:4534-4554 with central meridian only in easting; we use the latter, e.g.
EPSG:4545 = CM 108 E for Dachuan). At village scale CGCS2000 and WGS84 differ by centimetres,
so WGS84 input is taken as CGCS2000 without a datum shift.

Web maps and phones in China give GCJ-02 ("Mars") or BD-09 (Baidu) coordinates: these are
converted to WGS84/CGCS2000 at import with :mod:`prcoords` (public domain, precise iterative
inverse) and never stored.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import TYPE_CHECKING

import numpy as np
import prcoords
import shapely
from pyproj import CRS

from gis_grid.errors import CoordinateError, CRSError

if TYPE_CHECKING:
    from collections.abc import Callable

    from numpy.typing import ArrayLike, NDArray

    _LatLonFunction = Callable[..., tuple[float, float]]

__all__ = [
    "CGCS2000",
    "CHINA_BOUNDS",
    "Datum",
    "check_lonlat_in_china",
    "convert_geometry_datum",
    "convert_lonlat",
    "gauss_kruger_crs",
    "gauss_kruger_epsg",
    "parse_datum",
    "require_crs",
]

#: CGCS2000 geographic coordinates: the storage CRS of the platform.
CGCS2000 = CRS.from_epsg(4490)

#: Longitude/latitude range accepted as "in China" (mainland, Hainan, Taiwan, islands).
#: Deliberately generous; a point outside is almost certainly swapped or in another CRS.
CHINA_BOUNDS = (73.0, 3.0, 136.0, 54.0)


#: Labels starting with one of these words are printed as given ("line 7 (code=A)").
_LABEL_WORDS = frozenset({"feature", "line", "row", "point"})


class Datum(StrEnum):
    """Datums that longitude/latitude input may be given in."""

    WGS84 = "wgs84"
    CGCS2000 = "cgcs2000"
    GCJ02 = "gcj02"
    BD09 = "bd09"


def parse_datum(value: Datum | str) -> Datum:
    """Return ``value`` as a :class:`Datum`, accepting the usual spellings.

    Parameters
    ----------
    value
        A :class:`Datum` or a name such as ``"wgs84"``, ``"WGS-84"``, ``"CGCS2000"``,
        ``"GCJ-02"``, ``"gcj02"``, ``"BD-09"``.

    Returns
    -------
    Datum

    Raises
    ------
    CRSError
        For an unknown name; the message lists the accepted ones.

    Examples
    --------
    >>> parse_datum("GCJ-02")
    <Datum.GCJ02: 'gcj02'>
    """
    if isinstance(value, Datum):
        return value
    key = str(value).strip().lower().replace("-", "").replace("_", "").replace(" ", "")
    try:
        return Datum(key)
    except ValueError:
        choices = ", ".join(repr(d.value) for d in Datum)
        msg = f"unknown datum {value!r}; choose one of {choices}"
        raise CRSError(msg) from None


def gauss_kruger_epsg(longitude: float) -> int:
    """EPSG code of the CGCS2000 3-degree Gauss-Krüger zone (CM in easting) for a longitude.

    Parameters
    ----------
    longitude
        Longitude in degrees east, inside China's range (75-135 E).

    Returns
    -------
    int
        EPSG code between 4534 (CM 75 E) and 4554 (CM 135 E).

    Examples
    --------
    >>> gauss_kruger_epsg(107.4)
    4545
    """
    if not np.isfinite(longitude) or not 73.5 <= longitude <= 136.5:
        msg = (
            f"longitude {longitude!r} is outside the CGCS2000 Gauss-Krüger zones of China "
            "(73.5-136.5 E); is the data in degrees, and longitude first?"
        )
        raise CoordinateError(msg)
    # Zone k covers [3k - 1.5, 3k + 1.5) degrees: floor, not round(), whose banker's
    # rounding would put both 106.5 and 109.5 in the 108 E zone.
    central_meridian = 3 * math.floor((longitude + 1.5) / 3)
    central_meridian = min(max(central_meridian, 75), 135)
    return 4534 + (central_meridian - 75) // 3


def gauss_kruger_crs(bounds: ArrayLike) -> CRS:
    """Return the Gauss-Krüger CRS to measure data with these lon/lat bounds in.

    Parameters
    ----------
    bounds
        ``(minx, miny, maxx, maxy)`` in degrees (CGCS2000 or WGS84).

    Returns
    -------
    pyproj.CRS
        The 3-degree zone containing the centre of the bounds (EPSG:4545 for Dachuan).
    """
    minx, _miny, maxx, _maxy = (float(v) for v in np.asarray(bounds, dtype=float))
    return CRS.from_epsg(gauss_kruger_epsg((minx + maxx) / 2))


def require_crs(crs: object, *, source: str) -> CRS:
    """Return ``crs`` as a :class:`pyproj.CRS`, refusing data without one.

    Parameters
    ----------
    crs
        Whatever the reader found (a CRS, an EPSG code, WKT, or ``None``).
    source
        Name of the file or layer, used in the error message.

    Raises
    ------
    CRSError
        If there is no CRS. The message lists the CRSs the caller can declare; the platform
        never guesses.
    """
    if crs is None:
        msg = (
            f"{source}: no coordinate reference system (missing .prj or CRS metadata). "
            "Declare it explicitly: EPSG:4490 (CGCS2000), EPSG:4326 (WGS84), a Gauss-Krüger "
            "zone such as EPSG:4545, or datum 'gcj02' / 'bd09' for web-map coordinates."
        )
        raise CRSError(msg)
    try:
        return CRS.from_user_input(crs)
    except Exception as exc:
        msg = f"{source}: unknown coordinate reference system {crs!r}: {exc}"
        raise CRSError(msg) from exc


def check_lonlat_in_china(
    lon: ArrayLike, lat: ArrayLike, *, source: str, labels: ArrayLike | None = None
) -> None:
    """Refuse longitude/latitude pairs that lie outside China or look swapped.

    Parameters
    ----------
    lon, lat
        Coordinates in degrees.
    source
        File or layer name for the message.
    labels
        Feature labels (ids or row numbers) in the same order, for the message. A label
        such as ``"line 7 (code=A)"`` is printed as given, a bare id as ``feature <id>``;
        repeated labels (several vertices of one feature) count as one feature.

    Raises
    ------
    CoordinateError
        Naming the first offending feature and coordinate, and saying when latitude and
        longitude look swapped.
    """
    x = np.asarray(lon, dtype=float)
    y = np.asarray(lat, dtype=float)
    minx, miny, maxx, maxy = CHINA_BOUNDS
    bad = ~((x >= minx) & (x <= maxx) & (y >= miny) & (y <= maxy))
    if not bad.any():
        return
    first = int(np.flatnonzero(bad)[0])
    count = int(bad.sum())
    label: object = first
    if labels is not None:
        names = np.asarray(labels)
        label = names[first]
        count = len(np.unique(names[bad]))  # a feature may appear once per vertex or corner
    where = str(label)
    if where.split(" ", 1)[0] not in _LABEL_WORDS:
        where = f"feature {where}"
    bx, by = x[first], y[first]
    swapped = minx <= by <= maxx and miny <= bx <= maxy
    hint = (
        " Latitude and longitude look swapped: give longitude first (x=lon, y=lat)."
        if swapped
        else " Is the file in projected metres or another CRS than declared?"
    )
    msg = (
        f"{source}: {count} feature(s) outside China's range "
        f"({minx}-{maxx} E, {miny}-{maxy} N); first is {where} at "
        f"({bx:.6f}, {by:.6f}).{hint}"
    )
    raise CoordinateError(msg)


#: Stop refining an inverse conversion when the forward image is this close (degrees, ~1 mm).
_INVERSE_TOLERANCE = 1e-11
_INVERSE_MAX_ITERATIONS = 30


def _forward_function(datum: Datum) -> _LatLonFunction | None:
    """Prcoords' WGS84 -> ``datum`` obfuscation (the library is the reference formula)."""
    if datum is Datum.GCJ02:
        return prcoords.wgs_gcj
    if datum is Datum.BD09:
        return prcoords.wgs_bd
    return None


def _apply(
    function: _LatLonFunction, x: NDArray[np.float64], y: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    # prcoords works on scalars (lat, lon); conversions only run at import/export.
    out = np.array([function((lat, lon), check_china=False) for lon, lat in zip(x, y, strict=True)])
    out = out.reshape(-1, 2)
    return out[:, 1], out[:, 0]


def _to_wgs84(
    forward: _LatLonFunction, x: NDArray[np.float64], y: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Invert ``forward`` by fixed-point iteration, all points at once.

    prcoords' own ``*_bored`` inverses stop at 1e-5 degrees of residual, which leaves up to
    ~2e-7 degrees of error for BD-09; iterating to 1e-11 costs two or three more passes and
    gives round trips exact to ~1e-9 degrees.
    """
    wx, wy = x.copy(), y.copy()
    todo = np.ones(x.size, dtype=bool)
    for _ in range(_INVERSE_MAX_ITERATIONS):
        fx, fy = _apply(forward, wx[todo], wy[todo])
        dx, dy = fx - x[todo], fy - y[todo]
        wx[todo] -= dx
        wy[todo] -= dy
        still = np.maximum(np.abs(dx), np.abs(dy)) > _INVERSE_TOLERANCE
        todo[np.flatnonzero(todo)[~still]] = False
        if not todo.any():
            break
    return wx, wy


def convert_lonlat(
    lon: ArrayLike, lat: ArrayLike, *, source: Datum | str, target: Datum | str = Datum.CGCS2000
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Convert longitude/latitude arrays between WGS84/CGCS2000, GCJ-02 and BD-09.

    Parameters
    ----------
    lon, lat
        Coordinates in degrees, in ``source`` datum.
    source, target
        A :class:`Datum` or its name (``"wgs84"``, ``"cgcs2000"``, ``"gcj02"``, ``"bd09"``).

    Returns
    -------
    tuple of ndarray
        ``(lon, lat)`` in the target datum. The forward formulas are prcoords'; the
        GCJ-02/BD-09 to WGS84 inverse iterates them to about 1e-9 degrees (millimetres).

    Raises
    ------
    CRSError
        For an unknown datum name.

    Examples
    --------
    >>> lon, lat = convert_lonlat([107.409], [30.962], source="gcj02")
    >>> round(float(lon[0] - 107.409) * 96_000, -1)  # metres east of the GCJ-02 position
    -450.0
    """
    src = parse_datum(source)
    dst = parse_datum(target)
    x = np.atleast_1d(np.asarray(lon, dtype=float)).ravel().copy()
    y = np.atleast_1d(np.asarray(lat, dtype=float)).ravel().copy()
    if x.shape != y.shape:
        msg = f"lon and lat have different lengths ({x.size} and {y.size})"
        raise ValueError(msg)
    to_wgs = _forward_function(src)
    from_wgs = _forward_function(dst)
    if src is dst or (to_wgs is None and from_wgs is None):
        return x, y
    finite = np.isfinite(x) & np.isfinite(y)  # NaN (missing) coordinates pass through
    fx, fy = x[finite], y[finite]
    if to_wgs is not None:
        fx, fy = _to_wgs84(to_wgs, fx, fy)
    if from_wgs is not None:
        fx, fy = _apply(from_wgs, fx, fy)
    x[finite], y[finite] = fx, fy
    return x, y


def convert_geometry_datum(
    geometry: ArrayLike, *, source: Datum | str, target: Datum | str = Datum.CGCS2000
) -> NDArray[np.object_]:
    """Convert shapely geometries (lon/lat) between datums, vertex by vertex.

    Parameters
    ----------
    geometry
        A shapely geometry or an array of them, in ``source`` datum.
    source, target
        Datums, as in :func:`convert_lonlat`.

    Returns
    -------
    ndarray of shapely geometries
        The same geometries with every vertex converted.
    """
    geoms = np.atleast_1d(np.asarray(geometry, dtype=object))
    if parse_datum(source) in (Datum.WGS84, Datum.CGCS2000) and parse_datum(target) in (
        Datum.WGS84,
        Datum.CGCS2000,
    ):
        return geoms

    def _transform(coords: NDArray[np.float64]) -> NDArray[np.float64]:
        lon, lat = convert_lonlat(coords[:, 0], coords[:, 1], source=source, target=target)
        return np.column_stack([lon, lat])

    return np.asarray(shapely.transform(geoms, _transform), dtype=object)
