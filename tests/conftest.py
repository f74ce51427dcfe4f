"""Shared fixtures: a scratch PostGIS database per test session, on a real server.

The server is the one ``GIS_GRID_DATABASE_URL`` points at (the README's test command starts a
private cluster and sets it). Each session creates its own database there and drops it at the
end, so tests never touch the platform's data. Without a server the PostGIS tests fail: they are
never skipped.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url

from gis_grid.db.engine import drop_database
from tests.security_support import TEST_PASSWORD, TEST_USERS, create_test_users

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
SAMPLE_DATA = ROOT / "data" / "shapefiles"


# Test servers run on scratch databases: the application role's URL is derived from each
# one (Settings.service_database_url), never taken from a URL fixed for the real database.
os.environ.pop("GIS_GRID_APP_DATABASE_URL", None)


def _server_url() -> URL:
    raw = os.environ.get("GIS_GRID_DATABASE_URL")
    if not raw:
        pytest.fail(
            "GIS_GRID_DATABASE_URL is not set: PostGIS tests need a real server. "
            "Run the README's test command (bash scripts/test.sh), which starts one."
        )
    return make_url(raw)


@pytest.fixture(scope="session")
def database_url() -> Iterator[URL]:
    """URL of a fresh, empty database (with PostGIS) created for this test session."""
    server = _server_url()
    name = f"gis_grid_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = server.set(database=name)
    scratch = sa.create_engine(url)
    with scratch.begin() as conn:
        conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS postgis")
        conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS btree_gist")
    scratch.dispose()
    try:
        yield url
    finally:
        with admin.connect() as conn:
            drop_database(conn, name)
        admin.dispose()


@pytest.fixture(scope="session")
def engine(database_url: URL) -> Iterator[Engine]:
    """An engine on the session's scratch database."""
    eng = sa.create_engine(database_url)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real public data in ../shared/data (present beside every clone in CI)."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"{SHARED_DATA} is missing: the tests read the real public data there")
    return SHARED_DATA


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Make a skipped PostGIS or browser test visible as a failure reason."""
    skipped = terminalreporter.stats.get("skipped", [])
    bad = [r for r in skipped if {"postgis", "browser"} & set(getattr(r, "keywords", {}))]
    if bad:
        terminalreporter.section("skipped PostGIS/browser tests (not allowed)")
        for rep in bad:
            terminalreporter.line(rep.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run when a PostGIS or browser test was skipped."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return
    skipped = reporter.stats.get("skipped", [])
    if any({"postgis", "browser"} & set(getattr(r, "keywords", {})) for r in skipped):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


# --- The web service: a loaded database and a running server (api/, maps/ tests) -----------
# Appended by the web-service work; the fixtures above are unchanged.

import socket  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402


@pytest.fixture(scope="session")
def loaded_database_url(database_url: URL) -> Iterator[URL]:
    """URL of a database of its own, migrated and loaded with ``data/shapefiles``.

    Separate from ``database_url`` so that tests writing to that one (schema checks,
    migrations) never change what the API tests read.
    """
    from gis_grid.db.migrate import upgrade
    from gis_grid.load import load_sample

    name = f"{database_url.database}_loaded"
    admin = sa.create_engine(database_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = database_url.set(database=name)
    eng = sa.create_engine(url)
    try:
        with eng.begin() as conn:
            conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS postgis")
            conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS btree_gist")
        upgrade(url)
        load_sample(SAMPLE_DATA, eng, replace=True)
        with eng.begin() as conn:
            create_test_users(conn)
        yield url
    finally:
        eng.dispose()
        with admin.connect() as conn:
            drop_database(conn, name)
        admin.dispose()


@pytest.fixture(scope="session")
def loaded_engine(loaded_database_url: URL) -> Iterator[Engine]:
    """An engine on the loaded database (for tests that compare the API with SQL)."""
    eng = sa.create_engine(loaded_database_url)
    yield eng
    eng.dispose()


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerThread:
    """A real uvicorn server running ``create_app(settings)`` in a background thread."""

    def __init__(self, database_url: URL, **overrides: object) -> None:
        import uvicorn

        from api.app import create_app
        from gis_grid.config import Settings

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        settings = Settings(
            database_url=database_url.render_as_string(hide_password=False),
            host="127.0.0.1",
            port=self.port,
            token_minutes=24 * 60,  # the session's shared server outlives the default
            **overrides,  # type: ignore[arg-type]
        )
        config = uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=self.port, log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="uvicorn", daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                pytest.fail(f"the test server did not start on {self.url}")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        # A later server may get the same port: its tokens are not this one's.
        for key in [k for k in _TOKENS if k[0] == self.url]:
            del _TOKENS[key]


@pytest.fixture(scope="session")
def server_url(loaded_database_url: URL) -> Iterator[str]:
    """Base URL of the platform served by uvicorn on a free loopback port, over the loaded DB."""
    with ServerThread(loaded_database_url) as server:
        yield server.url


@pytest.fixture
def server_factory() -> type[ServerThread]:
    """``ServerThread`` for tests that need a server of their own (e.g. over a dead database)."""
    return ServerThread


@pytest.fixture
def unused_tcp_port() -> int:
    """A free loopback port."""
    return free_port()


# Writable copies of the loaded sample, for tests that change data (editing, workflows).


@pytest.fixture(scope="session")
def template_database_url(database_url: URL) -> Iterator[URL]:
    """A migrated, loaded database that nobody stays connected to: the template of copies."""
    from gis_grid.db.migrate import upgrade
    from gis_grid.load import load_sample

    name = f"{database_url.database}_template"
    admin = sa.create_engine(database_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = database_url.set(database=name)
    try:
        eng = sa.create_engine(url, poolclass=sa.NullPool)
        with eng.begin() as conn:
            conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS postgis")
            conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS btree_gist")
        upgrade(url)
        load_sample(SAMPLE_DATA, eng, replace=True)
        with eng.begin() as conn:
            create_test_users(conn)
        eng.dispose()
        yield url
    finally:
        with admin.connect() as conn:
            drop_database(conn, name)
        admin.dispose()


def _copy_database(template: URL) -> Iterator[URL]:
    name = f"{template.database}_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(template.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{template.database}"')
    try:
        yield template.set(database=name)
    finally:
        with admin.connect() as conn:
            drop_database(conn, name)
        admin.dispose()


@pytest.fixture(scope="module")
def writable_database_url(template_database_url: URL) -> Iterator[URL]:
    """A copy of the loaded sample for one test module to change as it likes (~1 s to make)."""
    yield from _copy_database(template_database_url)


@pytest.fixture
def fresh_database_url(template_database_url: URL) -> Iterator[URL]:
    """A copy of the loaded sample for one test alone."""
    yield from _copy_database(template_database_url)


@pytest.fixture(scope="module")
def writable_server_url(writable_database_url: URL) -> Iterator[str]:
    """The platform served over the module's writable copy."""
    with ServerThread(writable_database_url) as server:
        yield server.url


