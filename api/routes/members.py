"""Member registry writes: eligibility (art. 6), selection (art. 7, 11), AB posts, absences, cover.

The routes are thin: :mod:`gis_grid.members` checks and writes, in the request's transaction
(``WriteConnectionDep``), so a refused request stores nothing. Reading a member stays in
:mod:`api.routes.registries` (``GET /members``, ``GET /members/{code}``).

- ``POST /members``, ``PATCH /members/{code}``: register or correct a candidate; the answer
  lists the article-6 ``problems`` (an ineligible candidate is registered, never appointed).
- ``POST /members/{code}/transitions``, ``GET /members/{code}/history``: the workflow
  applied → recommended → examined → publicised → appointed → dismissed.
- ``GET /grids/{code}/candidates``: a grid's candidates, ranked.
- ``POST|GET /towns/{code}/ab-posts``, ``PUT /grids/{code}/ab-post``: the stored AB posts.
- ``POST|GET /members/{code}/absences``, ``DELETE /absences/{id}``; ``GET /towns/{code}/cover``.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Response

from api.deps import (
    ActorDep,
    ConnectionDep,
    GridCode,
    TownDep,
    VillageFilterDep,
    WriteConnectionDep,
    query_error,
)
from api.errors import error_responses
from api.schemas.members import (
    ABPostPublic,
    ABPostsPublic,
    ABPostUpdate,
    AbsenceCreate,
    AbsencePublic,
    AbsencesPublic,
    CandidatePublic,
    CandidatesPublic,
    CoverAssignmentPublic,
    CoverPublic,
    MemberCreate,
    MemberDetailPublic,
    MemberUpdate,
    StatusChangePublic,
    StatusChangesPublic,
    TransitionCreate,
    TransitionPublic,
    UncoveredGridPublic,
    UncoveredPublic,
)
from gis_grid import members
from gis_grid.members import StoredPairing, today_in_china

__all__ = ["router"]

router = APIRouter()

MemberCodePath = Annotated[
    str,
    Path(
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="Member code",
        examples=["M511703109001001"],
    ),
]
TownCodePath = Annotated[
    str,
    Path(pattern=r"^[0-9]{9}$", description="9-digit NBS town code", examples=["511703109"]),
]


def _fields(body: MemberCreate | MemberUpdate) -> dict[str, Any]:
    """Return the fields the client gave (a PATCH leaves the others alone)."""
    given = body.model_dump(exclude_unset=True)
    if given.get("gender") is not None:
        given["gender"] = str(given["gender"])
    return given


@router.post(
    "/members",
    status_code=201,
    response_model=MemberDetailPublic,
    responses=error_responses(404, 409, 422),
    tags=["members"],
)
def create_member(
    conn: WriteConnectionDep, actor: ActorDep, body: MemberCreate
) -> MemberDetailPublic:
    """Register a candidate (status ``applied``, article 7: 个人申请).

    Checked: code not taken (409), village exists and the grid is a current grid of that
    village (404/422 naming the field), phone format, a plausible birth date, the home
    in or near the town (datum converted). The answer's ``problems`` list the article-6
    conditions the candidate does not meet (yet): an ineligible candidate is registered,
    but appointing them is refused.
    """
    detail = members.create_member(conn, _fields(body), actor=actor)
    return MemberDetailPublic.model_validate(detail)


@router.patch(
    "/members/{code}",
    response_model=MemberDetailPublic,
    responses=error_responses(404, 409, 422),
    tags=["members"],
)
def update_member(
    conn: WriteConnectionDep,
    actor: ActorDep,
    code: MemberCodePath,
    body: MemberUpdate,
) -> MemberDetailPublic:
    """Correct a member's registry fields (the status changes only by transitions).

    Record the vetting (审查) here: ``criminal_record``, ``relative_criminal_record``,
    ``organised_petitions``, ``cult_member`` true/false (null = not yet vetted). An
    appointed member cannot be moved to another grid (409: dismiss and appoint instead).
    """
    detail = members.update_member(conn, code, _fields(body))
    return MemberDetailPublic.model_validate(detail)


@router.post(
    "/members/{code}/transitions",
    response_model=TransitionPublic,
    responses=error_responses(404, 409, 422),
    tags=["members"],
)
def transition_member(
    conn: WriteConnectionDep, actor: ActorDep, code: MemberCodePath, body: TransitionCreate
) -> TransitionPublic:
    """Move a member one step: applied → recommended → examined → publicised → appointed.

    ``dismissed`` (with a ``reason``) withdraws or rejects a candidate at any step, or
    dismisses an appointed member (article 11), optionally appointing a publicised
    ``replacement`` in the same step. A step not allowed from the current status is a 409
    naming the allowed next steps. ``examined`` needs the four vetting flags recorded (422).
    ``appointed`` checks article 6 on the date ``on`` (422 listing every failed rule), that
    the grid is current, and that it has no other appointed member (409 naming them, unless
    ``replaces`` names them). Each step is recorded with the logged-in account and the note.
    """
    result = members.transition_member(
        conn,
        code,
        body.to,
        actor=actor,
        note=body.note,
        reason=body.reason,
        replacement=body.replacement,
        replaces=body.replaces,
        on=body.on,
    )
    return TransitionPublic.model_validate(result)


@router.get(
    "/members/{code}/history",
    response_model=StatusChangesPublic,
    responses=error_responses(404, 422),
    tags=["members"],
)
def read_member_history(conn: ConnectionDep, code: MemberCodePath) -> StatusChangesPublic:
    """List a member's workflow steps, oldest first: who, when, from and to, note."""
    changes = members.member_history(conn, code)
    return StatusChangesPublic(
        code=code,
        data=[StatusChangePublic.model_validate(c) for c in changes],
        count=len(changes),
    )


