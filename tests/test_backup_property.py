"""AB-post plans and absence plans on random coverages keep their promises (Hypothesis).

``test_backup.py`` checks hand-made layouts and the sample. Here Hypothesis draws Voronoi
coverages (tests/redraws.py), some with island grids far from the rest, some grids without a
member and some with two, random loads and random sets of absent members, and checks what
article 11 asks:

* every grid is in exactly one group, and has a backup grid other than itself, unless it is
  the only grid;
* as many adjacent pairs as the adjacency graph allows (a maximum matching); a pair backs
  itself up both ways, a ring goes round; ``link`` and ``hops`` tell the truth;
* an absence plan gives every grid without a present member a present cover member (never
  one of the absent), at most ``max_extra`` grids each, by a rule that holds (AB partner,
  same ring, adjacent, or within two hops), with loads that add up; a grid left uncovered
  has no eligible member with a free slot.

Deterministic (``derandomize``): the same examples every CI run.
"""

from __future__ import annotations

import geopandas as gpd
import networkx as nx
import pandas as pd
import pytest
import shapely
from hypothesis import given
from hypothesis import strategies as st

from gis_grid.adjacency import build_adjacency
from gis_grid.backup import CoverError, pair_ab_posts, plan_absence
from tests.redraws import X0, Y0, metric_coverage, property_settings

PROPERTY = property_settings(40)


def layout(seed: int, n: int, islands: int) -> gpd.GeoDataFrame:
    """A coverage of ``n`` grids plus ``islands`` lone squares kilometres away from it."""
    grids = metric_coverage(seed, n)
    far = [
        shapely.box(X0 + 3000 * (k + 1), Y0, X0 + 3000 * (k + 1) + 200, Y0 + 200)
        for k in range(islands)
    ]
    extra = gpd.GeoDataFrame({"code": [f"I{k}" for k in range(islands)]}, geometry=far, crs=4545)
    return pd.concat([grids, extra], ignore_index=True)


def members_for(grids: gpd.GeoDataFrame, vacant: set[int], doubled: set[int]) -> gpd.GeoDataFrame:
    """One member per grid at home in it, none in the rows ``vacant``, two in ``doubled``."""
    staffed = grids.drop(index=sorted(vacant))
    second = staffed.loc[sorted(doubled - vacant)]
    frames = [(staffed, "M_"), (second, "N_")]
    return pd.concat(
        [
            gpd.GeoDataFrame(
                {"member_id": prefix + frame["code"], "grid_code": frame["code"]},
                geometry=frame.geometry.representative_point(),
                crs=grids.crs,
            )
            for frame, prefix in frames
        ],
        ignore_index=True,
    )


def hops_between(graph: nx.Graph, a: object, b: object) -> int:
    """Steps between two grids on the adjacency graph, -1 if not connected."""
    return nx.shortest_path_length(graph, a, b) if nx.has_path(graph, a, b) else -1


def check_ab_plan(plan, codes: list[str]) -> None:
    """Groups partition the grids, a maximum matching of pairs, truthful links."""
    graph, cover = plan.graph, plan.cover
    assert sorted(g for group in plan.groups for g in group) == sorted(codes)
    assert sorted(cover.index) == sorted(codes)
    assert (cover["backup_grid"] != cover.index.to_series()).all()
    # A maximum matching: each matched pair starts a group, and the grids left over join a
    # group (a ring) or, islands, pair with the nearest island. So the groups holding an
    # adjacent pair are as many as a maximum matching has pairs.
    matched = [g for g in plan.groups if graph.subgraph(g).number_of_edges()]
    assert len(matched) == len(nx.max_weight_matching(graph, maxcardinality=True))
    for group in plan.groups:
        for i, grid in enumerate(group):
            backup = group[(i + 1) % len(group)]
            row = cover.loc[grid]
            assert row["backup_grid"] == backup
            if len(group) == 2:
                assert cover.loc[backup, "backup_grid"] == grid
            hops = hops_between(graph, grid, backup)
            assert row["hops"] == hops
            assert (row["link"] == "adjacent") == (hops == 1)
            assert (row["link"] == "nearest") == (hops == -1)
    # A grid whose backup grid has no member is reported.
    assert set(cover.index[cover["backup_member"].isna()]) <= set(plan.uncovered["grid"])


