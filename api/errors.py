"""One table from library exceptions to HTTP answers.

Routes and dependencies raise :class:`gis_grid.errors.GridError` subclasses (never
``HTTPException``); the handler installed here turns them into ``{"detail", "error"}`` JSON
with the status from :data:`STATUS_BY_ERROR`, chosen by the most specific class in the
exception's MRO. A later security layer adds ``PermissionDenied → 403`` to the same table.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from api.schemas import ErrorPublic, UnprocessablePublic
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
from gis_grid.privacy import mask_id_number, mask_name, mask_phone

__all__ = [
    "RETRY_AFTER_S",
    "STATUS_BY_ERROR",
    "error_responses",
    "install_error_handlers",
    "safe_validation_errors",
    "status_for",
]

logger = logging.getLogger(__name__)

#: Seconds a client is asked to wait (``Retry-After``) when the database is unavailable.
RETRY_AFTER_S = 30

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
    return JSONResponse(body, status_code=status, headers=_headers_for(status, exc))


def _headers_for(status: int, exc: GridError) -> dict[str, str] | None:
    """Headers an error status asks for: the challenge of a 401, the wait of a 429/503."""
    if status == 401:  # RFC 6750: how to authenticate (a token from POST /api/v1/auth/login)
        return {"WWW-Authenticate": 'Bearer realm="gis-grid"'}
    retry_after = getattr(exc, "retry_after", None)
    if status == 429 and retry_after is not None:
        return {"Retry-After": str(int(retry_after))}
    if status == 503:
        return {"Retry-After": str(RETRY_AFTER_S)}
    return None


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


#: Personal fields whose values a 422 must not echo in clear (article 9: masked everywhere).
_MASKS: dict[str, Callable[[str], str]] = {
    "id_number": mask_id_number,
    "phone": mask_phone,
    "name": mask_name,
}


def _database_of(request: Request) -> str:
    engine = getattr(request.app.state, "engine", None)
    if engine is None:
        return "the database"
    return str(engine.url.render_as_string(hide_password=True))


async def _unavailable_handler(request: Request, exc: Exception) -> JSONResponse:
    # The connection broke while a request was using it (the server stopped or restarted,
    # the network dropped): 503 with Retry-After, never a 500. The transaction was open, so
    # PostgreSQL has discarded it: nothing partial was stored. The pool has invalidated the
    # connection, and pool_pre_ping (gis_grid.db.make_engine) replaces the others, so the
    # first request after the database is back succeeds without restarting the service.
    assert isinstance(exc, sa.exc.DBAPIError)
    orig = exc.orig
    reason = (str(orig).strip().splitlines() or [type(orig).__name__])[0] if orig else str(exc)
    msg = (
        f"database unavailable ({_database_of(request)}): {reason}. "
        "Nothing was stored by this request; retry in a moment"
    )
    logger.warning("%s %s: %s", request.method, request.url.path, msg)
    return JSONResponse(
        {"detail": msg, "error": "DatabaseError"},
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


def _json_safe(value: object, key: str | None = None) -> object:
    """``value`` with personal fields masked and NaN/±Infinity as text, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str) and key in _MASKS:
        return _MASKS[key](value)
    if isinstance(value, dict):
        return {k: _json_safe(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v, key) for v in value]
    return value


def safe_validation_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """FastAPI validation errors made safe to answer: JSON-encodable, personal data masked.

    FastAPI echoes the rejected ``input``: a NaN in it cannot be written as JSON (the 422
    became a 500), and an ID number or phone in it would leave the server unmasked.
    """
    out = []
    for error in jsonable_encoder(list(errors)):
        item = dict(error)
        loc = [str(part) for part in item.get("loc", ())]
        field = next((part for part in reversed(loc) if part in _MASKS), None)
        if "input" in item:
            item["input"] = _json_safe(item["input"], field)
        if "ctx" in item:
            item["ctx"] = _json_safe(item["ctx"])
        out.append(item)
    return out


async def _validation_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return JSONResponse({"detail": safe_validation_errors(exc.errors())}, status_code=422)


def install_error_handlers(app: FastAPI) -> None:
    """Install the error handlers.

    Every :class:`GridError` goes through the table; the database's refusals (integrity and
    data errors) become 409/422.
    """
    app.add_exception_handler(GridError, _grid_error_handler)
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(sa.exc.IntegrityError, _refused_handler)
    app.add_exception_handler(sa.exc.DataError, _refused_handler)
    # A lost connection (OperationalError: server gone, shut down, restarting; InterfaceError:
    # the connection was already closed) is the database being unavailable: 503.
    app.add_exception_handler(sa.exc.OperationalError, _unavailable_handler)
    app.add_exception_handler(sa.exc.InterfaceError, _unavailable_handler)


def error_responses(*statuses: int) -> dict[int | str, dict[str, object]]:
    """OpenAPI ``responses=`` entries documenting error bodies for the given statuses.

    A 422 is either FastAPI's list of field errors or a library error's message, so it is
    documented as :class:`~api.schemas.UnprocessablePublic`, which admits both. Errors are
    always JSON, also on routes whose answer is HTML or a file: FastAPI documents a model
    under the route's own media type, so ``application/json`` is named explicitly too.
    """
    out: dict[int | str, dict[str, object]] = {}
    for status in statuses:
        model = UnprocessablePublic if status == 422 else ErrorPublic
        ref = {"$ref": f"#/components/schemas/{model.__name__}"}
        out[status] = {"model": model, "content": {"application/json": {"schema": ref}}}
    return out