@router.get(
    "/grids/{code}/candidates",
    response_model=CandidatesPublic,
    responses=error_responses(404, 422),
    tags=["members"],
)
def read_grid_candidates(
    conn: ConnectionDep,
    code: GridCode,
    on: Annotated[
        dt.date | None, Query(description="Day ages are checked on; default today (China)")
    ] = None,
) -> CandidatesPublic:
    """Rank the candidates who applied for a grid (not yet appointed or dismissed).

    Eligible first (no article-6 failure; unvetted flags are only warnings here), then by
    preference score (party member 3, veteran 2, unemployed graduate 2), progress in the
    selection, education level, youth.
    """
    day = on or today_in_china()
    ranked = members.grid_candidates(conn, code, on=day)
    return CandidatesPublic(
        grid_code=code,
        on=day,
        data=[
            CandidatePublic(
                rank=r.rank,
                score=r.score,
                eligible=r.eligible,
                member=MemberDetailPublic.model_validate(r.member),
            )
            for r in ranked
        ],
        count=len(ranked),
    )


# --- AB posts -------------------------------------------------------------------------------


def _pairing(pairing: StoredPairing) -> ABPostsPublic:
    return ABPostsPublic(
        town_code=pairing.town_code,
        stored=pairing.stored and bool(pairing.posts),
        closed=pairing.closed,
        data=[ABPostPublic.model_validate(p) for p in pairing.posts],
        count=len(pairing.posts),
        uncovered=[UncoveredGridPublic(grid_code=g, reason=r) for g, r in pairing.uncovered],
    )


@router.post(
    "/towns/{code}/ab-posts",
    response_model=ABPostsPublic,
    responses=error_responses(404, 422),
    tags=["engine"],
)
def store_ab_posts(
    conn: WriteConnectionDep,
    actor: ActorDep,
    code: TownCodePath,
    dry_run: Annotated[bool, Query(description="Preview only: nothing is stored")] = False,
) -> ABPostsPublic:
    """Compute the town's AB-post pairing (AB岗, article 11) and store it as the current one.

    The pairing is the command line's ``gis-grid ab-posts``: adjacent grids (rivers as
    barriers) paired by a maximum matching weighted by the shared border, the members'
    homes and the households' load; grids left over join a ring. The previous pairing is
    closed (kept as history). ``dry_run=true`` returns it without storing.
    """
    plan = members.compute_ab_posts(conn, code)
    return _pairing(members.store_ab_posts(conn, code, plan, actor=actor, dry_run=dry_run))


