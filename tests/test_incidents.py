"""The incident library: placing reports, the workflow table and its rules, attachments,
supervision, task-type admission. Real PostGIS (a writable copy of the sample per module).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import struct
import threading
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from gis_grid import incidents, queries, task_types
from gis_grid.crs import convert_lonlat
from gis_grid.db.models import ApprovalState, IncidentStatus
from gis_grid.errors import (
    CoordinateError,
    DuplicateCodeError,
    NotFoundError,
    RuleError,
    WorkflowError,
)
from gis_grid.incidents import TRANSITIONS, allowed_next, check_transition

pytestmark = pytest.mark.postgis

ACTOR = "centre:测试"
NOW = dt.datetime.now(dt.UTC)


def png(size: int = 1) -> bytes:
    """A valid PNG of ``size`` x ``size`` grey pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    raw = b"".join(b"\x00" + b"\x80" * size for _ in range(size))
    header = struct.pack(">IIBBBBB", size, size, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


@pytest.fixture(scope="module")
def engine(writable_database_url) -> Iterator[sa.Engine]:
    eng = sa.create_engine(writable_database_url)
    yield eng
    eng.dispose()


@pytest.fixture(scope="module")
def households(engine) -> list[Any]:
    """Households at least 5 m inside their grid, spread over both towns."""
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.text(
                    """
                    SELECT h.code, ST_X(h.geom) AS lon, ST_Y(h.geom) AS lat, h.grid_code,
                           h.village_code
                    FROM households h JOIN grids g ON g.code = h.grid_code AND g.valid_to IS NULL
                    WHERE ST_Distance(ST_Boundary(g.geom)::geography, h.geom::geography) > 5
                    ORDER BY md5(h.code) LIMIT 12
                    """
                )
            )
        )


def counts(engine) -> tuple[int, int, int]:
    with engine.connect() as conn:
        return tuple(
            conn.scalar(sa.text(f"SELECT count(*) FROM {t}"))
            for t in ("incidents", "incident_events", "attachments")
        )


def report(conn, household, **kwargs: Any) -> incidents.Reported:
    args: dict[str, Any] = {
        "task_type_code": "T02",
        "title": "路灯损坏",
        "lon": household.lon,
        "lat": household.lat,
        "actor": ACTOR,
    }
    return incidents.report_incident(conn, **(args | kwargs))


# --- the table ------------------------------------------------------------------------------


def test_transition_table_covers_every_status_and_ends_in_evaluated():
    assert set(TRANSITIONS) == set(IncidentStatus)
    assert TRANSITIONS[IncidentStatus.EVALUATED] == frozenset()
    # The straight line of the seven steps is allowed, in order.
    steps = list(IncidentStatus)
    for here, there in itertools.pairwise(steps):
        assert there in TRANSITIONS[here], (here, there)
    # Every status can be reached from "reported".
    seen, todo = {IncidentStatus.REPORTED}, [IncidentStatus.REPORTED]
    while todo:
        for nxt in TRANSITIONS[todo.pop()] - seen:
            seen.add(nxt)
            todo.append(nxt)
    assert seen == set(IncidentStatus)


def test_illegal_transition_names_current_and_allowed():
    with pytest.raises(WorkflowError) as info:
        check_transition("dispatched", "closed")
    assert "'dispatched'" in str(info.value) and "handled" in str(info.value)
    assert info.value.problems[0]["allowed"] == ["handled"]
    assert allowed_next("evaluated") == []
    with pytest.raises(WorkflowError, match="final state"):
        check_transition("evaluated", "closed")


# --- coordinates ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lon", "lat", "field", "words"),
    [
        (float("nan"), 31.0, "lon", "finite"),
        (107.4, float("inf"), "lat", "finite"),
        (31.0, 107.4, "lon", "swapped"),
        (10.0, 31.0, "lon", "outside China"),
        (107.4, 80.0, "lat", "outside China"),
    ],
)
def test_check_lonlat_names_the_field(lon, lat, field, words):
    with pytest.raises(CoordinateError, match=words) as info:
        incidents.check_lonlat(lon, lat)
    assert info.value.problems[0]["field"] == field


