"""Checks of the committed sample data in data/shapefiles (read with pyogrio, not gis_grid.io).

The last test regenerates everything with the documented command and compares bytes, so the
committed files are exactly what the seeded script produces.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely

from gis_grid.codes import grid_codes

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "shapefiles"
ZHAOJIA = "511703109"
LAYERS = (
    "towns",
    "villages",
    "grids",
    "members",
    "households",
    "pollution",
    "hazards",
    "incidents",
    "rivers",
    "streams",
    "roads",
)
METRIC = 4545  # CGCS2000 Gauss-Krüger CM 108 E


@pytest.fixture(scope="module")
def layers() -> dict[str, gpd.GeoDataFrame]:
    return {name: gpd.read_file(DATA / f"{name}.shp", engine="pyogrio") for name in LAYERS}


@pytest.fixture(scope="module")
def nbs(shared_data: Path) -> pd.DataFrame:
    return pd.read_csv(shared_data / "dachuan_villages_2023_nbs.csv", dtype=str)


@pytest.fixture(scope="module")
def residents() -> pd.DataFrame:
    return pd.read_csv(DATA / "residents.csv", dtype=str, keep_default_na=False)


def test_every_layer_is_cgcs2000_with_prj_cpg_and_labels(layers):
    for name, gdf in layers.items():
        assert gdf.crs.to_epsg() == 4490, name
        assert (DATA / f"{name}.prj").is_file(), name
        assert (DATA / f"{name}.cpg").read_text().strip() in {"UTF-8", "GBK"}, name
        assert set(gdf["synthetic"]) <= {"Y", "N"}, name
        assert gdf["source"].str.len().min() > 0, name
        assert all(len(c.encode()) <= 10 for c in gdf.columns), name
    for csv in ("residents.csv", "task_types.csv"):
        df = pd.read_csv(DATA / csv, dtype=str)
        assert {"synthetic", "source"} <= set(df.columns), csv


def test_both_towns_with_their_real_villages(layers, nbs):
    towns = layers["towns"]
    assert len(towns) == 2
    assert ZHAOJIA in set(towns["town_code"])
    villages = layers["villages"]
    for code in towns["town_code"]:
        real = nbs[nbs["town_code"] == code].set_index("village_code")["village_name"]
        ours = villages[villages["town_code"] == code].set_index("vill_code")["vill_name"]
        assert ours.sort_index().to_dict() == real.sort_index().to_dict()
    assert (villages["town_code"] == ZHAOJIA).sum() == 14
    for name in LAYERS[1:]:
        if "town_code" in layers[name]:
            codes = set(layers[name]["town_code"].dropna()) - {""}
            assert codes <= set(towns["town_code"]), name


def test_villages_are_a_clean_coverage_of_each_town(layers):
    towns = layers["towns"].set_index("town_code")
    villages = layers["villages"]
    assert villages.is_valid.all()
    assert (villages.geom_type == "Polygon").all()
    for code, group in villages.groupby("town_code"):
        assert shapely.coverage_is_valid(group.geometry.to_numpy()), code
        town_area = towns.loc[[code]].to_crs(METRIC).area.iloc[0]
        assert group.to_crs(METRIC).area.sum() == pytest.approx(town_area, rel=1e-9)


def test_grids_are_a_clean_coverage_of_each_village(layers):
    villages = layers["villages"].set_index("vill_code")
    grids = layers["grids"]
    assert grids.is_valid.all()
    assert (grids.geom_type == "Polygon").all()
    # each grid in exactly one village: by its interior point, and by area
    inside = gpd.sjoin(
        grids.set_geometry(grids.representative_point()), layers["villages"], predicate="within"
    )
    assert inside.index.is_unique and len(inside) == len(grids)
    assert (inside["vill_code_left"] == inside["vill_code_right"]).all()
    for code, group in grids.groupby("vill_code"):
        village = villages.loc[[code]]
        assert shapely.coverage_is_valid(group.geometry.to_numpy()), code
        v_area = village.to_crs(METRIC).area.iloc[0]
        assert group.to_crs(METRIC).area.sum() == pytest.approx(v_area, rel=1e-9)
        overlap = group.to_crs(METRIC).intersection(village.to_crs(METRIC).geometry.iloc[0]).area
        assert (overlap / group.to_crs(METRIC).area > 0.9999).all(), code
    assert set(grids["vill_code"]) == set(villages.index)


def test_grid_codes_are_the_library_codes_of_each_village(layers):
    """Shipped codes = gis_grid.codes.grid_codes of each village's grids, as read back."""
    grids = layers["grids"]
    assert grids["grid_code"].is_unique
    assert grids["grid_code"].str.fullmatch(r"\d{15}").all()
    assert (grids["grid_code"].str[:12] == grids["vill_code"]).all()
    assert (grids["grid_code"].str[12:].astype(int) == grids["seq"]).all()
    assert (grids["grid_name"].str.extract(r"第(\d+)网格$")[0].astype(int) == grids["seq"]).all()
    for code, group in grids.groupby("vill_code"):
        expected = grid_codes(code, group.geometry.to_numpy())
        assert group["grid_code"].tolist() == expected.tolist(), code


