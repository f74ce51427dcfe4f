"""Probes: ``/health`` (PostGIS reachable), ``/health/live`` and ``/health/ready``.

``/health/live`` answers as long as the process serves HTTP and never touches the database:
an orchestrator must not restart the service because PostgreSQL is restarting (the engine's
pool recovers by itself, see :func:`gis_grid.db.make_engine`). ``/health/ready`` says whether
requests can be served now: the database is reachable and migrated to the head revision this
version needs; otherwise 503 with ``Retry-After``, so a load balancer stops sending traffic.
"""

from __future__ import annotations

from functools import cache

import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext
from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy.engine import Engine

from api import __version__
from api.deps import EngineDep
from api.errors import RETRY_AFTER_S
from api.schemas import HealthPublic
from api.schemas.health import LivePublic, ReadyPublic
from gis_grid.db.engine import DatabaseError, postgis_version
from gis_grid.db.migrate import head

__all__ = ["readiness", "router"]

router = APIRouter(tags=["health"])

_RETRY = {"Retry-After": str(RETRY_AFTER_S)}


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
        return JSONResponse(body.model_dump(), status_code=503, headers=_RETRY)
    return HealthPublic(status="ok", database="ok", postgis_version=version, version=__version__)


@router.get("/health/live", response_model=LivePublic)
async def live() -> LivePublic:
    """Liveness: the process answers. Never checks the database (200 while it is down)."""
    return LivePublic(status="ok", version=__version__)


@cache
def _head() -> str:
    return head()


def readiness(engine: Engine) -> ReadyPublic:
    """Check that the database is reachable and migrated to the head revision.

    Parameters
    ----------
    engine
        The service's engine (the application role: it may read ``alembic_version``).

    Returns
    -------
    ReadyPublic
        ``status="ready"`` only when ``database="ok"``; ``detail`` says what is wrong
        (without the URL's password).
    """
    target = _head()
    where = engine.url.render_as_string(hide_password=True)
    try:
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
    except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        return ReadyPublic(
            status="unavailable",
            database="unreachable",
            head_revision=target,
            detail=f"cannot connect to {where}: {reason}",
            version=__version__,
        )
    except sa.exc.DBAPIError as exc:  # e.g. no right to read alembic_version
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        return ReadyPublic(
            status="unavailable",
            database="not migrated",
            head_revision=target,
            detail=f"{where}: cannot read the schema revision: {reason}",
            version=__version__,
        )
    if current != target:
        return ReadyPublic(
            status="unavailable",
            database="not migrated",
            schema_revision=current,
            head_revision=target,
            detail=(
                f"{where} is at revision {current or 'none (never migrated)'}, this version "
                f"needs {target}: run 'gis-grid db upgrade'"
            ),
            version=__version__,
        )
    return ReadyPublic(
        status="ready",
        database="ok",
        schema_revision=current,
        head_revision=target,
        version=__version__,
    )


@router.get(
    "/health/ready",
    response_model=ReadyPublic,
    responses={503: {"model": ReadyPublic, "description": "Database unreachable or not migrated"}},
)
async def ready(engine: EngineDep) -> ReadyPublic | JSONResponse:
    """Readiness: the database is reachable and at the migrations' head (else 503)."""
    body = await run_in_threadpool(readiness, engine)
    if body.status != "ready":
        return JSONResponse(body.model_dump(), status_code=503, headers=_RETRY)
    return body
