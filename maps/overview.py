"""The overview map: every sample layer of one or more towns on one folium page.

Pure folium over GeoDataFrames: the caller (the web service, a notebook) reads the layers and
passes them in; this module never touches a database or the web framework. The page loads its
JavaScript and CSS from the platform's own pinned copies (:mod:`maps.vendor`), shows the data
without any basemap by default and offers OpenStreetMap as an optional base layer, so it works
with no internet.

Only whitelisted attribute columns of each layer reach the page (see :data:`LAYERS`): a frame
that happens to carry names, ID numbers or phone numbers does not leak them.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
from folium.plugins import MarkerCluster

from gis_grid.crs import require_crs
from gis_grid.errors import CRSError, GeometryError
from maps.login import add_session
from maps.vendor import (
    folium_default_css,
    folium_default_js,
    marker_cluster_css,
    marker_cluster_js,
)

__all__ = ["LAYERS", "LayerStyle", "build_overview_map", "layer_bounds"]

Basemap = Literal["none", "osm"]


@dataclass(frozen=True)
class LayerStyle:
    """How one layer is drawn and which of its columns the page may show.

    Parameters
    ----------
    label
        Chinese name shown in the layer control.
    kind
        ``"polygon"``, ``"line"`` or ``"point"``.
    fields
        ``(column, Chinese alias)`` pairs shown in the tooltip, in order. Columns absent from
        the frame are skipped; columns not listed are never written into the page.
    style
        Leaflet path options (colour, weight, fill ...).
    radius
        Circle-marker radius in pixels, for point layers.
    show
        Whether the layer is switched on when the page opens.
    by_rank
        Style options overriding ``style`` per value of the ``rank`` column (natural lines:
        1 = most important, drawn thickest and on top).
    labels
        Column → stored value → Chinese label shown in the tooltip (e.g. road classes).
    """

    label: str
    kind: Literal["polygon", "line", "point"]
    fields: tuple[tuple[str, str], ...]
    style: Mapping[str, Any] = field(default_factory=dict)
    radius: float = 4.0
    show: bool = True
    by_rank: Mapping[int, Mapping[str, Any]] = field(default_factory=dict)
    labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)


#: Drawing order (bottom to top) and styles of the known layers.
LAYERS: dict[str, LayerStyle] = {
    "towns": LayerStyle(
        "镇（街道）",
        "polygon",
        (("name", "镇"), ("code", "代码"), ("villages", "村数"), ("area_km2", "面积(km²)")),
        {"color": "#1b1b1b", "weight": 3, "fill": False, "dashArray": "8 4"},
    ),
    "villages": LayerStyle(
        "村（社区）",
        "polygon",
        (("name", "村（社区）"), ("code", "代码"), ("town", "所属镇")),
        {"color": "#d95f0e", "weight": 2, "fill": True, "fillOpacity": 0.0},
    ),
    "grids": LayerStyle(
        "网格",
        "polygon",
        (
            ("code", "网格编码"),
            ("village", "所属村"),
            ("households", "户数"),
            ("people", "人数"),
        ),
        {"color": "#2b8cbe", "weight": 1, "fillColor": "#a6bddb", "fillOpacity": 0.25},
    ),
    # Natural lines: streams under rivers under roads; within a layer rank 1 is drawn on top.
    "streams": LayerStyle(
        "溪流（DEM 提取）",
        "line",
        (("code", "编号"), ("name", "名称"), ("class", "类别"), ("rank", "等级")),
        {"color": "#6baed6", "weight": 1.2, "opacity": 0.9},
        by_rank={1: {"weight": 2.2}, 2: {"weight": 1.6}},
        labels={"class": {"river": "河段", "creek": "溪", "brook": "沟"}},
    ),
    "rivers": LayerStyle(
        "河流",
        "line",
        (("code", "编号"), ("name", "名称"), ("rank", "等级"), ("town", "所属镇")),
        {"color": "#08519c", "weight": 3, "opacity": 0.85},
        # GSHHG levels: 1-2 major rivers, 3-4 additional rivers, beyond minor/intermittent
        by_rank={1: {"weight": 7}, 2: {"weight": 6}, 3: {"weight": 5}, 4: {"weight": 4}},
    ),
    "roads": LayerStyle(
        "道路（合成）",
        "line",
        (("code", "编号"), ("name", "名称"), ("class", "等级"), ("town", "所属镇")),
        {"color": "#969696", "weight": 1.2, "opacity": 0.9},
        by_rank={
            1: {"color": "#e6550d", "weight": 3.5},
            2: {"color": "#fd8d3c", "weight": 2.2},
        },
        labels={"class": {"county": "县道", "township": "乡道", "village": "村道"}},
    ),
    "households": LayerStyle(
        "住户",
        "point",
        (("id", "户编号"), ("village", "村"), ("grid_code", "网格"), ("people", "人数")),
        {"color": "#31a354", "fillColor": "#74c476", "fillOpacity": 0.8, "weight": 1},
        radius=2.5,
    ),
    "pollution": LayerStyle(
        "污染排放点",
        "point",
        (("name", "名称"), ("kind", "类型"), ("grid_code", "网格"), ("status", "状态")),
        {"color": "#a50f15", "fillColor": "#ef3b2c", "fillOpacity": 0.9, "weight": 1},
        radius=6,
    ),
    "hazards": LayerStyle(
        "环境隐患",
        "point",
        (("name", "名称"), ("kind", "类型"), ("level", "等级"), ("grid_code", "网格")),
        {"color": "#b35806", "fillColor": "#fdb863", "fillOpacity": 0.9, "weight": 1},
        radius=6,
    ),
    "incidents": LayerStyle(
        "事件",
        "point",
        (("code", "事件编号"), ("kind", "类型"), ("status", "状态"), ("grid_code", "网格")),
        {"color": "#54278f", "fillColor": "#9e9ac8", "fillOpacity": 0.9, "weight": 1},
        radius=4,
    ),
}

_OSM_TILES = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
_OSM_ATTR = '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> 贡献者'


def layer_bounds(layers: Mapping[str, gpd.GeoDataFrame]) -> tuple[float, float, float, float]:
    """Longitude/latitude bounds of all non-empty layers together.

    Parameters
    ----------
    layers
        GeoDataFrames with a CRS.

    Returns
    -------
    tuple of float
        ``(minx, miny, maxx, maxy)`` in degrees.

    Raises
    ------
    GeometryError
        If every layer is empty.
    """
    boxes = [
        _to_lonlat(name, frame).total_bounds for name, frame in layers.items() if _drawable(frame)
    ]
    if not boxes:
        msg = "no features to show: every layer is empty (load the data first: gis-grid load)"
        raise GeometryError(msg)
    arr = np.vstack(boxes)
    return (
        float(np.nanmin(arr[:, 0])),
        float(np.nanmin(arr[:, 1])),
        float(np.nanmax(arr[:, 2])),
        float(np.nanmax(arr[:, 3])),
    )


def build_overview_map(
    layers: Mapping[str, gpd.GeoDataFrame],
    *,
    static_url: str = "/static",
    basemap: Basemap = "none",
    title: str = "网格化管理 · 样例数据总览",
    cluster_households: bool = False,
    session: bool = False,
) -> folium.Map:
    """Build the overview map of the given layers.

    Parameters
    ----------
    layers
        Layer name (a key of :data:`LAYERS`) → GeoDataFrame with a CRS. Unknown names are
        refused; missing ones are simply not drawn.
    static_url
        URL where the service mounts ``maps/static`` (the vendored assets live below it).
    basemap
        Base layer shown first: ``"none"`` (plain background, works offline) or ``"osm"``
        (OpenStreetMap tiles, needs internet). Both are always offered in the layer control.
    title
        Heading shown in the top-left corner.
    cluster_households
        Cluster household markers (``MarkerCluster``) instead of drawing every one on the
        canvas; useful above some tens of thousands of households.
    session
        Show the logged-in user and a logout button (pages served by the platform).

    Returns
    -------
    folium.Map
        The map; ``.get_root().render()`` gives the HTML page.

    Raises
    ------
    KeyError
        For a layer name not in :data:`LAYERS`.
    CRSError
        For a layer without a CRS.
    GeometryError
        If every layer is empty.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely.geometry import Point
    >>> pts = gpd.GeoDataFrame({"name": ["排口"]}, geometry=[Point(107.5, 31.2)], crs=4490)
    >>> m = build_overview_map({"pollution": pts})
    >>> "/static/vendor/leaflet@1.9.4/dist/leaflet.js" in m.get_root().render()
    True
    """
    unknown = sorted(set(layers) - set(LAYERS))
    if unknown:
        msg = f"unknown layer(s) {unknown}; known layers: {sorted(LAYERS)}"
        raise KeyError(msg)
    lonlat = {name: _to_lonlat(name, frame) for name, frame in layers.items()}
    minx, miny, maxx, maxy = layer_bounds(lonlat)  # refuses all-empty input
    # Frame the towns, not the lines that run on beyond them (a river across the district).
    areas = {n: f for n, f in lonlat.items() if LAYERS[n].kind != "line" and _drawable(f)}
    if areas:
        minx, miny, maxx, maxy = layer_bounds(areas)

    fmap = folium.Map(
        location=[(miny + maxy) / 2, (minx + maxx) / 2],
        tiles=None,
        prefer_canvas=True,  # thousands of household circles draw fast on one canvas
        control_scale=True,
        zoom_start=12,
    )
    # Instance attributes shadow folium's CDN lists: every asset comes from the platform.
    fmap.default_js = folium_default_js(static_url)
    fmap.default_css = folium_default_css(static_url)
    _add_base_layers(fmap, basemap)

    for name, spec in LAYERS.items():
        if name in lonlat and len(lonlat[name]):
            _add_layer(
                fmap,
                name,
                spec,
                lonlat[name],
                static_url=static_url,
                cluster_households=cluster_households,
            )

    folium.LayerControl(collapsed=False, position="topright").add_to(fmap)
    fmap.fit_bounds([[miny, minx], [maxy, maxx]], padding=(10, 10))
    _add_title(fmap, title, lonlat, static_url)
    if session:
        add_session(fmap, static_url=static_url)
    return fmap


def _drawable(frame: gpd.GeoDataFrame) -> bool:
    return bool(len(frame)) and not frame.geometry.is_empty.all()


def _to_lonlat(name: str, frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Return the frame in lon/lat (CGCS2000 is used as WGS84 at village scale)."""
    if frame.crs is None:
        require_crs(None, source=f"layer {name!r}")
    crs = frame.crs
    if crs.is_geographic:
        return frame
    try:
        return frame.to_crs(4490)
    except Exception as exc:  # pyproj raises several types for unusable CRSs
        msg = f"layer {name!r}: cannot transform from {crs} to EPSG:4490: {exc}"
        raise CRSError(msg) from exc