def test_villages_shapefile_is_gbk(nbs):
    assert (DATA / "villages.cpg").read_text().strip() == "GBK"
    raw = (DATA / "villages.dbf").read_bytes()
    assert "利群社区居民委员会".encode("gbk") in raw
    assert "利群社区居民委员会".encode() not in raw
    names = pyogrio.read_dataframe(DATA / "villages.shp", read_geometry=False)["vill_name"]
    assert set(names) <= set(nbs["village_name"])


def _check_char(body: str) -> str:
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return "10X98765432"[sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11]


def test_resident_ids_are_valid_gb11643(residents, layers):
    ids = residents["id_number"]
    assert ids.str.fullmatch(r"511703\d{11}[\dX]").all()
    assert ids.is_unique
    assert all(i[17] == _check_char(i[:17]) for i in ids)
    assert (ids.str[6:14] == residents["birth_date"].str.replace("-", "")).all()
    male = ids.str[16].astype(int) % 2 == 1
    assert ((residents["gender"] == "M") == male).all()
    assert residents["phone"].str.fullmatch(r"(1\d{10})?").all()
    assert (residents.groupby("hh_id")["relation"].apply(lambda r: (r == "户主").sum()) == 1).all()
    households = layers["households"].set_index("hh_id")["people"]
    counts = residents.groupby("hh_id").size()
    assert counts.reindex(households.index).tolist() == households.tolist()


def test_members_one_per_grid_living_in_it(layers):
    members, grids = layers["members"], layers["grids"]
    assert sorted(members["grid_code"]) == sorted(grids["grid_code"])
    assert (members["member_id"] == "M" + members["grid_code"]).all()
    joined = gpd.sjoin(members, grids, predicate="within")
    assert (joined["grid_code_left"] == joined["grid_code_right"]).all()
    assert len(joined) == len(members)
    assert (members["status"] == "appointed").all()
    age = (pd.Timestamp("2026-03-31") - pd.to_datetime(members["birth_date"])).dt.days / 365.25
    assert (np.floor(age) <= 45).mean() >= 0.8  # article 6: at most 45 (completed years)


def test_dem_town_lies_inside_the_dem_tile(layers):
    towns = layers["towns"].set_index("town_code")
    dem_town = towns.drop(index=ZHAOJIA)
    minx, miny, maxx, maxy = dem_town.total_bounds
    assert minx > 107 and maxx < 108 and miny > 31 and maxy < 32
    assert towns.loc[[ZHAOJIA]].total_bounds[1] < 31  # Zhaojia: south of the tile
    streams = layers["streams"]
    assert set(streams["town_code"]) == set(dem_town.index)
    assert len(streams) > 20


def test_population_density_is_plausible_against_the_census(layers, shared_data):
    census = pd.read_csv(shared_data / "dazhou_counties_census2020_ghsl.csv", dtype={"CODE": str})
    row = census.set_index("CODE").loc["511703"]
    rural_density = row["POPU"] * (1 - row["POPU_URB"]) / 2246  # rural people per km²
    towns = layers["towns"].to_crs(METRIC)
    people = layers["households"].groupby("town_code")["people"].sum()
    density = people.reindex(towns["town_code"]).to_numpy() / (towns.area.to_numpy() / 1e6)
    assert (density > 0.8 * rural_density).all() and (density < 2 * rural_density).all()
    assert (density < row["POPU"] / 2246).all()  # below the district mean (which has the city)
    assert 2.4 < people.sum() / len(layers["households"]) < 2.9  # people per household


def test_task_types_and_incidents(layers):
    types = pd.read_csv(DATA / "task_types.csv", dtype=str)
    assert set(types["state"]) == {"approved", "pending", "rejected"}
    incidents = layers["incidents"]
    approved = set(types.loc[types["state"] == "approved", "code"])
    assert set(incidents["type_code"]) <= approved
    steps = {"reported", "accepted", "dispatched", "handled", "feedback", "closed", "evaluated"}
    assert set(incidents["status"]) <= steps
    assert 200 <= len(incidents) <= 500


@pytest.mark.slow
def test_regeneration_with_the_same_seed_is_byte_identical(tmp_path, shared_data):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "scripts.sample_data",
            "--shared",
            str(shared_data),
            "--out",
            str(tmp_path),
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    produced = sorted(p.name for p in tmp_path.iterdir())
    committed = sorted(p.name for p in DATA.iterdir() if p.name != "README.md")
    assert produced == committed
    differ = [n for n in produced if (tmp_path / n).read_bytes() != (DATA / n).read_bytes()]
    assert not differ, f"regenerated files differ from the committed ones: {differ}"
