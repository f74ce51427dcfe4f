"""The planner's map, the incident map and a drawn plan's map: ``/map/planner``, ``/map/...``.

Thin wiring: read the town's layers, hand them to the folium builders in :mod:`maps`, answer
HTML. The planner and incident pages load grids, households and incidents from the API
themselves (``maps/static/planner/*.js``), so what they show is exactly what the API gives
(personal data masked as the API masks it) and edits go through the versioned grid routes.
Bad query parameters are 422 naming the parameter (FastAPI's format), an unknown town 404.

A browser without a valid login is sent to ``/login?next=...`` (:class:`api.pages_auth.PageRoute`);
other clients get the JSON 401. A grid member's pages show only the grids row-level security
gives them today (their own, and an absent member's grid they cover as AB post): the grids
the page fetches, the villages, points and AB links it embeds; nothing of another grid is in
the HTML. The whole-town plan page is for central roles (403 for a member). The incident
map draws its large point layers (incidents, pollution points, hazards) from the service's
vector tiles (``/tiles/...``), requested with the user's login.

Tianditu (天地图) is offered when a key is configured: ``Settings.tianditu_key`` if the
settings have it, else the ``GIS_GRID_TIANDITU_KEY`` environment variable.
"""

from __future__ import annotations

import threading
from typing import Annotated, Any, Literal

import geopandas as gpd
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.engine import Connection

from api import crud, layers
from api.deps import (
    TOWN_CODE_PATTERN,
    ConnectionDep,
    ReportedRangeDep,
    check_choice,
    query_error,
)
from api.errors import error_responses
from api.pages_auth import PageRoute, only_grids, visible_grids
from api.routes.maps import MapCache
from api.security import AuthorizedUserDep
from gis_grid import members, queries
from gis_grid.db.models import IncidentStatus
from gis_grid.security.errors import PermissionDeniedError
from gis_grid.security.roles import allows
from maps._page import tianditu_key
from maps.incidents import build_incident_map
from maps.plan_view import build_plan_map
from maps.planner import build_planner_map, parse_band

__all__ = ["router"]

router = APIRouter(prefix="/map", tags=["maps"], route_class=PageRoute)

#: Point layers the incident map draws from vector tiles (gis_grid.tiles layer names).
TILED_POINTS: tuple[str, ...] = ("incidents", "pollution", "hazards")

_HTML: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/html": {}}},
    **error_responses(403, 404, 422),
}

TownQuery = Annotated[
    str,
    Query(pattern=TOWN_CODE_PATTERN, description="9-digit town code", examples=["511703109"]),
]
LangQuery = Annotated[
    Literal["zh", "en"], Query(description="Language of labels: zh (default) or en")
]
BasemapQuery = Annotated[
    Literal["none", "osm", "tianditu"],
    Query(
        description="Base layer shown first: none (offline, default), osm, or tianditu "
        "(needs a key: GIS_GRID_TIANDITU_KEY)"
    ),
]
ByQuery = Annotated[
    Literal["households", "people"], Query(description="Load measured in households or people")
]

_cache_lock = threading.Lock()


def _static_url(request: Request) -> str:
    return str(request.app.url_path_for("static", path="/")).rstrip("/")


def _api_url(request: Request) -> str:
    return str(request.app.url_path_for("read_towns")).rstrip("/").removesuffix("/towns")


def _tianditu(request: Request, basemap: str) -> str | None:
    key = tianditu_key(getattr(request.app.state, "settings", None))
    if basemap == "tianditu" and key is None:
        query_error(
            "basemap",
            "basemap=tianditu needs a Tianditu key (set GIS_GRID_TIANDITU_KEY); "
            "use basemap=none or osm",
            basemap,
        )
    return key


def _frames(conn: Connection, town: str, names: tuple[str, ...]) -> dict[str, gpd.GeoDataFrame]:
    available = {spec.name: spec for spec in layers.available_layers(conn)}
    return {
        name: layers.layer_frame(conn, available[name], town=town)
        for name in names
        if name in available
    }


def _tiles_url(request: Request) -> str:
    """``/tiles/{layer}/{z}/{x}/{y}.pbf`` as the app serves it (a Leaflet URL template)."""
    path = str(request.app.url_path_for("read_tile", layer="LAYER", z="0", x="1", y="2"))
    return path.replace("LAYER", "{layer}").replace("/0/1/2.pbf", "/{z}/{x}/{y}.pbf")


def _member_bounds(
    frames: dict[str, gpd.GeoDataFrame], town: tuple[float, float, float, float]
) -> tuple[float, float, float, float]:
    """Bounds of a member's grids in this town; the town's when none of theirs is in it."""
    grids = frames.get("grids")
    return _bounds(grids) if grids is not None and len(grids) else town


def _bounds(frame: gpd.GeoDataFrame) -> tuple[float, float, float, float]:
    minx, miny, maxx, maxy = frame.total_bounds
    return float(minx), float(miny), float(maxx), float(maxy)


