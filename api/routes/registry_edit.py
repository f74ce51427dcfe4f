"""Registry writes: households, residents, pollution points, hazards and their patrol logs.

Article 8 (家家有登记、户户情况清、人人去向明; patrols of pollution points and hazards, serious
findings reported). Every write records the logged-in account and runs in one transaction: a
refused request changes nothing. Points are given as a GeoJSON Point or lon/lat with a datum
and placed by :mod:`gis_grid.registry.location` (grid assigned by the database; a point in a
gap of the grid plan is stored and reported with the nearest grid; a point in no village is
refused, 422).

Personal data is never echoed, not even in validation errors: :mod:`api.errors` masks
names, ID numbers and phones in the ``input`` of every 422 (and writes NaN/Infinity as text,
which JSON cannot carry).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response

from api.deps import CHINA_TIME, ActorDep, ConnectionDep, LimitDep, OffsetDep, WriteConnectionDep
from api.errors import error_responses
from api.responses import list_links
from api.schemas.registry_edit import (
    HazardCreate,
    HazardUpdate,
    HouseholdCountPublic,
    HouseholdCreate,
    HouseholdDeletedPublic,
    HouseholdSavedPublic,
    HouseholdUpdate,
    PatrolCreate,
    PatrolPublic,
    PatrolsPublic,
    PlacementPublic,
    PollutionPointCreate,
    PollutionPointUpdate,
    ResidentCreate,
    ResidentDeletedPublic,
    ResidentSavedPublic,
    ResidentUpdate,
    ResidentWrittenPublic,
    SiteSavedPublic,
)
from gis_grid import registry
from gis_grid.registry.households import HouseholdCount
from gis_grid.registry.location import Placement

__all__ = ["router"]

router = APIRouter()

HouseholdCode = Annotated[
    str, Path(max_length=64, description="Household code", examples=["5117031090010001"])
]
PointCode = Annotated[str, Path(max_length=64, description="Code of the point")]
ResidentId = Annotated[int, Path(ge=1, le=2**31 - 1, description="Resident id")]

_WRITE_ERRORS = error_responses(404, 409, 422)


def _placement(placement: Placement) -> PlacementPublic:
    return PlacementPublic(**asdict(placement), in_grid=placement.in_grid)


def _household(saved: registry.HouseholdSaved) -> HouseholdSavedPublic:
    return HouseholdSavedPublic(
        code=saved.code,
        people=saved.people,
        residents=saved.residents,
        unregistered=saved.unregistered,
        address=saved.address,
        placement=_placement(saved.placement),
        previous_grid_code=saved.previous_grid_code,
        moved=saved.moved,
    )


def _counts(counts: HouseholdCount) -> HouseholdCountPublic:
    return HouseholdCountPublic(
        code=counts.code,
        people=counts.people,
        residents=counts.residents,
        unregistered=counts.unregistered,
    )


def _resident(saved: registry.ResidentSaved) -> ResidentSavedPublic:
    return ResidentSavedPublic(
        resident=ResidentWrittenPublic(**asdict(saved.resident)),
        household=_counts(saved.household),
    )


def _site(saved: registry.SiteSaved) -> SiteSavedPublic:
    return SiteSavedPublic(
        code=saved.code,
        name=saved.name,
        kind=saved.kind,
        level=saved.level,
        placement=_placement(saved.placement),
        previous_grid_code=saved.previous_grid_code,
        moved=saved.moved,
    )


def _changes(body: Any) -> dict[str, Any]:
    """Return the fields a PATCH sets (explicit nulls included), location gathered as one."""
    sent = body.model_dump(exclude_unset=True)
    for key in ("location", "lon", "lat", "datum"):
        sent.pop(key, None)
    location = body.lonlat()
    if location is not None:
        sent["location"] = location
    return sent


# --- households -------------------------------------------------------------------------------


@router.post(
    "/households",
    status_code=201,
    response_model=HouseholdSavedPublic,
    responses=_WRITE_ERRORS,
    tags=["households"],
)
def create_household(
    conn: WriteConnectionDep, actor: ActorDep, body: HouseholdCreate, response: Response
) -> HouseholdSavedPublic:
    """Register a household at a point (GeoJSON Point, or lon/lat with a datum).

    The database assigns its village and grid. A point in a gap of the grid plan is stored,
    with ``placement.in_grid = false`` and the nearest grid and its distance; a point in no
    village of the platform is refused (422 with the coordinate). 409 for an existing code.
    """
    location = body.lonlat()
    assert location is not None  # required by HouseholdCreate
    saved = registry.create_household(
        conn,
        code=body.code,
        people=body.people,
        address=body.address,
        lon=location["lon"],
        lat=location["lat"],
        datum=location["datum"],
        actor=actor,
    )
    response.headers["Location"] = f"/api/v1/households/{saved.code}"
    return _household(saved)


@router.patch(
    "/households/{code}",
    response_model=HouseholdSavedPublic,
    responses=_WRITE_ERRORS,
    tags=["households"],
)
def update_household(
    conn: WriteConnectionDep, actor: ActorDep, code: HouseholdCode, body: HouseholdUpdate
) -> HouseholdSavedPublic:
    """Change a household's people, address (null clears it) or location (re-assigned).

    ``people`` cannot go below the residents registered (422). A new location is placed like a
    new household; ``previous_grid_code`` says where it was.
    """
    return _household(registry.update_household(conn, code, _changes(body), actor=actor))


@router.delete(
    "/households/{code}",
    response_model=HouseholdDeletedPublic,
    responses=_WRITE_ERRORS,
    tags=["households"],
)
def delete_household(
    conn: WriteConnectionDep,
    actor: ActorDep,
    code: HouseholdCode,
    cascade: Annotated[bool, Query(description="Also remove the household's residents")] = False,
) -> HouseholdDeletedPublic:
    """Remove a household; one with residents only with ``?cascade=true`` (else 409)."""
    deleted = registry.delete_household(conn, code, cascade=cascade, actor=actor)
    return HouseholdDeletedPublic(**asdict(deleted))


# --- residents --------------------------------------------------------------------------------


@router.post(
    "/households/{code}/residents",
    status_code=201,
    response_model=ResidentSavedPublic,
    responses=_WRITE_ERRORS,
    tags=["households"],
)
def add_resident(
    conn: WriteConnectionDep,
    actor: ActorDep,
    code: HouseholdCode,
    body: ResidentCreate,
    response: Response,
) -> ResidentSavedPublic:
    """Register a person in a household; answered masked.

    The ID number is checked (GB 11643 check character, a real birth date not in the future);
    a birth date or gender given must agree with it, and are taken from it otherwise. 409 for
    an ID number registered already (named masked) or a second head of household (户主).
    ``household.people`` grows when everybody declared was registered already.
    """
    saved = registry.add_resident(conn, code, body.model_dump(), actor=actor)
    response.headers["Location"] = f"/api/v1/residents?household={code}"
    return _resident(saved)


@router.patch(
    "/residents/{resident_id}",
    response_model=ResidentSavedPublic,
    responses=_WRITE_ERRORS,
    tags=["households"],
)
def update_resident(
    conn: WriteConnectionDep, actor: ActorDep, resident_id: ResidentId, body: ResidentUpdate
) -> ResidentSavedPublic:
    """Change a resident; the whole record is checked again.

    A new ID number brings its birth date and gender unless they are given too.
    """
    changes = body.model_dump(exclude_unset=True)
    return _resident(registry.update_resident(conn, resident_id, changes, actor=actor))


@router.delete(
    "/residents/{resident_id}",
    response_model=ResidentDeletedPublic,
    responses=error_responses(404),
    tags=["households"],
)
def delete_resident(
    conn: WriteConnectionDep, actor: ActorDep, resident_id: ResidentId
) -> ResidentDeletedPublic:
    """Remove a resident; the household's ``people`` goes down by one."""
    deleted = registry.delete_resident(conn, resident_id, actor=actor)
    return ResidentDeletedPublic(id=deleted.id, household=_counts(deleted.household))


