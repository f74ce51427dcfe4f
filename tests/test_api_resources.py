"""The resource API (villages, grids, registries, incidents, lookup) against SQL.

Real uvicorn server, real PostGIS loaded with the sample data, real HTTP (httpx). The loaded
database is shared read-only; the one test that needs grid history builds it inside a
transaction that it rolls back.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import shapely
import sqlalchemy as sa

from api import schemas
from gis_grid import queries
from gis_grid.crs import convert_lonlat
from gis_grid.errors import NotFoundError
from gis_grid.privacy import mask_address, mask_id_number, mask_name, mask_phone
from tests.security_support import clear_residents, clear_values

pytestmark = pytest.mark.postgis

V1 = "/api/v1"
GRID = "511703109001001"
VILLAGE = "511703109001"
HOUSEHOLD = "5117031090010001"


@pytest.fixture(scope="module")
def client(server_url: str, auth_headers) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server_url, timeout=60, headers=auth_headers(server_url)) as c:
        yield c


@pytest.fixture(scope="module")
def rows(loaded_engine):
    """Every row of a query on the loaded database."""

    def run(query: str, **params: Any) -> list[tuple]:
        with loaded_engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(query), params)]

    return run


@pytest.fixture(scope="module")
def scalar(loaded_engine):
    """The single value of a query on the loaded database."""

    def run(query: str, **params: Any) -> Any:
        with loaded_engine.connect() as conn:
            return conn.execute(sa.text(query), params).scalar_one()

    return run


def get(client: httpx.Client, path: str, **params: Any) -> Any:
    # params=None: an empty dict would drop the query string of a followed link.
    r = client.get(path if path.startswith("http") else V1 + path, params=params or None)
    assert r.status_code == 200, r.text
    return r.json()


def follow(client: httpx.Client, path: str, **params: Any) -> list[dict]:
    """Every item of a paged list, following ``next`` links; checks the paging on the way."""
    body = get(client, path, **params)
    items_key = "features" if "features" in body else "data"
    matched = body["numberMatched"] if items_key == "features" else body["count"]
    items, offset = [], 0
    while True:
        page = body[items_key]
        items += page
        links = {link["rel"]: link["href"] for link in body["links"]}
        assert "self" in links
        if offset > 0:
            assert "prev" in links
        if "next" not in links:
            break
        assert f"offset={offset + len(page)}" in links["next"]
        offset += len(page)
        body = get(client, links["next"])
    assert len(items) == matched
    return items


def ids(items: list[dict]) -> list:
    return [i.get("id", i.get("code")) for i in items]


# --- villages ---------------------------------------------------------------------------------


def test_villages_page_by_page_equal_the_table(client, rows, scalar):
    features = follow(client, "/villages", limit=7)
    assert ids(features) == [r[0] for r in rows("SELECT code FROM villages ORDER BY code")]
    schemas.VillageFeaturesPublic.model_validate(get(client, "/villages", limit=3))
    households = dict(rows("SELECT village_code, count(*) FROM households GROUP BY 1"))
    for f in features:
        assert f["properties"]["households"] == households.get(f["id"], 0)
        assert f["geometry"]["type"] == "MultiPolygon"


def test_village_detail_and_town_filter(client, rows, scalar):
    one = get(client, f"/villages/{VILLAGE}")
    schemas.VillageFeaturePublic.model_validate(one)
    assert one["properties"]["code"] == VILLAGE and one["properties"]["town"] == "赵家镇"
    town = follow(client, "/villages", town="511703129")
    assert len(town) == scalar("SELECT count(*) FROM villages WHERE town_code = '511703129'")


# --- grids ------------------------------------------------------------------------------------


def test_current_grids_equal_the_table(client, rows, scalar):
    features = follow(client, "/grids", limit=20)
    expected = rows("SELECT code FROM grids WHERE valid_to IS NULL ORDER BY code")
    assert [f["properties"]["code"] for f in features] == [r[0] for r in expected]
    assert all(f["properties"]["current"] for f in features)
    assert sum(f["properties"]["households"] for f in features) == scalar(
        "SELECT count(*) FROM households WHERE grid_code IS NOT NULL"
    )
    schemas.GridsPublic.model_validate(get(client, "/grids", limit=5))
    village = follow(client, "/grids", village=VILLAGE)
    assert {f["properties"]["village_code"] for f in village} == {VILLAGE}


def test_grids_as_of(client, rows, scalar):
    assert get(client, "/grids", as_of="2000-01-01")["numberMatched"] == 0
    loaded = scalar("SELECT max(valid_from) FROM grids")
    after = (loaded + dt.timedelta(seconds=1)).isoformat()
    assert get(client, "/grids", as_of=after)["numberMatched"] == scalar(
        "SELECT count(*) FROM grids WHERE valid_to IS NULL"
    )
    naive = (loaded - dt.timedelta(days=1)).astimezone(dt.timezone(dt.timedelta(hours=8)))
    before = naive.replace(tzinfo=None).isoformat()  # China time without offset
    assert get(client, "/grids", as_of=before)["numberMatched"] == 0


def test_grid_detail_etag_and_versions(client, rows, scalar):
    r = client.get(f"{V1}/grids/{GRID}")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/geo+json")
    version = scalar("SELECT version FROM grids WHERE code = :c AND valid_to IS NULL", c=GRID)
    assert r.headers["etag"] == f'"{GRID}-v{version}"'
    grid = schemas.GridPublic.model_validate(r.json())
    assert grid.properties.households == scalar(
        "SELECT count(*) FROM households WHERE grid_code = :c", c=GRID
    )
    cached = client.get(f"{V1}/grids/{GRID}", headers={"If-None-Match": r.headers["etag"]})
    assert cached.status_code == 304
    history = get(client, f"/grids/{GRID}/versions")
    assert history["numberMatched"] == scalar("SELECT count(*) FROM grids WHERE code = :c", c=GRID)
    one = get(client, f"/grids/{GRID}/versions/{version}")
    assert one["properties"]["version"] == version
    r = client.get(f"{V1}/grids/{GRID}/versions/{version + 1}")
    assert r.status_code == 404 and GRID in r.json()["detail"]


def test_grid_history_retired_grids_and_as_of(loaded_engine):
    """Versioning semantics on a history built in a transaction that is rolled back."""
    changed, retired = "511703109001001", "511703109002001"
    with loaded_engine.connect() as conn, conn.begin() as tx:
        conn.execute(
            sa.text(
                "UPDATE grids SET valid_from = '2020-01-01', valid_to = '2024-01-01' "
                "WHERE code = :c AND valid_to IS NULL"
            ),
            {"c": changed},
        )
        conn.execute(
            sa.text(
                "INSERT INTO grids (code, village_code, seq, name, version, valid_from, geom) "
                "SELECT code, village_code, seq, name, 2, '2024-01-01', "
                "ST_Multi(ST_Buffer(geom, -0.0001)) FROM grids WHERE code = :c"
            ),
            {"c": changed},
        )
        conn.execute(
            sa.text(
                "UPDATE grids SET valid_from = '2020-01-01', valid_to = '2024-06-01' "
                "WHERE code = :c"
            ),
            {"c": retired},
        )
        utc = dt.UTC

        def codes(**kw: Any) -> list[str]:
            page = queries.grid_page(conn, limit=1000, **kw)
            return [f["id"] for f in json.loads(page.features_json)]

        assert codes(as_of=dt.datetime(2022, 1, 1, tzinfo=utc)) == [
            f"{changed}-v1",
            f"{retired}-v1",
        ]
        assert codes(as_of=dt.datetime(2024, 3, 1, tzinfo=utc)) == [
            f"{changed}-v2",
            f"{retired}-v1",
        ]
        current = codes()
        assert f"{changed}-v2" in current and not any(c.startswith(retired) for c in current)
        assert queries.get_grid(conn, changed)["properties"]["version"] == 2
        history = queries.grid_versions(conn, changed)
        assert [f["properties"]["version"] for f in history] == [1, 2]
        assert history[0]["properties"]["households"] is None  # counts: current only
        with pytest.raises(NotFoundError, match="retired"):
            queries.get_grid(conn, retired)
        with pytest.raises(NotFoundError, match=retired):
            queries.grid_stats(conn, retired)
        assert queries.get_grid_version(conn, retired, 1)["properties"]["current"] is False
        tx.rollback()


def test_grid_stats_equal_sql(client, rows, scalar):
    stats = get(client, f"/grids/{GRID}/stats")
    schemas.GridStatsPublic.model_validate(stats)
    counts = rows(
        "SELECT (SELECT count(*) FROM households WHERE grid_code = :c), "
        "(SELECT coalesce(sum(people), 0) FROM households WHERE grid_code = :c), "
        "(SELECT count(*) FROM pollution_points WHERE grid_code = :c), "
        "(SELECT count(*) FROM hazards WHERE grid_code = :c), "
        "(SELECT count(*) FROM incidents WHERE grid_code = :c "
        "   AND status NOT IN ('closed', 'evaluated')), "
        "(SELECT ST_Area(ST_Transform(geom, 4545)) / 1e6 FROM grids "
        "   WHERE code = :c AND valid_to IS NULL)",
        c=GRID,
    )[0]
    households, people, pollution, hazards, open_incidents, area = counts
    assert (stats["households"], stats["people"]) == (households, people)
    assert (stats["pollution_points"], stats["hazards"]) == (pollution, hazards)
    assert stats["incidents_open"] == open_incidents
    assert stats["area_km2"] == pytest.approx(area, abs=1e-4)
    member, phone = rows(
        "SELECT code, phone FROM members WHERE grid_code = :c AND status = 'appointed'", c=GRID
    )[0]
    assert stats["member"]["code"] == member
    assert stats["member"]["phone"] == mask_phone(phone) != phone


def test_grid_stats_of_a_town_add_up(client, rows, scalar):
    for town in ("511703109", "511703129"):
        stats = follow(client, "/grids/stats", town=town, limit=25)
        assert len(stats) == scalar(
            "SELECT count(*) FROM grids WHERE valid_to IS NULL AND left(code, 9) = :t", t=town
        )
        assert sum(r["households"] for r in stats) == get(client, f"/towns/{town}")["households"]
        assert sum(r["incidents_open"] for r in stats) == scalar(
            "SELECT count(*) FROM incidents WHERE left(grid_code, 9) = :t "
            "AND status NOT IN ('closed', 'evaluated')",
            t=town,
        )


# --- registries -------------------------------------------------------------------------------


def test_members_filters_and_masked_phones(client, rows, scalar):
    members = follow(client, "/members", limit=20)
    real = dict(rows("SELECT code, phone FROM members"))
    assert [m["code"] for m in members] == sorted(real)
    for m in members:
        assert m["phone"] == mask_phone(real[m["code"]])
    in_grid = get(client, "/members", grid=GRID)
    assert [m["grid_code"] for m in in_grid["data"]] == [GRID]
    in_village = get(client, "/members", village=VILLAGE)["count"]
    assert in_village == scalar(
        "SELECT count(*) FROM members WHERE left(grid_code, 12) = :v", v=VILLAGE
    )
    assert get(client, "/members", status="dismissed")["count"] == scalar(
        "SELECT count(*) FROM members WHERE status = 'dismissed'"
    )
    one = get(client, f"/members/{members[0]['code']}")
    assert one == members[0]


def test_households_filters_and_paging(client, rows, scalar):
    in_grid = follow(client, "/households", grid=GRID, limit=40)
    expected = rows("SELECT code FROM households WHERE grid_code = :g ORDER BY code", g=GRID)
    assert ids(in_grid) == [r[0] for r in expected]
    assert not {"address", "residents"} & set(in_grid[0]["properties"])
    xs = sorted(f["geometry"]["coordinates"][0] for f in in_grid)
    box = (xs[0] - 1e-6, 30.0, (xs[len(xs) // 2] + xs[len(xs) // 2 + 1]) / 2, 32.0)
    inside = follow(client, "/households", bbox=",".join(map(str, box)), grid=GRID)
    expected_inside = {
        f["id"]
        for f in in_grid
        if shapely.box(*box).intersects(shapely.geometry.shape(f["geometry"]))
    }
    assert set(ids(inside)) == expected_inside and 0 < len(inside) < len(in_grid)
    page = get(client, "/households", village=VILLAGE, limit=10, offset=10)
    assert page["numberMatched"] == scalar(
        "SELECT count(*) FROM households WHERE village_code = :v", v=VILLAGE
    )
    prev = next(link["href"] for link in page["links"] if link["rel"] == "prev")
    assert "offset=0" in prev and f"village={VILLAGE}" in prev


def test_household_detail_masks_its_residents(client, loaded_engine, scalar):
    body = get(client, f"/households/{HOUSEHOLD}")
    schemas.HouseholdPublic.model_validate(body)
    address = scalar("SELECT address FROM households WHERE code = :c", c=HOUSEHOLD)
    assert body["properties"]["address"] == mask_address(address) != address
    with loaded_engine.connect() as conn:
        real = [
            (r["name"], r["id_number"], r["phone"])
            for r in clear_residents(conn, "h.code = :c", c=HOUSEHOLD)
        ]
    got = [(r["name"], r["id_number"], r["phone"]) for r in body["properties"]["residents"]]
    assert got == [(mask_name(n), mask_id_number(i), mask_phone(p)) for n, i, p in real]


@pytest.mark.parametrize(
    ("params", "where"),
    [
        ({"household": HOUSEHOLD}, "h.code = :x"),
        ({"grid": GRID}, "h.grid_code = :x"),
        ({"village": VILLAGE}, "h.village_code = :x"),
    ],
)
def test_residents_filters(client, rows, scalar, params, where):
    body = get(client, "/residents", limit=50, **params)
    expected = scalar(
        f"SELECT count(*) FROM residents r JOIN households h ON h.id = r.household_id "
        f"WHERE {where}",
        x=next(iter(params.values())),
    )
    assert body["count"] == expected
    schemas.ResidentsPublic.model_validate(body)


def test_residents_paging_follows_next_links(client, rows):
    residents = follow(client, "/residents", grid=GRID, limit=97)
    assert [r["id"] for r in residents] == [
        r[0]
        for r in rows(
            "SELECT r.id FROM residents r JOIN households h ON h.id = r.household_id "
            "WHERE h.grid_code = :g ORDER BY r.id",
            g=GRID,
        )
    ]


# --- pollution points, hazards, incidents, task types ----------------------------------------


@pytest.mark.parametrize(
    ("path", "table"), [("/pollution-points", "pollution_points"), ("/hazards", "hazards")]
)
def test_points_by_type_and_place(client, rows, scalar, path, table):
    everything = follow(client, path, limit=30)
    assert ids(everything) == [r[0] for r in rows(f"SELECT code FROM {table} ORDER BY code")]
    for kind, count in rows(f"SELECT kind, count(*) FROM {table} GROUP BY 1"):
        assert get(client, path, type=kind)["numberMatched"] == count
    village = everything[0]["properties"]["village_code"]
    assert get(client, path, village=village)["numberMatched"] == scalar(
        f"SELECT count(*) FROM {table} WHERE village_code = :v", v=village
    )
    one = get(client, f"{path}/{everything[0]['id']}")
    assert one == everything[0]
    r = client.get(f"{V1}{path}", params={"type": "volcano"})
    assert r.status_code == 422
    err = r.json()["detail"][0]
    assert err["loc"] == ["query", "type"]
    assert all(repr(kind) in err["msg"] for (kind,) in rows(f"SELECT DISTINCT kind FROM {table}"))


def test_hazard_level_filter(client, scalar):
    assert get(client, "/hazards", min_level=3)["numberMatched"] == scalar(
        "SELECT count(*) FROM hazards WHERE level >= 3"
    )


@pytest.mark.parametrize(
    ("params", "where"),
    [
        ({}, "TRUE"),
        ({"type": "T01"}, "task_type_code = 'T01'"),
        ({"status": "dispatched"}, "status = 'dispatched'"),
        ({"status": ["handled", "feedback"]}, "status IN ('handled', 'feedback')"),
        ({"from": "2025-03-01"}, "reported_at >= '2025-03-01T00:00:00+08:00'"),
        ({"to": "2025-03-31"}, "reported_at < '2025-04-01T00:00:00+08:00'"),
        (
            {"from": "2025-03-01T12:00:00+00:00", "to": "2025-06-30T12:00:00+00:00"},
            "reported_at >= '2025-03-01T12:00Z' AND reported_at < '2025-06-30T12:00Z'",
        ),
        ({"overdue": "true"}, "deadline < now() AND status NOT IN ('closed', 'evaluated')"),
        (
            {"overdue": "false"},
            "NOT coalesce(deadline < now() AND status NOT IN ('closed', 'evaluated'), false)",
        ),
        ({"grid": GRID}, f"grid_code = '{GRID}'"),
        (
            {"village": VILLAGE, "status": "evaluated"},
            f"village_code = '{VILLAGE}' AND status = 'evaluated'",
        ),
    ],
)
def test_incident_filters_equal_sql(client, scalar, params, where):
    body = get(client, "/incidents", limit=1000, **params)
    assert body["numberMatched"] == scalar(f"SELECT count(*) FROM incidents WHERE {where}")
    assert body["numberReturned"] == len(body["features"])
    schemas.IncidentsPublic.model_validate(body)
    assert all("title" not in f["properties"] for f in body["features"])


def test_incidents_overdue_flag_and_detail(client, scalar):
    overdue = follow(client, "/incidents", overdue="true", limit=10)
    assert overdue and all(f["properties"]["overdue"] for f in overdue)
    assert all(f["properties"]["status"] not in {"closed", "evaluated"} for f in overdue)
    one = get(client, f"/incidents/{overdue[0]['id']}")
    schemas.IncidentPublic.model_validate(one)
    assert one["properties"]["title"] == scalar(
        "SELECT title FROM incidents WHERE id = :i", i=overdue[0]["id"]
    )


def test_task_types(client, rows, scalar):
    everything = get(client, "/task-types")
    assert [t["code"] for t in everything["data"]] == [
        r[0] for r in rows("SELECT code FROM task_types ORDER BY code")
    ]
    for state, count in rows("SELECT approval_state::text, count(*) FROM task_types GROUP BY 1"):
        data = get(client, "/task-types", approval_state=state)["data"]
        assert len(data) == count
        assert all(t["assignable"] == (state == "approved") for t in data)
    t01 = get(client, "/task-types/T01")
    assert t01["incidents"] == scalar("SELECT count(*) FROM incidents WHERE task_type_code = 'T01'")


# --- lookup -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample_households(rows):
    """Every 700th household: its point, grid, village and the grid's appointed member."""
    return rows(
        "SELECT h.code, ST_X(h.geom), ST_Y(h.geom), h.grid_code, h.village_code, m.code "
        "FROM households h LEFT JOIN members m "
        "ON m.grid_code = h.grid_code AND m.status = 'appointed' "
        "WHERE h.id % 700 = 1 ORDER BY h.id"
    )