def _add_base_layers(fmap: folium.Map, basemap: Basemap) -> None:
    # An empty FeatureGroup with overlay=False is a base layer that draws nothing: the data
    # stays readable with no tiles and no network.
    blank = folium.FeatureGroup(name="无底图（离线）", overlay=False, show=basemap == "none")
    osm = folium.TileLayer(
        tiles=_OSM_TILES,
        attr=_OSM_ATTR,
        name="OpenStreetMap（需联网）",
        overlay=False,
        show=basemap == "osm",
        max_zoom=19,
    )
    if basemap == "osm":
        osm.add_to(fmap)
        blank.add_to(fmap)
    else:
        blank.add_to(fmap)
        osm.add_to(fmap)


def _tooltip_frame(
    frame: gpd.GeoDataFrame, spec: LayerStyle
) -> tuple[gpd.GeoDataFrame, list[str], list[str]]:
    """Keep only the whitelisted columns (and ``rank`` to style by), as JSON-friendly values."""
    present = [(col, alias) for col, alias in spec.fields if col in frame.columns]
    cols = [col for col, _ in present]
    styled = ["rank"] if spec.by_rank and "rank" in frame.columns and "rank" not in cols else []
    kept = cols + styled
    out = gpd.GeoDataFrame(frame[kept].copy(), geometry=frame.geometry.values, crs=frame.crs)
    for col in kept:
        if col in spec.labels:
            labels = spec.labels[col]
            out[col] = out[col].map(lambda v, labels=labels: labels.get(v, v))
        series = out[col]
        if pd.api.types.is_float_dtype(series):
            out[col] = series.round(2).astype(object).where(series.notna(), "")
        elif pd.api.types.is_integer_dtype(series) or pd.api.types.is_bool_dtype(series):
            out[col] = series.astype(object).where(series.notna(), "")
        else:
            out[col] = series.astype(object).where(series.notna(), "").astype(str)
    return out, cols, [alias for _, alias in present]


