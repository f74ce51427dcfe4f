"""Pollution points, hazards, incidents and task types.

``/api/v1/pollution-points``, ``/api/v1/hazards``, ``/api/v1/incidents``,
``/api/v1/task-types``. A ``type`` filter accepts the values stored (kinds, or task type
codes) and answers 422 listing them otherwise.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from api.deps import (
    AreaDep,
    ConnectionDep,
    LimitDep,
    OffsetDep,
    ReportedRangeDep,
    check_choice,
)
from api.errors import error_responses
from api.responses import feature_response, geojson_doc, list_response, page_response
from api.schemas import (
    HazardPublic,
    HazardsPublic,
    IncidentPublic,
    IncidentsPublic,
    PollutionPointPublic,
    PollutionPointsPublic,
    TaskTypePublic,
    TaskTypesPublic,
)
from gis_grid import queries
from gis_grid.db.models import ApprovalState, IncidentStatus

__all__ = ["router"]

router = APIRouter()

PointCode = Annotated[str, Path(max_length=64, description="Code of the point")]


def _type_query(what: str) -> object:
    return Query(alias="type", max_length=64, description=f"Only this {what}")


@router.get(
    "/pollution-points",
    response_class=Response,
    responses=geojson_doc(PollutionPointsPublic, 404, 422),
    tags=["pollution points"],
)
def read_pollution_points(
    *,
    request: Request,
    conn: ConnectionDep,
    kind: Annotated[str | None, _type_query("kind (sewage, livestock, factory ...)")] = None,
    area: AreaDep,
    limit: LimitDep = 100,
    offset: OffsetDep = 0,
) -> Response:
    """Pollution discharge points (排污点) by code, filtered by kind, place and box."""
    page = queries.pollution_page(
        conn,
        kind=check_choice("type", kind, queries.pollution_kinds(conn)),
        **area,
        limit=limit,
        offset=offset,
    )
    return page_response(request, page)


@router.get(
    "/pollution-points/{code}",
    response_class=Response,
    responses=geojson_doc(PollutionPointPublic, 404),
    tags=["pollution points"],
)
def read_pollution_point(conn: ConnectionDep, code: PointCode) -> Response:
    """One pollution discharge point (404 naming the code if unknown)."""
    feature = queries.get_pollution_point(conn, code)
    return feature_response(PollutionPointPublic.model_validate(feature))


@router.get(
    "/hazards",
    response_class=Response,
    responses=geojson_doc(HazardsPublic, 404, 422),
    tags=["hazards"],
)
def read_hazards(
    *,
    request: Request,
    conn: ConnectionDep,
    kind: Annotated[str | None, _type_query("kind (landslide, flood, fire ...)")] = None,
    min_level: Annotated[
        int | None, Query(ge=1, le=4, description="Only hazards of at least this level")
    ] = None,
    area: AreaDep,
    limit: LimitDep = 100,
    offset: OffsetDep = 0,
) -> Response:
    """Environmental and safety hazards (环境安全隐患) by code."""
    page = queries.hazard_page(
        conn,
        kind=check_choice("type", kind, queries.hazard_kinds(conn)),
        min_level=min_level,
        **area,
        limit=limit,
        offset=offset,
    )
    return page_response(request, page)


@router.get(
    "/hazards/{code}",
    response_class=Response,
    responses=geojson_doc(HazardPublic, 404),
    tags=["hazards"],
)
def read_hazard(conn: ConnectionDep, code: PointCode) -> Response:
    """One hazard (404 naming the code if unknown)."""
    return feature_response(HazardPublic.model_validate(queries.get_hazard(conn, code)))


@router.get(
    "/incidents",
    response_class=Response,
    responses=geojson_doc(IncidentsPublic, 404, 422),
    tags=["incidents"],
)
def read_incidents(
    *,
    request: Request,
    conn: ConnectionDep,
    task_type: Annotated[str | None, _type_query("task type (code, see /task-types)")] = None,
    status: Annotated[
        list[IncidentStatus] | None,
        Query(description="Only incidents in these workflow steps (repeat for several)"),
    ] = None,
    reported: ReportedRangeDep,
    overdue: Annotated[
        bool | None,
        Query(description="true: deadline passed and not closed; false: the others"),
    ] = None,
    area: AreaDep,
    limit: LimitDep = 100,
    offset: OffsetDep = 0,
) -> Response:
    """Incidents by id, filtered by type, status, place, report date, box and overdue."""
    page = queries.incident_page(
        conn,
        task_type=check_choice("type", task_type, queries.task_type_codes(conn)),
        statuses=[s.value for s in status or ()],
        reported_from=reported.start,
        reported_to=reported.end,
        overdue=overdue,
        **area,
        limit=limit,
        offset=offset,
    )
    return page_response(request, page)


@router.get(
    "/incidents/{incident_id}",
    response_class=Response,
    responses=geojson_doc(IncidentPublic, 404),
    tags=["incidents"],
)
def read_incident(
    conn: ConnectionDep,
    incident_id: Annotated[int, Path(ge=1, le=2**31 - 1, description="Incident id")],
) -> Response:
    """One incident with its title (ID numbers and phones in it masked)."""
    feature = queries.get_incident(conn, incident_id)
    return feature_response(IncidentPublic.model_validate(feature))


@router.get(
    "/task-types",
    response_model=TaskTypesPublic,
    responses=error_responses(422),
    tags=["task types"],
)
def read_task_types(
    *,
    request: Request,
    conn: ConnectionDep,
    approval_state: Annotated[
        ApprovalState | None, Query(description="Admission (准入) state, article 10")
    ] = None,
    limit: LimitDep = 100,
    offset: OffsetDep = 0,
) -> TaskTypesPublic:
    """Kinds of grid work and their admission state; only approved kinds are assignable."""
    page = queries.task_type_page(
        conn,
        approval_state=approval_state.value if approval_state else None,
        limit=limit,
        offset=offset,
    )
    return list_response(request, page, TaskTypesPublic, TaskTypePublic)


@router.get(
    "/task-types/{code}",
    response_model=TaskTypePublic,
    responses=error_responses(404),
    tags=["task types"],
)
def read_task_type(
    conn: ConnectionDep, code: Annotated[str, Path(max_length=64, examples=["T01"])]
) -> TaskTypePublic:
    """One task type (404 naming the code if unknown)."""
    return TaskTypePublic.model_validate(queries.get_task_type(conn, code))
