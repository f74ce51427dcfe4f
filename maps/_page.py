"""What the planner, incident and plan pages share: assets, base maps, labels, page config.

Pure folium (no database, no web framework). Every page loads its JavaScript and CSS from the
platform: Leaflet and friends from :mod:`maps.vendor`, the editing plugin (Leaflet-Geoman)
from :data:`PAGE_VENDOR_DIR` (pinned npm copies with their own manifest, written by
:func:`maps.vendor.fetch_packages`: ``python -m maps._page``), and the pages' own scripts from
``maps/static/planner/``.

Base maps: none (the default: works on intranets without internet), OpenStreetMap, and
Tianditu (天地图) when a key is configured. Tianditu's ``_w`` layers are Web-Mercator tiles
whose coordinates are CGCS2000, which agrees with WGS84 to well under a metre at village
scale, so our CGCS2000 data (EPSG:4490) lies on them without any shift (unlike GCJ-02 base
maps such as AMap, which are offset by hundreds of metres).
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import folium
import geopandas as gpd
import pandas as pd

from maps.vendor import (
    STATIC_DIR,
    VendorPackage,
    asset_url,
    fetch_packages,
    folium_default_css,
    folium_default_js,
    marker_cluster_css,
    marker_cluster_js,
    vector_grid_js,
)

__all__ = [
    "BASEMAPS",
    "GEOMAN",
    "PAGE_PACKAGES",
    "PAGE_VENDOR_DIR",
    "TIANDITU_KEY_ENV",
    "Basemap",
    "Lang",
    "add_config",
    "add_geojson",
    "add_scripts",
    "new_map",
    "tianditu_key",
]

Lang = Literal["zh", "en"]
Basemap = Literal["none", "osm", "tianditu"]
BASEMAPS: tuple[str, ...] = ("none", "osm", "tianditu")

#: Environment variable holding the Tianditu key (Settings has no field for it yet).
TIANDITU_KEY_ENV = "GIS_GRID_TIANDITU_KEY"

#: Where the pages' own pinned npm packages are copied (a manifest of their own: the
#: shared vendor directory's tests list exactly :data:`maps.vendor.MAP_PACKAGES`).
PAGE_VENDOR_DIR = STATIC_DIR / "planner" / "vendor"

# Leaflet-Geoman (free): vertex and edge editing with snapping to the neighbouring grids,
# drawing lines and polygons. MIT. Its CSS icons are inline SVG data URIs.
GEOMAN = VendorPackage(
    "@geoman-io/leaflet-geoman-free",
    "2.17.0",
    "MIT",
    ("LICENSE", "dist/leaflet-geoman.min.js", "dist/leaflet-geoman.css"),
)
PAGE_PACKAGES: tuple[VendorPackage, ...] = (GEOMAN,)

_OSM_TILES = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
_TIANDITU = "https://t{s}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0&LAYER={layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={{z}}&TILEROW={{y}}&TILECOL={{x}}&tk={key}"

_BASE_LABELS: dict[str, dict[str, str]] = {
    "zh": {
        "none": "无底图（离线）",
        "osm": "OpenStreetMap（需联网）",
        "tianditu": "天地图矢量（需联网）",
        "tianditu_labels": "天地图注记",
    },
    "en": {
        "none": "No basemap (offline)",
        "osm": "OpenStreetMap (internet)",
        "tianditu": "Tianditu vector (internet)",
        "tianditu_labels": "Tianditu labels",
    },
}


def tianditu_key(settings: object | None = None) -> str | None:
    """Return the Tianditu key: ``settings.tianditu_key`` if Settings has one, else the env.

    Parameters
    ----------
    settings
        The platform settings (any object); ``None`` reads the environment only.

    Returns
    -------
    str or None
        The key, or ``None`` when none is configured (Tianditu is then not offered).
    """
    key = getattr(settings, "tianditu_key", None) if settings is not None else None
    if not key:
        key = os.environ.get(TIANDITU_KEY_ENV, "")
    key = str(key).strip()
    return key or None


def new_map(
    bounds: tuple[float, float, float, float],
    *,
    static_url: str,
    basemap: Basemap = "none",
    tianditu: str | None = None,
    lang: Lang = "zh",
    title: str,
    cluster: bool = False,
    edit: bool = False,
    tiles: bool = False,
    panel_width: int = 0,
) -> folium.Map:
    """Create a folium map over ``bounds`` (lon/lat) with local assets and the base layers.

    Parameters
    ----------
    bounds
        ``(minx, miny, maxx, maxy)`` in degrees.
    static_url
        Where ``maps/static`` is served (e.g. ``"/static"``).
    basemap
        Base layer shown first; ``"tianditu"`` needs ``tianditu``.
    tianditu
        Tianditu key, or ``None`` (Tianditu is then not offered).
    lang
        Language of the base layer names.
    title
        Page title (the HTML ``<title>``).
    cluster, edit, tiles
        Also load Leaflet.markercluster / Leaflet-Geoman / Leaflet.VectorGrid.
    panel_width
        Width (px) of a panel on the left: the data is framed to its right.

    Returns
    -------
    folium.Map
        The map, framed on ``bounds``.
    """
    minx, miny, maxx, maxy = bounds
    fmap = folium.Map(
        location=[(miny + maxy) / 2, (minx + maxx) / 2],
        tiles=None,
        prefer_canvas=False,
        control_scale=True,
        zoom_start=12,
    )
    fmap.default_js = folium_default_js(static_url)
    fmap.default_css = folium_default_css(static_url)
    if cluster:
        fmap.default_js = [*fmap.default_js, *marker_cluster_js(static_url)]
        fmap.default_css = [*fmap.default_css, *marker_cluster_css(static_url)]
    if tiles:
        fmap.default_js = [*fmap.default_js, *vector_grid_js(static_url)]
    if edit:
        base = f"{static_url.rstrip('/')}/planner"
        fmap.default_js = [
            *fmap.default_js,
            ("geoman", asset_url(base, GEOMAN, "dist/leaflet-geoman.min.js")),
        ]
        fmap.default_css = [
            *fmap.default_css,
            ("geoman_css", asset_url(base, GEOMAN, "dist/leaflet-geoman.css")),
        ]
    _base_layers(fmap, basemap, tianditu, lang)
    fmap.fit_bounds(
        [[miny, minx], [maxy, maxx]],
        padding_top_left=(panel_width + 10, 10),
        padding_bottom_right=(10, 10),
    )
    root: Any = fmap.get_root()
    root.header.add_child(
        folium.Element(
            f"<title>{html.escape(title)}</title>"
            f'<link rel="icon" href="{html.escape(static_url.rstrip("/"))}/img/favicon.svg">'
            "<style>.folium-map.leaflet-container{background:#f4f1ea}</style>"
        )
    )
    return fmap


def _base_layers(fmap: folium.Map, basemap: Basemap, key: str | None, lang: Lang) -> None:
    labels = _BASE_LABELS[lang]
    layers: list[tuple[str, Any]] = [
        ("none", folium.FeatureGroup(name=labels["none"], overlay=False, show=basemap == "none")),
        (
            "osm",
            folium.TileLayer(
                tiles=_OSM_TILES,
                attr='&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a>',
                name=labels["osm"],
                overlay=False,
                show=basemap == "osm",
                max_zoom=19,
            ),
        ),
    ]
    if key:
        layers.append(
            (
                "tianditu",
                folium.TileLayer(
                    tiles=_TIANDITU.format(s="{s}", layer="vec", key=key),
                    attr="&copy; 天地图 Tianditu (CGCS2000)",
                    name=labels["tianditu"],
                    overlay=False,
                    show=basemap == "tianditu",
                    subdomains="01234567",
                    max_zoom=18,
                ),
            )
        )
    # The layer shown first is added first, so Leaflet starts on it.
    layers.sort(key=lambda item: item[0] != basemap)
    for _, layer in layers:
        layer.add_to(fmap)
    if key:
        folium.TileLayer(
            tiles=_TIANDITU.format(s="{s}", layer="cva", key=key),
            attr="&copy; 天地图",
            name=labels["tianditu_labels"],
            overlay=True,
            show=basemap == "tianditu",
            subdomains="01234567",
            max_zoom=18,
        ).add_to(fmap)


def add_scripts(
    fmap: folium.Map, static_url: str, scripts: Sequence[str], css: Sequence[str] = ()
) -> None:
    """Load the pages' own scripts (deferred: they run after folium has built the map).

    Parameters
    ----------
    fmap
        The map.
    static_url
        Where ``maps/static`` is served.
    scripts, css
        File names in ``maps/static/planner/``.
    """
    base = f"{static_url.rstrip('/')}/planner"
    tags = [f'<link rel="stylesheet" href="{html.escape(base)}/{html.escape(c)}">' for c in css]
    tags += [f'<script defer src="{html.escape(base)}/{html.escape(s)}"></script>' for s in scripts]
    root: Any = fmap.get_root()
    root.header.add_child(folium.Element("".join(tags)))


def add_config(fmap: folium.Map, config: Mapping[str, Any]) -> None:
    """Embed the page's settings as ``window.GIS_GRID_PAGE`` (JSON, safe inside ``<script>``)."""
    payload = json.dumps({"map": fmap.get_name(), **config}, ensure_ascii=False, default=str)
    payload = payload.replace("</", "<\\/")
    root: Any = fmap.get_root()
    root.header.add_child(folium.Element(f"<script>window.GIS_GRID_PAGE = {payload};</script>"))


