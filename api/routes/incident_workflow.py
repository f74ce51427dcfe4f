"""Incident reporting and the seven-step workflow; admission of task types (article 10).

- ``POST /api/v1/incidents``: report an incident at a GeoJSON point or lon/lat in a datum;
  it is assigned to its grid and responsible member (AB cover when absent).
- ``POST /api/v1/incidents/{id}/transitions``: one step of report → accept → dispatch →
  handle → feedback → close → evaluate (the table is
  :data:`gis_grid.incidents.TRANSITIONS`); ``GET .../events``: the history.
- ``POST/GET /api/v1/incidents/{id}/attachments``, ``GET /api/v1/attachments/{id}``: photos
  and documents, checked by their bytes.
- ``GET /api/v1/supervision/overdue``: overdue incidents per grid and member (督办). The list
  of overdue incidents itself is ``GET /api/v1/incidents?overdue=true``.
- ``POST /api/v1/task-types`` and ``.../{code}/transitions``: admission of new kinds of work.

The reads of incidents and task types are in :mod:`api.routes.events`.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Path, Query, Request, Response, UploadFile
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from api.deps import ActorDep, ConnectionDep, PlacesDep, WriteConnectionDep
from api.errors import error_responses
from api.responses import GEOJSON_MEDIA_TYPE, geojson_doc
from api.schemas import TaskTypePublic
from api.schemas.incident_workflow import (
    AttachmentPublic,
    AttachmentsPublic,
    IncidentCreate,
    IncidentEventPublic,
    IncidentEventsPublic,
    IncidentTransitionCreate,
    IncidentWorkflowPublic,
    OverdueGroupPublic,
    OverdueItemPublic,
    OverduePublic,
    TaskTypeCreate,
    TaskTypeTransitionCreate,
)
from gis_grid import incidents, task_types
from gis_grid.errors import GridError
from gis_grid.incidents import (
    MAX_ATTACHMENT_BYTES,
    AttachmentRecord,
    AttachmentTooLargeError,
    UnsupportedContentError,
)

__all__ = ["router"]


def _error(exc: GridError, status_code: int) -> JSONResponse:
    # 413 and 415 are not in api.errors.STATUS_BY_ERROR: answered here in the same format.
    body: dict[str, object] = {"detail": str(exc), "error": type(exc).__name__}
    if exc.problems:
        body["problems"] = exc.problems
    return JSONResponse(body, status_code=status_code)


#: Largest request body these routes read: an attachment plus room for the multipart framing.
MAX_BODY_BYTES = MAX_ATTACHMENT_BYTES + 64 * 1024


def _too_large(length: str | None) -> bool:
    return length is not None and length.isdigit() and int(length) > MAX_BODY_BYTES


class _WorkflowRoute(APIRoute):
    """A route that refuses oversized bodies early.

    A ``Content-Length`` above :data:`MAX_BODY_BYTES` is answered 413 before the body is read
    (FastAPI would otherwise spool a whole multipart upload before the route runs). 422s are
    made JSON-safe and masked app-wide by :mod:`api.errors`.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            if _too_large(request.headers.get("content-length")):
                msg = (
                    f"request body is larger than {MAX_BODY_BYTES} bytes; attachments are "
                    f"limited to {MAX_ATTACHMENT_BYTES // (1024 * 1024)} MiB"
                )
                problem = {"field": "body", "max_bytes": MAX_BODY_BYTES}
                return _error(AttachmentTooLargeError(msg, problems=[problem]), 413)
            return await handler(request)

        return route


router = APIRouter(route_class=_WorkflowRoute)

IncidentId = Annotated[int, Path(ge=1, le=2**31 - 1, description="Incident id")]
TaskTypeCode = Annotated[str, Path(max_length=64, description="Task type code", examples=["T19"])]


def _incident_response(
    conn: Any, incident_id: int, *, status_code: int = 200, assignment: str | None = None
) -> Response:
    feature = incidents.get_incident_detail(conn, incident_id)
    feature["properties"]["assignment"] = assignment
    model = IncidentWorkflowPublic.model_validate(feature)
    headers = {"Location": f"/api/v1/incidents/{incident_id}"} if status_code == 201 else None
    return Response(
        model.model_dump_json(),
        status_code=status_code,
        media_type=GEOJSON_MEDIA_TYPE,
        headers=headers,
    )


def _geojson_created(model: type[IncidentWorkflowPublic]) -> dict[int | str, dict[str, Any]]:
    doc = geojson_doc(model, 404, 409, 422)
    return {201: {**doc.pop(200), "description": "Created (GeoJSON, CGCS2000 lon/lat)"}, **doc}


