"""Response models of OGC API – Features (Part 1 Core): landing page, conformance, collections."""

from __future__ import annotations

from pydantic import BaseModel, Field

from api.schemas import LinkPublic

__all__ = [
    "CollectionPublic",
    "CollectionsPublic",
    "ConformancePublic",
    "ExtentPublic",
    "LandingPagePublic",
    "SpatialExtentPublic",
    "TemporalExtentPublic",
]

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"


class LandingPagePublic(BaseModel):
    """The OGC API landing page: links to the API definition, conformance and collections."""

    title: str
    description: str
    links: list[LinkPublic]


class ConformancePublic(BaseModel):
    """The conformance classes implemented."""

    conformsTo: list[str]  # noqa: N815


class SpatialExtentPublic(BaseModel):
    """Bounding box of the collection, lon/lat."""

    bbox: list[list[float]] = Field(examples=[[[107.36, 30.89, 107.5, 31.22]]])
    crs: str = CRS84


class TemporalExtentPublic(BaseModel):
    """Time span of the collection's features (``null``: open)."""

    interval: list[list[str | None]]
    trs: str = "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"


class ExtentPublic(BaseModel):
    """Spatial and (where the features have a time) temporal extent."""

    spatial: SpatialExtentPublic | None = None
    temporal: TemporalExtentPublic | None = None


class CollectionPublic(BaseModel):
    """One collection: id, title, extent and links to its items."""

    id: str
    title: str
    description: str
    itemType: str = "feature"  # noqa: N815
    crs: list[str] = Field(default_factory=lambda: [CRS84])
    extent: ExtentPublic
    links: list[LinkPublic]


class CollectionsPublic(BaseModel):
    """Every collection published."""

    links: list[LinkPublic]
    collections: list[CollectionPublic]
