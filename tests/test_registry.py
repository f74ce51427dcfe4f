"""The registry library (gis_grid.registry) on a real PostGIS copy of the sample.

Each database test runs in a transaction that is rolled back, so the module's copy stays the
sample. The HTTP side is in tests/test_api_registry_edit.py.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from gis_grid.codes import id_check_character
from gis_grid.errors import ConflictError, CoordinateError, DuplicateCodeError, RuleError
from gis_grid.registry import (
    add_patrol,
    add_resident,
    create_household,
    create_site,
    delete_resident,
    place_point,
    to_cgcs2000,
    update_household,
)
from gis_grid.registry.residents import id_number_facts, resident_problems

GRID = "511703109001001"


def valid_id(birth: str, seq: str) -> str:
    first = f"511703{birth}{seq}"
    return first + id_check_character(first)


# --- pure checks ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lon", "lat", "rule"),
    [
        (math.nan, 31.2, "finite"),
        (107.4, math.inf, "finite"),
        (31.2, 107.4, "swapped"),
        (2.35, 48.85, "in_china"),
        (-107.4, 31.2, "in_china"),
    ],
)
def test_to_cgcs2000_refuses_bad_coordinates(lon, lat, rule):
    with pytest.raises(CoordinateError) as caught:
        to_cgcs2000(lon, lat, field="location")
    assert caught.value.problems[0]["rule"] == rule
    assert caught.value.problems[0]["field"] == "location"
    assert "location" in str(caught.value)


def test_to_cgcs2000_converts_gcj02_and_bd09():
    lon, lat = to_cgcs2000(107.409, 30.962, "gcj02")
    assert -0.006 < lon - 107.409 < -0.003  # about 450 m west
    blon, blat = to_cgcs2000(107.409, 30.962, "bd09")
    assert (blon, blat) != (lon, lat)
    assert to_cgcs2000(107.409, 30.962, "wgs84") == (107.409, 30.962)


def test_id_number_facts_and_problems():
    number = valid_id("19850612", "123")
    assert id_number_facts(number) == (dt.date(1985, 6, 12), "male")
    assert resident_problems({"name": "张三", "id_number": number}) == []
    bad_check = number[:-1] + ("0" if number[-1] != "0" else "1")
    impossible = "511703199902301234"
    future = valid_id(f"{dt.date.today().year + 1}0101", "001")
    for value, words in (
        (bad_check, "check character"),
        (impossible, "19990230"),
        (future, "birth date"),
    ):
        (problem,) = resident_problems({"name": "张三", "id_number": value})
        assert problem["field"] == "id_number" and words in str(problem["message"])
        assert value not in str(problem)  # masked
    problems = resident_problems(
        {
            "name": "",
            "id_number": number,
            "gender": "female",
            "birth_date": dt.date(1985, 6, 13),
            "phone": "123",
            "relation": "朋友",
            "categories": ["vip", "returnee"],
        }
    )
    assert [p["field"] for p in problems] == [
        "name",
        "birth_date",
        "gender",
        "phone",
        "relation",
        "categories",
    ]


# --- database -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def engine(writable_database_url) -> Iterator[sa.Engine]:
    eng = sa.create_engine(writable_database_url)
    yield eng
    eng.dispose()


@pytest.fixture
def conn(engine) -> Iterator[sa.Connection]:
    with engine.connect() as connection:
        transaction = connection.begin()
        try:
            yield connection
        finally:
            transaction.rollback()


def centre(conn: sa.Connection, grid: str) -> tuple[float, float]:
    row = conn.execute(
        sa.text(
            "SELECT ST_X(c), ST_Y(c) FROM (SELECT (ST_MaximumInscribedCircle(geom)).center AS c "
            "FROM grids WHERE code = :g AND valid_to IS NULL) s"
        ),
        {"g": grid},
    ).one()
    return float(row[0]), float(row[1])


@pytest.mark.postgis
def test_point_in_a_gap_is_stored_with_the_nearest_grid(conn):
    lon, lat = centre(conn, GRID)
    # Retire the grid: its area becomes a gap of the plan (village still covers it).
    conn.execute(
        sa.text("UPDATE grids SET valid_to = now() WHERE code = :g AND valid_to IS NULL"),
        {"g": GRID},
    )
    saved = create_household(conn, code="GAP-1", people=2, lon=lon, lat=lat, actor="t")
    placement = saved.placement
    assert placement.grid_code is None and not placement.in_grid
    assert placement.village_code == GRID[:12]
    assert placement.nearest_grid is not None and placement.nearest_grid != GRID
    assert placement.distance_m is not None and placement.distance_m > 0
    row = conn.execute(
        sa.text("SELECT grid_code, village_code FROM households WHERE code = 'GAP-1'")
    ).one()
    assert row == (None, GRID[:12])
    distance = conn.scalar(
        sa.text(
            "SELECT min(ST_Distance(ST_Transform(g.geom, 4545), ST_Transform(h.geom, 4545))) "
            "FROM grids g, households h WHERE g.valid_to IS NULL AND h.code = 'GAP-1'"
        )
    )
    assert placement.distance_m == pytest.approx(distance, abs=0.1)


@pytest.mark.postgis
def test_point_outside_every_village_is_refused(conn):
    with pytest.raises(CoordinateError) as caught:
        place_point(conn, 116.4, 39.9)
    assert caught.value.problems[0]["rule"] == "in_village"
    assert caught.value.problems[0]["distance_m"] > 500_000
    described = place_point(conn, 116.4, 39.9, refuse=False)
    assert described.village_code is None and described.grid_code is None


@pytest.mark.postgis
def test_people_follow_registered_residents(conn):
    lon, lat = centre(conn, GRID)
    create_household(conn, code="PPL-1", people=1, lon=lon, lat=lat, actor="t")
    first = add_resident(
        conn, "PPL-1", {"name": "甲一", "id_number": valid_id("19800101", "011")}, actor="t"
    )
    assert (first.household.people, first.household.residents) == (1, 1)
    second = add_resident(
        conn, "PPL-1", {"name": "甲二", "id_number": valid_id("19820101", "022")}, actor="t"
    )
    assert (second.household.people, second.household.residents) == (2, 2)  # grew
    with pytest.raises(RuleError) as caught:
        update_household(conn, "PPL-1", {"people": 1}, actor="t")
    assert caught.value.problems[0]["field"] == "people"
    update_household(conn, "PPL-1", {"people": 4}, actor="t")
    third = add_resident(
        conn, "PPL-1", {"name": "甲三", "id_number": valid_id("20100101", "033")}, actor="t"
    )
    assert (third.household.people, third.household.residents) == (4, 3)  # filled a declared place
    gone = delete_resident(conn, third.resident.id, actor="t")
    assert (gone.household.people, gone.household.residents) == (3, 2)
    with pytest.raises(DuplicateCodeError):
        add_resident(
            conn, "PPL-1", {"name": "甲四", "id_number": valid_id("19800101", "011")}, actor="t"
        )
    add_resident(
        conn,
        "PPL-1",
        {"name": "甲五", "id_number": valid_id("19800101", "051"), "relation": "户主"},
        actor="t",
    )
    with pytest.raises(ConflictError):
        add_resident(
            conn,
            "PPL-1",
            {"name": "甲六", "id_number": valid_id("19800101", "061"), "relation": "户主"},
            actor="t",
        )


@pytest.mark.postgis
def test_serious_patrol_refused_when_the_default_task_type_is_not_approved(conn):
    lon, lat = centre(conn, GRID)
    create_site(
        conn, "pollution", code="PP-T", name="测试", kind="sewage", lon=lon, lat=lat, actor="t"
    )
    conn.execute(sa.text("UPDATE task_types SET approval_state = 'rejected' WHERE code = 'T03'"))
    at = dt.datetime.now(dt.UTC)
    with pytest.raises(RuleError) as caught:
        add_patrol(
            conn, "pollution", "PP-T", patrolled_at=at, finding="黑水", serious=True, actor="t"
        )
    assert caught.value.problems[0]["field"] == "task_type_code"
    record = add_patrol(
        conn,
        "pollution",
        "PP-T",
        patrolled_at=at,
        finding="黑水",
        serious=True,
        task_type_code="T04",
        actor="t",
    )
    assert record.task_type_code == "T04" and record.grid_code == GRID
    with pytest.raises(RuleError):
        add_patrol(
            conn, "pollution", "PP-T", patrolled_at=at.replace(tzinfo=None), finding="x", actor="t"
        )
