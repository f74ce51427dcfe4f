"""Drawing over HTTP: propose a new grid plan for a village or town, and apply it as a version.

``POST /villages/{code}/plans`` and ``POST /towns/{code}/plans`` draw from the database
(:func:`gis_grid.plans.propose_plan`) and answer with the proposal as GeoJSON, writing
nothing; with ``?apply=true`` the proposal is written at once (as the logged-in account) as one
new grid version (:func:`gis_grid.plans.apply_proposal`: old versions kept in history, points
re-assigned). ``POST …/plans/apply`` writes a proposal's features sent back by the client.
``GET /villages/{code}/plans/counts`` says how many grids a load band needs.
"""

from __future__ import annotations

from typing import Annotated, Any

import shapely.geometry
from fastapi import APIRouter, Path, Query

from api.deps import (
    TOWN_CODE_PATTERN,
    ActorDep,
    ConnectionDep,
    VillageCode,
    WriteConnectionDep,
)
from api.errors import error_responses
from api.schemas.plans import (
    AppliedPublic,
    PlanApply,
    PlanCountsPublic,
    PlanCreate,
    PlanFeaturePublic,
    PlanGridProperties,
    PlanPublic,
    PlanSummaryPublic,
    VillagePlanCreate,
)
from gis_grid.plans import (
    PlanParameters,
    TownPlan,
    apply_proposal,
    plan_from_features,
    propose_plan,
    village_counts,
)

__all__ = ["router"]

router = APIRouter(tags=["plans"])

TownCode = Annotated[
    str,
    Path(
        pattern=TOWN_CODE_PATTERN,
        description="9-digit NBS town code",
        examples=["511703109"],
    ),
]
ApplyQuery = Annotated[
    bool,
    Query(
        description="Write the proposal at once as the new grid version, recorded as the "
        "logged-in account; refused (422) if any grid misses the band"
    ),
]

_ERRORS = error_responses(404, 422)


def _params(body: PlanCreate, n_grids: int | None = None) -> PlanParameters:
    return PlanParameters(
        by=body.by,
        target=body.target,
        tolerance=body.tolerance,
        n_grids=n_grids,
        locked=tuple(body.locked),
        natural_lines=body.respect_natural_lines,
        seed=body.seed,
    )


def _applied(applied: Any, source: str) -> AppliedPublic:
    document = applied.to_dict()
    return AppliedPublic(**document["summary"], orphans=document["orphaned_members"], source=source)


def _proposal(scope: str, drawn: TownPlan, params: PlanParameters) -> PlanPublic:
    grids = drawn.plan.grids
    q = drawn.quality.grids
    codes = q["grid_code"].astype(str).tolist()
    compactness = dict(zip(codes, q["polsby_popper"].astype(float), strict=True))
    natural = dict(zip(codes, q["natural_m"].astype(float), strict=True))
    crossings = dict(zip(codes, q["crossings"].astype(int), strict=True))
    features = [
        PlanFeaturePublic(
            type="Feature",
            id=str(row.grid_code),
            geometry=shapely.geometry.mapping(row.geometry),
            properties=PlanGridProperties(
                grid_code=str(row.grid_code),
                village_code=str(row.vill_code),
                seq=int(row.seq),
                households=int(row.households),
                people=int(row.people),
                load=float(row.load),
                target=float(row.target),
                deviation_pct=float(row.dev_pct),
                in_band=bool(row.in_band),
                compactness=compactness[str(row.grid_code)],
                natural_m=natural[str(row.grid_code)],
                crossings=int(crossings[str(row.grid_code)]),
                locked=bool(row.locked),
            ),
        )
        for row in grids.itertuples(index=False)
    ]
    summary = drawn.quality.summary
    return PlanPublic(
        type="FeatureCollection",
        name=f"plan {scope}",
        scope=scope,
        features=features,
        summary=PlanSummaryPublic(
            by=drawn.plan.by,
            target=params.target,
            tolerance=drawn.plan.tolerance,
            n_grids=int(summary["n_grids"]),
            max_dev_pct=float(summary["max_dev_pct"]),
            pp_mean=float(summary["pp_mean"]),
            natural_share=float(summary["natural_share"]),
            crossings=int(summary["crossings"]),
            valid=bool(summary["valid"]),
            codes_ok=bool(summary["codes_ok"]),
            in_band=int(summary["in_band"]),
            seconds=round(drawn.plan.seconds, 3),
        ),
        issues=drawn.plan.issues.astype(object)
        .where(drawn.plan.issues.notna(), None)
        .to_dict("records"),
    )


def _source(actor: str, note: str) -> str:
    return f"drawn: by {actor}; {note}"