@router.get(
    "/towns/{code}/ab-posts",
    response_model=ABPostsPublic,
    responses=error_responses(404, 422),
    tags=["engine"],
)
def read_ab_posts(conn: ConnectionDep, town: TownDep, village: VillageFilterDep) -> ABPostsPublic:
    """List the town's stored AB posts: each grid, the grid covering it, their members.

    Empty (``stored: false``) until ``POST`` stores a pairing. ``stale`` marks a pair whose
    grid was redrawn since.
    """
    if village is not None and not village.startswith(town.code):
        query_error("village", f"village {village} is not in town {town.code}", village)
    return _pairing(members.read_ab_posts(conn, town.code, village=village))


@router.put(
    "/grids/{code}/ab-post",
    response_model=ABPostPublic,
    responses=error_responses(404, 422),
    tags=["engine"],
)
def set_ab_post(
    conn: WriteConnectionDep, actor: ActorDep, code: GridCode, body: ABPostUpdate
) -> ABPostPublic:
    """Set by hand which grid's member covers this grid (replaces its current AB post).

    The cover grid must be a current grid of the same town sharing a border with this one,
    or the ``reason`` must say why not (stored with link ``manual``).
    """
    post = members.set_ab_post(conn, code, body.cover_grid_code, actor=actor, reason=body.reason)
    return ABPostPublic.model_validate(post)


# --- absences and the day's cover -------------------------------------------------------------


@router.post(
    "/members/{code}/absences",
    status_code=201,
    response_model=AbsencePublic,
    responses=error_responses(404, 409, 422),
    tags=["members"],
)
def create_absence(
    conn: WriteConnectionDep,
    actor: ActorDep,
    code: MemberCodePath,
    body: Annotated[AbsenceCreate, Body()],
) -> AbsencePublic:
    """Record an appointed member's absence (illness, leave): their grid needs cover.

    422 if ``ends_on`` is before ``starts_on``; 409 if the member is not appointed or is
    already absent on one of the days (the overlapping absence is named).
    """
    record = members.add_absence(
        conn, code, body.starts_on, body.ends_on, reason=body.reason, actor=actor
    )
    return AbsencePublic.model_validate(record)


@router.get(
    "/members/{code}/absences",
    response_model=AbsencesPublic,
    responses=error_responses(404, 422),
    tags=["members"],
)
def read_absences(conn: ConnectionDep, code: MemberCodePath) -> AbsencesPublic:
    """List a member's absences, earliest first."""
    records = members.list_absences(conn, code)
    return AbsencesPublic(
        data=[AbsencePublic.model_validate(r) for r in records], count=len(records)
    )


@router.delete(
    "/absences/{absence_id}",
    status_code=204,
    response_class=Response,
    responses=error_responses(404, 422),
    tags=["members"],
)
def delete_absence(
    conn: WriteConnectionDep,
    actor: ActorDep,
    absence_id: Annotated[int, Path(ge=1, le=2_147_483_647, description="Absence id")],
) -> Response:
    """Delete an absence (404 naming the id if there is none)."""
    members.delete_absence(conn, absence_id)
    return Response(status_code=204)


@router.get(
    "/towns/{code}/cover",
    response_model=CoverPublic,
    responses=error_responses(404, 422),
    tags=["engine"],
)
def read_cover(
    conn: ConnectionDep,
    town: TownDep,
    village: VillageFilterDep,
    date: Annotated[
        dt.date | None, Query(description="The day (YYYY-MM-DD); default today (China time)")
    ] = None,
    max_extra: Annotated[
        int, Query(ge=1, le=5, description="Most grids a member covers besides their own")
    ] = 1,
) -> CoverPublic:
    """Who covers whom on a day (应急替补, article 11).

    For each grid whose appointed member is absent that day: the stored AB partner if
    present and free, else another member of the pair or ring, of an adjacent grid, or of
    the second ring (``rule``); grids nobody can cover are listed with the reason.
    """
    if village is not None and not village.startswith(town.code):
        query_error("village", f"village {village} is not in town {town.code}", village)
    day = date or today_in_china()
    cover = members.cover_on(conn, town.code, day, village=village, max_extra=max_extra)
    return CoverPublic(
        town_code=cover.town_code,
        day=cover.day,
        pairing=cover.pairing,
        data=[CoverAssignmentPublic.model_validate(a) for a in cover.assignments],
        count=len(cover.assignments),
        uncovered=[UncoveredPublic.model_validate(u) for u in cover.uncovered],
    )
