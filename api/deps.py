"""Dependencies: the engine and a connection, and path/query parameters as domain objects.

A dependency either returns a domain object (a town, a layer spec, a bounding box, a checked
code, a time range) or raises: a library error that :mod:`api.errors` maps to 404/422, or a
``RequestValidationError`` whose ``loc`` names the query parameter, so route functions never
test for ``None`` and bad input is always a 4xx naming the parameter.

The connection dependencies authenticate the caller (:mod:`api.security`: 401 without a
valid token, 403 for a role the route's area does not allow) and set the caller's user, role
and grids on the connection inside the request's transaction
(:func:`gis_grid.security.context.set_context`), so row-level security in PostgreSQL decides
which rows every query of the request sees and changes.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Annotated, NoReturn, TypedDict

import sqlalchemy as sa
from fastapi import Depends, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.engine import Connection, Engine

from api import crud, layers
from api.security import AuthorizedUserDep, connect
from gis_grid import queries
from gis_grid.config import Settings
from gis_grid.crs import CHINA_BOUNDS, Datum
from gis_grid.errors import CoordinateError, NotFoundError
from gis_grid.security import audit
from gis_grid.security.accounts import User
from gis_grid.security.context import set_context
from gis_grid.security.errors import PermissionDeniedError
from gis_grid.security.roles import Role

__all__ = [
    "CHINA_TIME",
    "ActorDep",
    "AreaArgs",
    "AreaDep",
    "AsOfDep",
    "BBoxDep",
    "ConnectionDep",
    "EngineDep",
    "GridCode",
    "GridFilterDep",
    "HouseholdFilterDep",
    "LayerDep",
    "LimitDep",
    "LonLat",
    "LookupPointDep",
    "OffsetDep",
    "PlaceArgs",
    "PlacesDep",
    "ReportedRangeDep",
    "SettingsDep",
    "TimeRange",
    "TownDep",
    "TownFilterDep",
    "VillageCode",
    "VillageFilterDep",
    "WriteConnectionDep",
    "actor_name",
    "audit_refusal",
    "check_choice",
    "get_connection",
    "get_engine",
    "get_write_connection",
    "parse_instant",
    "query_error",
]

TOWN_CODE_PATTERN = r"^[0-9]{9}$"
VILLAGE_CODE_PATTERN = r"^[0-9]{12}$"
GRID_CODE_PATTERN = r"^[0-9]{15}$"

#: Time zone of timestamps given without an offset: China Standard Time (no daylight saving).
CHINA_TIME = dt.timezone(dt.timedelta(hours=8), "CST")


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


# Unreachable database: 503 through the error table, without the URL's password.
_connect = connect


def get_connection(engine: EngineDep, user: AuthorizedUserDep) -> Iterator[Connection]:
    """Yield a pooled connection for one request, in a read-only transaction.

    The caller's identity, role and grids are set in the transaction first (row-level
    security).

    Yields
    ------
    sqlalchemy.engine.Connection
        Returned to the pool when the response is sent.
    """
    conn = _connect(engine)
    with conn:
        conn.exec_driver_sql("SET TRANSACTION READ ONLY")
        set_context(conn, user)
        yield conn


def audit_refusal(engine: Engine, user: User, action: str, detail: str) -> None:
    """Log a refused look-up of personal data by a user limited to their grids (a member).

    A member asking for another grid's household gets the same 404 as for one that does not
    exist (row-level security hides it); the attempt is written to the append-only audit log
    (outcome ``denied``) in a transaction of its own, so it stays when the request fails.
    Users who see every grid are not logged: for them the 404 only means "no such code".
    """
    if user.role is not Role.MEMBER:
        return
    with _connect(engine) as conn, conn.begin():
        set_context(conn, user)
        audit.record(
            conn,
            username=user.username,
            role=user.role.value,
            action=action,
            resident_id=None,
            fields=(),
            reason=None,
            outcome="denied",
            detail=detail,
        )


def _refused_by_policy(exc: sa.exc.DBAPIError) -> bool:
    return getattr(exc.orig, "sqlstate", None) == "42501" and "row-level security" in str(exc)


def get_write_connection(engine: EngineDep, user: AuthorizedUserDep) -> Iterator[Connection]:
    """Yield a connection in a read-write transaction, committed before the response is sent.

    Declared with ``scope="function"`` (see :data:`WriteConnectionDep`): the commit runs when
    the route function returns, so a client never sees a success whose commit then failed;
    any exception in the route rolls the whole request back (nothing partial is stored). The
    caller's context is set first; a row the policies refuse (e.g. a member writing outside
    their grids) is a 403.
    """
    conn = _connect(engine)
    with conn, conn.begin():
        set_context(conn, user)
        try:
            yield conn
        except sa.exc.DBAPIError as exc:
            if _refused_by_policy(exc):
                msg = (
                    f"{user.username} ({user.role.value}) may not write this row: it is outside "
                    "the grids the account may change. Nothing was stored."
                )
                raise PermissionDeniedError(msg) from exc
            raise


ConnectionDep = Annotated[Connection, Depends(get_connection)]
WriteConnectionDep = Annotated[Connection, Depends(get_write_connection, scope="function")]


def actor_name(user: User) -> str:
    """Return the name a change is recorded under: a member's code, else the user name."""
    return user.member_code or user.username


