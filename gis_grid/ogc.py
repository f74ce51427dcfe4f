"""The collections published through OGC API – Features, and their queries.

No web framework here: :mod:`api.routes.ogc` turns these into the OGC endpoints. Each
collection lists the properties it exposes (a :class:`~gis_grid.queries.FeatureSource`), so
nothing else is selected: no resident, no member's name or phone, no household address, no
incident title or description (free text that may name people), no reporter.

Why not mount TiPg or pygeoapi: both publish what the database role can see, table by table
and column by column, from their own connection pools. The platform's rules live elsewhere:
"current grids" is a filter on a versioned table (``valid_to IS NULL``), the grids' load is a
join, and the coming roles (a grid member sees only their own grid) are set per request on the
connection the service hands out (``api.deps``). Publishing our own :class:`OgcCollection`
list through the same connection keeps one place for those rules; TiPg stays the peer of the
serving benchmark (``benchmarks/serve.py``).

Examples
--------
>>> sorted(OGC_COLLECTIONS)
['grids', 'hazards', 'incidents', 'pollution_points', 'villages']
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis_grid.errors import NotFoundError
from gis_grid.queries import BBox, FeaturePage, FeatureSource, Where, feature_page, features

__all__ = [
    "OGC_COLLECTIONS",
    "CollectionExtent",
    "OgcCollection",
    "collection_extent",
    "get_collection",
    "item",
    "items",
]

_PLACE = (("village_code", "t.village_code"), ("village", "v.name"), ("grid_code", "t.grid_code"))


@dataclass(frozen=True)
class OgcCollection:
    """One published collection.

    Parameters
    ----------
    id
        Collection id in URLs.
    title, description
        Shown by clients (QGIS lists the title).
    source
        Table, joins and the properties exposed (nothing else is selected).
    table
        Main table (aliased ``t``).
    where_sql
        Condition always applied (current grid versions only).
    time_sql
        Start and end of each feature's time (end may be ``NULL``: still valid), used by the
        ``datetime`` parameter; ``None`` when the collection has no time.
    geometry_type
        GeoJSON geometry type of the features.
    """

    id: str
    title: str
    description: str
    source: FeatureSource
    table: str
    where_sql: str = "TRUE"
    time_sql: tuple[str, str | None] | None = None
    geometry_type: str = "Point"


def _points(
    table: str, title: str, description: str, extra: tuple[tuple[str, str], ...]
) -> OgcCollection:
    return OgcCollection(
        id=table,
        title=title,
        description=description,
        table=table,
        source=FeatureSource(
            name=table,
            from_sql=f"{table} t LEFT JOIN villages v ON v.code = t.village_code",
            properties=(
                ("code", "t.code"),
                ("name", "t.name"),
                ("kind", "t.kind"),
                *extra,
                *_PLACE,
            ),
            id_sql="t.code",
            order_sql="t.code",
        ),
    )


#: Every published collection, in the order listed.
OGC_COLLECTIONS: dict[str, OgcCollection] = {
    c.id: c
    for c in (
        OgcCollection(
            id="grids",
            title="网格（现行） Grids, current plan",
            description=(
                "The current version of every grid with its load (households and people); "
                "datetime selects by the version's validity."
            ),
            table="grids",
            where_sql="t.valid_to IS NULL",
            time_sql=("t.valid_from", "t.valid_to"),
            geometry_type="MultiPolygon",
            source=FeatureSource(
                name="grids",
                from_sql=(
                    "grids t JOIN villages v ON v.code = t.village_code "
                    "CROSS JOIN LATERAL (SELECT count(*) AS households, "
                    "coalesce(sum(hh.people), 0) AS people FROM households hh "
                    "WHERE hh.grid_code = t.code) hc"
                ),
                properties=(
                    ("code", "t.code"),
                    ("name", "t.name"),
                    ("village_code", "t.village_code"),
                    ("village", "v.name"),
                    ("version", "t.version"),
                    ("valid_from", "t.valid_from"),
                    ("households", "hc.households"),
                    ("people", "hc.people"),
                ),
                id_sql="t.code",
                order_sql="t.code",
            ),
        ),
        OgcCollection(
            id="villages",
            title="村（社区） Villages and communities",
            description="Villages and communities with their town.",
            table="villages",
            geometry_type="MultiPolygon",
            source=FeatureSource(
                name="villages",
                from_sql="villages t JOIN towns tw ON tw.code = t.town_code",
                properties=(
                    ("code", "t.code"),
                    ("name", "t.name"),
                    ("kind", "t.kind::text"),
                    ("town_code", "t.town_code"),
                    ("town", "tw.name"),
                ),
                id_sql="t.code",
                order_sql="t.code",
            ),
        ),
        _points(
            "pollution_points",
            "污染排放点 Pollution discharge points",
            "Pollution discharge points (排污点).",
            (),
        ),
        _points(
            "hazards",
            "环境隐患 Hazards",
            "Environmental and safety hazards, level 1 (minor) to 4 (major).",
            (("level", "t.level"),),
        ),
        OgcCollection(
            id="incidents",
            title="事件 Incidents",
            description=(
                "Incidents by task type and status (titles, descriptions and reporters are "
                "personal data and not published); datetime selects by the time reported."
            ),
            table="incidents",
            time_sql=("t.reported_at", "t.reported_at"),
            source=FeatureSource(
                name="incidents",
                from_sql=(
                    "incidents t LEFT JOIN villages v ON v.code = t.village_code "
                    "LEFT JOIN task_types tt ON tt.code = t.task_type_code"
                ),
                properties=(
                    ("code", "t.code"),
                    ("task_type_code", "t.task_type_code"),
                    ("task_type", "tt.name"),
                    ("status", "t.status::text"),
                    ("reported_at", "t.reported_at"),
                    ("deadline", "t.deadline"),
                    ("closed_at", "t.closed_at"),
                    *_PLACE,
                ),
                id_sql="coalesce(t.code, t.id::text)",
                order_sql="t.id",
            ),
        ),
    )
}  # fmt: skip


def get_collection(collection_id: str) -> OgcCollection:
    """Return a published collection.

    Raises
    ------
    NotFoundError
        Unknown id; the message lists the collections.
    """
    try:
        return OGC_COLLECTIONS[collection_id]
    except KeyError:
        known = ", ".join(OGC_COLLECTIONS)
        msg = f"collection {collection_id!r} not found; the collections are: {known}"
        raise NotFoundError(msg, problems=[{"field": "collectionId"}]) from None


@dataclass(frozen=True)
class CollectionExtent:
    """A collection's lon/lat box and time span (each ``None`` when unknown or empty)."""

    bbox: tuple[float, float, float, float] | None
    start: dt.datetime | None
    end: dt.datetime | None


