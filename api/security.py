"""Authentication and authorisation of requests.

:func:`get_current_user` reads the bearer token (``Authorization: Bearer <token>``; map pages
opened in a browser may use the ``gis_grid_token`` cookie that the login sets, for GET
requests only) and returns the account: 401 for a missing, malformed, forged, expired or
revoked token. :func:`get_authorized_user` then checks the role against the permission table
(:mod:`gis_grid.security.roles`) for the area of the route, found from its OpenAPI tag, and
the access (GET/HEAD read, other methods write): 403 when the cell is empty. A route whose
tag names no area is refused (fail closed).

The session is checked in the database on every request (a logout, a password change or a
disabled account takes effect at once): one statement (:data:`SESSION_USER_SQL`: the session
open, unexpired, its account enabled, and the account's row) on a pooled connection in
autocommit. The tile route (:mod:`api.routes.tiles`) runs the same statement as the first
of its own transaction instead (:func:`open_session_user`), so a tile costs one connection.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.engine import Connection, Engine

from api.errors import STATUS_BY_ERROR
from gis_grid.db.engine import DatabaseError
from gis_grid.security import tokens
from gis_grid.security.accounts import User
from gis_grid.security.crypto import Keys, keys_from_settings
from gis_grid.security.errors import (
    AuthenticationError,
    PermissionDeniedError,
    RateLimitedError,
)
from gis_grid.security.roles import Access, Role, allows

__all__ = [
    "COOKIE_NAME",
    "REVOKED",
    "SESSION_USER_SQL",
    "TAG_AREAS",
    "AuthorizedUserDep",
    "CurrentUserDep",
    "KeysDep",
    "area_of",
    "connect",
    "get_authorized_user",
    "get_current_user",
    "get_keys",
    "open_session_user",
    "token_of",
    "user_from_row",
]

# The error table (api.errors) learns the security errors: 401, 403, 429.
STATUS_BY_ERROR.update(
    {AuthenticationError: 401, PermissionDeniedError: 403, RateLimitedError: 429}
)

#: Cookie holding the token for map pages opened in a browser.
COOKIE_NAME = "gis_grid_token"

#: OpenAPI tag -> area of the permission table. ``auth`` routes need a login only.
TAG_AREAS: dict[str, str | None] = {
    "towns": "geography",
    "villages": "geography",
    "lookup": "geography",
    "layers": "geography",
    "maps": "geography",
    "ogc": "geography",
    "tiles": "geography",
    "grids": "grids",
    "plans": "plans",
    "engine": "engine",
    "members": "members",
    "households": "registries",
    "pollution points": "places",
    "hazards": "places",
    "incidents": "incidents",
    "task types": "task types",
    "exchange": "exchange",
    "privacy": "privacy",
    "auth": None,
}

#: Routes (by name) whose method says "write" but which only compute (a proposal is not
#: stored), unless called with ``apply=true``.
READ_ONLY_POSTS = frozenset({"draw_town_plan", "draw_village_plan"})

_bearer = HTTPBearer(auto_error=False, description="A token from POST /api/v1/auth/login")
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]

#: The account of an open session, in one statement: the session exists for that account,
#: is neither revoked nor expired, and the account is enabled (as
#: :func:`gis_grid.security.tokens.verify_token` checks, which takes two). Parameters
#: ``%(jti)s`` and ``%(user_id)s`` (psycopg's style).
SESSION_USER_SQL = """
SELECT u.id, u.username, u.display_name, u.role, u.member_code, u.disabled, u.locked_until
FROM sessions s JOIN users u ON u.id = s.user_id
WHERE s.jti = %(jti)s AND s.user_id = %(user_id)s AND s.revoked_at IS NULL
  AND s.expires_at > now() AND NOT u.disabled
