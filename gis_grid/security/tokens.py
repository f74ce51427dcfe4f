"""Short-lived signed login tokens, with a session row per token for logout and revocation.

A token is ``v1.<payload>.<signature>``: the payload (URL-safe base64 of JSON ``sub`` user id,
``jti`` session id, ``exp`` Unix time) signed with HMAC-SHA256 under the signing key derived
from the platform's secret (:class:`gis_grid.security.crypto.Keys`). Verifying checks the
signature (constant time), the expiry, and then the session row: a token whose session was
revoked (logout, password change, account disabled) is refused even before it expires.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis_grid.security.accounts import User, get_user
from gis_grid.security.crypto import Keys
from gis_grid.security.errors import AuthenticationError

__all__ = [
    "IssuedToken",
    "TokenClaims",
    "encode_token",
    "issue_token",
    "read_token",
    "revoke",
    "verify_token",
]

_PREFIX = "v1"
_MAX_TOKEN = 512


@dataclass(frozen=True)
class IssuedToken:
    """A new token and when it expires."""

    token: str
    expires_at: dt.datetime
    jti: str


@dataclass(frozen=True)
class TokenClaims:
    """What a validly signed, unexpired token says."""

    user_id: int
    jti: str
    expires: int


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(keys: Keys, message: str) -> str:
    return _b64(hmac.new(keys.signing, message.encode(), hashlib.sha256).digest())


def issue_token(conn: Connection, user: User, keys: Keys, *, minutes: int) -> IssuedToken:
    """Open a session for ``user`` and return its signed token.

    Parameters
    ----------
    conn
        Connection in the caller's transaction (the session row is inserted).
    user
        The authenticated account.
    keys
        The platform's keys.
    minutes
        Lifetime.

    Returns
    -------
    IssuedToken
        The token (give it as ``Authorization: Bearer <token>``) and its expiry.
    """
    jti = secrets.token_hex(16)
    expires = int(time.time()) + minutes * 60
    expires_at = dt.datetime.fromtimestamp(expires, dt.UTC)
    conn.execute(
        sa.text("INSERT INTO sessions (jti, user_id, expires_at) VALUES (:j, :u, :e)"),
        {"j": jti, "u": user.id, "e": expires_at},
    )
    return IssuedToken(
        encode_token(keys, user_id=user.id, jti=jti, expires=expires), expires_at, jti
    )


def encode_token(keys: Keys, *, user_id: int, jti: str, expires: int) -> str:
    """Sign claims into a token (without a session row it is refused as revoked).

    Examples
    --------
    >>> keys = Keys.from_secret("x" * 32)
    >>> token = encode_token(keys, user_id=1, jti="0" * 32, expires=2**40)
    >>> read_token(token, keys).user_id
    1
    """
    payload = _b64(
        json.dumps({"sub": user_id, "jti": jti, "exp": expires}, separators=(",", ":")).encode()
    )
    message = f"{_PREFIX}.{payload}"
    return f"{message}.{_sign(keys, message)}"


def read_token(token: str, keys: Keys, *, now: float | None = None) -> TokenClaims:
    """Check a token's form, signature and expiry (no database).

    Raises
    ------
    AuthenticationError
        Malformed, forged (bad signature) or expired.
    """
    forged = AuthenticationError("invalid token: log in again (POST /api/v1/auth/login)")
    if not isinstance(token, str) or len(token) > _MAX_TOKEN or token.count(".") != 2:
        raise forged
    prefix, payload, signature = token.split(".")
    if prefix != _PREFIX or not hmac.compare_digest(_sign(keys, f"{prefix}.{payload}"), signature):
        raise forged
    try:
        claims = json.loads(_unb64(payload))
        user_id, jti, expires = int(claims["sub"]), str(claims["jti"]), int(claims["exp"])
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise forged from None
    if expires <= (time.time() if now is None else now):
        msg = "token expired: log in again (POST /api/v1/auth/login)"
        raise AuthenticationError(msg)
    return TokenClaims(user_id, jti, expires)


def verify_token(conn: Connection, token: str, keys: Keys) -> tuple[User, TokenClaims]:
    """Return the account a token belongs to, if its session is open and the account enabled.

    Raises
    ------
    AuthenticationError
        Malformed, forged, expired, revoked (logged out), or the account disabled.
    """
    claims = read_token(token, keys)
    open_session = conn.scalar(
        sa.text(
            "SELECT 1 FROM sessions s JOIN users u ON u.id = s.user_id "
            "WHERE s.jti = :j AND s.user_id = :u AND s.revoked_at IS NULL "
            "AND s.expires_at > now() AND NOT u.disabled"
        ),
        {"j": claims.jti, "u": claims.user_id},
    )
    if not open_session:
        msg = "token revoked (logged out, password changed or account disabled): log in again"
        raise AuthenticationError(msg)
    return get_user(conn, claims.user_id), claims


def revoke(conn: Connection, jti: str) -> bool:
    """Revoke one session (logout). Returns whether it was open."""
    done = conn.execute(
        sa.text("UPDATE sessions SET revoked_at = now() WHERE jti = :j AND revoked_at IS NULL"),
        {"j": jti},
    )
    return bool(done.rowcount)
