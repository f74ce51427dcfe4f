"""Exceptions raised by the core library.

Every error the library raises on bad input derives from :class:`GridError`, so the service
can map the whole family to a 4xx answer in one place. Messages say what was wrong, where
(file, feature, field, coordinate) and what to do about it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

__all__ = [
    "CRSError",
    "ConflictError",
    "CoordinateError",
    "DataFileError",
    "DuplicateCodeError",
    "EncodingError",
    "GeometryError",
    "GridError",
    "NotFoundError",
    "PreconditionFailedError",
    "PreconditionRequiredError",
    "RuleError",
    "WorkflowError",
]


class GridError(Exception):
    """Root of every error the platform raises on bad input or bad state.

    Parameters
    ----------
    message
        What was wrong, where, and what to do.
    problems
        Optional machine-readable details, one mapping per problem: e.g. the failed
        eligibility rules of a candidate, or the location (``lon``, ``lat``) of an overlap.
        The service returns them as ``problems`` beside ``detail``.
    """

    def __init__(self, message: str, problems: Sequence[Mapping[str, object]] = ()) -> None:
        super().__init__(message)
        self.problems: list[dict[str, object]] = [dict(p) for p in problems]


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


class ConflictError(GridError):
    """The request conflicts with the current state (e.g. a second appointed member)."""


class WorkflowError(ConflictError):
    """A workflow transition that is not allowed from the current state."""


class RuleError(GridError):
    """A rule of the measures is not met (e.g. article 6 eligibility); ``problems`` names each."""


class PreconditionFailedError(GridError):
    """``If-Match`` names a version that is no longer current (someone else changed it)."""


class PreconditionRequiredError(GridError):
    """An update of a versioned object came without ``If-Match``."""