"""
_SESSION_USER = sa.text(
    SESSION_USER_SQL.replace("%(jti)s", ":jti").replace("%(user_id)s", ":user_id")
)

#: Why an open-looking token is refused (the same words as the library's).
REVOKED = "token revoked (logged out, password changed or account disabled): log in again"


def connect(engine: Engine) -> Connection:
    """Open a connection; 503 (``DatabaseError``) when the database is unreachable."""
    try:
        return engine.connect()
    except sa.exc.OperationalError as exc:
        where = engine.url.render_as_string(hide_password=True)
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        msg = f"database unavailable ({where}): {reason}"
        raise DatabaseError(msg) from exc


def get_keys(request: Request) -> Keys:
    """Return the platform's keys (derived once per app from its settings)."""
    keys: Keys | None = getattr(request.app.state, "keys", None)
    if keys is None:
        keys = keys_from_settings(request.app.state.settings)
        request.app.state.keys = keys
    return keys


KeysDep = Annotated[Keys, Depends(get_keys)]


def token_of(request: Request, credentials: HTTPAuthorizationCredentials | None) -> str:
    """Return the request's token: the bearer header, else the cookie (GET/HEAD only); 401."""
    if credentials is not None and credentials.scheme.lower() == "bearer":
        return credentials.credentials
    cookie = request.cookies.get(COOKIE_NAME)
    if cookie and request.method in {"GET", "HEAD"}:
        return cookie
    msg = "not logged in: send Authorization: Bearer <token> (POST /api/v1/auth/login)"
    raise AuthenticationError(msg)


def user_from_row(row: Sequence[Any]) -> User:
    """Return the account of a :data:`SESSION_USER_SQL` row."""
    return User(
        id=int(row[0]),
        username=row[1],
        display_name=row[2],
        role=Role(row[3]),
        member_code=row[4],
        disabled=bool(row[5]),
        locked_until=row[6],
    )


def open_session_user(conn: Connection, claims: tokens.TokenClaims) -> User:
    """Return the account of an open session (one statement); 401 when it is not open.

    Parameters
    ----------
    conn
        Connection on the platform database (any transaction state).
    claims
        A validly signed, unexpired token's claims (:func:`gis_grid.security.tokens.read_token`).

    Raises
    ------
    AuthenticationError
        The session was revoked (logout, password change), has expired, or the account is
        disabled.
    """
    row = conn.execute(_SESSION_USER, {"jti": claims.jti, "user_id": claims.user_id}).first()
    if row is None:
        raise AuthenticationError(REVOKED)
    return user_from_row(row)


def get_current_user(request: Request, keys: KeysDep, credentials: BearerDep) -> User:
    """Return the logged-in account; 401 without a valid, open session."""
    token = token_of(request, credentials)
    claims = tokens.read_token(token, keys)  # forged / expired: no database round trip
    engine: Engine = request.app.state.engine
    # One statement needs no transaction of its own: autocommit saves BEGIN and COMMIT.
    with connect(engine).execution_options(isolation_level="AUTOCOMMIT") as conn:
        user = open_session_user(conn, claims)
    request.state.user = user
    request.state.jti = claims.jti
    return user


CurrentUserDep = Annotated[User, Depends(get_current_user)]


def area_of(request: Request) -> tuple[str | None, Access]:
    """Return the permission-table area and access of the route serving ``request``."""
    route = request.scope.get("route")
    tags = list(getattr(route, "tags", None) or [])
    path = str(getattr(route, "path", request.url.path))
    access: Access = "read" if request.method in {"GET", "HEAD", "OPTIONS"} else "write"
    applying = request.query_params.get("apply", "").lower() in {"true", "1", "yes", "on"}
    name = getattr(route, "name", None)
    if request.method == "POST" and name in READ_ONLY_POSTS and not applying:
        access = "read"
    for tag in tags:
        if tag in TAG_AREAS:
            return TAG_AREAS[tag], access
    msg = f"route {request.method} {path} has no area in the permission table: refused"
    raise PermissionDeniedError(msg)


def get_authorized_user(request: Request, user: CurrentUserDep) -> User:
    """Return the logged-in account if its role may use this route; 403 otherwise."""
    area, access = area_of(request)
    if area is not None and not allows(user.role, area, access):
        where = f"{request.method} {request.url.path}"
        msg = f"role {user.role.value!r} may not {access} {area} ({where})"
        raise PermissionDeniedError(
            msg, [{"role": user.role.value, "area": area, "access": access}]
        )
    return user


AuthorizedUserDep = Annotated[User, Depends(get_authorized_user)]
