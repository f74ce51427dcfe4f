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

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
SAMPLE_DATA = ROOT / "data" / "shapefiles"


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
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
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
