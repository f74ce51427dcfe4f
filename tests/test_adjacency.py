"""gis_grid.adjacency: hand-computed cases on 1 km squares, then the real sample grids."""

from __future__ import annotations

import itertools

import geopandas as gpd
import numpy as np
import pytest
import shapely

from gis_grid.adjacency import PAIR_COLUMNS, build_adjacency
from gis_grid.errors import CRSError, DataFileError, DuplicateCodeError, GeometryError
from tests.conftest import SAMPLE_DATA

X0, Y0 = 500_000.0, 3_400_000.0  # EPSG:4545, near 108 E 30.7 N
KM = 1000.0


def squares(cols: int, rows: int) -> gpd.GeoDataFrame:
    """``cols`` x ``rows`` 1 km squares, codes A, B, … row by row from the south-west, in 4490."""
    cells = [
        shapely.box(X0 + c * KM, Y0 + r * KM, X0 + (c + 1) * KM, Y0 + (r + 1) * KM)
        for r in range(rows)
        for c in range(cols)
    ]
    codes = [chr(ord("A") + i) for i in range(len(cells))]
    return gpd.GeoDataFrame({"code": codes}, geometry=cells, crs=4545).to_crs(4490)


def pair_set(adjacency, contact: str | None = None) -> set[tuple[str, str]]:
    pairs = adjacency.pairs
    if contact is not None:
        pairs = pairs[pairs["contact"] == contact]
    return set(zip(pairs["a"], pairs["b"], strict=True))


def by_pair(adjacency, column: str) -> dict[tuple[str, str], object]:
    pairs = adjacency.pairs
    return {(a, b): v for a, b, v in zip(pairs["a"], pairs["b"], pairs[column], strict=True)}


def test_2x2_rook_pairs_with_exact_lengths() -> None:
    adjacency = build_adjacency(squares(2, 2))
    assert tuple(adjacency.pairs.columns) == PAIR_COLUMNS
    assert pair_set(adjacency) == {("A", "B"), ("A", "C"), ("B", "D"), ("C", "D")}
    assert adjacency.pairs["shared_m"].to_numpy() == pytest.approx([KM] * 4, abs=1e-6)
    assert adjacency.pairs["exact"].all()
    assert adjacency.crs.to_epsg() == 4545
    assert sorted(adjacency.neighbours("A")) == ["B", "C"]


def test_2x2_corner_contacts_only_when_asked() -> None:
    adjacency = build_adjacency(squares(2, 2), corners=True)
    assert pair_set(adjacency, "corner") == {("A", "D"), ("B", "C")}
    assert pair_set(adjacency, "border") == {("A", "B"), ("A", "C"), ("B", "D"), ("C", "D")}
    corners = adjacency.pairs[adjacency.pairs["contact"] == "corner"]
    assert (corners["shared_m"] == 0).all()
    assert adjacency.to_networkx().number_of_edges() == 4
    assert adjacency.to_networkx(corners=True).number_of_edges() == 6


def test_3x3_rook_pairs() -> None:
    adjacency = build_adjacency(squares(3, 3))
    expected = set()
    for r, c in itertools.product(range(3), range(3)):
        here = chr(ord("A") + 3 * r + c)
        if c < 2:
            expected.add((here, chr(ord(here) + 1)))
        if r < 2:
            expected.add((here, chr(ord(here) + 3)))
    assert pair_set(adjacency) == expected
    assert len(expected) == 12
    assert adjacency.pairs["shared_m"].to_numpy() == pytest.approx([KM] * 12, abs=1e-6)
    assert sorted(adjacency.neighbours("E")) == ["B", "D", "F", "H"]
    with_corners = build_adjacency(squares(3, 3), corners=True)
    assert len(pair_set(with_corners, "corner")) == 8  # 4 diagonals per 2x2 block x 4 blocks / 2
    graph = adjacency.to_networkx()
    assert graph.number_of_nodes() == 9
    assert graph.edges["A", "B"]["shared_m"] == pytest.approx(KM)


def test_sliver_contact_below_min_shared_is_excluded() -> None:
    # B touches A along 0.5 m only (its south-west corner sits 0.5 m below A's north-east corner).
    a = shapely.box(X0, Y0, X0 + KM, Y0 + KM)
    b = shapely.box(X0 + KM, Y0 + KM - 0.5, X0 + 2 * KM, Y0 + 2 * KM)
    grids = gpd.GeoDataFrame({"code": ["A", "B"]}, geometry=[a, b], crs=4545).to_crs(4490)
    assert build_adjacency(grids).pairs.empty
    loose = build_adjacency(grids, min_shared_m=0.1)
    assert loose.pairs["shared_m"].to_numpy() == pytest.approx([0.5], abs=1e-6)
    kept = build_adjacency(grids, corners=True)
    assert kept.pairs["contact"].tolist() == ["corner"]
    assert kept.pairs["shared_m"].to_numpy() == pytest.approx([0.5], abs=1e-6)


