"""Codes: grid codes and resident ID numbers.

Grid codes follow Beijing DB11 practice: 15 digits = 12-digit NBS village (community) code +
a 3-digit sequence number inside the village, numbered west→east, north→south.

Resident ID numbers follow GB 11643-1999: 6-digit address code, 8-digit birth date
(YYYYMMDD), 3-digit order number (odd for men), and a check character computed with
ISO 7064 MOD 11-2.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import shapely

from gis_grid.errors import GridError

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

__all__ = [
    "GRID_CODE_LENGTH",
    "VILLAGE_CODE_LENGTH",
    "grid_code",
    "grid_codes",
    "grid_sequence",
    "id_check_character",
    "id_number_problems",
    "is_valid_id_number",
    "split_grid_code",
]

VILLAGE_CODE_LENGTH = 12
GRID_CODE_LENGTH = 15
_MAX_SEQ = 999

_VILLAGE_RE = re.compile(r"[0-9]{12}")
_GRID_RE = re.compile(r"[0-9]{15}")

#: ISO 7064 MOD 11-2 weights of the first 17 characters (2^(17-i) mod 11).
_ID_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
#: Check character for remainders 0..10.
_ID_CHECK = np.array(list("10X98765432"))
_ID_FORMAT = r"[0-9]{17}[0-9X]"
#: Oldest birth year accepted (the first generation of ID cards, 1984, held people born
#: in the 1880s-1890s; anything earlier is a typo).
_MIN_BIRTH_YEAR = 1880


def _check_village_code(village_code: str) -> None:
    if not isinstance(village_code, str) or not _VILLAGE_RE.fullmatch(village_code):
        msg = (
            f"village code {village_code!r} is not 12 digits "
            "(6 county + 3 town + 3 village, NBS statistical division code)"
        )
        raise GridError(msg)


def grid_code(village_code: str, seq: int) -> str:
    """Return the 15-digit code of grid number ``seq`` in a village.

    Parameters
    ----------
    village_code
        12-digit NBS village or community code.
    seq
        Sequence number inside the village, 1-999.

    Returns
    -------
    str
        ``village_code`` followed by ``seq`` on 3 digits.

    Examples
    --------
    >>> grid_code("511703109201", 7)
    '511703109201007'
    """
    _check_village_code(village_code)
    if not 1 <= int(seq) <= _MAX_SEQ:
        msg = f"grid sequence number {seq} is outside 1-999 (3 digits in the grid code)"
        raise GridError(msg)
    return f"{village_code}{int(seq):03d}"


def split_grid_code(code: str) -> tuple[str, int]:
    """Split a grid code into its village code and sequence number.

    Parameters
    ----------
    code
        15-digit grid code.

    Returns
    -------
    tuple of (str, int)
        ``(village_code, seq)``.

    Examples
    --------
    >>> split_grid_code("511703109201007")
    ('511703109201', 7)
    """
    if not isinstance(code, str) or not _GRID_RE.fullmatch(code):
        msg = f"grid code {code!r} is not 15 digits (12-digit village code + 3-digit number)"
        raise GridError(msg)
    seq = int(code[VILLAGE_CODE_LENGTH:])
    if seq == 0:
        msg = f"grid code {code!r} has sequence number 000; numbers start at 001"
        raise GridError(msg)
    return code[:VILLAGE_CODE_LENGTH], seq


def grid_sequence(geometries: ArrayLike) -> NDArray[np.int64]:
    """Sequence numbers of grids inside one village: west→east within rows, rows north→south.

    Rows are latitude bands one median grid height tall, counted down from the northernmost
    representative point: a grid belongs to band ``floor((y_north - y) / h)``, where ``y`` is
    the latitude of its representative point (:func:`shapely.point_on_surface`, always inside
    the grid, unlike a centroid) and ``h`` the median height of the grids' bounding boxes.
    Grids of similar size thus fall into rows as a reader of a map would see them; inside a
    band they are numbered by the representative point's longitude. Ties (same band and
    longitude) keep the input order.

    Parameters
    ----------
    geometries
        Polygons of one village, in lon/lat (EPSG:4490).

    Returns
    -------
    ndarray of int
        1-based sequence number of each input geometry, in input order.

    Raises
    ------
    GridError
        If a geometry is missing or empty, or there are more than 999 grids.

    Examples
    --------
    >>> from shapely import box
    >>> # two rows: north row (y 1-2) west and east, south row (y 0-1) west and east
    >>> grid_sequence([box(1, 0, 2, 1), box(0, 1, 1, 2), box(0, 0, 1, 1), box(1, 1, 2, 2)])
    array([4, 1, 3, 2])
    """
    geoms = np.atleast_1d(np.asarray(geometries, dtype=object))
    n = geoms.size
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if n > _MAX_SEQ:
        msg = f"{n} grids in one village: the 3-digit sequence allows at most {_MAX_SEQ}"
        raise GridError(msg)
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    if missing.any():
        first = int(np.flatnonzero(missing)[0])
        msg = f"grid {first} has no geometry (missing or empty): it cannot be numbered"
        raise GridError(msg)
    points = shapely.point_on_surface(geoms)
    x = shapely.get_x(points)
    y = shapely.get_y(points)
    bounds = shapely.bounds(geoms)
    height = float(np.median(bounds[:, 3] - bounds[:, 1]))
    band = np.floor((y.max() - y) / height) if height > 0 else np.zeros(n)
    order = np.lexsort((np.arange(n), x, band))  # last key is primary
    seq = np.empty(n, dtype=np.int64)
    seq[order] = np.arange(1, n + 1)
    return seq


def grid_codes(village_code: str, geometries: ArrayLike) -> NDArray[np.str_]:
    """Give the standard 15-digit codes of one village's grids (see :func:`grid_sequence`).

    Parameters
    ----------
    village_code
        12-digit NBS village or community code.
    geometries
        The village's grid polygons, in lon/lat (EPSG:4490).

    Returns
    -------
    ndarray of str
        One code per input geometry, in input order.

    Examples
    --------
    >>> from shapely import box
    >>> grid_codes("511703109201", [box(1, 0, 2, 1), box(0, 0, 1, 1)]).tolist()
    ['511703109201002', '511703109201001']
    """
    _check_village_code(village_code)
    seq = grid_sequence(geometries)
    return np.char.add(village_code, np.char.zfill(seq.astype(str), 3))


def id_number_problems(values: ArrayLike) -> NDArray[np.object_]:
    """Why each resident ID number is invalid (GB 11643), vectorised.

    Checks, in order: 18 characters of which the first 17 are digits and the last a digit
    or capital ``X``; a real birth date between 1880 and today; the ISO 7064 MOD 11-2 check
    character.

    Parameters
    ----------
    values
        ID numbers (strings; ``None``/NaN count as missing and are reported).

    Returns
    -------
    ndarray of object
        ``None`` where the number is valid, else a short reason.

    Examples
    --------
    >>> id_number_problems(["11010519491231002X", "110105194912310021", "123"]).tolist()
    [None, "check character should be 'X', not '1'", 'not 17 digits followed by a digit or X']
    """
    series = pd.Series(np.atleast_1d(np.asarray(values, dtype=object)), dtype="string")
    problems = np.full(len(series), None, dtype=object)
    well_formed = series.str.fullmatch(_ID_FORMAT).fillna(value=False).to_numpy(dtype=bool)
    problems[~well_formed] = "not 17 digits followed by a digit or X"
    problems[series.isna().to_numpy()] = "missing"
    if not well_formed.any():
        return problems
    good = series[well_formed]
    idx = np.flatnonzero(well_formed)

    births = pd.to_datetime(good.str.slice(6, 14), format="%Y%m%d", errors="coerce")
    today = pd.Timestamp(dt.datetime.now(tz=dt.UTC).date())
    bad_birth = (births.isna() | (births.dt.year < _MIN_BIRTH_YEAR) | (births > today)).to_numpy(
        dtype=bool
    )
    birth_text = good.str.slice(6, 14).to_numpy(dtype=object)
    problems[idx[bad_birth]] = [
        f"birth date {b} is not a real date between {_MIN_BIRTH_YEAR} and today"
        for b in birth_text[bad_birth]
    ]

    raw = np.frombuffer(good.to_numpy(dtype="S18").tobytes(), dtype=np.uint8).reshape(-1, 18)
    digits = raw[:, :17].astype(np.int64) - ord("0")
    expected = _ID_CHECK[(digits @ _ID_WEIGHTS) % 11]
    actual = raw[:, 17].view("S1").astype(str).ravel()
    bad_check = (expected != actual) & ~bad_birth
    problems[idx[bad_check]] = [
        f"check character should be '{e}', not '{a}'"
        for e, a in zip(expected[bad_check].tolist(), actual[bad_check].tolist(), strict=True)
    ]
    return problems


def id_check_character(first17: str) -> str:
    """Compute the GB 11643 check character (ISO 7064 MOD 11-2) of the first 17 digits.

    Parameters
    ----------
    first17
        The first 17 digits of an ID number.

    Returns
    -------
    str
        One of ``0123456789X``.

    Examples
    --------
    >>> id_check_character("11010519491231002")
    'X'
    """
    if not isinstance(first17, str) or not re.fullmatch(r"[0-9]{17}", first17):
        msg = f"{first17!r} is not 17 digits"
        raise GridError(msg)
    digits = np.frombuffer(first17.encode("ascii"), dtype=np.uint8).astype(np.int64) - ord("0")
    return str(_ID_CHECK[int(digits @ _ID_WEIGHTS) % 11])


def is_valid_id_number(value: str) -> bool:
    """Whether ``value`` is a valid 18-character resident ID number (GB 11643).

    Parameters
    ----------
    value
        The ID number; the check character ``X`` must be upper case.

    Returns
    -------
    bool
        True if the format, the birth date and the check character are right.

    Examples
    --------
    >>> is_valid_id_number("11010519491231002X")
    True
    >>> is_valid_id_number("11010519491231002x")
    False
    """
    return id_number_problems([value])[0] is None
