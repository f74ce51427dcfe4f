"""The member workflow, AB posts, absences and the day's cover over real HTTP.

A real uvicorn server over the module's writable copy of the sample; every refusal is checked
to name the field and to leave the stored rows as they were (counted with SQL here). Tests
share the copy, so each works on its own grid or members.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

from tests.security_support import TEST_USERS

pytestmark = pytest.mark.postgis

V1 = "/api/v1"
# Who acts is the logged-in account (conftest auth_headers), never a header.
ACTOR: dict[str, str] = {}
ACTOR_NAME = TEST_USERS["admin"]
ZHAOJIA, HESHI = "511703109", "511703129"
ON = "2025-06-01"


@pytest.fixture(scope="module")
def client(writable_server_url: str, auth_headers) -> Iterator[httpx.Client]:
    headers = auth_headers(writable_server_url)
    with httpx.Client(base_url=writable_server_url, timeout=60, headers={**ACTOR, **headers}) as c:
        yield c


@pytest.fixture(scope="module")
def engine(writable_database_url: URL) -> Iterator[sa.Engine]:
    eng = sa.create_engine(writable_database_url, poolclass=sa.NullPool)
    yield eng
    eng.dispose()


@pytest.fixture
def sql(engine):
    def run(query: str, **params: Any) -> Any:
        with engine.connect() as conn:
            return conn.execute(sa.text(query), params).scalar()

    return run


@pytest.fixture
def snapshot(engine):
    """Everything the routes here may write, to compare before and after a refusal."""

    def take() -> dict[str, Any]:
        with engine.connect() as conn:
            out = {
                t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar()
                for t in ("members", "member_status_changes", "ab_posts", "absences")
            }
            rows = conn.execute(
                sa.text("SELECT md5(string_agg(m::text, '|' ORDER BY id)) FROM members m")
            )
            out["members_md5"] = rows.scalar()
            return out

    return take


def grids_of(engine, village: str) -> list[str]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT code FROM grids WHERE valid_to IS NULL AND village_code = :v"),
            {"v": village},
        )
        return sorted(rows.scalars())


def appointed(sql, grid: str) -> str:
    return sql("SELECT code FROM members WHERE grid_code = :g AND status = 'appointed'", g=grid)


def body(**over: Any) -> dict[str, Any]:
    return {
        "code": "C-HTTP-1", "name": "李四", "gender": "female", "birth_date": "1992-03-04",
        "education": "大专", "phone": "13912345678", "village_code": "511703109002",
        "grid_code": "511703109002001", "applied_on": "2025-01-02",
    } | over  # fmt: skip


def assert_refused(response: httpx.Response, status: int, field: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    payload = response.json()
    if status == 422 and isinstance(payload["detail"], list):  # FastAPI's own validation
        assert any(field in map(str, err["loc"]) for err in payload["detail"]), payload
    else:
        assert field in json.dumps(payload, ensure_ascii=False), payload
    return payload


def step(client, code: str, to: str, **extra: Any) -> httpx.Response:
    return client.post(f"{V1}/members/{code}/transitions", json={"to": to, **extra})


VETTED = {
    "criminal_record": False, "relative_criminal_record": False,
    "organised_petitions": False, "cult_member": False,
}  # fmt: skip


def to_publicised(client, code: str) -> None:
    assert step(client, code, "recommended").status_code == 200
    assert client.patch(f"{V1}/members/{code}", json=VETTED).status_code == 200
    assert step(client, code, "examined", note="审查通过").status_code == 200
    assert step(client, code, "publicised", note="公示7天").status_code == 200


# --- registry writes --------------------------------------------------------------------------


def test_create_candidate_with_problems_and_masked_phone(client, sql):
    response = client.post(f"{V1}/members", json=body(veteran=True))
    assert response.status_code == 201, response.text
    member = response.json()
    assert (member["status"], member["phone"], member["score"]) == ("applied", "139****5678", 2)
    assert member["eligible"] is True
    assert {(p["field"], p["severity"]) for p in member["problems"]} == {
        (f, "warning") for f in VETTED
    }
    assert sql("SELECT phone FROM members WHERE code = 'C-HTTP-1'") == "13912345678"
    # The existing read route shows the new candidate, masked too.
    assert client.get(f"{V1}/members/C-HTTP-1").json()["phone"] == "139****5678"
    again = client.post(f"{V1}/members", json=body())
    assert_refused(again, 409, "code")


def test_ineligible_candidate_is_created_with_every_failure_named(client):
    response = client.post(
        f"{V1}/members",
        json=body(code="C-HTTP-OLD", birth_date="1970-01-01", education="初中", cult_member=True),
    )
    assert response.status_code == 201, response.text
    failures = {p["rule"] for p in response.json()["problems"] if p["severity"] == "failure"}
    assert failures == {"age", "education", "no_cult_membership"}
    assert response.json()["eligible"] is False


@pytest.mark.parametrize(
    ("payload", "status", "field"),
    [
        (body(birth_date="yesterday"), 422, "birth_date"),
        (body(birth_date="1990-02-30"), 422, "birth_date"),
        (body(birth_date="2030-01-01"), 422, "birth_date"),
        (body(party_member="maybe"), 422, "party_member"),
        (body(gender="other"), 422, "gender"),
        (body(phone="12345"), 422, "phone"),
        (body(grid_code="511703109002999"), 404, "grid_code"),
        (body(grid_code="5117031090020"), 422, "grid_code"),
        (body(grid_code="511703109001001"), 422, "grid_code"),  # not the village's grid
        (body(village_code="511703109999", grid_code="511703109999001"), 404, "village_code"),
        (body(code="has space"), 422, "code"),
        (body(colour="red"), 422, "colour"),
        ({k: v for k, v in body().items() if k != "name"}, 422, "name"),
        ({k: v for k, v in body().items() if k != "grid_code"}, 422, "grid_code"),
        (body(home={"lon": 31.0, "lat": 107.4}), 422, "home"),  # swapped
        (body(home={"lon": 116.4, "lat": 39.9}), 422, "home"),  # far from the town
        (body(home={"lon": 107.4, "lat": 31.0, "datum": "mars"}), 422, "datum"),
        (body(home={"lon": "east", "lat": 31.0}), 422, "lon"),
        (body(criminal_record="unknown"), 422, "criminal_record"),
    ],
)
def test_bad_member_input_is_refused_naming_the_field(client, snapshot, payload, status, field):
    before = snapshot()
    if payload.get("code") == "C-HTTP-1":
        payload = {**payload, "code": "C-HTTP-BAD"}
    assert_refused(client.post(f"{V1}/members", json=payload), status, field)
    assert snapshot() == before


@pytest.mark.parametrize("value", ["NaN", "Infinity"])
def test_nan_and_infinite_home_are_422(client, snapshot, value):
    before = snapshot()
    text = json.dumps(body(code="C-HTTP-NAN")).rstrip("}") + f', "home": {{"lon": {value}, '
    text += '"lat": 31.0}}'
    response = client.post(
        f"{V1}/members", content=text, headers={"Content-Type": "application/json"}
    )
    assert_refused(response, 422, "lon")
    assert snapshot() == before


def test_not_logged_in_is_401_and_stores_nothing(client, snapshot):
    before = snapshot()
    response = httpx.post(f"{client.base_url}{V1}/members", json=body(code="C-HTTP-NOACTOR"))
    assert_refused(response, 401, "logged in")
    assert snapshot() == before


def test_patch_member(client, snapshot):
    client.post(f"{V1}/members", json=body(code="C-HTTP-PATCH"))
    response = client.patch(
        f"{V1}/members/C-HTTP-PATCH", json={"party_member": True, "criminal_record": False}
    )
    assert response.status_code == 200, response.text
    assert response.json()["party_member"] is True and response.json()["criminal_record"] is False
    before = snapshot()
    for payload, status, field in [
        ({"phone": "call me"}, 422, "phone"),
        ({"birth_date": None}, 422, "birth_date"),
        ({"grid_code": "511703109002999"}, 404, "grid_code"),
        ({"status": "appointed"}, 422, "status"),
        ({"veteran": [1]}, 422, "veteran"),
    ]:
        assert_refused(client.patch(f"{V1}/members/C-HTTP-PATCH", json=payload), status, field)
    assert_refused(client.patch(f"{V1}/members/NOBODY", json={"veteran": True}), 404, "NOBODY")
    member = "M511703109003001"
    assert_refused(
        client.patch(f"{V1}/members/{member}", json={"grid_code": "511703109003002"}),
        409,
        "grid_code",
    )
    assert snapshot() == before


# --- workflow ---------------------------------------------------------------------------------


def test_whole_workflow_to_appointed_with_history(client, sql):
    grid = "511703109004001"
    create = client.post(
        f"{V1}/members",
        json=body(code="C-HTTP-WALK", village_code="511703109004", grid_code=grid),
    )
    assert create.status_code == 201, create.text
    to_publicised(client, "C-HTTP-WALK")
    incumbent = appointed(sql, grid)
    refused = step(client, "C-HTTP-WALK", "appointed", on=ON)
    payload = assert_refused(refused, 409, incumbent)
    assert payload["error"] == "ConflictError" and incumbent in payload["detail"]
    assert appointed(sql, grid) == incumbent
    response = step(client, "C-HTTP-WALK", "appointed", on=ON, replaces=incumbent, note="任命")
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["member"]["status"] == "appointed" and result["member"]["appointed_on"] == ON
    assert result["replaced"]["code"] == incumbent and result["replaced"]["status"] == "dismissed"
    history = client.get(f"{V1}/members/C-HTTP-WALK/history").json()
    assert [(h["from_status"], h["to_status"]) for h in history["data"]] == [
        (None, "applied"), ("applied", "recommended"), ("recommended", "examined"),
        ("examined", "publicised"), ("publicised", "appointed"),
    ]  # fmt: skip
    assert {h["actor"] for h in history["data"]} == {ACTOR_NAME}
    assert history["data"][-1]["note"] == "任命" and history["count"] == 5
    assert appointed(sql, grid) == "C-HTTP-WALK"
    old = client.get(f"{V1}/members/{incumbent}/history").json()["data"]
    assert old[-1]["to_status"] == "dismissed" and "C-HTTP-WALK" in old[-1]["note"]
    assert sql("SELECT dismissed_on FROM members WHERE code = :c", c=incumbent) == dt.date(
        2025, 6, 1
    )


def test_illegal_transition_is_409_naming_the_allowed_steps(client, snapshot):
    client.post(f"{V1}/members", json=body(code="C-HTTP-JUMP"))
    before = snapshot()
    payload = assert_refused(step(client, "C-HTTP-JUMP", "appointed"), 409, "to")
    assert payload["error"] == "WorkflowError"
    assert payload["problems"][0]["allowed"] == ["recommended", "dismissed"]
    assert "recommended" in payload["detail"] and "dismissed" in payload["detail"]
    assert_refused(step(client, "C-HTTP-JUMP", "examined"), 409, "to")
    assert snapshot() == before


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"to": "elected"}, "to"),
        ({}, "to"),
        ({"to": "recommended", "on": "2025-13-01"}, "on"),
        ({"to": "recommended", "note": 5}, "note"),
        ({"to": "recommended", "extra": 1}, "extra"),
    ],
)
def test_bad_transition_input_is_422(client, snapshot, payload, field):
    client.post(f"{V1}/members", json=body(code="C-HTTP-BADSTEP"))
    before = snapshot()
    response = client.post(f"{V1}/members/C-HTTP-BADSTEP/transitions", json=payload)
    assert_refused(response, 422, field)
    assert snapshot() == before


def test_transition_of_unknown_member_is_404(client, snapshot):
    before = snapshot()
    assert_refused(step(client, "NOBODY", "recommended"), 404, "NOBODY")
    assert_refused(client.get(f"{V1}/members/NOBODY/history"), 404, "NOBODY")
    assert snapshot() == before


def test_appointing_an_ineligible_candidate_is_422_listing_every_rule(client, snapshot, sql):
    grid = "511703109205001"
    client.post(
        f"{V1}/members",
        json=body(code="C-HTTP-INELIG", village_code="511703109205", grid_code=grid,
                  birth_date="1978-01-01", education="小学"),
    )  # fmt: skip
    to_publicised(client, "C-HTTP-INELIG")
    client.patch(f"{V1}/members/C-HTTP-INELIG", json={"relative_criminal_record": True})
    incumbent = appointed(sql, grid)
    before = snapshot()
    response = step(client, "C-HTTP-INELIG", "appointed", on=ON, replaces=incumbent)
    payload = assert_refused(response, 422, "birth_date")
    assert payload["error"] == "RuleError"
    assert {p["rule"] for p in payload["problems"]} == {
        "age", "education", "no_relative_criminal_record",
    }  # fmt: skip
    assert all(p["reason"] and p["reason_zh"] for p in payload["problems"])
    assert snapshot() == before and appointed(sql, grid) == incumbent


def test_examination_without_vetting_is_422(client, snapshot):
    client.post(f"{V1}/members", json=body(code="C-HTTP-UNVETTED"))
    step(client, "C-HTTP-UNVETTED", "recommended")
    before = snapshot()
    payload = assert_refused(step(client, "C-HTTP-UNVETTED", "examined"), 422, "criminal_record")
    assert len(payload["problems"]) == 4
    assert snapshot() == before


def test_dismissal_with_replacement_and_withdrawal(client, sql, snapshot):
    grid = "511703109206001"
    client.post(
        f"{V1}/members",
        json=body(code="C-HTTP-NEXT", village_code="511703109206", grid_code=grid),
    )
    to_publicised(client, "C-HTTP-NEXT")
    incumbent = appointed(sql, grid)
    before = snapshot()
    assert_refused(step(client, incumbent, "dismissed"), 422, "reason")
    assert_refused(step(client, incumbent, "dismissed", reason="x", replacement="NOBODY"), 404,
                   "replacement")  # fmt: skip
    assert snapshot() == before
    response = step(client, incumbent, "dismissed", reason="不适应工作", replacement="C-HTTP-NEXT")
    assert response.status_code == 200, response.text
    assert response.json()["member"]["code"] == "C-HTTP-NEXT"
    assert appointed(sql, grid) == "C-HTTP-NEXT"
    # A candidate withdraws before appointment.
    client.post(f"{V1}/members", json=body(code="C-HTTP-QUIT"))
    quit_ = step(client, "C-HTTP-QUIT", "dismissed", reason="本人撤回申请")
    assert quit_.json()["member"]["status"] == "dismissed"
    assert_refused(step(client, "C-HTTP-QUIT", "recommended"), 409, "to")


def test_grid_candidates_ranked(client):
    grid = "511703109212001"
    for code, extra in [("C-R-1", {}), ("C-R-2", {"party_member": True}),
                        ("C-R-3", {"education": "初中", "veteran": True})]:  # fmt: skip
        response = client.post(
            f"{V1}/members",
            json=body(code=code, village_code="511703109212", grid_code=grid, **extra),
        )
        assert response.status_code == 201, response.text
    ranked = client.get(f"{V1}/grids/{grid}/candidates", params={"on": ON}).json()
    assert [(c["rank"], c["member"]["code"], c["eligible"]) for c in ranked["data"]] == [
        (1, "C-R-2", True), (2, "C-R-1", True), (3, "C-R-3", False),
    ]  # fmt: skip
    assert ranked["on"] == ON and ranked["count"] == 3
    assert_refused(client.get(f"{V1}/grids/511703109212999/candidates"), 404, "grid_code")
    assert_refused(client.get(f"{V1}/grids/{grid}/candidates", params={"on": "soon"}), 422, "on")


# --- AB posts ---------------------------------------------------------------------------------


def test_ab_posts_preview_store_and_read(client, engine, snapshot, sql):
    empty = client.get(f"{V1}/towns/{HESHI}/ab-posts").json()
    assert empty["stored"] is False and empty["data"] == []
    before = snapshot()
    preview = client.post(f"{V1}/towns/{HESHI}/ab-posts", params={"dry_run": "true"})
    assert preview.status_code == 200, preview.text
    assert preview.json()["stored"] is False and preview.json()["count"] == 39
    assert snapshot() == before
    stored = client.post(f"{V1}/towns/{HESHI}/ab-posts").json()
    assert stored["stored"] is True and stored["count"] == 39 and stored["closed"] == 0
    assert [p["cover_grid_code"] for p in stored["data"]] == [
        p["cover_grid_code"] for p in preview.json()["data"]
    ]
    read = client.get(f"{V1}/towns/{HESHI}/ab-posts").json()
    assert read["data"] == stored["data"]
    post = read["data"][0]
    assert post["member"]["phone"].count("*") == 4 and post["link"] in {
        "adjacent", "second_ring", "nearest",
    }  # fmt: skip
    assert sql("SELECT count(*) FROM ab_posts WHERE town_code = :t", t=HESHI) == 39
    again = client.post(f"{V1}/towns/{HESHI}/ab-posts").json()
    assert again["closed"] == 39
    assert sql("SELECT count(*) FROM ab_posts WHERE town_code = :t", t=HESHI) == 78
    assert (
        sql("SELECT count(*) FROM ab_posts WHERE town_code = :t AND valid_to IS NULL", t=HESHI)
        == 39
    )
    village = post["grid_code"][:12]
    by_village = client.get(f"{V1}/towns/{HESHI}/ab-posts", params={"village": village}).json()
    assert {p["grid_code"][:12] for p in by_village["data"]} == {village}


@pytest.mark.parametrize(
    "case",
    [
        ("POST", "/towns/511703999/ab-posts", {}, 404, "511703999"),
        ("POST", "/towns/5117/ab-posts", {}, 422, "code"),
        ("POST", f"/towns/{HESHI}/ab-posts", {"dry_run": "perhaps"}, 422, "dry_run"),
        ("GET", f"/towns/{HESHI}/ab-posts", {"village": "511703109001"}, 422, "village"),
        ("GET", f"/towns/{HESHI}/ab-posts", {"village": "51170312999"}, 422, "village"),
    ],
)
def test_bad_ab_post_requests(client, snapshot, case):
    method, path, params, status, field = case
    before = snapshot()
    assert_refused(client.request(method, V1 + path, params=params), status, field)
    assert snapshot() == before


def test_set_ab_post_by_hand(client, engine, snapshot, sql):
    grids = grids_of(engine, "511703129001")
    a, b = grids[0], grids[1]
    touching = sql(
        "SELECT ST_Dimension(ST_Intersection(x.geom, y.geom)) = 1 FROM grids x, grids y "
        "WHERE x.code = :a AND y.code = :b AND x.valid_to IS NULL AND y.valid_to IS NULL",
        a=a,
        b=b,
    )
    assert touching, "the sample's first two grids of a village share a border"
    response = client.put(f"{V1}/grids/{a}/ab-post", json={"cover_grid_code": b})
    assert response.status_code == 200, response.text
    assert (response.json()["cover_grid_code"], response.json()["link"]) == (b, "adjacent")
    far = sql(
        "SELECT y.code FROM grids x, grids y WHERE x.code = :a AND x.valid_to IS NULL "
        "AND y.valid_to IS NULL AND left(y.code, 9) = :t AND NOT ST_Intersects(x.geom, y.geom) "
        "ORDER BY y.code LIMIT 1",
        a=a,
        t=HESHI,
    )
    before = snapshot()
    for payload, status, field in [
        ({"cover_grid_code": far}, 422, "cover_grid_code"),
        ({"cover_grid_code": a}, 422, "cover_grid_code"),
        ({"cover_grid_code": "511703129001999"}, 404, "cover_grid_code"),
        ({"cover_grid_code": "511703109001001"}, 422, "cover_grid_code"),  # another town
        ({"cover_grid_code": 511703129001002}, 422, "cover_grid_code"),
        ({}, 422, "cover_grid_code"),
    ]:
        assert_refused(client.put(f"{V1}/grids/{a}/ab-post", json=payload), status, field)
    assert snapshot() == before
    manual = client.put(f"{V1}/grids/{a}/ab-post", json={"cover_grid_code": far,
                                                         "reason": "两人同住一院"})  # fmt: skip
    assert manual.status_code == 200 and manual.json()["link"] == "manual"
    assert "两人同住一院" in manual.json()["source"]


# --- absences and cover -----------------------------------------------------------------------


def test_absences(client, snapshot, sql):
    member = appointed(sql, "511703109213001")
    url = f"{V1}/members/{member}/absences"
    created = client.post(url, json={"starts_on": ON, "ends_on": "2025-06-03", "reason": "病假"})
    assert created.status_code == 201, created.text
    absence = created.json()
    assert absence["member_code"] == member and absence["actor"] == ACTOR_NAME
    before = snapshot()
    for payload, status, field in [
        ({"starts_on": "2025-06-03", "ends_on": "2025-06-05", "reason": "年假"}, 409, "starts_on"),
        ({"starts_on": ON, "ends_on": "2025-05-01", "reason": "x"}, 422, "ends_on"),
        ({"starts_on": "June", "ends_on": ON, "reason": "x"}, 422, "starts_on"),
        ({"starts_on": "2025-07-01", "ends_on": "2025-07-02"}, 422, "reason"),
        ({"starts_on": "2025-07-01", "ends_on": "2025-07-02", "reason": ""}, 422, "reason"),
    ]:
        assert_refused(client.post(url, json=payload), status, field)
    client.post(f"{V1}/members", json=body(code="C-HTTP-ABS"))
    payload = {"starts_on": ON, "ends_on": ON, "reason": "x"}
    before = snapshot()
    assert_refused(client.post(f"{V1}/members/C-HTTP-ABS/absences", json=payload), 409, "status")
    assert_refused(client.post(f"{V1}/members/NOBODY/absences", json=payload), 404, "NOBODY")
    assert snapshot() == before
    listed = client.get(url).json()
    assert [a["id"] for a in listed["data"]] == [absence["id"]]
    assert client.delete(f"{V1}/absences/{absence['id']}").status_code == 204
    assert client.get(url).json()["count"] == 0
    assert_refused(client.delete(f"{V1}/absences/{absence['id']}"), 404, str(absence["id"]))
    assert_refused(client.delete(f"{V1}/absences/zero"), 422, "absence_id")


def test_cover_by_the_stored_partner_then_the_fallback(client, sql):
    pairing = client.post(f"{V1}/towns/{ZHAOJIA}/ab-posts").json()["data"]
    # A pair whose two grids both have their member (tests above replaced some).
    post = next(p for p in pairing if p["member"] and p["cover_member"])
    absent, partner = post["member"]["code"], post["cover_member"]["code"]
    day = "2025-08-01"
    nobody = client.get(f"{V1}/towns/{ZHAOJIA}/cover", params={"date": day}).json()
    assert nobody["pairing"] == "none" and nobody["data"] == []
    absence = {"starts_on": day, "ends_on": "2025-08-02", "reason": "病假"}
    assert client.post(f"{V1}/members/{absent}/absences", json=absence).status_code == 201
    cover = client.get(f"{V1}/towns/{ZHAOJIA}/cover", params={"date": day}).json()
    assert cover["pairing"] == "stored" and cover["uncovered"] == []
    (assignment,) = cover["data"]
    assert assignment["grid_code"] == post["grid_code"]
    assert (assignment["cover_member"]["code"], assignment["rule"]) == (partner, "ab_post")
    assert assignment["absent"]["code"] == absent and "*" in assignment["absent"]["phone"]
    # The partner is absent too: a fallback member covers, named with the rule used.
    client.post(f"{V1}/members/{partner}/absences", json=absence | {"reason": "培训"})
    cover = client.get(f"{V1}/towns/{ZHAOJIA}/cover", params={"date": day}).json()
    mine = next(a for a in cover["data"] if a["grid_code"] == post["grid_code"])
    assert mine["cover_member"]["code"] not in {absent, partner}
    assert mine["rule"] in {"group", "neighbour", "second_ring"}
    assert {a["grid_code"] for a in cover["data"]} | {
        u["grid_code"] for u in cover["uncovered"]
    } == {post["grid_code"], post["cover_grid_code"]}
    village = post["grid_code"][:12]
    only = client.get(
        f"{V1}/towns/{ZHAOJIA}/cover", params={"date": day, "village": village}
    ).json()
    assert {a["grid_code"][:12] for a in only["data"]} <= {village}
    later = client.get(f"{V1}/towns/{ZHAOJIA}/cover", params={"date": "2025-08-03"}).json()
    assert later["data"] == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"date": "2025-02-30"}, "date"),
        ({"date": "tomorrow"}, "date"),
        ({"village": "511703129001"}, "village"),
        ({"max_extra": 0}, "max_extra"),
    ],
)
def test_bad_cover_requests_are_422(client, params, field):
    assert_refused(client.get(f"{V1}/towns/{ZHAOJIA}/cover", params=params), 422, field)


def test_unknown_town_cover_is_404(client):
    assert_refused(client.get(f"{V1}/towns/511703999/cover"), 404, "511703999")


def test_openapi_documents_the_routes(client):
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/api/v1/members", "/api/v1/members/{code}/transitions", "/api/v1/members/{code}/history",
        "/api/v1/grids/{code}/candidates", "/api/v1/towns/{code}/ab-posts",
        "/api/v1/grids/{code}/ab-post", "/api/v1/members/{code}/absences",
        "/api/v1/absences/{absence_id}", "/api/v1/towns/{code}/cover",
    ):  # fmt: skip
        assert path in paths, path
    assert {"post", "get"} <= set(paths["/api/v1/members"])
    assert "patch" in paths["/api/v1/members/{code}"]
