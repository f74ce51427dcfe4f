"""Read queries behind the service: re-exported from :mod:`gis_grid.queries`.

The queries live in the core library (no web framework) so that notebooks, the command line
and a later OGC API layer share them. This module keeps the names that :mod:`api.layers` and
older callers import from here.
"""

from __future__ import annotations

from gis_grid.queries import (
    GEOJSON_DIGITS,
    BBox,
    TownSummary,
    VillageSummary,
    area_km2_sql,
    get_town,
    list_towns,
    list_villages,
    parse_bbox,
)

__all__ = [
    "GEOJSON_DIGITS",
    "BBox",
    "TownSummary",
    "VillageSummary",
    "area_km2_sql",
    "get_town",
    "list_towns",
    "list_villages",
    "parse_bbox",
]