def test_lookup_of_household_points(client, sample_households):
    assert len(sample_households) >= 15
    for _, lon, lat, grid, village, member in sample_households:
        found = get(client, "/lookup", lon=repr(lon), lat=repr(lat))
        schemas.LookupPublic.model_validate(found)
        assert found["grid"]["code"] == grid
        assert found["village"]["code"] == village
        assert found["town"]["code"] == village[:9]
        assert (found["member"] or {}).get("code") == member


def test_lookup_converts_gcj02_and_bd09(client, sample_households):
    for _, lon, lat, grid, _, _ in sample_households[:5]:
        for datum in ("gcj02", "bd09"):
            x, y = convert_lonlat([lon], [lat], source="cgcs2000", target=datum)
            assert abs(float(x[0]) - lon) > 1e-3  # hundreds of metres apart
            found = get(
                client, "/lookup", lon=repr(float(x[0])), lat=repr(float(y[0])), datum=datum
            )
            assert found["grid"]["code"] == grid
            assert found["datum"] == datum
            assert found["lon"] == pytest.approx(lon, abs=1e-7)
            assert found["lat"] == pytest.approx(lat, abs=1e-7)


def test_lookup_outside_every_village_is_404_with_the_coordinate(client):
    r = client.get(f"{V1}/lookup", params={"lon": 116.391, "lat": 39.907})
    assert r.status_code == 404
    assert "116.391" in r.json()["detail"] and "39.907" in r.json()["detail"]


