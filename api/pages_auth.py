"""Logins for the HTML pages: a browser without a valid login is sent to ``/login``.

The map pages are routes like any other: :func:`api.security.get_authorized_user` decides,
and its refusals are the API's JSON 401/403. A person opening a page in a browser should
instead land on the login page and come back afterwards. :class:`PageRoute` (the route class
of the page routers) does exactly that for requests that ask for HTML (``Accept:
text/html``, as a browser's navigation does) with GET or HEAD:

- not logged in (401) → ``303 See Other`` to ``/login?next=<the page>``;
- logged in but refused (403) → a small HTML page saying why, with a link to log in as
  someone else.

Everything else (scripts, ``curl``, the API) keeps the JSON answers. :func:`safe_next`
checks the ``next`` a login returns to: only a path on this site is accepted, never
``//host`` or an absolute URL, so the login page cannot be used to send someone elsewhere.

:func:`visible_grids` reads the grids row-level security was given for this request
(:func:`gis_grid.security.context.set_context`), so pages can draw only those for a member.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import quote, urlsplit

import geopandas as gpd
import sqlalchemy as sa
from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from sqlalchemy.engine import Connection

from gis_grid.security.errors import AuthenticationError, PermissionDeniedError

__all__ = [
    "DEFAULT_NEXT",
    "LOGIN_PATH",
    "PageRoute",
    "login_url",
    "only_grids",
    "safe_next",
    "visible_grids",
    "wants_html",
]

#: The login page.
LOGIN_PATH = "/login"
#: Where a login without ``next`` goes.
DEFAULT_NEXT = "/map"
_MAX_NEXT = 2000
# A path on this site: one "/" then no second "/" or "\" (browsers read "/\host" as
# "//host"), and no control characters or spaces anywhere.
_PATH = re.compile(r"/(?![/\\])[^\s\x00-\x1f\x7f\\]*")


def wants_html(request: Request) -> bool:
    """Whether the request is a browser asking for a page (GET/HEAD accepting text/html)."""
    accept = request.headers.get("accept", "")
    return request.method in {"GET", "HEAD"} and "text/html" in accept.lower()


def safe_next(value: str | None) -> str:
    """Check where a login may return to: a path on this site, else :class:`ValueError`.

    Parameters
    ----------
    value
        The ``next`` parameter; ``None`` or empty means :data:`DEFAULT_NEXT`.

    Returns
    -------
    str
        The path (with its query), unchanged.

    Raises
    ------
    ValueError
        For ``//host``, a backslash, absolute URLs (``https://...``, ``javascript:...``),
        paths without a leading ``/``, spaces or control characters, the login page itself,
        or over 2000 characters; the message says what is accepted.

    Examples
    --------
    >>> safe_next("/map/incidents?town=511703109")
    '/map/incidents?town=511703109'
    >>> safe_next("//evil.example")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: next: '//evil.example' is not a path on this site; ...
    """
    if not value:
        return DEFAULT_NEXT
    parts = urlsplit(value)
    if (
        len(value) > _MAX_NEXT
        or parts.scheme
        or parts.netloc
        or not _PATH.fullmatch(value)
        or value.startswith(LOGIN_PATH)
    ):
        msg = (
            f"next: {value[:80]!r} is not a path on this site; give one starting with a "
            f"single '/', e.g. {DEFAULT_NEXT}"
        )
        raise ValueError(msg)
    return value


def login_url(request: Request) -> str:
    """Return ``/login?next=...`` for the page of ``request`` (path and query kept)."""
    target = request.url.path
    if request.url.query:
        target = f"{target}?{request.url.query}"
    try:
        target = safe_next(target)
    except ValueError:
        target = DEFAULT_NEXT
    return f"{LOGIN_PATH}?next={quote(target, safe='')}"


def _refusal_page(request: Request, reason: str) -> str:
    again = html.escape(login_url(request))
    static = html.escape(str(request.app.url_path_for("static", path="/")).rstrip("/"))
    return (
        '<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8">'
        "<title>无权访问 · Access refused</title>"
        f'<link rel="icon" href="{static}/img/favicon.svg">'
        f'<link rel="stylesheet" href="{static}/planner/login.css"></head>'
        '<body class="gg-login-body"><main class="gg-login-card" id="gg-refused">'
        "<h1>无权访问此页面</h1><p>Access to this page is refused.</p>"
        f'<p class="gg-login-msg gg-err">{html.escape(reason)}</p>'
        f'<p><a href="{again}">以其他账户登录 · Log in as someone else</a> · '
        '<a href="/map">总览地图 · Overview map</a></p></main></body></html>'
    )


class PageRoute(APIRoute):
    """Route class of HTML pages: browsers are sent to the login page instead of a 401."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Wrap the route's handler (dependencies included) to turn refusals into pages."""
        handle = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            try:
                return await handle(request)
            except AuthenticationError:
                if not wants_html(request):
                    raise
                return RedirectResponse(login_url(request), status_code=303)
            except PermissionDeniedError as exc:
                if not wants_html(request):
                    raise
                return HTMLResponse(_refusal_page(request, str(exc)), status_code=403)

        return page_handler


def visible_grids(conn: Connection) -> tuple[str, ...] | None:
    """Return the grids this request may see: ``None`` for all, else a member's grid codes.

    Reads what :func:`gis_grid.security.context.set_context` set on the connection (the
    settings row-level security uses), so a page and the policies never disagree.
    """
    role, grids = conn.execute(
        sa.text(
            "SELECT current_setting('gis_grid.role', true), current_setting('gis_grid.grids', true)"
        )
    ).one()
    if role != "member":
        return None
    return tuple(code for code in str(grids or "").split(",") if code)


def only_grids(
    frames: dict[str, gpd.GeoDataFrame], grids: tuple[str, ...]
) -> dict[str, gpd.GeoDataFrame]:
    """Keep, of a page's layers, only ``grids``, their villages and the rows placed in them.

    Frames with a ``grid_code`` column (households, points, incidents) keep their rows in
    ``grids``; ``grids`` keeps those codes; ``villages`` the villages of those grids (a grid
    code starts with its village's 12-digit code). Lines (rivers, streams, roads) and towns
    carry no grid and stay as context.
    """
    mine = set(grids)
    villages = {code[:12] for code in mine}
    out = {}
    for name, frame in frames.items():
        if name == "grids":
            out[name] = frame[frame["code"].isin(mine)]
        elif name == "villages":
            out[name] = frame[frame["code"].isin(villages)]
        elif "grid_code" in frame.columns:
            out[name] = frame[frame["grid_code"].isin(mine)]
        else:
            out[name] = frame
    return out
