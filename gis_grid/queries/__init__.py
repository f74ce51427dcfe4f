"""Read queries of the platform: plain SQLAlchemy, no web framework.

The web service, the command line, notebooks and a later OGC API / vector-tile layer share
these functions. Each takes the caller's connection (and never builds an engine), filters with
bound parameters, pages in a stable order, builds GeoJSON in PostGIS, and raises
:mod:`gis_grid.errors` on bad input. Personal data leaves only masked by
:mod:`gis_grid.privacy`.

Examples
--------
>>> from gis_grid import queries
>>> with engine.connect() as conn:  # doctest: +SKIP
...     page = queries.household_page(conn, grid="511703109001001", limit=10)
...     stats = queries.grid_stats(conn, "511703109001001")
"""

from gis_grid.queries._sql import (
    CLOSED_STATUSES,
    GEOJSON_DIGITS,
    BBox,
    FeaturePage,
    FeatureSource,
    Page,
    Where,
    area_km2_sql,
    feature_page,
    features,
    parse_bbox,
    record_page,
)
from gis_grid.queries.events import (
    HAZARDS,
    INCIDENTS,
    POLLUTION_POINTS,
    TaskTypeRecord,
    get_hazard,
    get_incident,
    get_pollution_point,
    get_task_type,
    hazard_kinds,
    hazard_page,
    incident_page,
    pollution_kinds,
    pollution_page,
    task_type_codes,
    task_type_page,
)
from gis_grid.queries.grids import (
    GRIDS,
    GridStats,
    get_grid,
    get_grid_version,
    grid_page,
    grid_stats,
    grid_stats_page,
    grid_versions,
    require_grid_code,
)
from gis_grid.queries.places import (
    VILLAGES,
    GridRef,
    Lookup,
    MemberRef,
    PlaceRef,
    TownSummary,
    VillageSummary,
    get_town,
    get_village,
    list_towns,
    list_villages,
    lookup_point,
    require_village,
    village_page,
)
from gis_grid.queries.registries import (
    HOUSEHOLDS,
    MemberRecord,
    ResidentRecord,
    get_household,
    get_member,
    household_page,
    member_page,
    require_household,
    resident_page,
)

__all__ = [
    "CLOSED_STATUSES",
    "GEOJSON_DIGITS",
    "GRIDS",
    "HAZARDS",
    "HOUSEHOLDS",
    "INCIDENTS",
    "POLLUTION_POINTS",
    "VILLAGES",
    "BBox",
    "FeaturePage",
    "FeatureSource",
    "GridRef",
    "GridStats",
    "Lookup",
    "MemberRecord",
    "MemberRef",
    "Page",
    "PlaceRef",
    "ResidentRecord",
    "TaskTypeRecord",
    "TownSummary",
    "VillageSummary",
    "Where",
    "area_km2_sql",
    "feature_page",
    "features",
    "get_grid",
    "get_grid_version",
    "get_hazard",
    "get_household",
    "get_incident",
    "get_member",
    "get_pollution_point",
    "get_task_type",
    "get_town",
    "get_village",
    "grid_page",
    "grid_stats",
    "grid_stats_page",
    "grid_versions",
    "hazard_kinds",
    "hazard_page",
    "household_page",
    "incident_page",
    "list_towns",
    "list_villages",
    "lookup_point",
    "member_page",
    "parse_bbox",
    "pollution_kinds",
    "pollution_page",
    "record_page",
    "require_grid_code",
    "require_household",
    "require_village",
    "resident_page",
    "task_type_codes",
    "task_type_page",
    "village_page",
]
