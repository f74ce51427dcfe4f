"""Errors of the security layer, all :class:`~gis_grid.errors.GridError` subclasses.

The web layer maps them to HTTP: :class:`AuthenticationError` 401,
:class:`PermissionDeniedError` 403, :class:`RateLimitedError` (and an account locked after
failed logins) 429 with ``Retry-After``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from gis_grid.errors import GridError

__all__ = [
    "AccountLockedError",
    "AuthenticationError",
    "PermissionDeniedError",
    "RateLimitedError",
]


class AuthenticationError(GridError):
    """Who is calling is unknown: no token, a forged, expired or revoked one, a bad password."""


class PermissionDeniedError(GridError):
    """The caller is known but their role may not do this (or not on this grid)."""


class RateLimitedError(GridError):
    """Too many attempts: try again after ``retry_after`` seconds."""

    def __init__(
        self, message: str, *, retry_after: int, problems: Sequence[Mapping[str, object]] = ()
    ) -> None:
        super().__init__(message, problems)
        self.retry_after = max(1, int(retry_after))


class AccountLockedError(RateLimitedError):
    """An account locked for a while after repeated failed logins."""
