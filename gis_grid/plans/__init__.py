"""Draw a town's grids and check a plan before it is written (网格划分方案).

A redraw is a short chain of small public functions:

1. :func:`inputs_from_town` (a town read from PostGIS by :func:`~gis_grid.db.read.read_town`)
   or :func:`inputs_from_files` (a folder of sample layers) gathers the villages, households and
   natural lines (optionally streams and ridgelines derived from a DEM) as :class:`DrawInputs`;
2. :func:`draw_town` draws with :func:`~gis_grid.districting.draw_grids` and measures the
   result with :func:`~gis_grid.districting.plan_quality`;
3. :func:`check_plan` refuses a plan whose grids are invalid, leave a gap in their village,
   overlap, or reach outside it (each problem named with its village, grid and lon/lat);
4. :func:`gis_grid.db.plans.apply_plan` writes the plan as a new grid version;
5. :func:`write_plan_report` writes the plan and its quality to GeoPackage or JSON.

For one village or a town drawn from the database as a proposal (the service's
``POST /villages/{code}/plans``): :func:`propose_plan` (nothing written), then
:func:`apply_proposal` (one new version, who applied it recorded); :func:`plan_from_features`
reads a proposal sent back as GeoJSON; :func:`village_counts` says how many grids a band needs.

Examples
--------
>>> from gis_grid.db.read import read_town  # doctest: +SKIP
>>> drawn = draw_town(inputs_from_town(read_town(engine, "511703109")))  # doctest: +SKIP
>>> drawn.quality.line()  # doctest: +SKIP
'n_grids=26 max_dev_pct=1.179 pp_mean=0.5166 natural_share=0.4814 crossings=0 valid=True ...'
"""

from gis_grid.plans._check import COVERAGE_TOLERANCE_M, PlanError, check_plan, plan_frame
from gis_grid.plans._draw import (
    LINE_KINDS,
    DrawInputs,
    TownPlan,
    draw_town,
    inputs_from_files,
    inputs_from_town,
)
from gis_grid.plans._propose import (
    PlanParameters,
    apply_proposal,
    plan_from_features,
    propose_plan,
    village_counts,
)
from gis_grid.plans._report import write_plan_report

__all__ = [
    "COVERAGE_TOLERANCE_M",
    "LINE_KINDS",
    "DrawInputs",
    "PlanError",
    "PlanParameters",
    "TownPlan",
    "apply_proposal",
    "check_plan",
    "draw_town",
    "inputs_from_files",
    "inputs_from_town",
    "plan_frame",
    "plan_from_features",
    "propose_plan",
    "village_counts",
    "write_plan_report",
]
