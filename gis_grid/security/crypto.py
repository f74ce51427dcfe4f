"""Personal data encrypted at rest, with keyed hashes for exact lookup.

Resident ID numbers and phones are stored as AES-256-GCM ciphertext (``*_enc``), a keyed
HMAC-SHA256 of the normalised value (``*_hash``: ``WHERE id_number_hash = :h`` finds a person
without decrypting anything; the key makes the hash useless for guessing the 10^9-odd valid
ID numbers offline) and the masked form every response shows (``*_masked``), so that the read
paths never need the key.

All keys are derived (HKDF-SHA256, one ``info`` label per purpose) from one master secret:
``GIS_GRID_SECRET_KEY``, or the file ``GIS_GRID_SECRET_KEY_FILE`` created with a random
secret on first use. The secret is never in the repository; losing it loses the encrypted
values (back it up with the database).

Ciphertext layout: a version byte (1) + 12-byte nonce + AES-GCM output; the field
name is the associated data, so a phone's ciphertext cannot be passed off as an ID number.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from gis_grid.errors import GridError
from gis_grid.privacy import mask_id_number, mask_phone

if TYPE_CHECKING:
    from gis_grid.config import Settings

__all__ = [
    "FIELDS",
    "Keys",
    "SealedValue",
    "decrypt",
    "default_keys",
    "encrypt",
    "keys_from_settings",
    "lookup_hash",
    "normalise",
    "seal",
    "seal_many",
]

#: The personal fields encrypted at rest.
Field = Literal["id_number", "phone"]
FIELDS: tuple[Field, ...] = ("id_number", "phone")

_VERSION = b"\x01"
_NONCE = 12
_MIN_SECRET = 32


@dataclass(frozen=True)
class Keys:
    """The keys derived from the master secret (repr hides them)."""

    encryption: bytes = field(repr=False)
    lookup: bytes = field(repr=False)
    signing: bytes = field(repr=False)

    @classmethod
    def from_secret(cls, secret: str | bytes) -> Keys:
        """Derive the keys from a master secret (at least 32 characters).

        Examples
        --------
        >>> Keys.from_secret("x" * 32) == Keys.from_secret("x" * 32)
        True
        """
        raw = secret.encode() if isinstance(secret, str) else secret
        if len(raw) < _MIN_SECRET:
            msg = (
                f"the secret key has {len(raw)} bytes; use at least {_MIN_SECRET} random "
                "characters (python -c 'import secrets; print(secrets.token_urlsafe(48))')"
            )
            raise GridError(msg)

        def derive(label: bytes) -> bytes:
            hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=label)
            return hkdf.derive(raw)

        return cls(
            derive(b"gis-grid personal data encryption v1"),
            derive(b"gis-grid personal data lookup v1"),
            derive(b"gis-grid login tokens v1"),
        )


def _secret_from_file(path: Path) -> str:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fresh = secrets.token_urlsafe(48)
        try:
            # O_EXCL: two processes starting at once agree on the first file written.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(fresh + "\n")
    return path.read_text(encoding="utf-8").strip()


def keys_from_settings(settings: Settings) -> Keys:
    """Return the keys of ``settings`` (``secret_key``, else the secret key file).

    Parameters
    ----------
    settings
        Platform settings.

    Returns
    -------
    Keys
        Encryption, lookup and signing keys.
    """
    if settings.secret_key is not None:
        return Keys.from_secret(settings.secret_key.get_secret_value())
    return Keys.from_secret(_secret_from_file(settings.secret_key_file))


def default_keys() -> Keys:
    """Return the keys of the settings in the environment (``GIS_GRID_SECRET_KEY``...)."""
    from gis_grid.config import get_settings

    return keys_from_settings(get_settings())


def normalise(value: str, field_name: Field) -> str:
    """Return the form hashed and encrypted: ID numbers upper case, phones without spaces.

    Examples
    --------
    >>> normalise(" 11010519491231002x ", "id_number"), normalise("138 1234-1234", "phone")
    ('11010519491231002X', '13812341234')
    """
    text = value.strip()
    if field_name == "id_number":
        return text.upper()
    return "".join(ch for ch in text if ch not in " -()")


def encrypt(value: str, keys: Keys, field_name: Field) -> bytes:
    """Encrypt one value (AES-256-GCM, random nonce, the field name as associated data)."""
    nonce = secrets.token_bytes(_NONCE)
    sealed = AESGCM(keys.encryption).encrypt(nonce, value.encode(), field_name.encode())
    return _VERSION + nonce + sealed


def decrypt(blob: bytes, keys: Keys, field_name: Field) -> str:
    """Decrypt a value written by :func:`encrypt`.

    Raises
    ------
    GridError
        The ciphertext was not written with these keys for this field (wrong secret key,
        tampered or swapped column).
    """
    data = bytes(blob)
    if data[:1] != _VERSION or len(data) < 1 + _NONCE + 16:
        msg = f"{field_name}: stored value is not ciphertext of this platform (format)"
        raise GridError(msg)
    try:
        clear = AESGCM(keys.encryption).decrypt(
            data[1 : 1 + _NONCE], data[1 + _NONCE :], field_name.encode()
        )
    except InvalidTag as exc:
        msg = (
            f"{field_name}: stored value cannot be decrypted with the configured secret key "
            "(GIS_GRID_SECRET_KEY / secret key file changed since it was written?)"
        )
        raise GridError(msg) from exc
    return clear.decode()


def lookup_hash(value: str, keys: Keys, field_name: Field) -> str:
    """Keyed hash (HMAC-SHA256, hex) of the normalised value, for exact lookup.

    Examples
    --------
    >>> keys = Keys.from_secret("x" * 32)
    >>> lookup_hash("11010519491231002x", keys, "id_number") == lookup_hash(
    ...     "11010519491231002X", keys, "id_number")
    True
    """
    message = field_name.encode() + b"\x00" + normalise(value, field_name).encode()
    return hmac.new(keys.lookup, message, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class SealedValue:
    """What is stored for one personal value: ciphertext, lookup hash, masked form."""

    enc: bytes
    hash: str
    masked: str


def seal(value: str | None, keys: Keys, field_name: Field) -> SealedValue | None:
    """Return the stored form of one value (``None`` stays ``None``).

    Examples
    --------
    >>> sealed = seal("11010519491231002X", Keys.from_secret("x" * 32), "id_number")
    >>> sealed.masked
    '110***********002X'
    """
    if value is None:
        return None
    clear = normalise(value, field_name)
    mask = mask_id_number if field_name == "id_number" else mask_phone
    return SealedValue(
        encrypt(clear, keys, field_name), lookup_hash(clear, keys, field_name), mask(clear)
    )


def seal_many(
    values: Iterable[str | None], keys: Keys, field_name: Field
) -> tuple[list[str | None], list[str | None], list[str | None]]:
    """Seal a column: ciphertexts (as PostgreSQL hex text, for COPY), hashes, masked values."""
    encs: list[str | None] = []
    hashes_: list[str | None] = []
    masked: list[str | None] = []
    for value in values:
        sealed = seal(value if isinstance(value, str) else None, keys, field_name)
        encs.append(None if sealed is None else "\\x" + sealed.enc.hex())
        hashes_.append(None if sealed is None else sealed.hash)
        masked.append(None if sealed is None else sealed.masked)
    return encs, hashes_, masked