def check_absence(
    plan, today, load: pd.Series, absent: set, *, max_extra: int, second_ring: bool
) -> None:
    """Every grid without a present member is covered by a rule that holds, or cannot be."""
    graph, cover = plan.graph, plan.cover
    serves = plan.members["grid"].to_dict()
    staffed = {grid for member, grid in serves.items() if member not in absent}
    needy = sorted(set(cover.index) - staffed)
    done = today.assignments
    assert sorted(list(done["grid"]) + list(today.uncovered["grid"])) == needy
    assert not set(done["cover_member"]) & absent
    assert (done["cover_member"].value_counts() <= max_extra).all()
    for row in done.itertuples():
        assert serves[row.cover_member] == row.cover_grid
        assert row.hops == hops_between(graph, row.grid, row.cover_grid)
        if row.rule == "ab_post":
            assert cover.loc[row.grid, "backup_grid"] == row.cover_grid
        elif row.rule == "group":
            assert cover.loc[row.grid, "group"] == cover.loc[row.cover_grid, "group"]
        elif row.rule == "neighbour":
            assert row.hops == 1
        else:
            assert (row.rule, second_ring, row.hops) == ("second_ring", True, 2)
    loads = today.load
    total = (loads["own_load"] + loads["extra_load"]).to_numpy()
    assert loads["total_load"].to_numpy() == pytest.approx(total)
    assert loads["extra_load"].sum() == pytest.approx(load.reindex(done["grid"]).sum())
    # Uncovered: every eligible member (partner, ring, neighbour, second ring) is busy.
    busy = done["cover_member"].value_counts().to_dict()
    for grid in today.uncovered["grid"]:
        near = {cover.loc[grid, "backup_grid"], *graph.neighbors(grid)}
        near |= {g for group in plan.groups if grid in group for g in group}
        if second_ring:
            near |= {h for g in graph.neighbors(grid) for h in graph.neighbors(g)}
        for member, own in serves.items():
            if member not in absent and own in near - {grid}:
                assert busy.get(member, 0) >= max_extra, (grid, member)


@PROPERTY
@given(
    seed=st.integers(0, 2**16),
    n=st.integers(1, 30),
    islands=st.integers(0, 2),
    data=st.data(),
)
def test_ab_plan_and_absence_plan_keep_their_promises(seed, n, islands, data):
    grids = layout(seed, n, islands).to_crs(4490)
    codes = list(grids["code"])
    vacant = data.draw(st.sets(st.integers(0, len(codes) - 1), max_size=2), label="vacant")
    doubled = data.draw(st.sets(st.integers(0, len(codes) - 1), max_size=3), label="doubled")
    loads = st.lists(st.integers(0, 400), min_size=len(codes), max_size=len(codes))
    load = pd.Series(data.draw(loads, label="load"), index=codes, dtype=float)
    plan = pair_ab_posts(
        grids, build_adjacency(grids), load=load, members=members_for(grids, vacant, doubled)
    )
    if len(codes) == 1:
        assert plan.cover.empty
        assert list(plan.uncovered["grid"]) == codes
        return
    check_ab_plan(plan, codes)

    members = list(plan.members.index)
    if not members:  # every grid vacant
        return
    absent = data.draw(st.sets(st.sampled_from(members), max_size=4), label="absent")
    max_extra = data.draw(st.integers(1, 2), label="max_extra")
    second_ring = data.draw(st.booleans(), label="second_ring")
    options = {"max_extra": max_extra, "second_ring": second_ring}
    try:
        today = plan_absence(plan, absent, **options)
    except CoverError as error:
        assert "no cover possible" in str(error)
        today = plan_absence(plan, absent, **options, strict=False)
        assert len(today.uncovered)
    else:
        assert today.uncovered.empty
    check_absence(plan, today, load, absent, **options)
