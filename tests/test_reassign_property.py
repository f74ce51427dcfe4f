"""Re-assignment after chains of random redraws equals a full re-run (Hypothesis).

The hand-written cases in ``test_assign.py`` cover one kind of redraw each. Here Hypothesis
draws chains of up to four edits of a small coverage (split, merge, remove, grow into the
neighbours, shrink away from them, move, add a grid, rename one, replace shapes by equal
copies) and after each edit the re-assignment, started from the previous re-assignment, must
give every point the grid a full :func:`~gis_grid.assign.assign_points` gives it, and the
same unassigned report (nearest grid, distance). The points include every vertex of the
first coverage (on shared borders), points on its straight edges and points outside it; the
coverages come in metres (EPSG:4545) and in degrees near Dachuan (EPSG:4490).

Deterministic (``derandomize``): the same examples every CI run. Set
``GIS_GRID_PROPERTY_EXAMPLES`` (default 60) to search longer; 1,500 passed in about a minute.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from gis_grid.assign import AssignmentResult, assign_points, reassign_points
from tests.redraws import coverage, edit, edit_chains, points_for, property_settings

PROPERTY = property_settings(60)


def assert_same(after: AssignmentResult, full: AssignmentResult) -> None:
    assert list(after.index.codes) == list(full.index.codes)
    np.testing.assert_array_equal(after.positions, full.positions)
    pd.testing.assert_frame_equal(after.unassigned, full.unassigned)


@PROPERTY
@given(
    seed=st.integers(0, 2**16),
    n=st.integers(4, 40),
    crs=st.sampled_from([4545, 4490]),
    edits=edit_chains(min_size=1),
)
def test_reassign_after_random_redraws_equals_full_rerun(seed, n, crs, edits):
    grids = coverage(seed, n, crs)
    points = points_for(grids, seed)
    result = assign_points(points, grids)
    for op, pick, amount in edits:
        grids = edit(grids, op, pick, amount)
        result = reassign_points(result, grids)
        assert_same(result, assign_points(points, grids))
