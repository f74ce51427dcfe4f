"""Where a registry point goes: input coordinates checked and converted, then placed.

Households, pollution points and hazards are given as longitude/latitude in one of the datums
phones and web maps use (:class:`gis_grid.crs.Datum`). :func:`to_cgcs2000` checks them (finite,
inside China, not swapped: the checks of the lookup route) and converts them to CGCS2000;
:func:`place_point` says where the point lies: its village, town, current grid, and, in a gap
of the grid plan, the nearest grid and how far it is.

**Placement rule.** The database trigger of migration 0003 assigns ``grid_code`` (border rule:
smallest code) on insert and on a moved point. A point outside every grid but inside one of
the platform's villages is stored with ``grid_code = NULL`` and reported with the distance to
the nearest grid (the grid plan has a gap to close). A point outside every village is refused:
``households.village_code`` is required, and a point outside the platform's towns is outside
the area the town's centre manages (most often swapped or mistyped coordinates).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis_grid.crs import CHINA_BOUNDS, Datum, convert_lonlat, parse_datum
from gis_grid.errors import CoordinateError

__all__ = ["Placement", "place_point", "point_sql", "to_cgcs2000"]

#: SQL of the point ``(:lon, :lat)`` in CGCS2000.
_POINT = "ST_SetSRID(ST_MakePoint(:lon, :lat), 4490)"

#: Widen the KNN candidate distance (degrees) a little: KNN orders by planar degrees, while the
#: distance reported is measured in metres in the point's Gauss-Krüger zone.
_NEAREST_SLACK = 1.05

_PLACE_SQL = f"""
WITH p AS (SELECT {_POINT} AS geom),
zone AS (
    SELECT 4534 + (least(greatest(3 * floor((:lon + 1.5) / 3), 75), 135)::int - 75) / 3 AS srid
)
SELECT v.code AS village_code, v.name AS village, v.town_code, tw.name AS town,
       current_grid_at(p.geom) AS grid_code, n.code AS nearest_grid, n.distance_m
