"""The HTTP API, through a real uvicorn server over a real PostGIS loaded with the sample data."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import httpx
import pytest
import shapely
import sqlalchemy as sa

from gis_grid.measure import area_m2
from tests.security_support import clear_values

pytestmark = pytest.mark.postgis

EXPECTED_LAYERS = {"towns", "villages", "grids", "households", "pollution", "hazards", "incidents"}
LINE_LAYERS = {"rivers": "river", "streams": "stream", "roads": "road"}
EXPECTED_LAYERS |= set(LINE_LAYERS)
SAMPLE_DATA = Path(__file__).resolve().parents[1] / "data" / "shapefiles"
PERSONAL_KEYS = {"name_of_resident", "id_number", "phone", "address", "birth_date", "residents"}


@pytest.fixture(scope="module")
def client(server_url: str, auth_headers) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server_url, timeout=60, headers=auth_headers(server_url)) as c:
        yield c


@pytest.fixture(scope="module")
def towns(client: httpx.Client) -> list[dict]:
    r = client.get("/api/v1/towns")
    assert r.status_code == 200, r.text
    return r.json()["data"]


def test_health_reports_postgis(client):
    r = client.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["database"] == "ok"
    assert re.match(r"^3\.\d+", body["postgis_version"])


def test_towns_list_has_both_sample_towns_with_counts(towns, loaded_engine):
    assert len(towns) == 2
    with loaded_engine.connect() as conn:
        expected = dict(
            conn.execute(
                sa.text(
                    "SELECT t.code, count(h.id) FROM towns t LEFT JOIN households h "
                    "ON left(h.village_code, 9) = t.code GROUP BY t.code"
                )
            ).all()
        )
        villages = dict(
            conn.execute(sa.text("SELECT town_code, count(*) FROM villages GROUP BY 1")).all()
        )
    for town in towns:
        assert re.fullmatch(r"\d{9}", town["code"])
        assert town["name"]
        assert town["households"] == expected[town["code"]] > 0
        assert town["villages"] == villages[town["code"]] > 0
        assert town["people"] >= town["households"]
        assert town["grids"] > 0


def test_town_area_is_measured_in_gauss_kruger(towns, loaded_engine):
    frame = gpd.read_postgis("SELECT code, geom FROM towns ORDER BY code", loaded_engine)
    expected = dict(zip(frame["code"], area_m2(frame) / 1e6, strict=True))
    for town in towns:
        assert town["area_km2"] == pytest.approx(expected[town["code"]], rel=1e-4)
        assert 1 < town["area_km2"] < 1000  # a town, not a degree² or m² mix-up


def test_town_by_code(client, towns):
    code = towns[0]["code"]
    r = client.get(f"/api/v1/towns/{code}")
    assert r.status_code == 200
    assert r.json() == towns[0]


def test_town_villages(client, towns):
    for town in towns:
        r = client.get(f"/api/v1/towns/{town['code']}/villages")
        assert r.status_code == 200
        body = r.json()
        assert body["count"] == len(body["data"]) == town["villages"]
        assert all(v["code"].startswith(town["code"]) for v in body["data"])
        assert sum(v["households"] for v in body["data"]) == town["households"]
        assert sum(v["area_km2"] for v in body["data"]) <= town["area_km2"] * 1.001


def test_unknown_town_is_404_naming_the_code(client):
    for path in ("/api/v1/towns/511703999", "/api/v1/towns/511703999/villages"):
        r = client.get(path)
        assert r.status_code == 404
        assert "511703999" in r.json()["detail"]
        assert r.json()["error"] == "NotFoundError"


@pytest.mark.parametrize("code", ["abc", "51170310", "5117031090", "51170310x"])
def test_malformed_town_code_is_422_naming_code(client, code):
    r = client.get(f"/api/v1/towns/{code}")
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["path", "code"]


def test_layers_list(client):
    r = client.get("/api/v1/layers")
    assert r.status_code == 200
    names = {layer["name"] for layer in r.json()["data"]}
    assert names >= EXPECTED_LAYERS


def _collection(client: httpx.Client, layer: str, **params: object) -> dict:
    r = client.get(f"/api/v1/layers/{layer}", params=params)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/geo+json")
    body = r.json()
    assert body["type"] == "FeatureCollection"
    assert body["numberReturned"] == len(body["features"])
    assert int(r.headers["OGC-NumberMatched"]) == body["numberMatched"]
    return body


def _all_features(client: httpx.Client, layer: str, **params: object) -> list[dict]:
    """Every feature of a layer, page by page."""
    features: list[dict] = []
    while True:
        body = _collection(client, layer, limit=10_000, offset=len(features), **params)
        features += body["features"]
        if not body["features"] or len(features) >= body["numberMatched"]:
            return features


@pytest.mark.parametrize("layer", sorted(EXPECTED_LAYERS))
def test_each_layer_is_valid_geojson(client, layer):
    body = _collection(client, layer, limit=10_000)
    assert body["numberReturned"] == min(10_000, body["numberMatched"]) > 0
    features = _all_features(client, layer)
    assert len(features) == body["numberMatched"]
    ids = [f["id"] for f in features]
    assert len(set(ids)) == len(ids)
    for feature in features[:: max(1, len(features) // 300)]:
        assert feature["type"] == "Feature"
        assert "crs" not in feature["geometry"]  # RFC 7946: lon/lat, no crs member
        geom = shapely.geometry.shape(feature["geometry"])
        assert geom.is_valid and not geom.is_empty
        minx, miny, maxx, maxy = geom.bounds
        assert 105 < minx <= maxx < 110 and 30 < miny <= maxy < 33  # Dachuan, lon first
        assert not PERSONAL_KEYS & set(feature["properties"])


def test_households_carry_no_personal_data(client):
    body = _collection(client, "households", limit=5)
    for feature in body["features"]:
        assert set(feature["properties"]) == {
            "id",
            "village_code",
            "village",
            "grid_code",
            "people",
        }


def test_grids_layer_is_current_grids_with_counts(client, loaded_engine):
    body = _collection(client, "grids", limit=10_000)
    with loaded_engine.connect() as conn:
        current = conn.scalar(sa.text("SELECT count(*) FROM grids WHERE valid_to IS NULL"))
        households = conn.scalar(
            sa.text("SELECT count(*) FROM households WHERE grid_code IS NOT NULL")
        )
    assert body["numberMatched"] == current
    assert sum(f["properties"]["households"] for f in body["features"]) == households


def test_town_filter(client, towns):
    total = _collection(client, "households", limit=1)["numberMatched"]
    parts = 0
    for town in towns:
        features = _all_features(client, "households", town=town["code"])
        assert len(features) == town["households"]
        assert all(f["properties"]["village_code"].startswith(town["code"]) for f in features)
        parts += len(features)
    assert parts == total


def test_bbox_filter(client):
    everything = _all_features(client, "households")
    xs = sorted(f["geometry"]["coordinates"][0] for f in everything)
    ys = sorted(f["geometry"]["coordinates"][1] for f in everything)
    # The western half, cut in a gap between two features that is wider than the rounding of
    # the GeoJSON coordinates, so that rounding cannot move a feature across the edge.
    mid = next(i for i in range(len(xs) // 2, len(xs) - 1) if xs[i + 1] - xs[i] > 1e-6)
    box = (xs[0] - 1e-4, ys[0] - 1e-4, (xs[mid] + xs[mid + 1]) / 2, ys[-1] + 1e-4)
    inside = _all_features(client, "households", bbox=",".join(map(str, box)))
    assert 0 < len(inside) < len(everything)
    query = shapely.box(*box)
    expected = sum(query.intersects(shapely.geometry.shape(f["geometry"])) for f in everything)
    assert len(inside) == expected
    for feature in inside:
        assert query.intersects(shapely.geometry.shape(feature["geometry"]))


def test_paging_is_stable_and_disjoint(client):
    first = _collection(client, "households", limit=7, offset=0)
    second = _collection(client, "households", limit=7, offset=7)
    assert first["numberReturned"] == second["numberReturned"] == 7
    assert not {f["id"] for f in first["features"]} & {f["id"] for f in second["features"]}
    beyond = _collection(client, "households", offset=10_000_000)
    assert beyond["features"] == [] and beyond["numberMatched"] == first["numberMatched"]


def test_default_limit_is_1000(client):
    body = _collection(client, "households")
    assert body["numberReturned"] == min(1000, body["numberMatched"])


def test_unknown_layer_is_404_listing_known_layers(client):
    r = client.get("/api/v1/layers/residents")
    assert r.status_code == 404
    detail = r.json()["detail"]
    assert "'residents'" in detail
    for name in EXPECTED_LAYERS:
        assert name in detail


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"bbox": "107.3,31.0,107.6"}, "bbox"),
        ({"bbox": "107.3,31.0,107.6,31.3,5"}, "bbox"),
        ({"bbox": "a,b,c,d"}, "bbox"),
        ({"bbox": "107.6,31.0,107.3,31.3"}, "bbox"),  # minx > maxx
        ({"bbox": "107.3,31.3,107.6,31.0"}, "bbox"),  # miny > maxy
        ({"bbox": "31.0,107.3,31.3,107.6"}, "bbox"),  # lat/lon swapped
        ({"bbox": "107.3,31.0,200,31.3"}, "bbox"),
        ({"bbox": "nan,31.0,107.6,31.3"}, "bbox"),
        ({"bbox": "inf,31.0,107.6,31.3"}, "bbox"),
        ({"bbox": ""}, "bbox"),
        ({"limit": 0}, "limit"),
        ({"limit": 10_001}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"offset": -1}, "offset"),
        ({"town": "12"}, "town"),
    ],
)
def test_bad_layer_parameters_are_422_naming_the_parameter(client, params, parameter):
    r = client.get("/api/v1/layers/grids", params=params)
    assert r.status_code == 422, r.text
    locs = [err["loc"] for err in r.json()["detail"]]
    assert ["query", parameter] in locs
    assert all(err["msg"] for err in r.json()["detail"])


def test_unknown_town_filter_is_404(client):
    r = client.get("/api/v1/layers/grids", params={"town": "511703999"})
    assert r.status_code == 404
    assert "511703999" in r.json()["detail"]


def test_no_personal_data_anywhere(client, loaded_engine):
    """Residents' names, ID numbers and phones, and members' phones, appear in no response."""
    with loaded_engine.connect() as conn:
        secrets = clear_values(conn) | {
            s
            for (s,) in conn.execute(
                sa.text(
                    "SELECT phone FROM members WHERE phone IS NOT NULL "
                    "UNION SELECT address FROM households WHERE address IS NOT NULL"
                )
            )
        }
        names = set(conn.execute(sa.text("SELECT name FROM residents")).scalars())
        place_names = " ".join(
            conn.execute(
                sa.text(
                    "SELECT name FROM towns UNION ALL SELECT name FROM villages "
                    "UNION ALL SELECT coalesce(name, '') FROM grids "
                    "UNION ALL SELECT name FROM pollution_points "
                    "UNION ALL SELECT name FROM hazards "
                    "UNION ALL SELECT name FROM task_types"
                )
            ).scalars()
        )
    assert secrets, "the sample data should contain ID numbers and phones to protect"
    names = {n for n in names if len(n) >= 2 and n not in place_names}
    pages = [client.get("/api/v1/towns").text, client.get("/map").text]
    for town in client.get("/api/v1/towns").json()["data"]:
        pages.append(client.get(f"/api/v1/towns/{town['code']}/villages").text)
    for layer in client.get("/api/v1/layers").json()["data"]:
        pages.append(json.dumps(_all_features(client, layer["name"])))
    strings = set().union(*(_string_literals(page) for page in pages))
    leaked = (secrets | names) & strings
    # Names inside longer strings (e.g. a label "张三家"): every 2-4 character window.
    leaked |= names & {s[i : i + n] for s in strings for n in (2, 3, 4) for i in range(len(s))}
    # ID numbers and phones anywhere in the text, quoted or not.
    numbers = set(re.findall(r"\d{17}[\dXx]|\d{11}", "\n".join(pages)))
    leaked |= secrets & numbers
    assert not leaked, f"personal data in responses: {sorted(leaked)[:5]}"


def _string_literals(text: str) -> set[str]:
    """Every JSON/JavaScript string literal in a response, decoded (folium escapes non-ASCII)."""
    found = set()
    for raw in re.findall(r'"((?:[^"\\\n]|\\.)*)"', text):
        try:
            found.add(json.loads(f'"{raw}"'))
        except json.JSONDecodeError:
            found.add(raw)
    return found


def test_openapi_documents_the_endpoints(client):
    spec = client.get("/openapi.json").json()
    for path in (
        "/health",
        "/api/v1/towns",
        "/api/v1/towns/{code}",
        "/api/v1/towns/{code}/villages",
        "/api/v1/layers",
        "/api/v1/layers/{layer}",
        "/map",
    ):
        assert path in spec["paths"], path
    assert "TownPublic" in spec["components"]["schemas"]
    assert "FeatureCollectionPublic" in spec["components"]["schemas"]


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_docs_pages_load_assets_from_the_platform(client, path):
    r = client.get(path)
    assert r.status_code == 200
    urls = re.findall(r'(?:src|href)="([^"]+)"', r.text)
    assert urls
    assert not [u for u in urls if re.match(r"^(https?:)?//", u)], urls
    for url in urls:
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert int(asset.headers["content-length"]) > 0


def test_map_page_uses_only_local_assets(client, towns):
    for params in ({}, {"town": towns[0]["code"]}):
        r = client.get("/map", params=params)
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/html")
        urls = re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', r.text)
        assert any("leaflet.js" in u for u in urls)
        assert not [u for u in urls if re.match(r"^(https?:)?//", u)], urls
        for url in set(urls):
            assert client.get(url).status_code == 200, url
    only_one = client.get("/map", params={"town": towns[0]["code"]}).text
    assert towns[0]["name"] in only_one
    assert towns[1]["name"] not in only_one


def test_map_rejects_unknown_town_and_basemap(client):
    assert client.get("/map", params={"town": "511703999"}).status_code == 404
    r = client.get("/map", params={"basemap": "google"})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["query", "basemap"]


# --- natural lines: /api/v1/layers/rivers, streams, roads ---------------------------------


@pytest.mark.parametrize("layer", sorted(LINE_LAYERS))
def test_line_layers_hold_every_feature_of_their_file(client, layer):
    source = gpd.read_file(SAMPLE_DATA / f"{layer}.shp")
    features = _all_features(client, layer)
    assert len(features) == len(source)
    key = source.columns[0]  # river_id, strm_id, road_id
    assert sorted(f["properties"]["code"] for f in features) == sorted(source[key])
    for feature in features:
        assert feature["geometry"]["type"] == "MultiLineString"
        props = feature["properties"]
        assert set(props) == {
            "code", "name", "rank", "class", "town_code", "town", "synthetic", "source",
        }  # fmt: skip
        assert 1 <= props["rank"] <= 12
    if layer == "roads":
        ranks = {"county": 1, "township": 2, "village": 3}
        assert {f["properties"]["class"]: f["properties"]["rank"] for f in features} == ranks
        assert all(f["properties"]["synthetic"] for f in features)
    if layer == "rivers":
        assert not any(f["properties"]["synthetic"] for f in features)
        assert sum(f["properties"]["town_code"] is None for f in features) == 3


@pytest.mark.parametrize("layer", sorted(LINE_LAYERS))
def test_line_town_filter_is_own_lines_or_crossing_the_town(client, loaded_engine, layer):
    everything = _all_features(client, layer)
    with loaded_engine.connect() as conn:
        towns = gpd.read_postgis("SELECT code, geom FROM towns ORDER BY code", conn)
    for code, outline in zip(towns["code"], towns.geometry, strict=True):
        got = {f["id"] for f in _all_features(client, layer, town=code)}
        expected = {
            f["id"]
            for f in everything
            if f["properties"]["town_code"] == code
            or outline.intersects(shapely.geometry.shape(f["geometry"]))
        }
        assert got == expected, code
    heshi = {f["id"] for f in _all_features(client, "rivers", town="511703129")}
    # the real river: its Heshi piece and a town-less piece that touches Heshi
    assert len(heshi) == 2
    assert not _all_features(client, "rivers", town="511703109")  # no river in Zhaojia
    assert not _all_features(client, "streams", town="511703109")  # no DEM there


def test_line_bbox_filter(client):
    rivers = _all_features(client, "rivers")
    # a box around the town-less river pieces west of both towns only
    box = (107.10, 31.0, 107.30, 31.45)
    inside = _all_features(client, "rivers", bbox=",".join(map(str, box)))
    query = shapely.box(*box)
    expected = {f["id"] for f in rivers if query.intersects(shapely.geometry.shape(f["geometry"]))}
    assert {f["id"] for f in inside} == expected
    assert 0 < len(expected) < len(rivers)
    assert all(f["properties"]["town_code"] is None for f in inside)
    paged = _collection(client, "roads", limit=5, offset=340)
    assert paged["numberReturned"] == 4 and paged["numberMatched"] == 344


@pytest.mark.parametrize("layer", sorted(LINE_LAYERS))
@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"bbox": "31.0,107.3,31.3,107.6"}, 422),  # lat/lon swapped
        ({"bbox": "107.3,31.0,107.6"}, 422),
        ({"limit": 0}, 422),
        ({"offset": -1}, 422),
        ({"town": "5117031"}, 422),
        ({"town": "511703999"}, 404),
    ],
)
def test_line_layers_refuse_bad_input(client, layer, params, status):
    r = client.get(f"/api/v1/layers/{layer}", params=params)
    assert r.status_code == status, r.text


def test_layers_list_describes_the_line_layers(client):
    listed = {layer["name"]: layer for layer in client.get("/api/v1/layers").json()["data"]}
    titles = {name: listed[name]["title"] for name in LINE_LAYERS}
    assert titles == {"rivers": "河流", "streams": "溪流（DEM 提取）", "roads": "道路（合成）"}
    assert {listed[name]["geometry_type"] for name in LINE_LAYERS} == {"MultiLineString"}


def test_map_page_draws_the_line_overlays(client):
    page = client.get("/map").text
    for label in ("河流（4）", "溪流（DEM 提取）（124）", "道路（合成）（344）"):
        assert label in page or json.dumps(label)[1:-1] in page, label
    zhaojia = client.get("/map", params={"town": "511703109"}).text
    assert "河流（" not in zhaojia and json.dumps("河流（")[1:-1] not in zhaojia  # no river there
    assert json.dumps("道路（合成）（130）")[1:-1] in zhaojia or "道路（合成）（130）" in zhaojia


def test_root_redirects_to_the_map(client):
    r = client.get("/", follow_redirects=False)
    assert r.status_code == 307
    assert r.headers["location"] == "/map"
    page = client.get("/", follow_redirects=True)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
