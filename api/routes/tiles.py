"""Vector tiles at ``/tiles/{layer}/{z}/{x}/{y}.pbf`` (Mapbox Vector Tile, WebMercatorQuad).

Layers: ``grids`` (current plan, with ``households`` and ``people``), ``incidents``,
``pollution`` and ``hazards``; the attributes are listed in :mod:`gis_grid.tiles` (no personal
data). Points below zoom 13 are aggregated into cells with a ``count``.

Answers:

- ``200`` with the tile, ``Content-Type: application/vnd.mapbox-vector-tile``, a strong
  ``ETag`` (hash of the bytes) and ``Cache-Control: public, max-age=60``;
- ``304`` when ``If-None-Match`` names the current ETag;
- ``204 No Content`` for a tile with no feature (cheap: a tile outside the layer's extent is
  answered without a query). MapLibre, OpenLayers and QGIS draw nothing for it;
- ``404`` for an unknown layer (listing the layers), ``422`` for ``z`` outside 0..22 or
  ``x``/``y`` outside 0..2^z-1, naming the coordinate.

Each tile is built in the caller's security context (role and grids set on the connection,
as :mod:`api.deps` does for every read route), so row-level security decides which incidents
a tile shows and which households a grid counts. Rendered tiles are kept in memory for a few
seconds (:data:`TILE_TTL_S`) per scope (role, or a member's grids), so a map panning over
the same area is answered from the cache; after a change, tiles are at most that old (plus
the client's ``max-age``).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from typing import Annotated

import anyio
import anyio.to_thread
from fastapi import APIRouter, Header, Path, Request
from fastapi.responses import Response
from sqlalchemy.engine import Engine

from api.errors import error_responses
from api.security import AuthorizedUserDep, connect
from gis_grid import tiles
from gis_grid.errors import CoordinateError
from gis_grid.security.accounts import User
from gis_grid.security.context import set_context
from gis_grid.security.roles import Role

__all__ = ["MVT_MEDIA_TYPE", "TILE_THREADS", "TILE_TTL_S", "TileCache", "router"]

router = APIRouter(prefix="/tiles", tags=["tiles"])

MVT_MEDIA_TYPE = "application/vnd.mapbox-vector-tile"
#: Seconds a rendered tile (and a layer's extent) is reused before it is built again.
TILE_TTL_S = 10.0
_CACHE_CONTROL = "public, max-age=60"
#: Tiles rendered at once (each holds a pooled connection); the app's pool keeps 5.
TILE_THREADS = 4


class TileCache:
    """A small thread-safe LRU of rendered tiles and layer extents, with a time to live."""

    def __init__(self, *, max_tiles: int = 20_000, ttl_s: float = TILE_TTL_S) -> None:
        self._tiles: OrderedDict[tuple[str, str, int, int, int], tuple[float, bytes, str]] = (
            OrderedDict()
        )
        self._extents: dict[str, tuple[float, tuple[float, float, float, float] | None]] = {}
        self._lock = threading.Lock()
        self.max_tiles = max_tiles
        self.ttl_s = ttl_s

    def get(self, key: tuple[str, str, int, int, int]) -> tuple[bytes, str] | None:
        """Return a fresh ``(tile, etag)`` or ``None``."""
        with self._lock:
            hit = self._tiles.get(key)
            if hit is None or time.monotonic() - hit[0] > self.ttl_s:
                return None
            self._tiles.move_to_end(key)
            return hit[1], hit[2]

    def put(self, key: tuple[str, str, int, int, int], data: bytes, etag: str) -> None:
        """Keep a rendered tile, dropping the least recently used beyond ``max_tiles``."""
        with self._lock:
            self._tiles[key] = (time.monotonic(), data, etag)
            self._tiles.move_to_end(key)
            while len(self._tiles) > self.max_tiles:
                self._tiles.popitem(last=False)

    def extent(self, layer: str) -> tuple[bool, tuple[float, float, float, float] | None]:
        """Return ``(known, extent)`` of a layer (``known`` is False when stale or absent)."""
        with self._lock:
            hit = self._extents.get(layer)
        if hit is None or time.monotonic() - hit[0] > self.ttl_s:
            return False, None
        return True, hit[1]

    def put_extent(self, layer: str, extent: tuple[float, float, float, float] | None) -> None:
        """Keep a layer's extent."""
        with self._lock:
            self._extents[layer] = (time.monotonic(), extent)


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


