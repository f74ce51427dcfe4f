"""``/health`` and the data endpoints when the database is down, and the error table."""

from __future__ import annotations

import time

import httpx
import pytest
from sqlalchemy.engine import make_url

from api.app import create_app
from api.errors import STATUS_BY_ERROR, status_for
from gis_grid.config import Settings
from gis_grid.db.engine import DatabaseError
from gis_grid.errors import CoordinateError, GridError, NotFoundError
from gis_grid.security.crypto import default_keys
from gis_grid.security.tokens import encode_token


@pytest.fixture
def dead_server(server_factory, unused_tcp_port):
    # A loopback port nobody listens on: connections are refused at once.
    url = make_url(f"postgresql+psycopg://u:secret-pw@127.0.0.1:{unused_tcp_port}/none")
    with server_factory(url) as server:
        yield server.url


def test_health_is_503_when_database_unreachable(dead_server):
    r = httpx.get(f"{dead_server}/health", timeout=30)
    assert r.status_code == 503
    body = r.json()
    assert body["status"] == "unavailable"
    assert body["database"] == "unreachable"
    assert "cannot connect" in body["detail"]
    assert "secret-pw" not in r.text  # the password never leaks into answers


@pytest.mark.parametrize("path", ["/api/v1/towns", "/api/v1/layers/grids", "/map"])
def test_data_endpoints_are_503_not_500_when_database_unreachable(dead_server, path):
    # A validly signed token: checking its session needs the database, which is down.
    token = encode_token(default_keys(), user_id=1, jti="0" * 32, expires=int(time.time()) + 600)
    r = httpx.get(f"{dead_server}{path}", timeout=30, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 503, r.text
    assert r.json()["error"] == "DatabaseError"
    assert "secret-pw" not in r.text


def test_docs_work_without_database(dead_server):
    assert httpx.get(f"{dead_server}/openapi.json", timeout=30).status_code == 200
    assert httpx.get(f"{dead_server}/docs", timeout=30).status_code == 200


def test_app_has_no_engine_before_startup():
    app = create_app(Settings(database_url="postgresql+psycopg://u:p@127.0.0.1:1/db"))
    assert not hasattr(app.state, "engine")  # opened in the lifespan, not at import/creation


def test_status_table():
    assert status_for(NotFoundError("x")) == 404
    assert status_for(CoordinateError("x")) == 422
    assert status_for(DatabaseError("x")) == 503

    class CustomError(NotFoundError):
        pass

    assert status_for(CustomError("x")) == 404
    assert status_for(GridError("x")) == 400
    assert all(400 <= s < 600 for s in STATUS_BY_ERROR.values())
