"""The engine commands (assign, balance, adjacency, ab-posts) via CliRunner on the loaded sample.

Read-only on the session's loaded database; the JSON output is checked against SQL.
"""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine
from typer.testing import CliRunner

from gis_grid.cli import app

pytestmark = pytest.mark.postgis

runner = CliRunner()
TOWNS = {"511703109": "赵家镇", "511703129": "河市镇"}


@pytest.fixture(scope="module")
def env(loaded_database_url: URL) -> dict[str, str]:
    return {"GIS_GRID_DATABASE_URL": loaded_database_url.render_as_string(hide_password=False)}


@pytest.fixture(scope="module")
def sql_totals(loaded_engine: Engine) -> dict[str, dict[str, int]]:
    """Per town: grids, households, people, points (the four layers), members, by SQL."""
    sql = """
        SELECT t.code,
          (SELECT count(*) FROM grids g
           WHERE g.valid_to IS NULL AND g.village_code LIKE t.code || '%'),
          (SELECT count(*) FROM households h WHERE h.village_code LIKE t.code || '%'),
          (SELECT sum(people) FROM households h WHERE h.village_code LIKE t.code || '%'),
          (SELECT count(*) FROM households h WHERE h.village_code LIKE t.code || '%')
          + (SELECT count(*) FROM pollution_points p WHERE p.village_code LIKE t.code || '%')
          + (SELECT count(*) FROM hazards z WHERE z.village_code LIKE t.code || '%')
          + (SELECT count(*) FROM incidents i WHERE i.village_code LIKE t.code || '%'),
          (SELECT count(*) FROM members m WHERE m.grid_code LIKE t.code || '%')
        FROM towns AS t ORDER BY t.code
    """
    keys = ("grids", "households", "people", "points", "members")
    with loaded_engine.connect() as conn:
        rows = conn.execute(sa.text(sql)).all()
    return {row[0]: dict(zip(keys, map(int, row[1:]), strict=True)) for row in rows}


def run(env: dict[str, str], *args: str):
    return runner.invoke(app, list(args), env=env)


