"""gis_grid.assign: points to grids in memory, the border rule, reports, bad input, redraws."""

from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from benchmarks._synthetic import make_grids, make_points, redraw
from gis_grid.assign import AssignmentResult, assign_points, build_grid_index, reassign_points
from gis_grid.errors import (
    CoordinateError,
    CRSError,
    DataFileError,
    DuplicateCodeError,
    GeometryError,
)
from gis_grid.io import read_layer
from tests.common import (
    ZHAOJIA,
    bowtie,
    empty_point,
    empty_polygon,
    line,
    square,
    square_right,
)
from tests.conftest import SAMPLE_DATA

# Three grids in metres (EPSG:4545 coordinates, small numbers are exact in binary):
#   N = "003" covers y 100..200, W = "002" x 0..100, E = "001" x 100..200 (y 0..100).
# Row order differs from code order on purpose.
W, E, N = shapely.box(0, 0, 100, 100), shapely.box(100, 0, 200, 100), shapely.box(0, 100, 200, 200)


def three_grids(crs: object = 4545) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"code": ["002", "001", "003"]}, geometry=[W, E, N], crs=crs)


def points_at(xy: list[tuple[float, float]], crs: object = 4545, **columns) -> gpd.GeoDataFrame:
    x, y = zip(*xy, strict=True)
    return gpd.GeoDataFrame(columns, geometry=gpd.points_from_xy(x, y), crs=crs)


def brute_force(points: gpd.GeoDataFrame, grids: gpd.GeoDataFrame, grid_id: str = "code"):
    """The border rule spelled out: loop over grids, interior first, then smallest code."""
    x = points.geometry.x.to_numpy()
    y = points.geometry.y.to_numpy()
    best = np.full(len(points), None, dtype=object)
    best_inside = np.zeros(len(points), dtype=bool)
    for code, geom in zip(grids[grid_id], grids.geometry, strict=True):
        covers = shapely.intersects_xy(geom, x, y)
        inside = shapely.contains_xy(geom, x, y)
        better = covers & (
            (best == None)  # noqa: E711 - elementwise on an object array
            | (inside & ~best_inside)
            | ((inside == best_inside) & (best != None) & (best.astype(str) > str(code)))  # noqa: E711
        )
        best[better] = code
        best_inside[better] = inside[better]
    return best


def codes_of(result: AssignmentResult) -> list[object]:
    return [None if pd.isna(c) else c for c in result.grid]


# --- hand-computed cases ---------------------------------------------------------------


HAND_CASES = [
    ((50, 50), "002"),  # inside W
    ((150, 50), "001"),  # inside E
    ((100, 50), "001"),  # on the W|E border: smallest code
    ((50, 100), "002"),  # on the W|N border: "002" < "003"
    ((150, 100), "001"),  # on the E|N border
    ((100, 100), "001"),  # the vertex shared by W, E and N
    ((0, 50), "002"),  # on the outer boundary of W only
    ((200, 200), "003"),  # outer corner of N
]


@pytest.mark.parametrize("cell_size", [None, 7.0, 100.0])
def test_hand_computed_cases_and_border_rule(cell_size):
    grids = three_grids()
    index = build_grid_index(grids, cell_size=cell_size)
    points = points_at([xy for xy, _ in HAND_CASES])
    result = assign_points(points, grids, index=index)
    assert codes_of(result) == [code for _, code in HAND_CASES]
    assert result.n_unassigned == 0
    assert result.crs_note is None
    assert result.grid.name == "code"
    assert list(result.grid.cat.categories) == ["001", "002", "003"]


def test_points_outside_are_reported_with_distance():
    grids = three_grids()
    points = points_at([(50, 50), (250, 50), (-30, -40), (100, 230)], hh_id=["a", "b", "c", "d"])
    points.index = ["p1", "p2", "p3", "p4"]
    result = assign_points(points, grids)
    assert codes_of(result) == ["002", None, None, None]
    out = result.unassigned
    assert list(out.index) == ["p2", "p3", "p4"]
    assert out["row"].tolist() == [1, 2, 3]
    assert out["distance_m"].tolist() == pytest.approx([50.0, 50.0, 30.0])
    assert out["nearest"].tolist() == ["001", "002", "003"]
    assert result.grid.index.tolist() == ["p1", "p2", "p3", "p4"]


