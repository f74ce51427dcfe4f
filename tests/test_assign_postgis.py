"""Assignment inside PostGIS: bulk, re-assignment after a redraw, on-write triggers (0003)."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from hypothesis import given
from hypothesis import strategies as st
from pyproj import Transformer
from sqlalchemy.engine import URL, Connection, Engine

from gis_grid.assign import (
    ASSIGNED_TABLES,
    DatabaseAssignment,
    _postgis,
    assign_in_database,
    assign_points,
    changed_grid_codes,
    reassign_in_database,
    unassigned_in_database,
)
from gis_grid.db import migrate
from gis_grid.db.engine import drop_database
from gis_grid.db.models import Base
from gis_grid.errors import DataFileError
from tests.redraws import coverage, edit, edit_chains, points_for, property_settings

pytestmark = pytest.mark.postgis

SAMPLE = "data/shapefiles"


def _new_database(database_url: URL, suffix: str) -> URL:
    name = f"{database_url.database}_{suffix}_{uuid.uuid4().hex[:6]}"
    admin = sa.create_engine(database_url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    url = database_url.set(database=name)
    eng = sa.create_engine(url, poolclass=sa.NullPool)
    with eng.begin() as conn:
        conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS postgis")
        conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS btree_gist")
    eng.dispose()
    return url


def _drop_database(database_url: URL, url: URL) -> None:
    admin = sa.create_engine(database_url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    with admin.connect() as conn:
        drop_database(conn, url.database)
    admin.dispose()


@pytest.fixture(scope="module")
def sample_engine(database_url: URL) -> Iterator[Engine]:
    """A database of this module's own, migrated to head and loaded with the sample.

    The tests change it only inside transactions they roll back.
    """
    from pathlib import Path

    from gis_grid.load import load_sample

    url = _new_database(database_url, "assign")
    eng = sa.create_engine(url)
    try:
        migrate.upgrade(url)
        load_sample(Path(__file__).resolve().parents[1] / SAMPLE, eng, replace=True)
        yield eng
    finally:
        eng.dispose()
        _drop_database(database_url, url)


@pytest.fixture
def conn(sample_engine: Engine) -> Iterator[Connection]:
    """A connection whose changes are all rolled back after the test."""
    with sample_engine.connect() as connection:
        trans = connection.begin()
        yield connection
        trans.rollback()


def _codes(conn: Connection, table: str) -> pd.Series:
    rows = conn.execute(sa.text(f"SELECT id, grid_code FROM {table} ORDER BY id")).all()
    return pd.Series([r[1] for r in rows], index=[r[0] for r in rows], dtype=object)


def _gk_distance(point: shapely.Point, polygon: shapely.Geometry) -> float:
    """Metres in the Gauss-Krüger zone of the point (as both implementations measure)."""
    central = 3 * np.floor((point.x + 1.5) / 3)
    to_gk = Transformer.from_crs(4490, int(4534 + (central - 75) // 3), always_xy=True)
    return float(
        shapely.transform(
            polygon, lambda c: np.column_stack(to_gk.transform(c[:, 0], c[:, 1]))
        ).distance(shapely.Point(to_gk.transform(point.x, point.y)))
    )


# --- Hand-made grids far from the sample: border rule and the unassigned report -----------

X0, Y0, SIDE = 107.0, 30.5, 0.01


@pytest.fixture
def two_grids(conn: Connection) -> tuple[str, str]:
    """Two square grids sharing an edge at x = X0 + SIDE, in a village of the sample."""
    village = conn.scalar(sa.text("SELECT min(code) FROM villages"))
    codes = (f"{village}901", f"{village}902")
    for i, code in enumerate(codes):
        box = shapely.box(X0 + i * SIDE, Y0, X0 + (i + 1) * SIDE, Y0 + SIDE)
        conn.execute(
            sa.text(
                "INSERT INTO grids (code, village_code, seq, geom) "
                "VALUES (:c, :v, :s, ST_Multi(ST_GeomFromText(:g, 4490)))"
            ),
            {"c": code, "v": village, "s": int(code[-3:]), "g": box.wkt},
        )
    return codes


def _insert_point(conn: Connection, table: str, x: float, y: float, **extra: object) -> int:
    village = conn.scalar(sa.text("SELECT min(code) FROM villages"))
    values: dict[str, object] = {"code": f"T{uuid.uuid4().hex[:8]}", "name": "test", **extra}
    if table == "households":
        values.pop("name")
        values.setdefault("village_code", village)
    if table == "incidents":
        values["title"] = values.pop("name")
        values["task_type_code"] = conn.scalar(sa.text("SELECT min(code) FROM task_types"))
    columns = ", ".join(values)
    params = ", ".join(f":{k}" for k in values)
    return int(
        conn.scalar(
            sa.text(
                f"INSERT INTO {table} ({columns}, geom) "
                f"VALUES ({params}, ST_SetSRID(ST_MakePoint(:x, :y), 4490)) RETURNING id"
            ),
            {**values, "x": x, "y": y},
        )
    )


@pytest.mark.parametrize("table", ASSIGNED_TABLES)
def test_trigger_border_point_goes_to_smallest_code(conn, two_grids, table):
    low, high = two_grids
    on_edge = _insert_point(conn, table, X0 + SIDE, Y0 + SIDE / 2)
    on_vertex = _insert_point(conn, table, X0 + SIDE, Y0)
    inside_high = _insert_point(conn, table, X0 + 1.5 * SIDE, Y0 + SIDE / 2)
    got = conn.execute(
        sa.text(f"SELECT id, grid_code FROM {table} WHERE id = ANY(:ids)"),
        {"ids": [on_edge, on_vertex, inside_high]},
    ).all()
    assert dict(got) == {on_edge: low, on_vertex: low, inside_high: high}


def test_bulk_border_point_goes_to_smallest_code_whatever_the_stored_value(conn, two_grids):
    low, high = two_grids
    pid = _insert_point(conn, "pollution_points", X0 + SIDE, Y0 + SIDE / 3)
    conn.execute(
        sa.text("UPDATE pollution_points SET grid_code = :h WHERE id = :i"), {"h": high, "i": pid}
    )
    result = assign_in_database(conn, "pollution_points")
    assert result.changed == 1
    assert (
        conn.scalar(sa.text("SELECT grid_code FROM pollution_points WHERE id = :i"), {"i": pid})
        == low
    )


def test_point_outside_is_kept_and_reported_with_distance(conn, two_grids):
    low, _ = two_grids
    x, y = X0 - 0.002, Y0 + SIDE / 2  # ~190 m west of the low grid
    pid = _insert_point(conn, "hazards", x, y, level=2)
    assert conn.scalar(sa.text("SELECT grid_code FROM hazards WHERE id = :i"), {"i": pid}) is None

    result = assign_in_database(conn, "hazards")
    row = result.unassigned.set_index("id").loc[pid]
    expected = _gk_distance(shapely.Point(x, y), shapely.box(X0, Y0, X0 + SIDE, Y0 + SIDE))
    assert row["nearest"] == low
    assert row["distance_m"] == pytest.approx(expected, abs=1e-3)
    assert 150 < row["distance_m"] < 250
    # the same report on its own, and the row is still there
    alone = unassigned_in_database(conn, "hazards").set_index("id")
    assert alone.loc[pid, "distance_m"] == pytest.approx(expected, abs=1e-3)
    assert conn.scalar(sa.text("SELECT count(*) FROM hazards WHERE id = :i"), {"i": pid}) == 1


def test_no_grid_at_all_still_reports_the_point(conn):
    conn.execute(sa.text("UPDATE grids SET valid_to = now() WHERE valid_to IS NULL"))
    result = assign_in_database(conn, "incidents")
    n = conn.scalar(sa.text("SELECT count(*) FROM incidents"))
    assert result.assigned == 0
    assert result.n_unassigned == n > 0
    assert result.unassigned["distance_m"].isna().all()


# --- Triggers -------------------------------------------------------------------------------


def _interior_points(conn: Connection, n: int = 2) -> list[tuple[str, str, float, float]]:
    """(grid code, village code, x, y) of an interior point of ``n`` current grids."""
    rows = conn.execute(
        sa.text(
            "SELECT code, village_code, ST_X(p), ST_Y(p) FROM ("
            " SELECT code, village_code, ST_PointOnSurface(geom) AS p FROM grids"
            " WHERE valid_to IS NULL ORDER BY code LIMIT :n) s"
        ),
        {"n": n},
    ).all()
    return [(r[0], r[1], float(r[2]), float(r[3])) for r in rows]


def test_trigger_assigns_grid_and_village_on_insert_and_on_move(conn):
    (g1, v1, x1, y1), (g2, _, x2, y2) = _interior_points(conn, 2)
    # households.village_code is NOT NULL: the trigger fills it before the check
    conn.execute(
        sa.text(
            "INSERT INTO households (code, village_code, geom) "
            "VALUES ('HT1', NULL, ST_SetSRID(ST_MakePoint(:x, :y), 4490))"
        ),
        {"x": x1, "y": y1},
    )
    row = conn.execute(
        sa.text("SELECT grid_code, village_code FROM households WHERE code = 'HT1'")
    ).one()
    assert tuple(row) == (g1, v1)

    conn.execute(
        sa.text(
            "UPDATE households SET geom = ST_SetSRID(ST_MakePoint(:x, :y), 4490) WHERE code = 'HT1'"
        ),
        {"x": x2, "y": y2},
    )
    assert conn.scalar(sa.text("SELECT grid_code FROM households WHERE code = 'HT1'")) == g2
    # an update of other columns leaves the grid alone (and a writer cannot fake it on insert)
    conn.execute(sa.text("UPDATE households SET people = 3 WHERE code = 'HT1'"))
    assert conn.scalar(sa.text("SELECT grid_code FROM households WHERE code = 'HT1'")) == g2
    conn.execute(
        sa.text(
            "INSERT INTO pollution_points (code, name, grid_code, geom) "
            "VALUES ('PT1', 'x', '999999999999999', ST_SetSRID(ST_MakePoint(:x, :y), 4490))"
        ),
        {"x": x1, "y": y1},
    )
    row = conn.execute(
        sa.text("SELECT grid_code, village_code FROM pollution_points WHERE code = 'PT1'")
    ).one()
    assert tuple(row) == (g1, v1)


def test_trigger_can_be_skipped_by_a_bulk_writer(conn):
    (_, v1, x1, y1), *_ = _interior_points(conn, 1)
    conn.execute(sa.text("SET LOCAL gis_grid.assign_on_write = off"))
    pid = _insert_point(conn, "households", x1, y1, village_code=v1)
    assert (
        conn.scalar(sa.text("SELECT grid_code FROM households WHERE id = :i"), {"i": pid}) is None
    )
    assign_in_database(conn, "households")
    assert (
        conn.scalar(sa.text("SELECT grid_code FROM households WHERE id = :i"), {"i": pid})
        is not None
    )


# --- Bulk assignment equals the in-memory one ---------------------------------------------


@pytest.mark.parametrize("table", ASSIGNED_TABLES)
def test_bulk_equals_in_memory_on_sample(conn, table):
    conn.execute(sa.text(f"UPDATE {table} SET grid_code = NULL"))
    result = assign_in_database(conn, table)
    assert isinstance(result, DatabaseAssignment)
    n = conn.scalar(sa.text(f"SELECT count(*) FROM {table}"))
    assert result.examined == n
    assert result.assigned + result.n_unassigned == n
    assert result.changed == result.assigned

    grids = gpd.read_postgis(
        "SELECT code, geom FROM grids WHERE valid_to IS NULL", conn, geom_col="geom"
    )
    points = gpd.read_postgis(f"SELECT id, geom FROM {table} ORDER BY id", conn, geom_col="geom")
    points = points.set_index("id")
    memory = assign_points(points, grids)
    in_db = _codes(conn, table)
    expected = memory.grid.astype(object).where(memory.grid.notna(), None)
    assert in_db.tolist() == expected.tolist()

    mem_un = memory.unassigned
    assert result.unassigned["id"].tolist() == mem_un.index.tolist()
    np.testing.assert_allclose(
        result.unassigned["distance_m"].to_numpy(), mem_un["distance_m"].to_numpy(), atol=1e-3
    )
    assert result.unassigned["nearest"].tolist() == mem_un["nearest"].tolist()


def test_bulk_for_one_town_leaves_other_towns_alone(conn):
    towns = conn.scalars(sa.text("SELECT code FROM towns ORDER BY code")).all()
    assert len(towns) >= 2
    conn.execute(sa.text("UPDATE households SET grid_code = NULL"))
    result = assign_in_database(conn, "households", town=towns[0])
    in_town = conn.scalar(
        sa.text("SELECT count(*) FROM households WHERE left(village_code, 9) = :t"), {"t": towns[0]}
    )
    assert result.examined == in_town
    others = conn.scalar(
        sa.text("SELECT count(grid_code) FROM households WHERE left(village_code, 9) <> :t"),
        {"t": towns[0]},
    )
    assert others == 0
    assert conn.scalar(sa.text("SELECT count(grid_code) FROM households")) == result.assigned


def test_unknown_table_is_refused(conn):
    with pytest.raises(DataFileError, match="households"):
        assign_in_database(conn, "grids")


# --- Re-assignment after a redraw equals a full re-run ------------------------------------

_PAIR = """
SELECT a.code, b.code, ST_AsText(ST_Expand(ST_Centroid(ST_Intersection(a.geom, b.geom)), 0.004))
FROM grids a JOIN grids b ON a.code < b.code AND a.geom && b.geom
WHERE a.valid_to IS NULL AND b.valid_to IS NULL
  AND ST_Length(ST_CollectionExtract(ST_Intersection(a.geom, b.geom), 2)) > 0.002
