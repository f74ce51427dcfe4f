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

from enum import StrEnum
from typing import TYPE_CHECKING

import numpy as np
import prcoords
import shapely
from pyproj import CRS

from gis_grid.errors import CoordinateError, CRSError

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

__all__ = [
    "CGCS2000",
    "CHINA_BOUNDS",
    "Datum",
    "check_lonlat_in_china",
    "convert_lonlat",
    "convert_geometry_datum",
    "gauss_kruger_crs",
    "gauss_kruger_epsg",
    "require_crs",
]

#: CGCS2000 geographic coordinates: the storage CRS of the platform.
CGCS2000 = CRS.from_epsg(4490)

#: Longitude/latitude range accepted as "in China" (mainland, Hainan, Taiwan, islands).
#: Deliberately generous; a point outside is almost certainly swapped or in another CRS.
CHINA_BOUNDS = (73.0, 3.0, 136.0, 54.0)


class Datum(StrEnum):
    """Datums that longitude/latitude input may be given in."""

    WGS84 = "wgs84"
    CGCS2000 = "cgcs2000"
    GCJ02 = "gcj02"
    BD09 = "bd09"


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
    central_meridian = 3 * round(longitude / 3)
    central_meridian = min(max(central_meridian, 75), 135)
    return 4534 + (central_meridian - 75) // 3


def gauss_kruger_crs(bounds: ArrayLike) -> CRS:
    """The Gauss-Krüger CRS to measure data with these lon/lat bounds in.

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
        Feature labels (ids or row numbers) in the same order, for the message.

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
    label = np.asarray(labels)[first] if labels is not None else first
    bx, by = x[first], y[first]
    swapped = minx <= by <= maxx and miny <= bx <= maxy
    hint = (
        " Latitude and longitude look swapped: give longitude first (x=lon, y=lat)."
        if swapped
        else " Is the file in projected metres or another CRS than declared?"
    )
    msg = (
        f"{source}: {int(bad.sum())} feature(s) outside China's range "
        f"({minx}-{maxx} E, {miny}-{maxy} N); first is feature {label} at "
        f"({bx:.6f}, {by:.6f}).{hint}"
    )
    raise CoordinateError(msg)


def _to_wgs_functions(datum: Datum) -> object | None:
    if datum is Datum.GCJ02:
        return prcoords.gcj_wgs_bored
    if datum is Datum.BD09:
        return prcoords.bd_wgs_bored
    return None


def _from_wgs_functions(datum: Datum) -> object | None:
    if datum is Datum.GCJ02:
        return prcoords.wgs_gcj
    if datum is Datum.BD09:
        return prcoords.wgs_bd
    return None


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
        ``(lon, lat)`` in the target datum. GCJ-02/BD-09 to WGS84 uses prcoords' iterative
        inverse, accurate to about 1e-7 degrees (centimetres).

    Examples
    --------
    >>> lon, lat = convert_lonlat([107.409], [30.962], source="gcj02")
    >>> round(float(lon[0] - 107.409) * 96_000, -1)  # metres east of the GCJ-02 position
    -450.0
    """
    src = Datum(source)
    dst = Datum(target)
    x = np.atleast_1d(np.asarray(lon, dtype=float)).copy()
    y = np.atleast_1d(np.asarray(lat, dtype=float)).copy()
    to_wgs = _to_wgs_functions(src)
    from_wgs = _from_wgs_functions(dst)
    if to_wgs is None and from_wgs is None:
        return x, y
    for i in range(x.size):  # prcoords is scalar; conversions only run at import/export
        if not (np.isfinite(x[i]) and np.isfinite(y[i])):
            continue
        lat_i, lon_i = y[i], x[i]
        if to_wgs is not None:
            lat_i, lon_i = to_wgs((lat_i, lon_i), check_china=False)  # type: ignore[operator]
        if from_wgs is not None:
            lat_i, lon_i = from_wgs((lat_i, lon_i), check_china=False)  # type: ignore[operator]
        x[i], y[i] = lon_i, lat_i
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
    if Datum(source) in (Datum.WGS84, Datum.CGCS2000) and Datum(target) in (
        Datum.WGS84,
        Datum.CGCS2000,
    ):
        return geoms

    def _transform(coords: NDArray[np.float64]) -> NDArray[np.float64]:
        lon, lat = convert_lonlat(coords[:, 0], coords[:, 1], source=source, target=target)
        return np.column_stack([lon, lat])

    return np.asarray(shapely.transform(geoms, _transform), dtype=object)
