"""Request and response models of grid editing (``PUT``/``PATCH /grids/{code}``, split, merge).

Input geometry is GeoJSON (RFC 7946) in CGCS2000 lon/lat: a bare Polygon/MultiPolygon or a
Feature holding one. Coordinates must be finite numbers (``NaN``/``Infinity`` are refused with
the position's path); everything else (rings, ranges, validity, the village) is checked by
:mod:`gis_grid.edit`, which names the lon/lat of each problem.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.schemas import GridPublic, MemberRefPublic

__all__ = [
    "GridChangePublic",
    "GridEditPublic",
    "GridEditSummaryPublic",
    "GridGeometryIn",
    "GridMerge",
    "GridPut",
    "GridSplit",
    "GridUpdate",
    "LineStringIn",
    "MultiPolygonIn",
    "PolygonIn",
    "RetiredMemberPublic",
]

# Strict: a JSON number (integer or not), never a string or a boolean, which lax parsing
# would turn into a coordinate (``false`` became 0.0; found by tests/test_fuzz_api.py).
Coordinate = Annotated[float, Field(allow_inf_nan=False, strict=True, description="Degrees")]
Position = Annotated[
    list[Coordinate], Field(min_length=2, max_length=3, description="[lon, lat] (Z ignored)")
]
_NAME = Field(
    None,
    min_length=1,
    max_length=100,
    pattern=r"^\S(.*\S)?$",
    description="Grid name, e.g. 石垭第1网格",
    examples=["石垭第1网格"],
)
_NOTE = Field(None, max_length=500, description="Why: recorded with the new versions")


class PolygonIn(BaseModel):
    """A GeoJSON Polygon: rings of [lon, lat] positions, the outer ring first."""

    type: Literal["Polygon"]
    coordinates: list[list[Position]] = Field(
        examples=[[[[107.40, 30.96], [107.41, 30.96], [107.41, 30.97], [107.40, 30.96]]]]
    )


class MultiPolygonIn(BaseModel):
    """A GeoJSON MultiPolygon."""

    type: Literal["MultiPolygon"]
    coordinates: list[list[list[Position]]]


class LineStringIn(BaseModel):
    """A GeoJSON LineString: the cutting line of a split."""

    type: Literal["LineString"]
    coordinates: list[Position] = Field(examples=[[[107.400, 30.965], [107.415, 30.965]]])


GridGeometryIn = Annotated[PolygonIn | MultiPolygonIn, Field(discriminator="type")]


class _FeatureProperties(BaseModel):
    name: str | None = _NAME


class GridFeatureIn(BaseModel):
    """A GeoJSON Feature holding the new outline; ``properties.name`` optionally renames."""

    type: Literal["Feature"]
    geometry: GridGeometryIn
    properties: _FeatureProperties | None = None


class LineFeatureIn(BaseModel):
    """A GeoJSON Feature holding the cutting line."""

    type: Literal["Feature"]
    geometry: LineStringIn
    properties: dict[str, Any] | None = None


#: Body of ``PUT /grids/{code}``: the new outline, bare or as a Feature.
GridPut = Annotated[PolygonIn | MultiPolygonIn | GridFeatureIn, Field(discriminator="type")]


class GridUpdate(BaseModel):
    """Body of ``PATCH /grids/{code}``: a new name and/or a new outline (at least one)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = _NAME
    geometry: (
        Annotated[PolygonIn | MultiPolygonIn | GridFeatureIn, Field(discriminator="type")] | None
    ) = Field(None, description="New outline (GeoJSON Polygon/MultiPolygon or Feature)")
    note: str | None = _NOTE

    @model_validator(mode="after")
    def _something(self) -> GridUpdate:
        if self.name is None and self.geometry is None:
            msg = "give name and/or geometry: a PATCH without either changes nothing"
            raise ValueError(msg)
        return self


class GridSplit(BaseModel):
    """Body of ``POST /grids/{code}/split``."""

    model_config = ConfigDict(extra="forbid")

    line: Annotated[LineStringIn | LineFeatureIn, Field(discriminator="type")] = Field(
        description="Cutting line across the grid, both ends outside it (lon/lat)"
    )
    name: str | None = Field(
        None,
        min_length=1,
        max_length=100,
        pattern=r"^\S(.*\S)?$",
        description="Name of the new piece; default '<village>第<n>网格'",
    )
    note: str | None = _NOTE


class GridMerge(BaseModel):
    """Body of ``POST /grids/{code}/merge``."""

    model_config = ConfigDict(extra="forbid")

    other: str = Field(
        pattern=r"^[0-9]{15}$",
        description="Code of the neighbouring grid (same village) to merge with",
        examples=["511703109209002"],
    )
    name: str | None = Field(
        None,
        min_length=1,
        max_length=100,
        pattern=r"^\S(.*\S)?$",
        description="Name of the merged grid; default: the kept grid's",
    )
    note: str | None = _NOTE


class GridChangePublic(BaseModel):
    """One grid the edit changed, with its load after the edit."""

    code: str = Field(examples=["511703109209001"])
    change: Literal["redrawn", "added", "renamed", "noded", "retired"] = Field(
        description=(
            "redrawn: new shape; added: new code (split); renamed: new name only; noded: same "
            "shape, a vertex added where a moved edge meets it (shared edges stay identical); "
            "retired: closed without successor (merge)"
        )
    )
    version: int | None = Field(description="Version written; null when retired")
    previous_version: int | None = Field(description="Version closed; null when added")
    etag: str | None = Field(description="ETag of the new version", examples=['"511…001-v2"'])
    households: int = Field(ge=0, description="Households assigned after the edit")
    people: int = Field(ge=0, description="People (households' sizes) after the edit")
    area_km2: float | None = Field(description="Area after the edit, km² (Gauss-Krüger)")


class RetiredMemberPublic(MemberRefPublic):
    """The appointed member of a retired grid (left appointed: reassigning is a decision)."""

    grid_code: str


class GridEditSummaryPublic(BaseModel):
    """What the edit changed (or, with ``dry_run``, would change)."""

    operation: Literal["redraw", "rename", "split", "merge"]
    dry_run: bool = Field(description="True: nothing was stored")
    valid_from: dt.datetime = Field(description="When the new versions start")
    changes: list[GridChangePublic]
    grids: list[GridPublic] = Field(description="The changed grids that remain current")
    points_moved: dict[str, int] = Field(
        description="Per point table, rows whose grid changed",
        examples=[{"households": 37, "pollution_points": 0, "hazards": 1, "incidents": 2}],
    )
    points_unassigned: int = Field(ge=0, description="Points of the town outside every grid")
    retired_members: list[RetiredMemberPublic]
    grids_without_member: list[str] = Field(description="Changed grids with no appointed member")


class GridEditPublic(GridPublic):
    """The grid after the edit (a GeoJSON Feature) and, in ``edit``, everything that changed."""

    edit: GridEditSummaryPublic
