"""Drawing a town and writing the plan as a new grid version (gis_grid.plans, gis_grid.db.plans).

Runs on a database of its own (created here, loaded with the sample), since every test writes.
Each figure is checked against SQL written independently of the code under test.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import geopandas as gpd
import pytest
import shapely
import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine

from gis_grid.db.engine import drop_database
from gis_grid.db.migrate import upgrade
from gis_grid.db.plans import apply_plan
from gis_grid.db.read import read_town
from gis_grid.load import load_sample
from gis_grid.plans import PlanError, TownPlan, check_plan, draw_town, inputs_from_town
from tests.conftest import SAMPLE_DATA

pytestmark = pytest.mark.postgis

ZHAOJIA = "511703109"
#: Zhaojia's village with four grids in the sample.
FOUR = "511703109209"

#: A fingerprint of everything apply_plan may change: grid versions and point assignments.
SNAPSHOT_SQL = """
SELECT md5(coalesce((SELECT string_agg(concat_ws('|', id, code, version, valid_from, valid_to,
                                                 name, source, md5(ST_AsEWKB(geom))), ','
                                       ORDER BY id)
                     FROM grids), '')
        || coalesce((SELECT string_agg(concat_ws('|', id, grid_code), ',' ORDER BY id)
                     FROM households), '')
        || coalesce((SELECT string_agg(concat_ws('|', id, grid_code), ',' ORDER BY id)
                     FROM incidents), '')
        || coalesce((SELECT string_agg(concat_ws('|', id, grid_code), ',' ORDER BY id)
                     FROM members), ''))
