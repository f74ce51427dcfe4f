"""Drawing grids: sample towns, barriers, infeasible bands, locked grids, rebalance, quality."""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pytest
import shapely

from gis_grid.codes import grid_codes
from gis_grid.districting import (
    DistrictingError,
    InfeasibleError,
    draw_from_units,
    draw_grids,
    natural_lines,
    plan_quality,
    propose_counts,
    rebalance,
)
from gis_grid.errors import CRSError, DataFileError
from gis_grid.io import read_layer
from tests.conftest import SAMPLE_DATA

X0, Y0 = 500_000.0, 3_440_000.0  # EPSG:4545, near Dachuan


def _village(
    code: str = "511703109201", width: float = 2000.0, height: float = 2000.0, dx: float = 0.0
) -> gpd.GeoDataFrame:
    box = shapely.box(X0 + dx, Y0, X0 + dx + width, Y0 + height)
    return gpd.GeoDataFrame({"vill_code": [code]}, geometry=[box], crs=4545)


def _households(
    width: float = 2000.0, height: float = 2000.0, step: float = 50.0, dx: float = 0.0
) -> gpd.GeoDataFrame:
    xs, ys = np.meshgrid(np.arange(step / 2, width, step), np.arange(step / 2, height, step))
    pts = shapely.points(X0 + dx + xs.ravel(), Y0 + ys.ravel())
    return gpd.GeoDataFrame({"people": np.full(pts.size, 3)}, geometry=pts, crs=4545)


def _river(x: float) -> gpd.GeoDataFrame:
    line = shapely.LineString([(X0 + x, Y0 - 10), (X0 + x + 30, Y0 + 1000), (X0 + x, Y0 + 2010)])
    return gpd.GeoDataFrame({"kind": ["river"], "barrier": [True]}, geometry=[line], crs=4545)


@pytest.fixture(scope="module")
def sample() -> dict[str, gpd.GeoDataFrame]:
    layers = {
        n: read_layer(SAMPLE_DATA / f"{n}.shp")
        for n in ("villages", "households", "rivers", "streams", "roads", "grids")
    }
    layers["lines"] = natural_lines(
        rivers=layers["rivers"], streams=layers["streams"], roads=layers["roads"]
    )
    return layers


@pytest.mark.parametrize(("town", "n"), [("511703109", 26), ("511703129", 39)])
def test_sample_towns_drawn_valid(sample: dict[str, gpd.GeoDataFrame], town: str, n: int) -> None:
    villages = sample["villages"][sample["villages"]["town_code"] == town]
    households = sample["households"][sample["households"]["town_code"] == town]
    plan = draw_grids(villages, households, lines=sample["lines"], n_grids=n, by="households")
    grids = plan.grids
    assert plan.ok, plan.issues
    assert len(grids) == n
    assert grids.crs.to_epsg() == 4490
    assert (grids.geom_type == "Polygon").all()
    assert plan.max_dev_pct <= 10.0
    assert grids["households"].sum() == len(households)
    for code, rows in grids.groupby("vill_code"):
        assert shapely.coverage_is_valid(rows.to_crs(4545).geometry.to_numpy())
        expected = grid_codes(str(code), grids.loc[rows.index].geometry.to_numpy())
        assert sorted(expected) == sorted(rows["grid_code"])
        assert (rows["grid_code"].to_numpy() == expected).all()
    report = plan_quality(
        plan, villages=villages, households=households, lines=sample["lines"], by="households"
    )
    assert report.summary["valid"] and report.summary["codes_ok"]
    assert report.summary["natural_share"] > 0.3  # boundaries follow lines
    assert report.summary["pp_mean"] > 0.3


#: Square metres per square degree of longitude x latitude at the sample's latitude (~31 N).
M2_PER_DEG2 = 111_320.0 * 111_320.0 * math.cos(math.radians(31.1))