# --- pollution points and hazards -------------------------------------------------------------


def _create_site(
    conn: Any, site: registry.patrols.Site, body: PollutionPointCreate | HazardCreate, actor: str
) -> registry.SiteSaved:
    location = body.lonlat()
    assert location is not None  # required by the Create models
    return registry.create_site(
        conn,
        site,
        code=body.code,
        name=body.name,
        kind=body.kind,
        level=getattr(body, "level", None),
        lon=location["lon"],
        lat=location["lat"],
        datum=location["datum"],
        actor=actor,
    )


@router.post(
    "/pollution-points",
    status_code=201,
    response_model=SiteSavedPublic,
    responses=_WRITE_ERRORS,
    tags=["pollution points"],
)
def create_pollution_point(
    conn: WriteConnectionDep, actor: ActorDep, body: PollutionPointCreate, response: Response
) -> SiteSavedPublic:
    """Register a pollution discharge point (排污点); placed like a household."""
    saved = _create_site(conn, "pollution", body, actor)
    response.headers["Location"] = f"/api/v1/pollution-points/{saved.code}"
    return _site(saved)


@router.patch(
    "/pollution-points/{code}",
    response_model=SiteSavedPublic,
    responses=_WRITE_ERRORS,
    tags=["pollution points"],
)
def update_pollution_point(
    conn: WriteConnectionDep, actor: ActorDep, code: PointCode, body: PollutionPointUpdate
) -> SiteSavedPublic:
    """Change a pollution point's name, kind or location (re-assigned)."""
    return _site(registry.update_site(conn, "pollution", code, _changes(body), actor=actor))


