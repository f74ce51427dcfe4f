"""The registries: members, households and residents, personal data masked.

``/api/v1/members``, ``/api/v1/households``, ``/api/v1/residents``. Masking is applied by
:mod:`gis_grid.queries` through :mod:`gis_grid.privacy` for every caller; unmasking will be a
separate, audited act of the security work.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from api.deps import (
    AreaDep,
    ConnectionDep,
    EngineDep,
    HouseholdFilterDep,
    LimitDep,
    OffsetDep,
    PlacesDep,
    audit_refusal,
)
from api.errors import error_responses
from api.responses import feature_response, geojson_doc, list_response, page_response
from api.schemas import (
    HouseholdPublic,
    HouseholdsPublic,
    MemberPublic,
    MembersPublic,
    ResidentPublic,
    ResidentsPublic,
)
from api.security import AuthorizedUserDep
from gis_grid import queries
from gis_grid.db.models import MemberStatus
from gis_grid.errors import NotFoundError

__all__ = ["router"]

router = APIRouter()


@router.get(
    "/members",
    response_model=MembersPublic,
    responses=error_responses(404, 422),
    tags=["members"],
)
def read_members(
    *,
    request: Request,
    conn: ConnectionDep,
    places: PlacesDep,
    status: Annotated[
        MemberStatus | None, Query(description="Step of the selection workflow (article 7)")
    ] = None,
    limit: LimitDep = 100,
    offset: OffsetDep = 0,
) -> MembersPublic:
    """Grid members and candidates by code; phones masked, homes not shown."""
    page = queries.member_page(
        conn,
        **places,
        status=status.value if status else None,
        limit=limit,
        offset=offset,
    )
    return list_response(request, page, MembersPublic, MemberPublic)


@router.get(
    "/members/{code}",
    response_model=MemberPublic,
    responses=error_responses(404),
    tags=["members"],
)
def read_member(
    conn: ConnectionDep,
    code: Annotated[str, Path(max_length=64, examples=["M511703109001001"])],
) -> MemberPublic:
    """One member by code (404 naming the code if unknown); phone masked."""
    return MemberPublic.model_validate(queries.get_member(conn, code))


@router.get(
    "/households",
    response_class=Response,
    responses=geojson_doc(HouseholdsPublic, 404, 422),
    tags=["households"],
)
def read_households(
    *,
    request: Request,
    conn: ConnectionDep,
    area: AreaDep,
    limit: LimitDep = 100,
    offset: OffsetDep = 0,
) -> Response:
    """Households as points by code: place and size only (no address, no residents)."""
    page = queries.household_page(
        conn,
        **area,
        limit=limit,
        offset=offset,
    )
    return page_response(request, page)


@router.get(
    "/households/{code}",
    response_class=Response,
    responses=geojson_doc(HouseholdPublic, 404),
    tags=["households"],
)
def read_household(
    conn: ConnectionDep,
    engine: EngineDep,
    user: AuthorizedUserDep,
    code: Annotated[str, Path(max_length=64, examples=["5117031090010001"])],
) -> Response:
    """One household with its address (door hidden) and residents (masked).

    404 for a code outside a member's grids, as for an unknown one (the attempt is audited).
    """
    try:
        feature = queries.get_household(conn, code)
    except NotFoundError:
        audit_refusal(engine, user, "read_household", f"household {code!r} (not found)")
        raise
    return feature_response(HouseholdPublic.model_validate(feature))


@router.get(
    "/residents",
    response_model=ResidentsPublic,
    responses=error_responses(404, 422),
    tags=["households"],
)
def read_residents(
    *,
    request: Request,
    conn: ConnectionDep,
    household: HouseholdFilterDep,
    places: PlacesDep,
    limit: LimitDep = 100,
    offset: OffsetDep = 0,
) -> ResidentsPublic:
    """List registered residents by id: names, ID numbers, phones masked; ages, not births."""
    page = queries.resident_page(
        conn,
        household=household,
        **places,
        limit=limit,
        offset=offset,
    )
    return list_response(request, page, ResidentsPublic, ResidentPublic)