def run_json(env: dict[str, str], *args: str) -> dict[str, dict]:
    result = run(env, *args, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    return {town["town"]: town for town in data["towns"]}


def fails_clearly(result, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in result.output, (needle, result.output)


@pytest.mark.parametrize(
    ("args", "headers"),
    [
        (["assign"], ["图层", "layer", "户数", "households", "all 5369 points"]),
        (["balance", "--band", "150-300"], ["人均", "per member", "基尼", "below_band"]),
        (["adjacency"], ["共边 m", "shared", "隔河", "barrier"]),
        (["ab-posts"], ["AB岗网格", "backup grid", "⇄", "adjacent"]),
    ],
)
def test_tables_for_both_towns(env, args, headers):
    result = run(env, *args)
    assert result.exit_code == 0, result.output
    for code, name in TOWNS.items():
        assert f"{code} {name}" in result.output
        assert f"{code}001001" in result.output  # a grid code, unwrapped
    for header in headers:
        assert header in result.output, header


def test_assign_json(env, sql_totals):
    towns = run_json(env, "assign")
    assert set(towns) == set(TOWNS)
    for code, town in towns.items():
        part = town["assignment"]
        assert part["summary"] == {
            "points": sql_totals[code]["points"],
            "mismatched": 0,
            "unassigned": 0,
            "ok": True,
        }
        assert sum(g["households"] for g in part["grids"]) == sql_totals[code]["households"]
        assert part["mismatches"] == [] and part["unassigned"] == []


def test_balance_json(env, sql_totals):
    towns = run_json(env, "balance", "--town", "511703129", "--band", "150-300", "--by", "people")
    assert list(towns) == ["511703129"]
    part = towns["511703129"]["balance"]
    expected = sql_totals["511703129"]
    summary = part["summary"]
    assert (summary["households"], summary["people"]) == (
        expected["households"],
        expected["people"],
    )
    assert summary["by"] == "people" and summary["band"] == [150, 300]
    assert sum(g["people"] for g in part["grids"]) == expected["people"]
    # by people, 150-300 per member: every grid (400+ people) is above the band
    assert summary["outside_band"] == len(part["grids"]) == expected["grids"]
    assert {i["kind"] for i in part["issues"]} == {"above_band"}


def test_adjacency_json_and_barrier_choices(env, sql_totals):
    rivers = run_json(env, "adjacency")
    for code in TOWNS:
        pairs = rivers[code]["adjacency"]["pairs"]
        assert pairs and all(p["a"] < p["b"] and p["shared_m"] >= 1 for p in pairs)
        assert rivers[code]["adjacency"]["summary"]["grids"] == sql_totals[code]["grids"]
    heshi = "511703129"  # the town with a river (and DEM streams)
    by_river = rivers[heshi]["adjacency"]["summary"]["barrier_pairs"]
    streams = run_json(env, "adjacency", "--town", heshi, "--barriers", "rivers+streams")
    none = run_json(env, "adjacency", "--town", heshi, "--barriers", "none")
    assert 0 < by_river < streams[heshi]["adjacency"]["summary"]["barrier_pairs"]
    assert none[heshi]["adjacency"]["summary"]["barrier_pairs"] == 0
    assert len(none[heshi]["adjacency"]["pairs"]) == len(rivers[heshi]["adjacency"]["pairs"])


def test_ab_posts_json_with_absent_members(env, sql_totals):
    plain = run_json(env, "ab-posts")
    for code in TOWNS:
        cover = plain[code]["ab_posts"]["cover"]
        assert len(cover) == sql_totals[code]["grids"]
        assert all(row["link"] == "adjacent" and row["backup_member"] for row in cover)
        assert "absence" not in plain[code]
    grid = "511703109001001"
    partner = next(r for r in plain["511703109"]["ab_posts"]["cover"] if r["grid"] == grid)
    absent = "M511703109001001,M511703129001001"  # one in each town
    towns = run_json(env, "ab-posts", "--absent", absent)
    for code in TOWNS:
        absence = towns[code]["absence"]
        assert absence["summary"]["covered"] == 1 and absence["uncovered"] == []
    (row,) = towns["511703109"]["absence"]["assignments"]
    assert (row["grid"], row["cover_member"]) == (grid, partner["backup_member"])
    load = {m["member"]: m for m in towns["511703109"]["absence"]["load"]}
    covering = load[partner["backup_member"]]
    assert covering["covers"] == grid and covering["extra_load"] == partner["load"]
    assert covering["total_load"] == covering["own_load"] + covering["extra_load"]


def test_ab_posts_table_with_absent(env):
    result = run(env, "ab-posts", "--town", "511703109", "--absent", "M511703109001001")
    assert result.exit_code == 0, result.output
    for header in ("今日顶岗", "cover member", "顶岗者负荷", "ab_post"):
        assert header in result.output


@pytest.mark.parametrize("band", ["300-150", "abc", "150"])
def test_bad_band(env, band):
    fails_clearly(run(env, "balance", "--band", band), "--band", band, "150-300")


def test_bad_by_and_barriers(env):
    assert run(env, "balance", "--by", "rooms").exit_code == 2
    assert run(env, "adjacency", "--barriers", "mountains").exit_code == 2


@pytest.mark.parametrize("command", ["assign", "balance", "adjacency", "ab-posts"])
def test_unknown_town(env, command):
    fails_clearly(run(env, command, "--town", "511703999"), "no town '511703999'", "511703109")


def test_unknown_absent_member(env):
    fails_clearly(run(env, "ab-posts", "--absent", "M0"), "M0 not found")
    # a member of the other town is unknown in this one
    fails_clearly(
        run(env, "ab-posts", "--town", "511703129", "--absent", "M511703109001001"),
        "M511703109001001 not found",
    )


def test_cover_refused(env, loaded_engine):
    with loaded_engine.connect() as conn:
        codes = conn.scalars(
            sa.text("SELECT code FROM members WHERE grid_code LIKE '511703109%' ORDER BY code")
        ).all()
    result = run(env, "ab-posts", "--town", "511703109", "--absent", ",".join(codes[1:]))
    fails_clearly(result, "no cover possible")