def _add_layer(
    fmap: folium.Map,
    name: str,
    spec: LayerStyle,
    frame: gpd.GeoDataFrame,
    *,
    static_url: str,
    cluster_households: bool,
) -> None:
    ranked = bool(spec.by_rank) and "rank" in frame.columns
    if ranked:  # whole numbers (not 3.0), minor lines first so that rank 1 is drawn on top
        rank = pd.to_numeric(frame["rank"], errors="coerce").round().astype("Int64")
        frame = frame.assign(rank=rank).sort_values(
            "rank", ascending=False, na_position="first", kind="stable"
        )
    data, cols, aliases = _tooltip_frame(frame, spec)
    data = data[~data.geometry.is_empty & data.geometry.notna()]
    group = folium.FeatureGroup(name=f"{spec.label}（{len(data)}）", show=spec.show)
    tooltip = folium.GeoJsonTooltip(fields=cols, aliases=aliases, sticky=True) if cols else None
    style = dict(spec.style)
    style_function = _ranked_style(style, spec.by_rank) if ranked else _constant_style(style)

    if spec.kind == "point" and name == "households" and cluster_households:
        cluster = MarkerCluster(name=spec.label, control=False)
        cluster.default_js = marker_cluster_js(static_url)
        cluster.default_css = marker_cluster_css(static_url)
        points = data.geometry.representative_point()
        for x, y in zip(points.x, points.y, strict=True):
            folium.CircleMarker([y, x], radius=spec.radius, **style).add_to(cluster)
        cluster.add_to(group)
    elif spec.kind == "point":
        folium.GeoJson(
            data,
            name=spec.label,
            marker=folium.CircleMarker(radius=spec.radius, **style),
            style_function=_constant_style(style),
            tooltip=tooltip,
            control=False,
        ).add_to(group)
    else:
        folium.GeoJson(
            data,
            name=spec.label,
            style_function=style_function,
            highlight_function=_constant_style({"weight": float(style.get("weight", 1)) + 2}),
            tooltip=tooltip,
            control=False,
            smooth_factor=0.5,
        ).add_to(group)
    group.add_to(fmap)


