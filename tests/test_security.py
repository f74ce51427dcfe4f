"""Security: encryption at rest, tokens, accounts and lockout, row-level security as the
application role, the append-only audit log, unmasking, the users CLI.

Row-level security is tested by connecting as the application role (``gis_grid_app``, no
BYPASSRLS) the way the service does, with :func:`gis_grid.security.context.set_context`.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine
from typer.testing import CliRunner

from gis_grid import queries
from gis_grid.cli import app as cli_app
from gis_grid.errors import GridError
from gis_grid.members.cover import cover_on
from gis_grid.privacy import mask_id_number, mask_phone
from gis_grid.security import accounts, tokens
from gis_grid.security.context import clear_cache, set_context
from gis_grid.security.crypto import Keys, decrypt, default_keys, lookup_hash, seal
from gis_grid.security.errors import AuthenticationError
from gis_grid.security.roles import AREAS, PERMISSIONS, Role, allows
from tests.conftest import ServerThread
from tests.security_support import clear_residents

pytestmark = pytest.mark.postgis

PASSWORD = "correct horse battery"
TOWN = "511703109"
UNMASK_LIMIT = 6
ROLE_USERS = {
    "admin": "t.admin",
    "planner": "t.planner",
    "analyst": "t.analyst",
    "reader": "t.reader",
}


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def owner(writable_database_url: URL) -> Iterator[Engine]:
    """The owner role (BYPASSRLS): sets up data and checks what is stored."""
    eng = sa.create_engine(writable_database_url, poolclass=sa.NullPool)
    yield eng
    eng.dispose()


@pytest.fixture(scope="module")
def app_url(writable_database_url: URL, owner: Engine) -> URL:
    """URL of the application role on the module's database (scripts/setup.sh: LOGIN)."""
    with owner.begin() as conn:
        conn.exec_driver_sql("ALTER ROLE gis_grid_app LOGIN PASSWORD 'gis_grid_app'")
    return writable_database_url.set(username="gis_grid_app", password="gis_grid_app")


@pytest.fixture(scope="module")
def app_engine(app_url: URL) -> Iterator[Engine]:
    """Connections as the application role: row-level security applies."""
    eng = sa.create_engine(app_url, poolclass=sa.NullPool)
    yield eng
    eng.dispose()


@pytest.fixture(scope="module")
def grids(owner: Engine) -> dict[str, Any]:
    """Two appointed members of the town and their grids (A's and another, B's)."""
    with owner.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT m.id, m.code, m.grid_code FROM members m WHERE m.status = 'appointed' "
                "AND left(m.grid_code, 9) = :t AND EXISTS (SELECT 1 FROM households h "
                "WHERE h.grid_code = m.grid_code) ORDER BY m.grid_code"
            ),
            {"t": TOWN},
        ).all()
    a, b = rows[0], rows[-1]
    return {"a_id": a[0], "a_code": a[1], "a": a[2], "b_id": b[0], "b_code": b[1], "b": b[2]}


@pytest.fixture(scope="module")
def users(owner: Engine, grids: dict[str, Any]) -> dict[str, accounts.User]:
    """One account per role, and member accounts for A and B."""
    out = {}
    with owner.begin() as conn:
        for role, name in ROLE_USERS.items():
            out[role] = accounts.create_user(conn, name, PASSWORD, role)
        out["member"] = accounts.create_user(
            conn, "t.member.a", PASSWORD, "member", member_code=grids["a_code"]
        )
        out["member_b"] = accounts.create_user(
            conn, "t.member.b", PASSWORD, "member", member_code=grids["b_code"]
        )
    return out


@pytest.fixture(scope="module")
def server(app_url: URL, users: dict[str, accounts.User]) -> Iterator[str]:
    """The service as the application role, with a small unmask limit."""
    del users
    old = os.environ.get("GIS_GRID_UNMASK_PER_HOUR")
    os.environ["GIS_GRID_UNMASK_PER_HOUR"] = str(UNMASK_LIMIT)
    try:
        thread = ServerThread(app_url)
    finally:
        if old is None:
            del os.environ["GIS_GRID_UNMASK_PER_HOUR"]
        else:
            os.environ["GIS_GRID_UNMASK_PER_HOUR"] = old
    with thread:
        yield thread.url


