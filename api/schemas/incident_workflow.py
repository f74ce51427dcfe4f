"""Request and response models of incident reporting, the workflow and task-type admission.

Request bodies forbid unknown fields, so a misspelt field is a 422 naming it rather than being
ignored. Coordinates accept only finite numbers (NaN/Infinity are refused naming the field).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.schemas import (
    GridRefPublic,
    IncidentDetailProperties,
    MemberRefPublic,
    _Feature,
    _Public,
)
from gis_grid.crs import Datum
from gis_grid.db.models import ApprovalState, IncidentStatus
from gis_grid.task_types import CODE_PATTERN

__all__ = [
    "AttachmentPublic",
    "AttachmentsPublic",
    "IncidentCreate",
    "IncidentEventPublic",
    "IncidentEventsPublic",
    "IncidentTransitionCreate",
    "IncidentWorkflowProperties",
    "IncidentWorkflowPublic",
    "OverdueGroupPublic",
    "OverdueItemPublic",
    "OverduePublic",
    "PointGeometry",
    "TaskTypeCreate",
    "TaskTypeTransitionCreate",
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PointGeometry(_Body):
    """A GeoJSON Point in CGCS2000 longitude/latitude (EPSG:4490), longitude first."""

    type: Literal["Point"]
    coordinates: list[Annotated[float, Field(allow_inf_nan=False)]] = Field(
        min_length=2,
        max_length=3,
        description="[lon, lat] (an optional height is ignored)",
        examples=[[107.405, 30.964]],
    )


class IncidentCreate(_Body):
    """A reported incident: its task type, what happened and where.

    Give the location either as ``geometry`` (a GeoJSON Point, CGCS2000) or as ``lon``/``lat``
    with their ``datum`` (phones and web maps in China give GCJ-02 or BD-09).
    """

    task_type_code: str = Field(min_length=1, max_length=64, examples=["T02"])
    title: str = Field(min_length=1, max_length=200, examples=["路灯损坏"])
    description: str | None = Field(None, max_length=4000)
    geometry: PointGeometry | None = None
    lon: float | None = Field(None, allow_inf_nan=False, examples=[107.409])
    lat: float | None = Field(None, allow_inf_nan=False, examples=[30.962])
    datum: Datum = Field(
        Datum.CGCS2000,
        description="Datum of lon/lat: cgcs2000, wgs84 (GPS), gcj02 (AMap, Tencent), bd09 "
        "(Baidu); converted to CGCS2000 and never stored",
    )

    @model_validator(mode="after")
    def _one_location(self) -> IncidentCreate:
        has_point = self.lon is not None or self.lat is not None
        if self.geometry is not None and has_point:
            msg = "give the location as geometry or as lon/lat, not both"
            raise ValueError(msg)
        if self.geometry is None and (self.lon is None or self.lat is None):
            missing = [n for n in ("lon", "lat") if getattr(self, n) is None]
            msg = (
                "location missing: give geometry (a GeoJSON Point) or lon and lat "
                f"({', '.join(missing)} missing)"
            )
            raise ValueError(msg)
        if self.geometry is not None and self.datum is not Datum.CGCS2000:
            msg = "geometry is CGCS2000 (RFC 7946 order lon, lat): datum applies to lon/lat only"
            raise ValueError(msg)
        return self


class IncidentTransitionCreate(_Body):
    """One step of the workflow: the next status and what the step needs."""

    to: IncidentStatus = Field(description="The next status; see allowed_next of the incident")
    note: str | None = Field(
        None,
        max_length=2000,
        description="Why; required when closing without dispatch and for rework (返工)",
    )
    deadline: dt.datetime | None = Field(
        None,
        description="Required for dispatched: after now and the report; without an offset, "
        "China Standard Time",
        examples=["2026-12-05T18:00:00+08:00"],
    )
    evaluation: int | None = Field(
        None, ge=1, le=5, description="Required for evaluated: 1 (poor) to 5 (excellent)"
    )


class IncidentWorkflowProperties(IncidentDetailProperties):
    """An incident with its workflow data: responsible member, closing, evaluation."""

    description: str | None = Field(description="ID numbers and phones in it are masked")
    reported_by: str | None = Field(description="Who reported it (the logged-in account)")
    closed_at: dt.datetime | None
    evaluation: int | None = Field(ge=1, le=5)
    grid: GridRefPublic | None = Field(description="The current grid the incident lies in")
    member: MemberRefPublic | None = Field(description="The responsible member; phone masked")
    allowed_next: list[str] = Field(description="Statuses the incident may go to next")
    assignment: str | None = Field(
        None,
        description="In the answer to a report only: how the member was chosen: appointed, "
        "ab_cover (the appointed member is absent today), appointed_absent (no cover "
        "present), unstaffed",
    )


class IncidentWorkflowPublic(_Feature):
    """An incident as a GeoJSON feature with its workflow data."""

    properties: IncidentWorkflowProperties


class IncidentEventPublic(_Public):
    """One recorded step of an incident's workflow."""

    id: int
    from_status: str | None = Field(description="null for the report itself")
    to_status: str
    at: dt.datetime
    actor: str | None
    note: str | None = Field(description="ID numbers and phones in it are masked")
    attachments: list[int] = Field(description="Ids of the files attached to this step")


