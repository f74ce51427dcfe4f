"""Grid editing over HTTP: PUT/PATCH under If-Match, split, merge, dry runs, and bad input.

A real uvicorn server over the module's writable copy of the sample, real HTTP. Each test
edits its own village, reads the ETag it needs with GET first, and checks that every refused
request left the grids and the point assignments exactly as they were.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import geopandas as gpd
import httpx
import pytest
import shapely
import sqlalchemy as sa
from shapely.geometry import mapping, shape
from sqlalchemy.engine import URL, Engine

from gis_grid.assign import ASSIGNED_TABLES, assign_in_database
from gis_grid.plans import check_plan
from tests.security_support import TEST_USERS

pytestmark = pytest.mark.postgis

V1 = "/api/v1"
# Who acts is the logged-in account (conftest auth_headers), never a header.
ACTOR: dict[str, str] = {}
ACTOR_NAME = TEST_USERS["admin"]

SNAPSHOT_SQL = """
SELECT md5(coalesce((SELECT string_agg(concat_ws('|', id, code, version, valid_from, valid_to,
                                                 name, source, md5(ST_AsEWKB(geom))), ','
                                       ORDER BY id) FROM grids), '')
        || coalesce((SELECT string_agg(concat_ws('|', id, grid_code), ',' ORDER BY id)
                     FROM households), '')
        || coalesce((SELECT string_agg(concat_ws('|', id, grid_code), ',' ORDER BY id)
                     FROM incidents), ''))
"""


@pytest.fixture(scope="module")
def client(writable_server_url: str, auth_headers) -> Iterator[httpx.Client]:
    headers = auth_headers(writable_server_url)
    with httpx.Client(base_url=writable_server_url, timeout=120, headers=headers) as c:
        yield c


@pytest.fixture(scope="module")
def db(writable_database_url: URL) -> Iterator[Engine]:
    eng = sa.create_engine(writable_database_url)
    yield eng
    eng.dispose()


def snapshot(db: Engine) -> str:
    with db.connect() as conn:
        return str(conn.scalar(sa.text(SNAPSHOT_SQL)))


def read(client: httpx.Client, code: str) -> tuple[str, shapely.Geometry]:
    """The grid's ETag and shape, as a client sees them."""
    r = client.get(f"{V1}/grids/{code}")
    assert r.status_code == 200, r.text
    return r.headers["ETag"], shape(r.json()["geometry"])


def grown(client: httpx.Client, code: str, neighbour: str, radius: float = 0.0015) -> dict:
    """``code``'s outline grown over a disc of ``neighbour`` at their border (GeoJSON)."""
    _, mine = read(client, code)
    _, theirs = read(client, neighbour)
    border = shapely.line_merge(shapely.intersection(mine.boundary, theirs.boundary))
    longest = max(shapely.get_parts(border), key=shapely.length)
    middle = shapely.line_interpolate_point(longest, 0.5, normalized=True)
    bulge = shapely.intersection(theirs, shapely.buffer(middle, radius))
    return mapping(shapely.union(mine, bulge))


def assert_consistent(db: Engine) -> None:
    """Current grids tile every village exactly; points assigned as a full run would."""
    with db.connect() as conn:
        grids = gpd.read_postgis(
            "SELECT code AS grid_code, geom FROM grids WHERE valid_to IS NULL", conn, "geom"
        )
        villages = gpd.read_postgis("SELECT code AS vill_code, geom FROM villages", conn, "geom")
        assert shapely.coverage_is_valid(grids.geometry.to_numpy())
        check_plan(grids, villages, tolerance_m=0.5)
    with db.connect() as conn:
        transaction = conn.begin()
        for table in ASSIGNED_TABLES:
            assert assign_in_database(conn, table).changed == 0, table
        transaction.rollback()


def put(client: httpx.Client, code: str, body: Any, tag: str | None, **params: Any):
    headers = dict(ACTOR) | ({"If-Match": tag} if tag is not None else {})
    return client.put(f"{V1}/grids/{code}", json=body, headers=headers, params=params)


