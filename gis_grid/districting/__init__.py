"""Drawing grids (网格划分): balanced, compact, inside villages, along natural lines.

Article 5 of the Zhaojia rules asks for grids drawn "因地制宜" from natural terrain and
population, one member per grid. :func:`draw_grids` builds small blocks per village from the
village boundary, the natural lines and a Voronoi partition of the households, partitions them
with METIS (cuts along lines are cheap, rivers and ridges are not straddled when a balanced
alternative exists), moves blocks across shared borders until every grid is within the band,
and dissolves the blocks into a clean coverage with standard grid codes. :func:`plan_quality`
measures any plan, drawn or hand-made; :func:`rebalance` and :func:`propose_counts` are the
planner's controls. :func:`draw_from_units` draws from given polygon units (census blocks)
with the same partition machinery.

Examples
--------
>>> from gis_grid.districting import draw_grids, natural_lines, plan_quality
>>> lines = natural_lines(rivers=rivers, streams=streams, roads=roads)  # doctest: +SKIP
>>> plan = draw_grids(villages, households, lines=lines, target=600)  # doctest: +SKIP
>>> plan_quality(plan, villages=villages, households=households, lines=lines).summary
... # doctest: +SKIP
"""

from gis_grid.districting._controls import propose_counts, rebalance
from gis_grid.districting._draw import Plan, draw_grids
from gis_grid.districting._inputs import (
    BARRIER_KINDS,
    DistrictingError,
    InfeasibleError,
    natural_lines,
)
from gis_grid.districting._quality import QualityReport, plan_quality
from gis_grid.districting._units import draw_from_units

__all__ = [
    "BARRIER_KINDS",
    "DistrictingError",
    "InfeasibleError",
    "Plan",
    "QualityReport",
    "draw_from_units",
    "draw_grids",
    "natural_lines",
    "plan_quality",
    "propose_counts",
    "rebalance",
]