class IncidentEventsPublic(_Public):
    """The history of an incident, oldest first."""

    incident_id: int
    data: list[IncidentEventPublic]
    count: int = Field(ge=0)


class AttachmentPublic(_Public):
    """A stored attachment's metadata (GET /api/v1/attachments/{id} returns the bytes)."""

    id: int
    incident_id: int
    event_id: int | None
    filename: str
    content_type: str = Field(examples=["image/png"])
    size: int = Field(ge=1, description="Bytes")
    sha256: str
    created_at: dt.datetime
    href: str = Field(description="Where to download the bytes")


class AttachmentsPublic(_Public):
    """The attachments of an incident, oldest first."""

    incident_id: int
    data: list[AttachmentPublic]
    count: int = Field(ge=0)


class OverdueGroupPublic(_Public):
    """Overdue incidents of one grid or one member (days are fractional)."""

    code: str | None = Field(description="Grid or member code; null when none")
    name: str | None = Field(description="The member's name (members are publicised)")
    village_code: str | None
    village: str | None
    overdue: int = Field(ge=0)
    max_days: float
    mean_days: float


class OverdueItemPublic(_Public):
    """One overdue incident."""

    id: int
    task_type_code: str
    status: str
    deadline: dt.datetime
    days_overdue: float
    grid_code: str | None
    village_code: str | None
    village: str | None
    member_code: str | None
    member: str | None


class OverduePublic(_Public):
    """Supervision (督办): overdue incidents per grid and per member, most overdue first."""

    overdue: int = Field(ge=0, description="Overdue incidents matching the filters")
    by_grid: list[OverdueGroupPublic]
    by_member: list[OverdueGroupPublic]
    items: list[OverdueItemPublic] = Field(description="Most overdue first, up to limit")


class TaskTypeCreate(_Body):
    """A proposed new kind of grid work (article 10): it starts as 'proposed' (requested)."""

    code: str = Field(pattern=CODE_PATTERN, examples=["T19"])
    name: str = Field(min_length=1, max_length=200, examples=["防溺水宣传巡查"])
    sla_days: int | None = Field(None, ge=0, le=365, description="Handling limit, days")


class TaskTypeTransitionCreate(_Body):
    """One step of a task type's admission."""

    to: ApprovalState = Field(description="applied, reviewed, approved or rejected")
    note: str | None = Field(None, max_length=2000)
    decided_by: str | None = Field(
        None,
        min_length=1,
        max_length=100,
        description="Required for approved/rejected: the authority (区人民政府, 区综治中心)",
        examples=["区人民政府"],
    )
    on: dt.date | None = Field(None, description="Day of the step; default today (China)")
