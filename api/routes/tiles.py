"""Vector tiles at ``/tiles/{layer}/{z}/{x}/{y}.pbf`` (Mapbox Vector Tile, WebMercatorQuad).

Layers: ``grids`` (current plan, with ``households`` and ``people``), ``incidents``,
``pollution`` and ``hazards``; the attributes are listed in :mod:`gis_grid.tiles` (no personal
data). Points below zoom 13 are aggregated into cells with a ``count``.

Answers:

- ``200`` with the tile, ``Content-Type: application/vnd.mapbox-vector-tile``, a strong
  ``ETag`` (hash of the bytes) and ``Cache-Control: private, no-cache`` (a tile depends on
  who asks: row-level security; the browser revalidates every view, so an edit shows at
  once);
- ``304`` when ``If-None-Match`` names the current ETag;
- ``204 No Content`` for a tile with no feature (cheap: a tile outside the layer's extent is
  answered without a tile query). MapLibre, OpenLayers and QGIS draw nothing for it;
- ``401``/``403`` as every route behind the login (:mod:`api.security`): a revoked session or
  a disabled account is refused at once;
- ``404`` for an unknown layer (listing the layers), ``422`` for ``z`` outside 0..22 or
  ``x``/``y`` outside 0..2^z-1, naming the coordinate.

One request, one pooled connection, one transaction (``REPEATABLE READ, READ ONLY``), two
round trips:

1. the session check (:data:`api.security.SESSION_USER_SQL`: the session open, the account
   enabled) and the tile data version (:data:`gis_grid.tiles.DATA_VERSION_SQL`) in one
   statement; then the role is checked against the permission table;
2. unless the tile is in memory: the caller's role and grids (row-level security, as
   :func:`gis_grid.security.context.set_context` sets them), the layer's extent if not known
   yet, and the tile (``ST_AsMVT``) -- sent together (psycopg pipeline), with the COMMIT.

Rendered tiles and layer extents are kept in memory (:class:`TileCache`, bounded) under the
data version they were read with and whose rows they show (the role, or a member's grids).
The version changes with every committed change of a row a tile shows (migration 0006), and
is read in the same snapshot as the tile: a kept tile is never older than the data.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Annotated, Any

import anyio
import anyio.to_thread
import psycopg
from fastapi import APIRouter, Header, Path, Request
from fastapi.responses import Response
from sqlalchemy.engine import Engine

from api.errors import error_responses
from api.security import (
    REVOKED,
    SESSION_USER_SQL,
    BearerDep,
    connect,
    get_authorized_user,
    get_keys,
    token_of,
    user_from_row,
)
from gis_grid import tiles
from gis_grid.db.engine import DatabaseError
from gis_grid.errors import CoordinateError
from gis_grid.security import tokens
from gis_grid.security.accounts import User
from gis_grid.security.context import CHINA_TIME, member_grids
from gis_grid.security.errors import AuthenticationError
from gis_grid.security.roles import Role

__all__ = ["MVT_MEDIA_TYPE", "TILE_THREADS", "TileCache", "router"]

router = APIRouter(prefix="/tiles", tags=["tiles"])

MVT_MEDIA_TYPE = "application/vnd.mapbox-vector-tile"
# Browsers keep the tile but ask again each time (If-None-Match): an unchanged tile costs a
# 304 after the session check, and an edit shows at the next view, never a minute later.
_CACHE_CONTROL = "private, no-cache"
#: Tiles built at once (each holds a pooled connection; the app's pool keeps 10).
TILE_THREADS = 6

Extent = tuple[float, float, float, float]
TileKey = tuple[str, str, int, int, int]

#: First statement of a tile's transaction: the caller's account if the session is open,
#: and the tile data version, in one round trip.
_SESSION_AND_VERSION = SESSION_USER_SQL.replace(
    "SELECT u.id,", f"SELECT ({tiles.DATA_VERSION_SQL}) AS version, u.id,"
)
_SET_CONTEXT = (
    "SELECT set_config('gis_grid.user', %(user)s, true), "
    "set_config('gis_grid.role', %(role)s, true), set_config('gis_grid.grids', %(grids)s, true)"
)


class TileCache:
    """Rendered tiles and layer extents of one data version: a thread-safe, bounded LRU.

    Entries are kept for the data version they were read with; asking or storing under
    another version forgets the others (they can never be asked for again with a newer
    snapshot). ``max_bytes`` bounds the tiles' bytes, ``max_tiles`` their number.
    """

    def __init__(self, *, max_bytes: int = 64 << 20, max_tiles: int = 50_000) -> None:
        self._version: str | None = None
        self._tiles: OrderedDict[TileKey, tuple[bytes, str]] = OrderedDict()
        self._extents: dict[tuple[str, str], Extent | None] = {}
        self._bytes = 0
        self._lock = threading.Lock()
        self.max_bytes = max_bytes
        self.max_tiles = max_tiles

    def __len__(self) -> int:
        with self._lock:
            return len(self._tiles)

    def _switch(self, version: str) -> None:
        if version != self._version:
            self._tiles.clear()
            self._extents.clear()
            self._bytes = 0
            self._version = version

    def get(self, version: str, key: TileKey) -> tuple[bytes, str] | None:
        """Return ``(tile, etag)`` kept under ``version``, or ``None``."""
        with self._lock:
            if version != self._version:
                return None
            hit = self._tiles.get(key)
            if hit is not None:
                self._tiles.move_to_end(key)
            return hit

    def put(self, version: str, key: TileKey, data: bytes, etag: str) -> None:
        """Keep a tile built from the rows of ``version``; evict the least recently used."""
        with self._lock:
            self._switch(version)
            old = self._tiles.pop(key, None)
            if old is not None:
                self._bytes -= len(old[0])
            self._tiles[key] = (data, etag)
            self._bytes += len(data)
            while self._tiles and (
                self._bytes > self.max_bytes or len(self._tiles) > self.max_tiles
            ):
                _, (gone, _) = self._tiles.popitem(last=False)
                self._bytes -= len(gone)

    def extent(self, version: str, key: tuple[str, str]) -> tuple[bool, Extent | None]:
        """Return ``(known, extent)`` of a layer as a scope sees it under ``version``."""
        with self._lock:
            if version != self._version or key not in self._extents:
                return False, None
            return True, self._extents[key]

    def put_extent(self, version: str, key: tuple[str, str], extent: Extent | None) -> None:
        """Keep a layer's extent (``None``: no feature) read under ``version``."""
        with self._lock:
            self._switch(version)
            self._extents[key] = extent