def collection_extent(conn: Connection, collection: OgcCollection) -> CollectionExtent:
    """Return the box and time span of a collection's features, in one query."""
    start, end = collection.time_sql or ("NULL::timestamptz", "NULL::timestamptz")
    row = conn.execute(
        sa.text(
            f"SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e), lo, hi FROM ("
            f"SELECT ST_Extent(t.geom)::geometry AS e, min({start}) AS lo, max({end}) AS hi "
            f"FROM {collection.table} t WHERE {collection.where_sql}) s"
        )
    ).one()
    bbox = None if row[0] is None else (float(row[0]), float(row[1]), float(row[2]), float(row[3]))
    return CollectionExtent(bbox=bbox, start=row[4], end=row[5])


def _where(
    collection: OgcCollection,
    *,
    bbox: BBox | None,
    start: dt.datetime | None,
    end: dt.datetime | None,
) -> Where:
    where = Where().add(collection.where_sql).bbox(bbox)
    if collection.time_sql is not None:
        t_start, t_end = collection.time_sql
        # The feature's [start, end] meets the asked interval; an open end is "still valid".
        if end is not None:
            where.add(f"{t_start} <= :dt_end", dt_end=end)
        if start is not None:
            where.add(f"coalesce({t_end}, 'infinity'::timestamptz) >= :dt_start", dt_start=start)
    return where


def items(
    conn: Connection,
    collection: OgcCollection,
    *,
    bbox: BBox | None = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> FeaturePage:
    """Read one page of a collection's features (GeoJSON text built by PostGIS).

    Parameters
    ----------
    conn
        Connection on the platform database.
    collection
        From :data:`OGC_COLLECTIONS`.
    bbox
        Only features intersecting this lon/lat box.
    start, end
        Only features whose time meets ``[start, end]`` (either open); ignored for
        collections without time (villages, pollution points, hazards).
    limit, offset
        Paging in the collection's stable order.

    Returns
    -------
    FeaturePage

    Examples
    --------
    >>> page = items(conn, OGC_COLLECTIONS["grids"], limit=10)  # doctest: +SKIP
    >>> page.number_returned  # doctest: +SKIP
    10
    """
    where = _where(collection, bbox=bbox, start=start, end=end)
    return feature_page(conn, collection.source, where, limit=limit, offset=offset)


def item(conn: Connection, collection: OgcCollection, feature_id: str) -> dict[str, Any]:
    """Read one feature by its id (the code; an incident without code by its number).

    Raises
    ------
    NotFoundError
        No such feature in the collection.
    """
    where = (
        Where().add(collection.where_sql).add(f"{collection.source.id_sql} = :fid", fid=feature_id)
    )
    found = features(conn, collection.source, where)
    if not found:
        msg = (
            f"feature {feature_id!r} not found in collection {collection.id!r}; "
            f"list them at /ogc/collections/{collection.id}/items"
        )
        raise NotFoundError(msg, problems=[{"field": "featureId", "value": feature_id}])
    return found[0]