@pytest.fixture(scope="module")
def client(server: str) -> Iterator[httpx.Client]:
    """HTTP client of the module's server."""
    with httpx.Client(base_url=f"{server}/api/v1", timeout=60) as c:
        yield c


def login(client: httpx.Client, username: str, password: str = PASSWORD) -> dict[str, str]:
    """Log in; the Authorization header of the new token."""
    r = client.post("/auth/login", json={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


@pytest.fixture(scope="module")
def headers(client: httpx.Client, users: dict[str, accounts.User]) -> dict[str, dict[str, str]]:
    """A token per role (and per member account)."""
    return {key: login(client, user.username) for key, user in users.items()}


def count(conn: Connection, sql: str, **params: Any) -> int:
    """The integer a query returns."""
    return int(conn.execute(sa.text(sql), params).scalar_one())


def audit_rows(owner: Engine, username: str) -> list[Any]:
    """The audit entries of one user, oldest first."""
    with owner.connect() as conn:
        return conn.execute(
            sa.text("SELECT * FROM audit_log WHERE username = :u ORDER BY id"), {"u": username}
        ).all()


# --- encryption at rest ---------------------------------------------------------------------


def test_encryption_round_trip_and_tampering() -> None:
    keys = Keys.from_secret("s" * 40)
    sealed = seal(" 11010519491231002x ", keys, "id_number")
    assert sealed is not None
    assert sealed.masked == "110***********002X"
    assert b"11010519491231002X" not in sealed.enc
    assert decrypt(sealed.enc, keys, "id_number") == "11010519491231002X"
    # Random nonce: the same value encrypts differently, hashes the same.
    again = seal("11010519491231002X", keys, "id_number")
    assert again is not None and again.enc != sealed.enc and again.hash == sealed.hash
    phone = seal("138 1234 1234", keys, "phone")
    assert phone is not None and phone.masked == "138****1234"
    # A phone's ciphertext is not an ID number's; another key decrypts nothing; tampering fails.
    with pytest.raises(GridError, match="cannot be decrypted"):
        decrypt(phone.enc, keys, "id_number")
    with pytest.raises(GridError, match="cannot be decrypted"):
        decrypt(sealed.enc, Keys.from_secret("t" * 40), "id_number")
    tampered = sealed.enc[:-1] + bytes([sealed.enc[-1] ^ 1])
    with pytest.raises(GridError):
        decrypt(tampered, keys, "id_number")
    with pytest.raises(GridError, match="at least 32"):
        Keys.from_secret("short")
    # The lookup hash depends on the key.
    assert lookup_hash("13812341234", keys, "phone") != lookup_hash(
        "13812341234", Keys.from_secret("t" * 40), "phone"
    )


def test_personal_data_is_ciphertext_in_the_table(owner: Engine) -> None:
    keys = default_keys()
    with owner.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT id_number_enc, id_number_hash, id_number_masked, phone_enc, "
                "phone_hash, phone_masked FROM residents WHERE phone_enc IS NOT NULL "
                "ORDER BY id LIMIT 50"
            )
        ).all()
        columns = set(
            conn.scalars(
                sa.text(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_name = 'residents'"
                )
            )
        )
    assert len(rows) == 50
    assert not {"id_number", "phone"} & columns
    for enc, digest, masked, penc, pdigest, pmasked in rows:
        number = decrypt(enc, keys, "id_number")
        phone = decrypt(penc, keys, "phone")
        assert len(number) == 18
        assert number.encode() not in bytes(enc) and phone.encode() not in bytes(penc)
        assert masked == mask_id_number(number) and pmasked == mask_phone(phone)
        assert digest == lookup_hash(number, keys, "id_number")
        assert pdigest == lookup_hash(phone, keys, "phone")


# --- tokens and accounts --------------------------------------------------------------------