def outline_mismatch(grids: np.ndarray, village: shapely.Geometry) -> tuple[float, float]:
    """Hausdorff distance (both ways, degrees) between the grids' union and the village's
    boundaries, and the area of their symmetric difference (m²), in the storage CRS."""
    union = shapely.coverage_union_all(grids)
    hausdorff = max(
        shapely.hausdorff_distance(union.boundary, village.boundary),
        shapely.hausdorff_distance(village.boundary, union.boundary),
    )
    return hausdorff, shapely.area(shapely.symmetric_difference(union, village)) * M2_PER_DEG2


@pytest.mark.parametrize(("town", "n"), [("511703109", 26), ("511703129", 39)])
def test_grids_tile_their_village_exactly(
    sample: dict[str, gpd.GeoDataFrame], town: str, n: int
) -> None:
    # Drawn in EPSG:4490 like the database: the union of a village's grids is the stored
    # village (its own coordinates), not a copy re-projected through metres.
    villages = sample["villages"][sample["villages"]["town_code"] == town]
    households = sample["households"][sample["households"]["town_code"] == town]
    assert villages.crs.to_epsg() == 4490
    plan = draw_grids(villages, households, lines=sample["lines"], n_grids=n, by="households")
    outline_vertices = set(map(tuple, shapely.get_coordinates(villages.geometry.to_numpy())))
    for code, rows in plan.grids.groupby("vill_code"):
        village = villages.loc[villages["vill_code"] == code].geometry.iloc[0]
        geoms = rows.geometry.to_numpy()
        assert shapely.coverage_is_valid(geoms), code
        assert shapely.is_valid(geoms).all(), code
        hausdorff, area = outline_mismatch(geoms, village)
        assert hausdorff < 1e-9, (code, hausdorff)  # degrees: ~0.1 mm; measured ~4e-15
        # Floating-point dust only (nodes where drawn lines meet the outline lie within
        # 1e-15 degrees of it); the previous noding in metres left ~0.1 m slivers, ~100 m².
        assert area < 1e-5, (code, area)
        # Every vertex of the village outline is a vertex of its grids, unmoved.
        grid_vertices = set(map(tuple, shapely.get_coordinates(geoms)))
        mine = set(map(tuple, shapely.get_coordinates(village)))
        assert mine <= grid_vertices, code
        assert mine <= outline_vertices


def test_river_not_straddled_when_a_balanced_alternative_exists() -> None:
    villages, households, river = _village(), _households(), _river(1000)
    plan = draw_grids(villages, households, lines=river, n_grids=2)
    report = plan_quality(plan, villages=villages, households=households, lines=river)
    assert report.summary["crossings"] == 0
    assert plan.max_dev_pct <= 10
    # Without the river the same plan would not be forced onto it: the test can fail.
    line = river.geometry.iloc[0]
    for geom in plan.grids.to_crs(4545).geometry:
        assert not shapely.crosses(line, geom.buffer(-1))


def test_river_straddled_only_when_unavoidable() -> None:
    # The river leaves 20 % of the people on the west bank: one grid at ±10 % cannot hold
    # them alone, so one grid must cross; the report counts it.
    villages, households, river = _village(), _households(), _river(400)
    plan = draw_grids(villages, households, lines=river, n_grids=2)
    report = plan_quality(plan, villages=villages, households=households, lines=river)
    assert report.summary["crossings"] >= 1
    assert plan.max_dev_pct <= 10


def test_infeasible_band_is_a_clear_error() -> None:
    villages = gpd.GeoDataFrame(
        {"vill_code": ["511703109201", "511703109202"]},
        geometry=[
            shapely.box(X0, Y0, X0 + 2000, Y0 + 2000),
            shapely.box(X0 + 2000, Y0, X0 + 2200, Y0 + 2000),
        ],
        crs=4545,
    )
    households = _households(width=2200)
    with pytest.raises(InfeasibleError) as err:
        draw_grids(villages, households, target=1200)
    assert "511703109202" in str(err.value)
    assert list(err.value.report["village"]) == ["511703109202"]
    plan = draw_grids(villages, households, target=1200, on_infeasible="report")
    assert "infeasible_band" in set(plan.issues["kind"])
    assert not plan.ok


