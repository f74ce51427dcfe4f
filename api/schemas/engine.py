"""Response models of the spatial-engine results: load balance and adjacency of grids.

The numbers are those of :func:`gis_grid.town.town_report` (the library path of the
``gis-grid balance`` and ``gis-grid adjacency`` commands), read from the database: points count
in the grid they lie in, lengths and areas are measured in the Gauss-Krüger zone (EPSG:4545).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

__all__ = [
    "AdjacencyPairPublic",
    "AdjacencyPublic",
    "AdjacencySummaryPublic",
    "AssignmentSummaryPublic",
    "BalanceIssuePublic",
    "BalancePublic",
    "BalanceSummaryPublic",
    "GridLoadPublic",
    "MemberLoadPublic",
    "SpreadPublic",
]

Scope = Literal["town", "village"]


class _Scoped(BaseModel):
    scope: Scope = Field(description="A whole town, or one village's grids")
    code: str = Field(examples=["511703109"], description="Town or village code")
    name: str
    town_code: str


class GridLoadPublic(BaseModel):
    """The load of one grid and of its member(s)."""

    grid: str = Field(examples=["511703109001001"])
    members: int = Field(ge=0, description="Appointed members (article 5: one)")
    member_codes: list[str]
    households: int = Field(ge=0)
    people: int = Field(ge=0)
    per_member: float = Field(description="The `by` load per member (the whole load if none)")
    band: Literal["below", "within", "above"] | None = Field(
        description="Against low/high; null without a band"
    )
    area_km2: float = Field(ge=0)
    pollution_points: int = Field(ge=0)
    hazards: int = Field(ge=0)
    open_incidents: int = Field(ge=0, description="Incidents not closed or evaluated")
    home_m: float | None = Field(description="Farthest member home from the grid, metres")


class MemberLoadPublic(BaseModel):
    """An appointed member: their share of the grid's load and their home's distance to it."""

    member: str = Field(examples=["M511703109001001"])
    grid: str
    households: float | None
    people: float | None
    area_km2: float | None
    pollution_points: float | None
    hazards: float | None
    open_incidents: float | None
    home_m: float | None = Field(description="Home to grid in metres, 0 inside (就地就近)")
    home_inside: bool


class SpreadPublic(BaseModel):
    """How unequal one quantity is across the grids."""

    metric: str = Field(examples=["households"])
    mean: float | None
    min: float | None
    max: float | None
    max_dev_pct: float | None = Field(description="Max |x - mean| / mean, in %")
    cv: float | None = Field(description="Coefficient of variation")
    gini: float | None = Field(description="Gini coefficient")


class BalanceIssuePublic(BaseModel):
    """A rule breach: no or several members (article 5), outside the band, far home ..."""

    kind: str = Field(examples=["above_band"])
    grid: str | None
    member: str | None
    detail: str


class BalanceSummaryPublic(BaseModel):
    """Totals of the balance report."""

    grids: int
    members: int
    households: int
    people: int
    outside_band: int
    issues: int


class AssignmentSummaryPublic(BaseModel):
    """Points checked against the grids they lie in (stored codes compared)."""

    points: int
    mismatched: int
    unassigned: int
    ok: bool


class BalancePublic(_Scoped):
    """Load balance of a town's or village's grids and appointed members."""

    by: Literal["households", "people"]
    band: tuple[float, float] | None = Field(description="[low, high] load per member")
    home_limit_m: float | None
    summary: BalanceSummaryPublic
    assignment: AssignmentSummaryPublic
    grids: list[GridLoadPublic]
    members: list[MemberLoadPublic]
    spread: list[SpreadPublic]
    issues: list[BalanceIssuePublic]


class AdjacencyPairPublic(BaseModel):
    """Two grids sharing a border."""

    a: str
    b: str
    shared_m: float = Field(description="Shared border, metres (Gauss-Krüger)")
    barrier_m: float = Field(description="Part of it along a barrier (river ...)")
    barrier: bool = Field(description="A barrier line meets the border")
    same_village: bool
    exact: bool = Field(description="False where the border was matched within the tolerance")


class AdjacencySummaryPublic(BaseModel):
    """Totals of the adjacency graph."""

    grids: int
    pairs: int
    barrier_pairs: int
    isolated: list[str] = Field(description="Grids without a neighbour")


class AdjacencyPublic(_Scoped):
    """The grids sharing a border, with the shared length and river-barrier flag."""

    barriers: list[str] = Field(description="Natural line kinds used as barriers")
    barrier_lines: int
    summary: AdjacencySummaryPublic
    pairs: list[AdjacencyPairPublic]
