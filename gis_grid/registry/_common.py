"""Shared pieces of the registry writes: codes, problems, duplicate-safe inserts."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis_grid.errors import GridError, RuleError

__all__ = ["CODE_PATTERN", "changed", "check_code", "fail", "refusing_duplicates", "source_of"]

#: Codes of households, pollution points and hazards: letters, digits, ``-`` and ``_``.
CODE_PATTERN = r"^[0-9A-Za-z_-]{1,64}$"
_CODE_RE = re.compile(CODE_PATTERN)


def fail(message: str, field: str, rule: str, **details: object) -> RuleError:
    """Build a :class:`RuleError` naming one field (for the caller to raise)."""
    return RuleError(f"{field}: {message}", [{"field": field, "rule": rule, **details}])


def check_code(code: str, what: str) -> str:
    """Return ``code`` if it is 1-64 letters, digits, ``-`` or ``_``; else a RuleError."""
    if not isinstance(code, str) or not _CODE_RE.fullmatch(code):
        msg = f"{what} code {code!r} must be 1-64 letters, digits, '-' or '_'"
        raise fail(msg, "code", "code_format")
    return code


def source_of(actor: str) -> str:
    """Return the ``source`` (provenance) of a row written through the service by ``actor``."""
    return f"api:{actor}"


@contextmanager
def refusing_duplicates(
    conn: Connection, error: Callable[[str | None], GridError]
) -> Iterator[None]:
    """Run a write in a savepoint; a unique violation becomes ``error(constraint)``.

    The checks before the write find duplicates already; this catches the race with another
    writer without letting the database's message (which quotes the value, e.g. a full ID
    number) reach the caller.
    """
    try:
        with conn.begin_nested():
            yield
    except sa.exc.IntegrityError as exc:
        diag = getattr(exc.orig, "diag", None)
        if getattr(exc.orig, "sqlstate", None) != "23505":  # unique_violation
            raise
        raise error(getattr(diag, "constraint_name", None)) from None


def changed(changes: Mapping[str, object], allowed: tuple[str, ...], what: str) -> None:
    """Refuse a change of a field that cannot be changed (names it)."""
    unknown = sorted(set(changes) - set(allowed))
    if unknown:
        msg = f"cannot change {', '.join(unknown)} of a {what}; changeable: {', '.join(allowed)}"
        raise fail(msg, unknown[0], "not_changeable")
