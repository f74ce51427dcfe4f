"""Incident reporting, the workflow, attachments, supervision and task-type admission over
real HTTP (uvicorn) on a writable copy of the sample in PostGIS.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from api.schemas import IncidentPublic, TaskTypePublic
from api.schemas.incident_workflow import (
    AttachmentsPublic,
    IncidentEventsPublic,
    IncidentWorkflowPublic,
    OverduePublic,
)
from gis_grid.crs import convert_lonlat
from tests.security_support import TEST_USERS
from tests.test_incidents import png

pytestmark = pytest.mark.postgis

V1 = "/api/v1"
# Who acts is the logged-in account (conftest auth_headers), never a header.
ACTOR: dict[str, str] = {}
ACTOR_NAME = TEST_USERS["admin"]
SOON = (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).isoformat()


@pytest.fixture(scope="module")
def client(writable_server_url: str, auth_headers) -> Iterator[httpx.Client]:
    headers = auth_headers(writable_server_url)
    with httpx.Client(
        base_url=writable_server_url + V1, timeout=60, headers={**ACTOR, **headers}
    ) as c:
        yield c


@pytest.fixture(scope="module")
def engine(writable_database_url) -> Iterator[sa.Engine]:
    eng = sa.create_engine(writable_database_url)
    yield eng
    eng.dispose()


@pytest.fixture(scope="module")
def homes(engine) -> list[Any]:
    """Households well inside their grid, with the grid's appointed member."""
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.text(
                    """
                    SELECT h.code, ST_X(h.geom) AS lon, ST_Y(h.geom) AS lat, h.grid_code,
                           h.village_code, m.code AS member
                    FROM households h
                    JOIN grids g ON g.code = h.grid_code AND g.valid_to IS NULL
                    JOIN members m ON m.grid_code = h.grid_code AND m.status = 'appointed'
                    WHERE ST_Distance(ST_Boundary(g.geom)::geography, h.geom::geography) > 5
                    ORDER BY md5(h.code || 'api') LIMIT 10
                    """
                )
            )
        )


def state(engine) -> dict[str, Any]:
    """What the tests must not change when a request is refused."""
    with engine.connect() as conn:
        counts = {
            t: conn.scalar(sa.text(f"SELECT count(*) FROM {t}"))
            for t in (
                "incidents",
                "incident_events",
                "attachments",
                "task_types",
                "task_type_changes",
            )
        }
        counts["statuses"] = conn.execute(
            sa.text("SELECT id, status::text, deadline, evaluation FROM incidents ORDER BY id")
        ).all()
        counts["task_type_states"] = conn.execute(
            sa.text("SELECT code, approval_state::text FROM task_types ORDER BY code")
        ).all()
    return counts


def gcj02(home: Any) -> dict[str, Any]:
    x, y = convert_lonlat([home.lon], [home.lat], source="cgcs2000", target="gcj02")
    return {"lon": float(x[0]), "lat": float(y[0]), "datum": "gcj02"}


def new_incident(client: httpx.Client, home: Any, **body: Any) -> dict[str, Any]:
    payload = {"task_type_code": "T02", "title": "路灯损坏 13812341234", **gcj02(home), **body}
    r = client.post("/incidents", json=payload)
    assert r.status_code == 201, r.text
    return r.json()


def step(client: httpx.Client, incident_id: int, to: str, **body: Any) -> httpx.Response:
    return client.post(f"/incidents/{incident_id}/transitions", json={"to": to, **body})


def problem_text(r: httpx.Response) -> str:
    return json.dumps(r.json(), ensure_ascii=False)


# --- reporting ------------------------------------------------------------------------------


def test_report_by_gcj02_lands_in_the_household_grid(client, homes):
    for home in homes[:4]:
        by_gcj = new_incident(client, home)
        by_point = new_incident(
            client,
            home,
            lon=None,
            lat=None,
            datum="cgcs2000",
            geometry={"type": "Point", "coordinates": [home.lon, home.lat]},
        )
        for feature in (by_gcj, by_point):
            IncidentWorkflowPublic.model_validate(feature)
            props = feature["properties"]
            assert props["grid_code"] == home.grid_code
            assert props["grid"]["code"] == home.grid_code
            assert props["village_code"] == home.village_code
            assert props["member"]["code"] == home.member
            assert "*" in props["member"]["phone"]
            assert props["status"] == "reported" and props["reported_by"] == ACTOR_NAME
            assert props["assignment"] == "appointed"
            assert props["allowed_next"] == ["accepted", "closed"]
            assert "138****1234" in props["title"]
        # Stored in CGCS2000: the GCJ-02 input was converted.
        lon, lat = by_gcj["geometry"]["coordinates"]
        assert lon == pytest.approx(home.lon, abs=1e-6) and lat == pytest.approx(home.lat, abs=1e-6)


