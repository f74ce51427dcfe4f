"""Merge two neighbouring grids of one village (pure shapely, no database).

The two must belong to the same village and share a border (a line, not just a corner).
**The smaller code is kept** (its history goes on); the other grid is retired: its current
version is closed, no new version follows, and its history stays readable.
"""

from __future__ import annotations

import shapely

from gis_grid.edit._boundary import shared_border_m
from gis_grid.edit._faces import Layout, Outcome, as_multi, dissolve, lonlat, verify
from gis_grid.errors import ConflictError

__all__ = ["merge"]

_MIN_BORDER_M = 1e-3


def merge(layout: Layout, a: str, b: str) -> Outcome:
    """Merge grids ``a`` and ``b``; the smaller code keeps the union, the other retires.

    Parameters
    ----------
    layout
        The current grids of the village (and of the villages touching it).
    a, b
        The two grids, both of ``layout.village_code``.

    Returns
    -------
    Outcome
        The kept grid ``redrawn`` with the union, the other ``retired``.

    Raises
    ------
    ConflictError
        The grids are the same, or are not neighbours (no shared border, or only a corner,
        named with its lon/lat).
    """
    if a == b:
        msg = f"other: grid {a} cannot be merged with itself; name a neighbouring grid"
        raise ConflictError(msg, problems=[{"field": "other", "problem": "same grid"}])
    keep, gone = sorted((a, b))
    ga, gb = layout.geoms[layout.index(keep)], layout.geoms[layout.index(gone)]
    if shared_border_m(layout, ga, gb) <= _MIN_BORDER_M:
        touch = shapely.intersection(ga, gb)
        where = lonlat(touch) if not shapely.is_empty(touch) else {}
        how = (
            f"touch only at a corner near ({where['lon']}, {where['lat']})"
            if where
            else ("share no border")
        )
        msg = f"other: grids {keep} and {gone} are not neighbours: they {how}; merge neighbours"
        raise ConflictError(msg, problems=[{"field": "other", "problem": "not neighbours"} | where])
    outcome = Outcome()
    outcome.geoms[keep] = as_multi(dissolve([ga, gb]))
    outcome.change[keep] = "redrawn"
    outcome.change[gone] = "retired"
    verify(layout, outcome)
    return outcome