def get_actor(user: AuthorizedUserDep) -> str:
    """Return who makes a change, for the history: the logged-in account (never a header)."""
    return actor_name(user)


ActorDep = Annotated[str, Depends(get_actor)]


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


# --- shared validation ----------------------------------------------------------------------


def query_error_header(header: str, msg: str, value: object) -> NoReturn:
    """Raise a 422 whose ``loc`` names a request header."""
    raise RequestValidationError(
        [{"type": "value_error", "loc": ("header", header), "msg": msg, "input": value}]
    )


def query_error(parameter: str, msg: str, value: object) -> NoReturn:
    """Raise a 422 in FastAPI's own format, whose ``loc`` names the query parameter."""
    if isinstance(value, float) and not math.isfinite(value):
        value = str(value)  # JSON has no NaN/Infinity: the answer must stay a valid 422
    raise RequestValidationError(
        [{"type": "value_error", "loc": ("query", parameter), "msg": msg, "input": value}]
    )


def check_choice(parameter: str, value: str | None, allowed: Sequence[str]) -> str | None:
    """Return ``value`` if it is one of ``allowed`` (or ``None``); else 422 listing them."""
    if value is None or value in allowed:
        return value
    choices = ", ".join(repr(a) for a in allowed)
    query_error(parameter, f"unknown {parameter} {value!r}; allowed values: {choices}", value)


def parse_instant(text: str, parameter: str, *, end_of_day: bool = False) -> dt.datetime:
    """Parse an ISO 8601 date or timestamp; 422 naming ``parameter`` when malformed.

    A timestamp without offset is China Standard Time (UTC+08:00). A bare date means the
    start of that day, or with ``end_of_day`` the start of the next (so that ``to=2025-01-31``
    includes the 31st).

    Examples
    --------
    >>> parse_instant("2025-01-31", "to", end_of_day=True).isoformat()
    '2025-02-01T00:00:00+08:00'
    """
    value = text.strip()
    # An unencoded "+08:00" in a query string arrives as " 08:00": take it back.
    if len(value) > 19 and value[-6] == " " and value[-5:-3].isdigit():
        value = f"{value[:-6]}+{value[-5:]}"
    try:
        if len(value) == 10:
            day = dt.date.fromisoformat(value)
            instant = dt.datetime.combine(day, dt.time(), CHINA_TIME)
            return instant + dt.timedelta(days=1) if end_of_day else instant
        instant = dt.datetime.fromisoformat(value)
    except ValueError:
        query_error(
            parameter,
            f"{parameter} must be an ISO 8601 date or timestamp such as 2025-01-31 or "
            f"2025-01-31T08:00:00+08:00, got {text!r}",
            text,
        )
    return instant if instant.tzinfo is not None else instant.replace(tzinfo=CHINA_TIME)


_INSTANT_DOC = "ISO 8601 date or timestamp; without an offset, China Standard Time (UTC+08:00)"


def get_as_of(
    as_of: Annotated[
        str | None,
        Query(
            description=f"The plan valid at this instant ({_INSTANT_DOC}); default: now",
            examples=["2025-06-01T00:00:00+08:00"],
            max_length=40,
        ),
    ] = None,
) -> dt.datetime | None:
    """Parse ``as_of``; 422 naming it when malformed."""
    return None if as_of is None else parse_instant(as_of, "as_of")


AsOfDep = Annotated[dt.datetime | None, Depends(get_as_of)]


@dataclass(frozen=True)
class TimeRange:
    """A half-open interval ``[start, end)``; either end may be open."""

    start: dt.datetime | None
    end: dt.datetime | None


def get_reported_range(
    start: Annotated[
        str | None,
        Query(
            alias="from",
            description=f"Reported at or after ({_INSTANT_DOC})",
            examples=["2025-01-01"],
            max_length=40,
        ),
    ] = None,
    end: Annotated[
        str | None,
        Query(
            alias="to",
            description=f"Reported before; a bare date includes that day ({_INSTANT_DOC})",
            examples=["2025-12-31"],
            max_length=40,
        ),
    ] = None,
) -> TimeRange:
    """Parse ``from``/``to``; 422 naming the parameter when malformed or ``from`` > ``to``."""
    lo = None if start is None else parse_instant(start, "from")
    hi = None if end is None else parse_instant(end, "to", end_of_day=True)
    if lo is not None and hi is not None and lo > hi:
        query_error("from", f"from ({start}) is after to ({end})", start)
    return TimeRange(lo, hi)


ReportedRangeDep = Annotated[TimeRange, Depends(get_reported_range)]


# --- codes: path parameters and filters -----------------------------------------------------

