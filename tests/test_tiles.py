"""Vector tiles at /tiles/{layer}/{z}/{x}/{y}.pbf: decoded with mapbox-vector-tile, checked
against the database; caching headers; empty tiles; and bad coordinates or layers.

Runs against the read-only shared server (``server_url``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import httpx
import mapbox_vector_tile
import pytest
import sqlalchemy as sa

from gis_grid.tiles import tile_lonlat_bounds

pytestmark = pytest.mark.postgis

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
def client(server_url: str, auth_headers) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server_url, timeout=60, headers=auth_headers(server_url)) as c:
        yield c


@pytest.fixture(scope="module")
def db(loaded_database_url) -> Iterator[sa.Engine]:
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
    assert "max-age" in first.headers["cache-control"]
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
    server_url: str, auth_headers, client: httpx.Client, grid: dict
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