"""


def planning_database(database_url: URL, suffix: str) -> Iterator[Engine]:
    """A database of its own, migrated and loaded with the sample; dropped afterwards."""
    name = f"{database_url.database}_{suffix}"
    admin = sa.create_engine(database_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = database_url.set(database=name)
    eng = sa.create_engine(url)
    try:
        with eng.begin() as conn:
            conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS postgis")
            conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS btree_gist")
        upgrade(url)
        load_sample(SAMPLE_DATA, eng, replace=True)
        yield eng
    finally:
        eng.dispose()
        with admin.connect() as conn:
            drop_database(conn, name)
        admin.dispose()


@pytest.fixture(scope="module")
def db(database_url: URL) -> Iterator[Engine]:
    yield from planning_database(database_url, "plans")


@pytest.fixture(scope="module")
def drawn(db: Engine) -> TownPlan:
    return draw_town(inputs_from_town(read_town(db, ZHAOJIA)), by="households")


def snapshot(engine: Engine) -> str:
    with engine.connect() as conn:
        return str(conn.scalar(sa.text(SNAPSHOT_SQL)))


def current(engine: Engine) -> dict[str, int]:
    sql = "SELECT code, version FROM grids WHERE valid_to IS NULL AND village_code LIKE :t || '%'"
    with engine.connect() as conn:
        return dict(conn.execute(sa.text(sql), {"t": ZHAOJIA}).all())


def test_draw_town_from_the_database(drawn):
    plan, quality = drawn.plan, drawn.quality
    assert plan.ok, plan.issues
    assert len(plan.grids) == 26  # "auto": the sample's count, shared out by load
    assert quality.summary["valid"] and quality.summary["codes_ok"]
    assert plan.grids["households"].sum() == len(drawn.inputs.households)


def test_apply_writes_a_new_version_and_keeps_history(db, drawn):
    before = current(db)
    old = read_town(db, ZHAOJIA)
    with db.begin() as conn:
        applied = apply_plan(conn, drawn.plan, town_code=ZHAOJIA, note="test redraw")
    after = current(db)
    assert sorted(after) == sorted(drawn.plan.grids["grid_code"])
    assert all(after[code] == before.get(code, 0) + 1 for code in after)
    s = applied.summary()
    assert (s["closed"], s["added"], s["orphaned_members"]) == (len(before), 26, 0)
    assert s["points_unassigned"] == 0
    t = applied.valid_from
    with db.connect() as conn:
        closed = conn.execute(
            sa.text(
                "SELECT DISTINCT g.valid_to FROM grids AS g "
                "JOIN unnest(CAST(:c AS text[]), CAST(:v AS int[])) AS b(code, version) "
                "ON g.code = b.code AND g.version = b.version"
            ),
            {"c": list(before), "v": list(before.values())},
        ).scalars()
        assert list(closed) == [t]
        sources = conn.execute(
            sa.text("SELECT DISTINCT source FROM grids WHERE valid_to IS NULL AND code = ANY(:c)"),
            {"c": list(after)},
        ).scalars()
        assert list(sources) == ["drawn: test redraw"]
    # History: just before the new version, the old plan, geometry for geometry.
    then = read_town(db, ZHAOJIA, as_of=t - dt.timedelta(microseconds=1))
    assert then.grids["code"].tolist() == old.grids["code"].tolist()
    assert then.grids.geometry.geom_equals_exact(old.grids.geometry, tolerance=0).all()
    now = read_town(db, ZHAOJIA, as_of=t)
    assert now.grids["code"].tolist() == sorted(after)


def test_every_point_assigned_once_and_counts_match_sql(db, drawn):
    with db.begin() as conn:
        apply_plan(conn, drawn.plan, town_code=ZHAOJIA)
    with db.connect() as conn:
        # The stored code is the smallest current grid covering the point, for every point.
        wrong = conn.scalar(
            sa.text(
                "SELECT count(*) FROM households AS h WHERE h.village_code LIKE :t || '%' AND "
                "h.grid_code IS DISTINCT FROM (SELECT min(g.code) FROM grids AS g WHERE "
                "g.valid_to IS NULL AND ST_Covers(g.geom, h.geom))"
            ),
            {"t": ZHAOJIA},
        )
        counts = dict(
            conn.execute(
                sa.text(
                    "SELECT grid_code, count(*) FROM households "
                    "WHERE village_code LIKE :t || '%' GROUP BY grid_code"
                ),
                {"t": ZHAOJIA},
            ).all()
        )
    assert wrong == 0
    assert None not in counts
    plan = drawn.plan.grids
    assert counts == dict(zip(plan["grid_code"], plan["households"], strict=True))


def test_rerun_creates_the_next_version(db, drawn):
    versions = []
    for _ in range(2):
        with db.begin() as conn:
            apply_plan(conn, drawn.plan, town_code=ZHAOJIA)
        versions.append(set(current(db).values()))
    assert len(versions[0]) == 1 and versions[1] == {next(iter(versions[0])) + 1}


def _projected(drawn: TownPlan) -> gpd.GeoDataFrame:
    return drawn.plan.grids.to_crs(4545)


def _with_geometry(drawn: TownPlan, code: str, geometry: shapely.Geometry) -> gpd.GeoDataFrame:
    grids = _projected(drawn)
    grids.loc[grids["grid_code"] == code, "geometry"] = geometry
    return grids


def _first_of(drawn: TownPlan, village: str) -> tuple[str, shapely.Geometry]:
    grids = _projected(drawn)
    row = grids[grids["vill_code"] == village].iloc[0]
    return row["grid_code"], row.geometry


def _bowtie(g: shapely.Geometry) -> shapely.Polygon:
    minx, miny, maxx, maxy = g.bounds
    return shapely.Polygon([(minx, miny), (maxx, maxy), (maxx, miny), (minx, maxy)])


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda g: g.buffer(-30), r"gap covered by no grid, [\d.]+ m², near \(107\.\d+, 30\.\d+\)"),
        (lambda g: g.buffer(30), r"overlap|outside the village"),
        (_bowtie, "invalid"),
    ],
    ids=["gap", "overlap", "bowtie"],
)
def test_broken_plan_is_refused_and_nothing_written(db, drawn, change, match):
    code, geometry = _first_of(drawn, FOUR)
    broken = _with_geometry(drawn, code, change(geometry))
    before = snapshot(db)
    with db.begin() as conn, pytest.raises(PlanError, match=match) as info:
        apply_plan(conn, broken, town_code=ZHAOJIA)
    assert "Nothing was written" in str(info.value)
    assert FOUR in str(info.value) or code in str(info.value)
    assert snapshot(db) == before


def test_plan_for_other_villages_is_refused(db, drawn):
    before = snapshot(db)
    with db.begin() as conn:
        with pytest.raises(PlanError, match="does not replace"):
            apply_plan(conn, drawn.plan, town_code="511703129")
        partial = drawn.plan.grids[drawn.plan.grids["vill_code"] != FOUR]
        with pytest.raises(PlanError, match=f"{FOUR}.*no grid"):
            apply_plan(conn, partial, town_code=ZHAOJIA)
    assert snapshot(db) == before


def test_failure_after_writing_rolls_back_and_keeps_the_transaction(db, drawn, monkeypatch):
    from gis_grid.db import plans

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("failure while re-assigning")

    monkeypatch.setattr(plans, "reassign_in_database", boom)
    before = snapshot(db)
    with db.begin() as conn:
        with pytest.raises(RuntimeError, match="re-assigning"):
            apply_plan(conn, drawn.plan, town_code=ZHAOJIA)
        assert conn.scalar(sa.text("SELECT 1")) == 1  # the caller's transaction still works
    assert snapshot(db) == before


def test_valid_from_is_checked(db, drawn):
    before = snapshot(db)
    with db.begin() as conn:
        with pytest.raises(ValueError, match="no time zone"):
            apply_plan(conn, drawn.plan, town_code=ZHAOJIA, valid_from=dt.datetime(2030, 1, 1))
        future = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
        with pytest.raises(PlanError, match="future"):
            apply_plan(conn, drawn.plan, town_code=ZHAOJIA, valid_from=future)
        past = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
        with pytest.raises(PlanError, match="not after the start of the current version"):
            apply_plan(conn, drawn.plan, town_code=ZHAOJIA, valid_from=past)
        with pytest.raises(ValueError, match="exactly one"):
            apply_plan(conn, drawn.plan)
    assert snapshot(db) == before


def test_dropped_grid_reports_its_members(db, drawn):
    """One village redrawn with one grid fewer: its members are reported, not rewired."""
    grids = _projected(drawn)
    mine = grids[grids["vill_code"] == FOUR].sort_values("grid_code")
    last = mine["grid_code"].iloc[-1]
    with db.begin() as conn:
        # A member serving the grid that will disappear (one appointed member per grid: the
        # one serving it now, if any, is dismissed first).
        conn.execute(
            sa.text(
                "UPDATE members SET status = 'dismissed' WHERE grid_code = :g "
                "AND status = 'appointed' AND code <> (SELECT min(code) FROM members)"
            ),
            {"g": last},
        )
        conn.execute(
            sa.text(
                "UPDATE members SET grid_code = :g WHERE code = (SELECT min(code) FROM members)"
            ),
            {"g": last},
        )
    # Merge the last grid into a neighbour of the same village.
    neighbour = next(
        code
        for code, geom in zip(mine["grid_code"], mine.geometry, strict=True)
        if code != last and geom.intersection(mine.geometry.iloc[-1]).length > 0
    )
    merged = shapely.coverage_union_all(
        mine.loc[mine["grid_code"].isin([last, neighbour])].geometry.to_numpy()
    )
    plan = mine[mine["grid_code"] != last].copy()
    plan.loc[plan["grid_code"] == neighbour, "geometry"] = merged
    with db.begin() as conn:
        applied = apply_plan(conn, plan, village_codes=[FOUR])
    assert applied.villages == [FOUR]
    assert applied.summary()["dropped_codes"] == 1
    orphans = applied.orphaned_members
    assert last in orphans["grid_code"].tolist()
    assert orphans["home_grid"].notna().all()  # the grid holding the home, a suggestion
    with db.connect() as conn:
        left = conn.scalar(
            sa.text("SELECT count(*) FROM households WHERE grid_code = :g"), {"g": last}
        )
        outside = conn.scalar(
            sa.text(
                "SELECT count(*) FROM households WHERE village_code = :v AND grid_code IS NULL"
            ),
            {"v": FOUR},
        )
    assert left == 0 and outside == 0


def test_check_plan_in_memory(drawn):
    villages = drawn.inputs.villages
    checked = check_plan(drawn.plan, villages)
    assert checked.crs.to_epsg() == 4490
    assert list(checked.columns) == ["grid_code", "vill_code", "seq", "geometry"]
    renamed = drawn.plan.grids.assign(grid_code="51170310920900X")
    with pytest.raises(PlanError, match="plan:"):
        check_plan(renamed, villages)