def _draw(
    conn: Any,
    params: PlanParameters,
    *,
    village: str | None,
    town: str | None,
    apply: bool,
    actor: str,
) -> PlanPublic:
    scope = village or town or ""
    drawn = propose_plan(conn, params, village_code=village, town_code=town)
    answer = _proposal(scope, drawn, params)
    if not apply:
        return answer
    note = f"via the API, {params.describe()}"
    applied = apply_proposal(
        conn, drawn, actor=actor, village_code=village, town_code=town, note=note
    )
    return answer.model_copy(update={"applied": _applied(applied, _source(actor, note))})


@router.post(
    "/villages/{code}/plans",
    response_model=PlanPublic,
    response_model_exclude_none=False,
    responses=_ERRORS,
)
def draw_village_plan(
    conn: WriteConnectionDep,
    code: VillageCode,
    body: VillagePlanCreate,
    x_actor: ActorDep,
    apply: ApplyQuery = False,
) -> PlanPublic:
    """Draw a proposal for one village from the database (written only with ``apply``).

    Balanced, compact grids that tile the village exactly and follow natural lines.
    Without ``apply`` nothing is written: the answer is the proposal (GeoJSON grids with
    households, people, deviation from the target, compactness) and its quality summary.
    With ``apply=true`` it is written as one new version of the village's
    grids (old versions kept in history, households and other points re-assigned).
    A band the village cannot meet is a 422 whose ``problems`` say why.
    """
    params = _params(body, body.n_grids)
    return _draw(conn, params, village=code, town=None, apply=apply, actor=x_actor)


@router.post("/towns/{code}/plans", response_model=PlanPublic, responses=_ERRORS)
def draw_town_plan(
    conn: WriteConnectionDep,
    code: TownCode,
    body: PlanCreate,
    x_actor: ActorDep,
    apply: ApplyQuery = False,
) -> PlanPublic:
    """Draw a proposal for every village of a town (grids never span two villages).

    As ``POST /villages/{code}/plans``; the grid count of each village follows the
    ``target``. A 422 lists every village that cannot meet the band (``problems``).
    """
    return _draw(conn, _params(body), village=None, town=code, apply=apply, actor=x_actor)


def _apply_features(
    conn: Any, body: PlanApply, *, actor: str, village: str | None, town: str | None
) -> AppliedPublic:
    scope = village or town or ""
    frame = plan_from_features([f.model_dump() for f in body.features], scope=scope)
    note = "via the API, features sent back" + (f": {body.note}" if body.note else "")
    applied = apply_proposal(
        conn, frame, actor=actor, village_code=village, town_code=town, note=note
    )
    return _applied(applied, _source(actor, note))


@router.post(
    "/villages/{code}/plans/apply",
    response_model=AppliedPublic,
    responses=error_responses(404, 422),
)
def apply_village_plan(
    conn: WriteConnectionDep, code: VillageCode, body: PlanApply, actor: ActorDep
) -> AppliedPublic:
    """Write a proposal's grids (features sent back) as the village's new grid version.

    The grids must tile the village (no gap, overlap or overhang) and carry 15-digit codes of
    this village; otherwise 422 naming the feature, and nothing is stored. Old versions stay
    in history; households and other points are re-assigned; members whose grid code
    disappeared are listed (``orphaned_members``).
    """
    return _apply_features(conn, body, actor=actor, village=code, town=None)


@router.post("/towns/{code}/plans/apply", response_model=AppliedPublic, responses=_ERRORS)
def apply_town_plan(
    conn: WriteConnectionDep, code: TownCode, body: PlanApply, actor: ActorDep
) -> AppliedPublic:
    """Write a town's proposal (features sent back) as the new grid version of its villages."""
    return _apply_features(conn, body, actor=actor, village=None, town=code)


@router.get("/villages/{code}/plans/counts", response_model=PlanCountsPublic, responses=_ERRORS)
def read_village_counts(
    conn: ConnectionDep,
    code: VillageCode,
    # At least 1: a grid holds at least one household or person, and a floor near zero made
    # load / low overflow into a 500 (found by fuzzing, tests/test_fuzz_api.py).
    low: Annotated[
        float, Query(ge=1, allow_inf_nan=False, description="Floor: load per grid (>= 1)")
    ],
    high: Annotated[
        float, Query(ge=1, allow_inf_nan=False, description="Ceiling: load per grid (>= low)")
    ],
    by: Annotated[str, Query(pattern="^(households|people)$", description="The load")] = (
        "households"
    ),
) -> PlanCountsPublic:
    """How many grids, and so members (一格一员), the village needs for a load band.

    ``feasible`` is false (with ``detail``) when no whole number of grids puts the village's
    load within ``low``-``high``.
    """
    row = village_counts(
        conn, code, band=(low, high), by="people" if by == "people" else "households"
    )
    return PlanCountsPublic(
        village_code=str(row["vill_code"]),
        by=by,
        low=low,
        high=high,
        load=float(row["load"]),
        n_min=int(row["n_min"]),
        n_max=int(row["n_max"]),
        grids=int(row["grids"]),
        members=int(row["members"]),
        per_grid=float(row["per_grid"]),
        feasible=bool(row["feasible"]),
        detail=str(row["detail"]),
    )