def test_report_answers_201_with_location_and_first_event(client, homes):
    r = client.post(
        "/incidents",
        json={
            "task_type_code": "T04",
            "title": "塌方",
            "description": "路边塌方",
            **gcj02(homes[4]),
        },
    )
    assert r.status_code == 201 and r.headers["content-type"] == "application/geo+json"
    where = r.headers["location"]
    assert where == f"{V1}/incidents/{r.json()['id']}"
    read = client.get(where.removeprefix(V1))
    assert read.status_code == 200
    IncidentPublic.model_validate(read.json())
    assert read.json()["properties"]["grid_code"] == homes[4].grid_code
    events = client.get(f"{where.removeprefix(V1)}/events").json()
    IncidentEventsPublic.model_validate(events)
    assert [(e["from_status"], e["to_status"], e["actor"]) for e in events["data"]] == [
        (None, "reported", ACTOR_NAME)
    ]


def _bad_reports(home: Any) -> list[tuple[str, Any, str]]:
    good = {"task_type_code": "T02", "title": "x", "lon": home.lon, "lat": home.lat}
    raw = json.dumps(good)
    return [
        ("wrong type of title", {**good, "title": 123}, "title"),
        ("wrong type of lon", {**good, "lon": "east"}, "lon"),
        ("unknown datum", {**good, "datum": "mars"}, "datum"),
        (
            "missing task type",
            {k: v for k, v in good.items() if k != "task_type_code"},
            "task_type_code",
        ),
        ("missing location", {"task_type_code": "T02", "title": "x"}, "lon"),
        ("unknown field", {**good, "colour": "red"}, "colour"),
        ("unknown task type", {**good, "task_type_code": "T99"}, "task_type_code"),
        ("NaN", raw.replace(str(home.lon), "NaN"), "lon"),
        ("Infinity", raw.replace(str(home.lat), "Infinity"), "lat"),
        (
            "NaN in geometry",
            json.dumps(
                {
                    **good,
                    "lon": None,
                    "lat": None,
                    "geometry": {"type": "Point", "coordinates": [0, 0]},
                }
            ).replace("[0, 0]", "[NaN, 31]"),
            "coordinates",
        ),
        ("swapped", {**good, "lon": home.lat, "lat": home.lon}, "swapped"),
        ("outside the towns", {**good, "lon": 116.391, "lat": 39.907}, "116.391"),
        (
            "geometry not a point",
            {
                **good,
                "lon": None,
                "lat": None,
                "geometry": {"type": "Polygon", "coordinates": [[107, 31]]},
            },
            "type",
        ),
        (
            "both locations",
            {**good, "geometry": {"type": "Point", "coordinates": [107, 31]}},
            "not both",
        ),
        ("empty title", {**good, "title": ""}, "title"),
    ]


def test_bad_reports_are_4xx_naming_the_field_and_store_nothing(client, engine, homes):
    before = state(engine)
    for case, body, words in _bad_reports(homes[5]):
        if isinstance(body, str):
            r = client.post(
                "/incidents", content=body, headers={"Content-Type": "application/json"}
            )
        else:
            r = client.post("/incidents", json=body)
        assert r.status_code == 422, (case, r.status_code, r.text)
        assert words in problem_text(r), (case, r.text)
    r = httpx.post(
        str(client.base_url).rstrip("/") + "/incidents",
        json={"task_type_code": "T02", "title": "x", "lon": homes[5].lon, "lat": homes[5].lat},
    )
    assert r.status_code == 401 and "logged in" in r.text  # no token: nobody to record
    assert state(engine) == before


def test_outside_the_town_gives_coordinate_and_distance(client):
    r = client.post(
        "/incidents",
        json={"task_type_code": "T02", "title": "x", "lon": 107.0, "lat": 31.5, "datum": "wgs84"},
    )
    assert r.status_code == 422
    body = r.json()
    assert body["error"] == "CoordinateError"
    assert "lon=107.0000000" in body["detail"] and "m away" in body["detail"]
    assert body["problems"][0]["grid_m"] > 0


# --- the workflow ---------------------------------------------------------------------------