def test_gcj02_point_lands_in_the_household_grid(engine, households):
    assert len(households) >= 10
    with engine.connect() as conn:
        for h in households:
            x, y = convert_lonlat([h.lon], [h.lat], source="cgcs2000", target="gcj02")
            assert abs(float(x[0]) - h.lon) > 1e-3  # hundreds of metres apart
            placed = incidents.place_point(conn, float(x[0]), float(y[0]), datum="gcj02")
            direct = incidents.place_point(conn, h.lon, h.lat)
            assert placed.grid_code == direct.grid_code == h.grid_code
            assert placed.lon == pytest.approx(h.lon, abs=1e-7)
            # Taken as CGCS2000, the GCJ-02 numbers would be ~500 m off: another point.
            assert (placed.lon, placed.lat) != (float(x[0]), float(y[0]))


def test_point_outside_the_towns_gives_the_distance(engine):
    with engine.connect() as conn, pytest.raises(CoordinateError) as info:
        incidents.place_point(conn, 116.391, 39.907)  # Beijing
    text = str(info.value)
    assert "116.391" in text and "39.907" in text and "outside every town" in text
    problem = info.value.problems[0]
    assert problem["field"] == "lon" and problem["town_m"] > 1_000_000
    assert problem["nearest_town"] in {"511703109", "511703129"}
    assert f"{problem['town_m']} m away" in text


# --- reporting ------------------------------------------------------------------------------


def test_report_assigns_grid_member_and_first_event(engine, households):
    h = households[0]
    with engine.begin() as conn:
        x, y = convert_lonlat([h.lon], [h.lat], source="cgcs2000", target="gcj02")
        new = report(conn, h, lon=float(x[0]), lat=float(y[0]), datum="gcj02")
        row = conn.execute(
            sa.text(
                "SELECT i.grid_code, i.village_code, i.reported_by, i.status::text, "
                "m.grid_code AS member_grid, m.status::text AS member_status "
                "FROM incidents i JOIN members m ON m.id = i.member_id WHERE i.id = :id"
            ),
            {"id": new.id},
        ).one()
        events = incidents.incident_events(conn, new.id)
    assert row.grid_code == new.grid_code == h.grid_code
    assert row.village_code == h.village_code
    assert row.reported_by == ACTOR and row.status == "reported"
    assert row.member_grid == h.grid_code and row.member_status == "appointed"
    assert new.responsible.rule == "appointed"
    assert [(e.from_status, e.to_status, e.actor) for e in events] == [(None, "reported", ACTOR)]


def test_report_refusals_store_nothing(engine, households):
    h = households[1]
    before = counts(engine)
    bad: list[tuple[dict[str, Any], type[Exception]]] = [
        ({"task_type_code": "NOPE"}, RuleError),
        ({"title": "   "}, RuleError),
        ({"lon": h.lat, "lat": h.lon}, CoordinateError),
        ({"lon": float("nan")}, CoordinateError),
        ({"lon": 116.391, "lat": 39.907}, CoordinateError),
    ]
    for kwargs, error in bad:
        with engine.begin() as conn, pytest.raises(error):
            report(conn, h, **kwargs)
    assert counts(engine) == before


def test_absent_member_is_covered_by_the_ab_post(engine, households):
    h = households[2]
    with engine.begin() as conn:
        cover_grid = conn.scalar(
            sa.text(
                "SELECT min(code) FROM grids WHERE valid_to IS NULL AND code <> :g "
                "AND left(code, 9) = left(:g, 9)"
            ),
            {"g": h.grid_code},
        )
        own, cover = (
            conn.scalar(
                sa.text("SELECT id FROM members WHERE grid_code = :g AND status = 'appointed'"),
                {"g": g},
            )
            for g in (h.grid_code, cover_grid)
        )
        conn.execute(
            sa.text(
                "INSERT INTO ab_posts (town_code, grid_code, cover_grid_code, group_no) "
                "VALUES (left(:g, 9), :g, :c, 1)"
            ),
            {"g": h.grid_code, "c": cover_grid},
        )
        today = dt.datetime.now(incidents.CHINA_TIME).date()
        absent = sa.text(
            "INSERT INTO absences (member_id, starts_on, ends_on, reason) "
            "VALUES (:m, :d - 1, :d + 1, '病假')"
        )
        conn.execute(absent, {"m": own, "d": today})
        assert incidents.responsible_member(conn, h.grid_code) == incidents.Responsible(
            cover, "ab_cover"
        )
        # The day after the absence, the grid's own member is back.
        later = incidents.responsible_member(conn, h.grid_code, on=today + dt.timedelta(days=2))
        assert later == incidents.Responsible(own, "appointed")
        new = report(conn, h)
        assert new.responsible.rule == "ab_cover"
        assert (
            conn.scalar(sa.text("SELECT member_id FROM incidents WHERE id = :i"), {"i": new.id})
            == cover
        )
        # Both absent: the grid's own member stays responsible, flagged.
        conn.execute(absent, {"m": cover, "d": today})
        assert incidents.responsible_member(conn, h.grid_code).rule == "appointed_absent"
        conn.rollback()