def test_river_crossing_a_shared_border_is_flagged() -> None:
    grids = squares(2, 1)  # A | B, shared border x = X0 + 1 km
    crossing = shapely.LineString([(X0 + 500, Y0 + 500), (X0 + 1500, Y0 + 500)])
    along = shapely.LineString([(X0 + KM, Y0 - 100), (X0 + KM, Y0 + 1100)])
    inside = shapely.LineString([(X0 + 100, Y0 + 100), (X0 + 400, Y0 + 900)])
    rivers = gpd.GeoSeries([crossing], crs=4545).to_crs(4490)
    row = build_adjacency(grids, barriers=rivers, barrier_buffer_m=30).pairs.iloc[0]
    assert bool(row["barrier"])
    assert row["barrier_m"] == pytest.approx(60.0, abs=1e-3)  # 30 m either side of the crossing
    row = build_adjacency(grids, barriers=gpd.GeoSeries([along], crs=4545)).pairs.iloc[0]
    assert bool(row["barrier"])
    assert row["barrier_m"] == pytest.approx(KM, abs=1e-3)  # the river is the border
    row = build_adjacency(grids, barriers=gpd.GeoSeries([inside], crs=4545)).pairs.iloc[0]
    assert not bool(row["barrier"])
    assert row["barrier_m"] == 0
    with pytest.raises(CRSError, match="barriers"):
        build_adjacency(grids, barriers=gpd.GeoSeries([crossing]))


def _t_junction(offset: float = 0.0) -> gpd.GeoDataFrame:
    # A's east edge is one segment; B and C split it at y = 500 (+ offset): no shared vertex.
    a = shapely.box(X0, Y0, X0 + KM, Y0 + KM)
    b = shapely.box(X0 + KM + offset, Y0, X0 + 2 * KM, Y0 + 500)
    c = shapely.box(X0 + KM + offset, Y0 + 500, X0 + 2 * KM, Y0 + KM)
    return gpd.GeoDataFrame({"code": ["A", "B", "C"]}, geometry=[a, b, c], crs=4545)


def test_non_identical_vertices_fall_back_to_overlay() -> None:
    exact = build_adjacency(_t_junction(), method="exact")
    assert pair_set(exact) == {("B", "C")}  # hashing alone misses the T-junction
    auto = build_adjacency(_t_junction())
    assert pair_set(auto) == {("A", "B"), ("A", "C"), ("B", "C")}
    lengths = by_pair(auto, "shared_m")
    assert lengths["A", "B"] == pytest.approx(500, abs=0.1)
    assert lengths["A", "C"] == pytest.approx(500, abs=0.1)
    assert lengths["B", "C"] == pytest.approx(KM, abs=1e-6)
    exact_flags = by_pair(auto, "exact")
    assert exact_flags == {("A", "B"): False, ("A", "C"): False, ("B", "C"): True}
    # A 3 cm gap between digitised borders is closed by the 0.1 m tolerance, 5 m is not.
    assert len(build_adjacency(_t_junction(0.03)).pairs) == 3
    assert pair_set(build_adjacency(_t_junction(5.0))) == {("B", "C")}


def test_multipolygon_grid_counts_every_part() -> None:
    a = shapely.MultiPolygon(
        [shapely.box(X0, Y0, X0 + KM, Y0 + KM), shapely.box(X0 + 2 * KM, Y0, X0 + 3 * KM, Y0 + KM)]
    )
    b = shapely.box(X0 + KM, Y0, X0 + 2 * KM, Y0 + KM)
    grids = gpd.GeoDataFrame({"code": ["A", "B"]}, geometry=[a, b], crs=4545)
    assert build_adjacency(grids).pairs["shared_m"].to_numpy() == pytest.approx([2 * KM])


def test_bad_input_is_refused_naming_the_row() -> None:
    grids = squares(2, 1)
    with pytest.raises(CRSError):
        build_adjacency(
            gpd.GeoDataFrame(grids.drop(columns="geometry"), geometry=[shapely.box(0, 0, 1, 1)] * 2)
        )
    with pytest.raises(DataFileError, match="grid_code"):
        build_adjacency(grids, id_field="grid_code")
    with pytest.raises(DuplicateCodeError):
        build_adjacency(grids.assign(code=["A", "A"]))
    broken = grids.copy()
    broken.loc[1, "geometry"] = None
    with pytest.raises(GeometryError, match=r"row 2 \(code='B'\)"):
        build_adjacency(broken)


@pytest.fixture(scope="module")
def sample_grids() -> gpd.GeoDataFrame:
    return gpd.read_file(SAMPLE_DATA / "grids.shp")


def test_sample_grids_match_a_brute_force_overlay(sample_grids: gpd.GeoDataFrame) -> None:
    adjacency = build_adjacency(sample_grids, id_field="grid_code")
    assert adjacency.pairs["exact"].all()  # the sample is a clean coverage
    boundaries = np.asarray(sample_grids.geometry.to_crs(4545).boundary.array)
    codes = sample_grids["grid_code"].to_numpy()
    i, j = np.triu_indices(len(codes), k=1)
    lengths = shapely.length(shapely.intersection(boundaries[i], boundaries[j]))
    expected = {
        (a, b): length
        for a, b, length in zip(codes[i], codes[j], lengths, strict=True)
        if length >= 1.0
    }
    found = by_pair(adjacency, "shared_m")
    assert set(found) == set(expected)
    for key, value in expected.items():
        assert found[key] == pytest.approx(value, rel=1e-9)


def test_sample_grids_with_rivers(sample_grids: gpd.GeoDataFrame) -> None:
    rivers = gpd.read_file(SAMPLE_DATA / "rivers.shp")
    adjacency = build_adjacency(sample_grids, id_field="grid_code", barriers=rivers)
    flagged = adjacency.pairs[adjacency.pairs["barrier"]]
    assert 0 < len(flagged) < len(adjacency.pairs)
    assert (flagged["barrier_m"] <= flagged["shared_m"] + 1e-9).all()
    # Only Heshi (河市镇, 511703129) is crossed by the GSHHG river.
    assert flagged["a"].str.startswith("511703129").all()