def test_walk_to_evaluated_over_http(client, engine, homes):
    incident = new_incident(client, homes[6])
    iid = incident["id"]
    walk: list[tuple[str, dict[str, Any]]] = [
        ("accepted", {"note": "立案"}),
        ("dispatched", {"deadline": SOON}),
        ("handled", {"note": "已处理"}),
        ("feedback", {}),
        ("closed", {"note": "核查通过"}),
        ("evaluated", {"evaluation": 5}),
    ]
    for to, body in walk:
        r = step(client, iid, to, **body)
        assert r.status_code == 200, r.text
        IncidentWorkflowPublic.model_validate(r.json())
        assert r.json()["properties"]["status"] == to
    props = r.json()["properties"]
    assert props["evaluation"] == 5 and props["closed_at"] and props["dispatched_at"]
    assert props["deadline"] and props["allowed_next"] == [] and not props["overdue"]
    events = client.get(f"/incidents/{iid}/events").json()
    assert events["count"] == 7
    assert [e["to_status"] for e in events["data"]] == ["reported", *(to for to, _ in walk)]
    assert events["data"][1]["note"] == "立案"
    assert {e["actor"] for e in events["data"]} == {ACTOR_NAME}
    with engine.connect() as conn:
        stored = conn.execute(
            sa.text("SELECT status::text, evaluation FROM incidents WHERE id = :i"), {"i": iid}
        ).one()
    assert tuple(stored) == ("evaluated", 5)


def test_illegal_and_bad_steps_are_4xx_and_change_nothing(client, engine, homes):
    iid = new_incident(client, homes[7])["id"]
    assert step(client, iid, "accepted").status_code == 200
    before = state(engine)
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).isoformat()
    cases: list[tuple[dict[str, Any] | str, int, str]] = [
        ({"to": "handled"}, 409, "allowed next: dispatched, closed"),
        ({"to": "reported"}, 409, "'accepted'"),
        ({"to": "done"}, 422, "to"),
        ({}, 422, "to"),
        ({"to": "dispatched"}, 422, "deadline"),
        ({"to": "dispatched", "deadline": past}, 422, "not in the future"),
        ({"to": "dispatched", "deadline": "next week"}, 422, "deadline"),
        ({"to": "dispatched", "deadline": SOON, "evaluation": 3}, 422, "evaluation"),
        ({"to": "closed"}, 422, "note"),
        ({"to": "evaluated", "evaluation": 7}, 422, "evaluation"),
        ({"to": "dispatched", "deadline": SOON, "extra": 1}, 422, "extra"),
        ('{"to": "dispatched", "deadline": NaN}', 422, "deadline"),
    ]
    for body, status, words in cases:
        if isinstance(body, str):
            r = client.post(
                f"/incidents/{iid}/transitions",
                content=body,
                headers={"Content-Type": "application/json"},
            )
        else:
            r = client.post(f"/incidents/{iid}/transitions", json=body)
        assert r.status_code == status, (body, r.text)
        assert words in problem_text(r), (body, r.text)
    r = step(client, iid, "handled")
    assert r.json()["error"] == "WorkflowError"
    assert r.json()["problems"][0]["allowed"] == ["dispatched", "closed"]
    assert step(client, 2**31 - 1, "accepted").status_code == 404
    assert step(client, 0, "accepted").status_code == 422
    assert state(engine) == before


def test_dispatch_of_an_unapproved_type_is_refused(client, engine, homes):
    iid = new_incident(client, homes[8], task_type_code="T17")["id"]  # rejected type
    assert step(client, iid, "accepted").status_code == 200
    before = state(engine)
    r = step(client, iid, "dispatched", deadline=SOON)
    assert r.status_code == 422
    assert "'T17'" in r.json()["detail"] and "'rejected'" in r.json()["detail"]
    assert r.json()["problems"][0]["field"] == "task_type_code"
    assert state(engine) == before


def test_two_concurrent_requests_only_one_succeeds(client, engine, homes):
    iid = new_incident(client, homes[9])["id"]
    results: list[int] = []
    # Hold the row so both requests queue behind the lock, then release them together.
    with engine.connect() as blocker:
        tx = blocker.begin()
        blocker.execute(sa.text("SELECT 1 FROM incidents WHERE id = :i FOR UPDATE"), {"i": iid})

        def send() -> None:
            results.append(step(client, iid, "accepted", note="并发").status_code)

        threads = [threading.Thread(target=send) for _ in range(2)]
        for t in threads:
            t.start()
        threads[0].join(timeout=1.0)
        assert not results, "the requests should wait for the row lock"
        tx.commit()
    for t in threads:
        t.join(timeout=30)
    assert sorted(results) == [200, 409]
    events = client.get(f"/incidents/{iid}/events").json()["data"]
    assert [e["to_status"] for e in events] == ["reported", "accepted"]