def test_lookup_swapped_coordinates_get_a_hint(client):
    r = client.get(f"{V1}/lookup", params={"lon": 30.96, "lat": 107.40})
    assert r.status_code == 422
    err = r.json()["detail"][0]
    assert err["loc"] == ["query", "lon"] and "swapped" in err["msg"]


# --- no personal data leaves unmasked ---------------------------------------------------------


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def test_no_full_id_number_phone_or_name_in_any_response(
    client, rows, loaded_engine, sample_households
):
    """Scan every response that carries personal data against the real values."""
    with loaded_engine.connect() as conn:
        clear = clear_values(conn)
    secrets = clear | {
        v
        for (v,) in rows(
            "SELECT phone FROM members WHERE phone IS NOT NULL "
            "UNION SELECT address FROM households WHERE address IS NOT NULL"
        )
    }
    # Members' names are public (publicised on appointment, article 7); a resident sharing
    # one would be a false alarm, as would one sharing a place or task name.
    public = " ".join(
        v
        for (v,) in rows(
            "SELECT name FROM members UNION ALL SELECT name FROM towns "
            "UNION ALL SELECT name FROM villages UNION ALL SELECT coalesce(name, '') FROM grids "
            "UNION ALL SELECT name FROM pollution_points UNION ALL SELECT name FROM hazards "
            "UNION ALL SELECT name FROM task_types UNION ALL SELECT title FROM incidents "
            "UNION ALL SELECT coalesce(relation, '') || ' ' || coalesce(whereabouts, '') "
            "FROM residents UNION ALL SELECT coalesce(education, '') FROM members"
        )
    )
    names = {n for (n,) in rows("SELECT DISTINCT name FROM residents") if n not in public}
    assert len(secrets) > 1000 and len(names) > 1000

    bodies = [
        follow(client, "/residents", village=VILLAGE, limit=1000),
        follow(client, "/residents", grid="511703129201001", limit=1000),
        follow(client, "/members", limit=1000),
        follow(client, "/grids/stats", limit=1000),
        follow(client, "/households", grid=GRID, limit=1000),
        get(client, "/incidents/1"),
        *[get(client, f"/households/{code}") for code, *_ in sample_households],
        *[get(client, "/lookup", lon=repr(x), lat=repr(y)) for _, x, y, *_ in sample_households],
    ]
    text = json.dumps(bodies, ensure_ascii=False)
    strings = set(_strings(bodies))
    assert "*" in text  # masked values are there
    leaked = (secrets | names) & strings
    leaked |= names & {s[i : i + n] for s in strings for n in (2, 3, 4) for i in range(len(s))}
    leaked |= secrets & set(re.findall(r"\d{17}[\dXx]|\d{11}", text))
    assert not leaked, f"personal data in responses: {sorted(leaked)[:5]}"