def add_geojson(
    fmap: folium.Map | folium.FeatureGroup,
    frame: gpd.GeoDataFrame,
    *,
    name: str,
    fields: Sequence[tuple[str, str]],
    style: Mapping[str, Any],
    show: bool = True,
    point_radius: float | None = None,
) -> folium.FeatureGroup:
    """Add a GeoDataFrame as one overlay with only the listed columns in the page.

    Parameters
    ----------
    fmap
        The map.
    frame
        Features in lon/lat.
    name
        Name in the layer control.
    fields
        ``(column, label)`` shown in the tooltip; no other column reaches the page.
    style
        Leaflet path options.
    show
        Whether the layer starts switched on.
    point_radius
        Draw points as circle markers of this radius.

    Returns
    -------
    folium.FeatureGroup
        The overlay.
    """
    present = [(c, a) for c, a in fields if c in frame.columns]
    cols = [c for c, _ in present]
    data = gpd.GeoDataFrame(frame[cols].copy(), geometry=frame.geometry.values, crs=frame.crs)
    data = data[data.geometry.notna() & ~data.geometry.is_empty]
    for col in cols:
        series = data[col]
        if pd.api.types.is_float_dtype(series):
            data[col] = series.round(2).astype(object).where(series.notna(), "")
        elif pd.api.types.is_integer_dtype(series) or pd.api.types.is_bool_dtype(series):
            data[col] = series.astype(object).where(series.notna(), "")
        else:
            data[col] = series.astype(object).where(series.notna(), "").astype(str)
    group = folium.FeatureGroup(name=f"{name}（{len(data)}）", show=show)
    frozen = dict(style)
    tooltip = (
        folium.GeoJsonTooltip(fields=cols, aliases=[a for _, a in present], sticky=True)
        if cols
        else None
    )
    kwargs: dict[str, Any] = {}
    if point_radius is not None:
        kwargs["marker"] = folium.CircleMarker(radius=point_radius, **frozen)
    if len(data):
        folium.GeoJson(
            data,
            style_function=lambda _f: frozen,
            tooltip=tooltip,
            control=False,
            smooth_factor=0.5,
            **kwargs,
        ).add_to(group)
    group.add_to(fmap)
    return group


def main() -> None:
    """Fetch :data:`PAGE_PACKAGES` into :data:`PAGE_VENDOR_DIR` (``python -m maps._page``)."""
    fetch_packages(PAGE_PACKAGES, PAGE_VENDOR_DIR)


if __name__ == "__main__":
    main()