ORDER BY (SELECT count(*) FROM households h
          WHERE ST_DWithin(h.geom, ST_Centroid(ST_Intersection(a.geom, b.geom)), 0.004)) DESC,
         a.code, b.code
LIMIT 1
"""

_REDRAW = """
WITH old AS (
    UPDATE grids SET valid_to = :at WHERE code = ANY(:codes) AND valid_to IS NULL
    RETURNING code, village_code, seq, version, geom
), moved AS (SELECT ST_GeomFromText(:box, 4490) AS box)
INSERT INTO grids (code, village_code, seq, version, valid_from, geom)
SELECT o.code, o.village_code, o.seq, o.version + 1, :at,
       ST_Multi(ST_CollectionExtract(ST_MakeValid(CASE
           WHEN o.code = :gain THEN ST_Union(o.geom, ST_Intersection(
               (SELECT geom FROM old WHERE code = :lose), m.box))
           ELSE ST_Difference(o.geom, m.box) END), 3))
FROM old o, moved m
"""


def _redraw_shared_edge(conn: Connection) -> tuple[list[str], object]:
    """Move the shared edge of two neighbouring grids: a box of one goes to the other."""
    gain, lose, box = conn.execute(sa.text(_PAIR)).one()
    at = conn.scalar(sa.text("SELECT now() + interval '1 second'"))
    conn.execute(
        sa.text(_REDRAW), {"at": at, "codes": [gain, lose], "gain": gain, "lose": lose, "box": box}
    )
    return [gain, lose], at


@pytest.mark.parametrize("table", ["households", "incidents"])
def test_reassign_equals_full_rerun_after_redraw(conn, table):
    assign_in_database(conn, table)  # the previous version's assignment
    before = _codes(conn, table)
    codes, at = _redraw_shared_edge(conn)
    assert changed_grid_codes(conn, at) == sorted(codes)
    assert (
        conn.scalar(sa.text("SELECT count(*) FROM grids WHERE code = ANY(:c)"), {"c": codes}) == 4
    )

    partial = reassign_in_database(conn, table, changed_grid_codes(conn, at))
    after_partial = _codes(conn, table)
    full = assign_in_database(conn, table)
    assert full.changed == 0  # the full re-run finds nothing left to change
    pd.testing.assert_series_equal(_codes(conn, table), after_partial)
    pd.testing.assert_frame_equal(partial.unassigned, full.unassigned)
    assert partial.examined < full.examined
    moved = int((before.fillna("") != after_partial.fillna("")).sum())
    assert partial.changed == moved
    if table == "households":
        assert moved > 0  # the redraw really moved households


def test_reassign_after_a_grid_is_removed(conn):
    assign_in_database(conn, "households")
    code = conn.scalar(
        sa.text(
            "SELECT grid_code FROM households GROUP BY grid_code ORDER BY count(*) DESC LIMIT 1"
        )
    )
    conn.execute(
        sa.text("UPDATE grids SET valid_to = now() WHERE code = :c AND valid_to IS NULL"),
        {"c": code},
    )
    partial = reassign_in_database(conn, "households", [code])
    assert partial.changed > 0
    assert assign_in_database(conn, "households").changed == 0
    assert set(partial.unassigned["nearest"].dropna()) - {code}  # measured to live grids
    assert code not in set(partial.unassigned["nearest"])


_GROW_NORTH = """
WITH old AS (
    UPDATE grids SET valid_to = :at WHERE code = :c AND valid_to IS NULL
    RETURNING code, village_code, seq, version, geom
)
INSERT INTO grids (code, village_code, seq, version, valid_from, geom)
SELECT code, village_code, seq, version + 1, :at,
       ST_Multi(ST_Union(geom, ST_Translate(geom, 0, ST_YMax(geom) - ST_YMin(geom))))
