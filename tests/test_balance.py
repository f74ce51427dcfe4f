"""gis_grid.balance: loads, spread and rule checks on a hand-made case, then the sample data."""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from gis_grid.balance import METRICS, assign_to_grids, balance_report, spread
from gis_grid.errors import CRSError, DataFileError
from tests.conftest import SAMPLE_DATA

X0, Y0 = 500_000.0, 3_400_000.0
KM = 1000.0


def row_of_grids() -> gpd.GeoDataFrame:
    """A | B | C, 1 km squares from west to east (EPSG:4545 -> 4490)."""
    cells = [shapely.box(X0 + i * KM, Y0, X0 + (i + 1) * KM, Y0 + KM) for i in range(3)]
    return gpd.GeoDataFrame({"code": list("ABC")}, geometry=cells, crs=4545).to_crs(4490)


def points(xy: list[tuple[float, float]], **columns: object) -> gpd.GeoDataFrame:
    geoms = [shapely.Point(X0 + x, Y0 + y) for x, y in xy]
    return gpd.GeoDataFrame(columns, geometry=geoms, crs=4545)


def households() -> gpd.GeoDataFrame:
    # A: 1 household of 4 people, B: 2 (2 + 2), C: 3 (1 + 1 + 2); located, not pre-assigned.
    xy = [(100, 100), (1100, 100), (1900, 900), (2100, 100), (2500, 500), (2900, 900)]
    return points(xy, people=[4, 2, 2, 1, 1, 2]).to_crs(4490)


def test_spread_by_hand() -> None:
    stats = spread([100, 200, 300])
    assert stats["mean"] == 200
    assert stats["max_dev_pct"] == pytest.approx(50.0)
    assert stats["cv"] == pytest.approx(math.sqrt(20_000 / 3) / 200)  # 0.4082
    assert stats["gini"] == pytest.approx(800 / (2 * 9 * 200))  # sum|xi-xj| / (2 n^2 mean)
    assert spread([5, 5, 5])["gini"] == 0
    assert spread([5, 5, 5])["cv"] == 0
    assert math.isnan(spread([0, 0])["cv"])
    assert math.isnan(spread([])["mean"])


def test_loads_and_spread_on_a_hand_made_case() -> None:
    report = balance_report(row_of_grids(), households=households())
    grids = report.grids
    assert grids["households"].tolist() == [1, 2, 3]
    assert grids["people"].tolist() == [4, 4, 4]
    assert grids["area_km2"].to_numpy() == pytest.approx([1.0, 1.0, 1.0], rel=1e-9)
    households_spread = report.spread.loc["households"]
    assert households_spread["max_dev_pct"] == pytest.approx(50.0)
    assert households_spread["cv"] == pytest.approx(math.sqrt(2 / 3) / 2)
    assert households_spread["gini"] == pytest.approx(8 / (2 * 9 * 2))
    assert report.spread.loc["people", "max_dev_pct"] == 0
    assert list(report.spread.index) == list(METRICS)
    assert report.ok


def test_band_flags_grids_outside_it() -> None:
    report = balance_report(row_of_grids(), households=households(), band=(2, 2))
    assert report.grids["band"].tolist() == ["below", "within", "above"]
    assert report.issues[["kind", "grid"]].to_numpy().tolist() == [
        ["below_band", "A"],
        ["above_band", "C"],
    ]
    people = balance_report(row_of_grids(), households=households(), band=(4, 4), by="people")
    assert people.ok
    assert people.by == "people"