def test_lonlat_shared_edge_and_distance_in_metres():
    # square and square_right share the meridian x = 107.415 (same float in both).
    grids = gpd.GeoDataFrame({"code": ["B", "A"]}, geometry=[square, square_right], crs=4490)
    x0, y0 = ZHAOJIA
    edge_x = square.bounds[2]
    assert edge_x == square_right.bounds[0]
    far = (x0 + 0.03, y0 + 0.005)  # ~0.01 degrees east of square_right
    points = points_at([(x0 + 0.005, y0 + 0.005), (edge_x, y0 + 0.005), far], crs=4490)
    result = assign_points(points, grids)
    assert codes_of(result) == ["B", "A", None]
    expected = shapely.distance(
        gpd.GeoSeries([square_right], crs=4490).to_crs(4545).iloc[0],
        gpd.GeoSeries([shapely.Point(far)], crs=4490).to_crs(4545).iloc[0],
    )
    assert result.unassigned["distance_m"].iloc[0] == pytest.approx(expected, rel=1e-9)
    assert 900 < expected < 1000  # 0.01 degrees of longitude at 31 N
    assert result.unassigned["nearest"].iloc[0] == "A"


# --- bad input -------------------------------------------------------------------------


def test_nan_coordinates_error_names_the_rows():
    points = points_at(
        [(50, 50), (60, 60), (np.nan, 50), (70, np.nan)], hh_id=["h1", "h2", "h3", "h4"]
    )
    with pytest.raises(CoordinateError, match=r"2 point\(s\) have NaN") as err:
        assign_points(points, three_grids())
    assert "feature 3 (hh_id=h3)" in str(err.value)
    assert "feature 4 (hh_id=h4)" in str(err.value)
    assert "feature 2 " not in str(err.value)


def test_missing_crs_is_refused():
    points = points_at([(50, 50)])
    with pytest.raises(CRSError, match="points: no coordinate reference system"):
        assign_points(points.set_crs(None, allow_override=True), three_grids())
    with pytest.raises(CRSError, match="grids: no coordinate reference system"):
        assign_points(points, three_grids(crs=None))


def test_different_crs_is_converted_and_reported():
    grids = three_grids().to_crs(4490)  # the stored CRS; points come in Gauss-Krüger metres
    # Real Gauss-Krüger coordinates near Dachuan so that the conversion is meaningful.
    gk = gpd.GeoDataFrame(
        {"code": ["G"]}, geometry=[shapely.box(500_000, 3_400_000, 501_000, 3_401_000)], crs=4545
    )
    points = points_at([(500_500, 3_400_500), (502_000, 3_400_500)])
    with pytest.warns(UserWarning, match="points converted from EPSG:4545"):
        result = assign_points(points, gk.to_crs(4490))
    assert "EPSG:4545" in result.crs_note
    assert "EPSG:4490" in result.crs_note
    assert codes_of(result) == ["G", None]
    assert result.unassigned["distance_m"].iloc[0] == pytest.approx(1000.0, abs=0.5)
    assert grids.crs.to_epsg() == 4490


@pytest.mark.parametrize(
    ("geometry", "message"),
    [
        (bowtie, "invalid: Self-intersection"),
        (empty_polygon, "empty geometry"),
        (None, "has no geometry"),
        (line, "is a LineString, expected Polygon or MultiPolygon"),
    ],
)
def test_bad_grid_geometry_names_the_grid(geometry, message):
    grids = gpd.GeoDataFrame({"code": ["G1", "G2"]}, geometry=[square_right, geometry], crs=4490)
    with pytest.raises(GeometryError, match=message) as err:
        assign_points(points_at([ZHAOJIA], crs=4490), grids)
    assert "feature 2 (code=G2)" in str(err.value)


