"""Drawing over HTTP: proposals, applying them, grid counts for a band, and bad input.

Real uvicorn server over the module's writable copy of the sample (real PostGIS, real HTTP).
One village is drawn (Zhaojia's 511703109209, four grids in the sample), never a county.
Every refusal is checked twice: a 4xx whose body names the field, and a digest of the grid
versions and point assignments showing that nothing stored changed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import shapely
import shapely.geometry
import sqlalchemy as sa
from shapely import wkb

from tests.security_support import TEST_USERS

pytestmark = pytest.mark.postgis

V1 = "/api/v1"
# Who acts is the logged-in account (conftest auth_headers), never a header.
ACTOR: dict[str, str] = {}
ACTOR_NAME = TEST_USERS["planner"]
TOWN = "511703109"
VILLAGE = "511703109209"
#: Zhaojia's smallest village (77 households): cannot hold a grid of 200 households.
SMALL = "511703109205"

#: Everything applying a plan may change: grid versions and the points' grid codes.
SNAPSHOT_SQL = """
SELECT md5(coalesce((SELECT string_agg(concat_ws('|', id, code, version, valid_from, valid_to,
                                                 name, source, md5(ST_AsEWKB(geom))), ','
                                       ORDER BY id) FROM grids), '')
        || coalesce((SELECT string_agg(concat_ws('|', id, grid_code), ',' ORDER BY id)
                     FROM households), '')
        || coalesce((SELECT string_agg(concat_ws('|', id, grid_code), ',' ORDER BY id)
                     FROM incidents), '')
        || coalesce((SELECT string_agg(concat_ws('|', id, grid_code), ',' ORDER BY id)
                     FROM members), ''))