def _constant_style(style: Mapping[str, Any]) -> Any:
    frozen = dict(style)

    def _style(_feature: object) -> dict[str, Any]:
        return frozen

    return _style


def _ranked_style(style: Mapping[str, Any], by_rank: Mapping[int, Mapping[str, Any]]) -> Any:
    """Style each feature by its ``rank`` property (empty or unknown ranks: the base style)."""
    base = dict(style)
    styles = {rank: {**base, **extra} for rank, extra in by_rank.items()}

    def _style(feature: Mapping[str, Any]) -> dict[str, Any]:
        rank = feature.get("properties", {}).get("rank")
        return styles.get(rank, base) if isinstance(rank, int) else base

    return _style


def _add_title(
    fmap: folium.Map, title: str, layers: Mapping[str, gpd.GeoDataFrame], static_url: str
) -> None:
    counts = " · ".join(
        f"{LAYERS[name].label} {len(frame)}" for name, frame in layers.items() if len(frame)
    )
    box = (
        '<div id="gis-grid-title" style="position:absolute;top:10px;left:54px;z-index:1000;'
        "background:rgba(255,255,255,.92);padding:6px 10px;border-radius:4px;"
        "box-shadow:0 1px 4px rgba(0,0,0,.3);font:14px/1.4 'Noto Sans CJK SC',"
        "'Microsoft YaHei',sans-serif;max-width:60%\">"
        f"<b>{html.escape(title)}</b><br><small>{html.escape(counts)}</small></div>"
    )
    fmap.get_root().html.add_child(folium.Element(box))  # type: ignore[attr-defined]
    # A light background shows the data clearly when no basemap is selected.
    fmap.get_root().header.add_child(  # type: ignore[attr-defined]
        folium.Element(
            "<style>.folium-map.leaflet-container{background:#f4f1ea}</style>"
            f'<link rel="icon" href="{html.escape(static_url.rstrip("/"))}/img/favicon.svg">'
        )
    )