# Logins (security, issue 6): every /api/v1 route, map page, /ogc and /tiles needs a token.
# The template and loaded databases have one account per role (tests/security_support.py).

_TOKENS: dict[tuple[str, str], dict[str, str]] = {}


def login_headers(base_url: str, role: str = "admin") -> dict[str, str]:
    """``Authorization`` header of the test account of ``role`` on the server at ``base_url``."""
    import httpx

    url = httpx.URL(base_url)
    origin = f"{url.scheme}://{url.host}:{url.port}"
    key = (origin, role)
    if key not in _TOKENS:
        r = httpx.post(
            f"{origin}/api/v1/auth/login",
            json={"username": TEST_USERS[role], "password": TEST_PASSWORD},
            timeout=60,
        )
        assert r.status_code == 200, r.text
        _TOKENS[key] = {"Authorization": f"Bearer {r.json()['access_token']}"}
    return _TOKENS[key]


@pytest.fixture(scope="session")
def auth_headers():
    """``auth_headers(base_url, role="admin")``: a logged-in test account's header."""
    return login_headers


# The real browser: Debian's Chromium driven by Playwright (installed by scripts/setup.sh).

#: Debian's Chromium, the browser the tests drive.
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """A headless Chromium (one per test module); missing Playwright or Chromium fails."""
    from playwright import sync_api  # an error, not a skip, when it is not installed

    assert Path(CHROMIUM).exists(), "install Debian's chromium (scripts/setup.sh does)"
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield b
        b.close()
