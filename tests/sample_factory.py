"""A small, complete sample directory (all layers) written to a temporary folder.

One town of 2 x 1 villages, each split into 2 x 2 grids, with households, residents, members,
pollution points, hazards, task types, incidents and natural lines (a river across the town and
a town-less river piece beside it, streams, roads): enough to exercise every loader path in
a second. Shared by tests/test_load.py and tests/test_cli.py.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gis_grid.codes import grid_codes, id_check_character

CELL = 0.01  # degrees: a grid is about 1 km across near 31 N


def town_code_for(index: int) -> str:
    return f"511703{100 + index:03d}"


def write_sample(directory: Path, *, town_index: int = 9, seed: int = 1) -> Path:
    """Write towns.shp ... task_types.csv for one town into ``directory``; return it."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    town = town_code_for(town_index)
    x0, y0 = 107.30 + 0.05 * (town_index % 5), 30.90 + 0.03 * (town_index // 5)
    provenance = {"synthetic": 1, "source": "tests/sample_factory.py"}

    town_geom = shapely.box(x0, y0, x0 + 4 * CELL, y0 + 2 * CELL)
    gpd.GeoDataFrame(
        {"town_code": [town], "town_name": ["赵家镇"], "county_cd": ["511703"],
         "county_nm": ["达川区"], **{k: [v] for k, v in provenance.items()}},
        geometry=[town_geom], crs=4490,
    ).to_file(directory / "towns.shp")  # fmt: skip

    villages = [f"{town}{201 + i:03d}" for i in range(2)]
    village_geoms = [
        shapely.box(x0 + 2 * i * CELL, y0, x0 + 2 * (i + 1) * CELL, y0 + 2 * CELL) for i in range(2)
    ]
    gpd.GeoDataFrame(
        {"vill_code": villages, "vill_name": ["利群社区", "林山村"], "town_code": [town] * 2,
         "kind": ["community", "village"], "ur_code": ["111", "220"],
         "synthetic": [1, 1], "source": [provenance["source"]] * 2},
        geometry=village_geoms, crs=4490,
    ).to_file(directory / "villages.shp", encoding="GBK")  # fmt: skip

    grid_rows = []
    for village, vgeom in zip(villages, village_geoms, strict=True):
        minx, miny, _, _ = vgeom.bounds
        cells = [
            shapely.box(
                minx + c * CELL, miny + r * CELL, minx + (c + 1) * CELL, miny + (r + 1) * CELL
            )
            for r in range(2)
            for c in range(2)
        ]
        codes = grid_codes(village, cells)
        grid_rows += [
            {"grid_code": code, "vill_code": village, "seq": int(code[-3:]),
             "grid_name": f"第{int(code[-3:])}网格", "geometry": cell}
            for code, cell in zip(codes.tolist(), cells, strict=True)
        ]  # fmt: skip
    grids = gpd.GeoDataFrame(grid_rows, crs=4490).assign(**provenance)
    grids.to_file(directory / "grids.shp")

    # households: points strictly inside grids (avoid shared edges)
    n = 40
    hx = x0 + rng.uniform(0.0005, 4 * CELL - 0.0005, n)
    hy = y0 + rng.uniform(0.0005, 2 * CELL - 0.0005, n)
    hx[np.isclose((hx - x0) % CELL, 0, atol=1e-4)] += 3e-4
    village_of = np.where(hx < x0 + 2 * CELL, villages[0], villages[1])
    households = gpd.GeoDataFrame(
        {"hh_id": [f"H{town}{i:04d}" for i in range(n)], "vill_code": village_of,
         "people": rng.integers(1, 6, n), "address": [f"{i}号" for i in range(n)], **provenance},
        geometry=shapely.points(hx, hy), crs=4490,
    )  # fmt: skip
    households.to_file(directory / "households.shp")

    residents = []
    for hh, people in zip(households["hh_id"], households["people"], strict=True):
        for k in range(int(people)):
            year = 1950 + int(rng.integers(0, 60))
            month, day = 1 + int(rng.integers(0, 9)), 10 + int(rng.integers(0, 9))
            first17 = f"511703{year}{month:02d}{day:02d}{int(rng.integers(100, 999))}"
            residents.append(
                {"hh_id": hh, "name": f"居民{len(residents)}",
                 "id_number": first17 + id_check_character(first17),
                 "phone": f"138{int(rng.integers(10_000_000, 99_999_999))}",
                 "gender": "男" if k % 2 == 0 else "女",
                 "birth_date": f"{year}-{month:02d}-{day:02d}",
                 "relation": "户主" if k == 0 else "家属", "whereabouts": "在家", **provenance}
            )  # fmt: skip
    pd.DataFrame(residents).to_csv(directory / "residents.csv", index=False)

    members = grids[["grid_code"]].copy()
    members["member_id"] = [f"M{code}" for code in members["grid_code"]]
    members["name"] = [f"网格员{i}" for i in range(len(members))]
    members["gender"] = "F"
    members["birth_date"] = "1990-05-01"
    members["education"] = "senior_high"
    members["party"] = "1"
    members["status"] = "appointed"
    members["phone"] = "13800000000"
    for key, value in provenance.items():
        members[key] = value
    members = gpd.GeoDataFrame(members, geometry=grids.geometry.representative_point(), crs=4490)
    members.to_file(directory / "members.shp")

    pd.DataFrame(
        {"code": ["ENV", "SAFE", "NEWX"], "name": ["环境巡查", "安全隐患", "新增事项"],
         "state": ["approved", "approved", "pending"],
         "applied": ["2020-01-01", "2020-01-01", "2025-01-01"],
         "decided": ["2020-03-01", "2020-03-01", ""],
         "decided_by": ["区人民政府", "区人民政府", ""], "sla_days": [5, 3, 0], **provenance}
    ).to_csv(directory / "task_types.csv", index=False)  # fmt: skip

    def points(prefix: str, k: int, extra: dict[str, object]) -> gpd.GeoDataFrame:
        px = x0 + rng.uniform(0.001, 4 * CELL - 0.001, k)
        py = y0 + rng.uniform(0.001, 2 * CELL - 0.001, k)
        vill = np.where(px < x0 + 2 * CELL, villages[0], villages[1])
        return gpd.GeoDataFrame(
            {prefix: [f"{prefix[:1].upper()}{town}{i:03d}" for i in range(k)], "vill_code": vill,
             **extra, **provenance},
            geometry=shapely.points(px, py), crs=4490,
        )  # fmt: skip

    points("pp_id", 5, {"name": "排污口", "kind": "sewage"}).to_file(directory / "pollution.shp")
    points("hz_id", 4, {"name": "滑坡", "kind": "landslide", "level": 2}).to_file(
        directory / "hazards.shp"
    )
    incident = {
        "type_code": "ENV",
        "title": "污水",
        "status": "dispatched",
        "reported": "2026-03-01T09:30:00",
        "dispatched": "2026-03-01T11:00:00",
        "deadline": "2026-03-08T09:30:00",
    }
    incidents = points("inc_id", 6, incident)
    incidents.to_file(directory / "incidents.shp")
    write_lines(directory, town, x0, y0)
    return directory


#: Lines per natural-lines layer written by :func:`write_lines`.
LINE_COUNTS = {"rivers": 2, "streams": 2, "roads": 3}


def write_lines(directory: Path, town: str, x0: float, y0: float) -> None:
    """rivers.shp (one across the town, one town-less piece east of it), streams, roads."""
    line = shapely.LineString
    provenance = {"synthetic": "Y", "source": "tests/sample_factory.py"}
    gpd.GeoDataFrame(
        {"river_id": [f"R{town}1", f"R{town}2"], "level": [2, 4], "town_code": [town, None],
         **provenance},
        geometry=[
            line([(x0 - 0.005, y0 + 0.005), (x0 + 4 * CELL + 0.002, y0 + 0.015)]),
            line([(x0 + 4 * CELL + 0.004, y0), (x0 + 4 * CELL + 0.012, y0 + 0.02)]),
        ],
        crs=4490,
    ).to_file(directory / "rivers.shp")  # fmt: skip
    gpd.GeoDataFrame(
        {"strm_id": [f"S{town}1", f"S{town}2"], "up_km2": [4.2, 0.8], "kind": ["creek", "brook"],
         "town_code": [town] * 2, **provenance},
        geometry=[
            line([(x0 + 0.003, y0 + 0.019), (x0 + 0.012, y0 + 0.008)]),
            line([(x0 + 0.025, y0 + 0.018), (x0 + 0.031, y0 + 0.011), (x0 + 0.033, y0 + 0.01)]),
        ],
        crs=4490,
    ).to_file(directory / "streams.shp")  # fmt: skip
    gpd.GeoDataFrame(
        {"road_id": [f"L{town}{i}" for i in (1, 2, 3)],
         "kind": ["county", "township", "village"], "town_code": [town] * 3, **provenance},
        geometry=[
            line([(x0 - 0.01, y0 + 0.002), (x0 + 0.02, y0 + 0.002)]),  # leaves the town
            line([(x0 + 0.02, y0 + 0.002), (x0 + 0.02, y0 + 0.018)]),
            line([(x0 + 0.02, y0 + 0.01), (x0 + 0.035, y0 + 0.012)]),
        ],
        crs=4490,
    ).to_file(directory / "roads.shp")  # fmt: skip


TABLES = (
    "incidents", "task_types", "hazards", "pollution_points", "residents", "households",
    "members", "grids", "natural_lines", "villages", "towns", "districts",
)  # fmt: skip


def clean_tables(engine) -> None:
    """Empty every platform table (between tests sharing the session database)."""
    import sqlalchemy as sa

    with engine.begin() as conn:
        conn.execute(sa.text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))


def row_counts(engine) -> dict[str, int]:
    import sqlalchemy as sa

    with engine.connect() as conn:
        return {t: conn.scalar(sa.text(f"SELECT count(*) FROM {t}")) for t in TABLES}
