"""OGC API – Features at /ogc, read by a real client (OWSLib) and checked for bad input.

Runs against the read-only shared server (``server_url``): nothing here writes. Every
collection is read by OWSLib's ``Features`` client; paging follows ``next`` links to the end;
the published properties are checked against a list, so personal data cannot slip in.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import sqlalchemy as sa
from owslib.ogcapi.features import Features

pytestmark = pytest.mark.postgis

COLLECTIONS = ("grids", "villages", "pollution_points", "hazards", "incidents")
#: Every property each collection may publish: nothing personal (names of people, phones,
#: ID numbers, addresses, incident titles, descriptions, reporters).
ALLOWED = {
    "grids": {
        "code", "name", "village_code", "village", "version", "valid_from", "households", "people",
    },
    "villages": {"code", "name", "kind", "town_code", "town"},
    "pollution_points": {"code", "name", "kind", "village_code", "village", "grid_code"},
    "hazards": {"code", "name", "kind", "level", "village_code", "village", "grid_code"},
    "incidents": {
        "code", "task_type_code", "task_type", "status", "reported_at", "deadline", "closed_at",
        "village_code", "village", "grid_code",
    },
}  # fmt: skip
ZHAOJIA_BBOX = [107.36, 30.89, 107.50, 31.0]


@pytest.fixture(scope="module")
def api(server_url: str, auth_headers) -> Features:
    # A reader: the least central role still sees every collection (no personal data here).
    return Features(f"{server_url}/ogc/", timeout=60, headers=auth_headers(server_url, "reader"))


@pytest.fixture(scope="module")
def client(server_url: str, auth_headers) -> Iterator[httpx.Client]:
    headers = auth_headers(server_url, "reader")
    with httpx.Client(base_url=server_url, timeout=60, headers=headers) as c:
        yield c


@pytest.fixture(scope="module")
def counts(loaded_database_url) -> dict[str, int]:
    engine = sa.create_engine(loaded_database_url)
    with engine.connect() as conn:
        found = {
            "grids": conn.scalar(sa.text("SELECT count(*) FROM grids WHERE valid_to IS NULL")),
            **{
                t: conn.scalar(sa.text(f"SELECT count(*) FROM {t}"))
                for t in ("villages", "pollution_points", "hazards", "incidents")
            },
        }
    engine.dispose()
    return {k: int(v or 0) for k, v in found.items()}


def test_landing_page_and_conformance(api: Features) -> None:
    rels = {link["rel"] for link in api.links}
    assert {"self", "service-desc", "conformance", "data"} <= rels
    conforms = api.conformance()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in conforms
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson" in conforms


def test_collections_have_extent_and_items_link(api: Features) -> None:
    assert sorted(api.feature_collections()) == sorted(COLLECTIONS)
    found = {c["id"]: c for c in api.collections()["collections"]}
    assert set(found) == set(COLLECTIONS)
    for cid, collection in found.items():
        bbox = collection["extent"]["spatial"]["bbox"][0]
        assert 107 < bbox[0] < bbox[2] < 108, cid
        assert 30 < bbox[1] < bbox[3] < 32, cid
        assert any(link["rel"] == "items" for link in collection["links"])
    assert found["incidents"]["extent"]["temporal"]["interval"][0][0] is not None
    assert api.collection("grids")["id"] == "grids"


@pytest.mark.parametrize("cid", COLLECTIONS)
def test_owslib_reads_every_collection(api: Features, counts: dict[str, int], cid: str) -> None:
    first = api.collection_items(cid, limit=10)
    assert first["type"] == "FeatureCollection"
    assert first["numberMatched"] == counts[cid] > 0
    assert first["numberReturned"] == len(first["features"]) == min(10, counts[cid])
    for feature in first["features"]:
        assert set(feature["properties"]) <= ALLOWED[cid], cid
        assert feature["geometry"]["type"] in {"Point", "MultiPolygon"}
    one = first["features"][0]
    again = api.collection_item(cid, str(one["id"]))
    assert again["id"] == one["id"]
    assert again["properties"] == one["properties"]


def test_paging_follows_next_links_to_the_end(client: httpx.Client, counts: dict[str, int]) -> None:
    url: str | None = "/ogc/collections/villages/items?limit=7"
    seen: list[str] = []
    while url is not None:
        page = client.get(url)
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("application/geo+json")
        body = page.json()
        seen += [f["id"] for f in body["features"]]
        url = next((link["href"] for link in body["links"] if link["rel"] == "next"), None)
    assert len(seen) == len(set(seen)) == counts["villages"]


def test_bbox_selects_features_inside(api: Features, counts: dict[str, int]) -> None:
    inside = api.collection_items("hazards", bbox=ZHAOJIA_BBOX, limit=1000)
    assert 0 < inside["numberMatched"] < counts["hazards"]
    for feature in inside["features"]:
        lon, lat = feature["geometry"]["coordinates"]
        assert ZHAOJIA_BBOX[0] <= lon <= ZHAOJIA_BBOX[2]
        assert ZHAOJIA_BBOX[1] <= lat <= ZHAOJIA_BBOX[3]


def test_datetime_filters_incidents(api: Features, counts: dict[str, int]) -> None:
    everything = api.collection_items("incidents", datetime_="2000-01-01/..", limit=1)
    assert everything["numberMatched"] == counts["incidents"]
    nothing = api.collection_items("incidents", datetime_="../2000-01-01", limit=1)
    assert nothing["numberMatched"] == 0
    some = api.collection_items("incidents", datetime_="2025-01-01/2025-06-30", limit=1000)
    assert 0 < some["numberMatched"] < counts["incidents"]
    for feature in some["features"]:
        assert "2025-01-01" <= feature["properties"]["reported_at"][:10] <= "2025-06-30"
    # Current grids: valid now, none valid before the sample was loaded.
    assert api.collection_items("grids", datetime_="1990-01-01", limit=1)["numberMatched"] == 0


@pytest.mark.parametrize(
    ("url", "status", "named"),
    [
        ("/ogc/collections/nope", 404, "nope"),
        ("/ogc/collections/nope/items", 404, "grids"),
        ("/ogc/collections/residents/items", 404, "residents"),
        ("/ogc/collections/grids/items/511703109999999", 404, "511703109999999"),
        ("/ogc/collections/grids/items?bbox=107.5,31,107.3,31.2", 422, "bbox"),
        ("/ogc/collections/grids/items?bbox=31,107,31.2,107.5", 422, "longitude first"),
        ("/ogc/collections/grids/items?bbox=1,2,3", 422, "bbox"),
        ("/ogc/collections/grids/items?bbox=nan,30,108,31", 422, "bbox"),
        ("/ogc/collections/grids/items?limit=10001", 422, "limit"),
        ("/ogc/collections/grids/items?limit=0", 422, "limit"),
        ("/ogc/collections/grids/items?offset=-1", 422, "offset"),
        ("/ogc/collections/incidents/items?datetime=yesterday", 422, "datetime"),
        ("/ogc/collections/incidents/items?datetime=2025-06-01/2025-01-01", 422, "datetime"),
        ("/ogc/collections/incidents/items?datetime=../..", 422, "datetime"),
    ],
)
def test_bad_input_is_a_4xx_naming_it(
    client: httpx.Client, url: str, status: int, named: str
) -> None:
    response = client.get(url)
    assert response.status_code == status, response.text
    assert named in response.text


def test_login_required(server_url: str) -> None:
    response = httpx.get(f"{server_url}/ogc/collections/grids/items", timeout=60)
    assert response.status_code == 401


def test_member_sees_only_their_grids_load(
    server_url: str, auth_headers, client: httpx.Client
) -> None:
    member = auth_headers(server_url, "member")
    mine = httpx.get(
        f"{server_url}/ogc/collections/grids/items?limit=1000", headers=member, timeout=60
    ).json()
    everyone = client.get("/ogc/collections/grids/items?limit=1000").json()
    loaded = [f for f in mine["features"] if f["properties"]["households"]]
    assert 1 <= len(loaded) < len(everyone["features"])  # households: row-level security
    incidents = httpx.get(
        f"{server_url}/ogc/collections/incidents/items?limit=1000", headers=member, timeout=60
    ).json()
    assert {f["properties"]["grid_code"] for f in incidents["features"]} <= {
        f["id"] for f in loaded
    }


def test_openapi_documents_the_ogc_paths(client: httpx.Client) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/ogc", "/ogc/conformance", "/ogc/collections/{collection_id}/items"):
        assert path in paths