FROM old
"""


@pytest.mark.parametrize("redrawn", [0, 1])
def test_reassign_border_point_keeps_the_smallest_code(conn, two_grids, redrawn):
    # A point on the shared edge is under the redrawn grid's new shape either way; when the
    # larger code is redrawn, the unchanged smaller-code neighbour must still win.
    low, _ = two_grids
    on_edge = _insert_point(conn, "households", X0 + SIDE, Y0 + SIDE / 2)
    inside = _insert_point(conn, "households", X0 + (redrawn + 0.5) * SIDE, Y0 + 1.5 * SIDE)
    assign_in_database(conn, "households")
    at = conn.scalar(sa.text("SELECT now() + interval '1 second'"))
    conn.execute(sa.text(_GROW_NORTH), {"at": at, "c": two_grids[redrawn]})  # edge kept

    result = reassign_in_database(conn, "households", [two_grids[redrawn]])
    got = dict(
        conn.execute(
            sa.text("SELECT id, grid_code FROM households WHERE id = ANY(:ids)"),
            {"ids": [on_edge, inside]},
        ).all()
    )
    assert got == {on_edge: low, inside: two_grids[redrawn]}
    assert result.changed == 1  # only the point in the grown part got a grid
    assert assign_in_database(conn, "households").changed == 0


# --- Nothing changes when an assignment fails half-way ------------------------------------

_FAIL_FUNCTION = """
CREATE FUNCTION pg_temp.fail_on_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.id = (SELECT max(id) FROM households) THEN
        RAISE EXCEPTION 'forced failure half-way';
    END IF;
    RETURN NEW;