# --- the workflow ---------------------------------------------------------------------------


def test_walk_to_evaluated_records_every_step(engine, households):
    h = households[3]
    deadline = NOW + dt.timedelta(days=3)
    steps: list[tuple[str, dict[str, Any]]] = [
        ("accepted", {}),
        ("dispatched", {"deadline": deadline, "note": "限期处理"}),
        ("handled", {"note": "已修复"}),
        ("feedback", {}),
        ("dispatched", {"deadline": deadline + dt.timedelta(days=1), "note": "核查未通过"}),
        ("handled", {}),
        ("feedback", {}),
        ("closed", {"note": "核查通过"}),
        ("evaluated", {"evaluation": 4}),
    ]
    with engine.begin() as conn:
        new = report(conn, h)
    for to, kwargs in steps:
        with engine.begin() as conn:
            event = incidents.transition_incident(conn, new.id, to, actor=ACTOR, **kwargs)
            assert event.to_status == to
    with engine.connect() as conn:
        row = conn.execute(
            sa.text(
                "SELECT status::text, deadline, dispatched_at, closed_at, evaluation "
                "FROM incidents WHERE id = :id"
            ),
            {"id": new.id},
        ).one()
        events = incidents.incident_events(conn, new.id)
        detail = incidents.get_incident_detail(conn, new.id)["properties"]
    assert row.status == "evaluated" and row.evaluation == 4
    assert row.deadline == deadline + dt.timedelta(days=1)
    assert row.dispatched_at is not None and row.closed_at is not None
    assert [e.to_status for e in events] == ["reported", *(to for to, _ in steps)]
    assert [e.from_status for e in events][1:] == [e.to_status for e in events][:-1]
    assert all(e.actor == ACTOR for e in events)
    assert events[8].note == "核查通过"
    assert detail["allowed_next"] == [] and detail["evaluation"] == 4


def test_illegal_and_incomplete_steps_change_nothing(engine, households):
    h = households[4]
    with engine.begin() as conn:
        new = report(conn, h)
    before = counts(engine)
    cases: list[tuple[str, dict[str, Any], type[Exception], str]] = [
        ("handled", {}, WorkflowError, "allowed next: accepted, closed"),
        ("evaluated", {"evaluation": 5}, WorkflowError, "'reported'"),
        ("closed", {}, RuleError, "note"),  # rejecting needs a reason
        ("accepted", {"deadline": NOW + dt.timedelta(days=1)}, RuleError, "deadline"),
        ("accepted", {"evaluation": 3}, RuleError, "evaluation"),
    ]
    for to, kwargs, error, words in cases:
        with engine.begin() as conn, pytest.raises(error, match=words):
            incidents.transition_incident(conn, new.id, to, actor=ACTOR, **kwargs)
    with engine.begin() as conn:
        incidents.transition_incident(conn, new.id, "accepted", actor=ACTOR)
    after_accept = counts(engine)
    for kwargs, words in [
        ({}, "needs a deadline"),
        ({"deadline": NOW - dt.timedelta(hours=1)}, "not in the future"),
        ({"deadline": dt.datetime(2001, 1, 1)}, "not in the future"),
    ]:
        with engine.begin() as conn, pytest.raises(RuleError, match=words) as info:
            incidents.transition_incident(conn, new.id, "dispatched", actor=ACTOR, **kwargs)
        assert info.value.problems[0]["field"] == "deadline"
    with engine.begin() as conn, pytest.raises(NotFoundError, match="999999"):
        incidents.transition_incident(conn, 999999, "accepted", actor=ACTOR)
    assert counts(engine) == (before[0], before[1] + 1, before[2]) == after_accept
    with engine.connect() as conn:
        status = conn.scalar(
            sa.text("SELECT status::text FROM incidents WHERE id = :i"), {"i": new.id}
        )
    assert status == "accepted"


