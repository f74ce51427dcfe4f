"""The overview map builder, on GeoDataFrames (no database, no server)."""

from __future__ import annotations

import json
import re

import geopandas as gpd
import pytest
from shapely.geometry import LineString, Point, box

from gis_grid.errors import CRSError, GeometryError
from maps.overview import LAYERS, build_overview_map, layer_bounds
from maps.vendor import STATIC_DIR

CRS = 4490


@pytest.fixture
def layers() -> dict[str, gpd.GeoDataFrame]:
    towns = gpd.GeoDataFrame(
        {
            "code": ["511703109", "511703110"],
            "name": ["赵家镇", "金垭镇"],
            "area_km2": [52.1, 48.3],
        },
        geometry=[box(107.40, 31.10, 107.50, 31.20), box(107.50, 31.10, 107.60, 31.20)],
        crs=CRS,
    )
    grids = gpd.GeoDataFrame(
        {"code": ["511703109201001"], "village": ["甲村"], "households": [120], "people": [356]},
        geometry=[box(107.40, 31.10, 107.45, 31.15)],
        crs=CRS,
    )
    households = gpd.GeoDataFrame(
        {
            "id": [1, 2],
            "village": ["甲村", "乙村"],
            "grid_code": ["511703109201001", None],
            "people": [3, 4],
            # Columns the page must never show, even if a caller passes them:
            "id_number": ["11010519491231002X", "110105194912310037"],
            "phone": ["13812341234", "13900001111"],
            "head_name": ["张三丰", "李四光"],
        },
        geometry=[Point(107.42, 31.12), Point(107.52, 31.12)],
        crs=CRS,
    )
    rivers = gpd.GeoDataFrame(
        {"name": ["州河"]}, geometry=[LineString([(107.4, 31.1), (107.6, 31.2)])], crs=CRS
    )
    return {"towns": towns, "grids": grids, "households": households, "rivers": rivers}


def _render(fmap) -> str:
    return fmap.get_root().render()


def _has(html: str, text: str) -> bool:
    """Whether ``text`` is in the page, verbatim or as folium's JSON \\u escapes."""
    return text in html or json.dumps(text)[1:-1] in html


def _at(html: str, text: str) -> int:
    return html.index(text) if text in html else html.index(json.dumps(text)[1:-1])


def test_assets_are_served_locally_and_exist(layers):
    html = _render(build_overview_map(layers, static_url="/static"))
    urls = re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', html)
    assert any(u.endswith("leaflet.js") for u in urls)
    for url in urls:
        assert url.startswith("/static/"), url
        assert (STATIC_DIR / url.removeprefix("/static/")).is_file(), url
    # The only remote URL is the optional OSM tile layer (and its attribution link).
    remote = set(re.findall(r"https?://[^\"'\s\\]+", html))
    assert remote <= {
        "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
        "https://www.openstreetmap.org/copyright",
    }, remote


def test_static_url_prefix_is_used(layers):
    html = _render(build_overview_map(layers, static_url="/platform/assets/"))
    assert '"/platform/assets/vendor/leaflet@1.9.4/dist/leaflet.js"' in html


def test_personal_columns_never_reach_the_page(layers):
    html = _render(build_overview_map(layers))
    for secret in ("11010519491231002X", "13812341234", "张三丰", "id_number", "phone"):
        assert not _has(html, secret)


def test_tooltips_and_layer_control_are_chinese(layers):
    html = _render(build_overview_map(layers))
    for label in (
        "镇（街道）（2）",
        "网格（1）",
        "住户（2）",
        "河流（1）",
        "无底图（离线）",
        "户数",
        "人数",
    ):
        assert _has(html, label), label
    assert "L.control.layers" in html


def test_no_basemap_by_default_and_osm_optional(layers):
    default = _render(build_overview_map(layers))
    osm_first = _render(build_overview_map(layers, basemap="osm"))
    assert "tile.openstreetmap.org" in default  # offered ...
    # ... but only added to the map when chosen: folium adds the shown base layer with addTo.
    assert _at(default, "无底图（离线）") < _at(default, "OpenStreetMap（需联网）")
    assert _at(osm_first, "OpenStreetMap（需联网）") < _at(osm_first, "无底图（离线）")


def test_fit_bounds_cover_all_layers(layers):
    assert layer_bounds(layers) == pytest.approx((107.40, 31.10, 107.60, 31.20))
    html = _render(build_overview_map(layers))
    assert re.search(r"fitBounds\(\s*\[\[31\.1, 107\.4\], \[31\.2, 107\.6\]\]", html)


