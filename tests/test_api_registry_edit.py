"""Registry writes over HTTP: households, residents, pollution points, hazards, patrols.

Real uvicorn server over the module's writable copy of the sample (real PostGIS, real HTTP).
Every refusal is checked twice: a 4xx whose body names the field, and a snapshot of the
tables showing that nothing stored changed.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from gis_grid.codes import id_check_character
from gis_grid.crs import convert_lonlat
from gis_grid.privacy import mask_id_number
from tests.security_support import TEST_USERS, clear_residents, id_number_hash

pytestmark = pytest.mark.postgis

V1 = "/api/v1"
# Who acts is the logged-in account (conftest auth_headers), never a header.
ACTOR: dict[str, str] = {}
ACTOR_NAME = TEST_USERS["admin"]
GRID = "511703109001001"
OTHER_GRID = "511703129001001"
HOUSEHOLD = "5117031090010001"
TABLES = ("households", "residents", "pollution_points", "hazards", "patrol_logs", "incidents")


@pytest.fixture(scope="module")
def client(writable_server_url: str, auth_headers) -> Iterator[httpx.Client]:
    headers = auth_headers(writable_server_url)
    with httpx.Client(
        base_url=writable_server_url + V1, timeout=60, headers={**ACTOR, **headers}
    ) as c:
        yield c


@pytest.fixture(scope="module")
def db(writable_database_url) -> Iterator[sa.Engine]:
    eng = sa.create_engine(writable_database_url)
    yield eng
    eng.dispose()


def scalar(db: sa.Engine, query: str, **params: Any) -> Any:
    with db.connect() as conn:
        return conn.execute(sa.text(query), params).scalar()


def snapshot(db: sa.Engine) -> dict[str, str]:
    """A digest of every row of the registry tables: equal means nothing changed."""
    with db.connect() as conn:
        return {
            table: conn.execute(
                sa.text(
                    f"SELECT count(*) || ':' || coalesce(sum(hashtext(t::text)), 0) FROM {table} t"
                )
            ).scalar_one()
            for table in TABLES
        }


def inside(db: sa.Engine, grid: str) -> tuple[float, float]:
    """A point well inside a current grid (CGCS2000)."""
    with db.connect() as conn:
        row = conn.execute(
            sa.text(
                "SELECT ST_X(p), ST_Y(p) FROM (SELECT (ST_MaximumInscribedCircle(geom)).center "
                "AS p FROM grids WHERE code = :c AND valid_to IS NULL) s"
            ),
            {"c": grid},
        ).one()
    return float(row[0]), float(row[1])


def valid_id(birth: str = "19850612", seq: str = "123") -> str:
    """A valid GB 11643 number of a man (odd 17th digit) born on ``birth``."""
    first = f"511703{birth}{seq}"
    return first + id_check_character(first)


def refused(
    client: httpx.Client, db: sa.Engine, method: str, path: str, *, status: int = 422, **kw: Any
) -> dict[str, Any]:
    """Send a request expected to be refused; check the status and that nothing changed."""
    before = snapshot(db)
    r = client.request(method, path, **kw)
    assert r.status_code == status, r.text
    assert snapshot(db) == before
    return r.json()


def names(body: dict[str, Any]) -> str:
    """Everything in an error body that may name a field, as one text."""
    return json.dumps(body, ensure_ascii=False)


# --- households ---------------------------------------------------------------------------------


def test_household_lands_in_its_grid_from_cgcs2000_and_gcj02(client, db):
    lon, lat = inside(db, GRID)
    r = client.post(
        "/households",
        json={
            "code": "T-HH-1",
            "people": 3,
            "address": "赵家镇利群社区1组99号",
            "lon": lon,
            "lat": lat,
        },
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["placement"]["grid_code"] == GRID and body["placement"]["in_grid"]
    assert body["placement"]["village_code"] == GRID[:12]
    assert body["address"].endswith("*") and "99" not in body["address"]
    assert body["people"] == 3 and body["residents"] == 0 and body["unregistered"] == 3
    assert r.headers["Location"] == f"{V1}/households/T-HH-1"
    stored = scalar(
        db, "SELECT grid_code || '|' || village_code FROM households WHERE code='T-HH-1'"
    )
    assert stored == f"{GRID}|{GRID[:12]}"

    # The same place read off AMap (GCJ-02, ~450 m away) lands in the same grid.
    glon, glat = convert_lonlat([lon], [lat], source="cgcs2000", target="gcj02")
    r = client.post(
        "/households",
        json={
            "code": "T-HH-GCJ",
            "people": 1,
            "location": {"type": "Point", "coordinates": [float(glon[0]), float(glat[0])]},
            "datum": "gcj02",
        },
    )
    assert r.status_code == 201, r.text
    placement = r.json()["placement"]
    assert placement["grid_code"] == GRID
    assert abs(placement["lon"] - lon) < 1e-7 and abs(placement["lat"] - lat) < 1e-7
    assert client.get("/households/T-HH-GCJ").json()["properties"]["grid_code"] == GRID


def test_household_patch_moves_and_reassigns(client, db):
    lon, lat = inside(db, GRID)
    assert (
        client.post(
            "/households", json={"code": "T-HH-MOVE", "people": 2, "lon": lon, "lat": lat}
        ).status_code
        == 201
    )
    olon, olat = inside(db, OTHER_GRID)
    r = client.patch(
        "/households/T-HH-MOVE", json={"lon": olon, "lat": olat, "people": 4, "address": None}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["moved"] and body["previous_grid_code"] == GRID
    assert body["placement"]["grid_code"] == OTHER_GRID and body["people"] == 4
    row = scalar(
        db,
        "SELECT grid_code || '|' || village_code || '|' || people FROM households "
        "WHERE code = 'T-HH-MOVE'",
    )
    assert row == f"{OTHER_GRID}|{OTHER_GRID[:12]}|4"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"code": "X1", "people": "many", "lon": 107.4, "lat": 31.2}, "people"),
        ({"code": "X1", "people": 2.5, "lon": 107.4, "lat": 31.2}, "people"),
        ({"code": "X1", "people": -1, "lon": 107.4, "lat": 31.2}, "people"),
        ({"people": 2, "lon": 107.4, "lat": 31.2}, "code"),
        ({"code": "X1", "people": 2}, "location"),
        ({"code": "X1", "people": 2, "lon": 107.4}, "lat"),
        ({"code": "X 1", "people": 2, "lon": 107.4, "lat": 31.2}, "code"),
        ({"code": "X1", "people": 2, "lon": "east", "lat": 31.2}, "lon"),
        ({"code": "X1", "people": 2, "lon": 107.4, "lat": 31.2, "datum": "mars"}, "datum"),
        ({"code": "X1", "people": 2, "lon": 107.4, "lat": 31.2, "colour": "red"}, "colour"),
        (
            {"code": "X1", "people": 2, "location": {"type": "Polygon", "coordinates": [1, 2]}},
            "location",
        ),
    ],
)
def test_household_bad_input_names_the_field(client, db, body, field):
    answer = refused(client, db, "POST", "/households", json=body)
    assert field in names(answer)


@pytest.mark.parametrize("raw", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_household_non_finite_coordinates(client, db, raw):
    text = f'{{"code": "X-NAN", "people": 2, "lon": {raw}, "lat": 31.2}}'
    answer = refused(
        client,
        db,
        "POST",
        "/households",
        content=text,
        headers={"Content-Type": "application/json"},
    )
    assert "lon" in names(answer)


def test_household_swapped_outside_and_duplicate(client, db):
    lon, lat = inside(db, GRID)
    swapped = refused(
        client,
        db,
        "POST",
        "/households",
        json={"code": "X-SW", "people": 1, "lon": lat, "lat": lon},
    )
    assert "swapped" in swapped["detail"] and swapped["problems"][0]["field"] == "location"
    # Beijing: inside China, outside every village of the platform.
    outside = refused(
        client,
        db,
        "POST",
        "/households",
        json={"code": "X-BJ", "people": 1, "lon": 116.4, "lat": 39.9},
    )
    assert outside["problems"][0]["rule"] == "in_village" and "nearest grid" in outside["detail"]
    assert outside["problems"][0]["distance_m"] > 500_000
    dup = refused(
        client,
        db,
        "POST",
        "/households",
        status=409,
        json={"code": HOUSEHOLD, "people": 1, "lon": lon, "lat": lat},
    )
    assert dup["problems"][0]["field"] == "code"
    no_login = httpx.post(
        f"{str(client.base_url).rstrip('/')}/households",
        json={"code": "X-NA", "people": 1, "lon": lon, "lat": lat},
    )
    assert no_login.status_code == 401 and "logged in" in no_login.text


def test_household_patch_refusals(client, db):
    residents = scalar(
        db,
        "SELECT count(*) FROM residents r JOIN households h ON h.id = r.household_id "
        "WHERE h.code = :c",
        c=HOUSEHOLD,
    )
    answer = refused(
        client, db, "PATCH", f"/households/{HOUSEHOLD}", json={"people": residents - 1}
    )
    assert answer["problems"][0]["field"] == "people"
    answer = refused(
        client, db, "PATCH", f"/households/{HOUSEHOLD}", json={"lon": 116.4, "lat": 39.9}
    )
    assert answer["problems"][0]["field"] == "location"
    answer = refused(client, db, "PATCH", f"/households/{HOUSEHOLD}", json={"lat": 31.2})
    assert "lon" in names(answer)
    refused(client, db, "PATCH", "/households/NO-SUCH", status=404, json={"people": 1})


def test_household_delete_needs_cascade_with_residents(client, db):
    lon, lat = inside(db, GRID)
    assert (
        client.post(
            "/households", json={"code": "T-HH-DEL", "people": 0, "lon": lon, "lat": lat}
        ).status_code
        == 201
    )
    r = client.post(
        "/households/T-HH-DEL/residents",
        json={"name": "王五", "id_number": valid_id("19900101", "771")},
    )
    assert r.status_code == 201, r.text
    answer = refused(client, db, "DELETE", "/households/T-HH-DEL", status=409)
    assert "cascade" in answer["detail"]
    r = client.delete("/households/T-HH-DEL", params={"cascade": "true"})
    assert r.status_code == 200, r.text
    assert r.json() == {"code": "T-HH-DEL", "residents_deleted": 1}
    assert scalar(db, "SELECT count(*) FROM residents WHERE name = '王五'") == 0
    refused(client, db, "DELETE", "/households/T-HH-DEL", status=404)


# --- residents ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def household(client, db) -> str:
    lon, lat = inside(db, GRID)
    r = client.post("/households", json={"code": "T-HH-RES", "people": 2, "lon": lon, "lat": lat})
    assert r.status_code == 201, r.text
    return "T-HH-RES"


def test_resident_registered_masked_and_counted(client, db, household):
    number = valid_id("19850612", "123")
    r = client.post(
        f"/households/{household}/residents",
        json={
            "name": "张小明",
            "id_number": number,
            "phone": "13812341234",
            "relation": "户主",
            "whereabouts": "在家",
            "categories": ["returnee", "in_need", "returnee"],
        },
    )
    assert r.status_code == 201, r.text
    body = r.json()
    resident = body["resident"]
    assert resident["name"] == "张*明" and resident["id_number"] == mask_id_number(number)
    assert resident["phone"] == "138****1234" and number not in r.text
    assert resident["gender"] == "male" and resident["categories"] == ["returnee", "in_need"]
    assert resident["grid_code"] == GRID
    # Declared 2, now 1 registered: the size does not grow.
    assert body["household"] == {"code": household, "people": 2, "residents": 1, "unregistered": 1}
    stored = scalar(
        db, "SELECT birth_date::text || gender::text FROM residents WHERE id = :i", i=resident["id"]
    )
    assert stored == "1985-06-12male"

    second = client.post(
        f"/households/{household}/residents",
        json={
            "name": "李四",
            "relation": "配偶",
            "gender": "female",
            "id_number": valid_id("19860101", "222"),
        },
    )
    third = client.post(
        f"/households/{household}/residents",
        json={"name": "张小小", "relation": "子女", "id_number": valid_id("20150101", "333")},
    )
    assert second.status_code == third.status_code == 201, (second.text, third.text)
    assert third.json()["household"] == {
        "code": household,
        "people": 3,
        "residents": 3,
        "unregistered": 0,
    }

    # The GET routes mask the same way.
    listed = client.get("/residents", params={"household": household}).json()["data"]
    assert {item["id_number"] for item in listed} >= {mask_id_number(number)}

    # PATCH: whereabouts and categories; DELETE lowers people.
    r = client.patch(
        f"/residents/{resident['id']}", json={"whereabouts": "外出务工", "categories": []}
    )
    assert r.status_code == 200, r.text
    assert (
        r.json()["resident"]["whereabouts"] == "外出务工"
        and r.json()["resident"]["categories"] == []
    )
    r = client.delete(f"/residents/{third.json()['resident']['id']}")
    assert r.status_code == 200
    assert r.json()["household"] == {
        "code": household,
        "people": 2,
        "residents": 2,
        "unregistered": 0,
    }


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {"name": "甲", "id_number": valid_id()[:-1] + ("0" if valid_id()[-1] != "0" else "1")},
            "id_number",
        ),
        ({"name": "甲", "id_number": "511703199902301234"}, "id_number"),
        ({"name": "甲", "id_number": valid_id("20990101", "001")}, "id_number"),
        ({"name": "甲", "id_number": "12345"}, "id_number"),
        (
            {"name": "甲", "id_number": valid_id("19850612", "125"), "birth_date": "1985-06-13"},
            "birth_date",
        ),
        ({"name": "甲", "id_number": valid_id("19850612", "125"), "gender": "female"}, "gender"),
        ({"id_number": valid_id("19700101", "551"), "name": "甲", "gender": "other"}, "gender"),
        (
            {"id_number": valid_id("19700101", "551"), "name": "甲", "categories": ["vip"]},
            "categories",
        ),
        (
            {"id_number": valid_id("19700101", "551"), "name": "甲", "categories": "returnee"},
            "categories",
        ),
        ({"id_number": valid_id("19700101", "551"), "name": "甲", "phone": "12345"}, "phone"),
        ({"id_number": valid_id("19700101", "551"), "name": "甲", "relation": "朋友"}, "relation"),
        (
            {"id_number": valid_id("19700101", "551"), "name": "甲", "birth_date": "2999-01-01"},
            "birth_date",
        ),
        (
            {"id_number": valid_id("19700101", "551"), "name": "甲", "birth_date": "1999-02-30"},
            "birth_date",
        ),
        ({"id_number": valid_id("19700101", "331")}, "name"),
        ({"name": "甲"}, "id_number"),
        ({"id_number": valid_id("19700101", "551"), "name": ""}, "name"),
        ({"id_number": valid_id("19700101", "551"), "name": 42}, "name"),
    ],
)
def test_resident_bad_input_names_the_field(client, db, household, body, field):
    answer = refused(client, db, "POST", f"/households/{household}/residents", json=body)
    assert field in names(answer)
    number = body.get("id_number")
    if isinstance(number, str) and len(number) == 18:
        assert number not in json.dumps(answer)  # masked even when refused


def test_resident_duplicate_id_number_is_409_masked(client, db, household):
    with db.connect() as conn:
        first = clear_residents(conn, "r.id_number_enc IS NOT NULL")[0]
    number = first["id_number"]
    r_before = snapshot(db)
    r = client.post(
        f"/households/{household}/residents", json={"name": "重复", "id_number": number}
    )
    assert r.status_code == 409, r.text
    assert number not in r.text and mask_id_number(number) in r.text
    assert r.json()["problems"][0]["field"] == "id_number"
    assert snapshot(db) == r_before
    # Lower-case x and spaces are normalised before the check.
    resident_id = scalar(
        db, "SELECT id FROM residents WHERE id_number_hash = :n", n=id_number_hash(number)
    )
    other = scalar(
        db,
        "SELECT id FROM residents WHERE id_number_enc IS NOT NULL AND id <> :i ORDER BY id LIMIT 1",
        i=resident_id,
    )
    answer = refused(
        client,
        db,
        "PATCH",
        f"/residents/{other}",
        status=409,
        json={"id_number": f" {number.lower()} "},
    )
    assert number not in json.dumps(answer)


def test_resident_second_head_and_unknowns(client, db):
    answer = refused(
        client,
        db,
        "POST",
        f"/households/{HOUSEHOLD}/residents",
        status=409,
        json={"name": "新户主", "relation": "户主", "id_number": valid_id("19700101", "913")},
    )
    assert answer["problems"][0]["field"] == "relation"
    refused(
        client,
        db,
        "POST",
        "/households/NO-SUCH/residents",
        status=404,
        json={"name": "甲", "id_number": valid_id("19700101", "915")},
    )
    refused(client, db, "PATCH", "/residents/999999999", status=404, json={"name": "甲"})
    refused(client, db, "DELETE", "/residents/999999999", status=404)
    refused(client, db, "PATCH", "/residents/abc", json={"name": "甲"})


def test_resident_patch_checks_the_whole_record(client, db):
    resident_id, number = scalar(
        db,
        "SELECT array[id::text, id_number_masked] FROM residents WHERE gender = 'male' "
        "ORDER BY id LIMIT 1",
    )
    answer = refused(client, db, "PATCH", f"/residents/{resident_id}", json={"gender": "female"})
    assert answer["problems"][0]["field"] == "gender"
    answer = refused(
        client, db, "PATCH", f"/residents/{resident_id}", json={"birth_date": "2000-01-01"}
    )
    assert answer["problems"][0]["field"] == "birth_date"
    answer = refused(client, db, "PATCH", f"/residents/{resident_id}", json={"name": None})
    assert "name" in names(answer)
    # A new number brings its own birth date and gender.
    new = valid_id("19920229", "442")
    r = client.patch(f"/residents/{resident_id}", json={"id_number": new})
    assert r.status_code == 200, r.text
    assert (
        scalar(
            db,
            "SELECT birth_date::text || gender::text FROM residents WHERE id = :i",
            i=int(resident_id),
        )
        == "1992-02-29female"
    )
    del number


# --- pollution points, hazards, patrols ---------------------------------------------------------


def test_sites_created_patched_and_refused(client, db):
    lon, lat = inside(db, GRID)
    r = client.post(
        "/pollution-points",
        json={"code": "T-PP-1", "name": "测试排污口", "kind": "sewage", "lon": lon, "lat": lat},
    )
    assert r.status_code == 201, r.text
    assert r.json()["placement"]["grid_code"] == GRID and r.json()["level"] is None
    r = client.post(
        "/hazards",
        json={
            "code": "T-HZ-1",
            "name": "测试滑坡",
            "kind": "landslide",
            "level": 3,
            "location": {"type": "Point", "coordinates": [lon, lat]},
        },
    )
    assert r.status_code == 201, r.text
    assert r.json()["level"] == 3
    olon, olat = inside(db, OTHER_GRID)
    r = client.patch("/hazards/T-HZ-1", json={"level": 4, "lon": olon, "lat": olat})
    assert r.status_code == 200, r.text
    assert (
        r.json()["placement"]["grid_code"] == OTHER_GRID and r.json()["previous_grid_code"] == GRID
    )
    assert (
        scalar(db, "SELECT grid_code || level FROM hazards WHERE code = 'T-HZ-1'")
        == f"{OTHER_GRID}4"
    )

    for path, body, field, status in [
        (
            "/pollution-points",
            {"code": "X", "name": "n", "kind": "nuclear", "lon": lon, "lat": lat},
            "kind",
            422,
        ),
        (
            "/pollution-points",
            {"code": "X", "name": "n", "level": 2, "lon": lon, "lat": lat},
            "level",
            422,
        ),
        ("/hazards", {"code": "X", "name": "n", "lon": lon, "lat": lat}, "level", 422),
        ("/hazards", {"code": "X", "name": "n", "level": 5, "lon": lon, "lat": lat}, "level", 422),
        (
            "/hazards",
            {"code": "X", "name": "n", "level": 2, "lon": lat, "lat": lon},
            "location",
            422,
        ),
        (
            "/hazards",
            {"code": "T-HZ-1", "name": "n", "level": 2, "lon": lon, "lat": lat},
            "code",
            409,
        ),
    ]:
        assert field in names(refused(client, db, "POST", path, status=status, json=body))
    assert "kind" in names(refused(client, db, "PATCH", "/hazards/T-HZ-1", json={"kind": "meteor"}))
    refused(client, db, "PATCH", "/pollution-points/NO-SUCH", status=404, json={"name": "n"})


def test_patrols_and_serious_finding_reports_an_incident(client, db):
    code = scalar(db, "SELECT code FROM pollution_points ORDER BY code LIMIT 1")
    grid = scalar(db, "SELECT grid_code FROM pollution_points WHERE code = :c", c=code)
    member = scalar(
        db, "SELECT code FROM members WHERE grid_code = :g AND status = 'appointed'", g=grid
    )
    incidents = scalar(db, "SELECT count(*) FROM incidents")
    at = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)).isoformat()
    r = client.post(
        f"/pollution-points/{code}/patrols",
        json={"patrolled_at": at, "finding": "正常", "member_code": member},
    )
    assert r.status_code == 201, r.text
    assert r.json()["grid_code"] == grid and r.json()["incident_id"] is None
    r = client.post(
        f"/pollution-points/{code}/patrols",
        json={"patrolled_at": at, "finding": "黑水直排，举报人 13812341234", "serious": True},
    )
    assert r.status_code == 201, r.text
    patrol = r.json()
    assert patrol["incident_status"] == "reported" and patrol["task_type_code"] == "T03"
    assert "13812341234" not in r.text and "138****1234" in patrol["finding"]
    assert scalar(db, "SELECT count(*) FROM incidents") == incidents + 1
    incident = patrol["incident_id"]
    row = scalar(
        db,
        "SELECT i.grid_code || '|' || i.status || '|' || ST_Equals(i.geom, p.geom) || '|' || "
        "(SELECT count(*) FROM incident_events e WHERE e.incident_id = i.id) "
        "FROM incidents i, pollution_points p WHERE i.id = :i AND p.code = :c",
        i=incident,
        c=code,
    )
    assert row == f"{grid}|reported|true|1"
    assert (
        scalar(db, "SELECT incident_id FROM patrol_logs WHERE id = :i", i=patrol["id"]) == incident
    )

    listed = client.get(f"/pollution-points/{code}/patrols", params={"limit": 1})
    assert listed.status_code == 200
    assert listed.json()["count"] == 2 and len(listed.json()["data"]) == 1
    assert any(link["rel"] == "next" for link in listed.json()["links"])

    hazard = scalar(db, "SELECT code FROM hazards ORDER BY code LIMIT 1")
    r = client.post(
        f"/hazards/{hazard}/patrols",
        json={"patrolled_at": at, "finding": "裂缝扩大", "serious": True, "task_type_code": "T07"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["task_type_code"] == "T07"


def test_patrol_refusals(client, db):
    code = scalar(db, "SELECT code FROM hazards ORDER BY code LIMIT 1")
    now = dt.datetime.now(dt.UTC)
    path = f"/hazards/{code}/patrols"
    for body, field in [
        (
            {"patrolled_at": (now + dt.timedelta(days=1)).isoformat(), "finding": "x"},
            "patrolled_at",
        ),
        ({"patrolled_at": "yesterday", "finding": "x"}, "patrolled_at"),
        ({"finding": "x"}, "patrolled_at"),
        ({"patrolled_at": now.isoformat()}, "finding"),
        ({"patrolled_at": now.isoformat(), "finding": "x", "serious": "very"}, "serious"),
        (
            {"patrolled_at": now.isoformat(), "finding": "x", "member_code": "M-NOBODY"},
            "member_code",
        ),
        (
            {
                "patrolled_at": now.isoformat(),
                "finding": "x",
                "serious": True,
                "task_type_code": "T17",
            },
            "task_type_code",
        ),
        (
            {
                "patrolled_at": now.isoformat(),
                "finding": "x",
                "serious": True,
                "task_type_code": "T99",
            },
            "task_type_code",
        ),
    ]:
        assert field in names(refused(client, db, "POST", path, json=body)), body
    refused(
        client,
        db,
        "POST",
        "/hazards/NO-SUCH/patrols",
        status=404,
        json={"patrolled_at": now.isoformat(), "finding": "x"},
    )
    assert client.get("/hazards/NO-SUCH/patrols").status_code == 404
    assert client.get(f"/hazards/{code}/patrols", params={"limit": 0}).status_code == 422