def _page_cache(request: Request) -> MapCache:
    with _cache_lock:
        cache = getattr(request.app.state, "map_pages_cache", None)
        if cache is None:
            cache = MapCache(ttl=300.0, size=16)
            request.app.state.map_pages_cache = cache
        return cache


@router.get("/planner", response_class=HTMLResponse, responses=_HTML)
def planner_map(
    *,
    request: Request,
    conn: ConnectionDep,
    user: AuthorizedUserDep,
    town: TownQuery,
    band: Annotated[
        str,
        Query(
            max_length=40,
            description="Target load per member, 'low-high' (e.g. 200-300)",
            examples=["200-300"],
        ),
    ] = "200-300",
    by: ByQuery = "households",
    lang: LangQuery = "zh",
    basemap: BasemapQuery = "none",
) -> HTMLResponse:
    """Show the planner's map of a town: grids coloured by load against the band, editable.

    Villages, natural lines (rivers, streams, roads) and households as layers; grids with
    code, village, member, households and people. Move a vertex or a shared edge, split with
    a line, merge two neighbours, carve a new grid out of one: each previewed with
    ``?dry_run=true`` (new loads of every affected grid) and saved with ``If-Match``; a
    refusal is drawn on the map where the service locates it. "Propose" draws a balanced
    plan for a village beside the current one, to accept or discard.
    """
    try:
        low_high = parse_band(band)
    except ValueError as exc:
        query_error("band", str(exc), band)
    summary = crud.get_town(conn, town)
    tianditu = _tianditu(request, basemap)
    visible = visible_grids(conn)
    names = ("villages", "rivers", "streams", "roads")
    frames = _frames(conn, summary.code, names if visible is None else (*names, "grids"))
    town_frames = frames
    if visible is not None:
        frames = only_grids(frames, visible)
    bounds = _bounds(town_frames["villages"])
    if visible is not None:
        bounds = _member_bounds(frames, bounds)
    frames.pop("grids", None)
    fmap = build_planner_map(
        frames,
        town={"code": summary.code, "name": summary.name},
        bounds=bounds,
        grids=visible,
        band=low_high,
        by=by,
        lang=lang,
        basemap=basemap,
        tianditu=tianditu,
        static_url=_static_url(request),
        api_url=_api_url(request),
        editable=allows(user.role, "grids", "write"),
    )
    return HTMLResponse(fmap.get_root().render())


def _ab_links(
    conn: Connection, town: str, grids: gpd.GeoDataFrame
) -> tuple[list[dict[str, Any]], bool]:
    """AB-post links between grid centroids: the stored pairing, else a computed proposal."""
    stored = members.read_ab_posts(conn, town)
    pairs = [(p.grid_code, p.cover_grid_code, p.link) for p in stored.posts]
    is_stored = bool(pairs)
    if not pairs and len(grids):
        plan = members.compute_ab_posts(conn, town)
        cover = plan.cover
        pairs = [
            (str(code), str(row["backup_grid"]), str(row["link"]))
            for code, row in cover.iterrows()
            if row.get("backup_grid") is not None and str(row["backup_grid"]) != "nan"
        ]
    inside = grids.set_index("code").geometry.representative_point()
    seen: set[frozenset[str]] = set()
    links = []
    for a, b, link in pairs:
        key = frozenset((a, b))
        if a not in inside.index or b not in inside.index or key in seen:
            continue
        seen.add(key)
        pa, pb = inside[a], inside[b]
        links.append(
            {
                "grid_code": a,
                "cover_grid_code": b,
                "link": link,
                "a": (round(pa.x, 6), round(pa.y, 6)),
                "b": (round(pb.x, 6), round(pb.y, 6)),
            }
        )
    return links, is_stored


