"""Request and response models of the registry writes (households, residents, sites, patrols).

Requests forbid unknown fields (a misspelt field is a 422 naming it, not silently dropped) and
non-finite numbers. A location is a GeoJSON Point (``[lon, lat]``) *or* ``lon``/``lat``, with
``datum`` (cgcs2000, wgs84, gcj02, bd09) saying which datum either is in. Responses carry
personal data masked only (:mod:`gis_grid.privacy`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    FiniteFloat,
    StrictBool,
    StrictInt,
    model_validator,
)

from api.schemas import LinkPublic
from gis_grid.crs import Datum
from gis_grid.registry import CODE_PATTERN
from gis_grid.registry.residents import RELATIONS

__all__ = [
    "HazardCreate",
    "HazardUpdate",
    "HouseholdCountPublic",
    "HouseholdCreate",
    "HouseholdDeletedPublic",
    "HouseholdSavedPublic",
    "HouseholdUpdate",
    "PatrolCreate",
    "PatrolPublic",
    "PatrolsPublic",
    "PlacementPublic",
    "PointGeometry",
    "PollutionPointCreate",
    "PollutionPointUpdate",
    "ResidentCreate",
    "ResidentDeletedPublic",
    "ResidentSavedPublic",
    "ResidentUpdate",
    "ResidentWrittenPublic",
    "SiteSavedPublic",
]

Category = Literal["incoming", "returnee", "in_need"]
Gender = Literal["male", "female"]
PollutionKind = Literal["sewage", "livestock", "factory", "other"]
HazardKind = Literal["landslide", "flood", "fire", "building", "other"]

_DATUM_DOC = (
    "Datum of the coordinates (location or lon/lat): cgcs2000 or wgs84 (GPS), gcj02 (AMap, "
    "Tencent), bd09 (Baidu); converted to CGCS2000 before storing"
)


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PointGeometry(_Request):
    """A GeoJSON Point: ``{"type": "Point", "coordinates": [lon, lat]}``."""

    type: Literal["Point"]
    coordinates: tuple[FiniteFloat, FiniteFloat] = Field(examples=[[107.4055, 31.2055]])


class _Located(_Request):
    location: PointGeometry | None = Field(
        None, description="GeoJSON Point [lon, lat] (or give lon and lat)"
    )
    lon: FiniteFloat | None = Field(None, description="Longitude, degrees", examples=[107.4055])
    lat: FiniteFloat | None = Field(None, description="Latitude, degrees", examples=[31.2055])
    datum: Datum = Field(Datum.CGCS2000, description=_DATUM_DOC)

    @model_validator(mode="after")
    def _one_location(self) -> Self:
        if self.location is not None and (self.lon is not None or self.lat is not None):
            msg = "give either location (GeoJSON Point) or lon/lat, not both"
            raise ValueError(msg)
        if (self.lon is None) != (self.lat is None):
            missing = "lat" if self.lat is None else "lon"
            msg = f"{missing} is missing: give lon and lat together"
            raise ValueError(msg)
        return self

    def lonlat(self) -> dict[str, Any] | None:
        """Return ``{"lon", "lat", "datum"}`` as given, or ``None`` without a location."""
        if self.location is not None:
            lon, lat = self.location.coordinates
        elif self.lon is not None and self.lat is not None:
            lon, lat = self.lon, self.lat
        else:
            return None
        return {"lon": float(lon), "lat": float(lat), "datum": self.datum.value}


class _LocatedRequired(_Located):
    @model_validator(mode="after")
    def _has_location(self) -> Self:
        if self.lonlat() is None:
            msg = "location is required: a GeoJSON Point, or lon and lat"
            raise ValueError(msg)
        return self


# --- households -------------------------------------------------------------------------------


class HouseholdCreate(_LocatedRequired):
    """A new household: code, declared size, address and location."""

    code: str = Field(pattern=CODE_PATTERN, examples=["5117031090019001"])
    people: StrictInt = Field(ge=0, le=99, description="Declared household size")
    address: str | None = Field(
        None, min_length=1, max_length=200, examples=["赵家镇利群社区1组8号"]
    )


class HouseholdUpdate(_Located):
    """Changes to a household: any of people, address (null clears it), location."""

    people: StrictInt | None = Field(None, ge=0, le=99)
    address: str | None = Field(None, min_length=1, max_length=200)


class PlacementPublic(BaseModel):
    """Where a point lies: CGCS2000 coordinates, village, town and grid (or nearest grid)."""

    lon: float = Field(description="CGCS2000 longitude after datum conversion")
    lat: float
    village_code: str | None
    village: str | None
    town_code: str | None
    town: str | None
    grid_code: str | None = Field(description="null: in a gap of the grid plan")
    in_grid: bool
    nearest_grid: str | None = Field(description="The grid itself when inside one")
    distance_m: float | None = Field(description="Metres to the nearest grid (0 inside)")


class HouseholdSavedPublic(BaseModel):
    """A household as written (address masked) and where it lies."""

    code: str
    people: int = Field(ge=0, description="Declared size")
    residents: int = Field(ge=0, description="Residents registered")
    unregistered: int = Field(description="people - residents")
    address: str | None = Field(examples=["赵家镇利群社区1组**"])
    placement: PlacementPublic
    previous_grid_code: str | None = Field(None, description="Grid before this change")
    moved: bool = False


class HouseholdDeletedPublic(BaseModel):
    """A household removed, and how many residents went with it."""

    code: str
    residents_deleted: int


# --- residents --------------------------------------------------------------------------------

_RELATION_DOC = f"Relation to the head of household: one of {', '.join(RELATIONS)}"


class ResidentCreate(_Request):
    """A person to register (ID number GB 11643; birth date and gender follow from it)."""

    name: str = Field(min_length=1, max_length=50, examples=["张小明"])
    id_number: str = Field(
        min_length=1,
        max_length=30,
        description="18-character resident ID (GB 11643); required (the schema's CHECK)",
    )
    phone: str | None = Field(None, min_length=1, max_length=30, examples=["13812341234"])
    gender: Gender | None = None
    birth_date: dt.date | None = Field(None, description="Must agree with the ID number")
    relation: str | None = Field(None, max_length=20, description=_RELATION_DOC)
    whereabouts: str | None = Field(
        None, max_length=100, description="在家, 外出务工, 在校 ... (人人去向明)"
    )
    categories: list[Category] = Field(
        default_factory=list,
        description="incoming (流入人员), returnee (重点地区返乡), in_need (生活困难)",
    )


class ResidentUpdate(_Request):
    """Changes to a resident (the whole record is checked again)."""

    name: str | None = Field(None, min_length=1, max_length=50)
    id_number: str | None = Field(None, min_length=1, max_length=30)
    phone: str | None = Field(None, min_length=1, max_length=30)
    gender: Gender | None = None
    birth_date: dt.date | None = None
    relation: str | None = Field(None, max_length=20, description=_RELATION_DOC)
    whereabouts: str | None = Field(None, max_length=100)
    categories: list[Category] | None = None


class ResidentWrittenPublic(BaseModel):
    """A resident as written: name, ID number and phone masked; age instead of birth date."""

    id: int
    household_code: str
    village_code: str
    grid_code: str | None
    name: str = Field(examples=["张*明"])
    id_number: str | None = Field(examples=["110***********002X"])
    phone: str | None = Field(examples=["138****1234"])
    gender: str | None
    age: int | None
    relation: str | None
    whereabouts: str | None
    categories: list[str]


class HouseholdCountPublic(BaseModel):
    """A household's declared size and registered residents after the change."""

    code: str
    people: int
    residents: int
    unregistered: int


