"""Generate the platform's sample data for two towns of Dachuan District (达川区), Dazhou.

Run ``python -m scripts.sample_data`` from the repository root. The real public inputs in
``../shared/data`` (town seats, district boundary, NBS village lists, SRTM DEM, GSHHG rivers,
census figures) give the frame; everything below the town (village polygons, households,
grids, people, pollution points, hazards, incidents, roads) is synthetic, drawn from one
seeded random generator, so the same seed writes byte-identical files.

Modules, in the order the pipeline uses them:

``sources``   read and convert the real data (GCJ-02 -> CGCS2000), build the town polygons
``raster``    the working raster of a town, cost graphs, region growing and clean coverages
``settle``    village seeds, villages, hamlets, roads and households; streams from the DEM
              (D8 routing and flow accumulation of ``gis_grid.terrain``)
``grids``     the initial grid plan of every village, coded by ``gis_grid.codes.grid_codes``
``people``    residents with GB 11643 ID numbers, and one grid member per grid
``events``    pollution discharge points, hazards, task types and incidents
``output``    shapefiles (EPSG:4490, GBK for villages), CSV files and the summary figures
"""

from __future__ import annotations

import datetime as dt

__all__ = [
    "AS_OF",
    "DEFAULT_SEED",
    "HOUSEHOLD_SIZE_P",
    "SOURCE_TAG",
    "TARGET_DENSITY",
    "WORK_EPSG",
]

#: Seed of the single random generator (the day the Zhaojia rules were published).
DEFAULT_SEED = 20210129

#: The "as of" date of the sample: incidents are reported up to it, statuses are as on it.
AS_OF = dt.date(2026, 3, 31)

#: Metric CRS every computation runs in: CGCS2000 3-degree Gauss-Krüger, CM 108 E.
WORK_EPSG = 4545

#: People per km² aimed at in a rural town, seat included (see README: census derivation).
TARGET_DENSITY = 240.0

#: Probability of 1..7 people in a household (mean 2.67, Sichuan rural households 2.5-2.8).
HOUSEHOLD_SIZE_P = (0.22, 0.33, 0.20, 0.13, 0.07, 0.03, 0.02)

#: Value of the ``source`` column on synthetic rows.
SOURCE_TAG = "scripts/sample_data"
