"""Response models of the API (``<Thing>Public`` for one, ``<Things>Public`` for a list).

Names follow the full-stack-fastapi-template convention so that the later write API can add
``TownCreate``/``GridUpdate`` beside them. Only data that every role may see appears here; no
model carries residents' names, ID numbers or phones, nor members' phones.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ErrorPublic",
    "FeatureCollectionPublic",
    "FeaturePublic",
    "HealthPublic",
    "LayerPublic",
    "LayersPublic",
    "TownPublic",
    "TownsPublic",
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