def test_dispatch_of_unapproved_type_is_refused(engine, households):
    with engine.begin() as conn:
        new = report(conn, households[5], task_type_code="T15")  # applied, not approved
        incidents.transition_incident(conn, new.id, "accepted", actor=ACTOR)
    with engine.begin() as conn, pytest.raises(RuleError, match="article 10") as info:
        incidents.transition_incident(
            conn, new.id, "dispatched", actor=ACTOR, deadline=NOW + dt.timedelta(days=2)
        )
    assert "'T15'" in str(info.value) and "'applied'" in str(info.value)
    assert info.value.problems[0]["approval_state"] == "applied"
    # Rejecting it as not a grid matter is allowed, with a reason.
    with engine.begin() as conn:
        incidents.transition_incident(conn, new.id, "closed", actor=ACTOR, note="未准入事项")


def test_concurrent_transitions_from_one_state_only_one_succeeds(engine, households):
    with engine.begin() as conn:
        new = report(conn, households[6])
    results: dict[str, object] = {}
    first = engine.connect()
    tx = first.begin()
    incidents.transition_incident(first, new.id, "accepted", actor="first")  # holds the lock

    def second() -> None:
        with engine.begin() as conn:
            try:
                incidents.transition_incident(conn, new.id, "accepted", actor="second")
                results["second"] = "ok"
            except WorkflowError as exc:
                results["second"] = exc

    thread = threading.Thread(target=second)
    thread.start()
    thread.join(timeout=1.0)
    assert thread.is_alive(), "the second transition should wait for the row lock"
    tx.commit()
    first.close()
    thread.join(timeout=30)
    assert isinstance(results["second"], WorkflowError)
    assert "'accepted'" in str(results["second"])
    with engine.connect() as conn:
        events = incidents.incident_events(conn, new.id)
    assert [(e.to_status, e.actor) for e in events] == [
        ("reported", ACTOR),
        ("accepted", "first"),
    ]


# --- attachments ----------------------------------------------------------------------------