@router.post(
    "/incidents",
    status_code=201,
    response_class=Response,
    responses=_geojson_created(IncidentWorkflowPublic),
    tags=["incidents"],
)
def report_incident(conn: WriteConnectionDep, actor: ActorDep, body: IncidentCreate) -> Response:
    """Report an incident (采集) at a point; it is assigned to its grid and member.

    The location is a GeoJSON ``geometry`` Point in CGCS2000, or ``lon``/``lat`` with their
    ``datum`` (``gcj02`` from AMap/Tencent, ``bd09`` from Baidu, ``wgs84`` from GPS), converted
    to CGCS2000. It must lie in a current grid of one of the platform's towns: otherwise 422
    giving the coordinate and the distance to the nearest town and grid (swapped lon/lat and
    NaN are 422 too). The responsible member is the grid's appointed member, or the AB post's
    member when that one is absent today. The logged-in account is stored as the reporter and
    the first event (→ reported) is recorded. Any task type may be reported; only approved
    ones can be dispatched.
    """
    if body.geometry is not None:
        lon, lat = body.geometry.coordinates[:2]
        fields = ("geometry.coordinates[0]", "geometry.coordinates[1]")
    else:
        assert body.lon is not None and body.lat is not None  # checked by the model
        lon, lat, fields = body.lon, body.lat, ("lon", "lat")
    new = incidents.report_incident(
        conn,
        task_type_code=body.task_type_code,
        title=body.title,
        description=body.description,
        lon=lon,
        lat=lat,
        datum=body.datum,
        actor=actor,
        fields=fields,
    )
    return _incident_response(conn, new.id, status_code=201, assignment=new.responsible.rule)


@router.post(
    "/incidents/{incident_id}/transitions",
    response_class=Response,
    responses=geojson_doc(IncidentWorkflowPublic, 404, 409, 422),
    tags=["incidents"],
)
def transition_incident(
    conn: WriteConnectionDep,
    actor: ActorDep,
    incident_id: IncidentId,
    body: IncidentTransitionCreate,
) -> Response:
    """Move an incident one step: accept, dispatch, handle, feedback, close, evaluate.

    Allowed steps: reported → accepted | closed (不予立案, note required); accepted →
    dispatched | closed (note required); dispatched → handled; handled → feedback |
    dispatched (返工, note required); feedback → closed | dispatched (返工, note required);
    closed → evaluated. Any other step is 409 naming the current status and the allowed ones.
    A dispatch needs a ``deadline`` later than now (the clock starts) and a task type the
    district approved (article 10), else 422 naming the type and its state; ``evaluated``
    needs ``evaluation`` 1-5. Each step is recorded (who = the logged-in account, when, note). Two
    concurrent steps from the same status cannot both succeed: the second gets 409.
    """
    incidents.transition_incident(
        conn,
        incident_id,
        body.to,
        actor=actor,
        note=body.note,
        deadline=body.deadline,
        evaluation=body.evaluation,
    )
    return _incident_response(conn, incident_id)


@router.get(
    "/incidents/{incident_id}/events",
    response_model=IncidentEventsPublic,
    responses=error_responses(404, 422),
    tags=["incidents"],
)
def read_incident_events(conn: ConnectionDep, incident_id: IncidentId) -> IncidentEventsPublic:
    """List the history of an incident: every step (from, to, who, when, note), oldest first."""
    events = incidents.incident_events(conn, incident_id)
    return IncidentEventsPublic(
        incident_id=incident_id,
        data=[IncidentEventPublic.model_validate(e) for e in events],
        count=len(events),
    )


def _attachment(record: AttachmentRecord) -> AttachmentPublic:
    return AttachmentPublic(
        id=record.id,
        incident_id=record.incident_id,
        event_id=record.event_id,
        filename=record.filename,
        content_type=record.content_type,
        size=record.size,
        sha256=record.sha256,
        created_at=record.created_at,
        href=f"/api/v1/attachments/{record.id}",
    )


@router.post(
    "/incidents/{incident_id}/attachments",
    status_code=201,
    response_model=AttachmentPublic,
    responses=error_responses(404, 413, 415, 422),
    tags=["incidents"],
)
def upload_attachment(
    conn: WriteConnectionDep,
    actor: ActorDep,
    incident_id: IncidentId,
    file: Annotated[UploadFile, File(description="JPEG, PNG, WebP or PDF, at most 5 MiB")],
    event_id: Annotated[
        int | None, Form(ge=1, le=2**31 - 1, description="The event the file documents")
    ] = None,
) -> Response:
    """Attach a photo or document to an incident (and optionally to one of its events).

    The content is checked by its bytes: JPEG, PNG, WebP or PDF only (415 otherwise, or when
    the declared type disagrees with the bytes), at most 5 MiB (413). The file name is reduced
    to its last part; the SHA-256 is stored. Answers 201 with the metadata and a Location of
    the bytes.
    """
    # One byte more than allowed is enough to know the file is too large.
    data = file.file.read(MAX_ATTACHMENT_BYTES + 1)
    try:
        record = incidents.add_attachment(
            conn,
            incident_id,
            data,
            filename=file.filename,
            declared_type=file.content_type,
            event_id=event_id,
            uploaded_by=actor,
        )
    except AttachmentTooLargeError as exc:
        return _error(exc, 413)
    except UnsupportedContentError as exc:
        return _error(exc, 415)
    public = _attachment(record)
    return JSONResponse(
        public.model_dump(mode="json"), status_code=201, headers={"Location": public.href}
    )