def _outside(
    bounds: tuple[float, float, float, float], extent: tuple[float, float, float, float] | None
) -> bool:
    if extent is None:
        return True
    w, s, e, n = bounds
    return e < extent[0] or w > extent[2] or n < extent[1] or s > extent[3]


def _scope(user: User) -> str:
    """Return whose rows a tile shows: the role's, or one member's grids (row-level security).

    Keyed by role rather than "central or not", so a policy that lets one central role see
    fewer rows can never serve it a tile cached for another.
    """
    if user.role is Role.MEMBER:
        return f"member:{user.member_code}"
    return user.role.value


def _render(
    engine: Engine,
    cache: TileCache,
    user: User,
    layer: tiles.TileLayer,
    tile: tuple[int, int, int],
) -> tuple[bytes, str]:
    z, x, y = tile
    scope = _scope(user)
    known, extent = cache.extent(f"{scope}/{layer.name}")
    # The caller's role and grids are set in the transaction first, like every read route
    # (api.deps): row-level security decides which incidents and households a tile counts.
    # postgresql_readonly makes psycopg send BEGIN READ ONLY: no extra round trip.
    with connect(engine).execution_options(postgresql_readonly=True) as conn, conn.begin():
        set_context(conn, user)
        if not known:
            extent = tiles.layer_extent(conn, layer)
            cache.put_extent(f"{scope}/{layer.name}", extent)
        if _outside(tiles.tile_lonlat_bounds(z, x, y), extent):
            data = b""
        else:
            data = tiles.render_tile(conn, layer, z, x, y)
    etag = f'"{hashlib.blake2b(data, digest_size=12).hexdigest()}"'
    cache.put((scope, layer.name, z, x, y), data, etag)
    return data, etag


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
        **error_responses(404, 422),
    },
)
async def read_tile(
    *,
    request: Request,
    user: AuthorizedUserDep,
    layer: Annotated[
        str, Path(description="grids, incidents, pollution or hazards", max_length=50)
    ],
    z: Annotated[int, Path(description="Zoom, 0-22")],
    x: Annotated[int, Path(description="Column, 0..2^z-1 from the west")],
    y: Annotated[int, Path(description="Row, 0..2^z-1 from the north")],
    if_none_match: Annotated[str | None, Header(max_length=200)] = None,
) -> Response:
    """One vector tile of a layer (``ST_AsMVT``); 204 when empty, 304 when unchanged."""
    spec = tiles.get_tile_layer(layer)
    try:
        tiles.check_tile(z, x, y)
    except CoordinateError as exc:
        exc.problems = [{**p, "loc": ["path", p["field"]]} for p in exc.problems]
        raise
    cache = _cache(request)
    # Tiles differ by whose rows the caller sees (row-level security): cached per scope.
    hit = cache.get((_scope(user), spec.name, z, x, y))
    if hit is None:
        engine: Engine = request.app.state.engine
        hit = await anyio.to_thread.run_sync(
            _render, engine, cache, user, spec, (z, x, y), limiter=_slots(request)
        )
    data, etag = hit
    headers = {"ETag": etag, "Cache-Control": _CACHE_CONTROL}
    if if_none_match is not None and etag in {t.strip() for t in if_none_match.split(",")}:
        return Response(status_code=304, headers=headers)
    if not data:
        return Response(status_code=204, headers=headers)
    return Response(data, media_type=MVT_MEDIA_TYPE, headers=headers)