END $$
"""


def test_failure_half_way_changes_nothing(conn):
    conn.execute(sa.text("UPDATE households SET grid_code = NULL WHERE id % 2 = 0"))
    before = _codes(conn, "households")
    conn.execute(sa.text(_FAIL_FUNCTION))
    conn.execute(
        sa.text(
            "CREATE TRIGGER fail_half_way AFTER UPDATE ON households "
            "FOR EACH ROW EXECUTE FUNCTION pg_temp.fail_on_row()"
        )
    )
    with pytest.raises(sa.exc.DBAPIError, match="forced failure"):
        assign_in_database(conn, "households")
    # the caller's transaction is still usable and nothing changed
    pd.testing.assert_series_equal(_codes(conn, "households"), before)
    conn.execute(sa.text("DROP TRIGGER fail_half_way ON households"))
    assert assign_in_database(conn, "households").changed > 0


def test_failure_after_the_update_changes_nothing(conn, monkeypatch):
    conn.execute(sa.text("UPDATE households SET grid_code = NULL"))
    before = _codes(conn, "households")
    work_mem = conn.scalar(sa.text("SHOW work_mem"))

    def broken(*args: object, **kwargs: object) -> pd.DataFrame:
        msg = "report failed"
        raise RuntimeError(msg)

    monkeypatch.setattr(_postgis, "unassigned_in_database", broken)
    with pytest.raises(RuntimeError, match="report failed"):
        assign_in_database(conn, "households")
    pd.testing.assert_series_equal(_codes(conn, "households"), before)
    assert conn.scalar(sa.text("SHOW work_mem")) == work_mem  # our settings are undone too


# --- Migration 0003 -------------------------------------------------------------------------


def _triggers(url: URL) -> tuple[int, int]:
    eng = sa.create_engine(url, poolclass=sa.NullPool)
    with eng.connect() as c:
        triggers = c.scalar(
            sa.text("SELECT count(*) FROM pg_trigger WHERE tgname = 'assign_location'")
        )
        functions = c.scalar(
            sa.text(
                "SELECT count(*) FROM pg_proc WHERE proname IN "
                "('current_grid_at', 'village_at', 'assign_point_location')"
            )
        )
    eng.dispose()
    return int(triggers or 0), int(functions or 0)


def test_migration_0003_down_and_up(database_url):
    url = _new_database(database_url, "mig3")
    try:
        migrate.upgrade(url, "0003")
        assert _triggers(url) == (4, 3)
        eng = sa.create_engine(url, poolclass=sa.NullPool)
        with eng.begin() as c:
            c.execute(sa.text("INSERT INTO districts (code, name) VALUES ('511703', 'x')"))
        migrate.downgrade(url, "0002")
        assert migrate.current_revision(url) == "0002"
        assert _triggers(url) == (0, 0)
        with eng.connect() as c:
            assert c.scalar(sa.text("SELECT count(*) FROM districts")) == 1
        migrate.upgrade(url)
        assert _triggers(url) == (4, 3)
        # triggers and functions are not in the models; tables, columns and indexes still match
        with eng.connect() as c:
            context = MigrationContext.configure(
                c,
                opts={
                    "include_object": lambda o, n, t, r, ct: (
                        not (t == "table" and n == "spatial_ref_sys")
                    ),
                    "compare_type": True,
                },
            )
            assert compare_metadata(context, Base.metadata) == []
        eng.dispose()
    finally:
        _drop_database(database_url, url)


# --- Property: re-assignment after random redraws equals a full re-run --------------------

REDRAWS = property_settings(12, database=True)

_CLOSE = "UPDATE grids SET valid_to = :at WHERE code = ANY(:c) AND valid_to IS NULL"
_OPEN = """
INSERT INTO grids (code, village_code, seq, version, valid_from, geom)
SELECT :c, :v, :s, coalesce(max(version), 0) + 1, :at,
       ST_Multi(ST_CollectionExtract(ST_GeomFromWKB(:g, 4490), 3))
