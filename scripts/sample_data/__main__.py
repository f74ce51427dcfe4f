"""Command line: ``python -m scripts.sample_data [--shared DIR] [--out DIR] [--seed N]``.

Writes the sample layers of Zhaojia Town and the DEM town into ``--out`` and prints a summary
(row counts, people, density against the census). See ``data/shapefiles/README.md``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from scripts.sample_data import DEFAULT_SEED, SOURCE_TAG, TARGET_DENSITY, WORK_EPSG
from scripts.sample_data.events import (
    build_hazards,
    build_incidents,
    build_pollution,
    task_types,
)
from scripts.sample_data.grids import build_grids
from scripts.sample_data.output import write_csv, write_layer
from scripts.sample_data.people import build_members, build_residents
from scripts.sample_data.settle import STREAM_KM2, Town, build_town
from scripts.sample_data.sources import ZHAOJIA, Sources, choose_dem_town, load_sources

ROOT = Path(__file__).resolve().parents[2]
INCIDENTS_TOTAL = 320
_SHORT = r"(社区居民委员会|村民委员会)$"


def _number_households(town: Town) -> gpd.GeoDataFrame:
    """Household ids and addresses: groups (组) are angular sectors around the village centre."""
    hh = town.households.copy()
    v = town.villages.set_index("vill_code")
    sx = hh["vill_code"].map(v["seed_x"]).to_numpy()
    sy = hh["vill_code"].map(v["seed_y"]).to_numpy()
    hh["angle"] = np.arctan2(hh["y"] - sy, hh["x"] - sx)
    hh["dist"] = np.hypot(hh["x"] - sx, hh["y"] - sy)
    count = hh.groupby("vill_code")["x"].transform("size")
    n_groups = np.maximum(3, np.round(count / 70)).astype(int)
    pct = hh.groupby("vill_code")["angle"].rank(method="first", pct=True).to_numpy()
    hh["group"] = np.minimum(np.floor(pct * n_groups).astype(int) + 1, n_groups)
    hh["number"] = hh.groupby(["vill_code", "group"])["dist"].rank(method="first").astype(int)
    hh = hh.sort_values(["vill_code", "group", "number"], ignore_index=True)
    seq = hh.groupby("vill_code").cumcount() + 1
    hh["hh_id"] = hh["vill_code"] + seq.map("{:04d}".format)
    short = v["vill_name"].str.replace(_SHORT, "", regex=True) + np.where(
        v["kind"] == "community", "社区", "村"
    )
    hh["address"] = (
        town.name
        + hh["vill_code"].map(short)
        + hh["group"].astype(str)
        + "组"
        + hh["number"].astype(str)
        + "号"
    )
    return gpd.GeoDataFrame(
        hh[["hh_id", "vill_code", "people", "address", "grid_code"]],
        geometry=gpd.points_from_xy(hh["x"], hh["y"]),
        crs=WORK_EPSG,
    )


def _label(df: pd.DataFrame, town: str | None, source: str, synthetic: str = "Y") -> pd.DataFrame:
    out = df.copy()
    if town is not None:
        out["town_code"] = town
    out["synthetic"] = synthetic
    out["source"] = source
    return out


def _ids(prefix: str, town: str, n: int, width: int = 3) -> list[str]:
    return [f"{prefix}{town}{i:0{width}d}" for i in range(1, n + 1)]


def _rivers(src: Sources, towns: list[Town]) -> gpd.GeoDataFrame:
    """Real GSHHG rivers inside the district, split at the two towns' boundaries."""
    geoms, codes, levels = [], [], []
    both = shapely.union_all([t.polygon for t in towns])
    for t in [*towns, None]:
        clip = (
            shapely.intersection(src.rivers.geometry.to_numpy(), t.polygon)
            if t
            else shapely.difference(src.rivers.geometry.to_numpy(), both)
        )
        for g, lev in zip(clip, src.rivers["level"], strict=True):
            for part in shapely.get_parts(shapely.line_merge(g)) if not g.is_empty else []:
                if part.geom_type == "LineString" and part.length > 1:
                    geoms.append(part)
                    codes.append(t.code if t else "")
                    levels.append(int(lev))
    gdf = gpd.GeoDataFrame({"level": levels, "town_code": codes}, geometry=geoms, crs=WORK_EPSG)
    gdf.insert(0, "river_id", [f"R{i:03d}" for i in range(1, len(gdf) + 1)])
    return _label(gdf, None, "GSHHG 2.3.7 WDB-II rivers (LGPL-3+)", synthetic="N")