def test_sniffing_and_file_names():
    assert incidents.sniff_content_type(png()) == "image/png"
    assert incidents.sniff_content_type(b"\xff\xd8\xff\xe0rest") == "image/jpeg"
    assert incidents.sniff_content_type(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image/webp"
    assert incidents.sniff_content_type(b"%PDF-1.7\n") == "application/pdf"
    assert incidents.sniff_content_type(b"GIF89a") is None
    assert incidents.safe_filename("../../etc/passwd", "image/png") == "passwd.png"
    assert incidents.safe_filename("..\\..\\boot.ini", "application/pdf") == "boot.ini.pdf"
    assert incidents.safe_filename("/tmp/现场照片.jpeg", "image/jpeg") == "现场照片.jpeg"
    assert incidents.safe_filename("a\x00b\r\n.png", "image/png") == "ab.png"
    assert incidents.safe_filename(None, "image/webp") == "attachment.webp"
    assert incidents.safe_filename("...", "image/png") == "attachment.png"
    assert len(incidents.safe_filename("x" * 500 + ".png", "image/png")) == 200


def test_attachments_are_checked_by_their_bytes(engine, households):
    with engine.begin() as conn:
        other = report(conn, households[8])
        new = report(conn, households[7])
    data = png(4)
    with engine.begin() as conn:
        event = incidents.transition_incident(conn, new.id, "accepted", actor=ACTOR)
        stored = incidents.add_attachment(
            conn,
            new.id,
            data,
            filename="../现场.png",
            declared_type="image/png",
            event_id=event.id,
        )
    assert stored.filename == "现场.png" and stored.size == len(data)
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    before = counts(engine)
    bad: list[tuple[bytes, str | None, dict[str, Any], type[Exception]]] = [
        (
            b"\x89PNG\r\n\x1a\n" + bytes(incidents.MAX_ATTACHMENT_BYTES),
            "image/png",
            {},
            incidents.AttachmentTooLargeError,
        ),
        (b"<script>alert(1)</script>", "image/png", {}, incidents.UnsupportedContentError),
        (data, "image/jpeg", {}, incidents.UnsupportedContentError),  # mislabelled
        (b"", None, {}, incidents.UnsupportedContentError),
        (data, "image/png", {"event_id": other.event.id}, RuleError),  # another incident's
    ]
    for payload, declared, kwargs, error in bad:
        with engine.begin() as conn, pytest.raises(error):
            incidents.add_attachment(
                conn, new.id, payload, filename="x.png", declared_type=declared, **kwargs
            )
    assert counts(engine) == before
    with engine.connect() as conn:
        record, content = incidents.get_attachment(conn, stored.id)
        listed = incidents.incident_attachments(conn, new.id)
        history = incidents.incident_events(conn, new.id)
    assert content == data and record == stored and listed == [stored]
    assert history[-1].attachments == (stored.id,)


# --- supervision ----------------------------------------------------------------------------


def test_overdue_summary_matches_the_overdue_filter(engine):
    with engine.connect() as conn:
        listed = queries.incident_page(conn, overdue=True, limit=10_000)
        summary = incidents.overdue_summary(conn, limit=5)
        town = incidents.overdue_summary(conn, town="511703109")
        expected_by_grid = dict(
            conn.execute(
                sa.text(
                    "SELECT grid_code, count(*) FROM incidents WHERE deadline < now() "
                    "AND status::text NOT IN ('closed', 'evaluated') GROUP BY 1"
                )
            ).all()
        )
    assert summary.overdue == listed.number_matched > 0
    assert {g.key: g.overdue for g in summary.by_grid} == expected_by_grid
    assert sum(g.overdue for g in summary.by_member) == summary.overdue
    assert len(summary.items) == min(5, summary.overdue)
    days = [i.days_overdue for i in summary.items]
    assert days == sorted(days, reverse=True) and all(d > 0 for d in days)
    assert town.overdue == sum(
        n for code, n in expected_by_grid.items() if code and code.startswith("511703109")
    )


# --- task types -----------------------------------------------------------------------------


def test_task_type_admission_walk_and_refusals(engine):
    with engine.begin() as conn:
        created = task_types.create_task_type(conn, code="T90", name="测试事项", sla_days=3)
    assert created.approval_state == "proposed" and not created.assignable
    with engine.begin() as conn, pytest.raises(DuplicateCodeError, match="T90"):
        task_types.create_task_type(conn, code="T90", name="again")
    with engine.begin() as conn, pytest.raises(RuleError) as info:
        task_types.create_task_type(conn, code="bad code!", name=" ")
    assert {p["field"] for p in info.value.problems} == {"code", "name"}
    with engine.begin() as conn, pytest.raises(WorkflowError, match="allowed next: applied"):
        task_types.transition_task_type(conn, "T90", "approved", actor=ACTOR, decided_by="区")
    with engine.begin() as conn:
        task_types.transition_task_type(conn, "T90", "applied", actor=ACTOR)
        reviewed = task_types.transition_task_type(conn, "T90", "reviewed", actor=ACTOR)
    assert reviewed.applied_on is not None and reviewed.reviewed_on is not None
    with engine.begin() as conn, pytest.raises(RuleError, match="decided_by"):
        task_types.transition_task_type(conn, "T90", ApprovalState.APPROVED, actor=ACTOR)
    with engine.begin() as conn, pytest.raises(RuleError, match="future"):
        task_types.transition_task_type(
            conn,
            "T90",
            "approved",
            actor=ACTOR,
            decided_by="区人民政府",
            on=dt.date.today() + dt.timedelta(days=30),
        )
    with engine.begin() as conn:
        approved = task_types.transition_task_type(
            conn, "T90", "approved", actor=ACTOR, decided_by="区人民政府"
        )
    assert approved.assignable and approved.decided_by == "区人民政府"
    with engine.begin() as conn, pytest.raises(WorkflowError, match="final state"):
        task_types.transition_task_type(conn, "T90", "rejected", actor=ACTOR, decided_by="x")
    with engine.begin() as conn, pytest.raises(NotFoundError):
        task_types.transition_task_type(conn, "T404", "applied", actor=ACTOR)