def test_tokens_forged_expired_revoked(owner: Engine, users: dict[str, accounts.User]) -> None:
    keys = default_keys()
    with owner.begin() as conn:
        issued = tokens.issue_token(conn, users["analyst"], keys, minutes=5)
        user, claims = tokens.verify_token(conn, issued.token, keys)
        assert user.username == users["analyst"].username and claims.jti == issued.jti
        prefix, payload, signature = issued.token.split(".")
        for forged in (
            f"{prefix}.{payload}.{signature[:-2]}AA",
            f"{prefix}.{payload}x.{signature}",
            f"v2.{payload}.{signature}",
            "not a token",
            issued.token + ".",
        ):
            with pytest.raises(AuthenticationError, match="invalid token"):
                tokens.read_token(forged, keys)
        # Signed with another secret: forged.
        with pytest.raises(AuthenticationError, match="invalid token"):
            tokens.read_token(issued.token, Keys.from_secret("z" * 40))
        with pytest.raises(AuthenticationError, match="expired"):
            tokens.read_token(issued.token, keys, now=claims.expires + 1)
        assert tokens.revoke(conn, issued.jti)
        with pytest.raises(AuthenticationError, match="revoked"):
            tokens.verify_token(conn, issued.token, keys)


def test_accounts_refuse_bad_input(owner: Engine, grids: dict[str, Any]) -> None:
    with owner.begin() as conn:
        for name, password, role, member in (
            ("AB", PASSWORD, "admin", None),
            ("x y z", PASSWORD, "admin", None),
            ("good.name", "short", "admin", None),
            ("good.name", PASSWORD, "superuser", None),
            ("good.name", PASSWORD, "member", None),
            ("good.name", PASSWORD, "admin", grids["a_code"]),
        ):
            with pytest.raises(GridError):
                accounts.create_user(conn, name, password, role, member_code=member)
        with pytest.raises(GridError, match="not found"):
            accounts.create_user(conn, "good.name", PASSWORD, "member", member_code="NOPE")
        assert conn.scalar(sa.text("SELECT count(*) FROM users WHERE username = 'good.name'")) == 0


# --- row-level security as the application role -------------------------------------------


RLS_TABLES = ("households", "residents", "incidents", "patrol_logs", "attachments")


def test_without_context_no_rows(app_engine: Engine, owner: Engine) -> None:
    with owner.connect() as conn:
        assert count(conn, "SELECT count(*) FROM residents") > 0
    with app_engine.begin() as conn:
        for table in RLS_TABLES:
            assert count(conn, f"SELECT count(*) FROM {table}") == 0, table
        assert count(conn, "SELECT count(*) FROM grids") > 0  # not personal: no policy
        assert conn.execute(sa.text("UPDATE households SET people = people")).rowcount == 0


def test_app_role_cannot_bypass(app_engine: Engine) -> None:
    with app_engine.connect() as conn:
        row = conn.execute(
            sa.text("SELECT rolbypassrls, rolsuper FROM pg_roles WHERE rolname = current_user")
        ).one()
        assert tuple(row) == (False, False)
        for table in RLS_TABLES:
            forced = conn.scalar(
                sa.text(
                    "SELECT relforcerowsecurity AND relrowsecurity FROM pg_class WHERE relname = :t"
                ),
                {"t": table},
            )
            assert forced, table
        # Turning security off, or claiming a role by SQL, needs ownership.
        with pytest.raises(sa.exc.ProgrammingError):
            conn.exec_driver_sql("ALTER TABLE residents DISABLE ROW LEVEL SECURITY")