@router.get(
    "/incidents/{incident_id}/attachments",
    response_model=AttachmentsPublic,
    responses=error_responses(404, 422),
    tags=["incidents"],
)
def read_incident_attachments(conn: ConnectionDep, incident_id: IncidentId) -> AttachmentsPublic:
    """List the attachments of an incident (metadata; each ``href`` gives the bytes)."""
    records = incidents.incident_attachments(conn, incident_id)
    return AttachmentsPublic(
        incident_id=incident_id, data=[_attachment(r) for r in records], count=len(records)
    )


@router.get(
    "/attachments/{attachment_id}",
    response_class=Response,
    responses={
        200: {
            "description": "The file, with its stored content type",
            "content": {"image/jpeg": {}, "image/png": {}, "image/webp": {}, "application/pdf": {}},
        },
        **error_responses(404, 422),
    },
    tags=["incidents"],
)
def read_attachment(
    conn: ConnectionDep,
    attachment_id: Annotated[int, Path(ge=1, le=2**31 - 1, description="Attachment id")],
) -> Response:
    """Download the bytes of an attachment (never rendered inline, never sniffed)."""
    record, data = incidents.get_attachment(conn, attachment_id)
    ascii_name = record.filename.encode("ascii", "replace").decode().replace("?", "_")
    quoted = "".join(
        f"%{b:02X}" if chr(b) not in _UNRESERVED else chr(b) for b in record.filename.encode()
    )
    return Response(
        data,
        media_type=record.content_type,
        headers={
            "Content-Disposition": f'attachment; filename="{ascii_name}"; '
            f"filename*=UTF-8''{quoted}",
            "X-Content-Type-Options": "nosniff",
            "ETag": f'"{record.sha256}"',
            "Cache-Control": "private, max-age=0",
        },
    )


_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


@router.get(
    "/supervision/overdue",
    response_model=OverduePublic,
    responses=error_responses(404, 422),
    tags=["incidents"],
)
def read_overdue(
    conn: ConnectionDep,
    places: PlacesDep,
    limit: Annotated[
        int, Query(ge=1, le=1000, description="At most this many items (the counts cover all)")
    ] = 100,
) -> OverduePublic:
    """Supervision (督办): overdue incidents per grid and per member, most overdue first.

    Overdue = deadline passed and not closed or evaluated (as ``GET /incidents?overdue=true``,
    which lists them). The member of an incident is the one assigned at report time or, for
    older incidents, the grid's appointed member.
    """
    summary = incidents.overdue_summary(conn, **places, limit=limit)

    def group(g: incidents.OverdueGroup) -> OverdueGroupPublic:
        return OverdueGroupPublic(
            code=g.key,
            name=g.name,
            village_code=g.village_code,
            village=g.village,
            overdue=g.overdue,
            max_days=g.max_days,
            mean_days=g.mean_days,
        )

    return OverduePublic(
        overdue=summary.overdue,
        by_grid=[group(g) for g in summary.by_grid],
        by_member=[group(g) for g in summary.by_member],
        items=[OverdueItemPublic.model_validate(i) for i in summary.items],
    )


@router.post(
    "/task-types",
    status_code=201,
    response_model=TaskTypePublic,
    responses=error_responses(409, 422),
    tags=["task types"],
)
def create_task_type(
    conn: WriteConnectionDep, actor: ActorDep, body: TaskTypeCreate, response: Response
) -> TaskTypePublic:
    """Propose a new kind of grid work (article 10): it starts as 'proposed' (requested).

    It cannot be dispatched until the district approves it (``POST
    /task-types/{code}/transitions``: applied → reviewed → approved). 409 if the code exists.
    """
    record = task_types.create_task_type(
        conn, code=body.code, name=body.name, sla_days=body.sla_days, actor=actor
    )
    response.headers["Location"] = f"/api/v1/task-types/{record.code}"
    return TaskTypePublic.model_validate(record)


@router.post(
    "/task-types/{code}/transitions",
    response_model=TaskTypePublic,
    responses=error_responses(404, 409, 422),
    tags=["task types"],
)
def transition_task_type(
    conn: WriteConnectionDep, actor: ActorDep, code: TaskTypeCode, body: TaskTypeTransitionCreate
) -> TaskTypePublic:
    """One step of a task type's admission (准入, article 10).

    proposed → applied (the town centre applies) → reviewed (the district centre reviews) →
    approved | rejected (the district government decides; ``decided_by`` required); the review
    may also reject an application (applied → rejected). Each step stamps its date (``on``,
    default today). Any other step is 409 naming the current state and the allowed ones.
    """
    record = task_types.transition_task_type(
        conn, code, body.to, actor=actor, decided_by=body.decided_by, on=body.on, note=body.note
    )
    return TaskTypePublic.model_validate(record)