def test_bad_inputs_refused() -> None:
    households = _households()
    overlapping = gpd.GeoDataFrame(
        {"vill_code": ["511703109201", "511703109202"]},
        geometry=[
            shapely.box(X0, Y0, X0 + 1100, Y0 + 2000),
            shapely.box(X0 + 1000, Y0, X0 + 2000, Y0 + 2000),
        ],
        crs=4545,
    )
    with pytest.raises(DistrictingError, match="overlap"):
        draw_grids(overlapping, households, target=1000)
    with pytest.raises(DistrictingError, match="outside every village"):
        draw_grids(_village(width=1000), households, target=1000)
    with pytest.raises(CRSError):
        draw_grids(_village().set_crs(None, allow_override=True), households, target=1000)
    with pytest.raises(DistrictingError, match="target"):
        draw_grids(_village(), households)


def test_locked_grids_unchanged() -> None:
    villages, households = _village(), _households()
    first = draw_grids(villages, households, n_grids=4, seed=0)
    keep = first.grids.iloc[[0]]
    second = draw_grids(villages, households, n_grids=4, locked=keep, seed=3)
    assert len(second.grids) == 4
    again = second.grids.set_index("grid_code").loc[keep["grid_code"].iloc[0]]
    assert bool(again["locked"])
    old = keep.to_crs(4545).geometry.iloc[0]
    new = gpd.GeoSeries([again.geometry], crs=4490).to_crs(4545).iloc[0]
    assert shapely.area(shapely.symmetric_difference(old, new)) < 1.0
    assert second.ok, second.issues


def test_rebalance_moves_blocks_into_band() -> None:
    villages, households = _village(), _households()
    west = shapely.box(X0, Y0, X0 + 700, Y0 + 2000)
    east = shapely.box(X0 + 700, Y0, X0 + 2000, Y0 + 2000)
    grids = gpd.GeoDataFrame(
        {"grid_code": ["511703109201001", "511703109201002"]}, geometry=[west, east], crs=4545
    )
    before = plan_quality(grids, villages=villages, households=households)
    assert before.summary["max_dev_pct"] > 25
    fixed = rebalance(grids, villages=villages, households=households, tolerance=0.05)
    assert fixed.ok, fixed.issues
    assert fixed.max_dev_pct <= 5
    moves = fixed.moves
    assert moves is not None and len(moves) > 0
    assert set(moves["from_grid"]) == {"511703109201002"}
    assert set(moves["to_grid"]) == {"511703109201001"}
    gained = (
        fixed.grids.set_index("grid_code")["people"] - before.grids.set_index("grid_code")["people"]
    )
    assert gained["511703109201001"] == moves["people"].sum()
    # Smallest change: nothing moves when the plan is already in the band.
    again = rebalance(fixed, villages=villages, households=households, tolerance=0.05)
    assert again.moves is not None and len(again.moves) == 0


def test_quality_numbers_on_a_hand_made_plan() -> None:
    villages = _village(width=2000, height=1000)
    households = _households(width=2000, height=1000)
    squares = gpd.GeoDataFrame(
        {"grid_code": ["511703109201001", "511703109201002"]},
        geometry=[
            shapely.box(X0, Y0, X0 + 1000, Y0 + 1000),
            shapely.box(X0 + 1000, Y0, X0 + 2000, Y0 + 1000),
        ],
        crs=4545,
    )
    road = gpd.GeoDataFrame(
        {"kind": ["road"], "barrier": [False]},
        crs=4545,
        geometry=[shapely.LineString([(X0 + 1000, Y0 - 5), (X0 + 1000, Y0 + 1005)])],
    )
    creek = gpd.GeoDataFrame(
        {"kind": ["creek"], "barrier": [True]},
        crs=4545,
        geometry=[shapely.LineString([(X0 - 5, Y0 + 500), (X0 + 1005, Y0 + 500)])],
    )
    lines = gpd.GeoDataFrame(gpd.pd.concat([road, creek]), crs=4545)
    members = gpd.GeoDataFrame(
        {"grid_code": ["511703109201001", "511703109201002"]},
        crs=4545,
        geometry=[shapely.Point(X0 + 500, Y0 + 500), shapely.Point(X0 + 500, Y0 + 500)],
    )
    report = plan_quality(
        squares, villages=villages, households=households, lines=lines, members=members, target=1200
    )
    grids = report.grids.set_index("grid_code")
    assert grids["polsby_popper"].to_numpy() == pytest.approx(math.pi / 4)
    assert grids["people"].tolist() == [1200, 1200]
    assert report.summary["max_dev_pct"] == pytest.approx(0)
    assert report.summary["natural_share"] == pytest.approx(1.0)  # the shared edge is the road
    assert grids["crossings"].tolist() == [1, 0]  # the creek cuts the west square in two
    assert grids["member_home_m"].tolist() == pytest.approx([0.0, 500.0])
    assert report.summary["valid"] and report.summary["codes_ok"]


