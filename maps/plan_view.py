"""A drawn proposal beside the current plan: the folium page a planner accepts a plan from.

The proposal's grids are filled by their deviation from the target (blue under, green
within the band, red over), with households, people, deviation and Polsby-Popper
compactness in the tooltip; the current grids are drawn over them as dark dashed outlines
(a layer of their own, to switch off), and a panel gives the plan's quality and, per
village, the grid counts before and after. Nothing here writes: the page shows a proposal
from :func:`gis_grid.plans.propose_plan` (or :func:`gis_grid.plans.draw_town`).
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

import folium
import geopandas as gpd
import pandas as pd

from gis_grid.crs import require_crs
from maps._page import Basemap, Lang, add_geojson, new_map
from maps.login import add_session
from maps.overview import LAYERS

__all__ = ["LABELS", "build_plan_map", "deviation_colour"]

LABELS: dict[str, dict[str, str]] = {
    "zh": {
        "title": "网格划分方案",
        "proposal": "提议网格（按偏差着色）",
        "current": "现行网格",
        "villages": "村（社区）",
        "rivers": "河流",
        "streams": "溪流（DEM 提取）",
        "roads": "道路",
        "code": "网格编码",
        "village": "所属村",
        "households": "户数",
        "people": "人数",
        "load": "负荷",
        "target": "目标",
        "deviation": "偏差(%)",
        "compactness": "紧凑度(PP)",
        "crossings": "跨越河溪",
        "summary": "方案质量",
        "n_grids": "网格数",
        "max_dev": "最大偏差",
        "pp_mean": "平均紧凑度",
        "natural": "沿自然界线比例",
        "valid": "覆盖有效",
        "in_band": "在区间内",
        "by_households": "按户数",
        "by_people": "按人数",
        "per_village": "各村网格数（现行 → 提议）",
        "under": "低于区间",
        "within": "区间内",
        "over": "高于区间",
        "yes": "是",
        "no": "否",
        "note": "未写入数据库：采纳请用规划地图或 POST /api/v1/towns/{code}/plans/apply",
    },
    "en": {
        "title": "Grid plan proposal",
        "proposal": "Proposed grids (by deviation)",
        "current": "Current grids",
        "villages": "Villages",
        "rivers": "Rivers",
        "streams": "Streams (from DEM)",
        "roads": "Roads",
        "code": "Grid code",
        "village": "Village",
        "households": "Households",
        "people": "People",
        "load": "Load",
        "target": "Target",
        "deviation": "Deviation (%)",
        "compactness": "Compactness (PP)",
        "crossings": "Stream crossings",
        "summary": "Plan quality",
        "n_grids": "Grids",
        "max_dev": "Max deviation",
        "pp_mean": "Mean compactness",
        "natural": "Boundary on natural lines",
        "valid": "Valid coverage",
        "in_band": "In band",
        "by_households": "by households",
        "by_people": "by people",
        "per_village": "Grids per village (current → proposed)",
        "under": "below band",
        "within": "in band",
        "over": "above band",
        "yes": "yes",
        "no": "no",
        "note": (
            "Not stored: accept it from the planner map or POST /api/v1/towns/{code}/plans/apply"
        ),
    },
}


def deviation_colour(dev_pct: float, tolerance_pct: float) -> str:
    """Fill colour of a grid by its deviation from the target (per cent).

    Examples
    --------
    >>> deviation_colour(0.0, 10.0)
    '#41ab5d'
    >>> deviation_colour(-25.0, 10.0)
    '#2166ac'
    """
    if abs(dev_pct) <= tolerance_pct / 2:
        return "#41ab5d"
    if abs(dev_pct) <= tolerance_pct:
        return "#a1d99b"
    if dev_pct < 0:
        return "#2166ac" if dev_pct < -2 * tolerance_pct else "#92c5de"
    return "#b2182b" if dev_pct > 2 * tolerance_pct else "#f4a582"


def _lonlat(frame: gpd.GeoDataFrame, name: str) -> gpd.GeoDataFrame:
    if frame.crs is None:
        require_crs(None, source=name)
    return frame if frame.crs.is_geographic else frame.to_crs(4490)


def build_plan_map(
    proposal: gpd.GeoDataFrame,
    current: gpd.GeoDataFrame,
    *,
    town: Mapping[str, str],
    summary: Mapping[str, Any],
    by: str,
    tolerance: float,
    villages: gpd.GeoDataFrame | None = None,
    lines: Mapping[str, gpd.GeoDataFrame] | None = None,
    lang: Lang = "zh",
    basemap: Basemap = "none",
    tianditu: str | None = None,
    static_url: str = "/static",
) -> folium.Map:
    """Build the page of a drawn proposal beside the current grids.

    Parameters
    ----------
    proposal
        Drawn grids: ``grid_code``, ``vill_code``, ``households``, ``people``, ``load``,
        ``target``, ``dev_pct``, ``in_band`` and ``polsby_popper`` (and ``crossings``).
    current
        Current grids: ``code``, ``village``, ``village_code``, ``households``, ``people``.
    town
        ``code`` and ``name``.
    summary
        The plan's quality summary (``n_grids``, ``max_dev_pct``, ``pp_mean``,
        ``natural_share``, ``valid``, ``in_band``).
    by, tolerance
        The load balanced and the band's half-width (0.1 = ±10 %).
    villages
        Village outlines (optional).
    lines
        Natural lines to show under the outlines (``rivers``, ``streams``, ``roads``).
    lang, basemap, tianditu, static_url
        As for :func:`maps.planner.build_planner_map`.

    Returns
    -------
    folium.Map
        The page.
    """
    labels = LABELS[lang]
    proposal = _lonlat(proposal, "proposal")
    current = _lonlat(current, "current grids")
    minx, miny, maxx, maxy = proposal.total_bounds
    fmap = new_map(
        (float(minx), float(miny), float(maxx), float(maxy)),
        static_url=static_url,
        basemap=basemap,
        tianditu=tianditu,
        lang=lang,
        title=f"{town['name']} · {labels['title']}",
        panel_width=330,
    )
    tol_pct = tolerance * 100
    data = proposal.copy()
    data["dev_pct"] = pd.to_numeric(data["dev_pct"]).round(1)
    data["fill"] = [deviation_colour(float(d), tol_pct) for d in data["dev_pct"]]
    fields = [
        ("grid_code", labels["code"]),
        ("households", labels["households"]),
        ("people", labels["people"]),
        ("target", labels["target"]),
        ("dev_pct", labels["deviation"]),
        ("polsby_popper", labels["compactness"]),
        ("crossings", labels["crossings"]),
    ]
    cols = [c for c, _ in fields if c in data.columns]
    shown = gpd.GeoDataFrame(
        data[[*cols, "fill"]].copy(), geometry=data.geometry.values, crs=data.crs
    )
    for col in ("target", "polsby_popper"):
        if col in shown.columns:
            shown[col] = pd.to_numeric(shown[col]).round(2)
    group = folium.FeatureGroup(name=f"{labels['proposal']}（{len(shown)}）", show=True)
    folium.GeoJson(
        shown,
        style_function=lambda f: {
            "color": "#ffffff",
            "weight": 1.5,
            "fillColor": f["properties"]["fill"],
            "fillOpacity": 0.7,
        },
        highlight_function=lambda _f: {"weight": 3, "color": "#000000"},
        tooltip=folium.GeoJsonTooltip(
            fields=cols, aliases=[a for c, a in fields if c in cols], sticky=True
        ),
        control=False,
    ).add_to(group)
    group.add_to(fmap)
    for name, frame in (lines or {}).items():
        if name in LAYERS and len(frame):
            add_geojson(
                fmap,
                _lonlat(frame, name),
                name=labels.get(name, LAYERS[name].label),
                fields=(),
                style={**LAYERS[name].style, "interactive": False},
                show=name != "roads",
            )
    if villages is not None and len(villages):
        add_geojson(
            fmap,
            _lonlat(villages, "villages"),
            name=labels["villages"],
            fields=(),
            style={"color": "#d95f0e", "weight": 2.5, "fill": False, "interactive": False},
        )
    add_geojson(
        fmap,
        current,
        name=labels["current"],
        fields=(
            ("code", labels["code"]),
            ("village", labels["village"]),
            ("households", labels["households"]),
            ("people", labels["people"]),
        ),
        style={"color": "#252525", "weight": 1.5, "dashArray": "5 4", "fill": False},
        show=True,
    )
    # Collapsed: open, it would hide the north-east of the town; the panel is the legend.
    folium.LayerControl(collapsed=True, position="topright").add_to(fmap)
    _panel(fmap, proposal, current, town=town, summary=summary, by=by, tol_pct=tol_pct, lang=lang)
    add_session(fmap, static_url=static_url, lang=lang)
    return fmap


def _panel(
    fmap: folium.Map,
    proposal: gpd.GeoDataFrame,
    current: gpd.GeoDataFrame,
    *,
    town: Mapping[str, str],
    summary: Mapping[str, Any],
    by: str,
    tol_pct: float,
    lang: Lang,
) -> None:
    labels = LABELS[lang]
    esc = html.escape
    after = proposal.groupby(proposal["vill_code"].astype(str)).size()
    before = current.groupby(current["village_code"].astype(str)).size()
    names = dict(zip(current["village_code"].astype(str), current["village"], strict=False))
    rows = "".join(
        f"<tr><td>{esc(str(names.get(code, code)))}</td><td>{int(before.get(code, 0))}"
        f" → {int(after.get(code, 0))}</td></tr>"
        for code in sorted(set(after.index) | set(before.index))
    )
    yes, no = labels["yes"], labels["no"]
    basis = labels["by_people"] if by == "people" else labels["by_households"]
    legend = "".join(
        f'<span class="gg-swatch" style="background:{c}"></span>{esc(t)} '
        for c, t in (
            ("#2166ac", f"< -{2 * tol_pct:g}%"),
            ("#92c5de", labels["under"]),
            ("#41ab5d", labels["within"]),
            ("#f4a582", labels["over"]),
            ("#b2182b", f"> +{2 * tol_pct:g}%"),
        )
    )
    box = (
        '<div id="gg-plan-panel" class="gg-panel">'
        f"<b>{esc(town['name'])} · {esc(labels['title'])}</b>"
        f"<div>{esc(basis)} · ±{tol_pct:g}%</div>"
        f"<div>{legend}</div>"
        f"<table><tr><th colspan=2>{esc(labels['summary'])}</th></tr>"
        f"<tr><td>{esc(labels['n_grids'])}</td><td>{int(summary.get('n_grids', 0))}</td></tr>"
        f"<tr><td>{esc(labels['in_band'])}</td><td>{int(summary.get('in_band', 0))}</td></tr>"
        f"<tr><td>{esc(labels['max_dev'])}</td>"
        f"<td>{float(summary.get('max_dev_pct', 0)):.1f}%</td></tr>"
        f"<tr><td>{esc(labels['pp_mean'])}</td>"
        f"<td>{float(summary.get('pp_mean', 0)):.2f}</td></tr>"
        f"<tr><td>{esc(labels['natural'])}</td>"
        f"<td>{100 * float(summary.get('natural_share', 0)):.0f}%</td></tr>"
        f"<tr><td>{esc(labels['valid'])}</td>"
        f"<td>{yes if summary.get('valid') else no}</td></tr>"
        f"<tr><th colspan=2>{esc(labels['per_village'])}</th></tr>{rows}</table>"
        f"<small>{esc(labels['note'])}</small></div>"
    )
    style = (
        "<style>.gg-panel{position:absolute;top:80px;left:10px;z-index:1000;"
        "background:rgba(255,255,255,.94);padding:8px 10px;border-radius:4px;"
        "box-shadow:0 1px 4px rgba(0,0,0,.3);font:12px/1.4 'Noto Sans CJK SC','Microsoft YaHei',"
        "sans-serif;max-height:calc(100% - 130px);overflow:auto;width:310px}"
        ".gg-panel table{border-collapse:collapse;margin:4px 0}"
        ".gg-panel td,.gg-panel th{padding:1px 6px;text-align:left}"
        ".gg-swatch{display:inline-block;width:12px;height:12px;margin:0 2px 0 6px;"
        "vertical-align:middle;border:1px solid #666}</style>"
    )
    root: Any = fmap.get_root()
    root.header.add_child(folium.Element(style))
    root.html.add_child(folium.Element(box))
