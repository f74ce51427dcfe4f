"""Unpack an uploaded zip safely: every entry checked before a single byte is written.

Refused (a :class:`~gis_grid.errors.DataFileError` naming the archive and the entry): entries
whose path is absolute, contains ``..`` or a drive letter (zip slip), symbolic links and other
special files, more than :data:`MAX_ENTRIES` entries, more than :data:`MAX_UNPACKED_BYTES`
declared in all, an entry compressed more than :data:`MAX_RATIO` times (zip-bomb-like), and
archives that are not zips. Extraction writes only regular files below the target folder, and
stops when the bytes actually inflated exceed what the entry declared.
"""

from __future__ import annotations

import shutil
import stat
import zipfile
from pathlib import Path, PurePosixPath

from gis_grid.errors import DataFileError

__all__ = ["MAX_ENTRIES", "MAX_RATIO", "MAX_UNPACKED_BYTES", "safe_extract"]

#: Most entries an uploaded archive may hold (a shapefile needs 3-8).
MAX_ENTRIES = 200
#: Most bytes the entries may unpack to, in all.
MAX_UNPACKED_BYTES = 512 * 1024 * 1024
#: Highest compression ratio accepted for one entry larger than 1 MiB.
MAX_RATIO = 200
_CHUNK = 1 << 20


def _fail(archive: str, entry: str | None, why: str) -> DataFileError:
    where = f"{archive}!{entry}" if entry is not None else archive
    problems = [{"file": archive, "entry": entry, "reason": why}] if entry else []
    return DataFileError(f"{where}: {why}; nothing was imported", problems=problems)


def _safe_name(archive: str, name: str) -> PurePosixPath:
    text = name.replace("\\", "/")
    path = PurePosixPath(text)
    if text.startswith("/") or (len(text) > 1 and text[1] == ":"):
        raise _fail(archive, name, "absolute path in the archive (zip slip)")
    if any(part == ".." for part in path.parts):
        raise _fail(archive, name, "'..' in an archive path (zip slip)")
    if "\x00" in text:
        raise _fail(archive, name, "NUL character in an archive path")
    return path


def _check(archive: str, infos: list[zipfile.ZipInfo]) -> None:
    if len(infos) > MAX_ENTRIES:
        raise _fail(archive, None, f"{len(infos)} entries, more than the {MAX_ENTRIES} accepted")
    total = 0
    for info in infos:
        _safe_name(archive, info.filename)
        # Unix zips keep the file type in the high bits (none set: a plain file).
        kind = stat.S_IFMT(info.external_attr >> 16)
        if kind and kind not in {stat.S_IFREG, stat.S_IFDIR}:
            what = "symbolic link" if kind == stat.S_IFLNK else "special file"
            raise _fail(archive, info.filename, f"{what} in the archive")
        if info.flag_bits & 0x1:
            raise _fail(archive, info.filename, "encrypted entry")
        total += info.file_size
        if info.file_size > _CHUNK and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            ratio = info.file_size // max(info.compress_size, 1)
            raise _fail(archive, info.filename, f"compressed {ratio}:1, beyond {MAX_RATIO}:1")
    if total > MAX_UNPACKED_BYTES:
        raise _fail(
            archive, None, f"unpacks to {total} bytes, more than the {MAX_UNPACKED_BYTES} accepted"
        )


def safe_extract(path: str | Path, target: str | Path, *, name: str | None = None) -> list[Path]:
    """Extract a zip's regular files into ``target`` after checking every entry.

    Parameters
    ----------
    path
        The zip archive.
    target
        An existing (temporary) folder; nothing is written outside it.
    name
        How messages name the archive (the uploaded file's name); default ``path``.

    Returns
    -------
    list of pathlib.Path
        The files written.

    Raises
    ------
    DataFileError
        Not a zip, or an entry refused (see the module docstring), naming the entry.

    Examples
    --------
    >>> files = safe_extract("upload.zip", tmpdir)  # doctest: +SKIP
    """
    label = name or str(path)
    root = Path(target).resolve()
    written: list[Path] = []
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            _check(label, infos)
            for info in infos:
                if info.is_dir():
                    continue
                out = (root / _safe_name(label, info.filename)).resolve()
                if root not in out.parents:
                    raise _fail(label, info.filename, "path leaves the extraction folder")
                out.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(info) as src, out.open("wb") as dst:
                    # Stop at the declared size: a lying header cannot inflate further.
                    shutil.copyfileobj(_Limited(src, info.file_size, label, info.filename), dst)
                written.append(out)
    except zipfile.BadZipFile as exc:
        raise _fail(label, None, f"not a readable zip archive ({exc})") from exc
    return written


class _Limited:
    """A reader that refuses to yield more than ``limit`` bytes."""

    def __init__(self, src: object, limit: int, archive: str, entry: str) -> None:
        self._src = src
        self._left = limit
        self._archive = archive
        self._entry = entry

    def read(self, size: int = _CHUNK) -> bytes:
        data: bytes = self._src.read(min(size, self._left + 1) if size > 0 else self._left + 1)  # type: ignore[attr-defined]
        self._left -= len(data)
        if self._left < 0:
            raise _fail(self._archive, self._entry, "unpacks to more than its header declares")
        return data
