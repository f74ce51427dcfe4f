"""gis_grid.backup: AB pairing (article 11) and absence plans, by hand and on the sample data."""

from __future__ import annotations

import geopandas as gpd
import networkx as nx
import pandas as pd
import pytest
import shapely

from gis_grid.adjacency import build_adjacency
from gis_grid.backup import CoverError, pair_ab_posts, plan_absence
from gis_grid.balance import balance_report
from gis_grid.errors import NotFoundError
from tests.conftest import SAMPLE_DATA

X0, Y0 = 500_000.0, 3_400_000.0
KM = 1000.0


def grid_frame(cells: dict[str, shapely.Polygon]) -> gpd.GeoDataFrame:
    frame = gpd.GeoDataFrame({"code": list(cells)}, geometry=list(cells.values()), crs=4545)
    return frame.to_crs(4490)


def box(x0: float, y0: float, x1: float, y1: float) -> shapely.Polygon:
    return shapely.box(X0 + x0, Y0 + y0, X0 + x1, Y0 + y1)


def two_by_two() -> gpd.GeoDataFrame:
    # C D
    # A B
    return grid_frame(
        {"A": box(0, 0, KM, KM), "B": box(KM, 0, 2 * KM, KM),
         "C": box(0, KM, KM, 2 * KM), "D": box(KM, KM, 2 * KM, 2 * KM)}
    )  # fmt: skip


