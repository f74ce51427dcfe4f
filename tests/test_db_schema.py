"""The database itself refuses bad rows: constraints in PostGIS, not only application checks."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sample_factory import clean_tables
from sqlalchemy.engine import URL, Connection, Engine

from gis_grid.codes import id_check_character
from gis_grid.db import migrate
from gis_grid.security.crypto import Keys, seal

pytestmark = pytest.mark.postgis

DISTRICT, TOWN, VILLAGE = "511703", "511703109", "511703109201"
SQUARE = "MULTIPOLYGON(((107.40 30.96, 107.41 30.96, 107.41 30.97, 107.40 30.97, 107.40 30.96)))"
BOWTIE = "MULTIPOLYGON(((107.40 30.96, 107.41 30.97, 107.41 30.96, 107.40 30.97, 107.40 30.96)))"


@pytest.fixture(scope="module")
def migrated(database_url: URL, engine: Engine) -> Engine:
    migrate.upgrade(database_url)
    clean_tables(engine)  # other modules share the session database
    return engine


@pytest.fixture
def conn(migrated: Engine) -> Iterator[Connection]:
    """A connection with a district, town and village, rolled back after the test."""
    with migrated.connect() as connection:
        trans = connection.begin()
        params = {"d": DISTRICT, "t": TOWN, "v": VILLAGE, "g": SQUARE}
        for sql in (
            "INSERT INTO districts (code, name) VALUES (:d, '达川区')",
            "INSERT INTO towns (code, name, district_code, geom) "
            "VALUES (:t, '赵家镇', :d, ST_GeomFromText(:g, 4490))",
            "INSERT INTO villages (code, name, town_code, kind, geom) "
            "VALUES (:v, '利群社区', :t, 'community', ST_GeomFromText(:g, 4490))",
        ):
            connection.execute(sa.text(sql), params)
        yield connection
        trans.rollback()


def _refused(conn: Connection, sql: str, params: dict[str, object], match: str) -> None:
    """Run ``sql`` in a savepoint and require the database to refuse it with ``match``."""
    with pytest.raises(sa.exc.DBAPIError, match=match), conn.begin_nested():
        conn.execute(sa.text(sql), params)


INSERT_GRID = (
    "INSERT INTO grids (code, village_code, seq, version, valid_from, valid_to, geom) "
    "VALUES (:code, :village, :seq, :version, :valid_from, :valid_to, ST_GeomFromText(:wkt, :srid))"
)


def _grid(**overrides: object) -> dict[str, object]:
    params: dict[str, object] = {
        "code": VILLAGE + "001",
        "village": VILLAGE,
        "seq": 1,
        "version": 1,
        "valid_from": "2024-01-01T00:00:00+08:00",
        "valid_to": None,
        "wkt": SQUARE,
        "srid": 4490,
    }
    params.update(overrides)
    return params


def test_valid_grid_accepted(conn):
    conn.execute(sa.text(INSERT_GRID), _grid())
    assert conn.scalar(sa.text("SELECT count(*) FROM grids")) == 1


def test_invalid_polygon_refused(conn):
    _refused(conn, INSERT_GRID, _grid(wkt=BOWTIE), "ck_grids_geom_valid")


def test_empty_polygon_refused(conn):
    _refused(conn, INSERT_GRID, _grid(wkt="MULTIPOLYGON EMPTY"), "ck_grids_geom_valid")


def test_wrong_srid_refused(conn):
    _refused(
        conn, INSERT_GRID, _grid(srid=4326), r"SRID \(4326\) does not match column SRID \(4490\)"
    )


def test_wrong_geometry_type_refused(conn):
    polygon = SQUARE.replace("MULTIPOLYGON(((", "POLYGON((").replace(")))", "))")
    _refused(conn, INSERT_GRID, _grid(wkt=polygon), "does not match column type")


def test_grid_outside_china_refused(conn):
    far = "MULTIPOLYGON(((2.30 48.85, 2.31 48.85, 2.31 48.86, 2.30 48.85)))"
    _refused(conn, INSERT_GRID, _grid(wkt=far), "ck_grids_geom_in_china")


def test_grid_code_must_extend_its_village_code(conn):
    _refused(conn, INSERT_GRID, _grid(code="511703109202001"), "ck_grids_code_in_village")
    _refused(conn, INSERT_GRID, _grid(code=VILLAGE + "002"), "ck_grids_seq")
    _refused(conn, INSERT_GRID, _grid(code="51170310920100A"), "ck_grids_code_format")


def test_two_current_grids_with_same_code_refused(conn):
    conn.execute(sa.text(INSERT_GRID), _grid())
    # a second *current* row: both the partial unique index and the exclusion constraint
    # (two open-ended intervals always overlap) object; which fires first is up to PostgreSQL
    second = _grid(version=2, valid_from="2025-01-01T00:00:00+08:00")
    _refused(conn, INSERT_GRID, second, "uq_grids_current_code|ex_grids_code_validity")


def test_new_version_keeps_history(conn):
    conn.execute(sa.text(INSERT_GRID), _grid())
    change = "2025-03-01T00:00:00+08:00"
    conn.execute(
        sa.text("UPDATE grids SET valid_to = :t WHERE code = :c AND valid_to IS NULL"),
        {"t": change, "c": VILLAGE + "001"},
    )
    smaller = (
        "MULTIPOLYGON(((107.40 30.96, 107.405 30.96, 107.405 30.97, 107.40 30.97, 107.40 30.96)))"
    )
    conn.execute(sa.text(INSERT_GRID), _grid(version=2, valid_from=change, wkt=smaller))

    rows = conn.execute(
        sa.text("SELECT version, valid_to IS NULL FROM grids ORDER BY version")
    ).all()
    assert rows == [(1, False), (2, True)]
    as_of = (
        "SELECT version FROM grids WHERE code = :c "
        "AND tstzrange(valid_from, valid_to) @> CAST(:at AS timestamptz)"
    )
    assert (
        conn.scalar(sa.text(as_of), {"c": VILLAGE + "001", "at": "2024-06-01T00:00:00+08:00"}) == 1
    )
    assert (
        conn.scalar(sa.text(as_of), {"c": VILLAGE + "001", "at": "2025-06-01T00:00:00+08:00"}) == 2
    )


def test_overlapping_validity_refused(conn):
    conn.execute(sa.text(INSERT_GRID), _grid(valid_to="2025-03-01T00:00:00+08:00"))
    # an old version that overlaps the first one in time (neither is current)
    overlapping = _grid(
        version=2, valid_from="2024-06-01T00:00:00+08:00", valid_to="2025-06-01T00:00:00+08:00"
    )
    _refused(conn, INSERT_GRID, overlapping, "ex_grids_code_validity")


def test_validity_must_end_after_start(conn):
    bad = _grid(valid_from="2025-01-01T00:00:00+08:00", valid_to="2024-01-01T00:00:00+08:00")
    _refused(conn, INSERT_GRID, bad, "ck_grids_validity")


INSERT_HOUSEHOLD = (
    "INSERT INTO households (code, village_code, people, geom) "
    "VALUES (:code, :village, :people, ST_SetSRID(ST_MakePoint(:x, :y), 4490)) RETURNING id"
)


@pytest.mark.parametrize(("x", "y"), [(30.96, 107.40), (2.35, 48.85), (140.0, 35.0)])
def test_point_outside_china_refused(conn, x, y):
    params = {"code": "H1", "village": VILLAGE, "people": 3, "x": x, "y": y}
    _refused(conn, INSERT_HOUSEHOLD, params, "ck_households_geom_in_china")


def test_negative_people_refused(conn):
    params = {"code": "H1", "village": VILLAGE, "people": -1, "x": 107.405, "y": 30.965}
    _refused(conn, INSERT_HOUSEHOLD, params, "ck_households_people_non_negative")


def test_incident_point_outside_china_refused(conn):
    conn.execute(sa.text("INSERT INTO task_types (code, name) VALUES ('T1', '巡查')"))
    sql = (
        "INSERT INTO incidents (task_type_code, title, geom) "
        "VALUES ('T1', 'x', ST_SetSRID(ST_MakePoint(:x, :y), 4490))"
    )
    _refused(conn, sql, {"x": 0.0, "y": 0.0}, "ck_incidents_geom_in_china")


def test_resident_id_number_checked(conn):
    household = conn.scalar(
        sa.text(INSERT_HOUSEHOLD),
        {"code": "H1", "village": VILLAGE, "people": 2, "x": 107.405, "y": 30.965},
    )
    # Encrypted at rest: the database holds ciphertext, a lookup hash and the masked form;
    # it checks that the three come together, the hash's and the masked form's formats,
    # and that one person is registered once (the hash is unique).
    sql = (
        "INSERT INTO residents (household_id, name, id_number_enc, id_number_hash, "
        "id_number_masked) VALUES (:h, '张三', :e, :hash, :m)"
    )
    good = "51170319900307123" + id_check_character("51170319900307123")
    sealed = seal(good, Keys.from_secret("k" * 32), "id_number")
    assert sealed is not None and good.encode() not in sealed.enc
    row = {"h": household, "e": sealed.enc, "hash": sealed.hash, "m": sealed.masked}
    conn.execute(sa.text(sql), row)
    _refused(conn, sql, {**row, "m": good}, "ck_residents_id_number_masked_format")
    _refused(conn, sql, {**row, "hash": "x" * 64}, "ck_residents_id_number_hash_format")
    _refused(conn, sql, {**row, "e": None}, "ck_residents_id_number_sealed")
    _refused(conn, sql, row, "uq_residents_id_number_hash")


def test_id_check_function_matches_python(conn):
    samples = ["11010519491231002", "51170319900307123", "44052418800101001", "00000000000000000"]
    for first17 in samples:
        got = conn.scalar(sa.text("SELECT id_number_check_character(:s)"), {"s": first17})
        assert got == id_check_character(first17)


def test_member_status_enum_and_task_approval(conn):
    sql = "INSERT INTO members (code, name, status) VALUES ('M1', '李四', :s)"
    _refused(conn, sql, {"s": "elected"}, "invalid input value for enum member_status")
    conn.execute(sa.text(sql), {"s": "appointed"})
    _refused(
        conn,
        "INSERT INTO task_types (code, name, approval_state) VALUES ('T9', 'x', 'approved')",
        {},
        "ck_task_types_decision_dated",
    )


def test_every_geometry_column_has_gist_index_and_srid(conn):
    columns = conn.execute(
        sa.text(
            "SELECT f_table_name, f_geometry_column, srid, type FROM geometry_columns "
            "WHERE f_table_schema = 'public'"
        )
    ).all()
    assert len(columns) == 10
    assert {c.srid for c in columns} == {4490}
    assert {c.type for c in columns} == {"MULTIPOLYGON", "POINT", "MULTILINESTRING"}
    gist = conn.execute(
        sa.text(
            "SELECT t.relname, a.attname FROM pg_index x "
            "JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid "
            "JOIN pg_am am ON am.oid = i.relam JOIN pg_attribute a "
            "ON a.attrelid = t.oid AND a.attnum = ANY(x.indkey) WHERE am.amname = 'gist'"
        )
    ).all()
    assert {(c.f_table_name, c.f_geometry_column) for c in columns} <= {tuple(g) for g in gist}


def test_partial_unique_index_alone_refuses_second_current_grid(conn):
    # the exclusion constraint would also object; drop it (inside the rolled-back transaction)
    # to show the partial unique index holds on its own
    conn.execute(sa.text("ALTER TABLE grids DROP CONSTRAINT ex_grids_code_validity"))
    conn.execute(sa.text(INSERT_GRID), _grid())
    second = _grid(version=2, valid_from="2025-01-01T00:00:00+08:00")
    _refused(conn, INSERT_GRID, second, "uq_grids_current_code")


# --- natural lines (revision 0002) -------------------------------------------------------

INSERT_LINE = (
    "INSERT INTO natural_lines (kind, code, rank, town_code, geom) "
    "VALUES (:kind, :code, :rank, :town, ST_GeomFromText(:wkt, :srid))"
)
RIVER = "MULTILINESTRING((107.40 30.96, 107.405 30.965, 107.41 30.97))"


def _line(**overrides: object) -> dict[str, object]:
    params: dict[str, object] = {
        "kind": "river",
        "code": "R001",
        "rank": 3,
        "town": TOWN,
        "wkt": RIVER,
        "srid": 4490,
    }
    params.update(overrides)
    return params


def test_valid_lines_accepted_with_or_without_town(conn):
    conn.execute(sa.text(INSERT_LINE), _line())
    conn.execute(sa.text(INSERT_LINE), _line(kind="stream", town=None, rank=None))
    conn.execute(sa.text(INSERT_LINE), _line(kind="ridge", code=None))
    conn.execute(sa.text(INSERT_LINE), _line(kind="road", code=None))
    rows = conn.execute(
        sa.text("SELECT kind::text, synthetic FROM natural_lines ORDER BY id")
    ).all()
    assert rows == [("river", False), ("stream", False), ("ridge", False), ("road", False)]


def test_line_kind_outside_the_enum_refused(conn):
    _refused(
        conn, INSERT_LINE, _line(kind="canal"), "invalid input value for enum natural_line_kind"
    )


def test_invalid_line_refused(conn):
    # one repeated point: "Too few points" for GEOS
    degenerate = "MULTILINESTRING((107.40 30.96, 107.40 30.96))"
    _refused(conn, INSERT_LINE, _line(wkt=degenerate), "ck_natural_lines_geom_valid")


def test_empty_line_refused(conn):
    _refused(conn, INSERT_LINE, _line(wkt="MULTILINESTRING EMPTY"), "ck_natural_lines_geom_valid")


def test_line_with_wrong_srid_refused(conn):
    _refused(
        conn, INSERT_LINE, _line(srid=4326), r"SRID \(4326\) does not match column SRID \(4490\)"
    )


def test_line_with_wrong_geometry_type_refused(conn):
    _refused(conn, INSERT_LINE, _line(wkt=SQUARE), "does not match column type")


@pytest.mark.parametrize(
    "wkt",
    [
        "MULTILINESTRING((2.30 48.85, 2.31 48.86))",  # Paris
        "MULTILINESTRING((30.96 107.40, 30.97 107.41))",  # lat/lon swapped
        "MULTILINESTRING((107.40 30.96, 140.0 35.0))",  # runs out of China
    ],
)
def test_line_outside_china_refused(conn, wkt):
    _refused(conn, INSERT_LINE, _line(wkt=wkt), "ck_natural_lines_geom_in_china")


def test_line_rank_and_town_checked(conn):
    _refused(conn, INSERT_LINE, _line(rank=0), "ck_natural_lines_rank_range")
    _refused(conn, INSERT_LINE, _line(rank=13), "ck_natural_lines_rank_range")
    _refused(conn, INSERT_LINE, _line(town="511703199"), "fk_natural_lines_town_code_towns")


def test_line_code_unique_per_kind(conn):
    conn.execute(sa.text(INSERT_LINE), _line())
    conn.execute(sa.text(INSERT_LINE), _line(kind="road"))  # same code, other kind
    _refused(conn, INSERT_LINE, _line(town=None), "uq_natural_lines_kind_code")