def test_propose_counts() -> None:
    villages = gpd.GeoDataFrame(
        {"vill_code": ["511703109201", "511703109202"]},
        geometry=[
            shapely.box(X0, Y0, X0 + 2000, Y0 + 2000),
            shapely.box(X0 + 2000, Y0, X0 + 2200, Y0 + 2000),
        ],
        crs=4545,
    )
    table = propose_counts(villages, _households(width=2200), band=(900, 1100)).set_index(
        "vill_code"
    )
    assert table.loc["511703109201", "grids"] == 5  # 4800 people / ~960
    assert table.loc["511703109201", "feasible"]
    assert not table.loc["511703109202", "feasible"]  # 480 people < 900
    assert "below the floor" in table.loc["511703109202", "detail"]


def _squares(nx: int = 8, ny: int = 6, side: float = 100.0) -> gpd.GeoDataFrame:
    """Hand-made units: an nx x ny lattice of squares, two villages (west and east halves)."""
    ix, iy = np.meshgrid(np.arange(nx), np.arange(ny))
    ix, iy = ix.ravel(), iy.ravel()
    boxes = shapely.box(X0 + ix * side, Y0 + iy * side, X0 + (ix + 1) * side, Y0 + (iy + 1) * side)
    people = 10 + (ix * 7 + iy * 3) % 11  # uneven: 10-20 people per unit
    village = np.where(ix < nx // 2, "511703109201", "511703109202")
    return gpd.GeoDataFrame(
        {"pop": people, "vill": village}, geometry=boxes, crs=4545, index=np.arange(100, 148)
    )


def test_draw_from_units_nested_balanced_contiguous() -> None:
    units = _squares()
    plan = draw_from_units(units, weight="pop", n_grids=6, tolerance=0.1, village="vill")
    assert plan.ok, plan.issues
    grids = plan.grids
    assert len(grids) == 6
    assert (grids.geom_type == "Polygon").all()
    assert plan.max_dev_pct <= 10
    assignment = plan.assignment
    assert assignment is not None
    assert assignment.index.equals(units.index)
    # Nesting: every grid lies in one village and carries its code.
    for code, rows in units.groupby(assignment):
        assert rows["vill"].nunique() == 1
        assert str(code).startswith(rows["vill"].iloc[0])
    loads = units.groupby(assignment)["pop"].sum()
    assert loads.sum() == units["pop"].sum()
    assert (grids.set_index("grid_code")["load"] == loads).all()
    projected = grids.to_crs(4545).geometry.to_numpy()
    assert shapely.coverage_is_valid(projected)
    assert shapely.union_all(projected).area == pytest.approx(800 * 600, rel=1e-6)


def test_draw_from_units_refuses_overlaps_and_bad_weights() -> None:
    units = _squares()
    with pytest.raises(DataFileError, match="weight"):
        draw_from_units(units, weight="people", n_grids=4)
    overlapping = units.copy()
    overlapping.loc[100, "geometry"] = shapely.box(X0, Y0, X0 + 150, Y0 + 100)
    with pytest.raises(DistrictingError, match="clean coverage"):
        draw_from_units(overlapping, weight="pop", n_grids=4)
    with pytest.raises(InfeasibleError):
        draw_from_units(units, weight="pop", target=10_000, tolerance=0.05)
