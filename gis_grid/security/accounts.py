"""User accounts: argon2 password hashes, roles, lockout after repeated failed logins.

Passwords are hashed with argon2id (``argon2-cffi``, its default parameters: RFC 9106's
low-memory profile); a hash made with older parameters is replaced at the next successful
login. An unknown user name costs the same time as a wrong password (a dummy hash is
verified), so logins do not reveal which names exist. After ``lockout_attempts`` failed
logins in a row an account is locked for ``lockout_minutes``; a successful login resets the
count.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy.engine import Connection

from gis_grid.errors import DuplicateCodeError, NotFoundError, RuleError
from gis_grid.security.errors import AccountLockedError, AuthenticationError
from gis_grid.security.roles import Role

__all__ = [
    "MIN_PASSWORD_LENGTH",
    "User",
    "authenticate",
    "create_user",
    "disable_user",
    "get_user",
    "hash_password",
    "list_users",
    "set_password",
]

#: Shortest password accepted.
MIN_PASSWORD_LENGTH = 10

_USERNAME = re.compile(r"^[a-z0-9][a-z0-9_.@-]{2,63}$")
_HASHER = PasswordHasher()
# Verified when the user name is unknown, so that the answer takes as long as for a known one.
_DUMMY_HASH = _HASHER.hash("not a password of anybody")


@dataclass(frozen=True)
class User:
    """An account as the service sees it (never the password hash)."""

    id: int
    username: str
    display_name: str | None
    role: Role
    member_code: str | None
    disabled: bool
    locked_until: dt.datetime | None = None


_USER_SQL = """
SELECT u.id, u.username, u.display_name, u.role, u.member_code, u.disabled, u.locked_until,
       u.password_hash, u.failed_logins
