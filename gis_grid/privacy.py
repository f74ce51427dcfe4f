"""Masking of personal data (PIPL; article 9 of the Zhaojia measures: 不得泄露个人隐私).

Every value that identifies a person goes through one of these functions before it leaves the
server, for every caller: resident ID numbers (``110***********002X``: first 3 and last 4
characters visible), phone numbers (``138****1234``), personal names (``张*明``, ``李*``),
household addresses (the door number hidden) and ID numbers or phones written into free text.
Unmasking is a separate, audited act that the security layer will add; nothing here reveals
a masked value.

Each function takes one value (``str`` or ``None``) or an array-like of them and then works
element-wise (a ``pandas.Series`` keeps its index), so notebooks can mask a whole column:
``frame["phone"] = mask_phone(frame["phone"])``. ``None`` and missing values stay missing.

A value too short for its pattern is masked completely rather than half revealed: showing the
first 3 and last 4 characters of an 8-character "ID number" would reveal nearly all of it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, overload

import numpy as np
import pandas as pd

__all__ = [
    "MASK",
    "PERSONAL_FIELDS",
    "mask_address",
    "mask_id_number",
    "mask_name",
    "mask_phone",
    "redact_text",
]

#: The character that replaces each hidden character.
MASK = "*"

# Characters kept visible inside names: separators of multi-part names (阿依古丽·买买提,
# "John Smith") carry no identity and keep the masked value readable.
_NAME_SEPARATORS = frozenset(" ·•・.-")

# The last administrative part of an address that stays visible (组 = villagers' group);
# what follows (door, building, room numbers) is hidden.
_ADDRESS_UNIT = re.compile(r"(?:社区|组|社|村|队|街道|街|路|巷|弄|镇|乡)")

# ID numbers (18 or 15 characters) and mainland mobile numbers inside free text, not part of
# a longer run of digits.
_ID_IN_TEXT = re.compile(r"(?<![0-9A-Za-z])(?:[0-9]{17}[0-9Xx]|[0-9]{15})(?![0-9A-Za-z])")
_MOBILE_IN_TEXT = re.compile(r"(?<![0-9])1[3-9][0-9]{9}(?![0-9])")


def _mask_middle(text: str, *, head: int, tail: int, min_hidden: int) -> str:
    """Hide all but ``head`` leading and ``tail`` trailing characters.

    When fewer than ``min_hidden`` characters would be hidden, hide them all.
    """
    if len(text) - head - tail < min_hidden:
        return MASK * len(text)
    return text[:head] + MASK * (len(text) - head - tail) + text[len(text) - tail :]


def _id_number(value: str) -> str:
    text = value.strip()
    # 18-character (GB 11643-1999) and 15-character (first generation) numbers show 3 + 4.
    return _mask_middle(text, head=3, tail=4, min_hidden=8)


def _phone(value: str) -> str:
    text = value.strip()
    return _mask_middle(text, head=3, tail=4, min_hidden=4)


def _name(value: str) -> str:
    text = value.strip()
    letters = [i for i, ch in enumerate(text) if ch not in _NAME_SEPARATORS]
    if len(letters) <= 1:
        return MASK * len(text)
    # Keep the first character (the surname) and, for names of three or more characters,
    # the last; hide the rest: 张小明 -> 张*明, 李四 -> 李*, 欧阳小明 -> 欧**明.
    keep = {letters[0]} if len(letters) == 2 else {letters[0], letters[-1]}
    return "".join(ch if i in keep or ch in _NAME_SEPARATORS else MASK for i, ch in enumerate(text))


def _address(value: str) -> str:
    text = value.strip()
    units = list(_ADDRESS_UNIT.finditer(text))
    cut = units[-1].end() if units else len(text) // 2
    if cut >= len(text):
        # Nothing after the last unit (an address that is only "xx村"): hide its second half.
        cut = len(text) // 2
    return text[:cut] + MASK * (len(text) - cut)


def _text(value: str) -> str:
    masked = _ID_IN_TEXT.sub(lambda m: _id_number(m.group()), value)
    return _MOBILE_IN_TEXT.sub(lambda m: _phone(m.group()), masked)


@overload
def _elementwise(func: Callable[[str], str], value: str) -> str: ...
@overload
def _elementwise(func: Callable[[str], str], value: None) -> None: ...
@overload
def _elementwise(func: Callable[[str], str], value: Any) -> Any: ...
def _elementwise(func: Callable[[str], str], value: Any) -> Any:
    if value is None or isinstance(value, str):
        return None if value is None else func(value)
    if isinstance(value, pd.Series):
        return value.map(lambda v: func(str(v)) if isinstance(v, str) else None)
    items = np.asarray(value, dtype=object)
    out = np.empty(items.shape, dtype=object)
    for index, item in np.ndenumerate(items):
        out[index] = func(item) if isinstance(item, str) else None
    return out


@overload
def mask_id_number(value: str) -> str: ...
@overload
def mask_id_number(value: None) -> None: ...
@overload
def mask_id_number(value: Any) -> Any: ...
def mask_id_number(value: Any) -> Any:
    """Mask a resident ID number: the first 3 and last 4 characters stay visible.

    Parameters
    ----------
    value
        An ID number (18 or 15 characters), ``None``, or an array-like of them.

    Returns
    -------
    str, None, numpy.ndarray or pandas.Series
        The masked value(s), same length as the input; values shorter than 15 characters
        are masked completely.

    Examples
    --------
    >>> mask_id_number("11010519491231002X")
    '110***********002X'
    >>> mask_id_number("1234"), mask_id_number(None)
    ('****', None)
    """
    return _elementwise(_id_number, value)


@overload
def mask_phone(value: str) -> str: ...
@overload
def mask_phone(value: None) -> None: ...
@overload
def mask_phone(value: Any) -> Any: ...
def mask_phone(value: Any) -> Any:
    """Mask a phone number: the first 3 and last 4 characters stay visible.

    Parameters
    ----------
    value
        A phone number, ``None``, or an array-like of them.

    Returns
    -------
    str, None, numpy.ndarray or pandas.Series
        ``138****1234`` for a mobile number; numbers too short to hide at least 4
        characters are masked completely.

    Examples
    --------
    >>> mask_phone("13812341234")
    '138****1234'
    >>> mask_phone("12345")
    '*****'
    """
    return _elementwise(_phone, value)


@overload
def mask_name(value: str) -> str: ...
@overload
def mask_name(value: None) -> None: ...
@overload
def mask_name(value: Any) -> Any: ...
def mask_name(value: Any) -> Any:
    """Mask a personal name, keeping the first and (from three characters) last character.

    Parameters
    ----------
    value
        A name, ``None``, or an array-like of them. Separators of multi-part names
        (``·``, spaces) stay visible.

    Returns
    -------
    str, None, numpy.ndarray or pandas.Series
        ``张*明``, ``李*``, ``欧**明``; a one-character name becomes ``*``.

    Examples
    --------
    >>> mask_name("张小明"), mask_name("李四")
    ('张*明', '李*')
    """
    return _elementwise(_name, value)


@overload
def mask_address(value: str) -> str: ...
@overload
def mask_address(value: None) -> None: ...
@overload
def mask_address(value: Any) -> Any: ...
def mask_address(value: Any) -> Any:
    """Mask a household address after its last administrative unit (组, 村, 社区, 路 ...).

    Parameters
    ----------
    value
        An address, ``None``, or an array-like of them.

    Returns
    -------
    str, None, numpy.ndarray or pandas.Series
        The address with its door number hidden; without a recognised unit, its second
        half is hidden.

    Examples
    --------
    >>> mask_address("赵家镇利群社区1组12号")
    '赵家镇利群社区1组***'
    """
    return _elementwise(_address, value)


@overload
def redact_text(value: str) -> str: ...
@overload
def redact_text(value: None) -> None: ...
@overload
def redact_text(value: Any) -> Any: ...
def redact_text(value: Any) -> Any:
    """Mask ID numbers and mobile numbers written into free text (titles, notes).

    Parameters
    ----------
    value
        Free text, ``None``, or an array-like of them.

    Returns
    -------
    str, None, numpy.ndarray or pandas.Series
        The text with each 18/15-character ID number and 11-digit mobile number masked
        as by :func:`mask_id_number` and :func:`mask_phone`. Names in free text cannot be
        recognised reliably and are not changed: free text should not carry them.

    Examples
    --------
    >>> redact_text("来电 13812341234 反映噪音")
    '来电 138****1234 反映噪音'
    """
    return _elementwise(_text, value)


#: Personal columns of the registries and the function that masks each; the security layer
#: audits any read that bypasses them.
PERSONAL_FIELDS: dict[tuple[str, str], Callable[[Any], Any]] = {
    ("residents", "name"): mask_name,
    ("residents", "id_number"): mask_id_number,
    ("residents", "phone"): mask_phone,
    ("members", "phone"): mask_phone,
    ("households", "address"): mask_address,
    ("incidents", "title"): redact_text,
}