def test_projected_input_is_drawn_in_lonlat(layers):
    projected = {name: frame.to_crs(4545) for name, frame in layers.items()}
    assert layer_bounds(projected) == pytest.approx((107.40, 31.10, 107.60, 31.20), abs=1e-6)


def test_household_clustering_uses_local_markercluster(layers):
    html = _render(build_overview_map(layers, cluster_households=True))
    assert "/static/vendor/leaflet.markercluster@1.5.3/dist/leaflet.markercluster.js" in html
    assert "cdnjs" not in html


def test_layer_without_crs_is_refused(layers):
    layers["grids"] = layers["grids"].set_crs(None, allow_override=True)
    with pytest.raises(CRSError, match="grids"):
        build_overview_map(layers)


def test_unknown_layer_is_refused(layers):
    layers["residents"] = layers["households"]
    with pytest.raises(KeyError, match="residents"):
        build_overview_map(layers)


def test_all_empty_is_refused():
    empty = gpd.GeoDataFrame({"name": []}, geometry=[], crs=CRS)
    with pytest.raises(GeometryError, match="empty"):
        build_overview_map({"towns": empty})


def test_missing_layers_are_simply_not_drawn(layers):
    html = _render(build_overview_map({"towns": layers["towns"]}))
    assert _has(html, "镇（街道）（2）")
    assert not _has(html, "住户")


def test_every_layer_has_a_style():
    assert {"towns", "villages", "grids", "households", "pollution", "hazards", "incidents"} <= set(
        LAYERS
    )
    for spec in LAYERS.values():
        assert spec.kind in {"polygon", "line", "point"}
        assert spec.fields


def _lines() -> dict[str, gpd.GeoDataFrame]:
    rivers = gpd.GeoDataFrame(
        {"code": ["R001", "R002"], "rank": [2, 4], "town": ["河市镇", None]},
        geometry=[
            LineString([(107.41, 31.11), (107.49, 31.19)]),
            LineString([(107.2, 31.3), (107.41, 31.11)]),  # runs on far beyond the towns
        ],
        crs=CRS,
    )
    streams = gpd.GeoDataFrame(
        {"code": ["S1"], "class": ["creek"], "rank": [2]},
        geometry=[LineString([(107.42, 31.12), (107.43, 31.14)])],
        crs=CRS,
    )
    roads = gpd.GeoDataFrame(
        {"code": ["L1", "L2"], "class": ["county", "village"], "rank": [1.0, 3.0]},  # float
        geometry=[
            LineString([(107.40, 31.15), (107.60, 31.15)]),
            LineString([(107.45, 31.12), (107.45, 31.18)]),
        ],
        crs=CRS,
    )
    return {"rivers": rivers, "streams": streams, "roads": roads}


def test_natural_lines_are_drawn_as_chinese_overlays_styled_by_rank(layers):
    lines = _lines()
    html = _render(build_overview_map({**layers, **lines}))
    for label in ("河流（2）", "溪流（DEM 提取）（1）", "道路（合成）（2）", "县道", "村道", "溪"):
        assert _has(html, label), label
    assert not _has(html, "county")  # class names are shown in Chinese
    # rivers thicker by rank: level 2 (weight 6) and level 4 (weight 4), in river blue
    river = LAYERS["rivers"].style["color"]
    river_weights = {(s["color"], s["weight"]) for s in _mapped_styles(html) if s["color"] == river}
    assert river_weights == {(river, 6), (river, 4)}
    # county roads orange and thick, village roads grey and thin (ranks given as floats)
    roads = {(s["color"], s["weight"]) for s in _mapped_styles(html) if s["color"] != river}
    assert ("#e6550d", 3.5) in roads and ("#969696", 1.2) in roads
    assert LAYERS["streams"].style["color"] == "#6baed6"


def _mapped_styles(html: str) -> list[dict]:
    """Every path style folium's per-feature ``*_styler`` functions return."""
    return [json.loads(m) for m in re.findall(r'return (\{"color"[^{}]*\});', html)]


def test_lines_do_not_widen_the_view_beyond_the_towns(layers):
    html = _render(build_overview_map({**layers, **_lines()}))
    # the towns span 107.4-107.6 E, 31.1-31.2 N; the river running to 107.2/31.3 is drawn ...
    assert re.search(r"fitBounds\(\s*\[\[31\.1, 107\.4\], \[31\.2, 107\.6\]\]", html)
    # ... but only lines: then they frame the map
    only_lines = _render(build_overview_map(_lines()))
    assert re.search(r"fitBounds\(\s*\[\[31\.11, 107\.2\], \[31\.3, 107\.6\]\]", only_lines)