FROM users u
"""


def _user(row: Any) -> User:
    return User(
        id=int(row["id"]),
        username=row["username"],
        display_name=row["display_name"],
        role=Role(row["role"]),
        member_code=row["member_code"],
        disabled=bool(row["disabled"]),
        locked_until=row["locked_until"],
    )


def hash_password(password: str) -> str:
    """Hash a password with argon2id after checking its length.

    Raises
    ------
    RuleError
        Shorter than :data:`MIN_PASSWORD_LENGTH` characters, or longer than 1024.
    """
    if not isinstance(password, str) or not MIN_PASSWORD_LENGTH <= len(password) <= 1024:
        msg = f"password: use {MIN_PASSWORD_LENGTH} to 1024 characters"
        raise RuleError(msg, [{"field": "password", "rule": "length"}])
    return _HASHER.hash(password)


def create_user(
    conn: Connection,
    username: str,
    password: str,
    role: Role | str,
    *,
    member_code: str | None = None,
    display_name: str | None = None,
) -> User:
    """Create an account.

    Parameters
    ----------
    conn
        Connection in the caller's transaction.
    username
        3-64 characters: lower-case letters, digits, ``_ . @ -``.
    password
        At least :data:`MIN_PASSWORD_LENGTH` characters.
    role
        One of :class:`~gis_grid.security.roles.Role`.
    member_code
        For role ``member`` (required there, refused otherwise): the member's code.
    display_name
        A name to show.

    Returns
    -------
    User
        The new account.

    Raises
    ------
    RuleError
        Bad user name, role, password, or member code missing / given for another role.
    NotFoundError
        No member with that code.
    DuplicateCodeError
        The user name exists.
    """
    if not isinstance(username, str) or not _USERNAME.match(username):
        msg = (
            f"username {username!r}: use 3-64 characters, lower-case letters, digits and "
            "_ . @ - (starting with a letter or digit)"
        )
        raise RuleError(msg, [{"field": "username", "rule": "format"}])
    try:
        role = Role(role)
    except ValueError:
        allowed = ", ".join(r.value for r in Role)
        msg = f"role {role!r} unknown; allowed: {allowed}"
        raise RuleError(msg, [{"field": "role", "rule": "known"}]) from None
    if (role is Role.MEMBER) != (member_code is not None):
        msg = "member_code: required for role member (the grid member the account is), only then"
        raise RuleError(msg, [{"field": "member_code", "rule": "member_role"}])
    if member_code is not None:
        known = conn.scalar(sa.text("SELECT 1 FROM members WHERE code = :c"), {"c": member_code})
        if known is None:
            msg = f"member {member_code!r} not found"
            raise NotFoundError(msg, [{"field": "member_code", "value": member_code}])
    digest = hash_password(password)
    if conn.scalar(sa.text("SELECT 1 FROM users WHERE username = :u"), {"u": username}):
        msg = f"username {username!r} exists already"
        raise DuplicateCodeError(msg, [{"field": "username", "value": username}])
    conn.execute(
        sa.text(
            "INSERT INTO users (username, display_name, role, member_code, password_hash) "
            "VALUES (:u, :d, :r, :m, :h)"
        ),
        {"u": username, "d": display_name, "r": role.value, "m": member_code, "h": digest},
    )
    return get_user(conn, username)


def get_user(conn: Connection, username_or_id: str | int) -> User:
    """Return an account by user name or id.

    Raises
    ------
    NotFoundError
        No such account.
    """
    column = "u.id" if isinstance(username_or_id, int) else "u.username"
    row = (
        conn.execute(sa.text(f"{_USER_SQL} WHERE {column} = :v"), {"v": username_or_id})
        .mappings()
        .first()
    )
    if row is None:
        msg = f"user {username_or_id!r} not found"
        raise NotFoundError(msg, [{"field": "username", "value": str(username_or_id)}])
    return _user(row)


def list_users(conn: Connection) -> list[User]:
    """Return every account, by user name."""
    rows = conn.execute(sa.text(f"{_USER_SQL} ORDER BY u.username")).mappings().all()
    return [_user(row) for row in rows]


def disable_user(conn: Connection, username: str, *, disabled: bool = True) -> User:
    """Disable (or enable again) an account; disabling revokes its open sessions.

    Raises
    ------
    NotFoundError
        No such account.
    """
    user = get_user(conn, username)
    conn.execute(
        sa.text("UPDATE users SET disabled = :d WHERE id = :i"), {"d": disabled, "i": user.id}
    )
    if disabled:
        conn.execute(
            sa.text(
                "UPDATE sessions SET revoked_at = now() WHERE user_id = :i AND revoked_at IS NULL"
            ),
            {"i": user.id},
        )
    return get_user(conn, user.id)


def set_password(conn: Connection, username: str, password: str) -> User:
    """Set a new password; unlocks the account and revokes its open sessions.

    Raises
    ------
    NotFoundError
        No such account.
    RuleError
        Password too short.
    """
    user = get_user(conn, username)
    conn.execute(
        sa.text(
            "UPDATE users SET password_hash = :h, password_changed_at = now(), "
            "failed_logins = 0, locked_until = NULL WHERE id = :i"
        ),
        {"h": hash_password(password), "i": user.id},
    )
    conn.execute(
        sa.text("UPDATE sessions SET revoked_at = now() WHERE user_id = :i AND revoked_at IS NULL"),
        {"i": user.id},
    )
    return get_user(conn, user.id)


def _verify(digest: str, password: str) -> bool:
    try:
        return _HASHER.verify(digest, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def authenticate(
    conn: Connection,
    username: str,
    password: str,
    *,
    max_attempts: int,
    lock_minutes: int,
) -> User:
    """Check a user name and password; count failures and lock the account at the limit.

    The failure count is written on ``conn``: the caller commits it even when this raises
    (a failed login must count), e.g. by running this in a transaction of its own.

    Parameters
    ----------
    conn
        Connection in a transaction.
    username, password
        What the caller typed.
    max_attempts
        Failed logins in a row that lock the account.
    lock_minutes
        How long it stays locked.

    Returns
    -------
    User
        The account.

    Raises
    ------
    AuthenticationError
        Unknown user, wrong password, disabled account (one message for all: which one is
        not told).
    AccountLockedError
        Locked after too many failures; ``retry_after`` says for how long.
    """
    refused = AuthenticationError("login refused: wrong user name or password")
    row = (
        conn.execute(sa.text(f"{_USER_SQL} WHERE u.username = :u FOR UPDATE OF u"), {"u": username})
        .mappings()
        .first()
    )
    if row is None:
        _verify(_DUMMY_HASH, password)
        raise refused
    now = conn.scalar(sa.text("SELECT now()"))
    locked_until = row["locked_until"]
    if locked_until is not None and locked_until > now:
        seconds = int((locked_until - now).total_seconds()) + 1
        msg = (
            f"account {username!r} is locked after {max_attempts} failed logins; "
            f"try again in {seconds} s or ask an administrator to set a new password"
        )
        raise AccountLockedError(msg, retry_after=seconds)
    if not _verify(row["password_hash"], password) or row["disabled"]:
        failures = int(row["failed_logins"]) + 1
        if failures >= max_attempts:
            conn.execute(
                sa.text(
                    "UPDATE users SET failed_logins = 0, "
                    "locked_until = now() + make_interval(mins => :m) WHERE id = :i"
                ),
                {"m": lock_minutes, "i": row["id"]},
            )
        else:
            conn.execute(
                sa.text("UPDATE users SET failed_logins = :f WHERE id = :i"),
                {"f": failures, "i": row["id"]},
            )
        raise refused
    updates = "failed_logins = 0, locked_until = NULL"
    params: dict[str, Any] = {"i": row["id"]}
    if _HASHER.check_needs_rehash(row["password_hash"]):
        updates += ", password_hash = :h"
        params["h"] = _HASHER.hash(password)
    conn.execute(sa.text(f"UPDATE users SET {updates} WHERE id = :i"), params)
    return _user(row)
