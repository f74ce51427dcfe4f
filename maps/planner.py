"""The planner's map: grids coloured by load, edited in the browser through the service.

The page (folium) draws the villages and the natural lines (rivers, streams, roads) that a
boundary should follow; the grids themselves, the households and every edit go through the
service's API from ``maps/static/planner/planner.js`` (loads with versions and ETags, members
masked as the API masks them). Editing: move a vertex or a shared edge (Leaflet-Geoman, snapping
to the neighbours), split a grid with a drawn line, merge two neighbours, carve a new grid out
of one; each change is first sent with ``?dry_run=true`` and the new loads of every affected
grid are shown; saving sends ``If-Match``; a refusal (412/409/422) is drawn on the map at the
lon/lat the service names. "Propose" draws a balanced plan for a village
(``POST /villages/{code}/plans``) shown beside the current grids, to accept or discard.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import folium
import geopandas as gpd

from maps._page import Basemap, Lang, add_config, add_geojson, add_scripts, new_map
from maps.login import add_session
from maps.overview import LAYERS

__all__ = ["LABELS", "NATURAL_LINES", "build_planner_map", "parse_band"]

By = Literal["households", "people"]

#: Natural lines drawn under the grids (bottom to top).
NATURAL_LINES: tuple[str, ...] = ("streams", "rivers", "roads")

LABELS: dict[str, dict[str, str]] = {
    "zh": {
        "title": "网格规划",
        "villages": "村（社区）",
        "streams": "溪流（DEM 提取）",
        "rivers": "河流",
        "roads": "道路",
        "households": "住户",
        "grids": "网格（按负荷着色）",
        "proposal": "提议方案",
        "preview": "预览",
        "code": "网格编码",
        "village": "所属村",
        "member": "网格员",
        "households_n": "户数",
        "people_n": "人数",
        "load": "负荷",
        "band": "目标区间",
        "by_households": "户/网格员",
        "by_people": "人/网格员",
        "below": "低于区间",
        "within": "区间内",
        "above": "高于区间",
        "no_member": "无网格员",
        "user": "用户名",
        "password": "密码",
        "login": "登录",
        "logged_in": "已登录",
        "login_first": "修改前请先登录（用户名、密码）",
        "edit": "移动顶点/边",
        "split": "画线切分",
        "merge": "合并两格",
        "draw": "画新网格",
        "propose": "生成提议",
        "read_only": "只读：您的角色不能修改网格",
        "save": "保存",
        "cancel": "取消",
        "accept": "采纳",
        "discard": "放弃",
        "pick_grid": "请先点击一个网格",
        "pick_two": "请依次点击两个相邻网格",
        "draw_line": "在网格上画一条切分线（两端在网格外），双击结束",
        "draw_polygon": "在一个网格内画出新网格，点击首点闭合",
        "dry_run": "预演结果（未保存）",
        "saved": "已保存",
        "change": "变化",
        "deviation": "偏差",
        "compactness": "紧凑度",
        "error": "未能保存",
        "stale": "该网格已被他人修改，请刷新后重做",
        "loading": "加载中…",
        "proposal_for": "提议：",
        "target": "目标",
        "in_band": "在区间内",
        "legend": "图例",
        "village_pick": "选择村",
        "redrawn": "改边",
        "added": "新增",
        "retired": "撤销",
        "noded": "加节点",
        "renamed": "改名",
    },
    "en": {
        "title": "Grid planning",
        "villages": "Villages",
        "streams": "Streams (from DEM)",
        "rivers": "Rivers",
        "roads": "Roads",
        "households": "Households",
        "grids": "Grids (coloured by load)",
        "proposal": "Proposal",
        "preview": "Preview",
        "code": "Grid code",
        "village": "Village",
        "member": "Member",
        "households_n": "Households",
        "people_n": "People",
        "load": "Load",
        "band": "Target band",
        "by_households": "households per member",
        "by_people": "people per member",
        "below": "below band",
        "within": "in band",
        "above": "above band",
        "no_member": "no member",
        "user": "User",
        "password": "Password",
        "login": "Log in",
        "logged_in": "Logged in",
        "login_first": "Log in (user name, password) before changing anything",
        "edit": "Move vertex/edge",
        "split": "Split with a line",
        "merge": "Merge two",
        "draw": "Draw new grid",
        "propose": "Propose",
        "read_only": "Read only: your role cannot edit grids",
        "save": "Save",
        "cancel": "Cancel",
        "accept": "Accept",
        "discard": "Discard",
        "pick_grid": "Click a grid first",
        "pick_two": "Click two neighbouring grids",
        "draw_line": "Draw a line across the grid (both ends outside); double-click to finish",
        "draw_polygon": "Draw the new grid inside a grid; click the first vertex to close",
        "dry_run": "Dry run (not saved)",
        "saved": "Saved",
        "change": "Change",
        "deviation": "Deviation",
        "compactness": "Compactness",
        "error": "Not saved",
        "stale": "Someone changed this grid: reload and redo",
        "loading": "Loading…",
        "proposal_for": "Proposal: ",
        "target": "Target",
        "in_band": "in band",
        "legend": "Legend",
        "village_pick": "Village",
        "redrawn": "redrawn",
        "added": "added",
        "retired": "retired",
        "noded": "noded",
        "renamed": "renamed",
    },
}


def parse_band(text: str) -> tuple[float, float]:
    """Parse a load band ``"low-high"`` (e.g. ``"200-300"``).

    Raises
    ------
    ValueError
        Unless both are finite numbers with ``0 < low <= high``; the message says which.

    Examples
    --------
    >>> parse_band("200-300")
    (200.0, 300.0)
    """
    parts = text.split("-")
    if len(parts) != 2:
        msg = f"band: {text!r} is not 'low-high', e.g. band=200-300"
        raise ValueError(msg)
    try:
        low, high = float(parts[0]), float(parts[1])
    except ValueError:
        msg = f"band: {text!r}: low and high must be numbers, e.g. band=200-300"
        raise ValueError(msg) from None
    if not (math.isfinite(low) and math.isfinite(high)) or low <= 0 or high < low:
        msg = f"band: {text!r}: need 0 < low <= high, e.g. band=200-300"
        raise ValueError(msg)
    return low, high


def build_planner_map(
    layers: Mapping[str, gpd.GeoDataFrame],
    *,
    town: Mapping[str, str],
    bounds: tuple[float, float, float, float],
    band: tuple[float, float],
    by: By = "households",
    lang: Lang = "zh",
    basemap: Basemap = "none",
    tianditu: str | None = None,
    static_url: str = "/static",
    api_url: str = "/api/v1",
    grids: Sequence[str] | None = None,
    editable: bool = True,
) -> folium.Map:
    """Build the planner's page for one town.

    Parameters
    ----------
    layers
        ``villages`` and natural lines (``rivers``, ``streams``, ``roads``), in lon/lat;
        missing ones are not drawn. Grids and households are loaded by the page from the API.
    town
        ``code`` and ``name`` of the town.
    bounds
        Lon/lat box the map opens on.
    band
        Target load per member ``(low, high)``.
    by
        Load measured in ``households`` or ``people``.
    lang
        ``zh`` (default) or ``en``.
    basemap, tianditu
        Base layer shown first, and the Tianditu key (``None``: not offered).
    static_url, api_url
        Where the service serves ``maps/static`` and its API.
    grids
        The only grids the page may load (a member's); ``None``: every grid of the town.
    editable
        Whether the user may edit grids: without it the editing and proposal controls are
        hidden and the page says it is read only (the service refuses such writes anyway).

    Returns
    -------
    folium.Map
        The page; ``.get_root().render()`` is its HTML.
    """
    labels = LABELS[lang]
    title = f"{town['name']} · {labels['title']}"
    fmap = new_map(
        bounds,
        static_url=static_url,
        basemap=basemap,
        tianditu=tianditu,
        lang=lang,
        title=title,
        cluster=True,
        edit=True,
    )
    villages = layers.get("villages")
    if villages is not None:
        add_geojson(
            fmap,
            villages,
            name=labels["villages"],
            fields=(("name", labels["village"]), ("code", "code")),
            style={"color": "#d95f0e", "weight": 2.5, "fill": False, "interactive": False},
        )
    for name in NATURAL_LINES:
        frame = layers.get(name)
        if frame is None or not len(frame):
            continue
        spec = LAYERS[name]
        add_geojson(
            fmap,
            frame,
            name=labels[name],
            fields=(("name", labels[name]),),
            style={**spec.style, "interactive": False},
        )
    control = folium.LayerControl(collapsed=True, position="topright")
    control.add_to(fmap)
    config: dict[str, Any] = {
        "page": "planner",
        "api": api_url.rstrip("/"),
        "town": {"code": town["code"], "name": town["name"]},
        "band": list(band),
        "by": by,
        "lang": lang,
        "labels": labels,
        "layerControl": control.get_name(),
        "grids": None if grids is None else list(grids),
        "editable": editable,
        "villages": (
            []
            if villages is None
            else [
                {"code": str(c), "name": str(n)}
                for c, n in zip(villages["code"], villages["name"], strict=True)
            ]
        ),
    }
    add_config(fmap, config)
    add_scripts(fmap, static_url, ["api.js", "common.js", "planner.js"], ["planner.css"])
    add_session(fmap, static_url=static_url, api_url=api_url, lang=lang, with_api=False)
    return fmap
