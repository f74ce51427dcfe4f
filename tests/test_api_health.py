"""``/health`` and the data endpoints when the database is down, and the error table."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy.engine import URL, make_url

from api.app import create_app
from api.errors import STATUS_BY_ERROR, status_for
from gis_grid.config import Settings
from gis_grid.db.engine import DatabaseError
from gis_grid.errors import CoordinateError, GridError, NotFoundError
from gis_grid.security.crypto import default_keys
from gis_grid.security.tokens import encode_token
from tests.conftest import ServerThread


@pytest.fixture
def dead_server(server_factory: type[ServerThread], unused_tcp_port: int) -> Iterator[str]:
    # A loopback port nobody listens on: connections are refused at once.
    url = make_url(f"postgresql+psycopg://u:secret-pw@127.0.0.1:{unused_tcp_port}/none")
    with server_factory(url) as server:
        yield server.url


def test_health_is_503_when_database_unreachable(dead_server: str) -> None:
    r = httpx.get(f"{dead_server}/health", timeout=30)
    assert r.status_code == 503
    body = r.json()
    assert body["status"] == "unavailable"
    assert body["database"] == "unreachable"
    assert "cannot connect" in body["detail"]
    assert "secret-pw" not in r.text  # the password never leaks into answers


@pytest.mark.parametrize("path", ["/api/v1/towns", "/api/v1/layers/grids", "/map"])
def test_data_endpoints_are_503_not_500_when_database_unreachable(
    dead_server: str, path: str
) -> None:
    # A validly signed token: checking its session needs the database, which is down.
    token = encode_token(default_keys(), user_id=1, jti="0" * 32, expires=int(time.time()) + 600)
    r = httpx.get(f"{dead_server}{path}", timeout=30, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 503, r.text
    assert r.json()["error"] == "DatabaseError"
    assert "secret-pw" not in r.text


def test_docs_work_without_database(dead_server: str) -> None:
    assert httpx.get(f"{dead_server}/openapi.json", timeout=30).status_code == 200
    assert httpx.get(f"{dead_server}/docs", timeout=30).status_code == 200


def test_app_has_no_engine_before_startup() -> None:
    app = create_app(Settings(database_url="postgresql+psycopg://u:p@127.0.0.1:1/db"))
    assert not hasattr(app.state, "engine")  # opened in the lifespan, not at import/creation


def test_status_table() -> None:
    assert status_for(NotFoundError("x")) == 404
    assert status_for(CoordinateError("x")) == 422
    assert status_for(DatabaseError("x")) == 503

    class CustomError(NotFoundError):
        pass

    assert status_for(CustomError("x")) == 404
    assert status_for(GridError("x")) == 400
    assert all(400 <= s < 600 for s in STATUS_BY_ERROR.values())


# --- probes: /health/live and /health/ready (issue 6, resilience) -----------------------------


def test_live_is_200_even_when_database_unreachable(dead_server: str) -> None:
    r = httpx.get(f"{dead_server}/health/live", timeout=30)
    assert r.status_code == 200
    assert r.json()["status"] == "ok"


def test_ready_is_503_naming_the_database_when_unreachable(dead_server: str) -> None:
    r = httpx.get(f"{dead_server}/health/ready", timeout=30)
    assert r.status_code == 503
    assert r.headers["Retry-After"].isdigit()
    body = r.json()
    assert body["status"] == "unavailable"
    assert body["database"] == "unreachable"
    assert "cannot connect" in body["detail"]
    assert "127.0.0.1" in body["detail"]
    assert "secret-pw" not in r.text


def test_ready_is_200_on_a_migrated_database(server_url: str) -> None:
    from gis_grid.db.migrate import head

    r = httpx.get(f"{server_url}/health/ready", timeout=30)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ready"
    assert body["database"] == "ok"
    assert body["schema_revision"] == body["head_revision"] == head()


def test_ready_is_503_on_a_database_never_migrated(
    database_url: URL, server_factory: type[ServerThread]
) -> None:
    import uuid

    import sqlalchemy as sa

    from gis_grid.db.engine import drop_database

    name = f"{database_url.database}_bare_{uuid.uuid4().hex[:6]}"
    admin = sa.create_engine(database_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        with server_factory(database_url.set(database=name)) as server:
            r = httpx.get(f"{server.url}/health/ready", timeout=30)
            assert r.status_code == 503, r.text
            body = r.json()
            assert body["database"] == "not migrated"
            assert body["schema_revision"] is None
            assert "gis-grid db upgrade" in body["detail"]
            # Liveness does not care.
            assert httpx.get(f"{server.url}/health/live", timeout=30).status_code == 200
    finally:
        with admin.connect() as conn:
            drop_database(conn, name)
        admin.dispose()
