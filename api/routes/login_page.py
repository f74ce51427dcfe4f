"""The browser's way in and out: ``GET /login`` (the login page) and ``POST /logout``.

The login page posts to ``POST /api/v1/auth/login`` (:mod:`api.routes.auth`, unchanged) and
then goes to ``next``: a path on this site only (:func:`api.pages_auth.safe_next`), else 422
naming ``next``. The map pages send a browser without a valid login here
(:class:`api.pages_auth.PageRoute`). The page runs no inline script and is served with a
strict Content-Security-Policy.

``POST /logout`` ends the browser's session: it revokes the session of the login cookie and
of a bearer token if one is sent (each only if genuinely signed by the platform), and deletes
the cookie; 204. The cookie is HttpOnly, so the pages cannot drop it themselves, and it is
SameSite=Strict, so another site cannot log a user out through this route.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from api.deps import EngineDep, query_error
from api.pages_auth import safe_next
from api.security import COOKIE_NAME, KeysDep, connect
from gis_grid.security import tokens
from gis_grid.security.errors import AuthenticationError
from maps.login import build_login_page

__all__ = ["CONTENT_SECURITY_POLICY", "router"]

router = APIRouter(tags=["auth"])

#: The login page loads only its own scripts, styles and icon, and posts only here.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


@router.get("/login", response_class=HTMLResponse, include_in_schema=False)
def login_page(
    request: Request,
    next_url: Annotated[
        str | None,
        Query(alias="next", max_length=2000, description="Path on this site to go to after"),
    ] = None,
    lang: Annotated[Literal["zh", "en"], Query(description="zh (default) or en")] = "zh",
    logged_out: Annotated[bool, Query(description="Say that the user logged out")] = False,
) -> HTMLResponse:
    """Show the login form; after a login the browser goes to ``next`` (default ``/map``)."""
    try:
        target = safe_next(next_url)
    except ValueError as exc:
        query_error("next", str(exc), next_url)
    page = build_login_page(
        next_url=target,
        lang=lang,
        static_url=str(request.app.url_path_for("static", path="/")).rstrip("/"),
        api_url=str(request.app.url_path_for("login")).removesuffix("/auth/login"),
        logged_out=logged_out,
    )
    return HTMLResponse(
        page,
        headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY, "Cache-Control": "no-store"},
    )


@router.post("/logout", status_code=204, include_in_schema=False)
def logout_page(request: Request, engine: EngineDep, keys: KeysDep) -> Response:
    """Revoke the browser's session (cookie and bearer token) and delete the cookie; 204."""
    presented = {request.cookies.get(COOKIE_NAME, "")}
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        presented.add(credentials.strip())
    jtis = set()
    for token in presented - {""}:
        try:
            jtis.add(tokens.read_token(token, keys).jti)  # only a token the platform signed
        except AuthenticationError:
            continue  # forged or expired: nothing to revoke
    if jtis:
        conn = connect(engine)
        with conn, conn.begin():
            for jti in jtis:
                tokens.revoke(conn, jti)
    response = Response(status_code=204, headers={"Cache-Control": "no-store"})
    response.delete_cookie(COOKIE_NAME, path="/")
    return response
