"""Photos and documents attached to an incident (or one of its events), stored safely.

An upload is refused unless it is small enough (:data:`MAX_ATTACHMENT_BYTES`) and its bytes
are one of the accepted kinds, recognised by their magic numbers — JPEG, PNG, WebP, PDF — never
by the name or the declared type; a declared type that disagrees with the bytes is refused too
(a mislabelled file). The file name is reduced to its last path part without control
characters, so no path ever reaches a client or a disk. The SHA-256 of the bytes is stored
beside them, and served back as the ETag.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import unicodedata
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis_grid.errors import NotFoundError, RuleError
from gis_grid.incidents._sql import ATTACHMENT_SQL, ATTACHMENTS_SQL, INSERT_ATTACHMENT_SQL
from gis_grid.incidents.report import require_incident

__all__ = [
    "ACCEPTED_TYPES",
    "MAX_ATTACHMENT_BYTES",
    "AttachmentRecord",
    "AttachmentTooLargeError",
    "UnsupportedContentError",
    "add_attachment",
    "get_attachment",
    "incident_attachments",
    "safe_filename",
    "sniff_content_type",
]

#: Largest attachment accepted: 5 MiB (a phone photo; larger ones should be resized first).
MAX_ATTACHMENT_BYTES = 5 * 1024 * 1024

#: Accepted content types and their file extensions (the first is added to a name without one).
ACCEPTED_TYPES = {
    "image/jpeg": (".jpg", ".jpeg"),
    "image/png": (".png",),
    "image/webp": (".webp",),
    "application/pdf": (".pdf",),
}

#: Declared types that say nothing about the content (the bytes decide).
_GENERIC_TYPES = frozenset({"", "application/octet-stream", "binary/octet-stream"})
_ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "image/x-png": "image/png"}

_MAX_NAME = 200


class AttachmentTooLargeError(RuleError):
    """An upload is larger than :data:`MAX_ATTACHMENT_BYTES` (HTTP 413)."""


class UnsupportedContentError(RuleError):
    """An upload's bytes are not an accepted kind, or disagree with its declared type (415)."""


def sniff_content_type(data: bytes) -> str | None:
    r"""Return the accepted content type the bytes' magic number shows, or ``None``.

    Examples
    --------
    >>> sniff_content_type(b"\x89PNG\r\n\x1a\n" + bytes(8))
    'image/png'
    >>> sniff_content_type(b"<html>") is None
    True
    """
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    return None


def safe_filename(name: str | None, content_type: str) -> str:
    r"""Make a file name safe to store and send back: last path part, printable, not hidden.

    Parameters
    ----------
    name
        The name the client gave (may hold directories, ``..``, control characters).
    content_type
        The sniffed type: gives the extension when the name has none.

    Examples
    --------
    >>> safe_filename("../../etc/passwd", "image/png")
    'passwd.png'
    >>> safe_filename("C:\\photos\\现场.JPG", "image/jpeg")
    '现场.JPG'
    """
    text = unicodedata.normalize("NFC", name or "")
    text = re.split(r"[/\\]", text)[-1]
    text = "".join(ch for ch in text if unicodedata.category(ch)[0] != "C")
    text = text.replace('"', "").strip().lstrip(".").strip()
    extensions = ACCEPTED_TYPES[content_type]
    ext = next((e for e in extensions if text.lower().endswith(e)), None)
    if ext is None or len(text) == len(ext):
        ext = extensions[0]
        text = (text or "attachment") + ext
    stem = text[: len(text) - len(ext)]
    return stem[: _MAX_NAME - len(ext)] + text[len(text) - len(ext) :]


@dataclass(frozen=True)
class AttachmentRecord:
    """An attachment's metadata (the bytes are read only by :func:`get_attachment`)."""

    id: int
    incident_id: int
    event_id: int | None
    filename: str
    content_type: str
    size: int
    sha256: str
    created_at: dt.datetime


