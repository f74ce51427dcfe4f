"""Security: accounts, roles, tokens, row-level security context, encryption, audit.

Modules: :mod:`~gis_grid.security.roles` (the permission table), :mod:`.accounts`,
:mod:`.tokens`, :mod:`.context`, :mod:`.crypto`, :mod:`.audit`, :mod:`.errors`, and
:mod:`.cli` (``gis-grid users ...``). ``docs/security.md`` describes the whole.
"""

from gis_grid.security.accounts import User, authenticate, create_user, get_user
from gis_grid.security.context import set_context
from gis_grid.security.errors import (
    AccountLockedError,
    AuthenticationError,
    PermissionDeniedError,
    RateLimitedError,
)
from gis_grid.security.roles import Role, allows

__all__ = [
    "AccountLockedError",
    "AuthenticationError",
    "PermissionDeniedError",
    "RateLimitedError",
    "Role",
    "User",
    "allows",
    "authenticate",
    "create_user",
    "get_user",
    "set_context",
]