def test_member_reads_only_own_grid(
    app_engine: Engine, owner: Engine, users: dict[str, accounts.User], grids: dict[str, Any]
) -> None:
    a, b = grids["a"], grids["b"]
    with owner.connect() as conn:
        expected = {
            "households": count(conn, "SELECT count(*) FROM households WHERE grid_code = :g", g=a),
            "residents": count(
                conn,
                "SELECT count(*) FROM residents r JOIN households h ON h.id = r.household_id "
                "WHERE h.grid_code = :g",
                g=a,
            ),
            "incidents": count(conn, "SELECT count(*) FROM incidents WHERE grid_code = :g", g=a),
        }
        other_resident = count(
            conn,
            "SELECT min(r.id) FROM residents r JOIN households h ON h.id = r.household_id "
            "WHERE h.grid_code = :g",
            g=b,
        )
        other_household = conn.scalar(
            sa.text("SELECT code FROM households WHERE grid_code = :g LIMIT 1"), {"g": b}
        )
        b_box = conn.execute(
            sa.text(
                "SELECT ST_XMin(geom), ST_YMin(geom), ST_XMax(geom), ST_YMax(geom) FROM grids "
                "WHERE code = :g AND valid_to IS NULL"
            ),
            {"g": b},
        ).one()
    assert expected["residents"] > 0
    clear_cache()
    with app_engine.begin() as conn:
        assert set_context(conn, users["member"]) == (a,)
        for table, n in expected.items():
            assert count(conn, f"SELECT count(*) FROM {table}") == n, table
        assert set(conn.scalars(sa.text("SELECT DISTINCT grid_code FROM households"))) == {a}
        # By id, by list filters, by bbox: nothing of grid B.
        assert count(conn, "SELECT count(*) FROM residents WHERE id = :i", i=other_resident) == 0
        assert queries.resident_page(conn, grid=b).number_matched == 0
        assert queries.resident_page(conn, household=other_household).number_matched == 0
        assert queries.resident_page(conn, town=TOWN).number_matched == expected["residents"]
        assert queries.household_page(conn, grid=b).number_matched == 0
        box = queries.BBox(*(float(v) for v in b_box))
        assert queries.household_page(conn, bbox=box).number_matched <= count(
            conn, "SELECT count(*) FROM households"
        )
        in_box = queries.household_page(conn, bbox=box, limit=10_000)
        assert b not in in_box.features_json
        assert queries.incident_page(conn, grid=b).number_matched == 0
        with pytest.raises(GridError):
            queries.get_household(conn, other_household)
        # Writes outside the grid touch nothing.
        assert (
            conn.execute(
                sa.text("UPDATE households SET people = people WHERE grid_code = :g"), {"g": b}
            ).rowcount
            == 0
        )
        assert (
            conn.execute(
                sa.text("DELETE FROM residents WHERE id = :i"), {"i": other_resident}
            ).rowcount
            == 0
        )


def test_member_cannot_move_a_row_out_of_reach(
    app_engine: Engine, users: dict[str, accounts.User], grids: dict[str, Any]
) -> None:
    with app_engine.connect() as conn, conn.begin():
        set_context(conn, users["member"])
        with pytest.raises(sa.exc.ProgrammingError, match="row-level security"):
            conn.execute(
                sa.text(
                    "UPDATE households SET grid_code = :b WHERE id = "
                    "(SELECT min(id) FROM households WHERE grid_code = :a)"
                ),
                {"a": grids["a"], "b": grids["b"]},
            )


def test_central_roles_and_reader(
    app_engine: Engine, owner: Engine, users: dict[str, accounts.User]
) -> None:
    with owner.connect() as conn:
        totals = {t: count(conn, f"SELECT count(*) FROM {t}") for t in RLS_TABLES}
    for role in ("admin", "planner", "analyst"):
        with app_engine.begin() as conn:
            set_context(conn, users[role])
            assert {t: count(conn, f"SELECT count(*) FROM {t}") for t in RLS_TABLES} == totals
    with app_engine.begin() as conn:
        set_context(conn, users["analyst"])
        assert conn.execute(sa.text("UPDATE households SET people = people")).rowcount == 0
    with app_engine.begin() as conn:
        set_context(conn, users["reader"])
        assert count(conn, "SELECT count(*) FROM households") == totals["households"]
        assert count(conn, "SELECT count(*) FROM patrol_logs") == 0
        assert count(conn, "SELECT count(*) FROM attachments") == 0
    with app_engine.begin() as conn:
        set_context(conn, users["planner"])
        # Plans re-assign households and incidents; residents are not the planner's.
        assert (
            conn.execute(sa.text("UPDATE households SET people = people")).rowcount
            == (totals["households"])
        )
        assert conn.execute(sa.text("UPDATE residents SET name = name")).rowcount == 0