def members_of(grids: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """One member per grid, living at its centre: M_A serves A, …"""
    homes = grids.to_crs(4545).geometry.centroid
    return gpd.GeoDataFrame(
        {"member_id": "M_" + grids["code"], "grid_code": grids["code"]}, geometry=homes, crs=4545
    )


def plan_for(grids: gpd.GeoDataFrame, **options: object):
    return pair_ab_posts(grids, build_adjacency(grids), **options)


def backups(plan) -> dict[str, str]:
    return plan.cover["backup_grid"].to_dict()


def test_even_grid_gets_a_perfect_matching() -> None:
    plan = plan_for(two_by_two(), members=members_of(two_by_two()))
    assert all(len(group) == 2 for group in plan.groups)
    assert sorted(g for group in plan.groups for g in group) == list("ABCD")
    cover = backups(plan)
    assert all(cover[cover[g]] == g for g in "ABCD")  # partners back each other up
    assert (plan.cover["link"] == "adjacent").all()
    assert (plan.cover["kind"] == "pair").all()
    assert plan.cover.loc["A", "backup_member"] == "M_" + cover["A"]
    assert plan.uncovered.empty


def test_long_borders_are_preferred() -> None:
    # Flat strips: A-B and C-D share 100 m, A-C and B-D share 1 km.
    grids = grid_frame(
        {"A": box(0, 0, KM, 100), "B": box(KM, 0, 2 * KM, 100),
         "C": box(0, 100, KM, 200), "D": box(KM, 100, 2 * KM, 200)}
    )  # fmt: skip
    assert set(plan_for(grids).groups) == {("A", "C"), ("B", "D")}


def test_small_combined_load_is_preferred() -> None:
    load = pd.Series({"A": 300, "B": 300, "C": 100, "D": 100})
    plan = plan_for(two_by_two(), load=load)
    assert set(plan.groups) == {("A", "C"), ("B", "D")}  # never the two heavy grids together
    balanced = balance_report(
        two_by_two(),
        households=gpd.GeoDataFrame({"grid_code": list("AABBBC")}, geometry=[None] * 6),
    )
    assert set(plan_for(two_by_two(), load=balanced).groups) == {("A", "C"), ("B", "D")}


def test_odd_number_of_grids_forms_a_ring() -> None:
    grids = grid_frame({c: box(i * KM, 0, (i + 1) * KM, KM) for i, c in enumerate("ABC")})
    plan = plan_for(grids)
    assert len(plan.groups) == 1
    ring = plan.groups[0]
    assert sorted(ring) == ["A", "B", "C"]
    cover = backups(plan)
    assert sorted(cover) == ["A", "B", "C"]
    assert sorted(cover.values()) == ["A", "B", "C"]  # each member covers exactly one grid
    assert all(cover[g] != g for g in cover)
    # A and C do not touch: exactly one link of the ring reaches the second ring.
    assert sorted(plan.cover["link"]) == ["adjacent", "adjacent", "second_ring"]
    assert (plan.cover["kind"] == "ring").all()


def test_three_grids_meeting_form_an_all_adjacent_ring() -> None:
    grids = grid_frame(
        {"A": box(0, 0, KM, KM), "B": box(KM, 0, 2 * KM, KM), "C": box(0, KM, 2 * KM, 2 * KM)}
    )
    plan = plan_for(grids)
    assert (plan.cover["link"] == "adjacent").all()
    assert plan.cover["hops"].tolist() == [1, 1, 1]


def test_island_grid_is_covered_by_the_nearest_grid() -> None:
    cells = {"A": box(0, 0, KM, KM), "B": box(KM, 0, 2 * KM, KM), "I": box(5 * KM, 0, 6 * KM, KM)}
    plan = plan_for(grid_frame(cells))
    island = plan.cover.loc["I"]
    assert island["link"] == "nearest"
    assert island["backup_grid"] == "B"  # B is 3 km away, A 4 km
    assert island["gap_m"] == pytest.approx(3 * KM, abs=1e-3)
    assert sorted(plan.cover.index) == ["A", "B", "I"]
    assert plan.uncovered.empty
    alone = plan_for(grid_frame({"I": box(0, 0, KM, KM)}))
    assert alone.uncovered["reason"].str.contains("only grid").all()
    assert alone.cover.empty


def test_islands_back_each_other_up_once() -> None:
    # No grid touches another: the first island's nearest grid is the other, unpaired too.
    # They form one pair, each grid in it once (the second used to be listed twice, backing
    # itself up); a third island joins them in a ring.
    two = plan_for(grid_frame({"A": box(0, 0, KM, KM), "B": box(3 * KM, 0, 4 * KM, KM)}))
    assert two.groups == (("A", "B"),)
    assert backups(two) == {"A": "B", "B": "A"}
    assert (two.cover["link"] == "nearest").all()
    assert two.cover["gap_m"].to_numpy() == pytest.approx([2 * KM, 2 * KM], abs=1e-3)
    cells = {
        "A": box(0, 0, KM, KM),
        "B": box(3 * KM, 0, 4 * KM, KM),
        "C": box(9 * KM, 0, 10 * KM, KM),
    }
    three = plan_for(grid_frame(cells))
    assert len(three.groups) == 1
    assert sorted(three.groups[0]) == ["A", "B", "C"]
    assert sorted(three.cover.index) == ["A", "B", "C"]
    assert sorted(backups(three).values()) == ["A", "B", "C"]  # a ring: each covered once
    assert three.uncovered.empty


def test_absence_is_covered_by_the_ab_partner() -> None:
    grids = two_by_two()
    load = pd.Series({"A": 200, "B": 210, "C": 220, "D": 230})
    plan = plan_for(grids, members=members_of(grids), load=load)
    partner = backups(plan)["A"]
    today = plan_absence(plan, ["M_A"])
    row = today.assignments.iloc[0]
    assert (row["grid"], row["absent"], row["rule"]) == ("A", "M_A", "ab_post")
    assert row["cover_member"] == "M_" + partner
    helper = today.load.loc["M_" + partner]
    assert helper["covers"] == "A"
    assert helper["total_load"] == load[partner] + 200
    assert "M_A" not in today.load.index


def test_absent_pair_goes_to_free_neighbours() -> None:
    grids = two_by_two()
    plan = plan_for(grids, members=members_of(grids))
    a, b = plan.groups[0]
    today = plan_absence(plan, ["M_" + a, "M_" + b])
    assert sorted(today.assignments["grid"]) == sorted([a, b])
    assert set(today.assignments["rule"]) <= {"neighbour", "second_ring"}
    assert today.assignments["cover_member"].is_unique  # max_extra=1: one grid each


def test_refuses_when_no_cover_is_possible() -> None:
    grids = grid_frame({"A": box(0, 0, KM, KM), "B": box(KM, 0, 2 * KM, KM)})
    plan = plan_for(grids, members=members_of(grids))
    with pytest.raises(CoverError, match=r"grid A: .*M_B is absent too"):
        plan_absence(plan, ["M_A", "M_B"])
    # 2x2 with three absent: D's member can take one grid only.
    square = plan_for(two_by_two(), members=members_of(two_by_two()))
    with pytest.raises(CoverError, match="already covers"):
        plan_absence(square, ["M_A", "M_B", "M_C"])
    partial = plan_absence(square, ["M_A", "M_B", "M_C"], strict=False)
    assert len(partial.assignments) == 1
    assert len(partial.uncovered) == 2
    assert len(plan_absence(square, ["M_A", "M_B", "M_C"], max_extra=3).assignments) == 3
    with pytest.raises(NotFoundError, match="M_Z"):
        plan_absence(square, ["M_Z"])


def test_vacant_grid_is_covered_too() -> None:
    grids = two_by_two()
    members = members_of(grids)
    plan = plan_for(grids, members=members[members["grid_code"] != "D"])
    assert not plan.uncovered.empty  # D's partner has no member to back it up
    today = plan_absence(plan, [])
    assert today.assignments["grid"].tolist() == ["D"]
    assert today.assignments["absent"].tolist() == [""]


def test_sample_data_every_grid_covered() -> None:
    grids = gpd.read_file(SAMPLE_DATA / "grids.shp")
    members = gpd.read_file(SAMPLE_DATA / "members.shp")
    adjacency = build_adjacency(
        grids, id_field="grid_code", barriers=gpd.read_file(SAMPLE_DATA / "rivers.shp")
    )
    report = balance_report(
        grids,
        households=gpd.read_file(SAMPLE_DATA / "households.shp"),
        members=members,
        id_field="grid_code",
    )
    plan = pair_ab_posts(grids, adjacency, load=report, members=members, id_field="grid_code")
    codes = set(grids["grid_code"])
    assert set(plan.cover.index) == codes
    assert plan.uncovered.empty
    in_groups = [g for group in plan.groups for g in group]
    assert sorted(in_groups) == sorted(codes)  # the groups partition the grids
    graph = adjacency.to_networkx()
    for grid, backup in backups(plan).items():
        hops = nx.shortest_path_length(graph, grid, backup)
        assert hops == 1 or (hops == 2 and plan.cover.loc[grid, "kind"] == "ring")
    pairs = [group for group in plan.groups if len(group) == 2]
    assert all(graph.has_edge(*pair) for pair in pairs)
    assert len(pairs) >= 31  # 65 grids: at most one ring per odd component
    absent = members["member_id"].iloc[::7].tolist()
    today = plan_absence(plan, absent)
    covered = set(today.assignments["grid"])
    assert covered == set(members.set_index("member_id").loc[absent, "grid_code"])
    assert not set(today.assignments["cover_member"]) & set(absent)