class ResidentSavedPublic(BaseModel):
    """A resident written, and the household's counts."""

    resident: ResidentWrittenPublic
    household: HouseholdCountPublic


class ResidentDeletedPublic(BaseModel):
    """A resident removed, and the household's counts."""

    id: int
    household: HouseholdCountPublic


# --- pollution points, hazards, patrols ------------------------------------------------------


class PollutionPointCreate(_LocatedRequired):
    """A new pollution discharge point (排污点)."""

    code: str = Field(pattern=CODE_PATTERN, examples=["PP-511703109-901"])
    name: str = Field(min_length=1, max_length=100)
    kind: PollutionKind | None = None


class HazardCreate(_LocatedRequired):
    """A new environmental or safety hazard (环境安全隐患) with its level."""

    code: str = Field(pattern=CODE_PATTERN, examples=["HZ-511703109-901"])
    name: str = Field(min_length=1, max_length=100)
    kind: HazardKind | None = None
    level: StrictInt = Field(ge=1, le=4, description="1 minor ... 4 major")


class PollutionPointUpdate(_Located):
    """Changes to a pollution point."""

    name: str | None = Field(None, min_length=1, max_length=100)
    kind: PollutionKind | None = None


class HazardUpdate(_Located):
    """Changes to a hazard."""

    name: str | None = Field(None, min_length=1, max_length=100)
    kind: HazardKind | None = None
    level: StrictInt | None = Field(None, ge=1, le=4)


class SiteSavedPublic(BaseModel):
    """A pollution point or hazard as written, and where it lies."""

    code: str
    name: str
    kind: str | None
    level: int | None = None
    placement: PlacementPublic
    previous_grid_code: str | None = None
    moved: bool = False


class PatrolCreate(_Request):
    """A patrol (巡查): when, what was found, whether it is serious (reported as an incident)."""

    patrolled_at: dt.datetime = Field(
        description="When; not in the future. Without an offset: China Standard Time",
        examples=["2026-11-27T09:30:00+08:00"],
    )
    finding: str = Field(min_length=1, max_length=2000, examples=["排污口有黑色污水流出"])
    serious: StrictBool = Field(False, description="Report upwards as an incident")
    member_code: str | None = Field(None, max_length=64, description="The patrolling member")
    task_type_code: str | None = Field(
        None,
        max_length=64,
        description="Approved task type of the incident (default T03 pollution, T04 hazards)",
    )


class PatrolPublic(BaseModel):
    """A patrol log; ID and phone numbers in the finding are masked."""

    id: int
    target: str = Field(examples=["pollution point"])
    target_code: str
    grid_code: str | None
    patrolled_at: dt.datetime
    finding: str
    serious: bool
    member_code: str | None
    incident_id: int | None = Field(description="The incident a serious finding reported")
    incident_status: str | None
    task_type_code: str | None
    created_at: dt.datetime


class PatrolsPublic(BaseModel):
    """A page of patrol logs, newest first."""

    data: list[PatrolPublic]
    count: int = Field(ge=0)
    links: list[LinkPublic]