def test_ab_cover_only_on_the_absent_day(
    app_engine: Engine, owner: Engine, users: dict[str, accounts.User], grids: dict[str, Any]
) -> None:
    day = dt.date(2031, 3, 3)
    b = grids["b"]
    with owner.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO absences (member_id, starts_on, ends_on, reason) "
                "VALUES (:m, :d, :d, 'training')"
            ),
            {"m": grids["b_id"], "d": day},
        )
        cover = cover_on(conn, TOWN, day)
        coverer = next(x.cover_member.code for x in cover.assignments if x.grid_code == b)
        user = accounts.create_user(conn, "t.cover", PASSWORD, "member", member_code=coverer)
        own = conn.scalar(sa.text("SELECT grid_code FROM members WHERE code = :c"), {"c": coverer})
        b_households = count(conn, "SELECT count(*) FROM households WHERE grid_code = :g", g=b)
    clear_cache()
    with app_engine.begin() as conn:
        assert set(set_context(conn, user, day=day)) == {own, b}
        assert (
            count(conn, "SELECT count(*) FROM households WHERE grid_code = :g", g=b) == b_households
        )
    for other_day in (day - dt.timedelta(days=1), day + dt.timedelta(days=1)):
        with app_engine.begin() as conn:
            assert set_context(conn, user, day=other_day) == (own,)
            assert count(conn, "SELECT count(*) FROM households WHERE grid_code = :g", g=b) == 0
    # The absent member sees their own grid still (they are absent, not dismissed).
    with app_engine.begin() as conn:
        assert set_context(conn, users["member_b"], day=day) == (b,)


# --- the audit log --------------------------------------------------------------------------


def test_audit_log_is_append_only(app_engine: Engine, owner: Engine) -> None:
    with app_engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO audit_log (username, role, action, outcome) "
                "VALUES ('t', 'admin', 'test', 'granted')"
            )
        )
    for sql in ("UPDATE audit_log SET reason = 'x'", "DELETE FROM audit_log", "TRUNCATE audit_log"):
        with app_engine.connect() as conn, pytest.raises(sa.exc.ProgrammingError, match="denied"):
            conn.exec_driver_sql(sql)
        # Not even the owner: the trigger refuses.
        with owner.connect() as conn, pytest.raises(sa.exc.DBAPIError, match="append-only"):
            conn.exec_driver_sql(sql)
    with owner.connect() as conn:
        assert count(conn, "SELECT count(*) FROM audit_log WHERE action = 'test'") == 1


# --- HTTP: login, logout, lockout -----------------------------------------------------------


def test_login_me_logout(client: httpx.Client, users: dict[str, accounts.User]) -> None:
    r = client.post("/auth/login", json={"username": "t.member.a", "password": PASSWORD})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "bearer" and 0 < body["expires_in"] <= 24 * 3600
    assert body["user"]["role"] == "member"
    assert "gis_grid_token" in r.headers["set-cookie"] and "HttpOnly" in r.headers["set-cookie"]
    auth = {"Authorization": f"Bearer {body['access_token']}"}
    me = client.get("/auth/me", headers=auth)
    assert me.status_code == 200, me.text
    assert me.json()["member_code"] == users["member"].member_code
    assert me.json()["grids"] and "password" not in me.text
    assert client.post("/auth/logout", headers=auth).status_code == 204
    r = client.get("/auth/me", headers=auth)
    assert r.status_code == 401 and "revoked" in r.json()["detail"]


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer",
        "Bearer v1.e30.AAAA",
        "Bearer abc.def",
        "Basic dXNlcjpwYXNz",
        "Bearer " + "x" * 600,
    ],
)
def test_missing_or_forged_tokens_are_401(client: httpx.Client, authorization: str | None) -> None:
    client.cookies.clear()
    headers = {} if authorization is None else {"Authorization": authorization}
    r = client.get("/auth/me", headers=headers)
    assert r.status_code == 401, r.text
    assert r.json()["error"] == "AuthenticationError"
    r = client.post(
        "/residents/1/unmask", headers=headers, json={"fields": ["name"], "reason": "checking"}
    )
    assert r.status_code == 401


