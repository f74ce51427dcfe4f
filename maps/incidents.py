"""The centre's incident map: grids as a choropleth of incidents, overdue items at a glance.

The page (folium) draws the pollution points, hazards and the AB-post pairs (links between
the centroids of the grids whose members cover each other); the grids and incidents are
loaded by ``maps/static/planner/incidents.js`` from the service with the filters chosen on
the page (task type, workflow status, report date range, overdue only), so the choropleth of
incident counts per grid and the clustered markers follow the filters. Overdue incidents are
drawn with a red ring and counted per grid.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import folium
import geopandas as gpd

from maps._page import Basemap, Lang, add_config, add_geojson, add_scripts, new_map
from maps.login import add_session

__all__ = ["LABELS", "STATUSES", "build_incident_map"]

#: Workflow steps, in order (gis_grid.db.models.IncidentStatus).
STATUSES: tuple[str, ...] = (
    "reported",
    "accepted",
    "dispatched",
    "handled",
    "feedback",
    "closed",
    "evaluated",
)

LABELS: dict[str, dict[str, str]] = {
    "zh": {
        "title": "事件地图",
        "grids": "网格（事件数）",
        "incidents": "事件",
        "overdue_layer": "超期事件",
        "pollution": "污染排放点",
        "hazards": "环境隐患",
        "ab_posts": "AB岗结对",
        "ab_posts_proposed": "AB岗结对（建议，未保存）",
        "code": "编号",
        "name": "名称",
        "kind": "类型",
        "level": "等级",
        "grid": "网格",
        "village": "村",
        "type": "事件类型",
        "status": "状态",
        "from": "上报起",
        "to": "上报止",
        "overdue": "仅超期",
        "all": "全部",
        "apply": "筛选",
        "count": "事件数",
        "overdue_n": "超期",
        "reported_at": "上报时间",
        "deadline": "期限",
        "legend": "图例",
        "matched": "符合条件的事件",
        "s_reported": "上报",
        "s_accepted": "受理",
        "s_dispatched": "派遣",
        "s_handled": "处置",
        "s_feedback": "反馈",
        "s_closed": "结案",
        "s_evaluated": "评价",
        "link": "结对",
        "cell_count": "聚合点数",
    },
    "en": {
        "title": "Incident map",
        "grids": "Grids (incident count)",
        "incidents": "Incidents",
        "overdue_layer": "Overdue incidents",
        "pollution": "Pollution points",
        "hazards": "Hazards",
        "ab_posts": "AB-post pairs",
        "ab_posts_proposed": "AB-post pairs (proposed, not stored)",
        "code": "Code",
        "name": "Name",
        "kind": "Kind",
        "level": "Level",
        "grid": "Grid",
        "village": "Village",
        "type": "Type",
        "status": "Status",
        "from": "Reported from",
        "to": "to",
        "overdue": "Overdue only",
        "all": "all",
        "apply": "Filter",
        "count": "Incidents",
        "overdue_n": "overdue",
        "reported_at": "Reported",
        "deadline": "Deadline",
        "legend": "Legend",
        "matched": "Incidents matching",
        "s_reported": "reported",
        "s_accepted": "accepted",
        "s_dispatched": "dispatched",
        "s_handled": "handled",
        "s_feedback": "feedback",
        "s_closed": "closed",
        "s_evaluated": "evaluated",
        "link": "pair",
        "cell_count": "Points in cell",
    },
}


def build_incident_map(
    layers: Mapping[str, gpd.GeoDataFrame],
    *,
    town: Mapping[str, str],
    bounds: tuple[float, float, float, float],
    ab_links: Sequence[Mapping[str, Any]] = (),
    ab_stored: bool = True,
    filters: Mapping[str, Any] | None = None,
    lang: Lang = "zh",
    basemap: Basemap = "none",
    tianditu: str | None = None,
    static_url: str = "/static",
    api_url: str = "/api/v1",
    grids: Sequence[str] | None = None,
    tiles: Mapping[str, Any] | None = None,
) -> folium.Map:
    """Build the incident map of one town.

    Parameters
    ----------
    layers
        ``villages``, ``pollution`` and ``hazards`` in lon/lat (missing ones are not drawn).
    town
        ``code`` and ``name``.
    bounds
        Lon/lat box the map opens on.
    ab_links
        AB-post links: ``grid_code``, ``cover_grid_code``, ``link`` and the two grids'
        centroids ``a`` / ``b`` as ``(lon, lat)``.
    ab_stored
        Whether the links are the stored pairing (else a proposal, labelled as such).
    filters
        Initial filters: ``type``, ``status`` (list), ``from``, ``to``, ``overdue``.
    lang, basemap, tianditu, static_url, api_url, grids
        As for :func:`maps.planner.build_planner_map`.
    tiles
        Point layers drawn from vector tiles: ``url`` (Leaflet template with ``{layer}``),
        ``layers`` (names among ``incidents``, ``pollution``, ``hazards``; those are not
        embedded even if in ``layers``) and ``bounds`` (lon/lat box to request tiles in).
        ``None``: pollution points and hazards embedded, incidents as clustered markers.

    Returns
    -------
    folium.Map
        The page.
    """
    labels = LABELS[lang]
    fmap = new_map(
        bounds,
        static_url=static_url,
        basemap=basemap,
        tianditu=tianditu,
        lang=lang,
        title=f"{town['name']} · {labels['title']}",
        cluster=True,
        tiles=bool(tiles),
        panel_width=330,
    )
    tiled = set((tiles or {}).get("layers", ()))
    villages = layers.get("villages")
    if villages is not None:
        add_geojson(
            fmap,
            villages,
            name=labels["village"],
            fields=(("name", labels["village"]),),
            style={"color": "#d95f0e", "weight": 2, "fill": False, "interactive": False},
        )
    point_fields = (
        ("code", labels["code"]),
        ("name", labels["name"]),
        ("kind", labels["kind"]),
        ("level", labels["level"]),
        ("grid_code", labels["grid"]),
    )
    for name, colour, fill in (
        ("pollution", "#a50f15", "#ef3b2c"),
        ("hazards", "#b35806", "#fdb863"),
    ):
        frame = layers.get(name)
        if frame is not None and name not in tiled:
            add_geojson(
                fmap,
                frame,
                name=labels[name],
                fields=point_fields,
                style={"color": colour, "fillColor": fill, "fillOpacity": 0.9, "weight": 1},
                point_radius=6,
            )
    if ab_links:
        name = labels["ab_posts"] if ab_stored else labels["ab_posts_proposed"]
        group = folium.FeatureGroup(name=f"{name}（{len(ab_links)}）", show=True)
        for link in ab_links:
            (ax, ay), (bx, by) = link["a"], link["b"]
            folium.PolyLine(
                [[ay, ax], [by, bx]],
                color="#1a9850",
                weight=2.5,
                opacity=0.85,
                dash_array=None if ab_stored else "6 4",
                tooltip=f"{labels['link']} {link['grid_code']} ↔ {link['cover_grid_code']}",
            ).add_to(group)
        group.add_to(fmap)
    control = folium.LayerControl(collapsed=True, position="topright")
    control.add_to(fmap)
    add_config(
        fmap,
        {
            "page": "incidents",
            "api": api_url.rstrip("/"),
            "town": {"code": town["code"], "name": town["name"]},
            "lang": lang,
            "labels": labels,
            "statuses": list(STATUSES),
            "filters": dict(filters or {}),
            "layerControl": control.get_name(),
            "grids": None if grids is None else list(grids),
            "tiles": dict(tiles) if tiles else None,
        },
    )
    add_scripts(fmap, static_url, ["api.js", "common.js", "incidents.js"], ["planner.css"])
    add_session(fmap, static_url=static_url, api_url=api_url, lang=lang, with_api=False)
    return fmap
