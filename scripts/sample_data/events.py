"""Pollution discharge points, hazards, task types and incidents (all synthetic, seeded).

Points are drawn from weight rasters of the town: livestock farms on flat land off the roads
and away from the seat, sewage outlets on streams and rivers below settlements (or by the
roads where there is no DEM), small factories on the roads; landslide hazards on steep slopes
near houses, flood points on valley floors by streams and rivers, fire hazards on wooded
slopes far from roads, building-safety hazards at houses.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray
from scipy import ndimage

from scripts.sample_data import AS_OF, WORK_EPSG
from scripts.sample_data.settle import Town

__all__ = ["TASK_TYPES", "build_hazards", "build_incidents", "build_pollution", "task_types"]

#: (code, name, state, applied, decided, sla_days, incident weight); states per article 10.
TASK_TYPES = (
    ("T01", "矛盾纠纷排查调处", "approved", "2020-11-02", "2020-12-15", 7, 18),
    ("T02", "治安隐患巡查", "approved", "2020-11-02", "2020-12-15", 5, 10),
    ("T03", "排污点及污染纠纷巡查", "approved", "2020-11-02", "2020-12-15", 5, 12),
    ("T04", "环境安全隐患上报", "approved", "2020-11-02", "2020-12-15", 3, 6),
    ("T05", "违法建设巡查", "approved", "2020-11-02", "2020-12-15", 10, 8),
    ("T06", "安全生产隐患排查", "approved", "2020-11-02", "2020-12-15", 5, 8),
    ("T07", "地质灾害隐患巡查", "approved", "2021-03-10", "2021-04-20", 2, 6),
    ("T08", "防汛积水点巡查", "approved", "2021-03-10", "2021-04-20", 2, 5),
    ("T09", "消防安全隐患巡查", "approved", "2021-03-10", "2021-04-20", 3, 5),
    ("T10", "流入人员登记", "approved", "2020-11-02", "2020-12-15", 3, 6),
    ("T11", "重点地区返乡人员登记", "approved", "2020-11-02", "2020-12-15", 1, 2),
    ("T12", "社情民意收集", "approved", "2020-11-02", "2020-12-15", 15, 10),
    ("T13", "低保及困难群众帮办", "approved", "2022-05-06", "2022-06-30", 15, 4),
    ("T14", "秸秆禁烧巡查", "approved", "2023-02-20", "2023-03-31", 2, 0),
    ("T15", "防溺水宣传巡查", "pending", "2026-03-02", "", 0, 0),
    ("T16", "燃气安全入户排查", "pending", "2026-03-16", "", 0, 0),
    ("T17", "商业保险推广登记", "rejected", "2024-07-08", "2024-08-12", 0, 0),
    ("T18", "农村集体资产清查代办", "rejected", "2025-04-14", "2025-05-29", 0, 0),
)

STATUSES = ("reported", "accepted", "dispatched", "handled", "feedback", "closed", "evaluated")

_POLLUTION = {
    "livestock": ("生猪养殖场", "家禽养殖场", "肉牛养殖场"),
    "sewage": ("生活污水排口", "场镇污水排口"),
    "factory": ("页岩砖厂", "石材加工厂", "白酒作坊", "豆制品作坊", "汽修点"),
}
_HAZARD = {
    "landslide": "滑坡隐患点",
    "flood": "积水内涝点",
    "fire": "森林火灾隐患点",
    "building": "危房隐患",
}


def task_types() -> pd.DataFrame:
    """The task-type registry (article 10: town applies, district centre and government approve).

    Returns
    -------
    pandas.DataFrame
        ``code, name, state, applied, decided, decided_by, sla_days``.
    """
    df = pd.DataFrame(
        [t[:6] for t in TASK_TYPES],
        columns=["code", "name", "state", "applied", "decided", "sla_days"],
    )
    df["decided_by"] = np.where(df["state"] == "pending", "", "区人民政府")
    df.loc[df["state"] == "rejected", "decided_by"] = "区综治中心"
    return df[["code", "name", "state", "applied", "decided", "decided_by", "sla_days"]]


def _sample(
    rng: np.random.Generator, town: Town, weight: NDArray[np.float64], n: int
) -> NDArray[np.float64]:
    """``n`` points from a cell-weight raster, jittered inside the cell and the town."""
    f = town.frame
    cx, cy = f.centres()
    inside = f.mask(town.polygon, all_touched=False)
    w = np.where(inside, np.maximum(weight, 0), 0)
    cell = rng.choice(f.size, size=n, replace=False, p=w / w.sum())
    return np.column_stack([cx[cell], cy[cell]]) + rng.uniform(-f.res / 3, f.res / 3, (n, 2))


def _villages_of(town: Town, xy: NDArray[np.float64]) -> tuple[NDArray, NDArray]:
    """Village code and short name for each point."""
    v = town.villages
    pts = shapely.points(xy)
    pi, vi = shapely.STRtree(v.geometry.to_numpy()).query(pts, predicate="intersects")
    first = pd.Series(vi, index=pi).groupby(level=0).min().reindex(range(len(xy)))
    idx = first.fillna(0).astype(int).to_numpy()
    short = v["vill_name"].str.replace(r"(社区居民委员会|村民委员会)$", "", regex=True)
    suffix = np.where(v["kind"] == "community", "社区", "村")
    return v["vill_code"].to_numpy()[idx], (short + suffix).to_numpy()[idx]


def build_pollution(rng: np.random.Generator, town: Town) -> gpd.GeoDataFrame:
    """Pollution discharge points: about 0.35 per km² (tens per town)."""
    n = round(town.polygon.area / 1e6 * 0.35)
    road, suit = town.road_dist, town.suit
    near_water = (
        np.exp(-town.stream_dist / 60) + np.exp(-town.river_dist / 80)
        if town.has_dem
        else np.exp(-road / 40)
    )
    kinds = rng.choice(["livestock", "sewage", "factory"], size=n, p=[0.45, 0.3, 0.25])
    weights = {
        "livestock": suit * ((road > 60) & (road < 500)),
        "sewage": near_water * (0.2 + suit),
        "factory": (road < 50) * (0.3 + suit),
    }
    xy = np.zeros((n, 2))
    for kind, w in weights.items():
        sel = kinds == kind
        if sel.any():
            xy[sel] = _sample(rng, town, w, int(sel.sum()))
    vill, vname = _villages_of(town, xy)
    label = np.array([rng.choice(_POLLUTION[k]) for k in kinds])
    return gpd.GeoDataFrame(
        {"kind": kinds, "name": np.char.add(vname.astype(str), label), "vill_code": vill},
        geometry=shapely.points(xy),
        crs=WORK_EPSG,
    )


def build_hazards(rng: np.random.Generator, town: Town, houses: NDArray) -> gpd.GeoDataFrame:
    """Hazards: about 0.4 per km² of landslide, flood, fire and building-safety points."""
    n = round(town.polygon.area / 1e6 * 0.4)
    f = town.frame
    density = np.bincount(f.cell_of(houses[:, 0], houses[:, 1]), minlength=f.size).astype(float)
    near_houses = ndimage.gaussian_filter(density.reshape(f.shape), 3).ravel()
    if town.has_dem:
        steep = np.clip((town.slope - 15) / 15, 0, 1) * near_houses
        low = np.exp(-town.stream_dist / 50) * (town.suit > 0.4) + np.exp(-town.river_dist / 100)
        wild = np.clip(town.slope / 25, 0, 1) * (town.road_dist > 300)
    else:
        rough = 1 - town.suit
        steep = rough**2 * np.exp(-town.road_dist / 80) * (0.2 + near_houses)
        low = town.suit * np.exp(-town.road_dist / 60)
        wild = rough * (town.road_dist > 300)
    kinds = rng.choice(list(_HAZARD), size=n, p=[0.35, 0.2, 0.15, 0.3])
    xy = np.zeros((n, 2))
    for kind, w in {"landslide": steep, "flood": low, "fire": wild}.items():
        sel = kinds == kind
        if sel.any():
            xy[sel] = _sample(rng, town, w, int(sel.sum()))
    sel = kinds == "building"
    xy[sel] = houses[rng.choice(len(houses), int(sel.sum()), replace=False)]
    vill, vname = _villages_of(town, xy)
    level = rng.choice([1, 2, 3, 4], size=n, p=[0.55, 0.3, 0.12, 0.03])
    names = np.char.add(vname.astype(str), np.array([_HAZARD[k] for k in kinds]))
    return gpd.GeoDataFrame(
        {"kind": kinds, "name": names, "level": level, "vill_code": vill},
        geometry=shapely.points(xy),
        crs=WORK_EPSG,
    )


def build_incidents(
    rng: np.random.Generator,
    town: Town,
    houses: NDArray,
    *,
    pollution: gpd.GeoDataFrame,
    hazards: gpd.GeoDataFrame,
    n: int,
) -> gpd.GeoDataFrame:
    """``n`` incidents reported 2025-01-01 .. AS_OF, with statuses as on AS_OF.

    Pollution incidents happen at pollution points, hazard incidents at hazards of the matching
    kind, the rest at houses. Older incidents are further along the 7-step workflow; the
    deadline runs from dispatch (empty before dispatch).
    """
    types = [t for t in TASK_TYPES if t[2] == "approved" and t[6] > 0]
    w = np.array([t[6] for t in types], dtype=float)
    ti = rng.choice(len(types), size=n, p=w / w.sum())
    code = np.array([t[0] for t in types])[ti]
    at = {
        "T03": pollution,
        "T04": pollution,
        "T07": hazards[hazards["kind"] == "landslide"],
        "T08": hazards[hazards["kind"] == "flood"],
        "T09": hazards[hazards["kind"] == "fire"],
    }
    xy = houses[rng.integers(0, len(houses), n)].astype(float)
    for c, layer in at.items():
        sel = np.flatnonzero(code == c)
        if sel.size and len(layer):
            pts = shapely.get_coordinates(layer.geometry.to_numpy())
            xy[sel] = pts[rng.integers(0, len(pts), sel.size)]
    xy += rng.normal(0, 15, (n, 2))
    xy = np.where(
        shapely.contains_xy(town.polygon, xy[:, 0], xy[:, 1])[:, None],
        xy,
        houses[rng.integers(0, len(houses), n)],
    )

    start = np.datetime64("2025-01-01T00:00")
    end = np.datetime64(f"{AS_OF.isoformat()}T00:00")
    span = int((end - start) / np.timedelta64(1, "m"))
    day = np.sort(rng.integers(0, span // 1440, n))
    reported = start + (day * 1440 + rng.integers(7 * 60, 21 * 60, n)).astype("timedelta64[m]")
    age = (end - reported) / np.timedelta64(1, "D")
    # Probability of each final status by age: old ones are mostly closed/evaluated.
    p_old = [0.0, 0.0, 0.02, 0.03, 0.05, 0.3, 0.6]
    p_mid = [0.02, 0.05, 0.2, 0.25, 0.2, 0.2, 0.08]
    p_new = [0.3, 0.3, 0.3, 0.1, 0.0, 0.0, 0.0]
    probs = np.where(age[:, None] > 30, p_old, np.where(age[:, None] > 5, p_mid, p_new))
    u = rng.random(n)[:, None]
    step = np.minimum((u > np.cumsum(probs, axis=1)).sum(axis=1), 6)
    sla = np.array([t[5] for t in types])[ti]
    dispatched = reported + rng.integers(60, 2 * 1440, n).astype("timedelta64[m]")
    deadline = dispatched + (sla * 1440).astype("timedelta64[m]")
    fmt = lambda a: np.datetime_as_string(a, unit="s")  # noqa: E731
    has_dispatch = step >= 2
    vill, vname = _villages_of(town, xy)
    names = {t[0]: t[1] for t in types}
    title = np.char.add(vname.astype(str), np.array([names[c] for c in code]))
    return gpd.GeoDataFrame(
        {
            "type_code": code,
            "title": title,
            "status": np.array(STATUSES)[step],
            "reported": fmt(reported),
            "dispatched": np.where(has_dispatch, fmt(dispatched), ""),
            "deadline": np.where(has_dispatch, fmt(deadline), ""),
            "vill_code": vill,
        },
        geometry=shapely.points(xy),
        crs=WORK_EPSG,
    )