# --- PUT: redraw ------------------------------------------------------------------------------

A, B = "511703109211001", "511703109211002"


def test_put_needs_a_fresh_etag_and_moves_the_neighbour(client, db):
    tag, _ = read(client, A)
    assert tag == f'"{A}-v1"'
    body = grown(client, A, B)
    before = snapshot(db)
    missing = put(client, A, body, None)
    assert missing.status_code == 428, missing.text
    assert "If-Match" in missing.json()["detail"]
    stale = put(client, A, body, f'"{A}-v9"')
    assert stale.status_code == 412, stale.text
    assert tag in stale.json()["detail"]  # the current ETag, as GET gives it
    assert put(client, A, body, "*").status_code == 428
    assert put(client, A, body, f'W/"{A}-v1"').status_code == 412  # weak never matches
    assert snapshot(db) == before

    preview = put(client, A, body, tag, dry_run="true")
    assert preview.status_code == 200, preview.text
    assert "ETag" not in preview.headers and preview.json()["edit"]["dry_run"] is True
    assert snapshot(db) == before

    r = put(client, A, body, tag)
    assert r.status_code == 200, r.text
    assert r.headers["ETag"] == f'"{A}-v2"'
    assert r.headers["content-type"].startswith("application/geo+json")
    feature = r.json()
    assert feature["type"] == "Feature" and feature["properties"]["version"] == 2
    edit = feature["edit"]
    changes = {c["code"]: c for c in edit["changes"]}
    assert changes[A]["change"] == changes[B]["change"] == "redrawn"
    assert changes[B]["etag"] == f'"{B}-v2"'
    assert {c["code"]: c["households"] for c in preview.json()["edit"]["changes"]} == {
        c["code"]: c["households"] for c in edit["changes"]
    }
    assert edit["points_moved"] == preview.json()["edit"]["points_moved"]
    assert sum(edit["points_moved"].values()) > 0
    assert {g["properties"]["code"] for g in edit["grids"]} == set(changes)

    assert read(client, A)[0] == f'"{A}-v2"'
    history = client.get(f"{V1}/grids/{A}/versions").json()["features"]
    assert [f["properties"]["version"] for f in history] == [1, 2]
    assert history[0]["properties"]["valid_to"] == history[1]["properties"]["valid_from"]
    assert history[1]["properties"]["valid_to"] is None
    again = put(client, A, body, tag)  # the ETag read before the edit is stale now
    assert again.status_code == 412 and f'"{A}-v2"' in again.json()["detail"]
    assert_consistent(db)


def _bowtie() -> dict:
    return {
        "type": "Polygon",
        "coordinates": [
            [[107.40, 30.96], [107.41, 30.97], [107.41, 30.96], [107.40, 30.97], [107.40, 30.96]]
        ],
    }


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        (_bowtie(), 422, "Self-intersection"),
        ({"type": "Polygon", "coordinates": []}, 422, "empty"),
        (
            {
                "type": "Polygon",
                "coordinates": [
                    [[30.93, 107.41], [30.94, 107.41], [30.94, 107.42], [30.93, 107.41]]
                ],
            },
            422,
            "swapped",
        ),
        ({"type": "Polygon", "coordinates": [[[107.4, 30.9], [107.41, 30.9]]]}, 422, "linearring"),
        ({"type": "Point", "coordinates": [107.4, 30.9]}, 422, "type"),
        ({"type": "Polygon"}, 422, "coordinates"),
        ({"type": "Polygon", "coordinates": [[["a", 30.9]]]}, 422, "coordinates"),
        ({"type": "Feature", "geometry": None}, 422, "geometry"),
    ],
)
def test_put_bad_geometry_is_refused_naming_it(client, db, body, status, needle):
    code = "511703109211003"
    tag, _ = read(client, code)
    before = snapshot(db)
    r = put(client, code, body, tag)
    assert r.status_code == status, r.text
    assert needle in r.text
    if needle == "Self-intersection":
        (problem,) = r.json()["problems"]
        assert (problem["lon"], problem["lat"]) == pytest.approx((107.405, 30.965))
    assert snapshot(db) == before


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_put_non_finite_coordinates_are_refused(client, db, token):
    code = "511703109211003"
    tag, _ = read(client, code)
    before = snapshot(db)
    raw = (
        '{"type": "Polygon", "coordinates": [[[107.40, 30.96], [TOKEN, 30.97], [107.41, 30.97],'
        " [107.40, 30.96]]]}"
    ).replace("TOKEN", token)
    r = client.put(
        f"{V1}/grids/{code}",
        content=raw,
        headers=ACTOR | {"If-Match": tag, "Content-Type": "application/json"},
    )
    assert r.status_code == 422, r.text
    assert "coordinates" in json.dumps(r.json()["detail"])
    assert snapshot(db) == before