# --- bad input: 4xx naming the parameter, 404 naming the code ---------------------------------


@pytest.mark.parametrize(
    ("path", "params", "parameter"),
    [
        ("/villages", {"bbox": "107.3,31.0,107.6"}, "bbox"),
        ("/villages", {"town": "12"}, "town"),
        ("/grids", {"as_of": "last tuesday"}, "as_of"),
        ("/grids", {"bbox": "31.0,107.3,31.3,107.6"}, "bbox"),
        ("/grids", {"village": "5117031090"}, "village"),
        ("/grids/stats", {"limit": 0}, "limit"),
        ("/households", {"bbox": "107.6,31.0,107.3,31.3"}, "bbox"),
        ("/households", {"grid": "51170310900100"}, "grid"),
        ("/households", {"limit": 10_001}, "limit"),
        ("/households", {"offset": -1}, "offset"),
        ("/residents", {"limit": "ten"}, "limit"),
        ("/members", {"status": "retired"}, "status"),
        ("/incidents", {"status": "lost"}, "status"),
        ("/incidents", {"type": "T99"}, "type"),
        ("/incidents", {"from": "2025-13-01"}, "from"),
        ("/incidents", {"to": "soon"}, "to"),
        ("/incidents", {"from": "2025-06-01", "to": "2025-05-01"}, "from"),
        ("/incidents", {"overdue": "maybe"}, "overdue"),
        ("/hazards", {"min_level": 9}, "min_level"),
        ("/pollution-points", {"type": "nuclear"}, "type"),
        ("/task-types", {"approval_state": "pending"}, "approval_state"),
        ("/lookup", {"lon": 107.4}, "lat"),
        ("/lookup", {"lon": "east", "lat": 30.9}, "lon"),
        ("/lookup", {"lon": 200, "lat": 30.9}, "lon"),
        ("/lookup", {"lon": 107.4, "lat": 60}, "lat"),
        ("/lookup", {"lon": "nan", "lat": 30.9}, "lon"),
        ("/lookup", {"lon": 107.4, "lat": 30.9, "datum": "mars"}, "datum"),
        ("/grids/511703109001001/versions/0", {}, "version"),
        ("/incidents/0", {}, "incident_id"),
        ("/grids/51170310900100x", {}, "code"),
        ("/villages/5117031090", {}, "code"),
    ],
)
def test_bad_input_is_422_naming_the_parameter(client, path, params, parameter):
    r = client.get(V1 + path, params=params)
    assert r.status_code == 422, r.text
    errors = r.json()["detail"]
    assert parameter in {err["loc"][1] for err in errors}, errors
    assert all(err["msg"] for err in errors)


