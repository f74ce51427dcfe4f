"""Building blocks of the read queries: bounding boxes, WHERE clauses, GeoJSON pages.

GeoJSON is assembled by PostGIS (``ST_AsGeoJSON`` + ``json_agg``) in one statement per page,
never feature by feature in Python; every value is a bound parameter, and the SQL text is
built only from this package's own identifiers.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis_grid.errors import CoordinateError, NotFoundError

__all__ = [
    "CLOSED_STATUSES",
    "GEOJSON_DIGITS",
    "BBox",
    "FeaturePage",
    "FeatureSource",
    "Page",
    "Where",
    "area_km2_sql",
    "distinct_values",
    "feature_page",
    "features",
    "one_feature",
    "one_record",
    "parse_bbox",
    "record_page",
]

#: Decimal digits of coordinates in GeoJSON: 1e-7 degrees is about 1 cm.
GEOJSON_DIGITS = 7

#: Incident statuses after which an incident is no longer open (nor overdue).
CLOSED_STATUSES = ("closed", "evaluated")

# SRID of the CGCS2000 3-degree Gauss-Krüger zone (CM in easting, EPSG:4534-4554) holding a
# geometry's centroid: the same rule as gis_grid.crs.gauss_kruger_epsg, evaluated per row.
_GK_SRID = (
    "(4534 + (LEAST(GREATEST(round(ST_X(ST_Centroid({g})) / 3) * 3, 75), 135)::int - 75) / 3)"
)


def area_km2_sql(geom: str) -> str:
    """Return SQL for the area in km² of a geometry column, measured in its Gauss-Krüger zone.

    Examples
    --------
    >>> "ST_Transform(t.geom" in area_km2_sql("t.geom")
    True
    """
    return f"ST_Area(ST_Transform({geom}, {_GK_SRID.format(g=geom)})) / 1e6"


@dataclass(frozen=True)
class BBox:
    """A longitude/latitude bounding box (CGCS2000 = WGS84 at this scale)."""

    minx: float
    miny: float
    maxx: float
    maxy: float


def parse_bbox(text: str) -> BBox:
    """Parse ``"minx,miny,maxx,maxy"`` in degrees, checking order and range.

    Parameters
    ----------
    text
        Four comma-separated numbers.

    Returns
    -------
    BBox
        The box.

    Raises
    ------
    ValueError
        If there are not four finite numbers or a minimum is not below its maximum.
    CoordinateError
        If the box leaves the longitude/latitude range (or looks swapped).

    Examples
    --------
    >>> parse_bbox("107.3,31.0,107.6,31.3")
    BBox(minx=107.3, miny=31.0, maxx=107.6, maxy=31.3)
    """
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 4:
        msg = f"bbox needs 4 comma-separated numbers minx,miny,maxx,maxy; got {len(parts)}"
        raise ValueError(msg)
    try:
        minx, miny, maxx, maxy = (float(p) for p in parts)
    except ValueError:
        msg = f"bbox values must be numbers (degrees), got {text!r}"
        raise ValueError(msg) from None
    if not all(math.isfinite(v) for v in (minx, miny, maxx, maxy)):
        msg = f"bbox values must be finite numbers, got {text!r}"
        raise ValueError(msg)
    if not (
        -180 <= minx <= 180 and -180 <= maxx <= 180 and -90 <= miny <= 90 and -90 <= maxy <= 90
    ):
        swapped = -90 <= minx <= 90 and -90 <= maxx <= 90
        hint = " (longitude first: minx,miny,maxx,maxy)" if swapped else ""
        msg = (
            f"bbox {text!r} is outside longitude -180..180 / latitude -90..90; give degrees "
            f"in CGCS2000/WGS84{hint}"
        )
        raise CoordinateError(msg)
    if not (minx < maxx and miny < maxy):
        msg = f"bbox {text!r}: minx must be < maxx and miny < maxy"
        raise ValueError(msg)
    return BBox(minx, miny, maxx, maxy)


@dataclass
class Where:
    """A conjunction of SQL conditions and their bound parameters.

    Examples
    --------
    >>> w = Where().add("t.grid_code = :grid", grid="511703109001001")
    >>> w.sql, w.params
    ('(t.grid_code = :grid)', {'grid': '511703109001001'})
    """

    clauses: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)

    def add(self, clause: str, **params: Any) -> Where:
        """Add a condition (with its parameters) and return ``self`` for chaining."""
        self.clauses.append(clause)
        self.params.update(params)
        return self

    def given(self, clause: str, **params: Any) -> Where:
        """Add a condition unless one of its parameters is ``None`` (an absent filter).

        Examples
        --------
        >>> Where().given("t.kind = :kind", kind=None).given("t.level >= :lv", lv=2).sql
        '(t.level >= :lv)'
        """
        if any(v is None for v in params.values()):
            return self
        return self.add(clause, **params)

    def bbox(self, bbox: BBox | None, geom: str = "t.geom") -> Where:
        """Add "``geom`` intersects ``bbox``" (GiST-indexed) unless ``bbox`` is ``None``."""
        if bbox is None:
            return self
        return self.add(
            f"ST_Intersects({geom}, ST_MakeEnvelope(:minx, :miny, :maxx, :maxy, 4490))",
            minx=bbox.minx,
            miny=bbox.miny,
            maxx=bbox.maxx,
            maxy=bbox.maxy,
        )

    def places(
        self,
        *,
        town: str | None = None,
        village: str | None = None,
        grid: str | None = None,
        alias: str = "t",
    ) -> Where:
        """Add the town / village / grid filters on ``<alias>.village_code`` and ``grid_code``."""
        if town is not None:
            # IN (subquery) rather than left(code, 9): the village_code index stays usable.
            self.add(
                f"{alias}.village_code IN (SELECT v_.code FROM villages v_ "
                "WHERE v_.town_code = :town)",
                town=town,
            )
        if village is not None:
            self.add(f"{alias}.village_code = :village", village=village)
        if grid is not None:
            self.add(f"{alias}.grid_code = :grid", grid=grid)
        return self

    @property
    def sql(self) -> str:
        """The conditions joined with ``AND`` (``TRUE`` when there are none)."""
        return " AND ".join(f"({c})" for c in self.clauses) or "TRUE"


@dataclass(frozen=True)
class FeatureSource:
    """How the features of one resource are read.

    Parameters
    ----------
    name
        Name of the collection (``"grids"``), written into the FeatureCollection.
    from_sql
        ``FROM`` clause; the main table is aliased ``t``.
    properties
        ``(name, SQL expression)`` of every property exposed. Nothing else is selected.
    id_sql, order_sql, geom_sql
        The feature id, a stable (unique) order for paging, and the geometry.
    """

    name: str
    from_sql: str
    properties: tuple[tuple[str, str], ...]
    id_sql: str = "t.id"
    order_sql: str = "t.id"
    geom_sql: str = "t.geom"

    def with_properties(self, *extra: tuple[str, str]) -> FeatureSource:
        """Return the same source with more properties (e.g. a detail view's)."""
        return FeatureSource(
            self.name,
            self.from_sql,
            (*self.properties, *extra),
            self.id_sql,
            self.order_sql,
            self.geom_sql,
        )


@dataclass(frozen=True)
class FeaturePage:
    """One page of features: the JSON array text built by PostGIS, and the counts."""

    name: str
    features_json: str
    number_matched: int
    number_returned: int
    limit: int
    offset: int

    def feature_collection(self, *, links: Sequence[Mapping[str, Any]] = ()) -> str:
        """Return the page as GeoJSON FeatureCollection text with OGC API Features members.

        The features array is inserted as PostGIS wrote it: no parsing on the way out.
        """
        head = json.dumps(
            {
                "type": "FeatureCollection",
                "name": self.name,
                "numberMatched": self.number_matched,
                "numberReturned": self.number_returned,
                "links": list(links),
            },
            ensure_ascii=False,
        )
        return f'{head[:-1]}, "features": {self.features_json}}}'


T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of non-spatial records and the number matching the filters."""

    items: list[T]
    number_matched: int
    limit: int
    offset: int


def _feature_sql(source: FeatureSource, where: Where, *, paged: bool) -> str:
    props = ", ".join(f"'{name}', p.{name}" for name, _ in source.properties)
    cols = ", ".join(f"{expr} AS {name}" for name, expr in source.properties)
    page = "LIMIT :limit OFFSET :offset" if paged else ""
    return f"""
    WITH p AS (
        SELECT {source.id_sql} AS feature_id, {cols}, {source.geom_sql} AS geom,
               row_number() OVER (ORDER BY {source.order_sql}) AS feature_order
        FROM {source.from_sql}
        WHERE {where.sql}
        ORDER BY {source.order_sql}
        {page}
    ), m AS (
        SELECT count(*) AS n FROM {source.from_sql} WHERE {where.sql}
    )
    SELECT
        m.n AS matched,
        count(p.feature_id) AS returned,
        coalesce(json_agg(json_build_object(
            'type', 'Feature',
            'id', p.feature_id,
            'geometry', ST_AsGeoJSON(p.geom, {GEOJSON_DIGITS}, 0)::json,
            'properties', json_build_object({props})
        ) ORDER BY p.feature_order) FILTER (WHERE p.feature_id IS NOT NULL), '[]'::json
        )::text AS features
    FROM m LEFT JOIN p ON true
    GROUP BY m.n
    """


def feature_page(
    conn: Connection, source: FeatureSource, where: Where, *, limit: int, offset: int
) -> FeaturePage:
    """Read one page of features in one SQL statement (page and count together).

    Parameters
    ----------
    conn
        Connection to the platform database.
    source
        What to read.
    where
        Filters.
    limit, offset
        Paging, in ``source.order_sql`` order.

    Returns
    -------
    FeaturePage
        The features (JSON text) and ``numberMatched``/``numberReturned``.
    """
    row = conn.execute(
        sa.text(_feature_sql(source, where, paged=True)),
        {**where.params, "limit": limit, "offset": offset},
    ).one()
    return FeaturePage(
        name=source.name,
        features_json=row.features,
        number_matched=int(row.matched),
        number_returned=int(row.returned),
        limit=limit,
        offset=offset,
    )


def features(conn: Connection, source: FeatureSource, where: Where) -> list[dict[str, Any]]:
    """Read every matching feature as GeoJSON dicts (for single objects and short lists)."""
    row = conn.execute(sa.text(_feature_sql(source, where, paged=False)), where.params).one()
    result: list[dict[str, Any]] = json.loads(row.features)
    return result


def one_feature(
    conn: Connection, source: FeatureSource, where: Where, *, missing: str
) -> dict[str, Any]:
    """Read the one feature matching ``where``; raise :class:`NotFoundError` (``missing``) if none.

    ``missing`` should name what was asked for and where the caller can list what exists.
    """
    found = features(conn, source, where)
    if not found:
        raise NotFoundError(missing)
    return found[0]


def one_record(
    conn: Connection,
    select_sql: str,
    convert: Callable[[Any], T],
    *,
    code: str,
    missing: str,
) -> T:
    """Read the record ``t.code = code`` of a :func:`record_page` SELECT, or raise ``missing``.

    Parameters
    ----------
    conn
        Connection to the platform database.
    select_sql
        The SELECT with a ``{where}`` placeholder and ``:limit``/``:offset`` parameters.
    convert
        Turns the result row (a mapping) into a record.
    code
        The code looked up.
    missing
        Message of the :class:`NotFoundError` raised when there is no such record.
    """
    sql = select_sql.format(where="t.code = :code")
    row = conn.execute(sa.text(sql), {"code": code, "limit": 1, "offset": 0}).mappings().first()
    if row is None:
        raise NotFoundError(missing)
    return convert(row)


def distinct_values(conn: Connection, sql: str) -> list[str]:
    """Run a one-column SELECT and return its values as strings (e.g. the kinds stored)."""
    return [str(v) for v in conn.execute(sa.text(sql)).scalars()]


def record_page(
    conn: Connection,
    select_sql: str,
    from_sql: str,
    where: Where,
    convert: Callable[[Any], T],
    *,
    limit: int,
    offset: int,
) -> Page[T]:
    """Run a paged SELECT and its count, with the same filters, in the caller's transaction.

    Parameters
    ----------
    conn
        Connection to the platform database.
    select_sql
        The SELECT with a ``{where}`` placeholder and ``:limit``/``:offset`` parameters.
    from_sql
        Its ``FROM`` clause (joins included), for the count.
    where
        Filters.
    convert
        Turns one result row (a mapping) into a record.
    limit, offset
        Paging.

    Returns
    -------
    Page
        The records and the number matching the filters.
    """
    rows = conn.execute(
        sa.text(select_sql.format(where=where.sql)),
        {**where.params, "limit": limit, "offset": offset},
    ).mappings()
    items = [convert(row) for row in rows]
    matched = conn.scalar(sa.text(f"SELECT count(*) {from_sql} WHERE {where.sql}"), where.params)
    return Page(items, int(matched or 0), limit, offset)
