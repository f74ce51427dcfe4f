"""GeoJSON and paged-list responses: links, media types, OpenAPI entries.

Pages of features arrive as text built by PostGIS (:class:`gis_grid.queries.FeaturePage`);
they are sent as they are, with ``links`` to the next and previous pages that keep every
filter of the request.
"""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import Request, Response
from pydantic import BaseModel

from api.errors import error_responses
from api.schemas import LinkPublic
from gis_grid.queries import FeaturePage, Page

__all__ = [
    "GEOJSON_MEDIA_TYPE",
    "JSON_MEDIA_TYPE",
    "feature_response",
    "geojson_doc",
    "list_links",
    "list_response",
    "page_links",
    "page_response",
]

GEOJSON_MEDIA_TYPE = "application/geo+json"
JSON_MEDIA_TYPE = "application/json"


def page_links(
    request: Request, *, limit: int, offset: int, matched: int, media_type: str
) -> list[dict[str, Any]]:
    """``self``, ``next`` and ``prev`` links of a page, keeping the request's other parameters.

    Parameters
    ----------
    request
        The request being answered.
    limit, offset
        The page.
    matched
        Items matching the filters: ``next`` is given only while items remain.
    media_type
        Media type of the linked pages.

    Returns
    -------
    list of dict
        OGC API Features links.
    """
    url = request.url

    def link(rel: str, new_offset: int) -> dict[str, Any]:
        href = str(url.include_query_params(limit=limit, offset=new_offset))
        return {"href": href, "rel": rel, "type": media_type}

    links = [{"href": str(url), "rel": "self", "type": media_type}]
    if offset + limit < matched:
        links.append(link("next", offset + limit))
    if offset > 0:
        links.append(link("prev", max(0, min(offset, matched) - limit)))
    return links


def list_links(request: Request, page: Page[Any]) -> list[LinkPublic]:
    """Links of a page of JSON records."""
    links = page_links(
        request,
        limit=page.limit,
        offset=page.offset,
        matched=page.number_matched,
        media_type=JSON_MEDIA_TYPE,
    )
    return [LinkPublic.model_validate(link) for link in links]


ListT = TypeVar("ListT", bound=BaseModel)


def list_response(
    request: Request, page: Page[Any], model: type[ListT], item: type[BaseModel]
) -> ListT:
    """Answer with a page of JSON records: ``model(data=..., count=..., links=...)``.

    Each record of ``page`` is validated as ``item``; ``count`` is the number matched.
    """
    return model(
        data=[item.model_validate(record) for record in page.items],
        count=page.number_matched,
        links=list_links(request, page),
    )


def page_response(request: Request, page: FeaturePage) -> Response:
    """Answer with a page of features as a GeoJSON FeatureCollection with links and OGC headers."""
    links = page_links(
        request,
        limit=page.limit,
        offset=page.offset,
        matched=page.number_matched,
        media_type=GEOJSON_MEDIA_TYPE,
    )
    return Response(
        page.feature_collection(links=links),
        media_type=GEOJSON_MEDIA_TYPE,
        headers={
            "OGC-NumberMatched": str(page.number_matched),
            "OGC-NumberReturned": str(page.number_returned),
        },
    )


def feature_response(model: BaseModel, *, headers: dict[str, str] | None = None) -> Response:
    """Answer with a validated GeoJSON Feature or FeatureCollection (``application/geo+json``)."""
    return Response(model.model_dump_json(), media_type=GEOJSON_MEDIA_TYPE, headers=headers or None)


def geojson_doc(model: type[BaseModel], *errors: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` for a GeoJSON answer described by ``model``, plus errors."""
    return {
        200: {
            "model": model,
            "description": f"GeoJSON ({model.__name__}), CGCS2000 lon/lat (EPSG:4490)",
            "content": {
                GEOJSON_MEDIA_TYPE: {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}
            },
        },
        **error_responses(*errors),
    }