def test_expired_and_tampered_tokens_are_401(
    client: httpx.Client, owner: Engine, users: dict[str, accounts.User]
) -> None:
    client.cookies.clear()
    with owner.begin() as conn:
        expired = tokens.issue_token(conn, users["admin"], default_keys(), minutes=0)
    r = client.get("/auth/me", headers={"Authorization": f"Bearer {expired.token}"})
    assert r.status_code == 401 and "expired" in r.json()["detail"]
    assert r.headers["WWW-Authenticate"].startswith("Bearer ")  # RFC 6750's challenge
    assert client.get("/towns").headers["WWW-Authenticate"].startswith("Bearer ")
    good = login(client, "t.admin")["Authorization"]
    prefix, payload, signature = good.removeprefix("Bearer ").split(".")
    # Another user's id in a re-encoded payload, with the old signature: forged.
    import base64
    import json

    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = users["member"].id
    other = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    r = client.get("/auth/me", headers={"Authorization": f"Bearer {prefix}.{other}.{signature}"})
    assert r.status_code == 401 and "invalid" in r.json()["detail"]


def test_wrong_password_and_lockout(client: httpx.Client, owner: Engine) -> None:
    with owner.begin() as conn:
        accounts.create_user(conn, "t.lockme", PASSWORD, "analyst")
    unknown = client.post("/auth/login", json={"username": "t.nobody", "password": PASSWORD})
    wrong = client.post("/auth/login", json={"username": "t.lockme", "password": "wrong!"})
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json()["detail"] == wrong.json()["detail"]  # which one is not told
    for _ in range(4):  # 5 failures in a row lock the account (default setting)
        assert (
            client.post(
                "/auth/login", json={"username": "t.lockme", "password": "wrong!"}
            ).status_code
            == 401
        )
    r = client.post("/auth/login", json={"username": "t.lockme", "password": PASSWORD})
    assert r.status_code == 429, r.text
    assert 0 < int(r.headers["Retry-After"]) <= 15 * 60
    assert "locked" in r.json()["detail"]
    # An administrator's new password unlocks it.
    with owner.begin() as conn:
        accounts.set_password(conn, "t.lockme", PASSWORD + "!")
    assert login(client, "t.lockme", PASSWORD + "!")


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"username": "t.admin"},
        {"username": "", "password": PASSWORD},
        {"username": "t.admin", "password": PASSWORD, "role": "admin"},
        {"username": ["t.admin"], "password": PASSWORD},
    ],
)
def test_login_bad_input_is_422(client: httpx.Client, body: dict[str, Any]) -> None:
    r = client.post("/auth/login", json=body)
    assert r.status_code == 422, r.text
    assert PASSWORD not in r.text


def test_disabled_account_loses_its_sessions(
    client: httpx.Client, owner: Engine, users: dict[str, accounts.User]
) -> None:
    with owner.begin() as conn:
        accounts.create_user(conn, "t.leaver", PASSWORD, "reader")
    auth = login(client, "t.leaver")
    assert client.get("/auth/me", headers=auth).status_code == 200
    with owner.begin() as conn:
        accounts.disable_user(conn, "t.leaver")
    assert client.get("/auth/me", headers=auth).status_code == 401
    r = client.post("/auth/login", json={"username": "t.leaver", "password": PASSWORD})
    assert r.status_code == 401
    del users


# --- unmasking ------------------------------------------------------------------------------


def _resident_in(owner: Engine, grid: str) -> dict[str, Any]:
    with owner.connect() as conn:
        return clear_residents(
            conn,
            "h.grid_code = :g AND r.phone_enc IS NOT NULL AND r.id_number_enc IS NOT NULL",
            g=grid,
        )[0]


