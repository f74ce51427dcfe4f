"""Roles and what each may read and write: the permission table, as data.

Five roles (the issue's list; ``docs/security.md`` shows the same table):

``admin``
    Centre administrator (网格化服务管理中心): everything, user accounts included.
``planner``
    Draws and applies grid plans; reads members and the engine's analyses.
``member``
    A grid member (网格员): their own grid's registries and incidents (and the grid they cover
    as AB post on the days its member is absent: row-level security decides which rows).
``analyst``
    Reads everything the service offers (personal data masked), writes nothing.
``reader``
    Read-only map client (QGIS, OGC API, tiles): geography and grids, no registers of people.

An *area* is a group of routes (the service's OpenAPI tags); a role holds ``read`` and/or
``write`` on an area. :data:`PERMISSIONS` is the table; :func:`allows` looks a cell up.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

__all__ = [
    "AREAS",
    "PERMISSIONS",
    "Access",
    "Role",
    "allows",
    "permission_rows",
]


class Role(StrEnum):
    """A user's role."""

    ADMIN = "admin"
    PLANNER = "planner"
    MEMBER = "member"
    ANALYST = "analyst"
    READER = "reader"


Access = Literal["read", "write"]

#: Areas of the service and what they hold (the OpenAPI tags, plus ``privacy``: unmasking).
AREAS: dict[str, str] = {
    "geography": "towns, villages, lookup, layers, map pages, OGC API, vector tiles",
    "grids": "grids, their versions and statistics; editing grids (split, merge, redraw)",
    "plans": "proposed grid plans for a town or village; applying one",
    "engine": "load balance, adjacency, absence cover; AB posts (computing, storing, setting)",
    "members": "grid members and candidates, selection workflow, absences",
    "registries": "households and residents (personal data masked)",
    "places": "pollution points, hazards and their patrols",
    "incidents": "incidents, their workflow, events, attachments, overdue supervision",
    "task types": "kinds of grid work and their admission",
    "exchange": "import and export of layers",
    "privacy": "unmasking one resident's personal data (reason required, audited)",
}

_R: frozenset[Access] = frozenset({"read"})
_RW: frozenset[Access] = frozenset({"read", "write"})
_W: frozenset[Access] = frozenset({"write"})
_NONE: frozenset[Access] = frozenset()

#: role -> area -> access. A member's reads and writes are further limited to their grids by
#: row-level security in PostgreSQL.
PERMISSIONS: dict[Role, dict[str, frozenset[Access]]] = {
    Role.ADMIN: dict.fromkeys(AREAS, _RW),
    Role.PLANNER: {
        "geography": _R,
        "grids": _RW,
        "plans": _RW,
        "engine": _RW,
        "members": _R,
        "registries": _NONE,
        "places": _R,
        "incidents": _R,
        "task types": _R,
        "exchange": _RW,
        "privacy": _NONE,
    },
    Role.MEMBER: {
        "geography": _R,
        "grids": _R,
        "plans": _NONE,
        "engine": _R,
        "members": _R,
        "registries": _RW,
        "places": _RW,
        "incidents": _RW,
        "task types": _R,
        "exchange": _NONE,
        "privacy": _W,
    },
    Role.ANALYST: {
        "geography": _R,
        "grids": _R,
        "plans": _R,
        "engine": _R,
        "members": _R,
        "registries": _R,
        "places": _R,
        "incidents": _R,
        "task types": _R,
        "exchange": _R,
        "privacy": _NONE,
    },
    Role.READER: {
        "geography": _R,
        "grids": _R,
        "plans": _NONE,
        "engine": _NONE,
        "members": _NONE,
        "registries": _NONE,
        "places": _NONE,
        "incidents": _NONE,
        "task types": _NONE,
        "exchange": _NONE,
        "privacy": _NONE,
    },
}


def allows(role: Role | str, area: str, access: Access) -> bool:
    """Whether ``role`` has ``access`` on ``area`` (unknown roles and areas: no).

    Examples
    --------
    >>> allows("member", "registries", "write"), allows("reader", "registries", "read")
    (True, False)
    """
    try:
        return access in PERMISSIONS[Role(role)].get(area, _NONE)
    except ValueError:
        return False


def permission_rows() -> list[tuple[str, dict[str, str]]]:
    """Return the table for the docs: area -> role -> ``read``, ``read, write`` or ``-``."""
    rows = []
    for area in AREAS:
        cells = {}
        for role in Role:
            access = PERMISSIONS[role][area]
            cells[role.value] = ", ".join(a for a in ("read", "write") if a in access) or "-"
        rows.append((area, cells))
    return rows
