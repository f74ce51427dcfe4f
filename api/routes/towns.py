"""Towns and their villages: ``/api/v1/towns``."""

from __future__ import annotations

from fastapi import APIRouter

from api import crud
from api.deps import ConnectionDep, TownDep
from api.errors import error_responses
from api.schemas import TownPublic, TownsPublic, VillagePublic, VillagesPublic

__all__ = ["router"]

router = APIRouter(prefix="/towns", tags=["towns"])


@router.get("", response_model=TownsPublic)
def read_towns(conn: ConnectionDep) -> TownsPublic:
    """List the towns with village, grid, household and people counts and area (km²)."""
    towns = crud.list_towns(conn)
    return TownsPublic(data=[TownPublic.model_validate(t) for t in towns], count=len(towns))


@router.get("/{code}", response_model=TownPublic, responses=error_responses(404))
def read_town(town: TownDep) -> TownPublic:
    """One town by its 9-digit code (404 if unknown, 422 if the code is malformed)."""
    return TownPublic.model_validate(town)


@router.get("/{code}/villages", response_model=VillagesPublic, responses=error_responses(404))
def read_town_villages(conn: ConnectionDep, town: TownDep) -> VillagesPublic:
    """List the villages and communities of a town, with their counts and area (km²)."""
    villages = crud.list_villages(conn, town)
    return VillagesPublic(
        data=[VillagePublic.model_validate(v) for v in villages], count=len(villages)
    )
