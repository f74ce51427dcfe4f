"""Shapefile text encoding: read the DBF bytes ourselves to detect and validate it.

GDAL recodes DBF text silently (a GBK file without .cpg comes out as Latin-1 mojibake, and
GB18030 decodes most UTF-8 bytes into wrong characters without complaint), so the encoding is
decided here from the raw bytes and then handed to pyogrio, which decodes with Python's codec.

The DBF layout (dBase III as written by shapelib/GDAL): a 32-byte header (record count at 4,
header length at 8, record length at 10), 32-byte field descriptors up to a 0x0D terminator,
then fixed-width records that start with a deletion flag byte.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from typing import TYPE_CHECKING

import charset_normalizer
import numpy as np

from gis_grid.errors import DataFileError, EncodingError
from gis_grid.io._checks import pick_id_field

if TYPE_CHECKING:
    from numpy.typing import NDArray

_FIELD_NAMES = b""  # pseudo-field holding the non-ASCII field names themselves
_NEWLINE = 0x0A  # never a trail byte in UTF-8 or GB18030, so it cannot glue two cells together
#: Windows code pages that .cpg files name by number.
_CODE_PAGES = {
    "65001": "utf-8",
    "936": "gb18030",
    "54936": "gb18030",
    "950": "big5",
    "20127": "ascii",
    "28591": "latin-1",
    "88591": "latin-1",
}
#: GB18030 is a superset of GB2312 and GBK with identical bytes for their characters, and also
#: covers rare characters in place and person names (生僻字) that GBK writers still emit.
_CHINESE_SUPERSET = {"gbk": "gb18030", "gb2312": "gb18030", "cp936": "gb18030"}


@dataclass(frozen=True)
class TextField:
    """One character field (or the field names) holding non-ASCII bytes."""

    name: bytes  # raw field name, decoded for messages with the encoding under test
    rows: NDArray[np.intp]  # record numbers (0-based) of the non-ASCII cells
    width: int  # bytes per cell, plus the newline separator
    buffer: bytes  # the non-ASCII cells, each followed by a newline


@dataclass(frozen=True)
class DbfText:
    """The parts of a DBF that matter for its text encoding."""

    fields: list[TextField]
    id_field: str | None
    id_values: NDArray[np.uint8] | None  # raw bytes of the id column, one row per record

    def id_value(self, row: int) -> str | None:
        """Return the id of record ``row`` as text (undecodable bytes replaced)."""
        if self.id_values is None:
            return None
        raw = self.id_values[row].tobytes().rstrip(b" \x00")
        return raw.decode("utf-8", errors="replace").strip()


def parse_dbf(data: bytes, *, source: str) -> DbfText:
    """Collect the non-ASCII cells of every character field, vectorised with numpy."""
    if len(data) < 33:
        msg = f"{source}: the .dbf is truncated ({len(data)} bytes); re-export the shapefile"
        raise DataFileError(msg)
    n_records = int.from_bytes(data[4:8], "little")
    header_len = int.from_bytes(data[8:10], "little")
    record_len = int.from_bytes(data[10:12], "little")
    names: list[bytes] = []
    columns: list[tuple[bytes, int, int]] = []  # name, start, width of character fields
    start = 1  # after the deletion flag
    offset = 32
    while offset + 32 <= min(header_len, len(data)) and data[offset] != 0x0D:
        desc = data[offset : offset + 32]
        name = desc[:11].split(b"\x00", 1)[0]
        kind = chr(desc[11])
        # shapelib: numeric widths are one byte; character widths use byte 17 as high byte.
        width = desc[16] if kind in "NF" else desc[16] + 256 * desc[17]
        names.append(name)
        if kind == "C":
            columns.append((name, start, width))
        start += width
        offset += 32
    if record_len <= 0:
        msg = f"{source}: the .dbf header gives no record length; re-export the shapefile"
        raise DataFileError(msg)
    n_records = min(n_records, max(len(data) - header_len, 0) // record_len)
    records = np.frombuffer(data, dtype=np.uint8, count=n_records * record_len, offset=header_len)
    records = records.reshape(n_records, record_len)
    # GDAL skips records flagged deleted ("*"); so do we, so that row numbers match its rows
    # and stale bytes in deleted records cannot fail the check.
    records = records[records[:, 0] != ord("*")]

    fields: list[TextField] = []
    name_cells = [n for n in names if max(n, default=0) >= 0x80]
    if name_cells:
        fields.append(_text_field(name_cells))
    for name, first, width in columns:
        block = records[:, first : first + width]
        rows = np.flatnonzero((block >= 0x80).any(axis=1))
        if rows.size:
            stacked = np.hstack([block[rows], np.full((rows.size, 1), _NEWLINE, np.uint8)])
            fields.append(TextField(name, rows, width + 1, stacked.tobytes()))
    ascii_names = {n.decode("ascii"): (s, w) for n, s, w in columns if max(n, default=0) < 0x80}
    id_field = pick_id_field(ascii_names)
    id_values = None
    if id_field is not None:
        first, width = ascii_names[id_field]
        id_values = records[:, first : first + width]
    return DbfText(fields, id_field, id_values)


def _text_field(cells: list[bytes]) -> TextField:
    width = max(len(c) for c in cells) + 1
    buffer = b"".join(c.ljust(width - 1, b" ") + b"\n" for c in cells)  # a handful of names
    return TextField(_FIELD_NAMES, np.arange(len(cells)), width, buffer)


def normalise_encoding(label: str, *, source: str) -> str:
    """Return the Python codec for an encoding name as found in a .cpg or given by a user."""
    raw = label.strip().lstrip("\ufeff").strip()
    key = raw.upper().removeprefix("ANSI").strip().removeprefix("CP").strip()
    name = _CODE_PAGES.get(key) or (f"cp{key}" if key.isdigit() else raw)
    try:
        canonical = codecs.lookup(name).name
    except LookupError:
        msg = (
            f"{source}: unknown text encoding {label!r}. Give a known one, e.g. "
            "encoding='utf-8', 'gb18030' (covers GBK/GB2312) or 'big5'."
        )
        raise EncodingError(msg) from None
    return _CHINESE_SUPERSET.get(canonical, canonical)


def _decodes(field: TextField, encoding: str) -> bool:
    try:
        field.buffer.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        return False
    return True


def _undecodable_cells(fields: list[TextField], encoding: str) -> int:
    decoded = "\n".join(f.buffer.decode(encoding, errors="replace") for f in fields)
    return sum("\ufffd" in cell for cell in decoded.split("\n"))


def detect_encoding(text: DbfText) -> str:
    """Choose the encoding of a DBF without .cpg: UTF-8, else GB18030, else charset-normalizer.

    UTF-8 is tried first because its byte patterns are strict (GBK text almost never decodes
    as UTF-8), while GB18030 accepts most UTF-8 bytes as wrong characters. When neither
    decodes every value but one decodes over half of them, the file is taken to be in that
    one with a few damaged values, which validation then names; a single-byte guess would
    read every value "successfully" as mojibake. Only otherwise does charset-normalizer judge.
    """
    if not text.fields:
        return "utf-8"  # pure ASCII: every candidate reads it the same
    for candidate in ("utf-8", "gb18030"):
        if all(_decodes(f, candidate) for f in text.fields):
            return candidate
    cells = sum(f.rows.size for f in text.fields)
    failures = {c: _undecodable_cells(text.fields, c) for c in ("utf-8", "gb18030")}
    likely = min(failures, key=lambda c: failures[c])
    if failures[likely] * 2 < cells:
        return likely
    best = charset_normalizer.from_bytes(b"".join(f.buffer for f in text.fields)).best()
    return "gb18030" if best is None else codecs.lookup(best.encoding).name


def validate_encoding(text: DbfText, encoding: str, *, source: str, origin: str) -> None:
    """Raise :class:`EncodingError` naming the first cell ``encoding`` cannot decode.

    ``origin`` says where the encoding came from (".cpg", "encoding=", "detected"), so the
    message can tell the user what to change.
    """
    for field in text.fields:
        try:
            field.buffer.decode(encoding)
        except UnicodeDecodeError as exc:
            index = exc.start // field.width
            row = int(field.rows[index])
            cell = field.buffer[index * field.width : (index + 1) * field.width - 1]
            alternatives = [c for c in ("utf-8", "gb18030") if c != encoding and _decodes(field, c)]
            hint = (
                f" The bytes decode as {alternatives[0]}: pass encoding={alternatives[0]!r}"
                if alternatives
                else " Pass the right encoding="
            )
            if field.name == _FIELD_NAMES:
                where = f"field name {cell.rstrip()!r}"
            else:
                name = field.name.decode(encoding, errors="replace")
                ident = text.id_value(row)
                label = f"feature {row + 1}" + (
                    f" ({text.id_field}={ident})" if ident is not None else ""
                )
                where = f"{label}, field {name!r}"
            msg = (
                f"{source}: {where}: bytes {cell.rstrip()!r} are not valid {encoding} "
                f"({origin}).{hint} or correct the .cpg file."
            )
            raise EncodingError(msg) from exc