@pytest.mark.parametrize(
    "body",
    [
        {"fields": ["id_number"]},
        {"fields": ["id_number"], "reason": "why"},
        {"fields": ["id_number"], "reason": "    "},
        {"fields": [], "reason": "checking identity"},
        {"fields": ["password_hash"], "reason": "checking identity"},
        {"reason": "checking identity"},
        {"fields": "id_number", "reason": "checking identity"},
    ],
)
def test_unmask_bad_input_is_422_and_reveals_nothing(
    client: httpx.Client,
    headers: dict[str, dict[str, str]],
    owner: Engine,
    grids: dict[str, Any],
    body: dict[str, Any],
) -> None:
    person = _resident_in(owner, grids["a"])
    before = len(audit_rows(owner, "t.admin"))
    r = client.post(f"/residents/{person['id']}/unmask", headers=headers["admin"], json=body)
    assert r.status_code == 422, r.text
    assert person["id_number"] not in r.text and person["phone"] not in r.text
    if "reason" not in body or len(body.get("reason", "")) < 5:
        assert "reason" in r.text or "fields" in r.text
    assert len(audit_rows(owner, "t.admin")) == before


def test_unmask_gives_clear_values_and_audits(
    client: httpx.Client,
    headers: dict[str, dict[str, str]],
    owner: Engine,
    grids: dict[str, Any],
) -> None:
    person = _resident_in(owner, grids["b"])
    reason = "核实低保申请人身份"
    r = client.post(
        f"/residents/{person['id']}/unmask",
        headers=headers["admin"],
        json={"fields": ["id_number", "phone", "name"], "reason": reason},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["id_number"], body["phone"], body["name"]) == (
        person["id_number"],
        person["phone"],
        person["name"],
    )
    entry = audit_rows(owner, "t.admin")[-1]
    assert entry.id == body["audit_id"] and entry.outcome == "granted"
    assert entry.resident_id == person["id"] and entry.reason == reason
    assert entry.fields == ["id_number", "phone", "name"] and entry.role == "admin"
    # Only the fields asked for.
    r = client.post(
        f"/residents/{person['id']}/unmask",
        headers=headers["admin"],
        json={"fields": ["phone"], "reason": reason},
    )
    assert r.json()["phone"] == person["phone"] and r.json()["id_number"] is None
    # The ordinary read stays masked.
    assert mask_id_number(person["id_number"]) != person["id_number"]


def test_unmask_by_role_and_grid(
    client: httpx.Client,
    headers: dict[str, dict[str, str]],
    owner: Engine,
    grids: dict[str, Any],
) -> None:
    own = _resident_in(owner, grids["a"])
    other = _resident_in(owner, grids["b"])
    body = {"fields": ["id_number"], "reason": "家访核实身份"}
    r = client.post(f"/residents/{own['id']}/unmask", headers=headers["member"], json=body)
    assert r.status_code == 200, r.text
    assert r.json()["id_number"] == own["id_number"]
    # Another grid's resident: as if it did not exist, and the attempt is audited.
    r = client.post(f"/residents/{other['id']}/unmask", headers=headers["member"], json=body)
    assert r.status_code == 404, r.text
    assert other["id_number"] not in r.text
    entry = audit_rows(owner, "t.member.a")[-1]
    assert entry.outcome == "denied" and entry.resident_id == other["id"]
    for role in ("planner", "analyst", "reader"):
        r = client.post(f"/residents/{own['id']}/unmask", headers=headers[role], json=body)
        assert r.status_code == 403, (role, r.text)
        assert own["id_number"] not in r.text


def test_unmask_is_rate_limited(client: httpx.Client, owner: Engine, grids: dict[str, Any]) -> None:
    with owner.begin() as conn:
        accounts.create_user(conn, "t.curious", PASSWORD, "admin")
    auth = login(client, "t.curious")
    person = _resident_in(owner, grids["a"])
    body = {"fields": ["phone"], "reason": "批量核对电话"}
    for _ in range(UNMASK_LIMIT):
        r = client.post(f"/residents/{person['id']}/unmask", headers=auth, json=body)
        assert r.status_code == 200, r.text
    r = client.post(f"/residents/{person['id']}/unmask", headers=auth, json=body)
    assert r.status_code == 429, r.text
    assert int(r.headers["Retry-After"]) > 0 and person["phone"] not in r.text
    outcomes = [row.outcome for row in audit_rows(owner, "t.curious")]
    assert outcomes == ["granted"] * UNMASK_LIMIT + ["rate_limited"]


