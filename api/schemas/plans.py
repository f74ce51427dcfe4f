"""Request and response models of drawing over HTTP (``/villages/{code}/plans``, ``/towns/...``).

A proposal is a GeoJSON FeatureCollection of the drawn grids (``PlanGridProperties``) with the
plan's quality summary and what could not be met; sent back to ``…/plans/apply`` (features
only) it becomes the new grid version.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gis_grid.edit import MAX_TOTAL_VERTICES, check_geojson_limits, geojson_size
from gis_grid.errors import GridError

__all__ = [
    "AppliedPublic",
    "PlanApply",
    "PlanCountsPublic",
    "PlanCreate",
    "PlanFeature",
    "PlanFeaturePublic",
    "PlanGridProperties",
    "PlanPublic",
    "PlanSummaryPublic",
    "VillagePlanCreate",
]

GRID_CODE = r"^[0-9]{15}$"


class PlanCreate(BaseModel):
    """What to draw for a town: the balanced load, the target and the band."""

    model_config = ConfigDict(extra="forbid")

    by: Literal["households", "people"] = Field(
        "households", description="The load balanced between grids"
    )
    target: float | None = Field(
        None,
        gt=0,
        allow_inf_nan=False,
        description="Load per grid (households or people); each village gets the grid count "
        "nearest load / target that fits the band",
        examples=[200],
    )
    tolerance: float = Field(
        0.1,
        gt=0,
        lt=1,
        allow_inf_nan=False,
        description="Half-width of the band around the target (0.1 = ±10 %)",
    )
    locked: list[str] = Field(
        default_factory=list,
        max_length=1000,
        description="Current grid codes kept exactly; the rest is redrawn",
        examples=[["511703109201001"]],
    )
    respect_natural_lines: bool = Field(
        True,
        description="Follow rivers, streams and roads, and do not straddle rivers and streams "
        "where a balanced alternative exists",
    )
    seed: int = Field(0, ge=0, le=2**31 - 1, description="Seed of the drawing")


class VillagePlanCreate(PlanCreate):
    """What to draw for a village: as for a town, or a number of grids instead of a target."""

    n_grids: int | None = Field(
        None,
        ge=1,
        le=999,
        description="Grids of the village (1 to its number of households); the target then "
        "defaults to the village's load / n_grids",
    )


class PlanGridProperties(BaseModel):
    """One proposed grid."""

    grid_code: str = Field(examples=["511703109201001"], pattern=GRID_CODE)
    village_code: str
    seq: int = Field(ge=1)
    households: int = Field(ge=0)
    people: int = Field(ge=0)
    load: float = Field(description="The balanced quantity (households or people)")
    target: float
    deviation_pct: float = Field(description="Load against the target, per cent")
    in_band: bool
    compactness: float = Field(description="Polsby-Popper 4πA/P² (1 = disc, π/4 = square)")
    natural_m: float = Field(description="Drawn boundary along natural lines (m)")
    crossings: int = Field(ge=0, description="Barrier pieces (rivers, streams) it straddles")
    locked: bool


class PlanFeaturePublic(BaseModel):
    """A proposed grid as a GeoJSON feature (id = grid code), CGCS2000 lon/lat."""

    type: Literal["Feature"]
    id: str
    geometry: dict[str, Any]
    properties: PlanGridProperties


class PlanSummaryPublic(BaseModel):
    """Quality of the whole proposal (see ``gis_grid.districting.plan_quality``)."""

    by: str
    target: float | None
    tolerance: float
    n_grids: int
    max_dev_pct: float
    pp_mean: float = Field(description="Mean Polsby-Popper compactness")
    natural_share: float = Field(description="Share of drawn boundary on natural lines")
    crossings: int
    valid: bool = Field(description="Each village tiled exactly, every grid one polygon")
    codes_ok: bool
    in_band: int = Field(description="Grids within the band")
    seconds: float = Field(description="Drawing time")


class AppliedPublic(BaseModel):
    """What applying wrote: the counts, and members left without a grid."""

    valid_from: str
    villages: int
    closed: int
    added: int
    new_codes: int
    dropped_codes: int
    points_changed: int
    points_unassigned: int
    orphaned_members: int = Field(description="Members whose grid code no longer exists")
    orphans: list[dict[str, Any]] = Field(
        description="Those members: code, name, status, grid_code, home_grid (a suggestion)"
    )
    source: str = Field(description="Provenance written to the new grids (who applied it)")


class PlanPublic(BaseModel):
    """A proposal: the drawn grids, their quality, what could not be met (and what was written).

    ``applied`` is set when the proposal was applied (``?apply=true``).
    """

    type: Literal["FeatureCollection"]
    name: str = Field(examples=["plan 511703109201"])
    scope: str = Field(description="The village or town code drawn")
    features: list[PlanFeaturePublic]
    summary: PlanSummaryPublic
    issues: list[dict[str, Any]] = Field(description="Grids or villages missing the band")
    applied: AppliedPublic | None = Field(None, description="Set when the proposal was applied")


class PlanFeature(BaseModel):
    """A grid sent back for applying: its code and polygon (CGCS2000 lon/lat)."""

    type: Literal["Feature"] = "Feature"
    id: str | int | None = None
    geometry: dict[str, Any]
    properties: dict[str, Any] = Field(description="Must hold grid_code (15 digits)")


class PlanApply(BaseModel):
    """A proposal's features sent back to be written as the new grid version.

    Each feature's geometry is held to the limits of :mod:`gis_grid.edit` (vertices, rings)
    before anything builds it: an oversized one is a 422 naming the feature.
    """

    model_config = ConfigDict(extra="ignore")

    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[PlanFeature] = Field(min_length=1, max_length=5000)
    note: str | None = Field(None, max_length=500, description="Why (stored with the grids)")

    @model_validator(mode="after")
    def _within_limits(self) -> PlanApply:
        total = 0
        for i, feature in enumerate(self.features):
            field = f"features[{i}].geometry"
            try:
                check_geojson_limits(feature.geometry, field=field)
            except GridError as exc:  # a ValueError is what pydantic reports as a 422
                raise ValueError(str(exc)) from exc
            total += geojson_size(feature.geometry)[0]
        if total > MAX_TOTAL_VERTICES:
            msg = f"features have {total} vertices in all, more than {MAX_TOTAL_VERTICES}"
            raise ValueError(msg)
        return self


class PlanCountsPublic(BaseModel):
    """How many grids (and members: 一格一员) a village needs for a load band."""

    village_code: str
    by: str
    low: float
    high: float
    load: float
    n_min: int = Field(description="Fewest grids whose mean load is in the band")
    n_max: int = Field(description="Most grids whose mean load is in the band")
    grids: int = Field(description="Suggested count (mean nearest the band's middle)")
    members: int
    per_grid: float
    feasible: bool
    detail: str