def test_put_in_another_village_or_town_is_refused_with_the_place(client, db):
    code = "511703109211003"
    tag, _ = read(client, code)
    before = snapshot(db)
    _, elsewhere = read(client, "511703129201001")  # a grid of the other town
    r = put(client, code, {"type": "Feature", "geometry": mapping(elsewhere)}, tag)
    assert r.status_code == 422 and "outside its village" in r.json()["detail"]
    _, next_door = read(client, "511703109209003")
    _, mine = read(client, code)
    taking = mapping(shapely.union(mine, next_door).buffer(0))
    r = put(client, code, taking, tag)
    assert r.status_code in (409, 422), r.text
    assert r.status_code == 422 and "511703109209" in r.json()["detail"]
    assert {"lon", "lat"} <= set(r.json()["problems"][0])
    assert snapshot(db) == before


def test_unknown_grid_datum_and_actor(client, db):
    before = snapshot(db)
    r = put(client, "511703109211099", _bowtie(), '"511703109211099-v1"')
    assert r.status_code == 404 and "511703109211099" in r.json()["detail"]
    r = put(client, "5117", _bowtie(), '"x"')
    assert r.status_code == 422 and "code" in r.text
    tag, _ = read(client, "511703109211003")
    r = put(client, "511703109211003", _bowtie(), tag, datum="wgs99")
    assert r.status_code == 422 and "datum" in r.text
    # Not logged in: 401, nothing stored.
    base = str(client.base_url).rstrip("/")
    r = httpx.put(f"{base}{V1}/grids/511703109211003", json=_bowtie(), headers={"If-Match": tag})
    assert r.status_code == 401 and "logged in" in r.text
    assert snapshot(db) == before


# --- PATCH: rename and/or redraw --------------------------------------------------------------


def test_patch_renames_as_a_new_version(client, db):
    code = "511703109003001"
    tag, shape_before = read(client, code)
    r = client.patch(
        f"{V1}/grids/{code}",
        json={"name": "六角坵东网格", "note": "renamed"},
        headers=ACTOR | {"If-Match": tag},
    )
    assert r.status_code == 200, r.text
    version = int(tag.strip('"').split("-v")[1])  # an earlier edit may have noded it
    assert r.headers["ETag"] == f'"{code}-v{version + 1}"'
    assert r.json()["properties"]["name"] == "六角坵东网格"
    assert [(c["code"], c["change"]) for c in r.json()["edit"]["changes"]] == [(code, "renamed")]
    assert shapely.equals(read(client, code)[1], shape_before)
    with db.connect() as conn:
        source = conn.scalar(
            sa.text("SELECT source FROM grids WHERE code = :c AND valid_to IS NULL"), {"c": code}
        )
    assert source == f"rename by {ACTOR_NAME}: renamed"


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({}, "name and/or geometry"),
        ({"nmae": "x"}, "nmae"),
        ({"name": 5}, "name"),
        ({"name": "  "}, "name"),
        ({"geometry": {"type": "Polygon", "coordinates": [[[107.4, "x"]]]}}, "geometry"),
    ],
)
def test_patch_bad_bodies_name_the_field(client, db, body, needle):
    code = "511703109003002"
    tag, _ = read(client, code)
    before = snapshot(db)
    r = client.patch(f"{V1}/grids/{code}", json=body, headers=ACTOR | {"If-Match": tag})
    assert r.status_code == 422, r.text
    assert needle in r.text
    assert snapshot(db) == before


