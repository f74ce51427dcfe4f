"""Grid codes (west→east, north→south) and GB 11643 resident ID numbers."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from shapely import box

from gis_grid.codes import (
    grid_code,
    grid_codes,
    grid_sequence,
    id_check_character,
    id_number_problems,
    is_valid_id_number,
    split_grid_code,
)
from gis_grid.errors import GridError

VILLAGE = "511703109201"


def _with_check(first17: str) -> str:
    return first17 + id_check_character(first17)


class TestGridCodes:
    def test_grid_code_pads_sequence(self):
        assert grid_code(VILLAGE, 1) == "511703109201001"
        assert grid_code(VILLAGE, 999) == "511703109201999"

    @pytest.mark.parametrize("seq", [0, 1000, -1])
    def test_grid_code_refuses_out_of_range_sequence(self, seq):
        with pytest.raises(GridError, match="1-999"):
            grid_code(VILLAGE, seq)

    @pytest.mark.parametrize(
        "village", ["51170310920", "5117031092011", "51170310920a", 511703109201]
    )
    def test_bad_village_code(self, village):
        with pytest.raises(GridError, match="12 digits"):
            grid_code(village, 1)

    def test_split_round_trips(self):
        assert split_grid_code(grid_code(VILLAGE, 42)) == (VILLAGE, 42)
        with pytest.raises(GridError, match="000"):
            split_grid_code(VILLAGE + "000")
        with pytest.raises(GridError, match="15 digits"):
            split_grid_code("12345")

    def test_three_by_three_block_reads_like_a_page(self):
        # cells given in scrambled order; expect rows north→south, west→east in a row
        cells = {
            (col, row): box(
                107 + col * 0.01, 30.9 - row * 0.01, 107.01 + col * 0.01, 30.91 - row * 0.01
            )
            for col in range(3)
            for row in range(3)
        }
        keys = [(2, 1), (0, 0), (1, 2), (2, 0), (0, 2), (1, 0), (0, 1), (2, 2), (1, 1)]
        seq = grid_sequence([cells[k] for k in keys])
        expected = [row * 3 + col + 1 for col, row in keys]
        assert seq.tolist() == expected

    def test_ragged_rows_use_median_height_bands(self):
        # the eastern cell of the top row sits slightly lower (less than a grid height):
        # it still belongs to the top row and is numbered after its western neighbour
        west = box(0, 1, 1, 2)
        east = box(1, 0.8, 2, 1.8)
        south = box(0, 0, 1, 0.8)
        assert grid_sequence([south, east, west]).tolist() == [3, 2, 1]

    def test_codes_in_input_order_and_unique(self):
        rng = np.random.default_rng(7)
        xs, ys = rng.uniform(107, 107.1, 40), rng.uniform(30.9, 31.0, 40)
        geoms = shapely.buffer(shapely.points(xs, ys), 0.002)
        codes = grid_codes(VILLAGE, geoms)
        assert len(set(codes.tolist())) == 40
        assert all(c.startswith(VILLAGE) and len(c) == 15 for c in codes.tolist())
        assert sorted(int(c[-3:]) for c in codes.tolist()) == list(range(1, 41))

    def test_multipolygon_uses_point_on_surface(self):
        # an L-shaped village grid whose centroid lies outside it still gets a sensible row
        ell = shapely.union(box(0, 0, 3, 1), box(0, 1, 1, 3))
        north = box(1, 2, 3, 3)
        assert grid_sequence([ell, north]).tolist()[1] in (1, 2)

    def test_empty_and_too_many(self):
        assert grid_sequence([]).size == 0
        with pytest.raises(GridError, match="no geometry"):
            grid_sequence([box(0, 0, 1, 1), shapely.Polygon()])
        with pytest.raises(GridError, match="at most 999"):
            grid_sequence([box(i, 0, i + 1, 1) for i in range(1000)])


class TestIdNumbers:
    def test_standard_example(self):
        # the worked example of GB 11643-1999
        assert id_check_character("11010519491231002") == "X"
        assert is_valid_id_number("11010519491231002X")

    @pytest.mark.parametrize(
        ("first17", "check"),
        [("44052418800101001", "4"), ("51170319900307123", None), ("11010120000101000", None)],
    )
    def test_check_character_mod_11_2(self, first17, check):
        # recompute the rule from its definition: sum(a_i * 2^(17-i)) mod 11 -> table
        total = sum(int(d) * pow(2, 17 - i, 11) for i, d in enumerate(first17))
        expected = "10X98765432"[total % 11]
        assert id_check_character(first17) == expected
        if check is not None:
            assert expected == check

    def test_wrong_check_character(self):
        assert not is_valid_id_number("110105194912310021")
        assert (
            id_number_problems(["110105194912310021"])[0]
            == "check character should be 'X', not '1'"
        )

    @pytest.mark.parametrize(
        "value",
        ["11010519491231002x", "1101051949123100", "11010519491231002XX", "A1010519491231002X", ""],
    )
    def test_bad_format(self, value):
        assert not is_valid_id_number(value)

    @pytest.mark.parametrize("birth", ["19990230", "20991231", "18000101", "19991301"])
    def test_bad_birth_date(self, birth):
        number = _with_check(f"511703{birth}123")
        assert not is_valid_id_number(number)
        assert "birth date" in id_number_problems([number])[0]

    def test_vectorised_with_missing(self):
        good = _with_check("51170319900307123")
        problems = id_number_problems([good, None, np.nan, "123", good])
        assert problems.tolist()[0] is None and problems.tolist()[4] is None
        assert problems.tolist()[1:3] == ["missing", "missing"]
        assert "17 digits" in problems[3]

    def test_refuses_non_digits(self):
        with pytest.raises(GridError):
            id_check_character("1101051949123100X")