def _check_content(data: bytes, declared: str | None) -> str:
    size = len(data)
    if size > MAX_ATTACHMENT_BYTES:
        msg = (
            f"file is larger than {MAX_ATTACHMENT_BYTES // (1024 * 1024)} MiB "
            f"({MAX_ATTACHMENT_BYTES} bytes); resize the photo first"
        )
        raise AttachmentTooLargeError(
            msg, problems=[{"field": "file", "max_bytes": MAX_ATTACHMENT_BYTES}]
        )
    if size == 0:
        raise UnsupportedContentError("file is empty", problems=[{"field": "file", "size": 0}])
    sniffed = sniff_content_type(data)
    accepted = ", ".join(ACCEPTED_TYPES)
    if sniffed is None:
        msg = f"file is not one of the accepted kinds ({accepted}), judged by its content"
        raise UnsupportedContentError(msg, problems=[{"field": "file", "accepted": accepted}])
    claim = (declared or "").split(";")[0].strip().lower()
    claim = _ALIASES.get(claim, claim)
    if claim not in _GENERIC_TYPES and claim != sniffed:
        msg = f"file is declared {claim!r} but its content is {sniffed!r}: a mislabelled file"
        raise UnsupportedContentError(
            msg, problems=[{"field": "file", "declared": claim, "content": sniffed}]
        )
    return sniffed


def add_attachment(
    conn: Connection,
    incident_id: int,
    data: bytes,
    *,
    filename: str | None,
    declared_type: str | None = None,
    event_id: int | None = None,
    uploaded_by: str | None = None,
) -> AttachmentRecord:
    """Store a photo or document for an incident (optionally for one of its events).

    Parameters
    ----------
    conn
        Connection in a read-write transaction.
    incident_id
        The incident.
    data
        The file's bytes (at most :data:`MAX_ATTACHMENT_BYTES`; read at most one byte more).
    filename
        The client's file name; stored as :func:`safe_filename` makes it.
    declared_type
        The content type the client declared, if any: must agree with the bytes.
    event_id
        An event of this incident the file documents (e.g. the photo of the handling).
    uploaded_by
        Who uploaded it (stored with the file).

    Returns
    -------
    AttachmentRecord

    Raises
    ------
    NotFoundError
        No such incident.
    RuleError
        ``event_id`` is not an event of this incident.
    AttachmentTooLargeError, UnsupportedContentError
        Too large, empty, not an accepted kind, or mislabelled.
    """
    require_incident(conn, incident_id)
    content_type = _check_content(data, declared_type)
    if event_id is not None:
        found = conn.scalar(
            sa.text("SELECT incident_id FROM incident_events WHERE id = :id"), {"id": event_id}
        )
        if found != incident_id:
            msg = (
                f"event_id {event_id} is not an event of incident {incident_id}; "
                f"GET /api/v1/incidents/{incident_id}/events lists them"
            )
            raise RuleError(msg, problems=[{"field": "event_id", "value": event_id}])
    name = safe_filename(filename, content_type)
    digest = hashlib.sha256(data).hexdigest()
    row = conn.execute(
        sa.text(INSERT_ATTACHMENT_SQL),
        {
            "incident_id": incident_id,
            "event_id": event_id,
            "filename": name,
            "content_type": content_type,
            "size": len(data),
            "sha256": digest,
            "data": data,
            "uploaded_by": uploaded_by,
        },
    ).one()
    return AttachmentRecord(
        int(row.id), incident_id, event_id, name, content_type, len(data), digest, row.created_at
    )


def _record(row: sa.Row[tuple[object, ...]]) -> AttachmentRecord:
    m = row._mapping
    return AttachmentRecord(
        id=int(m["id"]),
        incident_id=int(m["incident_id"]),
        event_id=None if m["event_id"] is None else int(m["event_id"]),
        filename=str(m["filename"]),
        content_type=str(m["content_type"]),
        size=int(m["size"]),
        sha256=str(m["sha256"]).strip(),
        created_at=m["created_at"],
    )


def incident_attachments(conn: Connection, incident_id: int) -> list[AttachmentRecord]:
    """List the attachments of an incident (metadata only), oldest first; 404 if no incident."""
    require_incident(conn, incident_id)
    return [_record(r) for r in conn.execute(sa.text(ATTACHMENTS_SQL), {"id": incident_id})]


def get_attachment(conn: Connection, attachment_id: int) -> tuple[AttachmentRecord, bytes]:
    """One attachment's metadata and bytes.

    Raises
    ------
    NotFoundError
        If there is no such attachment.
    """
    row = conn.execute(sa.text(ATTACHMENT_SQL), {"id": attachment_id}).one_or_none()
    if row is None:
        msg = (
            f"attachment {attachment_id} not found; "
            "GET /api/v1/incidents/{id}/attachments lists an incident's"
        )
        raise NotFoundError(msg)
    return _record(row), bytes(row.data)
