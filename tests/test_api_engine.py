"""Spatial-engine results over HTTP: load balance and adjacency of a town or village.

Real uvicorn server over a copy of the sample (only read here), real PostGIS, real HTTP. The
numbers are checked against direct SQL on the same database.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import shapely
import sqlalchemy as sa

pytestmark = pytest.mark.postgis

V1 = "/api/v1"
ZHAOJIA = "511703109"
HESHI = "511703129"
VILLAGE = "511703109001"


@pytest.fixture(scope="module")
def client(writable_server_url: str, auth_headers) -> Iterator[httpx.Client]:
    headers = auth_headers(writable_server_url)
    with httpx.Client(base_url=writable_server_url + V1, timeout=120, headers=headers) as c:
        yield c


@pytest.fixture(scope="module")
def db(writable_database_url) -> Iterator[sa.Engine]:
    eng = sa.create_engine(writable_database_url)
    yield eng
    eng.dispose()


def rows(db: sa.Engine, query: str, **params: Any) -> dict[str, tuple]:
    """Rows keyed by their first column."""
    with db.connect() as conn:
        return {r[0]: tuple(r[1:]) for r in conn.execute(sa.text(query), params)}


@pytest.fixture(scope="module")
def town_balance(client) -> dict[str, Any]:
    r = client.get(f"/towns/{ZHAOJIA}/balance", params={"low": 150, "high": 250})
    assert r.status_code == 200, r.text
    return r.json()


def test_town_balance_agrees_with_sql(db, town_balance):
    body = town_balance
    grids = {g["grid"]: g for g in body["grids"]}
    expected = rows(
        db,
        """
        SELECT g.code,
          (SELECT count(*) FROM households h WHERE h.grid_code = g.code),
          (SELECT coalesce(sum(people), 0) FROM households h WHERE h.grid_code = g.code),
          (SELECT count(*) FROM pollution_points p WHERE p.grid_code = g.code),
          (SELECT count(*) FROM hazards z WHERE z.grid_code = g.code),
          (SELECT count(*) FROM incidents i WHERE i.grid_code = g.code
             AND i.status NOT IN ('closed', 'evaluated')),
          ST_Area(ST_Transform(g.geom, 4545)) / 1e6,
          (SELECT count(*) FROM members m WHERE m.grid_code = g.code AND m.status = 'appointed')
        FROM grids g WHERE g.valid_to IS NULL AND left(g.code, 9) = :town
        """,
        town=ZHAOJIA,
    )
    assert set(grids) == set(expected) and len(grids) == 26
    for code, (
        households,
        people,
        pollution,
        hazards,
        open_incidents,
        area,
        members,
    ) in expected.items():
        grid = grids[code]
        assert (grid["households"], grid["people"]) == (households, people), code
        assert (grid["pollution_points"], grid["hazards"]) == (pollution, hazards), code
        assert grid["open_incidents"] == open_incidents, code
        assert grid["members"] == members == 1 and len(grid["member_codes"]) == 1
        assert grid["area_km2"] == pytest.approx(area, abs=1e-3)
        assert grid["per_member"] == pytest.approx(households, abs=0.05)
        band = "below" if households < 150 else "above" if households > 250 else "within"
        assert grid["band"] == band, code
    summary = body["summary"]
    assert summary["households"] == sum(v[0] for v in expected.values())
    assert summary["outside_band"] == sum(g["band"] != "within" for g in grids.values())
    flagged = {i["grid"] for i in body["issues"] if i["kind"] in ("below_band", "above_band")}
    assert flagged == {c for c, g in grids.items() if g["band"] != "within"}
    assert body["band"] == [150, 250] and body["by"] == "households"
    assert body["assignment"]["ok"] is True


def test_spread_and_member_homes(db, town_balance):
    loads = [g["households"] for g in town_balance["grids"]]
    mean = sum(loads) / len(loads)
    spread = {s["metric"]: s for s in town_balance["spread"]}["households"]
    assert spread["mean"] == pytest.approx(mean, rel=1e-4)
    assert spread["max_dev_pct"] == pytest.approx(
        max(abs(x - mean) for x in loads) / mean * 100, rel=1e-3
    )
    cv = (sum((x - mean) ** 2 for x in loads) / len(loads)) ** 0.5 / mean
    assert spread["cv"] == pytest.approx(cv, rel=1e-3)
    gini = sum(abs(x - y) for x in loads for y in loads) / (2 * len(loads) ** 2 * mean)
    assert spread["gini"] == pytest.approx(gini, rel=1e-3)
    homes = rows(
        db,
        "SELECT m.code, m.grid_code, ST_Distance(ST_Transform(m.home, 4545), "
        "ST_Transform(g.geom, 4545)) FROM members m JOIN grids g ON g.code = m.grid_code "
        "AND g.valid_to IS NULL WHERE m.status = 'appointed' AND left(m.grid_code, 9) = :town",
        town=ZHAOJIA,
    )
    members = {m["member"]: m for m in town_balance["members"]}
    assert set(members) == set(homes)
    for code, (grid, distance) in homes.items():
        assert members[code]["grid"] == grid
        assert members[code]["home_m"] == pytest.approx(distance, abs=0.1)
        assert members[code]["home_inside"] == (distance == 0)


def test_balance_by_people_home_limit_and_village(client, db):
    r = client.get(
        f"/towns/{HESHI}/balance",
        params={"by": "people", "low": 300, "high": 700, "home_limit_m": 0},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["by"] == "people" and len(body["grids"]) == 39
    for grid in body["grids"]:
        assert grid["per_member"] == pytest.approx(grid["people"], abs=0.05)
    far = {i["member"] for i in body["issues"] if i["kind"] == "home_far"}
    assert far == {m["member"] for m in body["members"] if m["home_m"] > 0}

    r = client.get(f"/villages/{VILLAGE}/balance")
    assert r.status_code == 200, r.text
    village = r.json()
    assert village["scope"] == "village" and village["town_code"] == ZHAOJIA
    expected = rows(
        db,
        "SELECT code, (SELECT count(*) FROM households h WHERE h.grid_code = g.code) "
        "FROM grids g WHERE valid_to IS NULL AND village_code = :v",
        v=VILLAGE,
    )
    assert {g["grid"]: (g["households"],) for g in village["grids"]} == expected
    assert village["band"] is None and all(g["band"] is None for g in village["grids"])


@pytest.mark.parametrize(
    ("path", "params", "field", "status"),
    [
        (f"/towns/{ZHAOJIA}/balance", {"low": 300, "high": 200}, "low", 422),
        (f"/towns/{ZHAOJIA}/balance", {"low": 200}, "high", 422),
        (f"/towns/{ZHAOJIA}/balance", {"high": 200}, "low", 422),
        (f"/towns/{ZHAOJIA}/balance", {"low": -5, "high": 200}, "low", 422),
        (f"/towns/{ZHAOJIA}/balance", {"low": 0, "high": 0}, "high", 422),
        (f"/towns/{ZHAOJIA}/balance", {"low": "nan", "high": 200}, "low", 422),
        (f"/towns/{ZHAOJIA}/balance", {"low": 100, "high": "inf"}, "high", 422),
        (f"/towns/{ZHAOJIA}/balance", {"low": "few", "high": 200}, "low", 422),
        (f"/towns/{ZHAOJIA}/balance", {"by": "vip"}, "by", 422),
        (f"/towns/{ZHAOJIA}/balance", {"home_limit_m": -1}, "home_limit_m", 422),
        ("/towns/511703999/balance", {}, "511703999", 404),
        ("/towns/12345/balance", {}, "code", 422),
        ("/villages/511703109999/balance", {}, "511703109999", 404),
        (f"/villages/{VILLAGE}/balance", {"low": 9, "high": 1}, "low", 422),
        (f"/towns/{ZHAOJIA}/adjacency", {"barriers": "lakes"}, "barriers", 422),
        (f"/towns/{ZHAOJIA}/adjacency", {"format": "kml"}, "format", 422),
        ("/villages/511703109999/adjacency", {}, "511703109999", 404),
    ],
)
def test_engine_bad_parameters(client, path, params, field, status):
    r = client.get(path, params=params)
    assert r.status_code == status, r.text
    assert field in r.text


def test_town_adjacency_lengths_agree_with_postgis(client, db):
    r = client.get(f"/towns/{HESHI}/adjacency")
    assert r.status_code == 200, r.text
    body = r.json()
    pairs = {(p["a"], p["b"]): p for p in body["pairs"]}
    assert body["summary"]["pairs"] == len(pairs) > 39
    assert body["barriers"] == ["river"]
    assert body["summary"]["barrier_pairs"] == sum(p["barrier"] for p in pairs.values())
    expected = rows(
        db,
        """
        SELECT a.code || '|' || b.code,
               ST_Length(ST_Transform(
                   ST_Intersection(ST_Boundary(a.geom), ST_Boundary(b.geom)), 4545))
        FROM grids a JOIN grids b ON a.code < b.code AND ST_Intersects(a.geom, b.geom)
        WHERE a.valid_to IS NULL AND b.valid_to IS NULL
          AND left(a.code, 9) = :town AND left(b.code, 9) = :town
        """,
        town=HESHI,
    )
    shared = {tuple(k.split("|")): v[0] for k, v in expected.items() if v[0] >= 1.0}
    assert set(pairs) == set(shared)
    for key, length in shared.items():
        assert pairs[key]["shared_m"] == pytest.approx(length, abs=0.5), key
        assert pairs[key]["same_village"] == (key[0][:12] == key[1][:12])
        assert 0 <= pairs[key]["barrier_m"] <= pairs[key]["shared_m"]

    none = client.get(f"/towns/{HESHI}/adjacency", params={"barriers": "none"}).json()
    assert none["summary"]["barrier_pairs"] == 0 and none["barriers"] == []


def test_adjacency_geojson_and_village(client, db):
    r = client.get(f"/towns/{ZHAOJIA}/adjacency", params={"format": "geojson"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/geo+json")
    collection = r.json()
    pairs = client.get(f"/towns/{ZHAOJIA}/adjacency").json()["pairs"]
    assert len(collection["features"]) == len(pairs) == collection["numberMatched"]
    feature = collection["features"][0]
    assert feature["geometry"]["type"] == "MultiLineString"
    assert feature["id"] == f"{feature['properties']['a']}-{feature['properties']['b']}"
    line = shapely.geometry.shape(feature["geometry"])
    grids = rows(
        db,
        "SELECT code, ST_AsText(geom) FROM grids WHERE valid_to IS NULL AND code IN (:a, :b)",
        a=feature["properties"]["a"],
        b=feature["properties"]["b"],
    )
    for (wkt,) in grids.values():
        assert shapely.from_wkt(wkt).boundary.distance(line) < 1e-6

    village = client.get(f"/villages/{VILLAGE}/adjacency").json()
    assert village["scope"] == "village"
    assert all(p["a"][:12] == p["b"][:12] == VILLAGE for p in village["pairs"])
    expected = {(p["a"], p["b"]) for p in pairs if p["a"][:12] == p["b"][:12] == VILLAGE}
    assert {(p["a"], p["b"]) for p in village["pairs"]} == expected
