"""Adjacency on random coverages equals a brute-force overlay of every pair (Hypothesis).

``test_adjacency.py`` checks hand-made squares and the sample. Here Hypothesis draws Voronoi
coverages (tests/redraws.py) and splits some grids with a straight cut, which leaves the
neighbours without the new vertices (the hashing of identical segments then misses those
borders, and the overlay fallback must find them). Every pair whose boundaries share at
least ``min_shared_m`` must be a border pair with that length; pairs that only touch must
be corner pairs when asked for, and absent otherwise. Where the overlay needs the
adjacency's ``tolerance_m`` (0.1 m) to see a border, lengths agree within it.

Deterministic (``derandomize``): the same examples every CI run.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import given
from hypothesis import strategies as st

from gis_grid.adjacency import build_adjacency
from tests.redraws import edit, metric_coverage, property_settings

PROPERTY = property_settings(40)


def brute_force(grids: gpd.GeoDataFrame, min_shared: float) -> tuple[dict, set]:
    """Shared boundary length of every pair (metres), and the pairs that only touch.

    The cut of a split leaves its new vertices a rounding error off the neighbour's edge,
    where an exact overlay sees the two boundaries cross at a point. So each pair's
    boundaries are first snapped to each other's vertices within a micrometre (both ways):
    shared up to rounding, as the adjacency's own ``tolerance_m`` treats them.
    """
    boundaries = np.asarray(grids.geometry.boundary.array)
    codes = grids["code"].to_numpy()
    i, j = np.triu_indices(len(codes), k=1)
    a, b = boundaries[i], boundaries[j]
    b = shapely.snap(b, a, 1e-6)
    a = shapely.snap(a, b, 1e-6)
    touching = shapely.intersects(a, b)
    lengths = shapely.length(shapely.intersection(a, b))
    border, corner = {}, set()
    for p, q, touch, length in zip(codes[i], codes[j], touching, lengths, strict=True):
        key = (min(p, q), max(p, q))
        if length >= min_shared:
            border[key] = float(length)
        elif touch:
            corner.add(key)
    return border, corner


@PROPERTY
@given(
    seed=st.integers(0, 2**16),
    n=st.integers(3, 40),
    splits=st.lists(st.tuples(st.integers(0, 10**6), st.floats(0.1, 0.9)), max_size=3),
    in_degrees=st.booleans(),
)
def test_adjacency_equals_brute_force_overlay(seed, n, splits, in_degrees):
    grids = metric_coverage(seed, n)
    for pick, amount in splits:
        grids = edit(grids, "split", pick, amount)
    border, corner = brute_force(grids, 1.0)
    source = grids.to_crs(4490) if in_degrees else grids

    adjacency = build_adjacency(source, corners=True)
    pairs = adjacency.pairs
    found = {
        (min(a, b), max(a, b)): (length, exact)
        for a, b, length, contact, exact in zip(
            pairs["a"], pairs["b"], pairs["shared_m"], pairs["contact"], pairs["exact"], strict=True
        )
        if contact == "border"
    }
    corners = {
        (min(a, b), max(a, b))
        for a, b, contact in zip(pairs["a"], pairs["b"], pairs["contact"], strict=True)
        if contact == "corner"
    }
    assert set(found) == set(border)
    # Lengths in the Gauss-Krüger zone. Hashed (exact) borders: the overlay's length, within
    # the rounding of the round trip to degrees. Borders matched within ``tolerance_m``
    # (0.1 m; here where a split left its cut's vertices off the neighbour's edge, or the
    # round trip moved a vertex by a nanometre): a stub of the other grid's boundary within
    # the tolerance of a shared vertex is matched too, so up to a tolerance per end.
    for key, length in border.items():
        measured, exact = found[key]
        if exact:
            assert measured == pytest.approx(length, rel=1e-6 if in_degrees else 1e-9)
        else:
            assert measured == pytest.approx(length, abs=0.2)
    # Every touching pair is a corner pair; where unmatched segments of two grids come within
    # the tolerance without touching (a Voronoi edge of a few millimetres between them), the
    # snapping makes them touch too.
    assert corner <= corners
    geoms = grids.set_index("code").geometry
    assert all(geoms[a].distance(geoms[b]) <= 0.1 for a, b in corners - corner)
    # Without corners: the same border pairs, no corner pair.
    plain = build_adjacency(source).pairs
    assert {(min(a, b), max(a, b)) for a, b in zip(plain["a"], plain["b"], strict=True)} == set(
        found
    )
