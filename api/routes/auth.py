"""Logging in and out: ``/api/v1/auth/login``, ``/api/v1/auth/logout``, ``/api/v1/auth/me``.

A login returns a short-lived signed token (``GIS_GRID_TOKEN_MINUTES``, 30 by default) to send
as ``Authorization: Bearer <token>``, and sets it as an HttpOnly, SameSite=Strict cookie for
the map pages a browser opens (the cookie is accepted for GET requests only). Logging out
revokes the token's session at once. After ``GIS_GRID_LOCKOUT_ATTEMPTS`` failed logins in a
row the account is locked for ``GIS_GRID_LOCKOUT_MINUTES`` (429 with ``Retry-After``).
"""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from api.deps import EngineDep, SettingsDep
from api.errors import error_responses
from api.schemas.security import LoginRequest, TokenPublic, UserPublic
from api.security import COOKIE_NAME, CurrentUserDep, KeysDep, connect
from gis_grid.errors import GridError
from gis_grid.security import tokens
from gis_grid.security.accounts import User, authenticate
from gis_grid.security.context import CHINA_TIME, member_grids
from gis_grid.security.errors import RateLimitedError

__all__ = ["router"]

router = APIRouter(prefix="/auth", tags=["auth"])


def rate_limited_response(exc: RateLimitedError) -> JSONResponse:
    """Return a 429 in the service's error format, with ``Retry-After``."""
    return JSONResponse(
        {"detail": str(exc), "error": type(exc).__name__},
        status_code=429,
        headers={"Retry-After": str(exc.retry_after)},
    )


def _public(user: User, grids: tuple[str, ...] = ()) -> UserPublic:
    return UserPublic(
        username=user.username,
        display_name=user.display_name,
        role=user.role.value,
        member_code=user.member_code,
        grids=list(grids),
    )


@router.post(
    "/login",
    response_model=TokenPublic,
    responses=error_responses(401, 422, 429),
)
def login(
    body: LoginRequest, response: Response, engine: EngineDep, settings: SettingsDep, keys: KeysDep
) -> TokenPublic | JSONResponse:
    """Log in with a user name and password; returns a bearer token.

    401 for a wrong user name or password (which of the two is not told); 429 with
    `Retry-After` while the account is locked after repeated failures.
    """
    conn = connect(engine)
    with conn:
        transaction = conn.begin()
        try:
            user = authenticate(
                conn,
                body.username,
                body.password,
                max_attempts=settings.lockout_attempts,
                lock_minutes=settings.lockout_minutes,
            )
            issued = tokens.issue_token(conn, user, keys, minutes=settings.token_minutes)
        except GridError as exc:
            transaction.commit()  # a failed login counts towards the lockout
            if isinstance(exc, RateLimitedError):
                return rate_limited_response(exc)
            raise
        transaction.commit()
    seconds = max(0, int((issued.expires_at - dt.datetime.now(dt.UTC)).total_seconds()))
    response.set_cookie(
        COOKIE_NAME,
        issued.token,
        max_age=seconds,
        httponly=True,
        samesite="strict",
        path="/",
    )
    return TokenPublic(
        access_token=issued.token,
        expires_at=issued.expires_at,
        expires_in=seconds,
        user=_public(user),
    )


@router.post("/logout", status_code=204, responses=error_responses(401))
def logout(request: Request, user: CurrentUserDep, engine: EngineDep) -> Response:
    """Log out: the token's session is revoked at once (the token stops working)."""
    del user
    conn = connect(engine)
    with conn, conn.begin():
        tokens.revoke(conn, request.state.jti)
    response = Response(status_code=204)
    response.delete_cookie(COOKIE_NAME, path="/")
    return response


@router.get("/me", response_model=UserPublic, responses=error_responses(401))
def me(user: CurrentUserDep, engine: EngineDep) -> UserPublic:
    """Return the logged-in account, and for a member the grids visible today."""
    grids: tuple[str, ...] = ()
    if user.member_code is not None:
        conn = connect(engine)
        with conn, conn.begin():
            grids = member_grids(conn, user.member_code, dt.datetime.now(CHINA_TIME).date())
    return _public(user, grids)