# --- the permission table -------------------------------------------------------------------


def test_permission_table_is_complete() -> None:
    for role in Role:
        assert set(PERMISSIONS[role]) == set(AREAS), role
    assert all(allows("admin", area, "write") for area in AREAS)
    assert not any(allows("reader", area, "write") for area in AREAS)
    assert not any(allows("analyst", area, "write") for area in AREAS)
    assert not allows("nobody", "geography", "read")
    assert not allows("admin", "no such area", "read")


def test_every_route_has_an_area(server: str) -> None:
    from api.security import TAG_AREAS

    schema = httpx.get(f"{server}/openapi.json", timeout=30).json()
    public = {"/health", "/health/live", "/health/ready", "/api/v1/auth/login"}
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            tags = set(operation.get("tags", []))
            assert path in public or tags & set(TAG_AREAS), (method, path, tags)


def test_docs_show_the_table() -> None:
    from pathlib import Path

    from gis_grid.security.roles import permission_rows

    text = (Path(__file__).resolve().parents[1] / "docs" / "security.md").read_text()
    for area, cells in permission_rows():
        row = f"| {area} | " + " | ".join(cells[r.value] for r in Role) + " |"
        assert row in text, row


# --- the command line -----------------------------------------------------------------------


def test_users_cli(writable_database_url: URL, owner: Engine, monkeypatch) -> None:
    monkeypatch.setenv(
        "GIS_GRID_DATABASE_URL", writable_database_url.render_as_string(hide_password=False)
    )
    runner = CliRunner()
    r = runner.invoke(
        cli_app,
        ["users", "add", "t.cli", "--role", "planner", "--password-stdin"],
        input=PASSWORD + "\n",
    )
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli_app, ["users", "list"])
    assert r.exit_code == 0 and "t.cli" in r.output and "planner" in r.output
    r = runner.invoke(
        cli_app,
        ["users", "add", "t.cli", "--role", "planner", "--password-stdin"],
        input=PASSWORD + "\n",
    )
    assert r.exit_code == 2 and "exists" in r.output
    r = runner.invoke(
        cli_app,
        ["users", "add", "t.cli2", "--role", "member", "--password-stdin"],
        input=PASSWORD + "\n",
    )
    assert r.exit_code == 2 and "member_code" in r.output
    r = runner.invoke(cli_app, ["users", "disable", "t.cli"])
    assert r.exit_code == 0
    r = runner.invoke(cli_app, ["users", "set-password", "t.cli", "--password-stdin"], input="x\n")
    assert r.exit_code == 2 and "password" in r.output
    with owner.connect() as conn:
        user = accounts.get_user(conn, "t.cli")
        digest = conn.scalar(sa.text("SELECT password_hash FROM users WHERE username = 't.cli'"))
    assert user.disabled and digest.startswith("$argon2id$") and PASSWORD not in digest


# --- accounts survive reloading the sample (scripts/serve.sh reloads at every start) ---------


def test_reload_keeps_accounts_and_member_scope(
    owner: Engine, app_engine: Engine, users: dict[str, accounts.User], grids: dict[str, Any]
) -> None:
    from gis_grid.load import load_sample
    from tests.conftest import SAMPLE_DATA

    load_sample(SAMPLE_DATA, owner, replace=True)  # members' rows replaced, accounts kept
    clear_cache()
    with owner.connect() as conn:
        user = accounts.get_user(conn, users["member"].username)
        expected = count(
            conn,
            "SELECT count(*) FROM residents r JOIN households h ON h.id = r.household_id "
            "WHERE h.grid_code = :g",
            g=grids["a"],
        )
    with app_engine.begin() as conn:
        assert set_context(conn, user) == (grids["a"],)
        assert count(conn, "SELECT count(*) FROM residents") == expected > 0