@router.post(
    "/hazards",
    status_code=201,
    response_model=SiteSavedPublic,
    responses=_WRITE_ERRORS,
    tags=["hazards"],
)
def create_hazard(
    conn: WriteConnectionDep, actor: ActorDep, body: HazardCreate, response: Response
) -> SiteSavedPublic:
    """Register an environmental or safety hazard (环境安全隐患) with its level 1-4."""
    saved = _create_site(conn, "hazard", body, actor)
    response.headers["Location"] = f"/api/v1/hazards/{saved.code}"
    return _site(saved)


@router.patch(
    "/hazards/{code}",
    response_model=SiteSavedPublic,
    responses=_WRITE_ERRORS,
    tags=["hazards"],
)
def update_hazard(
    conn: WriteConnectionDep, actor: ActorDep, code: PointCode, body: HazardUpdate
) -> SiteSavedPublic:
    """Change a hazard's name, kind, level or location (re-assigned)."""
    return _site(registry.update_site(conn, "hazard", code, _changes(body), actor=actor))


# --- patrol logs ------------------------------------------------------------------------------


def _patrol(
    conn: Any, site: registry.patrols.Site, code: str, body: PatrolCreate, actor: str
) -> PatrolPublic:
    at = body.patrolled_at
    if at.tzinfo is None:
        at = at.replace(tzinfo=CHINA_TIME)
    record = registry.add_patrol(
        conn,
        site,
        code,
        patrolled_at=at,
        finding=body.finding,
        serious=body.serious,
        member_code=body.member_code,
        task_type_code=body.task_type_code,
        actor=actor,
    )
    return PatrolPublic(**asdict(record))


def _patrols(
    request: Request, conn: Any, site: registry.patrols.Site, code: str, *, limit: int, offset: int
) -> PatrolsPublic:
    page = registry.patrol_page(conn, site, code, limit=limit, offset=offset)
    return PatrolsPublic(
        data=[PatrolPublic(**asdict(item)) for item in page.items],
        count=page.number_matched,
        links=list_links(request, page),
    )


@router.post(
    "/pollution-points/{code}/patrols",
    status_code=201,
    response_model=PatrolPublic,
    responses=_WRITE_ERRORS,
    tags=["pollution points"],
)
def patrol_pollution_point(
    conn: WriteConnectionDep, actor: ActorDep, code: PointCode, body: PatrolCreate
) -> PatrolPublic:
    """Log a patrol of a pollution point; a serious finding reports an incident.

    The incident starts in ``reported`` at the point, with task type ``task_type_code`` or
    T03 (排污点及污染纠纷巡查); it must be approved by the district (article 10), else 422.
    """
    return _patrol(conn, "pollution", code, body, actor)


@router.get(
    "/pollution-points/{code}/patrols",
    response_model=PatrolsPublic,
    responses=error_responses(404, 422),
    tags=["pollution points"],
)
def read_pollution_point_patrols(
    *,
    request: Request,
    conn: ConnectionDep,
    code: PointCode,
    limit: LimitDep = 100,
    offset: OffsetDep = 0,
) -> PatrolsPublic:
    """List a pollution point's patrol logs, newest first (ID and phone numbers masked)."""
    return _patrols(request, conn, "pollution", code, limit=limit, offset=offset)


@router.post(
    "/hazards/{code}/patrols",
    status_code=201,
    response_model=PatrolPublic,
    responses=_WRITE_ERRORS,
    tags=["hazards"],
)
def patrol_hazard(
    conn: WriteConnectionDep, actor: ActorDep, code: PointCode, body: PatrolCreate
) -> PatrolPublic:
    """Log a patrol of a hazard; a serious finding reports an incident.

    Default task type T04 (环境安全隐患上报); it must be approved, else 422.
    """
    return _patrol(conn, "hazard", code, body, actor)


@router.get(
    "/hazards/{code}/patrols",
    response_model=PatrolsPublic,
    responses=error_responses(404, 422),
    tags=["hazards"],
)
def read_hazard_patrols(
    *,
    request: Request,
    conn: ConnectionDep,
    code: PointCode,
    limit: LimitDep = 100,
    offset: OffsetDep = 0,
) -> PatrolsPublic:
    """List a hazard's patrol logs, newest first (ID and phone numbers masked)."""
    return _patrols(request, conn, "hazard", code, limit=limit, offset=offset)