def generate(shared: Path, out: Path, seed: int) -> dict:
    """Generate every layer into ``out``.

    Parameters
    ----------
    shared
        Directory with the real data (``../shared/data``).
    out
        Output directory (created).
    seed
        Seed of the single random generator.

    Returns
    -------
    dict
        Summary figures per town (also printed by the command line).
    """
    rng = np.random.default_rng(seed)
    src = load_sources(shared)
    dem_code, why = choose_dem_town(src)
    towns = [build_town(rng, src, ZHAOJIA, dem=False), build_town(rng, src, dem_code, dem=True)]
    layers: dict[str, list[pd.DataFrame]] = {
        k: []
        for k in (
            "towns",
            "villages",
            "grids",
            "members",
            "households",
            "pollution",
            "hazards",
            "incidents",
            "streams",
            "roads",
            "residents",
        )
    }
    summary: dict = {"seed": seed, "dem_town": why, "towns": {}}
    total_hh = sum(len(t.households) for t in towns)
    taken_ids: list[str] = []
    for town in towns:
        grids = build_grids(rng, town)
        households = _number_households(town)
        residents = build_residents(rng, households, taken=np.asarray(taken_ids))
        members = build_members(rng, residents, households)
        houses = np.column_stack([households.geometry.x, households.geometry.y])
        pollution = build_pollution(rng, town)
        hazards = build_hazards(rng, town, houses)
        n_inc = round(INCIDENTS_TOTAL * len(households) / total_hh)
        incidents = build_incidents(
            rng, town, houses, pollution=pollution, hazards=hazards, n=n_inc
        )
        code = town.code

        stats = households.groupby("vill_code")["people"].agg(["size", "sum"])
        vill = town.villages.join(stats, on="vill_code").rename(
            columns={"size": "households", "sum": "people"}
        )
        vill["area_km2"] = (vill.geometry.area / 1e6).round(3)
        layers["villages"].append(
            _label(
                vill[
                    [
                        "vill_code",
                        "vill_name",
                        "kind",
                        "ur_code",
                        "households",
                        "people",
                        "area_km2",
                        "geometry",
                    ]
                ],
                code,
                "names/codes: NBS 2023; polygon: synthetic (scripts/sample_data)",
            )
        )
        area = town.polygon.area / 1e6
        layers["towns"].append(
            _label(
                gpd.GeoDataFrame(
                    {
                        "town_code": [code],
                        "town_name": [town.name],
                        "county_cd": ["511703"],
                        "households": [len(households)],
                        "people": [int(households["people"].sum())],
                        "area_km2": [round(area, 3)],
                    },
                    geometry=[town.polygon],
                    crs=WORK_EPSG,
                ),
                None,
                "name/code: NBS 2023; polygon: synthetic Voronoi of real seats",
            )
        )
        layers["grids"].append(_label(grids, code, SOURCE_TAG))
        layers["members"].append(
            _label(members.drop(columns=["synthetic", "source"]), code, SOURCE_TAG)
        )
        layers["households"].append(
            _label(households.drop(columns=["grid_code"]), code, SOURCE_TAG)
        )
        pollution.insert(0, "pp_id", _ids("P", code, len(pollution)))
        layers["pollution"].append(_label(pollution, code, SOURCE_TAG))
        hazards.insert(0, "hz_id", _ids("Z", code, len(hazards)))
        layers["hazards"].append(_label(hazards, code, SOURCE_TAG))
        incidents.insert(0, "inc_id", _ids("E", code, len(incidents), 4))
        layers["incidents"].append(_label(incidents, code, SOURCE_TAG))
        roads = town.roads.assign(length_m=town.roads.length.round(1))
        roads.insert(0, "road_id", _ids("L", code, len(roads)))
        layers["roads"].append(_label(roads, code, SOURCE_TAG))
        if town.streams is not None:
            streams = town.streams.assign(
                up_km2=town.streams["up_km2"].round(2),
                kind=np.select(
                    [town.streams["up_km2"] >= 20, town.streams["up_km2"] >= 3],
                    ["river", "creek"],
                    "brook",
                ),
            )
            streams.insert(0, "strm_id", _ids("S", code, len(streams), 4))
            layers["streams"].append(
                _label(streams, code, f"derived: SRTM3 N31E107, D8, >= {STREAM_KM2} km2", "N")
            )
        taken_ids += residents["id_number"].tolist()
        res = residents.drop(columns=["age"])
        layers["residents"].append(_label(res, None, SOURCE_TAG))

        people = int(households["people"].sum())
        summary["towns"][code] = {
            "name": town.name,
            "area_km2": round(area, 2),
            "villages": len(vill),
            "grids": len(grids),
            "households": len(households),
            "people": people,
            "residents": len(residents),
            "density_per_km2": round(people / area, 1),
            "grid_households_min_median_max": [
                int(grids["households"].min()),
                int(grids["households"].median()),
                int(grids["households"].max()),
            ],
            "members": len(members),
            "pollution": len(pollution),
            "hazards": len(hazards),
            "incidents": len(incidents),
            "roads_km": round(town.roads.length.sum() / 1e3, 1),
            "streams_km": round(0 if town.streams is None else town.streams.length.sum() / 1e3, 1),
        }

    out.mkdir(parents=True, exist_ok=True)
    for name, parts in layers.items():
        if name == "residents":
            write_csv(pd.concat(parts, ignore_index=True), out / "residents.csv")
            continue
        gdf = gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs=WORK_EPSG)
        write_layer(gdf, out / f"{name}.shp", encoding="GBK" if name == "villages" else "UTF-8")
    rivers = _rivers(src, towns)
    write_layer(rivers, out / "rivers.shp")
    write_csv(_label(task_types(), None, SOURCE_TAG), out / "task_types.csv")
    census = src.census
    summary["census"] = {
        "people": int(census["POPU"]),
        "urban_share": float(census["POPU_URB"]),
        "district_km2": 2246,
        "district_density": round(int(census["POPU"]) / 2246, 1),
        "target_density": TARGET_DENSITY,
    }
    summary["rivers_km_in_dem_town"] = round(
        float(rivers[rivers["town_code"] == dem_code].to_crs(WORK_EPSG).length.sum()) / 1e3, 1
    )
    return summary


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, generate, print the summary as JSON."""
    parser = argparse.ArgumentParser(prog="python -m scripts.sample_data", description=__doc__)
    parser.add_argument(
        "--shared",
        type=Path,
        default=ROOT.parent / "shared" / "data",
        help="directory with the real public data (default: ../shared/data)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=ROOT / "data" / "shapefiles",
        help="output directory (default: data/shapefiles)",
    )
    parser.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default {DEFAULT_SEED})"
    )
    args = parser.parse_args(argv)
    summary = generate(args.shared, args.out, args.seed)
    print(json.dumps(summary, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