VillageCode = Annotated[
    str,
    Path(
        pattern=VILLAGE_CODE_PATTERN,
        description="12-digit NBS village code",
        examples=["511703109001"],
    ),
]
GridCode = Annotated[
    str,
    Path(
        pattern=GRID_CODE_PATTERN,
        description="15-digit grid code (village code + 3-digit sequence)",
        examples=["511703109001001"],
    ),
]


def get_village_filter(
    conn: ConnectionDep,
    village: Annotated[
        str | None,
        Query(
            pattern=VILLAGE_CODE_PATTERN,
            description="Only this village's items (12-digit code)",
            examples=["511703109001"],
        ),
    ] = None,
) -> str | None:
    """Return the ``village`` filter if the village exists; 404 naming it otherwise."""
    return None if village is None else queries.require_village(conn, village)


VillageFilterDep = Annotated[str | None, Depends(get_village_filter)]


def get_grid_filter(
    conn: ConnectionDep,
    grid: Annotated[
        str | None,
        Query(
            pattern=GRID_CODE_PATTERN,
            description="Only this grid's items (15-digit code)",
            examples=["511703109001001"],
        ),
    ] = None,
) -> str | None:
    """Return the ``grid`` filter if some version of the grid exists; 404 otherwise."""
    return None if grid is None else queries.require_grid_code(conn, grid)


GridFilterDep = Annotated[str | None, Depends(get_grid_filter)]


def get_household_filter(
    conn: ConnectionDep,
    engine: EngineDep,
    user: AuthorizedUserDep,
    household: Annotated[
        str | None,
        Query(
            description="Only this household's residents (household code)",
            examples=["5117031090010001"],
            max_length=64,
        ),
    ] = None,
) -> str | None:
    """Return the ``household`` filter if the household exists; 404 naming it otherwise.

    For a member, "exists" means "in their grids"; a refused code is audited.
    """
    if household is None:
        return None
    try:
        return queries.require_household(conn, household)
    except NotFoundError:
        audit_refusal(engine, user, "read_residents", f"household {household!r} (not found)")
        raise


HouseholdFilterDep = Annotated[str | None, Depends(get_household_filter)]


# --- the place filters shared by the list endpoints -----------------------------------------


class PlaceArgs(TypedDict):
    """The checked ``town``/``village``/``grid`` filters, as the ``*_page`` queries take them."""

    town: str | None
    village: str | None
    grid: str | None


class AreaArgs(PlaceArgs):
    """The place filters and the ``bbox`` of a list of features."""

    bbox: crud.BBox | None


def get_places(town: TownFilterDep, village: VillageFilterDep, grid: GridFilterDep) -> PlaceArgs:
    """Gather ``town``, ``village`` and ``grid`` (each checked, 404 naming it if unknown).

    A route takes them as one parameter and passes them on as keywords,
    ``queries.member_page(conn, **places)``; the query parameters and their documentation
    stay those of the three filters.
    """
    return PlaceArgs(town=town.code if town else None, village=village, grid=grid)


PlacesDep = Annotated[PlaceArgs, Depends(get_places)]


def get_area(places: PlacesDep, bbox: BBoxDep) -> AreaArgs:
    """Gather the place filters and ``bbox`` (422 naming it when malformed)."""
    return AreaArgs(**places, bbox=bbox)


AreaDep = Annotated[AreaArgs, Depends(get_area)]


# --- a point ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LonLat:
    """A point as given by the caller, in its datum."""

    lon: float
    lat: float
    datum: Datum


def get_lookup_point(
    lon: Annotated[
        float,
        Query(description="Longitude in degrees", examples=[107.405], allow_inf_nan=False),
    ],
    lat: Annotated[
        float,
        Query(description="Latitude in degrees", examples=[30.964], allow_inf_nan=False),
    ],
    datum: Annotated[
        Datum,
        Query(
            description=(
                "Datum of lon/lat: cgcs2000 or wgs84 (GPS), gcj02 (AMap, Tencent), "
                "bd09 (Baidu); converted to CGCS2000"
            )
        ),
    ] = Datum.CGCS2000,
) -> LonLat:
    """Check ``lon``/``lat``: finite, inside China's range; 422 naming the parameter."""
    minx, miny, maxx, maxy = CHINA_BOUNDS
    if minx <= lat <= maxx and miny <= lon <= maxy and not miny <= lat <= maxy:
        query_error(
            "lon",
            f"lon={lon}, lat={lat} look swapped: give lon={lat}&lat={lon} (longitude first)",
            lon,
        )
    for name, value, low, high in (("lon", lon, minx, maxx), ("lat", lat, miny, maxy)):
        if not math.isfinite(value) or not low <= value <= high:
            query_error(
                name,
                f"{name}={value} is outside China's range {low}..{high} degrees",
                value,
            )
    return LonLat(lon, lat, datum)


LookupPointDep = Annotated[LonLat, Depends(get_lookup_point)]