def test_one_member_per_grid_and_home_distance() -> None:
    members = points(
        [(500, 500), (1500, 1250), (200, 800)],  # M1 in A; M2 250 m north of B; M3 in A
        member_id=["M1", "M2", "M3"],
        grid_code=["A", "B", "A"],
    ).to_crs(4490)
    report = balance_report(
        row_of_grids(), households=households(), members=members, home_limit_m=100
    )
    assert report.grids["members"].tolist() == [2, 1, 0]
    kinds = set(map(tuple, report.issues[["kind", "grid"]].to_numpy().tolist()))
    assert ("several_members", "A") in kinds
    assert ("no_member", "C") in kinds
    assert ("home_far", "B") in kinds
    homes = report.members["home_m"]
    assert homes["M1"] == 0
    assert homes["M3"] == 0
    assert homes["M2"] == pytest.approx(250.0, abs=0.01)
    assert report.members["home_inside"].tolist() == [True, False, True]
    # Two members in A share its load; C's whole load stays on nobody's list but per_member.
    assert report.members.loc["M1", "households"] == 0.5
    assert report.grids["per_member"].tolist() == [0.5, 2.0, 3.0]


def test_member_of_an_unknown_grid_is_reported() -> None:
    members = points([(500, 500)], member_id=["M9"], grid_code=["Z"]).to_crs(4490)
    report = balance_report(row_of_grids(), households=households(), members=members)
    unknown = report.issues[report.issues["kind"] == "unknown_grid"]
    assert unknown["member"].tolist() == ["M9"]


def test_points_pre_assigned_and_open_incidents() -> None:
    pollution = pd.DataFrame({"grid_code": ["A", "A", "C", "Q"]})  # no geometry needed
    hazards = points([(1500, 500), (2500, 500)]).to_crs(4490)
    incidents = points(
        [(100, 100), (200, 200), (1500, 500), (2500, 500)],
        status=["reported", "closed", "evaluated", "dispatched"],
    )
    report = balance_report(
        row_of_grids(),
        households=households(),
        pollution=pollution,  # type: ignore[arg-type]
        hazards=hazards,
        incidents=incidents,
    )
    assert report.grids["pollution"].tolist() == [2, 0, 1]
    assert report.grids["hazards"].tolist() == [0, 1, 1]
    assert report.grids["open_incidents"].tolist() == [1, 0, 1]
    stray = report.issues[report.issues["kind"] == "unassigned"]
    assert stray["detail"].str.contains("pollution: 1 feature").all()


def test_points_without_crs_are_refused() -> None:
    bare = gpd.GeoDataFrame({"people": [1]}, geometry=[shapely.Point(107.4, 30.9)])
    with pytest.raises(CRSError, match="households"):
        balance_report(row_of_grids(), households=bare)
    with pytest.raises(DataFileError, match="people"):
        balance_report(row_of_grids(), households=households().drop(columns="people"), by="people")


def test_point_on_a_shared_border_goes_to_one_grid() -> None:
    on_border = points([(KM, 500)]).to_crs(4490)
    assigned = assign_to_grids(on_border, row_of_grids())
    assert assigned.tolist() == ["A"]


def test_sample_data() -> None:
    grids = gpd.read_file(SAMPLE_DATA / "grids.shp")
    report = balance_report(
        grids,
        households=gpd.read_file(SAMPLE_DATA / "households.shp"),
        members=gpd.read_file(SAMPLE_DATA / "members.shp"),
        pollution=gpd.read_file(SAMPLE_DATA / "pollution.shp"),
        hazards=gpd.read_file(SAMPLE_DATA / "hazards.shp"),
        incidents=gpd.read_file(SAMPLE_DATA / "incidents.shp"),
        id_field="grid_code",
        band=(150, 300),
    )
    stored = grids.set_index("grid_code")
    # The counts match what the generator stored on every grid.
    assert (report.grids["households"] == stored["households"]).all()
    assert (report.grids["people"] == stored["people"]).all()
    assert report.grids["households"].sum() == 14_114
    assert report.grids["pollution"].sum() == 55
    assert report.grids["hazards"].sum() == 63
    assert report.grids["open_incidents"].sum() == 320 - 197 - 81
    assert (report.grids["members"] == 1).all()
    assert report.members["home_inside"].all()  # members live in their grid (就地就近)
    assert set(report.issues["kind"]) == {"below_band", "above_band"}
    outside = report.grids[report.grids["band"] != "within"]
    assert ((outside["households"] < 150) | (outside["households"] > 300)).all()
    assert np.isfinite(report.spread.to_numpy()).all()
