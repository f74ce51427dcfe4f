"""Vector tiles at /tiles/{layer}/{z}/{x}/{y}.pbf: decoded with mapbox-vector-tile, checked
against the database; caching headers; empty tiles; and bad coordinates or layers.

Runs against the read-only shared server (``server_url``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import httpx
import mapbox_vector_tile
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

from gis_grid.tiles import tile_lonlat_bounds
from tests.conftest import ServerThread

pytestmark = pytest.mark.postgis

#: The ``auth_headers`` fixture: ``auth_headers(base_url, role="admin")``.
AuthHeaders = Callable[..., dict[str, str]]

#: Attributes each layer may carry: nothing personal.
ALLOWED = {
    "grids": {"code", "name", "village_code", "version", "households", "people"},
    "incidents": {"code", "task_type_code", "status", "reported_at", "village_code", "grid_code"},
    "pollution": {"code", "name", "kind", "village_code", "grid_code"},
    "hazards": {"code", "name", "kind", "level", "village_code", "grid_code"},
}


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 1 << z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


@pytest.fixture(scope="module")
def client(server_url: str, auth_headers: AuthHeaders) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server_url, timeout=60, headers=auth_headers(server_url)) as c:
        yield c


@pytest.fixture(scope="module")
def db(loaded_database_url: URL) -> Iterator[sa.Engine]:
    engine = sa.create_engine(loaded_database_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def grid(db: sa.Engine) -> dict[str, object]:
    """One current grid: code, a point inside it, and its load counted in the database."""
    with db.connect() as conn:
        row = conn.execute(
            sa.text(
                "SELECT g.code, ST_X(ST_PointOnSurface(g.geom)) AS lon, "
                "ST_Y(ST_PointOnSurface(g.geom)) AS lat, "
                "(SELECT count(*) FROM households h WHERE h.grid_code = g.code) AS households, "
                "(SELECT coalesce(sum(people), 0) FROM households h "
                " WHERE h.grid_code = g.code) AS people "
                "FROM grids g WHERE g.valid_to IS NULL ORDER BY g.code LIMIT 1"
            )
        ).one()
    return dict(row._mapping)


def decode(content: bytes) -> dict[str, dict]:
    return mapbox_vector_tile.decode(content)


@pytest.mark.parametrize("z", [12, 14, 16])
def test_grid_tile_carries_the_grids_load(client: httpx.Client, grid: dict, z: int) -> None:
    x, y = tile_of(grid["lon"], grid["lat"], z)
    response = client.get(f"/tiles/grids/{z}/{x}/{y}.pbf")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    layers = decode(response.content)
    assert set(layers) == {"grids"}
    features = {f["properties"]["code"]: f["properties"] for f in layers["grids"]["features"]}
    assert grid["code"] in features
    props = features[grid["code"]]
    assert props["households"] == grid["households"] > 0
    assert props["people"] == grid["people"]
    for props in features.values():
        assert set(props) <= ALLOWED["grids"]


@pytest.mark.parametrize("layer", ["incidents", "pollution", "hazards"])
def test_point_tiles_have_only_listed_attributes(
    client: httpx.Client, db: sa.Engine, layer: str
) -> None:
    table = {"pollution": "pollution_points"}.get(layer, layer)
    with db.connect() as conn:
        code, lon, lat = conn.execute(
            sa.text(f"SELECT code, ST_X(geom), ST_Y(geom) FROM {table} ORDER BY id LIMIT 1")
        ).one()
    x, y = tile_of(lon, lat, 15)
    content = client.get(f"/tiles/{layer}/15/{x}/{y}.pbf").content
    features = decode(content)[layer]["features"]
    assert code in {f["properties"].get("code") for f in features}
    for feature in features:
        assert set(feature["properties"]) <= ALLOWED[layer]
        assert feature["geometry"]["type"] == "Point"


def test_low_zoom_points_are_aggregated(client: httpx.Client, db: sa.Engine) -> None:
    with db.connect() as conn:
        total = conn.scalar(sa.text("SELECT count(*) FROM hazards"))
        lon, lat = conn.execute(
            sa.text(
                "SELECT ST_X(c), ST_Y(c) FROM "
                "(SELECT ST_Centroid(ST_Extent(geom)::geometry) AS c FROM hazards) s"
            )
        ).one()
    z = 8  # the whole sample lies in one or two tiles
    x, y = tile_of(lon, lat, z)
    counted = 0
    for dx in (-1, 0, 1):
        for dy in (-1, 0, 1):
            response = client.get(f"/tiles/hazards/{z}/{x + dx}/{y + dy}.pbf")
            if response.status_code == 200:
                features = decode(response.content)["hazards"]["features"]
                assert all(set(f["properties"]) == {"count"} for f in features)
                counted += sum(f["properties"]["count"] for f in features)
    assert counted == total


def test_etag_and_cache_headers(client: httpx.Client, grid: dict) -> None:
    x, y = tile_of(grid["lon"], grid["lat"], 14)
    url = f"/tiles/grids/14/{x}/{y}.pbf"
    first = client.get(url)
    etag = first.headers["etag"]
    assert etag.startswith('"')
    # Kept by the browser but revalidated on every view: an edit is never shown late.
    assert first.headers["cache-control"] == "private, no-cache"
    again = client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    other = client.get(url, headers={"If-None-Match": '"stale"'})
    assert other.status_code == 200
    assert other.content == first.content


def test_empty_tiles_are_204(client: httpx.Client) -> None:
    # Far from the data (the Atlantic at 0/0) and a tile of China with no grid.
    for url in ("/tiles/grids/14/8192/8192.pbf", "/tiles/incidents/10/0/0.pbf"):
        response = client.get(url)
        assert response.status_code == 204
        assert response.content == b""
        assert "etag" in response.headers
    west, _, _, north = tile_lonlat_bounds(14, 8192, 8192)
    assert west == 0.0
    assert north == 0.0


def test_tiles_need_a_login_and_follow_row_level_security(
    server_url: str, auth_headers: AuthHeaders, client: httpx.Client, grid: dict
) -> None:
    x, y = tile_of(grid["lon"], grid["lat"], 12)
    url = f"{server_url}/tiles/grids/12/{x}/{y}.pbf"
    assert httpx.get(url, timeout=60).status_code == 401
    member = httpx.get(url, headers=auth_headers(server_url, "member"), timeout=60)
    admin = client.get(url)
    counts = {
        name: sum(f["properties"]["households"] for f in decode(r.content)["grids"]["features"])
        for name, r in (("member", member), ("admin", admin))
    }
    # The member counts only their own grid's households; the tile cache keeps them apart.
    assert counts["member"] < counts["admin"]


@pytest.mark.parametrize(
    ("url", "status", "named"),
    [
        ("/tiles/residents/14/1/1.pbf", 404, "grids"),
        ("/tiles/grids/23/1/1.pbf", 422, "z=23"),
        ("/tiles/grids/-1/0/0.pbf", 422, "z=-1"),
        ("/tiles/grids/3/8/0.pbf", 422, "x=8"),
        ("/tiles/grids/3/0/8.pbf", 422, "y=8"),
        ("/tiles/grids/3/0/-1.pbf", 422, "y=-1"),
        ("/tiles/grids/a/0/0.pbf", 422, "z"),
        ("/tiles/grids/3/0/1.5.pbf", 422, "y"),
    ],
)
def test_bad_tiles_are_a_4xx_naming_the_coordinate(
    client: httpx.Client, url: str, status: int, named: str
) -> None:
    response = client.get(url)
    assert response.status_code == status, response.text
    assert named in response.text


# --- the tile cache is never stale; closed sessions stop at once (writable copy) -------------


@pytest.fixture(scope="module")
def owner(writable_database_url: URL) -> Iterator[sa.Engine]:
    """The owner's engine on the module's writable copy (bypasses row-level security)."""
    engine = sa.create_engine(writable_database_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def writable(writable_server_url: str, auth_headers: AuthHeaders) -> Iterator[httpx.Client]:
    headers = auth_headers(writable_server_url)
    with httpx.Client(base_url=writable_server_url, timeout=60, headers=headers) as c:
        yield c


def _grid_props(client: httpx.Client, url: str, code: str) -> tuple[dict, str]:
    response = client.get(url)
    assert response.status_code == 200, response.text
    features = decode(response.content)["grids"]["features"]
    return next(
        f["properties"] for f in features if f["properties"]["code"] == code
    ), response.headers["etag"]


def test_a_kept_tile_is_never_older_than_the_data(writable: httpx.Client, owner: sa.Engine) -> None:
    with owner.connect() as conn:
        code, lon, lat, hh_id = conn.execute(
            sa.text(
                "SELECT g.code, ST_X(ST_PointOnSurface(g.geom)), ST_Y(ST_PointOnSurface(g.geom)), "
                "(SELECT min(h.id) FROM households h WHERE h.grid_code = g.code) "
                "FROM grids g WHERE g.valid_to IS NULL AND EXISTS "
                "(SELECT 1 FROM households h WHERE h.grid_code = g.code) ORDER BY g.code LIMIT 1"
            )
        ).one()
    x, y = tile_of(lon, lat, 15)
    url = f"/tiles/grids/15/{x}/{y}.pbf"
    before, etag = _grid_props(writable, url, code)
    assert _grid_props(writable, url, code) == (before, etag)  # kept, same answer
    assert writable.get(url, headers={"If-None-Match": etag}).status_code == 304
    # A change of a row the tile counts: the very next request shows it.
    with owner.begin() as conn:
        conn.execute(
            sa.text("UPDATE households SET people = people + 3 WHERE id = :i"), {"i": hh_id}
        )
    after, etag2 = _grid_props(writable, url, code)
    assert after["people"] == before["people"] + 3
    assert after["households"] == before["households"]
    assert etag2 != etag
    assert writable.get(url, headers={"If-None-Match": etag}).status_code == 200
    # A transaction rolled back changes nothing, and the tile says so.
    with owner.connect() as conn, conn.begin() as tx:
        conn.execute(sa.text("DELETE FROM households WHERE id = :i"), {"i": hh_id})
        tx.rollback()
    assert _grid_props(writable, url, code)[0] == after
    with owner.begin() as conn:
        conn.execute(sa.text("DELETE FROM households WHERE id = :i"), {"i": hh_id})
    gone, _ = _grid_props(writable, url, code)
    assert gone["households"] == before["households"] - 1


def test_a_new_point_shows_in_the_next_tile(writable: httpx.Client, owner: sa.Engine) -> None:
    with owner.connect() as conn:
        lon, lat, village = conn.execute(
            sa.text(
                "SELECT ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)), village_code "
                "FROM grids WHERE valid_to IS NULL ORDER BY code DESC LIMIT 1"
            )
        ).one()
    x, y = tile_of(lon, lat, 16)
    url = f"/tiles/hazards/16/{x}/{y}.pbf"

    def codes() -> set[str]:
        r = writable.get(url)
        assert r.status_code in {200, 204}
        return (
            {
                f["properties"]["code"]
                for f in decode(r.content).get("hazards", {}).get("features", [])
            }
            if r.content
            else set()
        )

    assert "HZ-TILE-TEST" not in codes()
    with owner.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO hazards (code, name, kind, level, village_code, geom) VALUES "
                "('HZ-TILE-TEST', 'test', 'flood', 2, :v, "
                "ST_SetSRID(ST_MakePoint(:lon, :lat), 4490))"
            ),
            {"v": village, "lon": lon, "lat": lat},
        )
    assert "HZ-TILE-TEST" in codes()


def test_a_closed_session_gets_no_tile_even_a_kept_one(
    writable_server_url: str, owner: sa.Engine, grid: dict
) -> None:
    from gis_grid.security import accounts

    with owner.begin() as conn:
        accounts.create_user(conn, "t.tiles", "tiles password 123", "reader")
    x, y = tile_of(grid["lon"], grid["lat"], 14)
    url = f"/tiles/grids/14/{x}/{y}.pbf"
    with httpx.Client(base_url=writable_server_url, timeout=60) as c:

        def login() -> dict[str, str]:
            r = c.post(
                "/api/v1/auth/login", json={"username": "t.tiles", "password": "tiles password 123"}
            )
            assert r.status_code == 200, r.text
            return {"Authorization": f"Bearer {r.json()['access_token']}"}

        auth = login()
        assert c.get(url, headers=auth).status_code == 200
        assert c.post("/api/v1/auth/logout", headers=auth).status_code == 204
        r = c.get(url, headers=auth)  # the tile is kept in memory: the session still decides
        assert r.status_code == 401 and "revoked" in r.json()["detail"]
        auth = login()
        assert c.get(url, headers=auth).status_code == 200
        with owner.begin() as conn:
            accounts.disable_user(conn, "t.tiles")
        assert c.get(url, headers=auth).status_code == 401
        assert c.get(url).status_code == 401
        assert c.get(url, headers={"Authorization": "Bearer v1.e30.AAAA"}).status_code == 401


# --- migration 0006: the tile data version ----------------------------------------------------


def _version(engine: sa.Engine) -> str:
    from gis_grid.tiles import data_version

    with engine.connect() as conn:
        return data_version(conn)


def _count(version: str) -> int:
    return int(version.split(":", maxsplit=1)[0])


def test_tile_data_version_migration_and_triggers(fresh_database_url: URL) -> None:
    from gis_grid.db import migrate

    engine = sa.create_engine(fresh_database_url, poolclass=sa.NullPool)
    try:
        seen = {_version(engine)}
        count = _count(_version(engine))
        # Every committed write to a table tiles show changes the version, once per transaction.
        for table, sql in (
            ("grids", "UPDATE grids SET name = name WHERE code = (SELECT min(code) FROM grids)"),
            (
                "households",
                "UPDATE households SET people = people WHERE id = (SELECT min(id) FROM households)",
            ),
            ("incidents", "DELETE FROM incidents WHERE false"),
            ("pollution_points", "UPDATE pollution_points SET name = name"),
            ("hazards", "UPDATE hazards SET name = name"),
        ):
            with engine.begin() as conn:
                conn.execute(sa.text(sql))
                conn.execute(sa.text(sql))
                inside = conn.scalar(sa.text("SELECT sum(weight) FROM gis_grid_tiles.changes"))
            now = _version(engine)
            assert now not in seen, table
            # One more committed writer; inside its transaction its own row already counts.
            assert _count(now) == count + 1 == inside, table
            seen.add(now)
            count = _count(now)
        # Reads, other tables and rolled-back writes leave it alone.
        last = _version(engine)
        with engine.begin() as conn:
            conn.execute(sa.text("SELECT count(*) FROM households"))
            conn.execute(sa.text("UPDATE villages SET name = name"))
        with engine.connect() as conn, conn.begin() as tx:
            conn.execute(sa.text("UPDATE hazards SET name = name"))
            tx.rollback()
        assert _version(engine) == last
        # Many writers: the version counts them all, and the table stays small (folding).
        for _ in range(200):
            with engine.begin() as conn:
                conn.execute(sa.text("UPDATE hazards SET name = name WHERE false"))
        assert _count(_version(engine)) == _count(last) + 200
        with engine.connect() as conn:
            assert conn.scalar(sa.text("SELECT count(*) FROM gis_grid_tiles.changes")) < 150
            include = conn.scalar(
                sa.text(
                    "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_households_grid_code'"
                )
            )
        assert "INCLUDE (people)" in include

        migrate.downgrade(fresh_database_url, "0005")
        with engine.connect() as conn:
            assert not conn.scalar(
                sa.text("SELECT count(*) FROM pg_namespace WHERE nspname = 'gis_grid_tiles'")
            )
            assert not conn.scalar(
                sa.text("SELECT count(*) FROM pg_trigger WHERE tgname = 'tile_data_changed'")
            )
            include = conn.scalar(
                sa.text(
                    "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_households_grid_code'"
                )
            )
        assert "INCLUDE" not in include
        migrate.upgrade(fresh_database_url)
        # Created again: a version never seen before (the migration's own transaction id).
        assert _version(engine) not in seen | {last}
        with engine.connect() as conn:
            assert (
                conn.scalar(
                    sa.text("SELECT count(*) FROM pg_trigger WHERE tgname = 'tile_data_changed'")
                )
                == 5
            )
    finally:
        engine.dispose()


def test_the_application_role_reads_the_version_and_writes_through_the_trigger(
    writable_database_url: URL,
) -> None:
    from gis_grid.config import Settings

    app_url = Settings(
        database_url=writable_database_url.render_as_string(hide_password=False)
    ).service_database_url()
    engine = sa.create_engine(app_url, poolclass=sa.NullPool)
    try:
        before = _version(engine)
        with engine.begin() as conn:
            conn.execute(sa.text("SELECT set_config('gis_grid.role', 'admin', true)"))
            conn.execute(
                sa.text(
                    "UPDATE households SET people = people "
                    "WHERE id = (SELECT min(id) FROM households)"
                )
            )
        assert _version(engine) != before
        with (
            engine.connect() as conn,
            pytest.raises(sa.exc.ProgrammingError, match="permission denied"),
        ):
            conn.execute(sa.text("DELETE FROM gis_grid_tiles.changes"))
    finally:
        engine.dispose()


def test_a_tile_without_the_database_is_503(
    server_factory: type[ServerThread], unused_tcp_port: int
) -> None:
    from gis_grid.config import Settings
    from gis_grid.security.crypto import keys_from_settings
    from gis_grid.security.tokens import encode_token

    url = sa.engine.make_url(f"postgresql+psycopg://u:p@127.0.0.1:{unused_tcp_port}/nothing")
    with server_factory(url) as server:
        # A validly signed token (the server's keys): only the database can refuse it.
        settings = Settings(database_url=url.render_as_string(hide_password=False))
        token = encode_token(keys_from_settings(settings), user_id=1, jti="0" * 32, expires=2**40)
        r = httpx.get(
            f"{server.url}/tiles/grids/14/13277/6698.pbf",
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )
    assert r.status_code == 503, r.text
    assert "database" in r.json()["detail"]
