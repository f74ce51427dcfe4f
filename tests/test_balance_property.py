"""Balance reports on random towns agree with an independent count (Hypothesis).

``test_balance.py`` checks hand-made cases and the sample. Here Hypothesis draws Voronoi
coverages in EPSG:4490 (tests/redraws.py), households inside and outside them (every grid
vertex among them: points on shared borders), members serving zero, one or two grids' worth
(and some a grid that does not exist), a band and the load it applies to, and checks the
report against a brute-force count: households and people per grid (a border point goes to
the smallest code, a point outside every grid is reported), members per grid and the
article 5 issues, the load per member and the band flags, each member's home distance in
metres, and the spread (mean, max deviation, CV, and the Gini index as the mean absolute
difference over all pairs).

Deterministic (``derandomize``): the same examples every CI run.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import given
from hypothesis import strategies as st

from gis_grid.balance import balance_report
from tests.redraws import coverage, points_for, property_settings

PROPERTY = property_settings(40)


def brute_grid(grids: gpd.GeoDataFrame, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Smallest code among the grids covering each point (None outside every grid)."""
    best = np.full(x.size, None, dtype=object)
    for code, geom in sorted(zip(grids["code"], grids.geometry, strict=True), reverse=True):
        best[shapely.intersects_xy(geom, x, y)] = code  # smaller codes overwrite larger
    return best


def issues_of(report, kind: str) -> set:
    rows = report.issues[report.issues["kind"] == kind]
    return set(rows["member"] if kind in ("unknown_grid", "home_far") else rows["grid"])


@PROPERTY
@given(
    seed=st.integers(0, 2**16),
    n=st.integers(2, 25),
    by=st.sampled_from(["households", "people"]),
    data=st.data(),
)
def test_balance_report_equals_a_brute_force_count(seed, n, by, data):
    grids = coverage(seed, n, 4490)
    codes = sorted(grids["code"])
    homes = points_for(grids, seed)
    rng = np.random.default_rng(seed)
    homes["people"] = rng.integers(1, 7, len(homes))
    staff = data.draw(
        st.lists(st.sampled_from([*codes, "G999"]), max_size=2 * len(codes)), label="staff"
    )
    places = points_for(grids, seed + 7).iloc[: len(staff)]
    members = gpd.GeoDataFrame(
        {"member_id": [f"M{k}" for k in range(len(staff))], "grid_code": staff},
        geometry=places.geometry.to_numpy(),
        crs=grids.crs,
    )
    low = data.draw(st.integers(0, 60), label="low")
    band = (low, low + data.draw(st.integers(0, 60), label="width"))

    report = balance_report(grids, households=homes, members=members, band=band, by=by)
    table = report.grids

    # Households and people per grid; the rest reported as outside every grid.
    x, y = homes.geometry.x.to_numpy(), homes.geometry.y.to_numpy()
    where = pd.Series(brute_grid(grids, x, y), index=homes.index)
    inside = where.notna()
    counts = where[inside].value_counts().reindex(codes, fill_value=0)
    people = homes.loc[inside, "people"].groupby(where[inside]).sum().reindex(codes, fill_value=0)
    assert table["households"].reindex(codes).tolist() == counts.tolist()
    assert table["people"].reindex(codes).tolist() == people.tolist()
    unassigned = report.issues[report.issues["kind"] == "unassigned"]
    assert (len(unassigned) > 0) == (not inside.all())
    # Area in the Gauss-Krüger zone.
    area = grids.set_index("code").to_crs(4545).area / 1e6
    assert table["area_km2"].reindex(codes).to_numpy() == pytest.approx(area[codes].to_numpy())

    # Members per grid (一格一员), the load per member and the band.
    serving = pd.Series(staff, dtype=object).value_counts().reindex(codes, fill_value=0)
    assert table["members"].reindex(codes).tolist() == serving.tolist()
    assert issues_of(report, "no_member") == set(serving.index[serving == 0])
    assert issues_of(report, "several_members") == set(serving.index[serving > 1])
    unknown = {f"M{k}" for k, code in enumerate(staff) if code == "G999"}
    assert issues_of(report, "unknown_grid") == unknown
    per_member = table[by] / table["members"].clip(lower=1)
    assert table["per_member"].to_numpy() == pytest.approx(per_member.to_numpy())
    below, above = set(table.index[per_member < band[0]]), set(table.index[per_member > band[1]])
    assert issues_of(report, "below_band") == below
    assert issues_of(report, "above_band") == above
    assert set(table.index[table["band"] == "within"]) == set(codes) - below - above

    # Home distance: 0 inside the grid served, else metres in the Gauss-Krüger zone.
    gk_grids = grids.set_index("code").to_crs(4545).geometry
    gk_homes = members.to_crs(4545).set_index("member_id").geometry
    for member, row in report.members.iterrows():
        if row["grid"] not in gk_grids.index:
            continue
        expected = gk_homes[member].distance(gk_grids[row["grid"]])
        assert row["home_m"] == pytest.approx(expected, abs=1e-3)
        assert row["home_inside"] == (row["home_m"] == 0)

    # Spread across grids.
    for metric in ("households", by):
        values = table[metric].to_numpy(dtype=float)
        got = report.spread.loc[metric]
        mean = values.mean()
        assert got["mean"] == pytest.approx(mean)
        assert (got["min"], got["max"]) == (values.min(), values.max())
        if mean == 0:
            assert np.isnan(got["gini"])
            continue
        assert got["max_dev_pct"] == pytest.approx(np.abs(values - mean).max() / mean * 100)
        assert got["cv"] == pytest.approx(values.std() / mean)
        pairs = np.abs(values[:, None] - values[None, :]).sum()
        assert got["gini"] == pytest.approx(pairs / (2 * values.size**2 * mean))