@pytest.mark.parametrize(
    ("geometry", "error", "message"),
    [
        (None, GeometryError, "have no geometry"),
        (empty_point, GeometryError, "are empty"),
        (line, GeometryError, r"are not points \(LineString\)"),
    ],
)
def test_bad_point_geometry_names_the_row(geometry, error, message):
    points = gpd.GeoDataFrame(
        {"pp_id": ["P1", "P2"]}, geometry=[shapely.Point(ZHAOJIA), geometry], crs=4490
    )
    grids = gpd.GeoDataFrame({"code": ["A"]}, geometry=[square], crs=4490)
    with pytest.raises(error, match=message) as err:
        assign_points(points, grids)
    assert "feature 2 (pp_id=P2)" in str(err.value)


def test_bad_codes_are_refused():
    grids = three_grids()
    points = points_at([(50, 50)])
    with pytest.raises(DataFileError, match="no column 'grid_code'"):
        assign_points(points, grids, grid_id="grid_code")
    dup = grids.assign(code=["001", "001", "003"])
    with pytest.raises(DuplicateCodeError, match="code='001'"):
        assign_points(points, dup)
    missing = grids.assign(code=["001", None, "003"])
    with pytest.raises(DataFileError, match="feature 2 has no code"):
        assign_points(points, missing)


def test_index_of_other_grids_is_refused():
    grids = three_grids()
    index = build_grid_index(grids)
    moved = grids.copy()
    moved.geometry = [W, shapely.box(100, 0, 250, 100), N]
    with pytest.raises(DataFileError, match="index= was built from other grids"):
        assign_points(points_at([(50, 50)]), moved, index=index)


# --- agreement with brute force ----------------------------------------------------------


@pytest.fixture(scope="module")
def coverage() -> gpd.GeoDataFrame:
    return make_grids(150, seed=11)


@pytest.fixture(scope="module")
def many_points(coverage) -> gpd.GeoDataFrame:
    return make_points(20_000, coverage, seed=12, on_vertices=0.02, outside=0.01)


@pytest.mark.parametrize("cell_size", [None, 250.0, 3000.0])
def test_equals_brute_force_on_synthetic_coverage(coverage, many_points, cell_size):
    index = build_grid_index(coverage, cell_size=cell_size)
    assert 0 < index.border_fraction < 1
    result = assign_points(many_points, coverage, index=index)
    expected = brute_force(many_points, coverage)
    assert codes_of(result) == list(expected)
    # The data holds hundreds of points on shared vertices and ~200 outside.
    assert result.n_unassigned == (expected == None).sum() > 100  # noqa: E711


def test_overlapping_grids_interior_beats_boundary_then_smallest_code():
    grids = gpd.GeoDataFrame(
        {"code": ["B", "A", "C"]},
        geometry=[
            shapely.box(0, 0, 100, 100),
            shapely.box(50, 0, 150, 100),
            shapely.box(0, 0, 50, 50),
        ],
        crs=4545,
    )
    # (75, 50): interior of A and B -> A; (100, 50): interior of A, boundary of B -> A;
    # (50, 75): interior of B, boundary of A -> B; (25, 25): interior of B and C -> B;
    # (50, 25): interior of B, boundary of A and C -> B.
    points = points_at([(75, 50), (100, 50), (50, 75), (25, 25), (50, 25)])
    result = assign_points(points, grids, index=build_grid_index(grids, cell_size=3.0))
    assert codes_of(result) == ["A", "A", "B", "B", "B"]
    assert codes_of(result) == list(brute_force(points, grids))