FROM p
CROSS JOIN zone
LEFT JOIN villages v ON v.code = village_at(p.geom)
LEFT JOIN towns tw ON tw.code = v.town_code
LEFT JOIN LATERAL (
    SELECT g.geom <-> p.geom AS d0 FROM grids g
    WHERE g.valid_to IS NULL ORDER BY g.geom <-> p.geom LIMIT 1
) k ON TRUE
LEFT JOIN LATERAL (
    SELECT g.code,
           ST_Distance(ST_Transform(g.geom, zone.srid), ST_Transform(p.geom, zone.srid))
               AS distance_m
    FROM grids g
    WHERE g.valid_to IS NULL
      AND ST_DWithin(g.geom, p.geom,
                     k.d0 * {_NEAREST_SLACK} / cos(radians(least(abs(:lat) + k.d0, 80))))
    ORDER BY distance_m, g.code
    LIMIT 1
) n ON TRUE
"""


@dataclass(frozen=True)
class Placement:
    """Where a point lies.

    Attributes
    ----------
    lon, lat
        The point in CGCS2000 (after datum conversion).
    village_code, village, town_code, town
        The village (and its town) covering the point; ``None`` only for a stored point
        that no village covers any more (:func:`place_point` with ``refuse=False``).
    grid_code
        The current grid covering it (smallest code on a shared border), or ``None`` in a gap
        of the grid plan.
    nearest_grid, distance_m
        The current grid nearest the point and its distance in metres (Gauss-Krüger zone of
        the point); ``0`` inside a grid.
    """

    lon: float
    lat: float
    village_code: str | None
    village: str | None
    town_code: str | None
    town: str | None
    grid_code: str | None
    nearest_grid: str | None
    distance_m: float | None

    @property
    def in_grid(self) -> bool:
        """True when a current grid covers the point."""
        return self.grid_code is not None


def to_cgcs2000(
    lon: float, lat: float, datum: Datum | str = Datum.CGCS2000, *, field: str = "location"
) -> tuple[float, float]:
    """Check a longitude/latitude pair and convert it to CGCS2000.

    Parameters
    ----------
    lon, lat
        Degrees, in ``datum``.
    datum
        ``"cgcs2000"``, ``"wgs84"`` (GPS), ``"gcj02"`` (AMap, Tencent) or ``"bd09"`` (Baidu).
    field
        Name of the input field, for the messages and ``problems``.

    Returns
    -------
    tuple of float
        ``(lon, lat)`` in CGCS2000.

    Raises
    ------
    CoordinateError
        Not finite, outside China's range, or apparently swapped (latitude first); the
        message names ``field`` and the coordinate.

    Examples
    --------
    >>> lon, lat = to_cgcs2000(107.409, 30.962, "gcj02")
    >>> round((lon - 107.409) * 96_000, -1)  # metres east of the GCJ-02 position
    -450.0
    """
    problem = {"field": field, "lon": _plain(lon), "lat": _plain(lat)}
    if not (math.isfinite(lon) and math.isfinite(lat)):
        msg = f"{field}: lon={lon}, lat={lat}: coordinates must be finite numbers (degrees)"
        raise CoordinateError(msg, [problem | {"rule": "finite"}])
    minx, miny, maxx, maxy = CHINA_BOUNDS
    if minx <= lat <= maxx and miny <= lon <= maxy and not miny <= lat <= maxy:
        msg = (
            f"{field}: lon={lon}, lat={lat} look swapped: give lon={lat}, lat={lon} "
            "(longitude first; GeoJSON coordinates are [lon, lat])"
        )
        raise CoordinateError(msg, [problem | {"rule": "swapped"}])
    if not (minx <= lon <= maxx and miny <= lat <= maxy):
        msg = (
            f"{field}: lon={lon}, lat={lat} is outside China's range "
            f"({minx}-{maxx} E, {miny}-{maxy} N)"
        )
        raise CoordinateError(msg, [problem | {"rule": "in_china"}])
    x, y = convert_lonlat([lon], [lat], source=parse_datum(datum))
    return float(x[0]), float(y[0])


def _plain(value: float) -> float | str:
    """Return a coordinate for ``problems`` (JSON has no NaN/Infinity: those become text)."""
    return value if math.isfinite(value) else str(value)


def place_point(
    conn: Connection, lon: float, lat: float, *, field: str = "location", refuse: bool = True
) -> Placement:
    """Find the village, town and current grid of a CGCS2000 point (see the module's rule).

    Parameters
    ----------
    conn
        Connection to the platform database.
    lon, lat
        The point in CGCS2000 (see :func:`to_cgcs2000`).
    field
        Name of the input field, for the message.
    refuse
        Refuse a point outside every village (the rule for new and moved points); with
        ``False`` such a point is described with ``village_code=None`` (a stored point
        whose villages were redrawn).

    Returns
    -------
    Placement

    Raises
    ------
    CoordinateError
        The point lies in no village of the platform: the message gives the coordinate and the
        nearest grid with its distance.
    """
    row = conn.execute(sa.text(_PLACE_SQL), {"lon": lon, "lat": lat}).mappings().one()
    distance = None if row["distance_m"] is None else round(float(row["distance_m"]), 1)
    if row["village_code"] is None and refuse:
        near = (
            f"; the nearest grid is {row['nearest_grid']}, {distance:.0f} m away"
            if row["nearest_grid"] is not None and distance is not None
            else ""
        )
        msg = (
            f"{field}: the point lon={lon:.7f}, lat={lat:.7f} (CGCS2000) lies in no village of "
            f"the platform's towns{near}. Check the coordinates and their datum."
        )
        problem = {
            "field": field,
            "rule": "in_village",
            "lon": lon,
            "lat": lat,
            "nearest_grid": row["nearest_grid"],
            "distance_m": distance,
        }
        raise CoordinateError(msg, [problem])
    inside = row["grid_code"] is not None
    return Placement(
        lon=lon,
        lat=lat,
        village_code=row["village_code"],
        village=row["village"],
        town_code=row["town_code"],
        town=row["town"],
        grid_code=row["grid_code"],
        nearest_grid=row["grid_code"] if inside else row["nearest_grid"],
        distance_m=0.0 if inside else distance,
    )


def point_sql() -> str:
    """Return SQL of the point bound as ``:lon``/``:lat`` (CGCS2000), for INSERT and UPDATE."""
    return _POINT
