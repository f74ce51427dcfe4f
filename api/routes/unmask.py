"""Unmasking one resident's personal data: a separate, audited, rate-limited act.

``POST /api/v1/residents/{id}/unmask`` with the fields wanted and a reason (at least 5
characters). Row-level security decides whether the caller sees the resident at all (a
member: only their grids'); every request is written to the append-only audit log, granted
or refused, in a transaction of its own, so that refusals are logged too. A user may unmask
``GIS_GRID_UNMASK_PER_HOUR`` records an hour (429 with ``Retry-After`` beyond).
"""

from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse
from sqlalchemy.engine import Connection

from api.deps import EngineDep, SettingsDep
from api.errors import error_responses
from api.routes.auth import rate_limited_response
from api.schemas.security import UnmaskedPublic, UnmaskRequest
from api.security import AuthorizedUserDep, KeysDep, connect
from gis_grid.errors import NotFoundError
from gis_grid.security import audit
from gis_grid.security.context import set_context
from gis_grid.security.crypto import FIELDS, decrypt
from gis_grid.security.errors import RateLimitedError

__all__ = ["router"]

router = APIRouter(tags=["privacy"])

_WINDOW = 3600

_RESIDENT_SQL = sa.text(
    "SELECT r.id, r.name, r.id_number_enc, r.phone_enc, h.code AS household_code, h.grid_code "
    "FROM residents r JOIN households h ON h.id = r.household_id WHERE r.id = :id"
)


@router.post(
    "/residents/{resident_id}/unmask",
    response_model=UnmaskedPublic,
    responses=error_responses(401, 403, 404, 422, 429),
)
def unmask_resident(
    resident_id: Annotated[int, Path(ge=1, le=2_147_483_647, description="Resident id")],
    body: UnmaskRequest,
    user: AuthorizedUserDep,
    engine: EngineDep,
    *,
    settings: SettingsDep,
    keys: KeysDep,
) -> UnmaskedPublic | JSONResponse:
    """Show one resident's name, ID number or phone in clear; the access is audited.

    The reason is kept in the audit log with who asked, when, and which fields. 404 when
    the resident does not exist or is outside the caller's grids (both audited as denied);
    429 beyond the hourly limit.
    """
    fields = list(dict.fromkeys(body.fields))
    reason = body.reason.strip()

    def log(conn: Connection, outcome: audit.Outcome, detail: str | None = None) -> int:
        return audit.record(
            conn,
            username=user.username,
            role=user.role.value,
            action="unmask",
            resident_id=resident_id,
            fields=fields,
            reason=reason,
            outcome=outcome,
            detail=detail,
        )

    row = None
    audit_id = 0
    limited = False
    # One transaction of its own, committed before answering: refusals are logged too.
    with connect(engine) as conn, conn.begin():
        set_context(conn, user)
        if audit.count_recent(conn, user.username, "unmask", seconds=_WINDOW) >= (
            settings.unmask_per_hour
        ):
            limited = True
            log(conn, "rate_limited", "hourly limit")
        else:
            row = conn.execute(_RESIDENT_SQL, {"id": resident_id}).mappings().first()
            if row is None:
                log(conn, "denied", "not found or outside the caller's grids")
            else:
                audit_id = log(conn, "granted")
    if limited:
        msg = (
            f"unmask limit reached: {settings.unmask_per_hour} requests an hour per user; "
            "the refusal is in the audit log"
        )
        return rate_limited_response(RateLimitedError(msg, retry_after=_WINDOW))
    if row is None:
        msg = (
            f"resident {resident_id} not found (or not in your grids); the request is in the "
            "audit log"
        )
        raise NotFoundError(msg, [{"field": "resident_id", "value": resident_id}])
    clear: dict[str, str | None] = {}
    if "name" in fields:
        clear["name"] = row["name"]
    for field in FIELDS:
        if field in fields:
            blob = row[f"{field}_enc"]
            clear[field] = None if blob is None else decrypt(blob, keys, field)
    return UnmaskedPublic(
        id=int(row["id"]),
        household_code=row["household_code"],
        grid_code=row["grid_code"],
        fields=fields,
        audit_id=audit_id,
        **clear,
    )