# --- split ------------------------------------------------------------------------------------


def test_split_adds_the_next_code(client, db):
    code = "511703109215001"
    tag, grid = read(client, code)
    (minx, _, maxx, _), y = grid.bounds, shapely.centroid(grid).y
    line = {"type": "LineString", "coordinates": [[minx - 0.001, y], [maxx + 0.001, y]]}
    before = snapshot(db)
    for bad, status in (
        (
            {"line": {"type": "LineString", "coordinates": [[minx - 0.01, y], [minx - 0.005, y]]}},
            422,
        ),
        (
            {
                "line": {
                    "type": "Feature",
                    "geometry": {
                        "type": "LineString",
                        "coordinates": [[shapely.centroid(grid).x, y], [maxx + 0.001, y]],
                    },
                }
            },
            422,
        ),
        ({}, 422),
        ({"line": {"type": "Polygon", "coordinates": []}}, 422),
    ):
        r = client.post(f"{V1}/grids/{code}/split", json=bad, headers=ACTOR | {"If-Match": tag})
        assert r.status_code == status, r.text
        assert "line" in r.text
    r = client.post(f"{V1}/grids/{code}/split", json={"line": line}, headers=ACTOR)
    assert r.status_code == 428
    preview = client.post(
        f"{V1}/grids/{code}/split",
        json={"line": line},
        params={"dry_run": True},
        headers=ACTOR | {"If-Match": tag},
    )
    assert preview.status_code == 200, preview.text
    assert [c["change"] for c in preview.json()["edit"]["changes"]][:2] == ["redrawn", "added"]
    assert snapshot(db) == before

    r = client.post(
        f"{V1}/grids/{code}/split", json={"line": line}, headers=ACTOR | {"If-Match": tag}
    )
    assert r.status_code == 200, r.text
    assert r.headers["ETag"] == f'"{code}-v2"'
    edit = r.json()["edit"]
    new = "511703109215005"
    changes = {c["code"]: c for c in edit["changes"]}
    assert changes[new]["change"] == "added" and changes[new]["version"] == 1
    assert edit["grids_without_member"] == [new]
    assert changes[code]["area_km2"] >= changes[new]["area_km2"]
    assert client.get(f"{V1}/grids/{new}").json()["properties"]["name"] == "永必坝第5网格"
    assert_consistent(db)


# --- merge ------------------------------------------------------------------------------------


