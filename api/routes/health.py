"""``GET /health``: whether the service is up and can reach PostGIS."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from api import __version__
from api.deps import EngineDep
from api.schemas import HealthPublic
from gis_grid.db.engine import DatabaseError, postgis_version

__all__ = ["router"]

router = APIRouter(tags=["health"])


@router.get(
    "/health",
    response_model=HealthPublic,
    responses={503: {"model": HealthPublic, "description": "The database is unreachable"}},
)
async def health(engine: EngineDep) -> HealthPublic | JSONResponse:
    """Check the database: connect, and report the PostGIS version (503 when unreachable)."""
    try:
        version = await run_in_threadpool(postgis_version, engine)
    except DatabaseError as exc:
        body = HealthPublic(
            status="unavailable", database="unreachable", detail=str(exc), version=__version__
        )
        return JSONResponse(body.model_dump(), status_code=503, headers={"Retry-After": "30"})
    return HealthPublic(status="ok", database="ok", postgis_version=version, version=__version__)