def _cache(request: Request) -> TileCache:
    state = request.app.state
    cache: TileCache | None = getattr(state, "tile_cache", None)
    if cache is None:
        cache = state.tile_cache = TileCache()
    return cache


def _slots(request: Request) -> anyio.CapacityLimiter:
    # Tiles wait for one of a few threads rather than each taking a connection: beyond the
    # pool's size SQLAlchemy opens an overflow connection per request and closes it after
    # (a new PostgreSQL backend each time), which halves throughput under load.
    state = request.app.state
    limiter: anyio.CapacityLimiter | None = getattr(state, "tile_slots", None)
    if limiter is None:
        limiter = state.tile_slots = anyio.CapacityLimiter(TILE_THREADS)
    return limiter


def _outside(bounds: Extent, extent: Extent | None) -> bool:
    if extent is None:
        return True
    w, s, e, n = bounds
    return e < extent[0] or w > extent[2] or n < extent[1] or s > extent[3]


def _etag(data: bytes) -> str:
    return f'"{hashlib.blake2b(data, digest_size=12).hexdigest()}"'


def _serve(  # noqa: PLR0917 (run in a thread by anyio, which passes arguments by position)
    engine: Engine,
    cache: TileCache,
    claims: tokens.TokenClaims,
    authorize: Callable[[User], object],
    layer: tiles.TileLayer,
    tile: tuple[int, int, int],
) -> tuple[User, bytes, str]:
    """Check the session and role, then answer the tile from memory or build it.

    A connection lost on the way (the server stopped) is a 503, like every route's.
    """
    try:
        return _serve_on(engine, cache, claims, authorize, layer, tile)
    except psycopg.OperationalError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        msg = f"database unavailable: {reason}"
        raise DatabaseError(msg) from exc