"""


@pytest.fixture(scope="module")
def client(writable_server_url: str, auth_headers) -> Iterator[httpx.Client]:
    headers = auth_headers(writable_server_url, "planner")
    with httpx.Client(base_url=writable_server_url + V1, timeout=120, headers=headers) as c:
        yield c


@pytest.fixture(scope="module")
def db(writable_database_url) -> Iterator[sa.Engine]:
    eng = sa.create_engine(writable_database_url)
    yield eng
    eng.dispose()


def snapshot(db: sa.Engine) -> str:
    with db.connect() as conn:
        return str(conn.scalar(sa.text(SNAPSHOT_SQL)))


def scalar(db: sa.Engine, query: str, **params: Any) -> Any:
    with db.connect() as conn:
        return conn.execute(sa.text(query), params).scalar()


def village_geometry(db: sa.Engine, code: str) -> shapely.Geometry:
    raw = scalar(db, "SELECT ST_AsBinary(geom) FROM villages WHERE code = :c", c=code)
    return wkb.loads(bytes(raw))


def current_grids(db: sa.Engine, village: str) -> dict[str, tuple[int, shapely.Geometry, str]]:
    sql = (
        "SELECT code, version, ST_AsBinary(geom), source FROM grids "
        "WHERE village_code = :v AND valid_to IS NULL ORDER BY code"
    )
    with db.connect() as conn:
        rows = conn.execute(sa.text(sql), {"v": village}).all()
    return {r[0]: (r[1], wkb.loads(bytes(r[2])), r[3]) for r in rows}


def assert_tiles_exactly(features: list[dict[str, Any]], village: shapely.Geometry) -> None:
    geoms = [shapely.geometry.shape(f["geometry"]) for f in features]
    assert shapely.coverage_is_valid(geoms)
    union = shapely.coverage_union_all(geoms)
    for one, other in ((union, village), (village, union)):
        assert shapely.hausdorff_distance(one.boundary, other.boundary) < 1e-9
    # Square degrees: floating-point dust only (1e-16 deg² ~ 1e-6 m²).
    assert shapely.area(shapely.symmetric_difference(union, village)) < 1e-15


def refused(response: httpx.Response, status: int, *words: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    text = response.text.lower()
    for word in words:
        assert word.lower() in text, (word, body)
    return body


# --- proposals -----------------------------------------------------------------------------


def test_village_proposal_is_exact_balanced_and_writes_nothing(client, db):
    before = snapshot(db)
    r = client.post(f"/villages/{VILLAGE}/plans", json={"by": "households", "n_grids": 4})
    assert r.status_code == 200, r.text
    plan = r.json()
    assert plan["type"] == "FeatureCollection" and plan["scope"] == VILLAGE
    assert plan["applied"] is None
    features = plan["features"]
    assert len(features) == 4
    props = [f["properties"] for f in features]
    assert sorted(p["grid_code"] for p in props) == [f"{VILLAGE}{i:03d}" for i in range(1, 5)]
    households = scalar(db, "SELECT count(*) FROM households WHERE village_code = :v", v=VILLAGE)
    people = scalar(db, "SELECT sum(people) FROM households WHERE village_code = :v", v=VILLAGE)
    assert sum(p["households"] for p in props) == households
    assert sum(p["people"] for p in props) == people
    for p in props:
        assert p["target"] == pytest.approx(households / 4)
        assert p["deviation_pct"] == pytest.approx((p["load"] / p["target"] - 1) * 100)
        assert abs(p["deviation_pct"]) <= 10 and p["in_band"]
        assert 0 < p["compactness"] <= 1
    summary = plan["summary"]
    assert summary["valid"] and summary["codes_ok"] and summary["in_band"] == 4
    assert summary["max_dev_pct"] == pytest.approx(max(abs(p["deviation_pct"]) for p in props))
    assert plan["issues"] == []
    assert_tiles_exactly(features, village_geometry(db, VILLAGE))
    assert snapshot(db) == before


def test_proposal_by_people_with_a_target_and_without_lines(client, db):
    people = scalar(db, "SELECT sum(people) FROM households WHERE village_code = :v", v=VILLAGE)
    target = people / 3
    body = {"by": "people", "target": target, "tolerance": 0.1, "respect_natural_lines": False}
    r = client.post(f"/villages/{VILLAGE}/plans", json=body)
    assert r.status_code == 200, r.text
    plan = r.json()
    assert len(plan["features"]) == 3
    assert plan["summary"]["by"] == "people" and plan["summary"]["target"] == target
    assert all(f["properties"]["natural_m"] == 0 for f in plan["features"])
    assert all(abs(f["properties"]["deviation_pct"]) <= 10 for f in plan["features"])


def test_counts_for_a_band(client, db):
    households = scalar(db, "SELECT count(*) FROM households WHERE village_code = :v", v=VILLAGE)
    low, high = round(households / 4 * 0.9), round(households / 4 * 1.1)
    r = client.get(f"/villages/{VILLAGE}/plans/counts", params={"low": low, "high": high})
    assert r.status_code == 200, r.text
    counts = r.json()
    assert counts["load"] == households
    assert counts["n_min"] == -(-households // high)
    assert counts["n_max"] == households // low
    assert counts["feasible"] and counts["n_min"] <= 4 <= counts["n_max"]
    assert counts["n_min"] <= counts["grids"] <= counts["n_max"]
    assert counts["members"] == counts["grids"]
    small = client.get(f"/villages/{SMALL}/plans/counts", params={"low": 180, "high": 220})
    assert small.status_code == 200
    assert not small.json()["feasible"] and "below the floor" in small.json()["detail"]


# --- applying ------------------------------------------------------------------------------


def test_apply_features_round_trip(client, db):
    old = current_grids(db, VILLAGE)
    r = client.post(f"/villages/{VILLAGE}/plans", json={"n_grids": 3, "seed": 1})
    assert r.status_code == 200, r.text
    features = r.json()["features"]
    body = {"type": "FeatureCollection", "features": features, "note": "test round trip"}
    answer = client.post(f"/villages/{VILLAGE}/plans/apply", json=body, headers=ACTOR)
    assert answer.status_code == 200, answer.text
    applied = answer.json()
    assert applied["added"] == 3 and applied["closed"] == len(old)
    assert ACTOR_NAME in applied["source"]
    new = current_grids(db, VILLAGE)
    assert sorted(new) == sorted(f["properties"]["grid_code"] for f in features)
    for f in features:
        code = f["properties"]["grid_code"]
        version, geom, source = new[code]
        # Stored exactly as proposed (same coordinates), as a new version with provenance.
        sent = shapely.geometry.shape(f["geometry"])
        assert geom.geom_type == "MultiPolygon" and len(geom.geoms) == 1  # the column's type
        assert shapely.equals_exact(geom.geoms[0], sent, 0)
        assert version == (old[code][0] + 1 if code in old else 1)
        assert f"by {ACTOR_NAME}" in source and "test round trip" in source
    # History kept: every old version is closed, not deleted.
    closed = scalar(
        db,
        "SELECT count(*) FROM grids WHERE village_code = :v AND valid_to IS NOT NULL",
        v=VILLAGE,
    )
    assert closed >= len(old)
    # Households re-assigned to the new grids: the counts are the proposal's.
    with db.connect() as conn:
        per_grid = dict(
            conn.execute(
                sa.text(
                    "SELECT grid_code, count(*) FROM households WHERE village_code = :v "
                    "GROUP BY grid_code"
                ),
                {"v": VILLAGE},
            ).all()
        )
    assert per_grid == {
        f["properties"]["grid_code"]: f["properties"]["households"] for f in features
    }
    assert_tiles_exactly(features, village_geometry(db, VILLAGE))


def test_apply_at_once_needs_a_login(client, db):
    before = snapshot(db)
    # Not logged in: nobody to record, nothing applied.
    r = httpx.post(
        f"{str(client.base_url).rstrip('/')}/villages/{VILLAGE}/plans",
        params={"apply": "true"},
        json={"n_grids": 4},
        timeout=120,
    )
    refused(r, 401, "logged in")
    assert snapshot(db) == before
    old = current_grids(db, VILLAGE)
    r = client.post(
        f"/villages/{VILLAGE}/plans", params={"apply": "true"}, json={"n_grids": 4}, headers=ACTOR
    )
    assert r.status_code == 200, r.text
    plan = r.json()
    assert plan["applied"]["added"] == 4 and plan["applied"]["closed"] == len(old)
    new = current_grids(db, VILLAGE)
    assert sorted(new) == sorted(f["properties"]["grid_code"] for f in plan["features"])
    assert all(f"by {ACTOR_NAME}" in source for _, _, source in new.values())
    assert snapshot(db) != before


def test_locked_grid_kept_exactly(client, db):
    current = current_grids(db, VILLAGE)
    code = sorted(current)[0]
    before = snapshot(db)
    r = client.post(f"/villages/{VILLAGE}/plans", json={"n_grids": 4, "locked": [code]})
    assert r.status_code == 200, r.text
    features = {f["properties"]["grid_code"]: f for f in r.json()["features"]}
    assert len(features) == 4 and features[code]["properties"]["locked"]
    assert sum(f["properties"]["locked"] for f in features.values()) == 1
    kept = shapely.geometry.shape(features[code]["geometry"])
    stored = current[code][1]
    # Kept exactly: every stored vertex unmoved; drawn lines meeting it only add vertices
    # on its edges (within 1e-15 degrees: floating-point dust, no sliver).
    stored_vertices = set(map(tuple, shapely.get_coordinates(stored)))
    assert stored_vertices <= set(map(tuple, shapely.get_coordinates(kept)))
    assert shapely.area(shapely.symmetric_difference(kept, stored)) < 1e-15
    for one, other in ((kept, stored), (stored, kept)):
        assert shapely.hausdorff_distance(one.boundary, other.boundary) < 1e-9
    assert_tiles_exactly(list(features.values()), village_geometry(db, VILLAGE))
    assert snapshot(db) == before


# --- bad input: 4xx naming the field, nothing stored changes --------------------------------


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"tolerance": 0, "n_grids": 2}, ["tolerance"]),
        ({"tolerance": 1, "n_grids": 2}, ["tolerance"]),
        ({"tolerance": -0.1, "n_grids": 2}, ["tolerance"]),
        ({"tolerance": "wide", "n_grids": 2}, ["tolerance"]),
        ({"target": 0}, ["target"]),
        ({"target": -5}, ["target"]),
        ({"target": "NaN"}, ["target"]),
        ({"target": "Infinity"}, ["target"]),
        ({"n_grids": 0}, ["n_grids"]),
        ({"n_grids": 2.5}, ["n_grids"]),
        ({"by": "rooms", "n_grids": 2}, ["by"]),
        ({"n_grids": 2, "colour": "red"}, ["colour"]),
        ({}, ["target"]),
        ({"n_grids": 2, "locked": ["511703129001001"]}, ["locked", "511703129001001"]),
        ({"n_grids": 2, "locked": ["abc"]}, ["locked"]),
        ({"n_grids": 2, "locked": "511703109209001"}, ["locked"]),
    ],
)
def test_bad_proposal_refused(client, db, body, words):
    before = snapshot(db)
    r = client.post(
        f"/villages/{VILLAGE}/plans", json=body, params={"apply": "true"}, headers=ACTOR
    )
    refused(r, 422, *words)
    assert snapshot(db) == before


def test_n_grids_above_households_and_unknown_village(client, db):
    before = snapshot(db)
    households = scalar(db, "SELECT count(*) FROM households WHERE village_code = :v", v=SMALL)
    r = client.post(f"/villages/{SMALL}/plans", json={"n_grids": households + 1})
    body = refused(r, 422, "n_grids", str(households))
    assert body["problems"][0]["field"] == "n_grids"
    refused(client.post("/villages/511703109999/plans", json={"n_grids": 2}), 404, "511703109999")
    refused(client.post("/villages/5117031/plans", json={"n_grids": 2}), 422, "code")
    refused(client.post("/towns/511703999/plans", json={"target": 200}), 404, "511703999")
    refused(client.post(f"/towns/{TOWN}/plans", json={"target": 200, "n_grids": 3}), 422, "n_grids")
    refused(client.post(f"/villages/{VILLAGE}/plans", content=b"not json"), 422)
    assert snapshot(db) == before


def test_infeasible_band_is_422_with_the_village_report(client, db):
    before = snapshot(db)
    r = client.post(f"/villages/{SMALL}/plans", json={"target": 200, "tolerance": 0.1})
    body = refused(r, 422, SMALL, "band")
    assert body["error"] == "InfeasibleError"
    assert [p["village"] for p in body["problems"]] == [SMALL]
    town = client.post(f"/towns/{TOWN}/plans", json={"target": 200, "tolerance": 0.05})
    body = refused(town, 422, "band")
    villages = {p["village"] for p in body["problems"]}
    assert SMALL in villages and len(villages) > 1
    assert all(p["rule"] == "band" and p["detail"] for p in body["problems"])
    assert snapshot(db) == before


def test_bad_features_refused_on_apply(client, db):
    r = client.post(f"/villages/{VILLAGE}/plans", json={"n_grids": 3, "seed": 2})
    assert r.status_code == 200, r.text
    features = r.json()["features"]
    before = snapshot(db)
    url = f"/villages/{VILLAGE}/plans/apply"

    def send(items: list[dict[str, Any]], headers: dict[str, str] = ACTOR) -> httpx.Response:
        return client.post(url, json={"features": items}, headers=headers)

    base = str(client.base_url).rstrip("/")
    no_login = httpx.post(f"{base}{url}", json={"features": features}, timeout=120)
    refused(no_login, 401, "logged in")
    refused(send([]), 422, "features")
    # A gap: one grid left out.
    gap = refused(send(features[1:]), 422, VILLAGE, "gap")
    assert gap["problems"][0]["rule"] == "tiling"
    # A grid of another village.
    other = [{**features[0], "properties": {"grid_code": "511703109201001"}}, *features[1:]]
    refused(send(other), 422, "features[0]", "511703109201001")
    twice = [features[0], {**features[1], "properties": features[0]["properties"]}, *features[2:]]
    refused(send(twice), 422, "features[1]", "twice")
    coords = features[0]["geometry"]["coordinates"][0]
    x0, y0, x1, y1 = shapely.geometry.shape(features[0]["geometry"]).bounds
    bowtie = {
        "type": "Polygon",
        "coordinates": [[[x0, y0], [x1, y1], [x1, y0], [x0, y1], [x0, y0]]],
    }
    refused(send([{**features[0], "geometry": bowtie}, *features[1:]]), 422, "features[0]")
    point = {"type": "Point", "coordinates": coords[0]}
    refused(send([{**features[0], "geometry": point}, *features[1:]]), 422, "features[0]", "point")
    empty = {"type": "Polygon", "coordinates": []}
    refused(send([{**features[0], "geometry": empty}, *features[1:]]), 422, "features[0]")
    # NaN coordinates (a JSON extension Python's parser accepts) and swapped lon/lat.
    text = json.dumps({"features": features})
    first = json.dumps(coords[0][0])
    nan = client.post(
        url,
        content=text.replace(first, "NaN", 1),
        headers={**ACTOR, "content-type": "application/json"},
    )
    refused(nan, 422, "features[0]")
    swapped = {"type": "Polygon", "coordinates": [[[y, x] for x, y in coords]]}
    refused(send([{**features[0], "geometry": swapped}, *features[1:]]), 422, VILLAGE)
    nocode = [{**features[0], "properties": {}}, *features[1:]]
    refused(send(nocode), 422, "features[0]", "grid_code")
    # Overlap: the first grid grown over its neighbour.
    grown = shapely.geometry.mapping(shapely.geometry.shape(features[0]["geometry"]).buffer(0.002))
    refused(send([{**features[0], "geometry": grown}, *features[1:]]), 422, VILLAGE)
    assert snapshot(db) == before


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"low": 0, "high": 220}, ["low"]),
        ({"low": 200, "high": 100}, ["high"]),
        ({"low": "NaN", "high": 220}, ["low"]),
        ({"low": 180}, ["high"]),
        ({"low": 180, "high": 220, "by": "rooms"}, ["by"]),
    ],
)
def test_bad_counts_refused(client, params, words):
    refused(client.get(f"/villages/{VILLAGE}/plans/counts", params=params), 422, *words)


def test_counts_of_an_unknown_village(client):
    r = client.get("/villages/511703109999/plans/counts", params={"low": 180, "high": 220})
    refused(r, 404, "511703109999")
