"""One table from library exceptions to HTTP answers.

Routes and dependencies raise :class:`gis_grid.errors.GridError` subclasses (never
``HTTPException``); the handler installed here turns them into ``{"detail", "error"}`` JSON
with the status from :data:`STATUS_BY_ERROR`, chosen by the most specific class in the
exception's MRO. A later security layer adds ``PermissionDenied → 403`` to the same table.
"""

from __future__ import annotations

import logging
import math

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from api.schemas import ErrorPublic
from gis_grid.db.engine import DatabaseError
from gis_grid.errors import (
    ConflictError,
    CoordinateError,
    CRSError,
    DataFileError,
    DuplicateCodeError,
    EncodingError,
    GeometryError,
    GridError,
    NotFoundError,
    PreconditionFailedError,
    PreconditionRequiredError,
    RuleError,
)

__all__ = ["STATUS_BY_ERROR", "error_responses", "install_error_handlers", "status_for"]

logger = logging.getLogger(__name__)

#: HTTP status of each library error; subclasses inherit their nearest listed ancestor's.
STATUS_BY_ERROR: dict[type[GridError], int] = {
    NotFoundError: 404,
    DuplicateCodeError: 409,
    ConflictError: 409,
    PreconditionFailedError: 412,
    PreconditionRequiredError: 428,
    RuleError: 422,
    CoordinateError: 422,
    CRSError: 422,
    GeometryError: 422,
    DataFileError: 422,
    EncodingError: 422,
    DatabaseError: 503,
    GridError: 400,
}


def status_for(exc: GridError) -> int:
    """HTTP status for a library error (nearest class in :data:`STATUS_BY_ERROR`).

    Examples
    --------
    >>> status_for(NotFoundError("town '1' not found"))
    404
    """
    for cls in type(exc).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 500


async def _grid_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, GridError)
    status = status_for(exc)
    if status >= 500:
        logger.warning("%s %s: %s", request.method, request.url.path, exc)
    body: dict[str, object] = {"detail": str(exc), "error": type(exc).__name__}
    if exc.problems:
        body["problems"] = exc.problems
    return JSONResponse(
        body,
        status_code=status,
        headers={"Retry-After": "30"} if status == 503 else None,
    )


async def _refused_handler(request: Request, exc: Exception) -> JSONResponse:
    # Safety net: routes check their input first, but a constraint the checks missed (a race
    # with another writer, a rule only the database knows) is the caller's 409/422, not a 500.
    # The transaction has been rolled back: nothing was stored.
    assert isinstance(exc, sa.exc.DBAPIError)
    orig = exc.orig
    diag = getattr(orig, "diag", None)
    primary = getattr(diag, "message_primary", None) or str(orig).strip().splitlines()[0]
    constraint = getattr(diag, "constraint_name", None)
    detail = getattr(diag, "message_detail", None)
    msg = f"the database refused the change: {primary}"
    if constraint:
        msg += f" (constraint {constraint})"
    if detail:
        msg += f". {detail}"
    status = 409 if isinstance(exc, sa.exc.IntegrityError) else 422
    logger.info("%s %s refused: %s", request.method, request.url.path, msg)
    return JSONResponse(
        {"detail": msg + ". Nothing was changed.", "error": type(exc).__name__},
        status_code=status,
    )


def _json_safe(value: object) -> object:
    """Replace what JSON cannot carry (NaN, ±Infinity) by its text, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    return value


async def _validation_handler(request: Request, exc: Exception) -> JSONResponse:
    # FastAPI's own handler echoes the rejected input; a NaN or Infinity in it cannot be
    # written as JSON, which turned a 422 into a 500. Same body, made JSON-safe.
    assert isinstance(exc, RequestValidationError)
    errors = _json_safe(jsonable_encoder(exc.errors()))
    return JSONResponse({"detail": errors}, status_code=422)


def install_error_handlers(app: FastAPI) -> None:
    """Install the error handlers.

    Every :class:`GridError` goes through the table; the database's refusals (integrity and
    data errors) become 409/422.
    """
    app.add_exception_handler(GridError, _grid_error_handler)
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(sa.exc.IntegrityError, _refused_handler)
    app.add_exception_handler(sa.exc.DataError, _refused_handler)


def error_responses(*statuses: int) -> dict[int | str, dict[str, object]]:
    """OpenAPI ``responses=`` entries documenting error bodies for the given statuses."""
    return {status: {"model": ErrorPublic} for status in statuses}
