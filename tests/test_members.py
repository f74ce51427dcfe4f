"""gis_grid.members: eligibility (art. 6), the selection workflow (art. 7, 11), stored AB posts,
absences and the day's cover, on a writable copy of the sample in a real PostGIS.

Each database test runs in a transaction that it rolls back, so the tests are independent;
what they check is read back with SQL written here, not through the library.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection

from gis_grid.errors import (
    ConflictError,
    CoordinateError,
    DuplicateCodeError,
    NotFoundError,
    RuleError,
    WorkflowError,
)
from gis_grid.members import (
    EXCLUSION_FLAGS,
    Education,
    add_absence,
    age_on,
    check_eligibility,
    compute_ab_posts,
    cover_on,
    create_member,
    delete_absence,
    grid_candidates,
    grids_covered_by,
    list_absences,
    parse_education,
    preference_score,
    rank_candidates,
    read_ab_posts,
    set_ab_post,
    store_ab_posts,
    transition_member,
    update_member,
)

ON = dt.date(2025, 6, 1)
ZHAOJIA = "511703109"
VILLAGE, GRID = "511703109001", "511703109001001"
VETTED = dict.fromkeys(EXCLUSION_FLAGS, False)
GOOD: dict[str, Any] = {"birth_date": dt.date(1990, 5, 1), "education": "高中", **VETTED}


# --- eligibility, rule by rule (no database) ------------------------------------------------


def rules(member: dict[str, Any], **kw: Any) -> list[tuple[str, str, str]]:
    return [(p.rule, p.field, p.severity) for p in check_eligibility(member, on=ON, **kw)]


def test_an_eligible_member_has_no_problem():
    assert check_eligibility(GOOD, on=ON) == []


@pytest.mark.parametrize(
    ("birth", "age", "ok"),
    [
        (dt.date(1980, 6, 1), 45, True),  # 45th birthday on the day: still 45
        (dt.date(1979, 6, 2), 45, True),  # 46 tomorrow
        (dt.date(1979, 6, 1), 46, False),  # 46 today
        (dt.date(1960, 1, 1), 65, False),
    ],
)
def test_age_boundary_45_passes_46_fails(birth, age, ok):
    assert age_on(birth, ON) == age
    problems = check_eligibility({**GOOD, "birth_date": birth}, on=ON)
    assert (problems == []) is ok
    if not ok:
        (p,) = problems
        assert (p.rule, p.field, p.severity, p.article) == ("age", "birth_date", "failure", "6")
        assert str(age) in p.reason and str(age) in p.reason_zh


def test_age_is_checked_on_the_given_date():
    member = {**GOOD, "birth_date": dt.date(1980, 6, 2)}
    assert check_eligibility(member, on=dt.date(2026, 6, 1)) == []
    assert rules(member | {}, stage="appointment") == []
    assert [p.rule for p in check_eligibility(member, on=dt.date(2026, 6, 2))] == ["age"]


def test_missing_birth_date_is_a_named_failure():
    assert rules({**GOOD, "birth_date": None}) == [("age", "birth_date", "failure")]


@pytest.mark.parametrize(
    ("education", "ok"),
    [
        ("高中", True), ("中专", True), ("大专", True), ("本科", True), ("研究生", True),
        ("硕士", True), ("博士", True), ("High School", True), ("bachelor", True),
        ("junior_college", True), ("PhD", True), ("初中", False), ("小学", False),
        ("junior high", False), ("primary", False),
    ],
)  # fmt: skip
def test_education_high_school_or_above(education, ok):
    assert (rules({**GOOD, "education": education}) == []) is ok
    if not ok:
        assert rules({**GOOD, "education": education}) == [("education", "education", "failure")]


@pytest.mark.parametrize("education", ["幼儿园", "some", "", None])
def test_unknown_or_missing_education_is_a_named_failure(education):
    (p,) = check_eligibility({**GOOD, "education": education}, on=ON)
    assert (p.rule, p.field, p.severity) == ("education", "education", "failure")
    assert parse_education(education) is None


def test_education_levels_are_ordered():
    assert parse_education("中专") == parse_education("高中") == Education.HIGH_SCHOOL
    assert parse_education("大专") < parse_education("本科") < parse_education("博士")


@pytest.mark.parametrize(
    ("field", "rule"),
    [
        ("criminal_record", "no_criminal_record"),
        ("relative_criminal_record", "no_relative_criminal_record"),
        ("organised_petitions", "no_organised_petitions"),
        ("cult_member", "no_cult_membership"),
    ],
)
def test_each_exclusion_is_named(field, rule):
    assert rules({**GOOD, field: True}) == [(rule, field, "failure")]
    assert rules({**GOOD, field: True}, stage="candidate") == [(rule, field, "failure")]
    # Not yet vetted: a failure for an appointment, only a warning for a candidate.
    assert rules({**GOOD, field: None}) == [(rule, field, "failure")]
    assert rules({**GOOD, field: None}, stage="candidate") == [(rule, field, "warning")]


def test_every_failure_is_listed_at_once():
    member = {"birth_date": dt.date(1970, 1, 1), "education": "初中", **dict.fromkeys(VETTED, True)}
    assert [r for r, _, _ in rules(member)] == [
        "age", "education", "no_criminal_record", "no_relative_criminal_record",
        "no_organised_petitions", "no_cult_membership",
    ]  # fmt: skip


def test_preferences_score_and_rank_candidates():
    assert preference_score({"party_member": True, "veteran": True}) == 5
    assert preference_score({"unemployed_graduate": True}) == 2
    candidates = [
        {**GOOD, "code": "plain"},
        {**GOOD, "code": "veteran", "veteran": True},
        {**GOOD, "code": "party", "party_member": True},
        {**GOOD, "code": "old-party", "party_member": True, "birth_date": dt.date(1960, 1, 1)},
        {**GOOD, "code": "unvetted", **dict.fromkeys(VETTED), "veteran": True},
    ]
    ranked = rank_candidates(candidates, on=ON)
    # Eligible first (unvetted is a warning only), then by score; the too old one is last.
    assert [r.member["code"] for r in ranked] == [
        "party", "unvetted", "veteran", "plain", "old-party",
    ]  # fmt: skip
    assert [r.rank for r in ranked] == [1, 2, 3, 4, 5]
    assert ranked[-1].eligible is False and ranked[0].eligible is True


# --- the database ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def engine(writable_database_url: URL) -> Iterator[sa.Engine]:
    eng = sa.create_engine(writable_database_url, poolclass=sa.NullPool)
    yield eng
    eng.dispose()


@pytest.fixture
def conn(engine: sa.Engine) -> Iterator[Connection]:
    """A connection in a transaction rolled back after the test."""
    with engine.connect() as c:
        tx = c.begin()
        try:
            yield c
        finally:
            tx.rollback()


def one(conn: Connection, sql: str, **params: Any) -> Any:
    return conn.execute(sa.text(sql), params).scalar()


def counts(conn: Connection) -> dict[str, int]:
    tables = ("members", "member_status_changes", "ab_posts", "absences")
    return {t: one(conn, f"SELECT count(*) FROM {t}") for t in tables}


def candidate(**over: Any) -> dict[str, Any]:
    return {
        "code": "C-TEST-1", "name": "张小明", "gender": "male", "birth_date": dt.date(1990, 5, 1),
        "education": "高中", "phone": "13812345678", "village_code": VILLAGE, "grid_code": GRID,
        "applied_on": dt.date(2025, 1, 2),
    } | over  # fmt: skip


def walk(conn: Connection, code: str, *steps: str, on: dt.date = ON) -> None:
    for step in steps:
        if step == "examined":
            update_member(conn, code, VETTED)
        transition_member(conn, code, step, actor="test", on=on)


def appointed_member(conn: Connection, grid: str) -> str:
    return one(
        conn, "SELECT code FROM members WHERE grid_code = :g AND status = 'appointed'", g=grid
    )


@pytest.mark.postgis
def test_create_member_stores_and_masks(conn):
    detail = create_member(conn, candidate(party_member=True), actor="centre")
    assert (detail.status, detail.phone, detail.score) == ("applied", "138****5678", 3)
    assert detail.eligible and {p.severity for p in detail.problems} == {"warning"}
    row = conn.execute(
        sa.text("SELECT status::text, phone, applied_on FROM members WHERE code = 'C-TEST-1'")
    ).one()
    assert row[0] == "applied" and row[1] == "13812345678" and row[2] is not None
    history = conn.execute(
        sa.text(
            "SELECT from_status, to_status::text, actor FROM member_status_changes c "
            "JOIN members m ON m.id = c.member_id WHERE m.code = 'C-TEST-1'"
        )
    ).all()
    assert [tuple(h) for h in history] == [(None, "applied", "centre")]


@pytest.mark.postgis
def test_ineligible_candidate_is_registered_with_problems(conn):
    detail = create_member(conn, candidate(education="初中", criminal_record=True), actor="t")
    assert not detail.eligible
    failed = {p.rule for p in detail.problems if p.severity == "failure"}
    assert failed == {"education", "no_criminal_record"}


@pytest.mark.postgis
@pytest.mark.parametrize(
    ("over", "error", "field"),
    [
        ({"phone": "12345"}, RuleError, "phone"),
        ({"grid_code": "511703109001999"}, NotFoundError, "grid_code"),
        ({"grid_code": "511703109002001"}, RuleError, "grid_code"),  # another village's grid
        ({"village_code": "511703109999"}, NotFoundError, "village_code"),
        ({"birth_date": dt.date(2030, 1, 1)}, RuleError, "birth_date"),
        ({"birth_date": dt.date(1900, 1, 1)}, RuleError, "birth_date"),
        ({"gender": "other"}, RuleError, "gender"),
        ({"name": "  "}, RuleError, "name"),
        ({"code": "bad code!"}, RuleError, "code"),
        ({"home": {"lon": 31.0, "lat": 107.4}}, CoordinateError, "home"),  # swapped
        ({"home": {"lon": 116.4, "lat": 39.9}}, CoordinateError, "home"),  # Beijing
        ({"home": {"lon": float("nan"), "lat": 31.0}}, CoordinateError, "home"),
        ({"veteran": "yes"}, RuleError, "veteran"),
    ],
)
def test_bad_fields_are_refused_naming_the_field(conn, over, error, field):
    before = counts(conn)
    with pytest.raises(error) as info:
        create_member(conn, candidate(**over), actor="t")
    assert info.value.problems[0]["field"] == field
    assert counts(conn) == before


@pytest.mark.postgis
def test_duplicate_code_is_refused(conn):
    with pytest.raises(DuplicateCodeError, match="M511703109001001"):
        create_member(conn, candidate(code="M511703109001001"), actor="t")


@pytest.mark.postgis
def test_home_in_gcj02_is_converted(conn):
    create_member(
        conn, candidate(home={"lon": 107.409, "lat": 30.962, "datum": "gcj02"}), actor="t"
    )
    x = one(conn, "SELECT ST_X(home) FROM members WHERE code = 'C-TEST-1'")
    assert x == pytest.approx(107.409 - 0.0047, abs=0.001)  # ~450 m west of the GCJ-02 point


@pytest.mark.postgis
def test_whole_workflow_to_appointment_with_history(conn):
    create_member(conn, candidate(), actor="t")
    incumbent = appointed_member(conn, GRID)
    walk(conn, "C-TEST-1", "recommended", "examined", "publicised")
    with pytest.raises(ConflictError, match=incumbent) as info:
        transition_member(conn, "C-TEST-1", "appointed", actor="t", on=ON)
    assert info.value.problems[0]["appointed_member"] == incumbent
    result = transition_member(
        conn, "C-TEST-1", "appointed", actor="centre", note="公示期满", replaces=incumbent, on=ON
    )
    assert result.member.status == "appointed" and result.member.appointed_on == ON
    assert result.replaced is not None and result.replaced.status == "dismissed"
    assert [(h.from_status, h.to_status) for h in result.history] == [
        (None, "applied"), ("applied", "recommended"), ("recommended", "examined"),
        ("examined", "publicised"), ("publicised", "appointed"),
    ]  # fmt: skip
    assert result.history[-1].note == "公示期满" and result.history[-1].actor == "centre"
    assert appointed_member(conn, GRID) == "C-TEST-1"
    assert one(conn, "SELECT dismissed_on FROM members WHERE code = :c", c=incumbent) == ON
    assert (
        one(
            conn,
            "SELECT count(*) FROM member_status_changes c JOIN members m ON m.id = c.member_id "
            "WHERE m.code = :c AND c.to_status = 'dismissed' "
            "AND c.note LIKE 'replaced by C-TEST-1%'",
            c=incumbent,
        )
        == 1
    )


@pytest.mark.postgis
@pytest.mark.parametrize(
    ("steps", "to", "allowed"),
    [
        ((), "appointed", ["recommended", "dismissed"]),
        ((), "examined", ["recommended", "dismissed"]),
        (("recommended",), "publicised", ["examined", "dismissed"]),
        (("recommended", "examined"), "recommended", ["publicised", "dismissed"]),
    ],
)
def test_illegal_transitions_name_the_allowed_steps(conn, steps, to, allowed):
    create_member(conn, candidate(), actor="t")
    walk(conn, "C-TEST-1", *steps)
    before = counts(conn)
    with pytest.raises(WorkflowError) as info:
        transition_member(conn, "C-TEST-1", to, actor="t")
    assert info.value.problems[0]["allowed"] == allowed
    assert all(step in str(info.value) for step in allowed)
    assert counts(conn) == before


@pytest.mark.postgis
def test_dismissed_is_final_and_needs_a_reason(conn):
    create_member(conn, candidate(), actor="t")
    with pytest.raises(RuleError, match="reason"):
        transition_member(conn, "C-TEST-1", "dismissed", actor="t")
    transition_member(conn, "C-TEST-1", "dismissed", actor="t", reason="withdrew")
    with pytest.raises(WorkflowError, match="none"):
        transition_member(conn, "C-TEST-1", "applied", actor="t")


@pytest.mark.postgis
def test_appointment_date_is_checked(conn):
    create_member(conn, candidate(applied_on=dt.date(2025, 5, 1)), actor="t")
    walk(conn, "C-TEST-1", "recommended", "examined", "publicised")
    incumbent = appointed_member(conn, GRID)
    with pytest.raises(RuleError) as info:
        transition_member(
            conn, "C-TEST-1", "appointed", actor="t", replaces=incumbent, on=dt.date(2025, 4, 1)
        )
    assert info.value.problems[0]["field"] == "on"
    # Aged 45 on the day, 46 the day after: the appointment date decides.
    update_member(conn, "C-TEST-1", {"birth_date": dt.date(1980, 6, 2)})
    with pytest.raises(RuleError, match="aged 46"):
        transition_member(
            conn, "C-TEST-1", "appointed", actor="t", replaces=incumbent, on=dt.date(2026, 6, 2)
        )
    done = transition_member(
        conn, "C-TEST-1", "appointed", actor="t", replaces=incumbent, on=dt.date(2026, 6, 1)
    )
    assert done.member.appointed_on == dt.date(2026, 6, 1)


@pytest.mark.postgis
def test_examination_needs_the_vetting(conn):
    create_member(conn, candidate(), actor="t")
    transition_member(conn, "C-TEST-1", "recommended", actor="t")
    with pytest.raises(RuleError) as info:
        transition_member(conn, "C-TEST-1", "examined", actor="t")
    assert [p["field"] for p in info.value.problems] == list(EXCLUSION_FLAGS)


@pytest.mark.postgis
def test_appointing_an_ineligible_candidate_lists_every_failed_rule(conn):
    create_member(conn, candidate(birth_date=dt.date(1975, 1, 1), education="初中"), actor="t")
    walk(conn, "C-TEST-1", "recommended", "examined", "publicised")
    update_member(conn, "C-TEST-1", {"cult_member": True, "organised_petitions": None})
    incumbent = appointed_member(conn, GRID)
    before = counts(conn)
    with pytest.raises(RuleError) as info:
        transition_member(conn, "C-TEST-1", "appointed", actor="t", replaces=incumbent, on=ON)
    assert {p["rule"] for p in info.value.problems} == {
        "age", "education", "no_cult_membership", "no_organised_petitions",
    }  # fmt: skip
    assert counts(conn) == before and appointed_member(conn, GRID) == incumbent


@pytest.mark.postgis
def test_dismissal_with_replacement_appoints_in_one_step(conn):
    create_member(conn, candidate(), actor="t")
    walk(conn, "C-TEST-1", "recommended", "examined", "publicised")
    incumbent = appointed_member(conn, GRID)
    result = transition_member(
        conn, incumbent, "dismissed", actor="t", reason="moved away", replacement="C-TEST-1", on=ON
    )
    assert result.member.code == "C-TEST-1" and result.member.status == "appointed"
    assert result.replaced is not None and result.replaced.code == incumbent
    assert appointed_member(conn, GRID) == "C-TEST-1"


@pytest.mark.postgis
def test_update_member_checks_and_refuses_moving_an_appointed_member(conn):
    member = appointed_member(conn, GRID)
    with pytest.raises(ConflictError, match="appointed"):
        update_member(conn, member, {"grid_code": "511703109001002"})
    with pytest.raises(RuleError) as info:
        update_member(conn, member, {"birth_date": None})
    assert info.value.problems[0]["field"] == "birth_date"
    detail = update_member(conn, member, {"veteran": True, **VETTED})
    assert detail.veteran and detail.criminal_record is False


@pytest.mark.postgis
def test_grid_candidates_are_ranked(conn):
    create_member(conn, candidate(code="C-A"), actor="t")
    create_member(conn, candidate(code="C-B", veteran=True), actor="t")
    create_member(conn, candidate(code="C-C", party_member=True, education="小学"), actor="t")
    ranked = grid_candidates(conn, GRID, on=ON)
    assert [(r.rank, r.member.code, r.eligible) for r in ranked] == [
        (1, "C-B", True), (2, "C-A", True), (3, "C-C", False),
    ]  # fmt: skip
    with pytest.raises(NotFoundError):
        grid_candidates(conn, "511703109001999")


# --- AB posts, absences, cover ------------------------------------------------------------


def current_posts(conn: Connection) -> dict[str, str]:
    rows = conn.execute(
        sa.text(
            "SELECT grid_code, cover_grid_code FROM ab_posts "
            "WHERE town_code = :t AND valid_to IS NULL"
        ),
        {"t": ZHAOJIA},
    )
    return {r[0]: r[1] for r in rows}


@pytest.mark.postgis
def test_ab_posts_are_stored_as_the_current_pairing(conn):
    plan = compute_ab_posts(conn, ZHAOJIA)
    grids = one(
        conn, "SELECT count(*) FROM grids WHERE valid_to IS NULL AND village_code LIKE '511703109%'"
    )
    preview = store_ab_posts(conn, ZHAOJIA, plan, actor="t", dry_run=True)
    assert not preview.stored and len(preview.posts) == grids and current_posts(conn) == {}
    stored = store_ab_posts(conn, ZHAOJIA, plan, actor="t")
    assert stored.stored and stored.closed == 0 and len(stored.posts) == grids
    assert current_posts(conn) == {g: str(r) for g, r in plan.cover["backup_grid"].items()}
    again = store_ab_posts(conn, ZHAOJIA, plan, actor="t")
    assert again.closed == grids
    assert one(conn, "SELECT count(*) FROM ab_posts WHERE valid_to IS NOT NULL") == grids
    post = read_ab_posts(conn, ZHAOJIA).posts[0]
    assert post.member is not None and "*" in (post.member.phone or "*")
    assert read_ab_posts(conn, ZHAOJIA, village=VILLAGE).posts
    assert all(
        p.grid_code.startswith(VILLAGE) for p in read_ab_posts(conn, ZHAOJIA, village=VILLAGE).posts
    )


@pytest.mark.postgis
def test_set_ab_post_by_hand(conn):
    neighbour = one(
        conn,
        "SELECT b.code FROM grids a, grids b WHERE a.code = :g AND a.valid_to IS NULL "
        "AND b.valid_to IS NULL AND b.code <> a.code "
        "AND ST_Dimension(ST_Intersection(a.geom, b.geom)) = 1 ORDER BY b.code LIMIT 1",
        g=GRID,
    )
    far = one(
        conn,
        "SELECT b.code FROM grids a, grids b WHERE a.code = :g AND b.valid_to IS NULL "
        "AND left(b.code, 9) = :t AND NOT ST_Intersects(a.geom, b.geom) ORDER BY b.code LIMIT 1",
        g=GRID,
        t=ZHAOJIA,
    )
    post = set_ab_post(conn, GRID, neighbour, actor="t")
    assert (post.cover_grid_code, post.link) == (neighbour, "adjacent")
    with pytest.raises(RuleError, match="share no border") as info:
        set_ab_post(conn, GRID, far, actor="t")
    assert info.value.problems[0]["field"] == "cover_grid_code"
    post = set_ab_post(conn, GRID, far, actor="t", reason="members live next door")
    assert (post.link, current_posts(conn)[GRID]) == ("manual", far)
    assert one(conn, "SELECT count(*) FROM ab_posts WHERE grid_code = :g", g=GRID) == 2
    with pytest.raises(RuleError):
        set_ab_post(conn, GRID, GRID, actor="t")
    with pytest.raises(NotFoundError):
        set_ab_post(conn, GRID, "511703109001999", actor="t")
    with pytest.raises(RuleError, match="one town"):
        set_ab_post(conn, GRID, "511703129001001", actor="t")


@pytest.mark.postgis
def test_absences_are_validated(conn):
    member = appointed_member(conn, GRID)
    first = add_absence(conn, member, ON, ON + dt.timedelta(days=4), reason="病假", actor="t")
    before = counts(conn)
    with pytest.raises(ConflictError, match=str(first.id)):
        add_absence(conn, member, ON + dt.timedelta(days=4), ON + dt.timedelta(days=9),
                    reason="年假", actor="t")  # fmt: skip
    with pytest.raises(RuleError) as info:
        add_absence(conn, member, ON, ON - dt.timedelta(days=1), reason="x", actor="t")
    assert info.value.problems[0]["field"] == "ends_on"
    create_member(conn, candidate(), actor="t")
    with pytest.raises(ConflictError, match="applied"):
        add_absence(conn, "C-TEST-1", ON, ON, reason="x", actor="t")
    with pytest.raises(NotFoundError):
        add_absence(conn, "nobody", ON, ON, reason="x", actor="t")
    assert counts(conn)["absences"] == before["absences"]
    assert [a.id for a in list_absences(conn, member)] == [first.id]
    assert delete_absence(conn, first.id).id == first.id
    assert list_absences(conn, member) == []
    with pytest.raises(NotFoundError):
        delete_absence(conn, first.id)


@pytest.mark.postgis
def test_cover_by_the_stored_partner_then_the_fallback(conn):
    assert cover_on(conn, ZHAOJIA, ON).pairing == "none"
    stored = store_ab_posts(conn, ZHAOJIA, compute_ab_posts(conn, ZHAOJIA), actor="t")
    post = next(p for p in stored.posts if p.grid_code == GRID)
    assert post.member is not None and post.cover_member is not None
    add_absence(conn, post.member.code, ON, ON, reason="病假", actor="t")
    cover = cover_on(conn, ZHAOJIA, ON)
    assert cover.pairing == "stored" and cover.uncovered == ()
    (a,) = cover.assignments
    assert (a.grid_code, a.cover_member.code, a.rule) == (GRID, post.cover_member.code, "ab_post")
    assert a.absent.code == post.member.code and a.absence_reason == "病假"
    assert cover.grids_covered_by(post.cover_member.code) == [GRID]
    assert grids_covered_by(conn, post.cover_member.code, ON) == [GRID]
    assert grids_covered_by(conn, post.member.code, ON) == []
    assert cover_on(conn, ZHAOJIA, ON + dt.timedelta(days=1)).assignments == ()
    # The partner is absent too: someone else covers, by a later rule.
    add_absence(conn, post.cover_member.code, ON, ON, reason="培训", actor="t")
    cover = cover_on(conn, ZHAOJIA, ON)
    mine = next(a for a in cover.assignments if a.grid_code == GRID)
    assert mine.cover_member.code not in {post.member.code, post.cover_member.code}
    assert mine.rule in {"group", "neighbour", "second_ring"}
    # A hand-set partner is the stored one the cover follows.
    other = next(p for p in stored.posts if p.grid_code not in {GRID, post.cover_grid_code})
    set_ab_post(conn, post.cover_grid_code, other.grid_code, actor="t", reason="test")
    cover = cover_on(conn, ZHAOJIA, ON)
    partner = next(a for a in cover.assignments if a.grid_code == post.cover_grid_code)
    assert (partner.cover_grid_code, partner.rule) == (other.grid_code, "ab_post")


@pytest.mark.postgis
def test_cover_without_a_stored_pairing_uses_the_computed_one(conn):
    member = appointed_member(conn, GRID)
    add_absence(conn, member, ON, ON, reason="病假", actor="t")
    cover = cover_on(conn, ZHAOJIA, ON, village=VILLAGE)
    assert cover.pairing == "computed"
    assert [a.grid_code for a in cover.assignments] == [GRID]
    assert cover_on(conn, ZHAOJIA, ON, village="511703109002").assignments == ()


@pytest.mark.postgis
def test_grids_nobody_can_cover_are_listed_with_the_reason(conn):
    codes = conn.execute(
        sa.text("SELECT code FROM members WHERE status = 'appointed' AND grid_code LIKE :t"),
        {"t": ZHAOJIA + "%"},
    ).scalars()
    for code in codes:
        add_absence(conn, code, ON, ON, reason="全镇培训", actor="t")
    cover = cover_on(conn, ZHAOJIA, ON)
    assert cover.assignments == ()
    grids = one(
        conn, "SELECT count(*) FROM grids WHERE valid_to IS NULL AND village_code LIKE '511703109%'"
    )
    assert len(cover.uncovered) == grids
    assert all("absent too" in u.reason for u in cover.uncovered)
