"""The role table of docs/security.md, cell by cell, and row-level security through the routes.

For every area of :data:`gis_grid.security.roles.PERMISSIONS` and every role, one read and
one write route: allowed -> 2xx, not allowed -> 403 (and a request without a login -> 401).
Then a grid member through HTTP: their grid's residents, households and incidents only (by id,
by list filters, by bbox, in layers and tiles), masked, and the AB-covered grid on the day
its member is absent.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine

from gis_grid.security.context import CHINA_TIME, clear_cache
from gis_grid.security.roles import AREAS, Role, allows
from tests.security_support import TEST_USERS, clear_residents

pytestmark = pytest.mark.postgis

V1 = "/api/v1"
TOWN = "511703109"
ROLES = [r.value for r in Role]
ID_MASK = re.compile(r"^[0-9]{3}\*{11}[0-9]{3}[0-9X]$")
PHONE_MASK = re.compile(r"^[0-9]{3}\*{4}[0-9]{4}$")


@pytest.fixture(scope="module")
def db(writable_database_url: URL) -> Iterator[Engine]:
    """The owner's engine on the module's database."""
    eng = sa.create_engine(writable_database_url, poolclass=sa.NullPool)
    yield eng
    eng.dispose()


@pytest.fixture(scope="module")
def place(db: Engine) -> dict[str, Any]:
    """The test member's grid, a household point in it, a resident, another grid's items."""
    with db.connect() as conn:
        member = conn.execute(
            sa.text(
                "SELECT m.code, m.grid_code FROM users u JOIN members m ON m.code = u.member_code "
                "WHERE u.username = :u"
            ),
            {"u": TEST_USERS["member"]},
        ).one()
        grid = member.grid_code
        home = conn.execute(
            sa.text(
                "SELECT code, ST_X(geom) AS lon, ST_Y(geom) AS lat FROM households "
                "WHERE grid_code = :g ORDER BY id LIMIT 1"
            ),
            {"g": grid},
        ).one()
        other_grid = conn.scalar(
            sa.text(
                "SELECT h.grid_code FROM households h JOIN residents r ON r.household_id = h.id "
                "WHERE h.grid_code <> :g AND left(h.grid_code, 9) = :t "
                "GROUP BY h.grid_code ORDER BY count(*) DESC LIMIT 1"
            ),
            {"g": grid, "t": TOWN},
        )
        other_home = conn.scalar(
            sa.text("SELECT code FROM households WHERE grid_code = :g ORDER BY id LIMIT 1"),
            {"g": other_grid},
        )
        other_incident = conn.scalar(
            sa.text("SELECT min(id) FROM incidents WHERE grid_code IS DISTINCT FROM :g"),
            {"g": grid},
        )
        village = conn.scalar(
            sa.text(
                "SELECT village_code FROM grids WHERE valid_to IS NULL AND village_code <> "
                "left(:g, 12) AND left(village_code, 9) = :t GROUP BY village_code "
                "HAVING count(*) = 2 ORDER BY village_code LIMIT 1"
            ),
            {"g": grid, "t": TOWN},
        )
        box = conn.execute(
            sa.text(
                "SELECT ST_XMin(geom), ST_YMin(geom), ST_XMax(geom), ST_YMax(geom) FROM grids "
                "WHERE code = :g AND valid_to IS NULL"
            ),
            {"g": other_grid},
        ).one()
        own = clear_residents(conn, "h.grid_code = :g AND r.id_number_enc IS NOT NULL", g=grid)
        other = clear_residents(conn, "h.grid_code = :g", g=other_grid)
    return {
        "member": member.code,
        "grid": grid,
        "lon": home.lon,
        "lat": home.lat,
        "home": home.code,
        "other_grid": other_grid,
        "other_home": other_home,
        "other_incident": other_incident,
        "village": village,
        "other_box": ",".join(str(v) for v in box),
        "own_resident": own[0],
        "other_resident": other[0],
    }


@pytest.fixture(scope="module")
def call(writable_server_url: str, auth_headers) -> Callable[..., httpx.Response]:
    """``call(role, method, path, **kwargs)``: a request as the test account of ``role``."""

    def run(role: str | None, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if role is not None:
            headers |= auth_headers(writable_server_url, role)
        return httpx.request(
            method, f"{writable_server_url}{path}", headers=headers, timeout=180, **kwargs
        )

    return run


def _grid_etag(call: Callable[..., httpx.Response], code: str) -> str:
    r = call("admin", "GET", f"{V1}/grids/{code}")
    assert r.status_code == 200, r.text
    return r.headers["etag"]


def _read(area: str, place: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    reads: dict[str, tuple[str, str, dict[str, Any]]] = {
        "geography": ("GET", f"{V1}/towns", {}),
        "grids": ("GET", f"{V1}/grids", {"params": {"limit": 1}}),
        "plans": (
            "GET",
            f"{V1}/villages/{place['village']}/plans/counts",
            {"params": {"low": 50, "high": 2000}},
        ),
        "engine": ("GET", f"{V1}/towns/{TOWN}/balance", {}),
        "members": ("GET", f"{V1}/members", {"params": {"limit": 1}}),
        "registries": ("GET", f"{V1}/residents", {"params": {"limit": 1}}),
        "places": ("GET", f"{V1}/hazards", {"params": {"limit": 1}}),
        "incidents": ("GET", f"{V1}/incidents", {"params": {"limit": 1}}),
        "task types": ("GET", f"{V1}/task-types", {}),
        "exchange": (
            "GET",
            f"{V1}/exchange/hazards",
            {"params": {"format": "geojson", "town": TOWN}},
        ),
    }
    return reads[area]


def _write(
    area: str, role: str, place: dict[str, Any], call: Callable[..., httpx.Response]
) -> tuple[str, str, dict[str, Any]] | None:
    """One write request of ``area`` that succeeds for a role allowed to write there."""
    n = ROLES.index(role)
    at = {"lon": place["lon"], "lat": place["lat"], "datum": "cgcs2000"}
    member = {
        "code": f"C-ROLE-{n}", "name": "李四", "gender": "female", "birth_date": "1992-03-04",
        "education": "大专", "phone": "13912345678", "village_code": place["grid"][:12],
        "grid_code": place["grid"], "applied_on": "2025-01-02",
    }  # fmt: skip

    def grids() -> tuple[str, str, dict[str, Any]]:
        tag = _grid_etag(call, place["grid"])
        body = {"params": {"dry_run": "true"}, "json": {"name": "新名"}}
        return ("PATCH", f"{V1}/grids/{place['grid']}", {**body, "headers": {"If-Match": tag}})

    def exchange() -> tuple[str, str, dict[str, Any]]:
        got = call(
            "admin", "GET", f"{V1}/exchange/hazards", params={"format": "gpkg", "town": TOWN}
        )
        assert got.status_code == 200, got.text
        files = {"file": ("hazards.gpkg", got.content)}
        return ("POST", f"{V1}/exchange/hazards", {"params": {"dry_run": "true"}, "files": files})

    unmask = {"fields": ["id_number"], "reason": "核实身份 (role table test)"}
    simple: dict[str, tuple[str, str, dict[str, Any]]] = {
        "plans": (
            "POST",
            f"{V1}/villages/{place['village']}/plans",
            {"params": {"apply": "true"}, "json": {"n_grids": 2, "seed": n}},
        ),
        "engine": ("POST", f"{V1}/towns/{TOWN}/ab-posts", {"params": {"dry_run": "true"}}),
        "members": ("POST", f"{V1}/members", {"json": member}),
        "registries": (
            "POST",
            f"{V1}/households",
            {"json": {"code": f"H-ROLE-{n}", "people": 1, **at}},
        ),
        "places": (
            "POST",
            f"{V1}/hazards",
            {"json": {"code": f"HZ-ROLE-{n}", "name": "危房", "level": 1, **at}},
        ),
        "incidents": (
            "POST",
            f"{V1}/incidents",
            {"json": {"task_type_code": "T02", "title": "路灯损坏", **at}},
        ),
        "task types": ("POST", f"{V1}/task-types", {"json": {"code": f"TR{n}", "name": "新任务"}}),
        "privacy": (
            "POST",
            f"{V1}/residents/{place['own_resident']['id']}/unmask",
            {"json": unmask},
        ),
    }
    if area == "grids":
        return grids()
    if area == "exchange":
        return exchange()
    return simple.get(area)  # geography: nothing to write over HTTP


# Geography has no write route, privacy no read route (unmasking is a write): those cells
# of the table have nothing to test (test_cells_without_routes checks that they stay so).
NO_READ_ROUTE, NO_WRITE_ROUTE = {"privacy"}, {"geography"}
READ_CELLS = [(area, role) for area in AREAS if area not in NO_READ_ROUTE for role in ROLES]
WRITE_CELLS = [(area, role) for area in AREAS if area not in NO_WRITE_ROUTE for role in ROLES]


@pytest.mark.parametrize(("area", "role"), READ_CELLS, ids=[f"{a}-{r}" for a, r in READ_CELLS])
def test_read_cell(area: str, role: str, call, place) -> None:
    method, path, kwargs = _read(area, place)
    r = call(role, method, path, **kwargs)
    if allows(role, area, "read"):
        assert 200 <= r.status_code < 300, (area, role, r.status_code, r.text[:300])
    else:
        assert r.status_code == 403, (area, role, r.status_code, r.text[:300])
        assert r.json()["error"] == "PermissionDeniedError"
    assert call(None, method, path, **kwargs).status_code == 401


@pytest.mark.parametrize(("area", "role"), WRITE_CELLS, ids=[f"{a}-{r}" for a, r in WRITE_CELLS])
def test_write_cell(area: str, role: str, call, place) -> None:
    request = _write(area, role, place, call)
    assert request is not None, area
    method, path, kwargs = request
    r = call(role, method, path, **kwargs)
    if allows(role, area, "write"):
        assert 200 <= r.status_code < 300, (area, role, r.status_code, r.text[:300])
    else:
        assert r.status_code == 403, (area, role, r.status_code, r.text[:300])
    assert call(None, method, path, **kwargs).status_code == 401


def test_cells_without_routes(writable_server_url: str) -> None:
    from api.security import TAG_AREAS

    schema = httpx.get(f"{writable_server_url}/openapi.json", timeout=60).json()
    for operations in schema["paths"].values():
        for method, operation in operations.items():
            areas = {TAG_AREAS.get(tag) for tag in operation.get("tags", [])}
            if method == "get":
                assert not areas & NO_READ_ROUTE, operation.get("operationId")
            else:
                assert not areas & NO_WRITE_ROUTE, operation.get("operationId")


def test_geography_everywhere_for_every_role(call, place) -> None:
    for role in ROLES:
        for path in ("/map", "/ogc/collections", f"{V1}/layers/grids", "/tiles/grids/0/0/0.pbf"):
            r = call(role, "GET", path, params={"town": TOWN} if path == "/map" else None)
            assert r.status_code in {200, 204}, (role, path, r.status_code, r.text[:200])
            assert call(None, "GET", path).status_code == 401
    assert call(None, "GET", "/health").status_code == 200  # open


def test_applying_a_plan_is_a_write(call, place) -> None:
    # Drawing a proposal is a read (analyst may); applying it is a write (analyst may not).
    path = f"{V1}/villages/{place['village']}/plans"
    assert call("analyst", "POST", path, json={"n_grids": 2}).status_code == 200
    r = call("analyst", "POST", path, params={"apply": "true"}, json={"n_grids": 2})
    assert r.status_code == 403


# --- a grid member through HTTP -------------------------------------------------------------


def _ids(r: httpx.Response) -> list[Any]:
    assert r.status_code == 200, r.text
    body = r.json()
    items = body.get("features") or body.get("data") or []
    return [i.get("id") for i in items]


def test_member_sees_only_their_grid(call, place, db: Engine) -> None:
    grid, other = place["grid"], place["other_grid"]
    with db.connect() as conn:
        own_residents = conn.scalar(
            sa.text(
                "SELECT count(*) FROM residents r JOIN households h ON h.id = r.household_id "
                "WHERE h.grid_code = :g"
            ),
            {"g": grid},
        )
    r = call("member", "GET", f"{V1}/residents", params={"limit": 10_000})
    assert r.status_code == 200 and r.json()["count"] == own_residents
    assert {x["grid_code"] for x in r.json()["data"]} == {grid}
    for x in r.json()["data"]:
        assert x["id_number"] is None or ID_MASK.match(x["id_number"]), x
        assert x["phone"] is None or PHONE_MASK.match(x["phone"]), x
    # By list filters, by id, by bbox: nothing of the other grid.
    assert call("member", "GET", f"{V1}/residents", params={"grid": other}).json()["count"] == 0
    r = call("member", "GET", f"{V1}/residents", params={"household": place["other_home"]})
    assert r.status_code in {200, 404} and place["other_resident"]["name"] not in r.text
    assert call("member", "GET", f"{V1}/households/{place['other_home']}").status_code == 404
    assert call("member", "GET", f"{V1}/households/{place['home']}").status_code == 200
    # Both refused look-ups of another grid's household are in the audit log, as denied.
    with db.connect() as conn:
        denied = conn.execute(
            sa.text(
                "SELECT action, detail FROM audit_log WHERE username = :u "
                "AND outcome = 'denied' AND detail LIKE :d"
            ),
            {"u": TEST_USERS["member"], "d": f"%{place['other_home']}%"},
        ).all()
    assert r.status_code == 404  # the residents filter by another grid's household
    assert {action for action, _ in denied} == {"read_household", "read_residents"}, denied
    assert call("admin", "GET", f"{V1}/households/NO-SUCH-CODE").status_code == 404
    with db.connect() as conn:  # an administrator's 404 is only "no such code": not logged
        assert not conn.scalar(
            sa.text("SELECT count(*) FROM audit_log WHERE detail LIKE '%NO-SUCH-CODE%'")
        )
    in_box = {"bbox": place["other_box"], "limit": 10_000}
    r = call("member", "GET", f"{V1}/households", params=in_box)
    assert other not in r.text
    r = call("admin", "GET", f"{V1}/households", params=in_box)
    assert other in r.text  # the same query as an administrator does find them
    r = call("member", "GET", f"{V1}/incidents/{place['other_incident']}")
    assert r.status_code == 404
    r = call("member", "GET", f"{V1}/incidents", params={"limit": 10_000})
    assert {f["properties"]["grid_code"] for f in r.json()["features"]} <= {grid}
    r = call("member", "GET", f"{V1}/layers/households", params={"limit": 10_000})
    assert r.status_code == 200 and other not in r.text
    # A resident of another grid cannot be unmasked, nor changed.
    body = {"fields": ["id_number"], "reason": "越权尝试 (test)"}
    rid = place["other_resident"]["id"]
    r = call("member", "POST", f"{V1}/residents/{rid}/unmask", json=body)
    assert r.status_code == 404 and place["other_resident"]["id_number"] not in r.text
    r = call("member", "PATCH", f"{V1}/residents/{rid}", json={"whereabouts": "外出"})
    assert r.status_code == 404
    # Reporting an incident in another grid is refused by the policies, nothing stored.
    with db.connect() as conn:
        before = conn.scalar(sa.text("SELECT count(*) FROM incidents"))
        lon, lat = conn.execute(
            sa.text("SELECT ST_X(geom), ST_Y(geom) FROM households WHERE code = :c"),
            {"c": place["other_home"]},
        ).one()
    r = call(
        "member",
        "POST",
        f"{V1}/incidents",
        json={"task_type_code": "T02", "title": "越界", "lon": lon, "lat": lat},
    )
    assert r.status_code == 403, r.text
    with db.connect() as conn:
        assert conn.scalar(sa.text("SELECT count(*) FROM incidents")) == before


def test_member_sees_the_covered_grid_on_the_absence_day(call, place, db: Engine) -> None:
    grid, other = place["grid"], place["other_grid"]
    assert call("member", "GET", f"{V1}/residents", params={"grid": other}).json()["count"] == 0
    # The member of the other grid is absent today; the test member covers that grid.
    r = call(
        "admin",
        "PUT",
        f"{V1}/grids/{other}/ab-post",
        json={"cover_grid_code": grid, "reason": "test: the covering member lives nearby"},
    )
    assert r.status_code == 200, r.text
    with db.connect() as conn:
        absent = conn.scalar(
            sa.text("SELECT code FROM members WHERE grid_code = :g AND status = 'appointed'"),
            {"g": other},
        )
    today = dt.datetime.now(CHINA_TIME).date()
    r = call(
        "admin",
        "POST",
        f"{V1}/members/{absent}/absences",
        json={"starts_on": today.isoformat(), "ends_on": today.isoformat(), "reason": "培训"},
    )
    assert r.status_code == 201, r.text
    clear_cache()  # the server runs in this process: forget the member's cached grids
    me = call("member", "GET", f"{V1}/auth/me").json()
    assert set(me["grids"]) == {grid, other}
    r = call("member", "GET", f"{V1}/residents", params={"grid": other})
    assert r.json()["count"] > 0
    # The absence withdrawn: the grid is out of reach again.
    listing = call("admin", "GET", f"{V1}/members/{absent}/absences").json()
    gone = call("admin", "DELETE", f"{V1}/absences/{listing['data'][-1]['id']}")
    assert gone.status_code in {200, 204}, gone.text
    clear_cache()
    assert call("member", "GET", f"{V1}/residents", params={"grid": other}).json()["count"] == 0
