"""Exceptions raised by the core library.

Every error the library raises on bad input derives from :class:`GridError`, so the service
can map the whole family to a 4xx answer in one place. Messages say what was wrong, where
(file, feature, field, coordinate) and what to do about it.
"""

from __future__ import annotations

__all__ = [
    "CRSError",
    "CoordinateError",
    "DataFileError",
    "DuplicateCodeError",
    "EncodingError",
    "GeometryError",
    "GridError",
    "NotFoundError",
]


class GridError(Exception):
    """Root of every error the platform raises on bad input or bad state."""


class DataFileError(GridError):
    """A data file cannot be read or has the wrong structure (missing field, unknown format)."""


class CRSError(GridError):
    """A coordinate reference system is missing, unknown, or not the one expected."""


class CoordinateError(GridError):
    """Coordinates lie outside the expected range (e.g. outside China, or lat/lon swapped)."""


class GeometryError(GridError):
    """A geometry is invalid, empty or of the wrong type."""


class EncodingError(GridError):
    """Text in a file cannot be decoded with the declared or detected encoding."""


class DuplicateCodeError(GridError):
    """Two features carry the same code where codes must be unique."""


class NotFoundError(GridError):
    """A requested object (town, village, grid, layer) does not exist."""