def test_real_sample_households_each_in_exactly_one_grid():
    grids = read_layer(SAMPLE_DATA / "grids.shp")
    households = read_layer(SAMPLE_DATA / "households.shp")
    result = assign_points(households, grids, grid_id="grid_code")
    assert result.n_unassigned == 0
    assert result.grid.notna().all()
    assert codes_of(result) == list(brute_force(households, grids, "grid_code"))
    # Grids tile their villages, so a household's grid lies in the household's village.
    village = grids.set_index("grid_code")["vill_code"]
    assert (village.loc[result.grid.astype(str)].to_numpy() == households["vill_code"]).all()
    # And the per-grid counts match the counts recorded when the sample was generated.
    counts = result.grid.value_counts()
    assert (counts.loc[grids["grid_code"]].to_numpy() == grids["households"].to_numpy()).all()


@pytest.mark.parametrize("layer", ["pollution", "hazards", "incidents"])
def test_real_sample_other_point_layers(layer):
    grids = read_layer(SAMPLE_DATA / "grids.shp")
    points = read_layer(SAMPLE_DATA / f"{layer}.shp")
    result = assign_points(points, grids, grid_id="grid_code")
    assert codes_of(result) == list(brute_force(points, grids, "grid_code"))
    assert result.n_unassigned == 0


# --- re-assignment after a redraw ------------------------------------------------------


def assert_same(a: AssignmentResult, b: AssignmentResult) -> None:
    assert list(a.index.codes) == list(b.index.codes)
    assert codes_of(a) == codes_of(b)
    pd.testing.assert_frame_equal(a.unassigned, b.unassigned)


def test_reassign_equals_full_rerun_after_split_and_merge(coverage, many_points):
    before = assign_points(many_points, coverage)
    new = redraw(coverage, fraction=0.05, seed=3)
    assert len(new) != len(coverage)
    after = reassign_points(before, new)
    assert_same(after, assign_points(many_points, new))
    assert after.reexamined is not None
    assert 0 < after.reexamined.size < 0.3 * len(many_points)
    # Some points really changed grid.
    assert (before.grid.astype(str) != after.grid.astype(str)).sum() > 0


def test_reassign_gap_overlap_and_new_grid(coverage, many_points):
    before = assign_points(many_points, coverage)
    new = coverage.copy()
    first, second = new.index[:2]
    new = new.drop(index=first)  # a gap: its points become unassigned, with distances
    grown = new.loc[second, "geometry"].buffer(300)  # overlaps its neighbours now
    new.loc[second, "geometry"] = grown
    _, miny, maxx, maxy = coverage.total_bounds
    outside = shapely.box(maxx, miny, maxx + 2000, maxy)  # covers points east of the extent
    new = pd.concat(
        [new, gpd.GeoDataFrame({"code": ["G0000000"]}, geometry=[outside], crs=new.crs)]
    )
    after = reassign_points(before, new)
    full = assign_points(many_points, new)
    assert_same(after, full)
    assert after.n_unassigned > 0
    # Chained: redraw again from the re-assigned result (its grids have no raster yet).
    newer = redraw(new, fraction=0.1, seed=4)
    assert_same(reassign_points(after, newer), assign_points(many_points, newer))
    # From a full assignment of overlapping grids (the raster leaves overlaps to the exact
    # test, which the re-assignment relies on).
    overlapping = assign_points(many_points, new, index=build_grid_index(new, cell_size=150.0))
    assert_same(reassign_points(overlapping, newer), assign_points(many_points, newer))


def test_reassign_recognises_unchanged_grids_that_are_new_objects(coverage, many_points):
    before = assign_points(many_points, coverage)
    new = redraw(coverage, fraction=0.05, seed=5)
    # Every polygon a new object with the same coordinates (as read again from a file).
    copies = shapely.from_wkb(shapely.to_wkb(np.asarray(new.geometry, dtype=object)))
    new = new.set_geometry(gpd.GeoSeries(copies, index=new.index, crs=new.crs))
    after = reassign_points(before, new)
    assert_same(after, assign_points(many_points, new))
    assert after.reexamined is not None
    assert after.reexamined.size < 0.3 * len(many_points)  # only the redrawn grids' points


