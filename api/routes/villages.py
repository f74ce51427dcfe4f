"""Villages and communities (村/社区) as GeoJSON: ``/api/v1/villages``."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from api.deps import BBoxDep, ConnectionDep, LimitDep, OffsetDep, TownFilterDep, VillageCode
from api.responses import feature_response, geojson_doc, page_response
from api.schemas import VillageFeaturePublic, VillageFeaturesPublic
from gis_grid import queries

__all__ = ["router"]

router = APIRouter(prefix="/villages", tags=["villages"])


@router.get("", response_class=Response, responses=geojson_doc(VillageFeaturesPublic, 404, 422))
def read_villages(
    *,
    request: Request,
    conn: ConnectionDep,
    town: TownFilterDep,
    bbox: BBoxDep,
    limit: LimitDep = 100,
    offset: OffsetDep = 0,
) -> Response:
    """Villages with their current-grid, household and people counts and area (km²), by code."""
    page = queries.village_page(
        conn, town=town.code if town else None, bbox=bbox, limit=limit, offset=offset
    )
    return page_response(request, page)


@router.get("/{code}", response_class=Response, responses=geojson_doc(VillageFeaturePublic, 404))
def read_village(conn: ConnectionDep, code: VillageCode) -> Response:
    """One village by its 12-digit code (404 naming the code if unknown)."""
    feature = queries.get_village(conn, code)
    return feature_response(VillageFeaturePublic.model_validate(feature))
