"""The README's service walkthrough, step by step, against the real service and PostGIS.

Issue 5's "done when": redraw a grid with a stale and then a fresh ETag, appoint a member and
see an ineligible candidate refused with reasons, report an incident by GCJ-02 coordinates and
walk it to closed, and see the overdue list. The constants are the ones the README's curl
commands use: if this test changes, change the README with it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from gis_grid.crs import Datum, convert_lonlat

pytestmark = pytest.mark.postgis

# As in the README.
GRID = "511703109003001"  # 六角坵第1网格, Zhaojia
NEIGHBOUR = "511703109003003"  # shares the edge the walkthrough moves
VERTEX = 9  # index in the outer ring of the first polygon, moved 0.0002° east (~19 m)


@pytest.fixture(scope="module")
def api(writable_server_url: str, auth_headers) -> Iterator[httpx.Client]:
    headers = auth_headers(writable_server_url)
    with httpx.Client(base_url=f"{writable_server_url}/api/v1", headers=headers, timeout=60) as c:
        yield c


@pytest.fixture(scope="module")
def db(writable_database_url: sa.URL) -> Iterator[sa.Engine]:
    engine = sa.create_engine(writable_database_url)
    yield engine
    engine.dispose()


def _versions(db: sa.Engine, code: str) -> list[tuple[int, bool]]:
    with db.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT version, valid_to IS NULL FROM grids WHERE code = :c ORDER BY version"),
            {"c": code},
        ).all()
    return [(int(v), bool(current)) for v, current in rows]


def test_redraw_a_grid_with_a_stale_then_a_fresh_etag(api: httpx.Client, db: sa.Engine) -> None:
    got = api.get(f"/grids/{GRID}")
    assert got.status_code == 200
    etag = got.headers["etag"]
    assert etag == f'"{GRID}-v1"'
    geometry: dict[str, Any] = got.json()["geometry"]
    geometry["coordinates"][0][0][VERTEX][0] += 0.0002

    missing = api.put(f"/grids/{GRID}", json=geometry)
    assert missing.status_code == 428, missing.text
    stale = api.put(f"/grids/{GRID}", json=geometry, headers={"If-Match": f'"{GRID}-v0"'})
    assert stale.status_code == 412, stale.text
    assert etag in stale.json()["detail"]  # the message names the current version
    assert _versions(db, GRID) == [(1, True)]

    fresh = api.put(f"/grids/{GRID}", json=geometry, headers={"If-Match": etag})
    assert fresh.status_code == 200, fresh.text
    assert fresh.headers["etag"] == f'"{GRID}-v2"'
    changed = {c["code"]: c["change"] for c in fresh.json()["edit"]["changes"]}
    assert changed == {GRID: "redrawn", NEIGHBOUR: "redrawn"}  # the shared edge moved with it
    assert _versions(db, GRID) == [(1, False), (2, True)]
    assert _versions(db, NEIGHBOUR) == [(1, False), (2, True)]
    # the old ETag is stale now
    again = api.put(f"/grids/{GRID}", json=geometry, headers={"If-Match": etag})
    assert again.status_code == 412


def _walk(api: httpx.Client, code: str, *steps: dict[str, Any]) -> httpx.Response:
    answer = httpx.Response(500)
    for step in steps:
        answer = api.post(f"/members/{code}/transitions", json=step)
        if answer.status_code != 200:
            return answer
    return answer


def test_appoint_a_member_and_refuse_an_ineligible_one(api: httpx.Client) -> None:
    vetted = {
        "criminal_record": False,
        "relative_criminal_record": False,
        "organised_petitions": False,
        "cult_member": False,
    }
    ineligible = {
        "code": "C-WALK-OLD",
        "name": "王老五",
        "birth_date": "1970-03-01",
        "education": "初中",
        "village_code": GRID[:12],
        "grid_code": GRID,
        **vetted,
        "criminal_record": True,
    }
    created = api.post("/members", json=ineligible)
    assert created.status_code == 201, created.text
    steps = ({"to": "recommended"}, {"to": "examined"}, {"to": "publicised"})
    assert _walk(api, "C-WALK-OLD", *steps).status_code == 200
    refused = api.post("/members/C-WALK-OLD/transitions", json={"to": "appointed"})
    assert refused.status_code == 422, refused.text
    failed = {p["field"] for p in refused.json()["problems"]}
    assert {"birth_date", "education", "criminal_record"} <= failed
    assert api.get("/members/C-WALK-OLD").json()["status"] == "publicised"

    in_office = api.get(f"/grids/{GRID}").json()["properties"]["member_code"]
    eligible = {
        "code": "C-WALK-NEW",
        "name": "李青",
        "birth_date": "1996-08-08",
        "education": "大专",
        "village_code": GRID[:12],
        "grid_code": GRID,
        "party_member": True,
        **vetted,
    }
    assert api.post("/members", json=eligible).status_code == 201
    assert _walk(api, "C-WALK-NEW", *steps).status_code == 200
    # one member per grid: appointing beside the member in office is refused ...
    clash = api.post("/members/C-WALK-NEW/transitions", json={"to": "appointed"})
    assert clash.status_code == 409 and in_office in clash.text
    # ... and accepted when the new one replaces them
    appointed = api.post(
        "/members/C-WALK-NEW/transitions", json={"to": "appointed", "replaces": in_office}
    )
    assert appointed.status_code == 200, appointed.text
    assert api.get(f"/grids/{GRID}").json()["properties"]["member_code"] == "C-WALK-NEW"
    history = api.get("/members/C-WALK-NEW/history").json()["data"]
    assert [h["to_status"] for h in history] == [
        "applied",
        "recommended",
        "examined",
        "publicised",
        "appointed",
    ]


def test_report_by_gcj02_walk_to_closed_and_supervise(api: httpx.Client) -> None:
    # A point inside the grid, as a phone running AMap would give it (GCJ-02).
    grid = api.get(f"/grids/{GRID}").json()
    inside = api.get("/households", params={"grid": GRID, "limit": 1}).json()["features"][0]
    lon, lat = inside["geometry"]["coordinates"]
    gcj = convert_lonlat([lon], [lat], source=Datum.CGCS2000, target=Datum.GCJ02)
    gcj_lon, gcj_lat = float(gcj[0][0]), float(gcj[1][0])
    assert abs(gcj_lon - lon) > 0.002  # several hundred metres apart: the datum matters
    report = {
        "task_type_code": "T02",
        "title": "路灯损坏",
        "lon": round(gcj_lon, 6),
        "lat": round(gcj_lat, 6),
        "datum": "gcj02",
    }
    created = api.post("/incidents", json=report)
    assert created.status_code == 201, created.text
    incident = created.json()
    assert incident["properties"]["grid_code"] == GRID
    assert incident["properties"]["member"]["code"] == grid["properties"]["member_code"]
    iid = incident["id"]

    illegal = api.post(f"/incidents/{iid}/transitions", json={"to": "closed"})
    assert illegal.status_code in (409, 422), illegal.text
    deadline = (dt.datetime.now(dt.UTC) + dt.timedelta(days=3)).isoformat()
    for step in (
        {"to": "accepted"},
        {"to": "dispatched", "deadline": deadline},
        {"to": "handled", "note": "已更换灯泡"},
        {"to": "feedback"},
        {"to": "closed"},
    ):
        answer = api.post(f"/incidents/{iid}/transitions", json=step)
        assert answer.status_code == 200, (step, answer.text)
    assert answer.json()["properties"]["status"] == "closed"
    events = api.get(f"/incidents/{iid}/events").json()["data"]
    assert [e["to_status"] for e in events] == [
        "reported",
        "accepted",
        "dispatched",
        "handled",
        "feedback",
        "closed",
    ]

    overdue = api.get("/incidents", params={"overdue": "true", "limit": 500}).json()
    assert overdue["numberMatched"] > 0
    assert iid not in {f["id"] for f in overdue["features"]}
    supervision = api.get("/supervision/overdue")
    assert supervision.status_code == 200, supervision.text