def test_reassign_on_real_sample_in_lonlat():
    grids = read_layer(SAMPLE_DATA / "grids.shp")
    households = read_layer(SAMPLE_DATA / "households.shp")
    before = assign_points(households, grids, grid_id="grid_code")
    new = grids.iloc[1:].copy()  # one grid withdrawn: its households fall outside
    a, b = new.index[:2]
    new.loc[a, "geometry"] = shapely.union(new.loc[a, "geometry"], new.loc[b, "geometry"])
    new = new.drop(index=b)
    after = reassign_points(before, new)
    full = assign_points(households, new, grid_id="grid_code")
    assert_same(after, full)
    assert after.n_unassigned == grids["households"].iloc[0]
    assert (after.unassigned["distance_m"] >= 0).all()


def test_reassign_refuses_other_crs(coverage, many_points):
    before = assign_points(many_points, coverage)
    with pytest.raises(CRSError, match=r"convert them with \.to_crs"):
        reassign_points(before, coverage.to_crs(4490))


def test_no_warning_when_crs_match():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assign_points(points_at([(50, 50)]), three_grids())


@pytest.mark.parametrize("crs", [4545, 4490])
@pytest.mark.parametrize(
    ("b_from", "nearest", "distance"),
    [
        (200.0, "C", 40.0),  # B redrawn but still farther: C stays the nearest
        (180.0, "B", 40.0),  # B redrawn as near as C: the tie goes to the smaller code
        (170.0, "B", 30.0),  # B redrawn nearer: B becomes the nearest
    ],
)
def test_reassign_outside_point_nearest_grid_after_redraw(crs, b_from, nearest, distance):
    # A point outside every grid whose nearest grid (C) is unchanged: only the redrawn grid
    # can come nearer. In EPSG:4490 the same layout is scaled to degrees near Dachuan.
    def place(shape: shapely.Geometry) -> shapely.Geometry:
        if crs == 4545:
            return shape
        return shapely.affinity.affine_transform(shape, [1e-5, 0, 0, 1e-5, 107.5, 31.2])

    def grids(b: shapely.Polygon) -> gpd.GeoDataFrame:
        shapes = [place(shapely.box(0, 0, 100, 100)), place(b)]
        return gpd.GeoDataFrame({"code": ["C", "B"]}, geometry=shapes, crs=crs)

    points = gpd.GeoDataFrame(
        geometry=[place(shapely.Point(50, 50)), place(shapely.Point(140, 50))], crs=crs
    )
    before = assign_points(points, grids(shapely.box(250, 0, 350, 100)))
    assert before.unassigned["nearest"].tolist() == ["C"]
    new = grids(shapely.box(b_from, 0, 350, 100))
    after = reassign_points(before, new)
    assert_same(after, assign_points(points, new))
    if crs == 4545:
        assert after.unassigned["nearest"].tolist() == [nearest]
        assert after.unassigned["distance_m"].iloc[0] == pytest.approx(distance)
    elif b_from != 180.0:  # in the Gauss-Krueger zone the two 40 m are not an exact tie
        assert after.unassigned["nearest"].tolist() == [nearest]


@pytest.mark.parametrize("kind", ["object", "int"])
def test_reassign_with_codes_not_in_arrow(coverage, many_points, kind):
    # Codes as Python objects or integers take the dict lookup instead of Arrow's.
    def recode(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
        text = frame["code"].astype(str)
        if kind == "int":  # "G0000042" -> 420, "G0000042b" -> 421: order kept
            codes = text.str.slice(1, 8).astype(int) * 10 + text.str.endswith("b")
        else:
            codes = pd.Series(text.to_numpy(dtype=object), index=frame.index, dtype=object)
        return frame.assign(code=codes)

    old, new = recode(coverage), recode(redraw(coverage, fraction=0.05, seed=6))
    assert str(old["code"].dtype) == ("int64" if kind == "int" else "object")
    before = assign_points(many_points, old)
    after = reassign_points(before, new)
    assert_same(after, assign_points(many_points, new))
    assert after.reexamined is not None
    assert after.reexamined.size < 0.3 * len(many_points)