# --- attachments ----------------------------------------------------------------------------


def test_attachments_upload_list_and_download(client, engine, homes):
    other = new_incident(client, homes[2])["id"]
    others_event = client.get(f"/incidents/{other}/events").json()["data"][0]["id"]
    iid = new_incident(client, homes[0])["id"]
    event = client.get(f"/incidents/{iid}/events").json()["data"][0]["id"]
    data = png(8)
    r = client.post(
        f"/incidents/{iid}/attachments",
        files={"file": ("../../etc/现场.png", data, "image/png")},
        data={"event_id": str(event)},
    )
    assert r.status_code == 201, r.text
    meta = r.json()
    assert meta["filename"] == "现场.png" and meta["size"] == len(data)
    assert meta["sha256"] == hashlib.sha256(data).hexdigest() and meta["event_id"] == event
    assert r.headers["location"] == meta["href"] == f"{V1}/attachments/{meta['id']}"
    got = client.get(f"/attachments/{meta['id']}")
    assert got.status_code == 200 and got.content == data
    assert got.headers["content-type"] == "image/png"
    assert got.headers["x-content-type-options"] == "nosniff"
    with engine.connect() as conn:
        uploader = conn.scalar(
            sa.text("SELECT uploaded_by FROM attachments WHERE id = :id"), {"id": meta["id"]}
        )
    assert uploader == ACTOR_NAME
    assert got.headers["content-disposition"].startswith("attachment;")
    assert "/" not in got.headers["content-disposition"].split("filename")[1]
    listed = client.get(f"/incidents/{iid}/attachments").json()
    AttachmentsPublic.model_validate(listed)
    assert [a["id"] for a in listed["data"]] == [meta["id"]]
    events = client.get(f"/incidents/{iid}/events").json()["data"]
    assert events[0]["attachments"] == [meta["id"]]

    before = state(engine)
    too_big = b"\x89PNG\r\n\x1a\n" + bytes(5 * 1024 * 1024)
    bad: list[tuple[dict[str, Any], dict[str, str], int, str]] = [
        ({"file": ("big.png", too_big, "image/png")}, {}, 413, "MiB"),
        ({"file": ("x.png", b"<html><script>", "image/png")}, {}, 415, "accepted kinds"),
        ({"file": ("x.jpg", data, "image/jpeg")}, {}, 415, "mislabelled"),
        ({"file": ("x.png", data, "image/png")}, {"event_id": str(others_event)}, 422, "event_id"),
        ({"file": ("x.png", data, "image/png")}, {"event_id": "abc"}, 422, "event_id"),
        ({}, {"event_id": str(event)}, 422, "file"),
    ]
    for files, form, status, words in bad:
        r = client.post(f"/incidents/{iid}/attachments", files=files or None, data=form)
        assert r.status_code == status, (status, r.text)
        assert words in r.text
    # Far too large: refused from Content-Length, before the body is read.
    huge = b"\x89PNG\r\n\x1a\n" + bytes(7 * 1024 * 1024)
    r = client.post(f"/incidents/{iid}/attachments", files={"file": ("huge.png", huge)})
    assert r.status_code == 413 and r.json()["problems"][0]["field"] == "body"
    assert (
        client.post(
            "/incidents/99999999/attachments", files={"file": ("x.png", data, "image/png")}
        ).status_code
        == 404
    )
    assert client.get("/attachments/99999999").status_code == 404
    assert state(engine) == before


# --- supervision ----------------------------------------------------------------------------


def test_overdue_summary_agrees_with_the_list_filter(client):
    summary = client.get("/supervision/overdue", params={"limit": 3})
    assert summary.status_code == 200, summary.text
    body = OverduePublic.model_validate(summary.json())
    listed = client.get("/incidents", params={"overdue": "true", "limit": 1}).json()
    assert body.overdue == listed["numberMatched"] > 0
    assert sum(g.overdue for g in body.by_grid) == body.overdue
    assert sum(g.overdue for g in body.by_member) == body.overdue
    assert len(body.items) == min(3, body.overdue)
    grid = body.by_grid[0].code
    one = client.get("/supervision/overdue", params={"grid": grid}).json()
    assert one["overdue"] == body.by_grid[0].overdue
    per_grid = client.get("/incidents", params={"overdue": "true", "grid": grid}).json()
    assert per_grid["numberMatched"] == one["overdue"]
    assert client.get("/supervision/overdue", params={"village": "511703109999"}).status_code == 404
    assert client.get("/supervision/overdue", params={"limit": "x"}).status_code == 422