def test_merge_keeps_the_smaller_code_and_names_the_member(client, db):
    village = "511703129201"
    grids = {f"{village}00{i}": read(client, f"{village}00{i}") for i in range(1, 5)}
    pairs = [(a, b) for a in grids for b in grids if a < b]
    border = {
        (a, b): shapely.length(shapely.intersection(grids[a][1].boundary, grids[b][1].boundary))
        for a, b in pairs
    }
    near = max(border, key=border.get)
    before = snapshot(db)
    far = [p for p in pairs if border[p] == 0]
    assert far  # 001 and 004 do not touch
    a, b = far[0]
    r = client.post(
        f"{V1}/grids/{a}/merge",
        json={"other": b},
        headers=ACTOR | {"If-Match": f"{grids[a][0]}, {grids[b][0]}"},
    )
    assert r.status_code == 409 and "not neighbours" in r.json()["detail"]
    a, b = near
    other_village = "511703129202001"
    r = client.post(
        f"{V1}/grids/{a}/merge",
        json={"other": other_village},
        headers=ACTOR | {"If-Match": f"{grids[a][0]}, {read(client, other_village)[0]}"},
    )
    assert r.status_code == 409 and "different villages" in r.json()["detail"]
    r = client.post(
        f"{V1}/grids/{b}/merge", json={"other": a}, headers=ACTOR | {"If-Match": grids[b][0]}
    )
    assert r.status_code == 428 and a in r.json()["detail"]
    for bad in ({"other": "123"}, {}, {"other": a, "extra": 1}):
        r = client.post(
            f"{V1}/grids/{b}/merge",
            json=bad,
            headers=ACTOR | {"If-Match": f"{grids[a][0]}, {grids[b][0]}"},
        )
        assert r.status_code == 422 and ("other" in r.text or "extra" in r.text)
    r = client.post(
        f"{V1}/grids/{b}/merge",
        json={"other": f"{village}099"},
        headers=ACTOR | {"If-Match": f"{grids[b][0]}"},
    )
    assert r.status_code == 404
    preview = client.post(
        f"{V1}/grids/{b}/merge",
        json={"other": a},
        params={"dry_run": True},
        headers=ACTOR | {"If-Match": f"{grids[a][0]}, {grids[b][0]}"},
    )
    assert preview.status_code == 200 and preview.json()["edit"]["dry_run"] is True
    assert snapshot(db) == before

    r = client.post(
        f"{V1}/grids/{b}/merge",
        json={"other": a},
        headers=ACTOR | {"If-Match": f"{grids[a][0]}, {grids[b][0]}"},
    )
    assert r.status_code == 200, r.text
    assert r.headers["ETag"] == f'"{a}-v2"'
    edit = r.json()["edit"]
    assert [(c["code"], c["change"]) for c in edit["changes"]] == [(a, "redrawn"), (b, "retired")]
    assert [m["grid_code"] for m in edit["retired_members"]] == [b]
    gone = client.get(f"{V1}/grids/{b}")
    assert gone.status_code == 404 and "retired" in gone.json()["detail"]
    history = client.get(f"{V1}/grids/{b}/versions").json()["features"]
    assert len(history) == 1 and history[0]["properties"]["valid_to"] is not None
    assert_consistent(db)


def test_sending_back_what_get_gave_changes_nothing_in_any_datum(client, db):
    """GeoJSON rounds to 1e-7°, GCJ-02 round trips to ~1e-9°: vertices snap back exactly."""
    from gis_grid.crs import convert_geometry_datum

    code = "511703109213001"
    tag, grid = read(client, code)
    gcj = convert_geometry_datum(grid, source="cgcs2000", target="gcj02")[0]
    before = snapshot(db)
    for body, datum in (
        (mapping(grid), "cgcs2000"),
        ({"type": "Feature", "geometry": mapping(gcj), "properties": {}}, "gcj02"),
    ):
        r = put(client, code, body, tag, datum=datum)
        assert r.status_code == 200, r.text
        assert r.json()["edit"]["changes"] == [] and r.headers["ETag"] == tag
    assert snapshot(db) == before
    r = put(
        client,
        code,
        {"type": "Feature", "geometry": mapping(grid), "properties": {"name": "立人网格"}},
        tag,
    )
    assert r.status_code == 200, r.text
    assert [(c["change"], c["version"]) for c in r.json()["edit"]["changes"]] == [("renamed", 2)]
    assert read(client, code)[0] == f'"{code}-v2"'


def test_a_gap_at_the_village_edge_is_409_with_its_location(client, db):
    code, others = "511703109209004", ("511703109209002", "511703109209003")
    tag, grid = read(client, code)
    around = shapely.union_all([read(client, o)[1] for o in others])
    outer = shapely.difference(grid.boundary, shapely.buffer(around, 0.001))
    longest = max(shapely.get_parts(shapely.line_merge(outer)), key=shapely.length)
    bite = shapely.buffer(shapely.line_interpolate_point(longest, 0.5, normalized=True), 0.0003)
    before = snapshot(db)
    r = put(client, code, mapping(grid.difference(bite)), tag)
    assert r.status_code == 409, r.text
    problem = r.json()["problems"][0]
    assert bite.buffer(1e-6).contains(shapely.Point(problem["lon"], problem["lat"]))
    assert snapshot(db) == before
