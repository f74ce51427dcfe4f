"""Response models of the API (``<Thing>Public`` for one, ``<Things>Public`` for a list).

Names follow the full-stack-fastapi-template convention so that the later write API can add
``TownCreate``/``GridUpdate`` beside them. Spatial resources are GeoJSON: ``GridPublic`` is a
Feature whose ``properties`` are a ``GridProperties``, ``GridsPublic`` a FeatureCollection with
the OGC API Features members ``numberMatched``/``numberReturned``/``links``. Where a list shows
less than the single-object view, its features are ``<Thing>ItemPublic``.

Personal data appears only masked (:mod:`gis_grid.privacy`, applied by the queries): residents'
names, ID numbers and phones, members' phones, household addresses.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ErrorPublic",
    "FeatureCollectionPublic",
    "FeaturePublic",
    "GridProperties",
    "GridPublic",
    "GridRefPublic",
    "GridStatsListPublic",
    "GridStatsPublic",
    "GridsPublic",
    "HazardProperties",
    "HazardPublic",
    "HazardsPublic",
    "HealthPublic",
    "HouseholdDetailProperties",
    "HouseholdItemPublic",
    "HouseholdProperties",
    "HouseholdPublic",
    "HouseholdsPublic",
    "IncidentDetailProperties",
    "IncidentItemPublic",
    "IncidentProperties",
    "IncidentPublic",
    "IncidentsPublic",
    "LayerPublic",
    "LayersPublic",
    "LinkPublic",
    "LookupPublic",
    "MemberPublic",
    "MemberRefPublic",
    "MembersPublic",
    "PlaceRefPublic",
    "PollutionPointProperties",
    "PollutionPointPublic",
    "PollutionPointsPublic",
    "ResidentPublic",
    "ResidentsPublic",
    "TaskTypePublic",
    "TaskTypesPublic",
    "TownPublic",
    "TownsPublic",
    "UnprocessablePublic",
    "ValidationIssuePublic",
    "VillageFeaturePublic",
    "VillageFeaturesPublic",
    "VillageProperties",
    "VillagePublic",
    "VillagesPublic",
]


class _Public(BaseModel):
    model_config = ConfigDict(from_attributes=True, frozen=True)


class HealthPublic(_Public):
    """Whether the service and its database are up."""

    status: Literal["ok", "unavailable"]
    database: Literal["ok", "unreachable"]
    postgis_version: str | None = Field(None, examples=["3.5 USE_GEOS=1 USE_PROJ=1 USE_STATS=1"])
    detail: str | None = Field(None, description="Why the database is unreachable")
    version: str = Field(description="Version of the gis-grid platform")


class TownPublic(_Public):
    """A town (乡镇/街道) with its counts; area measured in the Gauss-Krüger zone (km²)."""

    code: str = Field(examples=["511703109"], description="9-digit NBS town code")
    name: str = Field(examples=["赵家镇"])
    district_code: str = Field(examples=["511703"])
    villages: int = Field(ge=0, description="Villages and communities")
    grids: int = Field(ge=0, description="Current grids")
    households: int = Field(ge=0)
    people: int = Field(ge=0, description="Registered people (sum over households)")
    area_km2: float = Field(ge=0, description="Area in km², CGCS2000 Gauss-Krüger (EPSG:4545)")


class TownsPublic(_Public):
    """All towns."""

    data: list[TownPublic]
    count: int


class VillagePublic(_Public):
    """A village or community (村/社区) with its counts."""

    code: str = Field(examples=["511703109201"], description="12-digit NBS village code")
    name: str
    town_code: str
    kind: str = Field(description="'village' (村) or 'community' (社区)")
    grids: int = Field(ge=0)
    households: int = Field(ge=0)
    people: int = Field(ge=0)
    area_km2: float = Field(ge=0)


class VillagesPublic(_Public):
    """The villages of one town."""

    data: list[VillagePublic]
    count: int


class LayerPublic(_Public):
    """A map layer offered by ``/api/v1/layers/{name}``."""

    name: str = Field(examples=["grids"])
    title: str = Field(examples=["网格（现行）"])
    geometry_type: str = Field(examples=["MultiPolygon"])
    properties: list[str] = Field(description="The properties each feature carries")


class LayersPublic(_Public):
    """The layers this database offers."""

    data: list[LayerPublic]
    count: int


class FeaturePublic(BaseModel):
    """A GeoJSON feature (RFC 7946), coordinates in CGCS2000 lon/lat (EPSG:4490)."""

    type: Literal["Feature"]
    id: str | int
    geometry: dict[str, Any]
    properties: dict[str, Any]


class FeatureCollectionPublic(BaseModel):
    """One page of a layer as GeoJSON, with OGC API Features paging members."""

    type: Literal["FeatureCollection"]
    name: str
    numberMatched: int = Field(description="Features matching the filters")  # noqa: N815
    numberReturned: int = Field(description="Features in this page")  # noqa: N815
    features: list[FeaturePublic]


class ErrorPublic(BaseModel):
    """An error: what was wrong and what to do."""

    detail: str = Field(examples=["town '511703999' not found; GET /api/v1/towns lists the towns"])
    error: str = Field(examples=["NotFoundError"], description="Error class")
    problems: list[dict[str, Any]] | None = Field(
        default=None,
        description="Each problem found (rule, field, location), when there are several",
    )


class ValidationIssuePublic(BaseModel):
    """One request field that failed validation (FastAPI's format; personal data masked)."""

    type: str = Field(examples=["value_error"])
    loc: list[str | int] = Field(examples=[["query", "bbox"]], description="Where: part, name")
    msg: str = Field(examples=["bbox needs 4 numbers minx,miny,maxx,maxy"])
    input: Any = Field(None, description="The value refused (masked if personal)")
    ctx: dict[str, Any] | None = None


class UnprocessablePublic(BaseModel):
    """A 422: fields that failed validation (a list), or a rule the data broke (a message).

    ``detail`` is a list of :class:`ValidationIssuePublic` when the request's shape is wrong
    (a missing field, a number out of range), and a sentence with ``error`` (the error class)
    and ``problems`` when valid-looking data breaks a rule (a self-intersecting outline).
    """

    detail: str | list[ValidationIssuePublic]
    error: str | None = Field(None, examples=["GeometryError"], description="Error class")
    problems: list[dict[str, Any]] | None = Field(
        default=None, description="Each problem found (rule, field, location)"
    )


# --- shared: links, GeoJSON envelopes, references ---------------------------------------------


class LinkPublic(_Public):
    """A link (OGC API Features): ``self``, ``next`` and ``prev`` pages."""

    href: str
    rel: str = Field(examples=["next"])
    type: str = Field(examples=["application/geo+json"])
    title: str | None = None


class _Feature(BaseModel):
    type: Literal["Feature"]
    id: str | int
    geometry: dict[str, Any] = Field(description="GeoJSON geometry, CGCS2000 lon/lat")


class _FeatureCollection(BaseModel):
    type: Literal["FeatureCollection"]
    name: str
    numberMatched: int = Field(ge=0, description="Features matching the filters")  # noqa: N815
    numberReturned: int = Field(ge=0, description="Features in this page")  # noqa: N815
    links: list[LinkPublic] = Field(description="self, and next/prev when there are more")


class _List(_Public):
    count: int = Field(ge=0, description="Items matching the filters (all pages)")
    links: list[LinkPublic] = Field(description="self, and next/prev when there are more")


class PlaceRefPublic(_Public):
    """A town or village by code and name."""

    code: str
    name: str | None


class GridRefPublic(_Public):
    """A grid version by code, name and version number."""

    code: str = Field(examples=["511703109001001"])
    name: str | None
    version: int = Field(ge=1)


class MemberRefPublic(_Public):
    """A grid member (names are public: members are publicised); phone masked."""

    code: str
    name: str
    phone: str | None = Field(examples=["138****1234"])


# --- villages ---------------------------------------------------------------------------------


class VillageProperties(VillagePublic):
    """A village's properties: its counts, area and town."""

    town: str


class VillageFeaturePublic(_Feature):
    """A village or community as a GeoJSON feature (id = 12-digit code)."""

    properties: VillageProperties


class VillageFeaturesPublic(_FeatureCollection):
    """A page of villages."""

    features: list[VillageFeaturePublic]


# --- grids ------------------------------------------------------------------------------------


class GridProperties(_Public):
    """One version of a grid. Counts and member are given for the current version only."""

    code: str = Field(examples=["511703109001001"], description="15-digit grid code")
    name: str | None
    village_code: str
    village: str
    version: int = Field(ge=1)
    valid_from: dt.datetime
    valid_to: dt.datetime | None = Field(description="null for the current version")
    current: bool
    area_km2: float = Field(ge=0, description="km², CGCS2000 Gauss-Krüger")
    households: int | None = Field(None, ge=0, description="Households assigned now")
    people: int | None = Field(None, ge=0)
    member_code: str | None = Field(None, description="The appointed member")
    member: str | None = None
    synthetic: bool


class GridPublic(_Feature):
    """A grid version as a GeoJSON feature (id = ``<code>-v<version>``)."""

    properties: GridProperties


class GridsPublic(_FeatureCollection):
    """A page of grids: the current plan, or the plan at ``as_of``, or a grid's history."""

    features: list[GridPublic]


class GridStatsPublic(_Public):
    """What a current grid holds (area in km², Gauss-Krüger; people = households' sizes)."""

    code: str
    name: str | None
    village_code: str
    village: str
    version: int
    area_km2: float = Field(ge=0)
    households: int = Field(ge=0)
    people: int = Field(ge=0)
    residents: int = Field(ge=0, description="People with a resident record")
    people_per_km2: float | None
    pollution_points: int = Field(ge=0)
    hazards: int = Field(ge=0)
    incidents_open: int = Field(ge=0, description="Incidents not closed or evaluated")
    incidents_overdue: int = Field(ge=0, description="Open incidents past their deadline")
    member: MemberRefPublic | None


class GridStatsListPublic(_List):
    """Statistics of the current grids of a town or village, by grid code."""

    data: list[GridStatsPublic]


# --- registries -------------------------------------------------------------------------------


class MemberPublic(_Public):
    """A grid member or candidate; phone masked, home not shown."""

    code: str
    name: str
    gender: str | None
    age: int | None
    education: str | None
    party_member: bool
    phone: str | None = Field(examples=["138****1234"])
    status: str = Field(examples=["appointed"])
    grid_code: str | None
    grid: str | None
    village_code: str | None
    village: str | None
    lives_in_grid: bool | None = Field(description="Home inside the grid (就地就近)")


class MembersPublic(_List):
    """A page of members."""

    data: list[MemberPublic]


class ResidentPublic(_Public):
    """A registered person: name, ID number and phone masked; age instead of birth date."""

    id: int
    household_code: str
    village_code: str
    grid_code: str | None
    name: str = Field(examples=["张*明"])
    id_number: str | None = Field(examples=["110***********002X"])
    phone: str | None = Field(examples=["138****1234"])
    gender: str | None
    age: int | None
    relation: str | None = Field(examples=["户主"])
    whereabouts: str | None = Field(examples=["外出务工"])


class ResidentsPublic(_List):
    """A page of residents."""

    data: list[ResidentPublic]


class HouseholdProperties(_Public):
    """A household on the map: code, place and size."""

    code: str
    village_code: str
    village: str
    grid_code: str | None
    people: int = Field(ge=0)
    synthetic: bool


class HouseholdItemPublic(_Feature):
    """A household in a list (id = household code)."""

    properties: HouseholdProperties


class HouseholdsPublic(_FeatureCollection):
    """A page of households."""

    features: list[HouseholdItemPublic]


class HouseholdDetailProperties(HouseholdProperties):
    """A household's properties with its masked address and residents."""

    address: str | None = Field(examples=["赵家镇利群社区1组**"], description="Door hidden")
    residents: list[ResidentPublic]


class HouseholdPublic(_Feature):
    """One household with its masked address and residents."""

    properties: HouseholdDetailProperties


# --- pollution points, hazards, incidents, task types ----------------------------------------


class PollutionPointProperties(_Public):
    """A pollution discharge point (排污点)."""

    code: str
    name: str
    kind: str | None = Field(examples=["sewage"])
    village_code: str | None
    village: str | None
    grid_code: str | None
    synthetic: bool


class PollutionPointPublic(_Feature):
    """A pollution discharge point as a GeoJSON feature (id = code)."""

    properties: PollutionPointProperties


class PollutionPointsPublic(_FeatureCollection):
    """A page of pollution discharge points."""

    features: list[PollutionPointPublic]


class HazardProperties(PollutionPointProperties):
    """An environmental or safety hazard (环境安全隐患)."""

    level: int | None = Field(ge=1, le=4, description="1 minor ... 4 major")


class HazardPublic(_Feature):
    """A hazard as a GeoJSON feature (id = code)."""

    properties: HazardProperties


class HazardsPublic(_FeatureCollection):
    """A page of hazards."""

    features: list[HazardPublic]


class IncidentProperties(_Public):
    """An incident in the seven-step workflow (reported ... evaluated)."""

    id: int
    code: str | None
    task_type_code: str
    task_type: str | None
    status: str = Field(examples=["dispatched"])
    reported_at: dt.datetime
    dispatched_at: dt.datetime | None
    deadline: dt.datetime | None
    overdue: bool = Field(description="Deadline passed and not closed")
    village_code: str | None
    village: str | None
    grid_code: str | None
    synthetic: bool


class IncidentItemPublic(_Feature):
    """An incident in a list (id = incident id; no free-text title)."""

    properties: IncidentProperties


class IncidentsPublic(_FeatureCollection):
    """A page of incidents."""

    features: list[IncidentItemPublic]


class IncidentDetailProperties(IncidentProperties):
    """An incident's properties with its (redacted) title."""

    title: str = Field(description="ID numbers and phones in it are masked")


class IncidentPublic(_Feature):
    """One incident with its title."""

    properties: IncidentDetailProperties


class TaskTypePublic(_Public):
    """A kind of grid work and its admission (准入) state; only approved kinds are assignable."""

    code: str
    name: str
    approval_state: str
    assignable: bool
    applied_on: dt.date | None
    reviewed_on: dt.date | None
    decided_on: dt.date | None
    decided_by: str | None
    sla_days: int | None = Field(description="Handling time limit once dispatched (days)")
    incidents: int = Field(ge=0)


class TaskTypesPublic(_List):
    """A page of task types."""

    data: list[TaskTypePublic]


# --- lookup -----------------------------------------------------------------------------------


class LookupPublic(_Public):
    """Where a point lies: town, village, current grid and its appointed member."""

    lon: float = Field(description="The point in CGCS2000 (after datum conversion)")
    lat: float
    datum: str = Field(description="Datum the input was given in")
    town: PlaceRefPublic
    village: PlaceRefPublic
    grid: GridRefPublic | None = Field(description="null in a gap of the grid plan")
    member: MemberRefPublic | None