# --- task types -----------------------------------------------------------------------------


def test_task_type_admission_then_dispatch(client, engine, homes):
    r = client.post(
        "/task-types", json={"code": "T91", "name": "电动车充电隐患排查", "sla_days": 3}
    )
    assert r.status_code == 201, r.text
    assert r.headers["location"] == f"{V1}/task-types/T91"
    created = TaskTypePublic.model_validate(r.json())
    assert created.approval_state == "proposed" and not created.assignable

    iid = new_incident(client, homes[1], task_type_code="T91")["id"]
    assert step(client, iid, "accepted").status_code == 200
    assert step(client, iid, "dispatched", deadline=SOON).status_code == 422  # not yet approved

    before = state(engine)
    bad: list[tuple[str, dict[str, Any], int, str]] = [
        ("/task-types", {"code": "T91", "name": "again"}, 409, "T91"),
        ("/task-types", {"code": "bad code", "name": "x"}, 422, "code"),
        ("/task-types", {"code": "T92"}, 422, "name"),
        ("/task-types", {"code": "T92", "name": "x", "sla_days": -1}, 422, "sla_days"),
        (
            "/task-types/T91/transitions",
            {"to": "approved", "decided_by": "区"},
            409,
            "allowed next: applied",
        ),
        ("/task-types/T91/transitions", {"to": "accepted"}, 422, "to"),
        ("/task-types/T91/transitions", {"to": "applied", "on": "2030-01-01"}, 422, "future"),
        ("/task-types/T404/transitions", {"to": "applied"}, 404, "T404"),
    ]
    for path, body, status, words in bad:
        r = client.post(path, json=body)
        assert r.status_code == status, (path, body, r.text)
        assert words in problem_text(r), (path, body, r.text)
    assert state(engine) == before

    for body in (
        {"to": "applied", "note": "镇综治中心申请"},
        {"to": "reviewed"},
        {"to": "approved", "decided_by": "区人民政府"},
    ):
        r = client.post("/task-types/T91/transitions", json=body)
        assert r.status_code == 200, r.text
    approved = TaskTypePublic.model_validate(r.json())
    assert approved.assignable and approved.decided_by == "区人民政府"
    assert approved.applied_on and approved.reviewed_on and approved.decided_on
    assert client.get("/task-types/T91").json()["approval_state"] == "approved"
    r = client.post("/task-types/T91/transitions", json={"to": "rejected", "decided_by": "x"})
    assert r.status_code == 409 and "final state" in r.json()["detail"]
    with engine.connect() as conn:
        history = conn.execute(
            sa.text(
                "SELECT from_state::text, to_state::text, actor, decided_by, note "
                "FROM task_type_changes WHERE task_type_code = 'T91' ORDER BY id"
            )
        ).all()
    assert [tuple(row) for row in history] == [
        (None, "proposed", ACTOR_NAME, None, None),
        ("proposed", "applied", ACTOR_NAME, None, "镇综治中心申请"),
        ("applied", "reviewed", ACTOR_NAME, None, None),
        ("reviewed", "approved", ACTOR_NAME, "区人民政府", None),
    ]
    assert step(client, iid, "dispatched", deadline=SOON).status_code == 200


def test_openapi_documents_the_workflow(writable_server_url):
    spec = httpx.get(f"{writable_server_url}/openapi.json", timeout=30).json()
    paths = spec["paths"]
    for path, method in (
        ("/incidents", "post"),
        ("/incidents/{incident_id}/transitions", "post"),
        ("/incidents/{incident_id}/events", "get"),
        ("/incidents/{incident_id}/attachments", "post"),
        ("/incidents/{incident_id}/attachments", "get"),
        ("/attachments/{attachment_id}", "get"),
        ("/supervision/overdue", "get"),
        ("/task-types", "post"),
        ("/task-types/{code}/transitions", "post"),
    ):
        assert method in paths[V1 + path], (path, method)
    report = paths[f"{V1}/incidents"]["post"]
    assert "application/geo+json" in report["responses"]["201"]["content"]
    assert {"409", "422"} <= set(report["responses"])
    assert {"413", "415"} <= set(
        paths[f"{V1}/incidents/{{incident_id}}/attachments"]["post"]["responses"]
    )
    assert "IncidentCreate" in spec["components"]["schemas"]
