"""Registry writes (article 8): households, residents, pollution points, hazards, patrols.

The read side is :mod:`gis_grid.queries`; these modules check and write, inside the caller's
transaction (nothing is committed here), and answer with masked personal data:

- :mod:`~gis_grid.registry.location`: coordinates checked, converted to CGCS2000 and placed
  (village, grid, or the nearest grid in a gap; refused outside every village);
- :mod:`~gis_grid.registry.households`: register, change, move, remove households;
- :mod:`~gis_grid.registry.residents`: residents with GB 11643 ID numbers checked;
- :mod:`~gis_grid.registry.patrols`: pollution points and hazards, and their patrol logs
  (a serious finding reports an incident).

Every function raises :class:`gis_grid.errors.GridError` subclasses naming the field.
"""

from gis_grid.registry._common import CODE_PATTERN
from gis_grid.registry.households import (
    HouseholdCount,
    HouseholdDeleted,
    HouseholdSaved,
    create_household,
    delete_household,
    update_household,
)
from gis_grid.registry.location import Placement, place_point, to_cgcs2000
from gis_grid.registry.patrols import (
    HAZARD_KINDS,
    POLLUTION_KINDS,
    PatrolRecord,
    SiteSaved,
    add_patrol,
    create_site,
    patrol_page,
    update_site,
)
from gis_grid.registry.residents import (
    CATEGORIES,
    RELATIONS,
    ResidentDeleted,
    ResidentSaved,
    ResidentView,
    add_resident,
    delete_resident,
    update_resident,
)

__all__ = [
    "CATEGORIES",
    "CODE_PATTERN",
    "HAZARD_KINDS",
    "POLLUTION_KINDS",
    "RELATIONS",
    "HouseholdCount",
    "HouseholdDeleted",
    "HouseholdSaved",
    "PatrolRecord",
    "Placement",
    "ResidentDeleted",
    "ResidentSaved",
    "ResidentView",
    "SiteSaved",
    "add_patrol",
    "add_resident",
    "create_household",
    "create_site",
    "delete_household",
    "delete_resident",
    "patrol_page",
    "place_point",
    "to_cgcs2000",
    "update_household",
    "update_resident",
    "update_site",
]
