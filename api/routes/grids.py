"""Grids: the current plan, the plan at any instant, history and statistics: ``/api/v1/grids``.

``GET /grids/{code}`` answers with ``ETag: "<code>-v<version>"`` so that the later editing
work can require ``If-Match`` against concurrent edits; ``If-None-Match`` gives 304 already.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Request, Response

from api.deps import (
    AsOfDep,
    BBoxDep,
    ConnectionDep,
    GridCode,
    LimitDep,
    OffsetDep,
    TownFilterDep,
    VillageFilterDep,
)
from api.errors import error_responses
from api.responses import (
    GEOJSON_MEDIA_TYPE,
    feature_response,
    geojson_doc,
    list_links,
    page_response,
)
from api.schemas import (
    GridPublic,
    GridsPublic,
    GridStatsListPublic,
    GridStatsPublic,
    LinkPublic,
)
from gis_grid import queries

__all__ = ["etag", "router"]

router = APIRouter(prefix="/grids", tags=["grids"])


def etag(code: str, version: int) -> str:
    """Return the entity tag of a grid version.

    Examples
    --------
    >>> etag("511703109001001", 2)
    '"511703109001001-v2"'
    """
    return f'"{code}-v{version}"'


@router.get("", response_class=Response, responses=geojson_doc(GridsPublic, 404, 422))
def read_grids(
    *,
    request: Request,
    conn: ConnectionDep,
    as_of: AsOfDep,
    town: TownFilterDep,
    village: VillageFilterDep,
    bbox: BBoxDep,
    limit: LimitDep = 100,
    offset: OffsetDep = 0,
) -> Response:
    """List the current grid plan, or with ``as_of`` the versions valid then, by code.

    Before the first plan was loaded the page is empty. Households, people and the member
    are those assigned now, given for current versions only.
    """
    page = queries.grid_page(
        conn,
        as_of=as_of,
        town=town.code if town else None,
        village=village,
        bbox=bbox,
        limit=limit,
        offset=offset,
    )
    return page_response(request, page)


# Declared before /{code}: "stats" would otherwise be read (and refused) as a grid code.
@router.get("/stats", response_model=GridStatsListPublic, responses=error_responses(404, 422))
def read_grids_stats(
    *,
    request: Request,
    conn: ConnectionDep,
    town: TownFilterDep,
    village: VillageFilterDep,
    limit: LimitDep = 100,
    offset: OffsetDep = 0,
) -> GridStatsListPublic:
    """Per-grid statistics of the current grids of a town or a village (or all), by code."""
    page = queries.grid_stats_page(
        conn, town=town.code if town else None, village=village, limit=limit, offset=offset
    )
    return GridStatsListPublic(
        data=[GridStatsPublic.model_validate(s) for s in page.items],
        count=page.number_matched,
        links=list_links(request, page),
    )


@router.get(
    "/{code}",
    response_class=Response,
    responses={**geojson_doc(GridPublic, 404), 304: {"description": "Not modified (ETag)"}},
)
def read_grid(
    conn: ConnectionDep,
    code: GridCode,
    if_none_match: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Response:
    """Get the current version of a grid, with ``ETag: "<code>-v<version>"``.

    404 naming the code if it is unknown or retired (then its history is still available).
    """
    grid = GridPublic.model_validate(queries.get_grid(conn, code))
    tag = etag(grid.properties.code, grid.properties.version)
    if if_none_match is not None and tag in {t.strip() for t in if_none_match.split(",")}:
        return Response(status_code=304, headers={"ETag": tag})
    return feature_response(grid, headers={"ETag": tag})


@router.get("/{code}/versions", response_class=Response, responses=geojson_doc(GridsPublic, 404))
def read_grid_versions(request: Request, conn: ConnectionDep, code: GridCode) -> Response:
    """Every version of a grid, oldest first (its history; id = ``<code>-v<version>``)."""
    versions = queries.grid_versions(conn, code)
    body = GridsPublic(
        type="FeatureCollection",
        name="grid_versions",
        numberMatched=len(versions),
        numberReturned=len(versions),
        links=[LinkPublic(href=str(request.url), rel="self", type=GEOJSON_MEDIA_TYPE)],
        features=[GridPublic.model_validate(v) for v in versions],
    )
    return feature_response(body)


@router.get(
    "/{code}/versions/{version}",
    response_class=Response,
    responses=geojson_doc(GridPublic, 404),
)
def read_grid_version(
    conn: ConnectionDep,
    code: GridCode,
    version: Annotated[int, Path(ge=1, le=1_000_000, description="Version number, from 1")],
) -> Response:
    """One version of a grid (404 naming the code and version if absent)."""
    grid = GridPublic.model_validate(queries.get_grid_version(conn, code, version))
    return feature_response(grid, headers={"ETag": etag(code, version)})


@router.get("/{code}/stats", response_model=GridStatsPublic, responses=error_responses(404))
def read_grid_stats(conn: ConnectionDep, code: GridCode) -> GridStatsPublic:
    """Count what the current grid holds, and name its appointed member.

    Households, people, residents, area (km², Gauss-Krüger), pollution points, hazards,
    open and overdue incidents; 404 naming the code if it is unknown or retired.
    """
    return GridStatsPublic.model_validate(queries.grid_stats(conn, code))