@router.get("/incidents", response_class=HTMLResponse, responses=_HTML)
def incident_map(
    *,
    request: Request,
    conn: ConnectionDep,
    town: TownQuery,
    reported: ReportedRangeDep,
    task_type: Annotated[
        str | None, Query(alias="type", max_length=64, description="Task type code (T01 ...)")
    ] = None,
    status: Annotated[
        list[IncidentStatus] | None, Query(description="Workflow steps (repeat for several)")
    ] = None,
    overdue: Annotated[bool, Query(description="Only overdue incidents")] = False,
    lang: LangQuery = "zh",
    basemap: BasemapQuery = "none",
) -> HTMLResponse:
    """Show the centre's incident map of a town: grids as a choropleth of incident counts.

    Filters (also on the page): ``type``, ``status`` (repeatable), ``from``/``to`` (report
    date), ``overdue``. Incidents as clustered markers coloured by workflow step, overdue ones
    ringed in red; pollution points, hazards, and AB-post pairs as links between grids.
    """
    check_choice("type", task_type, queries.task_type_codes(conn))
    summary = crud.get_town(conn, town)
    tianditu = _tianditu(request, basemap)
    frames = _frames(conn, summary.code, ("villages", "grids", "pollution", "hazards"))
    town_bounds = _bounds(frames["villages"])
    links, stored = _ab_links(conn, summary.code, frames.get("grids", gpd.GeoDataFrame()))
    visible = visible_grids(conn)
    # Central roles: the point layers from vector tiles (row-level security applies to the
    # incidents in them). A member: incidents from tiles (their rows only), pollution points
    # and hazards embedded for their grids only (those tiles hold every grid's points).
    tiled = TILED_POINTS if visible is None else ("incidents",)
    if visible is not None:
        frames = only_grids(frames, visible)
        mine = set(visible)
        links = [x for x in links if {x["grid_code"], x["cover_grid_code"]} <= mine]
    for name in tiled:
        frames.pop(name, None)
    filters = {
        "type": task_type,
        "status": [s.value for s in status or ()],
        "from": request.query_params.get("from"),
        "to": request.query_params.get("to"),
        "overdue": overdue,
    }
    del reported  # parsed (and checked) for the 422s; the page sends the same to the API
    fmap = build_incident_map(
        frames,
        town={"code": summary.code, "name": summary.name},
        bounds=town_bounds if visible is None else _member_bounds(frames, town_bounds),
        grids=visible,
        tiles={"url": _tiles_url(request), "layers": list(tiled), "bounds": town_bounds},
        ab_links=links,
        ab_stored=stored,
        filters=filters,
        lang=lang,
        basemap=basemap,
        tianditu=tianditu,
        static_url=_static_url(request),
        api_url=_api_url(request),
    )
    return HTMLResponse(fmap.get_root().render())


@router.get("/plans/{town}", response_class=HTMLResponse, responses=_HTML)
def plan_map(
    *,
    request: Request,
    conn: ConnectionDep,
    user: AuthorizedUserDep,
    town: Annotated[str, Path(pattern=TOWN_CODE_PATTERN, description="9-digit town code")],
    target: Annotated[
        float | None,
        Query(
            gt=0,
            allow_inf_nan=False,
            description="Load per grid; without it the town keeps its number of grids",
        ),
    ] = None,
    by: ByQuery = "households",
    tolerance: Annotated[
        float, Query(gt=0, lt=1, allow_inf_nan=False, description="Band half-width (0.1=±10%)")
    ] = 0.1,
    lang: LangQuery = "zh",
    basemap: BasemapQuery = "none",
) -> HTMLResponse:
    """Draw a proposal for the town (nothing is written) and show it beside the current grids.

    Proposed grids coloured by deviation from the target, with loads and Polsby-Popper
    compactness in the tooltip; current grids as dashed outlines; the plan's quality in a
    panel. With ``target`` a band the town cannot meet is a 422 naming the villages; without
    it the town keeps its number of grids, shared out by load, and misses are shown.
    """
    from gis_grid.db.read import read_town
    from gis_grid.plans import PlanParameters, draw_town, inputs_from_town, propose_plan

    if visible_grids(conn) is not None:
        msg = (
            "the plan page draws a proposal for the whole town, for the centre's roles; a "
            f"member's map of their grids is /map/planner?town={town}"
        )
        raise PermissionDeniedError(msg, [{"role": user.role.value, "page": "plans"}])
    summary = crud.get_town(conn, town)
    tianditu = _tianditu(request, basemap)
    static_url = _static_url(request)
    key = (
        "plan",
        summary.code,
        repr(target),
        by,
        repr(tolerance),
        lang,
        basemap,
        static_url,
        # Loads come from households, whose rows depend on who asks (row-level security).
        f"member:{user.member_code}" if user.member_code is not None else "all",
        layers.data_fingerprint(conn),
    )
    cache = _page_cache(request)
    page = cache.get(key)
    if page is not None:
        return HTMLResponse(page)
    if target is not None:
        drawn = propose_plan(
            conn, PlanParameters(by=by, target=target, tolerance=tolerance), town_code=town
        )
    else:
        inputs = inputs_from_town(read_town(conn, town), lines=("rivers", "streams", "roads"))
        drawn = draw_town(inputs, by=by, tolerance=tolerance, on_infeasible="report")
    quality = drawn.quality.grids[["grid_code", "polsby_popper", "crossings"]]
    grids = drawn.plan.grids
    proposal = grids.merge(quality, on="grid_code", how="left")
    frames = _frames(conn, summary.code, ("villages", "grids", "rivers", "streams", "roads"))
    fmap = build_plan_map(
        gpd.GeoDataFrame(proposal, geometry="geometry", crs=grids.crs),
        frames["grids"],
        town={"code": summary.code, "name": summary.name},
        summary=dict(drawn.quality.summary),
        by=by,
        tolerance=tolerance,
        villages=frames.get("villages"),
        lines={k: v for k, v in frames.items() if k in {"rivers", "streams", "roads"}},
        lang=lang,
        basemap=basemap,
        tianditu=tianditu,
        static_url=static_url,
    )
    page = fmap.get_root().render()
    cache.put(key, page)
    return HTMLResponse(page)
