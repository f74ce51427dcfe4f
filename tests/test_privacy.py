"""Masking of personal data (gis_grid.privacy): patterns, short and odd inputs, arrays."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gis_grid.privacy import (
    MASK,
    PERSONAL_FIELDS,
    mask_address,
    mask_id_number,
    mask_name,
    mask_phone,
    redact_text,
)

ALL = [mask_id_number, mask_phone, mask_name, mask_address, redact_text]


# --- ID numbers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("11010519491231002X", "110***********002X"),  # GB 11643 example number
        ("511703195012208759", "511***********8759"),
        ("110105491231002", "110********1002"),  # first-generation, 15 digits
        (" 11010519491231002X ", "110***********002X"),  # whitespace trimmed
        ("11010519", "********"),  # too short to show 3 + 4: masked completely
        ("1234567", "*******"),
        ("1", "*"),
        ("", ""),
    ],
)
def test_mask_id_number(value, expected):
    assert mask_id_number(value) == expected


def test_mask_id_number_hides_the_birth_date():
    masked = mask_id_number("11010519491231002X")
    assert "19491231" not in masked
    assert len(masked) == 18


# --- phones -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("13812341234", "138****1234"),
        ("0818-2345678", "081*****5678"),
        ("+86 13812341234", "+86********1234"),
        ("12345678", "********"),  # a 3 + 4 reveal would hide a single digit
        ("12345", "*****"),
        ("", ""),
    ],
)
def test_mask_phone(value, expected):
    assert mask_phone(value) == expected


# --- names ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("张小明", "张*明"),
        ("李四", "李*"),
        ("欧阳小明", "欧**明"),
        ("张", "*"),
        ("阿依古丽·买买提", "阿***·**提"),  # the separator stays, the parts are hidden
        ("John Smith", "J*** ****h"),
        ("  王刚 ", "王*"),
        ("", ""),
    ],
)
def test_mask_name(value, expected):
    assert mask_name(value) == expected


def test_masked_names_never_equal_the_name():
    for name in ["张三", "李小龙", "司马相如", "王", "Ng"]:
        assert mask_name(name) != name
        assert MASK in mask_name(name)


# --- addresses and free text ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("赵家镇利群社区1组12号", "赵家镇利群社区1组***"),
        ("达川区通川路88号", "达川区通川路***"),
        ("石垭村", "石**"),  # nothing after the unit: the second half hidden
        ("No.7 Hill Road", "No.7 Hi*******"),
        ("", ""),
    ],
)
def test_mask_address(value, expected):
    assert mask_address(value) == expected


def test_redact_text_masks_id_numbers_and_mobiles_only():
    text = "张三(11010519491231002X)来电13812341234，订单号 1234567890123456789 不变"
    out = redact_text(text)
    assert "110***********002X" in out
    assert "138****1234" in out
    assert "1234567890123456789" in out  # 19 digits: neither an ID nor a phone
    assert "11010519491231002X" not in out and "13812341234" not in out
    assert redact_text("桂花村防汛积水点巡查") == "桂花村防汛积水点巡查"


# --- None, missing values, arrays -------------------------------------------------------------


@pytest.mark.parametrize("func", ALL)
def test_none_stays_none(func):
    assert func(None) is None


@pytest.mark.parametrize("func", ALL)
def test_arrays_are_masked_element_wise(func):
    values = ["11010519491231002X", None, "13812341234"]
    out = func(values)
    assert isinstance(out, np.ndarray)
    assert out.shape == (3,)
    assert out[1] is None
    assert out[0] == func(values[0]) and out[2] == func(values[2])


def test_series_keep_their_index():
    series = pd.Series(["13812341234", None, "15000000000"], index=[10, 20, 30])
    out = mask_phone(series)
    assert isinstance(out, pd.Series)
    assert list(out.index) == [10, 20, 30]
    assert out[10] == "138****1234" and out[30] == "150****0000"
    assert pd.isna(out[20])


def test_two_dimensional_arrays():
    out = mask_name(np.array([["张小明", "李四"], ["王", None]], dtype=object))
    assert out.tolist() == [["张*明", "李*"], ["*", None]]


def test_non_string_elements_are_treated_as_missing():
    # An integer "phone" read from a spreadsheet must not pass through unmasked.
    out = mask_phone([13812341234, "13812341234"])
    assert out[0] is None and out[1] == "138****1234"


def test_every_personal_field_has_a_masking_function():
    assert set(PERSONAL_FIELDS) >= {
        ("residents", "name"),
        ("residents", "id_number"),
        ("residents", "phone"),
        ("members", "phone"),
        ("households", "address"),
    }
    assert all(callable(f) for f in PERSONAL_FIELDS.values())