def _serve_on(  # noqa: PLR0917
    engine: Engine,
    cache: TileCache,
    claims: tokens.TokenClaims,
    authorize: Callable[[User], object],
    layer: tiles.TileLayer,
    tile: tuple[int, int, int],
) -> tuple[User, bytes, str]:
    z, x, y = tile
    with connect(engine) as conn:
        # psycopg directly: the pipeline sends several statements in one round trip. The
        # transaction is psycopg's (BEGIN before the first statement); closing the
        # connection rolls back whatever is left open.
        pg: Any = conn.connection.driver_connection
        with pg.pipeline():
            pg.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            row = pg.execute(
                _SESSION_AND_VERSION, {"jti": claims.jti, "user_id": claims.user_id}
            ).fetchone()
        if row is None:
            raise AuthenticationError(REVOKED)
        version, user = str(row[0]), user_from_row(row[1:])
        authorize(user)
        grids: tuple[str, ...] = ()
        if user.role is Role.MEMBER and user.member_code is not None:
            # The member's grids (their own, and those they cover today), cached a minute by
            # the library; row-level security shows the households and incidents of those.
            grids = member_grids(conn, user.member_code, dt.datetime.now(CHINA_TIME).date())
        scope = f"{user.role.value}:{','.join(grids)}"
        key = (scope, layer.name, z, x, y)
        hit = cache.get(version, key)
        if hit is not None:
            return user, *hit
        known, extent = cache.extent(version, (scope, layer.name))
        render = not (known and _outside(tiles.tile_lonlat_bounds(z, x, y), extent))
        with pg.pipeline():
            context = {"user": user.username, "role": user.role.value, "grids": ",".join(grids)}
            pg.execute(_SET_CONTEXT, context)
            extent_cursor = None if known else pg.execute(tiles.layer_extent_sql(layer))
            tile_cursor = (
                pg.execute(
                    tiles.tile_sql(layer, z, paramstyle="pyformat"), {"z": z, "x": x, "y": y}
                )
                if render
                else None
            )
            pg.commit()
        if extent_cursor is not None:
            box = extent_cursor.fetchone()
            extent = (
                None
                if box[0] is None
                else (float(box[0]), float(box[1]), float(box[2]), float(box[3]))
            )
            cache.put_extent(version, (scope, layer.name), extent)
        found = tile_cursor.fetchone()[0] if tile_cursor is not None else None
    data = bytes(found) if found else b""
    etag = _etag(data)
    cache.put(version, key, data, etag)
    return user, data, etag


@router.get(
    "/{layer}/{z}/{x}/{y}.pbf",
    response_class=Response,
    responses={
        200: {
            "description": "A Mapbox vector tile",
            "content": {MVT_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
        },
        204: {"description": "The tile holds no feature"},
        304: {"description": "Not modified (If-None-Match matched the ETag)"},
        **error_responses(401, 403, 404, 422),
    },
)
async def read_tile(
    *,
    request: Request,
    credentials: BearerDep,
    layer: Annotated[
        str, Path(description="grids, incidents, pollution or hazards", max_length=50)
    ],
    z: Annotated[int, Path(description="Zoom, 0-22")],
    x: Annotated[int, Path(description="Column, 0..2^z-1 from the west")],
    y: Annotated[int, Path(description="Row, 0..2^z-1 from the north")],
    if_none_match: Annotated[str | None, Header(max_length=200)] = None,
) -> Response:
    """One vector tile of a layer (``ST_AsMVT``); 204 when empty, 304 when unchanged."""
    # Missing, forged or expired tokens: 401 before anything else, without the database.
    claims = tokens.read_token(token_of(request, credentials), get_keys(request))
    spec = tiles.get_tile_layer(layer)
    try:
        tiles.check_tile(z, x, y)
    except CoordinateError as exc:
        exc.problems = [{**p, "loc": ["path", p["field"]]} for p in exc.problems]
        raise

    def authorize(user: User) -> object:
        return get_authorized_user(request, user)

    engine: Engine = request.app.state.engine
    user, data, etag = await anyio.to_thread.run_sync(
        _serve, engine, _cache(request), claims, authorize, spec, (z, x, y),
        limiter=_slots(request),
    )  # fmt: skip
    request.state.user = user
    request.state.jti = claims.jti
    headers = {"ETag": etag, "Cache-Control": _CACHE_CONTROL}
    if if_none_match is not None and etag in {t.strip() for t in if_none_match.split(",")}:
        return Response(status_code=304, headers=headers)
    if not data:
        return Response(status_code=204, headers=headers)
    return Response(data, media_type=MVT_MEDIA_TYPE, headers=headers)
