"""Request hardening through a real server: body cap (413), security headers, opt-in CORS."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

from api.middleware import SECURITY_HEADERS
from tests.conftest import ServerThread, login_headers

pytestmark = pytest.mark.postgis

LIMIT = 64 * 1024
ORIGIN = "https://centre.example.cn"


@pytest.fixture(scope="module")
def server(writable_database_url: URL) -> Iterator[ServerThread]:
    with ServerThread(writable_database_url, max_body_bytes=LIMIT, cors_origins=[ORIGIN]) as s:
        yield s


def _incidents(url: URL) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.scalar(sa.text("SELECT count(*) FROM incidents")) or 0)
    finally:
        engine.dispose()


def test_security_headers_on_every_kind_of_answer(server: ServerThread) -> None:
    for path in ("/health", "/api/v1/towns", "/docs", "/no/such/page"):
        answer = httpx.get(server.url + path, timeout=30)
        for name, value in SECURITY_HEADERS.items():
            assert answer.headers.get(name) == value, (path, name, answer.status_code)


def test_oversized_bodies_are_refused_before_any_route(
    server: ServerThread, writable_database_url: URL
) -> None:
    before = _incidents(writable_database_url)
    headers = login_headers(server.url, "admin")
    big = {"task_type_code": "T02", "title": "x" * (LIMIT + 10), "lon": 107.39, "lat": 30.96}
    announced = httpx.post(f"{server.url}/api/v1/incidents", json=big, headers=headers, timeout=30)
    assert announced.status_code == 413
    assert announced.json()["problems"] == [{"field": "body", "max_bytes": LIMIT}]

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while streaming
        yield b'{"task_type_code": "T02", "title": "'
        for _ in range(LIMIT // 1024 + 2):
            yield b"y" * 1024
        yield b'", "lon": 107.39, "lat": 30.96}'

    streamed = httpx.post(
        f"{server.url}/api/v1/incidents",
        content=chunks(),
        headers={**headers, "Content-Type": "application/json"},
        timeout=30,
    )
    assert streamed.status_code == 413
    assert _incidents(writable_database_url) == before
    # a body under the cap still reaches the route (and its own validation)
    small = httpx.post(
        f"{server.url}/api/v1/incidents", json={"title": "t"}, headers=headers, timeout=30
    )
    assert small.status_code == 422


def test_cors_only_for_the_configured_origin(server: ServerThread) -> None:
    allowed = httpx.options(
        f"{server.url}/api/v1/towns",
        headers={"Origin": ORIGIN, "Access-Control-Request-Method": "GET"},
        timeout=30,
    )
    assert allowed.headers.get("access-control-allow-origin") == ORIGIN
    other = httpx.get(
        f"{server.url}/health", headers={"Origin": "https://evil.example"}, timeout=30
    )
    assert "access-control-allow-origin" not in other.headers


def test_no_cors_by_default(server_url: str) -> None:
    answer = httpx.get(f"{server_url}/health", headers={"Origin": ORIGIN}, timeout=30)
    assert "access-control-allow-origin" not in answer.headers
    assert answer.headers["x-frame-options"] == "DENY"
