"""The FastAPI application factory.

``create_app(settings)`` wires the library into a web service: the database engine (and its
connection pool) is created when the app starts and disposed when it stops, errors are mapped
by :mod:`api.errors`, and static assets (the pinned JavaScript/CSS of the map and docs pages)
are served from the packages themselves, so nothing is loaded from a CDN.

Run it with ``gis-grid serve`` or ``uvicorn --factory api.app:create_app``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from api import __version__
from api import vendor as api_vendor
from api.errors import install_error_handlers
from api.middleware import BodyLimit, SecurityHeaders
from api.routes import (
    auth,
    docs,
    engine,
    events,
    exchange,
    grid_edit,
    grids,
    health,
    incident_workflow,
    layers,
    login_page,
    lookup,
    map_pages,
    maps,
    members,
    ogc,
    plans,
    registries,
    registry_edit,
    tiles,
    towns,
    unmask,
    villages,
)
from api.routes.maps import MapCache
from api.security import get_authorized_user
from gis_grid.config import Settings, get_settings
from gis_grid.db.engine import make_engine
from maps import vendor as maps_vendor

__all__ = ["API_PREFIX", "create_app"]

API_PREFIX = "/api/v1"

DESCRIPTION = """
村级网格化管理平台 API — village-level grid management on PostGIS.

Coordinates are CGCS2000 longitude/latitude (EPSG:4490); areas are measured in the
CGCS2000 Gauss-Krüger zone of the data (EPSG:4545 for Dachuan). Lists are paged
(`limit`, `offset`, `links`); spatial lists are GeoJSON FeatureCollections with
`numberMatched`/`numberReturned`. Personal data (residents' names, ID numbers and phones,
members' phones, addresses) is masked on the server for every caller: `110***********002X`,
`138****1234`, `张*明`. The overview map is at [/map](/map).
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    """Create the web service.

    Parameters
    ----------
    settings
        Platform settings; read from the ``GIS_GRID_*`` environment when ``None``.

    Returns
    -------
    fastapi.FastAPI
        The application. Its database engine exists only while the app runs (lifespan).

    Examples
    --------
    >>> from gis_grid.config import Settings
    >>> app = create_app(Settings(database_url="postgresql+psycopg://u:p@127.0.0.1:1/db"))
    >>> app.url_path_for("read_towns")
    '/api/v1/towns'
    """
    settings = settings if settings is not None else get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The engine connects lazily: the service starts even while the database is down,
        # and /health says so (503) instead of the process failing to boot.
        # The application role, under row-level security (docs/security.md).
        # pool_size: connections kept open. Above it SQLAlchemy opens an overflow connection
        # per checkout and closes it after (a new PostgreSQL backend each time): the tile
        # route stays below it (api.routes.tiles.TILE_THREADS).
        engine = make_engine(
            settings.service_database_url(),
            pool_size=10,
            max_overflow=10,
            connect_args={"connect_timeout": 5, "application_name": "gis-grid-api"},
        )
        app.state.engine = engine
        try:
            yield
        finally:
            engine.dispose()

    app = FastAPI(
        title="gis-grid 网格化管理平台",
        version=__version__,
        description=DESCRIPTION,
        docs_url=None,  # served by api.routes.docs with local assets
        redoc_url=None,
        lifespan=lifespan,
        openapi_tags=[
            {"name": "health", "description": "Service and database status"},
            {"name": "towns", "description": "Towns (乡镇/街道) and their villages (村/社区)"},
            {"name": "villages", "description": "Villages and communities as GeoJSON"},
            {
                "name": "grids",
                "description": "Grids: current plan, plan at an instant, history, statistics",
            },
            {"name": "members", "description": "Grid members (网格员); phones masked"},
            {
                "name": "households",
                "description": "Households and residents; personal data masked",
            },
            {"name": "pollution points", "description": "Pollution discharge points (排污点)"},
            {"name": "hazards", "description": "Environmental and safety hazards"},
            {"name": "incidents", "description": "Incidents in the seven-step workflow"},
            {"name": "task types", "description": "Kinds of grid work and their admission"},
            {"name": "lookup", "description": "Which town, village, grid, member a point is in"},
            {
                "name": "engine",
                "description": "Spatial engine: load balance, adjacency, AB posts, absence cover",
            },
            {"name": "layers", "description": "Map layers as GeoJSON (non-personal data)"},
            {"name": "maps", "description": "HTML map pages"},
            {"name": "auth", "description": "Logging in and out (bearer tokens)"},
            {"name": "privacy", "description": "Unmasking personal data: reason required, audited"},
        ],
    )
    app.state.settings = settings
    app.state.map_cache = MapCache()
    install_error_handlers(app)
    # Outermost last: the body cap runs before anything reads the request.
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "If-Match", "If-None-Match"],
            expose_headers=["ETag", "Location"],
        )
    app.add_middleware(SecurityHeaders)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)

    # Mount order matters: /static/api must be matched before the catch-all /static.
    app.mount(
        "/static/api", StaticFiles(directory=api_vendor.STATIC_DIR), name=docs.API_STATIC_NAME
    )
    app.mount("/static", StaticFiles(directory=maps_vendor.STATIC_DIR), name="static")

    # Every route below needs a login whose role the route's area allows (api.security);
    # only /health, the login itself, the docs and static assets are open.
    login_required = [Depends(get_authorized_user)]
    v1 = APIRouter(prefix=API_PREFIX, dependencies=login_required)
    for module in (
        towns,
        villages,
        grids,
        grid_edit,
        plans,
        registries,
        members,
        registry_edit,
        events,
        incident_workflow,
        engine,
        lookup,
        layers,
        exchange,
        unmask,
    ):
        v1.include_router(module.router)
    app.include_router(health.router)
    app.include_router(auth.router, prefix=API_PREFIX)
    app.include_router(login_page.router)  # /login, /logout: the browser's way in and out
    app.include_router(v1)
    app.include_router(maps.router)  # /map authenticates through its connection
    app.include_router(map_pages.router, dependencies=login_required)
    app.include_router(ogc.router, dependencies=login_required)
    # Tiles check the login themselves, in the transaction that builds the tile (one
    # connection and round trip less per tile): same rules, same 401/403.
    app.include_router(tiles.router)
    app.include_router(docs.router)
    return app