FROM grids WHERE code = :c
"""
_POINTS = """
INSERT INTO households (code, village_code, geom)
SELECT 'P' || :tag || '-' || n, :v, ST_SetSRID(ST_MakePoint(x, y), 4490)
FROM unnest(CAST(:xs AS float8[]), CAST(:ys AS float8[])) WITH ORDINALITY AS u(x, y, n)
"""


def _write_version(
    conn: Connection,
    old: gpd.GeoDataFrame | None,
    new: gpd.GeoDataFrame,
    name: Callable[[str], str],
) -> list[str]:
    """Store ``new`` as the current grids (closing the changed ones); return the changed codes."""
    before = {} if old is None else dict(zip(old["code"], old.geometry.to_wkb(), strict=True))
    after = dict(zip(new["code"], new.geometry.to_wkb(), strict=True))
    changed = sorted(c for c in before.keys() | after.keys() if before.get(c) != after.get(c))
    if not changed:
        return []
    at = conn.scalar(sa.text("SELECT clock_timestamp()"))
    conn.execute(sa.text(_CLOSE), {"at": at, "c": [name(c) for c in changed]})
    for code in changed:
        if code in after:
            platform = name(code)
            conn.execute(
                sa.text(_OPEN),
                {
                    "c": platform,
                    "v": platform[:12],
                    "s": int(platform[-3:]),
                    "at": at,
                    "g": after[code],
                },
            )
    return [name(c) for c in changed]


@REDRAWS
@given(
    seed=st.integers(0, 2**16),
    n=st.integers(4, 25),
    edits=edit_chains(min_size=1, max_size=3),
)
def test_reassign_after_random_redraws_equals_full_rerun(conn, seed, n, edits):
    # The in-memory property test's redraws (tests/redraws.py), stored as grid versions far
    # from the sample; after each, re-assigning the changed codes must leave nothing for a
    # full run to change, and report the same unassigned points.
    village = conn.scalar(sa.text("SELECT min(code) FROM villages"))
    versions = [coverage(seed, n, 4490, origin=(X0, Y0))]
    for op, pick, amount in edits:
        versions.append(edit(versions[-1], op, pick, amount))
    # Platform codes (village + 3 digits) in the order of the chain's codes: the border rule
    # (smallest code) picks the same grid.
    every = sorted({c for v in versions for c in v["code"]})
    platform = {c: f"{village}{100 + k:03d}" for k, c in enumerate(every)}
    with conn.begin_nested() as example:
        _write_version(conn, None, versions[0], platform.__getitem__)
        points = points_for(versions[0], seed)
        conn.execute(
            sa.text(_POINTS),
            {
                "tag": f"{seed}",
                "v": village,
                "xs": points.geometry.x.tolist(),
                "ys": points.geometry.y.tolist(),
            },
        )  # assigned on insert by the trigger
        _same_as_in_memory(conn, versions[0], points, platform, seed)
        for old, new in itertools.pairwise(versions):
            codes = _write_version(conn, old, new, platform.__getitem__)
            partial = reassign_in_database(conn, "households", codes)
            after_partial = _codes(conn, "households")
            full = assign_in_database(conn, "households")
            assert full.changed == 0, (old["code"].tolist(), new["code"].tolist())
            pd.testing.assert_series_equal(_codes(conn, "households"), after_partial)
            pd.testing.assert_frame_equal(partial.unassigned, full.unassigned)
            _same_as_in_memory(conn, new, points, platform, seed)
        example.rollback()


def _same_as_in_memory(
    conn: Connection,
    grids: gpd.GeoDataFrame,
    points: gpd.GeoDataFrame,
    platform: dict[str, str],
    seed: int,
) -> None:
    """The database's grid of each test point, and its unassigned report, as in memory.

    Only where no two grids overlap: there the two border rules agree (module doc of
    ``gis_grid.assign._postgis``); on overlaps an interior point on another grid's boundary
    goes to the smallest code in the database, to the grid it is inside in memory.
    """
    parts = np.asarray(grids.geometry.array)
    i, j = shapely.STRtree(parts).query(parts, predicate="intersects")
    keep = i < j
    if (shapely.area(shapely.intersection(parts[i[keep]], parts[j[keep]])) > 0).any():
        return
    rows = conn.execute(
        sa.text("SELECT code, grid_code FROM households WHERE code LIKE :tag ORDER BY id"),
        {"tag": f"P{seed}-%"},
    ).all()
    stored = [code for _, code in rows]
    memory = assign_points(points, grids.assign(code=grids["code"].map(platform)))
    assert stored == [None if pd.isna(c) else c for c in memory.grid]
    report = unassigned_in_database(conn, "households").set_index("code")
    mine = report[report.index.str.startswith(f"P{seed}-")]
    theirs = memory.unassigned
    assert len(mine) == len(theirs)
    names = [f"P{seed}-{row + 1}" for row in theirs["row"]]
    assert mine.loc[names, "nearest"].tolist() == theirs["nearest"].tolist()
    got = mine.loc[names, "distance_m"].to_numpy()
    assert got == pytest.approx(theirs["distance_m"].to_numpy(), abs=1e-6)
