"""``GET /api/v1/lookup``: which town, village, grid and member a point belongs to."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import ConnectionDep, LookupPointDep
from api.errors import error_responses
from api.schemas import LookupPublic
from gis_grid import queries

__all__ = ["router"]

router = APIRouter(tags=["lookup"])


@router.get("/lookup", response_model=LookupPublic, responses=error_responses(404, 422))
def lookup(conn: ConnectionDep, point: LookupPointDep) -> LookupPublic:
    """Find the town, village, current grid and appointed member at ``lon``/``lat``.

    Coordinates from AMap/Tencent (``datum=gcj02``) or Baidu (``datum=bd09``) are converted
    to CGCS2000 first. 404 giving the coordinate when the point is in no village; 422 naming
    ``lon`` or ``lat`` when outside China's range or apparently swapped.
    """
    found = queries.lookup_point(conn, point.lon, point.lat, datum=point.datum)
    return LookupPublic.model_validate(found)
