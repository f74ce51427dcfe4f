"""Grid editing: boundary updates under If-Match, split, merge: ``/api/v1/grids/{code}``.

Every change names the version it was made on: ``If-Match`` carries the ETag that
``GET /api/v1/grids/{code}`` sent (``"<code>-v<version>"``). No header is 428, another
version 412 with the current ETag in the message: nobody overwrites an edit they have not
seen. A merge changes two grids, so ``If-Match`` lists both ETags, comma-separated
(``If-Match: "511703109209001-v1", "511703109209002-v1"``); ``*`` is refused like a missing
header, since it names no version.

The edit itself (validation, neighbours following a moved edge, versions, point
re-assignment) is :mod:`gis_grid.edit`; ``?dry_run=true`` does all of it and rolls back.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query, Response

from api.deps import ActorDep, GridCode, WriteConnectionDep
from api.responses import feature_response, geojson_doc
from api.routes.grids import etag
from api.schemas.grid_edit import (
    GridEditPublic,
    GridFeatureIn,
    GridMerge,
    GridPut,
    GridSplit,
    GridUpdate,
    LineFeatureIn,
)
from gis_grid import edit
from gis_grid.crs import Datum
from gis_grid.errors import PreconditionRequiredError

__all__ = ["parse_if_match", "router"]

router = APIRouter(prefix="/grids", tags=["grids"])

_TAG = re.compile(r'^"(?P<code>[0-9]{15})-v(?P<version>[0-9]{1,9})"$')

IfMatch = Annotated[
    str | None,
    Header(
        description=(
            'ETag of the version edited, from GET /api/v1/grids/{code}: "<code>-v<version>". '
            "Required (428 without, 412 if stale); a merge lists both grids' ETags"
        ),
        examples=['"511703109209001-v1"'],
        max_length=500,
    ),
]
DryRun = Annotated[
    bool,
    Query(description="Validate and report the new shapes and loads without storing anything"),
]
DatumQuery = Annotated[
    Datum,
    Query(
        description=(
            "Datum of the coordinates: cgcs2000 or wgs84 (stored as is), gcj02 (AMap, "
            "Tencent) or bd09 (Baidu), converted vertex by vertex"
        )
    ),
]

_RESPONSES = geojson_doc(GridEditPublic, 404, 409, 412, 422, 428)


def parse_if_match(value: str | None) -> dict[str, int] | None:
    """Return the grid versions an ``If-Match`` header names (``None`` if there is none).

    Tags other than ``"<15-digit code>-v<version>"`` (weak ``W/`` tags too: ``If-Match``
    compares strongly) name no version: a request naming none of its grid is refused 412.

    Examples
    --------
    >>> parse_if_match('"511703109209001-v2", "511703109209002-v1"')
    {'511703109209001': 2, '511703109209002': 1}
    """
    if value is None or not value.strip():
        return None
    if value.strip() == "*":
        msg = (
            'If-Match: * names no version; send the ETag you read, e.g. If-Match: "<code>-v<n>" '
            "(GET /api/v1/grids/{code})"
        )
        raise PreconditionRequiredError(msg, problems=[{"field": "If-Match", "problem": "*"}])
    tags: dict[str, int] = {}
    for part in value.split(","):
        found = _TAG.match(part.strip())
        if found:
            tags[found["code"]] = int(found["version"])
    return tags


def _answer(result: edit.GridEdit) -> Response:
    summary: dict[str, Any] = {
        "operation": result.operation,
        "dry_run": result.dry_run,
        "valid_from": result.valid_from,
        "changes": [
            {
                "code": c.code,
                "change": c.change,
                "version": c.version,
                "previous_version": c.previous_version,
                "etag": c.etag,
                "households": c.households,
                "people": c.people,
                "area_km2": c.area_km2,
            }
            for c in result.changes
        ],
        "grids": result.features,
        "points_moved": result.points_moved,
        "points_unassigned": result.points_unassigned,
        "retired_members": result.retired_members,
        "grids_without_member": result.grids_without_member,
    }
    body = GridEditPublic.model_validate({**result.grid, "edit": summary})
    # A dry run changed nothing: the grid's ETag is still the one the client sent.
    props = body.properties
    headers = {} if result.dry_run else {"ETag": etag(props.code, props.version)}
    return feature_response(body, headers=headers)


def _geometry(body: Any, datum: Datum, field: str) -> tuple[Any, str | None]:
    """Return the shapely geometry and the name (from a Feature's properties) of a body."""
    name = None
    if isinstance(body, GridFeatureIn | LineFeatureIn):
        if isinstance(body, GridFeatureIn) and body.properties is not None:
            name = body.properties.name
        body = body.geometry
    geom = edit.geometry_from_geojson(body.model_dump(), field=field, datum=datum)
    return geom, name


@router.put("/{code}", response_class=Response, responses=_RESPONSES)
def replace_grid(
    *,
    conn: WriteConnectionDep,
    code: GridCode,
    body: Annotated[GridPut, Body(description="The new outline (GeoJSON), CGCS2000 lon/lat")],
    actor: ActorDep,
    if_match: IfMatch = None,
    dry_run: DryRun = False,
    datum: DatumQuery = Datum.CGCS2000,
) -> Response:
    """Redraw a grid's outline (a Polygon/MultiPolygon, or a Feature with ``properties.name``).

    Requires ``If-Match`` with the grid's ETag. The outline must be valid and stay inside the
    grid's village (overhang wider than 0.5 m is refused with its lon/lat and whose land it
    is); vertices within 0.5 m of a neighbour's snap to it. Neighbours of the village follow
    a moved shared edge in the same transaction: land taken leaves them, land given up goes
    to the neighbour sharing the longest border with it; a gap no neighbour borders is
    refused (409, with its lon/lat). Only the grids that changed get a new version (the
    previous closed at the same instant); their households, pollution points, hazards and
    incidents are re-assigned. Answers the new version with its new ``ETag``, and in
    ``edit`` every grid changed and how many points moved.
    """
    geometry, name = _geometry(body, datum, "geometry")
    result = edit.edit_grid(
        conn,
        code,
        if_match=parse_if_match(if_match),
        actor=actor,
        geometry=geometry,
        name=name,
        dry_run=dry_run,
    )
    return _answer(result)


@router.patch("/{code}", response_class=Response, responses=_RESPONSES)
def update_grid(
    *,
    conn: WriteConnectionDep,
    code: GridCode,
    body: GridUpdate,
    actor: ActorDep,
    if_match: IfMatch = None,
    dry_run: DryRun = False,
    datum: DatumQuery = Datum.CGCS2000,
) -> Response:
    """Rename a grid and/or redraw its outline (as ``PUT``); requires ``If-Match``.

    A rename alone writes a new version with the same shape (history shows who renamed it);
    a PATCH that changes nothing writes nothing.
    """
    geometry, name = (None, None)
    if body.geometry is not None:
        geometry, name = _geometry(body.geometry, datum, "geometry")
    result = edit.edit_grid(
        conn,
        code,
        if_match=parse_if_match(if_match),
        actor=actor,
        geometry=geometry,
        name=body.name if body.name is not None else name,
        note=body.note,
        dry_run=dry_run,
    )
    return _answer(result)


@router.post("/{code}/split", response_class=Response, responses=_RESPONSES)
def split_grid(
    *,
    conn: WriteConnectionDep,
    code: GridCode,
    body: GridSplit,
    actor: ActorDep,
    if_match: IfMatch = None,
    dry_run: DryRun = False,
    datum: DatumQuery = Datum.CGCS2000,
) -> Response:
    """Cut a grid in two along a line crossing it; requires ``If-Match``.

    The line must cut the grid into exactly two pieces (else 422 saying why). **The larger
    piece keeps the code**, its history and member; the other gets the village's next free
    number (numbers of retired grids are never reused) and no member yet
    (``edit.grids_without_member``). Neighbours whose edge the line meets gain that vertex
    (``noded``). Answers the grid keeping the code; the new one is in ``edit.grids``.
    """
    line, _ = _geometry(body.line, datum, "line")
    result = edit.split_grid(
        conn,
        code,
        line,
        if_match=parse_if_match(if_match),
        actor=actor,
        name=body.name,
        note=body.note,
        dry_run=dry_run,
    )
    return _answer(result)


@router.post("/{code}/merge", response_class=Response, responses=_RESPONSES)
def merge_grids(
    *,
    conn: WriteConnectionDep,
    code: GridCode,
    body: GridMerge,
    actor: ActorDep,
    if_match: IfMatch = None,
    dry_run: DryRun = False,
) -> Response:
    """Merge a grid with a neighbour of the same village; ``If-Match`` lists both ETags.

    The two must share a border (not just a corner; 409 otherwise, as for grids of two
    villages). **The smaller code keeps** the union and its history; the other is retired:
    its current version is closed, no successor is written, its points are re-assigned, and
    its appointed member is named in ``edit.retired_members`` (left appointed: reassigning
    a member is a decision, article 7).
    """
    result = edit.merge_grids(
        conn,
        code,
        body.other,
        if_match=parse_if_match(if_match),
        actor=actor,
        name=body.name,
        note=body.note,
        dry_run=dry_run,
    )
    return _answer(result)
