"""``GET /map``: the folium overview map of the stored layers, as one HTML page.

A browser without a valid login is sent to ``/login?next=/map`` (:class:`PageRoute`). A grid
member's overview holds only their grids (today's, AB cover included), their villages and the
points in their grids.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from sqlalchemy.engine import Connection

from api import layers
from api.deps import ConnectionDep, TownFilterDep
from api.errors import error_responses
from api.pages_auth import PageRoute, only_grids, visible_grids
from api.security import AuthorizedUserDep
from gis_grid.errors import GeometryError, NotFoundError
from maps.overview import build_overview_map
from maps.vendor import STATIC_DIR

__all__ = ["MapCache", "router"]

router = APIRouter(tags=["maps"], route_class=PageRoute)


class MapCache:
    """Rendered pages by (town, basemap, data fingerprint), each kept at most ``ttl`` s.

    The fingerprint changes when the tables change; the time limit covers the short delay
    with which PostgreSQL publishes its table counters.
    """

    def __init__(self, *, ttl: float = 300.0, size: int = 32) -> None:
        self.ttl = ttl
        self.size = size
        self._pages: OrderedDict[tuple[str, ...], tuple[float, str]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, ...]) -> str | None:
        """Return the cached page, or ``None`` if absent or expired."""
        with self._lock:
            hit = self._pages.get(key)
            if hit is None or time.monotonic() - hit[0] > self.ttl:
                self._pages.pop(key, None)
                return None
            self._pages.move_to_end(key)
            return hit[1]

    def put(self, key: tuple[str, ...], page: str) -> None:
        """Store a page, evicting the least recently used beyond ``size``."""
        with self._lock:
            self._pages[key] = (time.monotonic(), page)
            self._pages.move_to_end(key)
            while len(self._pages) > self.size:
                self._pages.popitem(last=False)


def render_overview(
    conn: Connection,
    *,
    town: str | None,
    basemap: Literal["none", "osm"],
    static_url: str,
    grids: tuple[str, ...] | None = None,
) -> str:
    """Read every stored layer (of one town, or all) and render the overview page.

    Every layer of :func:`api.layers.available_layers` is read, the natural lines (rivers,
    streams, roads) included; the map frames the towns and draws the lines over them. With
    ``grids`` (a member's), only those grids, their villages and the points in them are kept.
    """
    frames = {
        spec.name: layers.layer_frame(conn, spec, town=town)
        for spec in layers.available_layers(conn)
    }
    if grids is not None:
        frames = only_grids(frames, grids)
    title = "网格化管理 · 样例数据总览"
    if town is not None and "towns" in frames and len(frames["towns"]):
        title = f"{frames['towns']['name'].iloc[0]} · 网格化管理总览"
    try:
        fmap = build_overview_map(
            frames, static_url=static_url, basemap=basemap, title=title, session=True
        )
    except GeometryError as exc:
        msg = f"nothing to show on the map: {exc}"
        raise NotFoundError(msg) from exc
    page: str = fmap.get_root().render()
    return page


@router.get(
    "/map",
    response_class=HTMLResponse,
    responses={200: {"content": {"text/html": {}}}, **error_responses(404)},
)
def overview_map(
    request: Request,
    conn: ConnectionDep,
    user: AuthorizedUserDep,
    town: TownFilterDep,
    basemap: Annotated[
        Literal["none", "osm"],
        Query(description="Base layer shown first: none (offline) or osm (needs internet)"),
    ] = "none",
) -> HTMLResponse:
    """Show the overview map (folium/Leaflet) of all towns, or of ``?town=CODE``.

    Shows towns, villages, current grids (households and people in the tooltip), the natural
    lines (rivers thicker by level, DEM-derived streams, synthetic roads by class; with a
    town, those of the town and those crossing it), households, pollution points, hazards
    and incidents; no personal data. All scripts and styles are served by the platform, so
    the page works without internet.
    """
    cache: MapCache = request.app.state.map_cache
    static_url = str(request.app.url_path_for("static", path="/")).rstrip("/")
    code = town.code if town else ""
    # Pages differ by whose rows the caller sees (row-level security): cached per scope,
    # a member's by the grids visible today (their AB cover changes with absences).
    grids = visible_grids(conn)
    scope = "all" if grids is None else f"member:{user.member_code}:{','.join(grids)}"
    key = (code, basemap, static_url, scope, layers.data_fingerprint(conn))
    page = cache.get(key)
    if page is None:
        page = render_overview(
            conn,
            town=town.code if town else None,
            basemap=basemap,
            static_url=static_url,
            grids=grids,
        )
        cache.put(key, page)
    return HTMLResponse(page)


@router.get("/favicon.ico", include_in_schema=False)
def favicon() -> FileResponse:
    """Serve the platform's icon (browsers ask for it on every page)."""
    return FileResponse(STATIC_DIR / "img" / "favicon.svg", media_type="image/svg+xml")


@router.get("/", include_in_schema=False)
def home() -> RedirectResponse:
    """Send a visitor of the bare address to the overview map (the API docs link from there)."""
    return RedirectResponse("/map", status_code=307)