def test_unknown_enum_values_list_the_allowed_ones(client):
    r = client.get(f"{V1}/incidents", params={"status": "lost"})
    msg = r.json()["detail"][0]["msg"]
    assert all(s in msg for s in ("reported", "dispatched", "closed", "evaluated"))
    msg = client.get(f"{V1}/incidents", params={"type": "T99"}).json()["detail"][0]["msg"]
    assert "'T01'" in msg and "'T18'" in msg


@pytest.mark.parametrize(
    ("path", "params", "code"),
    [
        ("/villages/511703109999", {}, "511703109999"),
        ("/grids/511703109001999", {}, "511703109001999"),
        ("/grids/511703109001999/versions", {}, "511703109001999"),
        ("/grids/511703109001999/versions/1", {}, "511703109001999"),
        ("/grids/511703109001999/stats", {}, "511703109001999"),
        ("/members/M000", {}, "M000"),
        ("/households/H000", {}, "H000"),
        ("/pollution-points/P000", {}, "P000"),
        ("/hazards/Z000", {}, "Z000"),
        ("/incidents/999999", {}, "999999"),
        ("/task-types/T99", {}, "T99"),
        ("/households", {"village": "511703109999"}, "511703109999"),
        ("/members", {"grid": "511703109001999"}, "511703109001999"),
        ("/residents", {"household": "H000"}, "H000"),
        ("/grids/stats", {"town": "511703999"}, "511703999"),
        ("/incidents", {"village": "511703109999"}, "511703109999"),
    ],
)
def test_unknown_codes_are_404_naming_the_code(client, path, params, code):
    r = client.get(V1 + path, params=params)
    assert r.status_code == 404, r.text
    assert code in r.json()["detail"]
    assert r.json()["error"] == "NotFoundError"


def test_openapi_documents_the_resources(client):
    spec = client.get("/openapi.json").json()
    for path in (
        "/villages", "/villages/{code}", "/grids", "/grids/stats", "/grids/{code}",
        "/grids/{code}/versions", "/grids/{code}/versions/{version}", "/grids/{code}/stats",
        "/members", "/members/{code}", "/households", "/households/{code}", "/residents",
        "/pollution-points", "/hazards", "/incidents", "/incidents/{incident_id}",
        "/task-types", "/lookup",
    ):  # fmt: skip
        assert V1 + path in spec["paths"], path
    components = spec["components"]["schemas"]
    for name in ("GridPublic", "GridsPublic", "GridStatsPublic", "ResidentsPublic", "LookupPublic"):
        assert name in components, name
    grids = spec["paths"][f"{V1}/grids"]["get"]
    assert "application/geo+json" in grids["responses"]["200"]["content"]
    assert {p["name"] for p in grids["parameters"]} >= {"as_of", "village", "bbox", "limit"}
