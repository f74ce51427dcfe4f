"""OGC API – Features (Part 1 Core, GeoJSON) at ``/ogc``, for QGIS, ArcGIS, OWSLib and friends.

Landing page, conformance, collections, items (``bbox``, ``limit``, ``offset`` with ``next``
links, ``datetime`` where features have a time) and single items, for the current grids,
villages, pollution points, hazards and incidents. No personal data is published
(:mod:`gis_grid.ogc` lists the properties of each collection).

Our own thin layer rather than a mounted TiPg or pygeoapi: they publish what a database role
can see from their own pools, while the platform's rules (current grid versions only, the
grids' load, personal data left out, and the coming per-request roles set on the connection
``api.deps`` hands out) live in this service. Every query here runs on that same read-only
connection, so the security issue's row filters apply to OGC clients too.

Coordinates are CGCS2000 lon/lat (EPSG:4490), published as CRS84: the two agree to a few
centimetres, below the precision of the data.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from api.deps import BBoxDep, ConnectionDep, parse_instant, query_error
from api.errors import error_responses
from api.responses import GEOJSON_MEDIA_TYPE, JSON_MEDIA_TYPE, page_response
from api.schemas import FeatureCollectionPublic, FeaturePublic, LinkPublic
from api.schemas.ogc import (
    CollectionPublic,
    CollectionsPublic,
    ConformancePublic,
    ExtentPublic,
    LandingPagePublic,
    SpatialExtentPublic,
    TemporalExtentPublic,
)
from gis_grid import ogc

__all__ = ["CONFORMANCE", "MAX_LIMIT", "router"]

router = APIRouter(prefix="/ogc", tags=["ogc"])

#: Largest page a client may ask for (a larger ``limit`` is a 422 naming it).
MAX_LIMIT = 10_000

CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
]

CollectionId = Annotated[
    str,
    Path(
        description="grids, villages, pollution_points, hazards or incidents",
        examples=["grids"],
        max_length=100,
    ),
]


def _link(href: str, rel: str, media_type: str, title: str | None = None) -> LinkPublic:
    return LinkPublic(href=href, rel=rel, type=media_type, title=title)


@router.get("", response_model=LandingPagePublic, response_model_exclude_none=True)
@router.get(
    "/", response_model=LandingPagePublic, response_model_exclude_none=True, include_in_schema=False
)
def landing_page(request: Request) -> LandingPagePublic:
    """Link to the API definition, conformance and collections (the URL to give QGIS)."""
    return LandingPagePublic(
        title="gis-grid 网格化管理平台 OGC API - Features",
        description=(
            "Current grids with their load, villages, pollution points, hazards and incidents; "
            "no personal data."
        ),
        links=[
            _link(str(request.url_for("landing_page")), "self", JSON_MEDIA_TYPE, "This page"),
            _link(
                str(request.url_for("openapi")),
                "service-desc",
                "application/vnd.oai.openapi+json;version=3.0",
                "The API definition",
            ),
            _link(
                str(request.url_for("conformance")),
                "conformance",
                JSON_MEDIA_TYPE,
                "Conformance classes",
            ),
            _link(str(request.url_for("collections")), "data", JSON_MEDIA_TYPE, "Collections"),
        ],
    )


@router.get("/conformance", response_model=ConformancePublic)
def conformance() -> ConformancePublic:
    """List the conformance classes implemented: Core, GeoJSON, OpenAPI 3.0."""
    return ConformancePublic(conformsTo=CONFORMANCE)


def _collection(request: Request, conn: Any, collection: ogc.OgcCollection) -> CollectionPublic:
    extent = ogc.collection_extent(conn, collection)
    temporal = None
    if collection.time_sql is not None:
        lo = extent.start.isoformat() if extent.start else None
        # Grids still valid have no end; incidents end at the last report.
        hi = None if collection.id == "grids" or extent.end is None else extent.end.isoformat()
        temporal = TemporalExtentPublic(interval=[[lo, hi]])
    items_url = str(request.url_for("items", collection_id=collection.id))
    return CollectionPublic(
        id=collection.id,
        title=collection.title,
        description=collection.description,
        extent=ExtentPublic(
            spatial=SpatialExtentPublic(bbox=[list(extent.bbox)]) if extent.bbox else None,
            temporal=temporal,
        ),
        links=[
            _link(
                str(request.url_for("collection", collection_id=collection.id)),
                "self",
                JSON_MEDIA_TYPE,
                collection.title,
            ),
            _link(items_url, "items", GEOJSON_MEDIA_TYPE, collection.title),
        ],
    )


@router.get("/collections", response_model=CollectionsPublic, response_model_exclude_none=True)
def collections(request: Request, conn: ConnectionDep) -> CollectionsPublic:
    """Every collection, with its extent."""
    return CollectionsPublic(
        links=[_link(str(request.url_for("collections")), "self", JSON_MEDIA_TYPE)],
        collections=[_collection(request, conn, c) for c in ogc.OGC_COLLECTIONS.values()],
    )


@router.get(
    "/collections/{collection_id}",
    response_model=CollectionPublic,
    response_model_exclude_none=True,
    responses=error_responses(404),
)
def collection(
    request: Request, conn: ConnectionDep, collection_id: CollectionId
) -> CollectionPublic:
    """One collection; 404 listing the collections when unknown."""
    return _collection(request, conn, ogc.get_collection(collection_id))


def _datetime_bound(text: str, *, end: bool) -> dt.datetime | None:
    if text in ("", ".."):
        return None
    return parse_instant(text, "datetime", end_of_day=end)


def parse_datetime(text: str) -> tuple[dt.datetime | None, dt.datetime | None]:
    """Parse OGC ``datetime``: an instant, or ``start/end`` with ``..`` for an open end.

    A bare date covers the whole day (China Standard Time).

    Examples
    --------
    >>> parse_datetime("2025-01-01/..")[1] is None
    True
    """
    if "/" in text:
        lo_text, _, hi_text = text.partition("/")
        lo = _datetime_bound(lo_text.strip(), end=False)
        hi = _datetime_bound(hi_text.strip(), end=True)
        if lo is None and hi is None:
            query_error("datetime", "datetime '../..' has no bound; give one end at least", text)
        if lo is not None and hi is not None and lo > hi:
            query_error("datetime", f"datetime {text!r}: the start is after the end", text)
        return lo, hi
    lo = parse_instant(text.strip(), "datetime")
    hi = parse_instant(text.strip(), "datetime", end_of_day=True) if len(text.strip()) == 10 else lo
    return lo, hi


@router.get(
    "/collections/{collection_id}/items",
    response_class=Response,
    responses={
        200: {
            "description": "A GeoJSON FeatureCollection with next/prev links",
            "content": {
                GEOJSON_MEDIA_TYPE: {
                    "schema": {"$ref": "#/components/schemas/FeatureCollectionPublic"}
                }
            },
            "model": FeatureCollectionPublic,
        },
        **error_responses(404, 422),
    },
)
def items(
    *,
    request: Request,
    conn: ConnectionDep,
    collection_id: CollectionId,
    bbox: BBoxDep,
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description=f"Features per page (1-{MAX_LIMIT})")
    ] = 100,
    offset: Annotated[int, Query(ge=0, description="Features to skip (paging)")] = 0,
    datetime: Annotated[
        str | None,
        Query(
            description=(
                "An instant or an interval start/end ('..' open) in ISO 8601; without an "
                "offset, China Standard Time. Incidents: time reported; grids: validity. "
                "Ignored for collections without time."
            ),
            examples=["2025-01-01/..", "2025-06-01T08:00:00+08:00"],
            max_length=100,
        ),
    ] = None,
) -> Response:
    """One page of a collection's features (GeoJSON), with ``next`` while more remain."""
    found = ogc.get_collection(collection_id)
    start, end = parse_datetime(datetime) if datetime is not None else (None, None)
    page = ogc.items(conn, found, bbox=bbox, start=start, end=end, limit=limit, offset=offset)
    return page_response(request, page)


@router.get(
    "/collections/{collection_id}/items/{feature_id}",
    response_class=Response,
    responses={
        200: {
            "description": "A GeoJSON Feature",
            "content": {
                GEOJSON_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/FeaturePublic"}}
            },
            "model": FeaturePublic,
        },
        **error_responses(404),
    },
)
def item(
    request: Request,
    conn: ConnectionDep,
    collection_id: CollectionId,
    feature_id: Annotated[str, Path(description="The feature's code", max_length=100)],
) -> Response:
    """One feature by its code; 404 naming it when absent."""
    found = ogc.get_collection(collection_id)
    feature = ogc.item(conn, found, feature_id)
    feature["links"] = [
        {"href": str(request.url), "rel": "self", "type": GEOJSON_MEDIA_TYPE},
        {
            "href": str(request.url_for("collection", collection_id=found.id)),
            "rel": "collection",
            "type": JSON_MEDIA_TYPE,
        },
    ]
    return Response(json.dumps(feature, ensure_ascii=False), media_type=GEOJSON_MEDIA_TYPE)
