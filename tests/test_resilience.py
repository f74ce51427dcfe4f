"""The service survives a PostgreSQL restart (issue 6, item 5), tested by really restarting one.

A throwaway cluster of its own (:class:`tests.resilience_support.ScratchCluster`; the shared
test server is never stopped) holds the platform with the sample; a real uvicorn server runs
over it. While the database is down every request that needs it (reads, a login, a write) is
a 503 with ``Retry-After`` and a JSON body naming the database, never a 500, and nothing is
stored; ``/health/ready`` says the database is unreachable while ``/health/live`` stays 200.
When the database is back, the very next request succeeds, without restarting the service. A
write cut off in the middle of its transaction by the stop leaves no row behind.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine

from tests.conftest import ServerThread, login_headers
from tests.resilience_support import ScratchCluster

pytestmark = [pytest.mark.postgis, pytest.mark.slow]

#: Advisory lock a write in flight waits on (see ``in_flight_trigger``).
HOLD_KEY = 424242


@dataclass
class Platform:
    cluster: ScratchCluster
    owner: Engine
    url: str  # the service's base URL

    @property
    def database(self) -> str:
        """How the service names the database in its answers (password hidden)."""
        return f"127.0.0.1:{self.cluster.port}/gis_grid"


@pytest.fixture(scope="module")
def platform() -> Iterator[Platform]:
    with ScratchCluster() as cluster:
        owner_url: URL = cluster.create_platform()
        # NullPool: the test's own checks never keep a connection across the restart.
        owner = sa.create_engine(owner_url, poolclass=sa.NullPool)
        with ServerThread(owner_url) as server:
            yield Platform(cluster, owner, server.url)
        owner.dispose()


def _grid(platform: Platform, headers: dict[str, str], index: int) -> tuple[str, str]:
    r = httpx.get(f"{platform.url}/api/v1/grids?limit=5", headers=headers, timeout=30)
    assert r.status_code == 200, r.text
    code = str(r.json()["features"][index]["properties"]["code"])
    r = httpx.get(f"{platform.url}/api/v1/grids/{code}", headers=headers, timeout=30)
    assert r.status_code == 200, r.text
    return code, r.headers["ETag"]


def _versions(owner: Engine, code: str) -> list[tuple[int, str, bool]]:
    with owner.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT version, name, valid_to IS NULL FROM grids WHERE code = :c ORDER BY version"
            ),
            {"c": code},
        )
        return [(int(v), str(n), bool(c)) for v, n, c in rows]


def _assert_unavailable(r: httpx.Response, platform: Platform) -> None:
    where = f"{r.request.method} {r.request.url.path}"
    assert r.status_code == 503, f"{where}: {r.status_code} {r.text}"
    assert r.headers.get("Retry-After", "").isdigit(), f"{where}: no Retry-After"
    body = r.json()
    assert body["error"] == "DatabaseError", f"{where}: {body}"
    assert platform.database in body["detail"], f"{where}: database not named: {body}"
    assert ":gis_grid_app@" not in r.text, f"{where}: the password leaked"


def test_service_survives_a_database_restart(platform: Platform) -> None:
    base, admin = platform.url, login_headers(platform.url, "admin")
    reads = [
        "/api/v1/towns",
        "/api/v1/grids?limit=3",
        "/api/v1/households?limit=3",
        "/api/v1/layers/grids",
        "/ogc/collections",
    ]
    code, tag = _grid(platform, admin, 0)
    before = _versions(platform.owner, code)

    # Up: everything answers.
    for path in reads:
        assert httpx.get(f"{base}{path}", headers=admin, timeout=30).status_code == 200, path
    ready = httpx.get(f"{base}/health/ready", timeout=30)
    assert ready.status_code == 200, ready.text
    assert ready.json()["database"] == "ok"
    assert ready.json()["schema_revision"] == ready.json()["head_revision"]

    platform.cluster.stop()
    try:
        # Down: 503 with Retry-After naming the database, never a 500; nothing stored.
        for path in reads:
            _assert_unavailable(httpx.get(f"{base}{path}", headers=admin, timeout=30), platform)
        rename = httpx.patch(
            f"{base}/api/v1/grids/{code}",
            json={"name": "停机时改名"},
            headers={**admin, "If-Match": tag},
            timeout=30,
        )
        _assert_unavailable(rename, platform)
        login = httpx.post(
            f"{base}/api/v1/auth/login",
            json={"username": "test.planner", "password": "whatever it is"},
            timeout=30,
        )
        _assert_unavailable(login, platform)

        ready = httpx.get(f"{base}/health/ready", timeout=30)
        assert ready.status_code == 503, ready.text
        assert ready.headers.get("Retry-After", "").isdigit()
        assert ready.json()["status"] == "unavailable"
        assert ready.json()["database"] == "unreachable"
        assert platform.database in ready.json()["detail"]
        assert httpx.get(f"{base}/health", timeout=30).status_code == 503
        live = httpx.get(f"{base}/health/live", timeout=30)
        assert live.status_code == 200
        assert live.json()["status"] == "ok"
    finally:
        platform.cluster.start()

    # Back: the very next request succeeds, on the same service (its pool recovered).
    first = httpx.get(f"{base}/api/v1/grids/{code}", headers=admin, timeout=30)
    assert first.status_code == 200, first.text
    assert first.headers["ETag"] == tag
    assert _versions(platform.owner, code) == before  # the write during the outage left nothing
    for path in reads:
        assert httpx.get(f"{base}{path}", headers=admin, timeout=30).status_code == 200, path
    renamed = httpx.patch(
        f"{base}/api/v1/grids/{code}",
        json={"name": "恢复后改名"},
        headers={**admin, "If-Match": tag},
        timeout=30,
    )
    assert renamed.status_code == 200, renamed.text
    assert _versions(platform.owner, code)[-1][1:] == ("恢复后改名", True)
    assert httpx.get(f"{base}/health/ready", timeout=30).status_code == 200
    # Logins work again too (a new session row is written).
    again = httpx.post(
        f"{base}/api/v1/auth/login",
        json={"username": "test.planner", "password": "test password 123"},
        timeout=30,
    )
    assert again.status_code == 200, again.text


@pytest.fixture
def in_flight_trigger(platform: Platform) -> Iterator[None]:
    """Make a grid write marked ``in-flight`` wait, after its first rows, on an advisory lock.

    The trigger runs after the new version's INSERT, by then the previous version has been
    closed by an UPDATE: the transaction has written rows when the database goes away.
    """
    superuser = sa.create_engine(platform.cluster.url(db="gis_grid"), poolclass=sa.NullPool)
    with superuser.begin() as conn:
        conn.exec_driver_sql(
            f"""
            CREATE FUNCTION resilience_hold() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF strpos(NEW.source, 'in-flight') > 0 THEN
                    PERFORM pg_advisory_xact_lock({HOLD_KEY});
                END IF;
                RETURN NEW;
            END $$;
            CREATE TRIGGER resilience_hold AFTER INSERT ON grids
                FOR EACH ROW EXECUTE FUNCTION resilience_hold();
            """
        )
    try:
        yield
    finally:
        with superuser.begin() as conn:
            conn.exec_driver_sql("DROP TRIGGER IF EXISTS resilience_hold ON grids")
            conn.exec_driver_sql("DROP FUNCTION IF EXISTS resilience_hold()")
        superuser.dispose()


def test_write_in_flight_when_the_database_stops_leaves_nothing(
    platform: Platform, in_flight_trigger: None
) -> None:
    base, admin = platform.url, login_headers(platform.url, "admin")
    code, tag = _grid(platform, admin, 1)
    before = _versions(platform.owner, code)
    # Autocommit: each poll of pg_stat_activity below is a transaction of its own, so it
    # sees fresh activity (the view is a snapshot within a transaction).
    superuser = sa.create_engine(
        platform.cluster.url(db="gis_grid"), poolclass=sa.NullPool, isolation_level="AUTOCOMMIT"
    )
    holder = superuser.connect()
    holder.exec_driver_sql(f"SELECT pg_advisory_lock({HOLD_KEY})")

    answers: list[httpx.Response] = []

    def write() -> None:
        answers.append(
            httpx.patch(
                f"{base}/api/v1/grids/{code}",
                json={"name": "写到一半", "note": "in-flight"},
                headers={**admin, "If-Match": tag},
                timeout=60,
            )
        )

    writer = threading.Thread(target=write)
    writer.start()
    try:
        # Wait until the write is inside its transaction, holding rows, waiting on the lock.
        deadline = time.monotonic() + 30
        while True:
            waiting = holder.exec_driver_sql(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'gis-grid-api' "
                "AND wait_event_type = 'Lock' AND wait_event = 'advisory'"
            ).scalar_one()
            if waiting:
                break
            assert writer.is_alive(), f"the write finished before the stop: {answers}"
            assert time.monotonic() < deadline, "the write never reached the trigger"
            time.sleep(0.1)
        platform.cluster.stop()  # terminates the write's session mid-transaction
    finally:
        holder.invalidate()
        superuser.dispose()
        if not platform.cluster.running():
            writer.join(timeout=60)
            platform.cluster.start()
    writer.join(timeout=60)

    assert answers, "the write never answered"
    _assert_unavailable(answers[0], platform)
    # The UPDATE that closed the old version and the INSERT of the new one are both gone.
    assert _versions(platform.owner, code) == before
    with platform.owner.connect() as conn:
        assert not conn.scalar(
            sa.text("SELECT count(*) FROM grids WHERE strpos(source, 'in-flight') > 0")
        )
    # And the service goes on: the same write, without the hold, now succeeds.
    retry = httpx.patch(
        f"{base}/api/v1/grids/{code}",
        json={"name": "写完了"},
        headers={**admin, "If-Match": tag},
        timeout=30,
    )
    assert retry.status_code == 200, retry.text
