"""Dependencies: the engine and a connection, and path/query parameters as domain objects.

A dependency either returns a domain object (a town, a layer spec, a bounding box) or raises a
library error that :mod:`api.errors` maps to 404/422, so route functions never test for
``None``. The connection dependency is where row-level security will hook in later (setting
the caller's role and grid on the connection before any query runs).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import sqlalchemy as sa
from fastapi import Depends, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.engine import Connection, Engine

from api import crud, layers
from gis_grid.config import Settings
from gis_grid.db.engine import DatabaseError
from gis_grid.errors import CoordinateError

__all__ = [
    "BBoxDep",
    "ConnectionDep",
    "EngineDep",
    "LayerDep",
    "LimitDep",
    "OffsetDep",
    "SettingsDep",
    "TownDep",
    "TownFilterDep",
    "get_connection",
    "get_engine",
]

TOWN_CODE_PATTERN = r"^[0-9]{9}$"


def get_settings(request: Request) -> Settings:
    """Return the settings the app was created with."""
    settings: Settings = request.app.state.settings
    return settings


def get_engine(request: Request) -> Engine:
    """Return the engine opened in the app's lifespan."""
    engine: Engine = request.app.state.engine
    return engine


SettingsDep = Annotated[Settings, Depends(get_settings)]
EngineDep = Annotated[Engine, Depends(get_engine)]


def get_connection(engine: EngineDep) -> Iterator[Connection]:
    """Yield a pooled connection for one request, in a read-only transaction.

    Yields
    ------
    sqlalchemy.engine.Connection
        Returned to the pool when the response is sent.
    """
    try:
        conn = engine.connect()
    except sa.exc.OperationalError as exc:
        # Unreachable database: 503 through the error table, without the URL's password.
        where = engine.url.render_as_string(hide_password=True)
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        msg = f"database unavailable ({where}): {reason}"
        raise DatabaseError(msg) from exc
    with conn:
        conn.exec_driver_sql("SET TRANSACTION READ ONLY")
        yield conn


ConnectionDep = Annotated[Connection, Depends(get_connection)]


def get_town(
    conn: ConnectionDep,
    code: Annotated[
        str,
        Path(
            pattern=TOWN_CODE_PATTERN,
            description="9-digit NBS town code (6-digit district + 3-digit town)",
            examples=["511703109"],
        ),
    ],
) -> crud.TownSummary:
    """Return the town named in the path, or 404 naming the code."""
    return crud.get_town(conn, code)


TownDep = Annotated[crud.TownSummary, Depends(get_town)]


def get_town_filter(
    conn: ConnectionDep,
    town: Annotated[
        str | None,
        Query(
            pattern=TOWN_CODE_PATTERN,
            description="Only this town's features (9-digit code)",
            examples=["511703109"],
        ),
    ] = None,
) -> crud.TownSummary | None:
    """Return the town of the ``town`` query parameter, if given; 404 if unknown."""
    return None if town is None else crud.get_town(conn, town)


TownFilterDep = Annotated[crud.TownSummary | None, Depends(get_town_filter)]


def get_layer(
    conn: ConnectionDep,
    layer: Annotated[str, Path(description="Layer name, see GET /api/v1/layers")],
) -> layers.LayerSpec:
    """Return the layer named in the path, or 404 listing the known layers."""
    return layers.get_layer_spec(conn, layer)


LayerDep = Annotated[layers.LayerSpec, Depends(get_layer)]


def get_bbox(
    bbox: Annotated[
        str | None,
        Query(
            description=(
                "Bounding box minx,miny,maxx,maxy in degrees (CGCS2000/WGS84 lon/lat); "
                "features intersecting it are returned"
            ),
            examples=["107.3,31.0,107.6,31.3"],
            max_length=200,
        ),
    ] = None,
) -> crud.BBox | None:
    """Parse the ``bbox`` parameter; 422 naming ``bbox`` when malformed."""
    if bbox is None:
        return None
    try:
        return crud.parse_bbox(bbox)
    except (ValueError, CoordinateError) as exc:
        # Reported like FastAPI's own validation errors, so clients see one format whose
        # "loc" names the parameter.
        raise RequestValidationError(
            [{"type": "value_error", "loc": ("query", "bbox"), "msg": str(exc), "input": bbox}]
        ) from exc


BBoxDep = Annotated[crud.BBox | None, Depends(get_bbox)]
LimitDep = Annotated[
    int, Query(ge=1, le=10_000, description="Maximum number of features (1-10000)")
]
OffsetDep = Annotated[int, Query(ge=0, description="Features to skip (paging)")]
