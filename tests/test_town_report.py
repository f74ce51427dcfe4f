"""gis_grid.db.read and gis_grid.town on the sample data in a real PostGIS (read-only).

Every figure the report gives is checked against an independent SQL query on the same
database: counts per town and per grid, the grids that share a border (PostGIS overlay), the
member serving each grid.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gis_grid.backup import CoverError
from gis_grid.db.read import POINT_LAYERS, TownData, read_town, read_towns
from gis_grid.errors import NotFoundError
from gis_grid.town import (
    BandError,
    absent_by_town,
    check_assignment,
    parse_band,
    town_adjacency,
    town_report,
)

pytestmark = pytest.mark.postgis

ZHAOJIA, HESHI = "511703109", "511703129"
TOWNS = (ZHAOJIA, HESHI)
PERSONAL = {"phone", "address", "title", "birth_date", "id_number", "gender"}

#: Rows of each layer in one town, by SQL written independently of gis_grid.db.read.
COUNT_SQL = {
    "villages": "SELECT count(*) FROM villages WHERE town_code = :t",
    "grids": "SELECT count(*) FROM grids WHERE valid_to IS NULL AND village_code LIKE :t || '%'",
    "members": "SELECT count(*) FROM members WHERE grid_code LIKE :t || '%'",
    "households": "SELECT count(*) FROM households WHERE village_code LIKE :t || '%'",
    "pollution": "SELECT count(*) FROM pollution_points WHERE village_code LIKE :t || '%'",
    "hazards": "SELECT count(*) FROM hazards WHERE village_code LIKE :t || '%'",
    "incidents": "SELECT count(*) FROM incidents WHERE village_code LIKE :t || '%'",
}
LINE_SQL = (
    "SELECT kind::text, count(*) FROM natural_lines AS n, towns AS t WHERE t.code = :t "
    "AND (n.town_code = t.code OR ST_Intersects(n.geom, t.geom)) GROUP BY kind"
)


def scalar(engine: Engine, sql: str, **params: object) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(sa.text(sql), params) or 0)


@pytest.fixture(scope="module")
def towns(loaded_engine: Engine) -> dict[str, TownData]:
    return {code: read_town(loaded_engine, code) for code in TOWNS}


@pytest.fixture(scope="module")
def reports(towns: dict[str, TownData]):
    return {code: town_report(data, band=(150, 300)) for code, data in towns.items()}


def test_read_towns(loaded_engine):
    frame = read_towns(loaded_engine)
    assert frame["code"].tolist() == list(TOWNS)
    assert frame.crs.to_epsg() == 4490 and frame.geometry.name == "geometry"


@pytest.mark.parametrize("code", TOWNS)
def test_read_town_counts_match_sql(loaded_engine, towns, code):
    data = towns[code]
    counts = data.counts()
    for layer, sql in COUNT_SQL.items():
        assert counts[layer] == scalar(loaded_engine, sql, t=code) > 0, layer
    with loaded_engine.connect() as conn:
        lines = dict(conn.execute(sa.text(LINE_SQL), {"t": code}).all())
    assert {k.removeprefix("lines."): v for k, v in counts.items() if k.startswith("lines.")} == {
        kind: lines.get(kind, 0) for kind in ("river", "stream", "ridge", "road")
    }
    assert data.code == code and data.name in {"赵家镇", "河市镇"}


def test_read_town_frames_carry_crs_and_minimum_data(towns):
    data = towns[HESHI]
    frames = [data.town, data.villages, data.grids, data.members, *data.lines.values()]
    frames += [data.points(layer) for layer in POINT_LAYERS]
    for frame in frames:
        assert frame.crs.to_epsg() == 4490
        assert frame.geometry.name == "geometry"
        assert not PERSONAL & set(frame.columns)
    assert set(data.households.columns) == {"village_code", "grid_code", "people", "geometry"}
    assert data.households.index.name == "id"
    assert set(data.incidents.columns) >= {"status", "type", "grid_code"}
    assert len(data.lines["river"]) > 0 and len(towns[ZHAOJIA].lines["river"]) == 0


def test_read_town_on_the_callers_connection(loaded_engine):
    with loaded_engine.connect() as conn:
        data = read_town(conn, ZHAOJIA)
        assert conn.in_transaction()  # the caller's transaction, left to the caller
    assert len(data.grids) == scalar(loaded_engine, COUNT_SQL["grids"], t=ZHAOJIA)


@pytest.mark.parametrize("code", ["511703999", "nonsense"])
def test_unknown_town_is_not_found(loaded_engine, code):
    with pytest.raises(NotFoundError, match=code) as info:
        read_town(loaded_engine, code)
    assert ZHAOJIA in str(info.value) and HESHI in str(info.value)  # says what there is


def test_as_of(loaded_engine, towns):
    first = scalar(loaded_engine, "SELECT extract(epoch FROM min(valid_from)) FROM grids")
    before = dt.datetime.fromtimestamp(first - 3600, tz=dt.UTC)
    old = read_town(loaded_engine, ZHAOJIA, as_of=before)
    assert old.grids.empty and old.as_of == before
    assert len(old.households) == len(towns[ZHAOJIA].households)  # points are not versioned
    with pytest.raises(NotFoundError, match="no grids as of"):
        town_report(old)
    now = read_town(loaded_engine, ZHAOJIA, as_of=dt.datetime.now(dt.UTC))
    assert now.grids["code"].tolist() == towns[ZHAOJIA].grids["code"].tolist()
    with pytest.raises(ValueError, match="time zone"):
        read_town(loaded_engine, ZHAOJIA, as_of=dt.datetime(2030, 1, 1))


@pytest.mark.parametrize("code", TOWNS)
def test_assignment_agrees_with_the_database(loaded_engine, towns, reports, code):
    check = reports[code].assignment
    assert check.ok and check.mismatches.empty and check.unassigned.empty
    assert (check.layers["agree"] == check.layers["points"]).all()
    with loaded_engine.connect() as conn:
        per_grid = dict(
            conn.execute(
                sa.text(
                    "SELECT grid_code, count(*) FROM households "
                    "WHERE village_code LIKE :t || '%' GROUP BY grid_code"
                ),
                {"t": code},
            ).all()
        )
    assert check.grids["households"].to_dict() == per_grid


def test_a_stale_stored_code_is_reported(towns):
    data = towns[ZHAOJIA]
    moved = data.households.copy()
    first, other = moved.index[0], data.grids["code"].iloc[-1]
    assert moved.at[first, "grid_code"] != other
    moved.loc[first, "grid_code"] = other  # as if the database had a stale code
    check = check_assignment(TownData(**{**vars(data), "households": moved}))
    assert not check.ok
    assert check.mismatches[["layer", "id", "stored"]].values.tolist() == [
        ["households", first, other]
    ]


@pytest.mark.parametrize("code", TOWNS)
def test_balance_totals_and_one_member_per_grid(loaded_engine, reports, code):
    report = reports[code]
    summary = report.summary("balance")
    households = scalar(loaded_engine, COUNT_SQL["households"], t=code)
    people = scalar(
        loaded_engine,
        "SELECT sum(people) FROM households WHERE village_code LIKE :t || '%'",
        t=code,
    )
    assert (summary["households"], summary["people"]) == (households, people)
    grids = report.tables("balance")["grids"]
    assert (grids["members"] == 1).all()  # 一格一员 on the sample
    assert not report.balance.issues["kind"].isin(["no_member", "several_members"]).any()
    assert (grids["home_m"] >= 0).all()
    low, high = 150, 300
    outside = grids[(grids["per_member"] < low) | (grids["per_member"] > high)]["grid"]
    flagged = report.balance.issues.query("kind in ['below_band', 'above_band']")["grid"]
    assert sorted(outside) == sorted(flagged)
    assert summary["outside_band"] == len(outside)


@pytest.mark.parametrize("code", TOWNS)
def test_adjacency_matches_postgis(loaded_engine, reports, code):
    pairs = reports[code].adjacency.pairs
    found = set(zip(pairs["a"], pairs["b"], strict=True))
    sql = (
        "SELECT a.code, b.code, ST_Length(ST_Intersection(a.geom, b.geom)::geography) "
        "FROM grids AS a JOIN grids AS b ON a.code < b.code AND ST_Intersects(a.geom, b.geom) "
        "WHERE a.valid_to IS NULL AND b.valid_to IS NULL "
        "AND a.village_code LIKE :t || '%' AND b.village_code LIKE :t || '%'"
    )
    with loaded_engine.connect() as conn:
        shared = {(a, b): length for a, b, length in conn.execute(sa.text(sql), {"t": code})}
    # PostGIS measures on the ellipsoid, the report in Gauss-Krüger: compare away from 1 m.
    assert {pair for pair, length in shared.items() if length >= 2} <= found
    assert found <= {pair for pair, length in shared.items() if length >= 0.5}


def test_river_barriers(towns, reports):
    heshi = reports[HESHI].summary("adjacency")
    assert heshi["barrier_lines"] == 2 and heshi["barrier_pairs"] > 0
    none = town_adjacency(towns[HESHI], barriers=())
    assert not none.pairs["barrier"].any()
    streams = town_adjacency(towns[HESHI], barriers=("river", "stream"))
    assert streams.pairs["barrier"].sum() >= heshi["barrier_pairs"]
    assert reports[ZHAOJIA].summary("adjacency")["barrier_lines"] == 0  # no river there


@pytest.mark.parametrize("code", TOWNS)
def test_ab_posts_cover_every_grid_with_an_adjacent_member(loaded_engine, reports, code):
    report = reports[code]
    plan = report.ab_posts
    grids = [g for group in plan.groups for g in group]
    assert sorted(grids) == sorted(report.adjacency.ids)  # every grid in exactly one group
    assert plan.uncovered.empty
    pairs = report.adjacency.pairs
    touching = set(zip(pairs["a"], pairs["b"], strict=True))
    cover = report.tables("ab_posts")["cover"]
    for grid, backup in zip(cover["grid"], cover["backup_grid"], strict=True):
        assert (min(grid, backup), max(grid, backup)) in touching, (grid, backup)
    assert (cover["link"] == "adjacent").all()
    with loaded_engine.connect() as conn:
        serving = dict(conn.execute(sa.text("SELECT grid_code, code FROM members")).all())
    assert cover["backup_member"].tolist() == [serving[g] for g in cover["backup_grid"]]


def test_absence_plan(towns):
    data = towns[ZHAOJIA]
    member = data.members["code"].iloc[0]
    grid = data.members["grid_code"].iloc[0]
    report = town_report(data, absent=[member])
    assert report.absence is not None
    row = report.absence.assignments.iloc[0]
    partner = report.ab_posts.cover.loc[grid, "backup_member"]
    assert (row["grid"], row["cover_member"], row["rule"]) == (grid, partner, "ab_post")
    load = report.tables("absence")["load"].set_index("member")
    assert load.loc[partner, "total_load"] == load.loc[partner, "own_load"] + len(
        data.households[data.households["grid_code"] == grid]
    )
    assert member not in load.index


def test_absence_refusals(towns):
    data = towns[ZHAOJIA]
    with pytest.raises(NotFoundError, match="M000"):
        town_report(data, absent=["M000"])
    everyone_but_one = data.members["code"].iloc[1:].tolist()
    with pytest.raises(CoverError, match="no cover possible"):
        town_report(data, absent=everyone_but_one)


def test_absent_by_town(towns):
    zhaojia, heshi = towns[ZHAOJIA], towns[HESHI]
    a, b = zhaojia.members["code"].iloc[0], heshi.members["code"].iloc[0]
    assert absent_by_town([zhaojia, heshi], [b, a]) == {ZHAOJIA: [a], HESHI: [b]}
    with pytest.raises(NotFoundError, match=a):
        absent_by_town([heshi], [a])


def test_report_renders_as_json(reports):
    data = json.loads(json.dumps(reports[HESHI].to_dict(), ensure_ascii=False))
    assert data["town"] == HESHI and data["absence"] == {"summary": {"absent": []}}
    assert len(data["balance"]["grids"]) == len(reports[HESHI].adjacency.ids)
    assert data["ab_posts"]["summary"]["uncovered"] == 0
    with pytest.raises(NotFoundError, match="unknown report part"):
        reports[HESHI].tables("weather")


def test_report_of_some_parts(towns):
    report = town_report(towns[ZHAOJIA], parts=("assignment", "adjacency"))
    assert report.balance is None and report.ab_posts is None and report.adjacency is not None
    assert report.summary("adjacency")["pairs"] > 0
    with pytest.raises(NotFoundError, match="built without 'balance'"):
        report.tables("balance")
    with pytest.raises(NotFoundError, match="unknown report part"):
        town_report(towns[ZHAOJIA], parts=("weather",))


@pytest.mark.parametrize(
    ("text", "band"), [("150-300", (150.0, 300.0)), (" 0.5 .. 2 ", (0.5, 2.0)), ("7~7", (7.0, 7.0))]
)
def test_parse_band(text, band):
    assert parse_band(text) == band


@pytest.mark.parametrize("text", ["300-150", "abc", "150", "1-2-3", "-5-10", "nan-3", ""])
def test_parse_band_refuses(text):
    with pytest.raises(BandError, match="band"):
        parse_band(text)
