"""Map layers as GeoJSON: ``/api/v1/layers``."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from api import layers
from api.deps import BBoxDep, ConnectionDep, LayerDep, LimitDep, OffsetDep, TownFilterDep
from api.errors import error_responses
from api.schemas import FeatureCollectionPublic, LayerPublic, LayersPublic

__all__ = ["GEOJSON_MEDIA_TYPE", "router"]

GEOJSON_MEDIA_TYPE = "application/geo+json"

router = APIRouter(prefix="/layers", tags=["layers"])


@router.get("", response_model=LayersPublic)
def read_layers(conn: ConnectionDep) -> LayersPublic:
    """List the layers stored in this database (non-personal data only)."""
    specs = layers.available_layers(conn)
    data = [
        LayerPublic(
            name=s.name,
            title=s.title,
            geometry_type=s.geometry_type,
            properties=[name for name, _ in s.properties],
        )
        for s in specs
    ]
    return LayersPublic(data=data, count=len(data))


@router.get(
    "/{layer}",
    response_class=Response,
    responses={
        200: {
            "description": "A GeoJSON FeatureCollection (EPSG:4490 lon/lat)",
            "content": {
                GEOJSON_MEDIA_TYPE: {
                    "schema": {"$ref": "#/components/schemas/FeatureCollectionPublic"}
                }
            },
            "model": FeatureCollectionPublic,
        },
        **error_responses(404),
    },
)
def read_layer(
    *,
    conn: ConnectionDep,
    spec: LayerDep,
    town: TownFilterDep,
    bbox: BBoxDep,
    limit: LimitDep = 1000,
    offset: OffsetDep = 0,
) -> Response:
    """One layer as a GeoJSON FeatureCollection, filtered by town and/or bbox, paged.

    Households carry only their id, village, grid and number of people.
    """
    page = layers.layer_feature_collection(
        conn,
        spec,
        town=town.code if town else None,
        bbox=bbox,
        limit=limit,
        offset=offset,
    )
    return Response(
        page.geojson,
        media_type=GEOJSON_MEDIA_TYPE,
        headers={
            "OGC-NumberMatched": str(page.number_matched),
            "OGC-NumberReturned": str(page.number_returned),
        },
    )
