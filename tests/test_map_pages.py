"""The planner, incident and plan pages over HTTP: layers, languages, base maps, bad input."""

from __future__ import annotations

import json
import re

import httpx
import pytest
import sqlalchemy as sa

from maps import _page
from maps.vendor import verify_packages
from tests.security_support import clear_values

pytestmark = [pytest.mark.postgis]

ZHAOJIA = "511703109"
HESHI = "511703129"


@pytest.fixture(scope="module")
def client(server_url, auth_headers):
    with httpx.Client(base_url=server_url, timeout=120, headers=auth_headers(server_url)) as c:
        yield c


def _config(page: str) -> dict:
    found = re.search(r"window\.GIS_GRID_PAGE = (\{.*?\});</script>", page)
    assert found, "page config missing"
    return json.loads(found.group(1).replace("<\\/", "</"))


def _has(page: str, label: str) -> bool:
    """Whether the page shows ``label`` (folium writes layer names as JSON \\u escapes)."""
    return label in page or json.dumps(label)[1:-1] in page


def test_page_vendor_copies_match_their_manifest():
    assert verify_packages(_page.PAGE_PACKAGES, _page.PAGE_VENDOR_DIR) == []
    listed = {_page.PAGE_VENDOR_DIR / p.directory / f for p in _page.PAGE_PACKAGES for f in p.files}
    present = {p for p in _page.PAGE_VENDOR_DIR.rglob("*") if p.is_file()} - {
        _page.PAGE_VENDOR_DIR / "VENDOR.md",
        _page.PAGE_VENDOR_DIR / "manifest.json",
    }
    assert present == listed
    for package in _page.PAGE_PACKAGES:
        assert re.fullmatch(r"\d+\.\d+\.\d+", package.version)


def test_planner_page_has_its_layers_and_scripts(client):
    r = client.get("/map/planner", params={"town": ZHAOJIA, "band": "150-250", "by": "people"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    page = r.text
    cfg = _config(page)
    assert cfg["page"] == "planner" and cfg["town"]["code"] == ZHAOJIA
    assert cfg["band"] == [150.0, 250.0] and cfg["by"] == "people"
    assert cfg["api"] == "/api/v1"
    assert len(cfg["villages"]) == 14
    for label in ("村（社区）", "河流", "道路", "无底图（离线）", "OpenStreetMap（需联网）"):
        assert _has(page, label), label
    for asset in (
        "/static/planner/api.js",
        "/static/planner/common.js",
        "/static/planner/planner.js",
        "/static/planner/vendor/leaflet-geoman-free@2.17.0/dist/leaflet-geoman.min.js",
        "/static/vendor/leaflet.markercluster@1.5.3/dist/leaflet.markercluster.js",
    ):
        assert asset in page, asset
        assert client.get(asset).status_code == 200, asset
    assert "cdn" not in page.lower() and "@latest" not in page
    assert "tianditu" not in page  # no key configured: not offered


def test_planner_page_in_english(client):
    page = client.get("/map/planner", params={"town": HESHI, "lang": "en"}).text
    cfg = _config(page)
    assert cfg["labels"]["title"] == "Grid planning"
    assert _has(page, "No basemap (offline)") and _has(page, "Villages")
    assert _has(page, "Streams (from DEM)")  # Heshi has the DEM-derived streams


def test_incident_page_has_its_layers(client):
    r = client.get("/map/incidents", params={"town": ZHAOJIA, "type": "T01", "status": "closed"})
    assert r.status_code == 200, r.text
    cfg = _config(r.text)
    assert cfg["page"] == "incidents"
    assert cfg["filters"]["type"] == "T01" and cfg["filters"]["status"] == ["closed"]
    assert len(cfg["statuses"]) == 7
    for label in ("污染排放点", "环境隐患", "AB岗结对"):
        assert _has(r.text, label), label
    assert "/static/planner/incidents.js" in r.text
    # The point layers come from vector tiles (the plugin served here), not the page.
    assert cfg["tiles"]["url"] == "/tiles/{layer}/{z}/{x}/{y}.pbf"
    assert cfg["tiles"]["layers"] == ["incidents", "pollution", "hazards"]
    vectorgrid = "/static/vendor/leaflet.vectorgrid@1.3.0/dist/Leaflet.VectorGrid.bundled.min.js"
    assert vectorgrid in r.text and client.get(vectorgrid).status_code == 200
    assert "/static/planner/session.js" in r.text  # who is logged in, and logout


def test_tianditu_offered_with_a_key(client, monkeypatch):
    monkeypatch.setenv(_page.TIANDITU_KEY_ENV, "testkey123")
    page = client.get("/map/planner", params={"town": ZHAOJIA, "basemap": "tianditu"}).text
    assert "tianditu.gov.cn/vec_w" in page and "tk=testkey123" in page
    assert _has(page, "天地图矢量（需联网）")


def test_pages_need_a_login(server_url):
    for path in ("/map/planner", "/map/incidents"):
        r = httpx.get(f"{server_url}{path}", params={"town": ZHAOJIA}, timeout=60)
        assert r.status_code == 401, (path, r.text)
        # A browser is sent to the login page instead (tests/test_login_page.py).
        r = httpx.get(
            f"{server_url}{path}",
            params={"town": ZHAOJIA},
            headers={"Accept": "text/html"},
            timeout=60,
        )
        assert r.status_code == 303, (path, r.text)
        assert r.headers["location"].startswith("/login?next=")


@pytest.mark.parametrize(
    ("path", "params", "status", "names"),
    [
        ("/map/planner", {"town": ZHAOJIA, "band": "x"}, 422, "band"),
        ("/map/planner", {"town": ZHAOJIA, "band": "300-200"}, 422, "band"),
        ("/map/planner", {"town": ZHAOJIA, "band": "nan-300"}, 422, "band"),
        ("/map/planner", {"town": ZHAOJIA, "band": "0-300"}, 422, "band"),
        ("/map/planner", {"town": ZHAOJIA, "by": "cats"}, 422, "by"),
        ("/map/planner", {"town": ZHAOJIA, "lang": "fr"}, 422, "lang"),
        ("/map/planner", {"town": ZHAOJIA, "basemap": "google"}, 422, "basemap"),
        ("/map/planner", {"town": ZHAOJIA, "basemap": "tianditu"}, 422, "basemap"),
        ("/map/planner", {"town": "12345"}, 422, "town"),
        ("/map/planner", {}, 422, "town"),
        ("/map/planner", {"town": "999999999"}, 404, "999999999"),
        ("/map/incidents", {"town": ZHAOJIA, "type": "ZZ"}, 422, "type"),
        ("/map/incidents", {"town": ZHAOJIA, "status": "lost"}, 422, "status"),
        ("/map/incidents", {"town": ZHAOJIA, "from": "yesterday"}, 422, "from"),
        (
            "/map/incidents",
            {"town": ZHAOJIA, "from": "2025-02-01", "to": "2025-01-01"},
            422,
            "from",
        ),
        ("/map/incidents", {"town": ZHAOJIA, "overdue": "maybe"}, 422, "overdue"),
        (f"/map/plans/{ZHAOJIA}", {"target": "0"}, 422, "target"),
        (f"/map/plans/{ZHAOJIA}", {"target": "Infinity"}, 422, "target"),
        (f"/map/plans/{ZHAOJIA}", {"tolerance": "1.5"}, 422, "tolerance"),
        (f"/map/plans/{ZHAOJIA}", {"by": "area"}, 422, "by"),
        ("/map/plans/51170310", {}, 422, "town"),
        ("/map/plans/999999999", {}, 404, "999999999"),
    ],
)
def test_bad_parameters_are_named(client, path, params, status, names):
    r = client.get(path, params=params)
    assert r.status_code == status, r.text
    assert names in r.text


def test_infeasible_target_is_a_422_naming_the_villages(client):
    r = client.get(f"/map/plans/{ZHAOJIA}", params={"target": 250, "tolerance": 0.1})
    assert r.status_code == 422, r.text
    body = r.json()
    assert "band" in body["detail"] and body["problems"]


def test_plan_page_draws_without_writing(client, loaded_engine):
    def grids() -> list[tuple[str, int]]:
        with loaded_engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT code, version FROM grids ORDER BY code, version"))
            return [tuple(row) for row in rows]

    before = grids()
    r = client.get(f"/map/plans/{ZHAOJIA}", params={"tolerance": 0.15})
    assert r.status_code == 200, r.text
    page = r.text
    for label in (
        "提议网格（按偏差着色）",
        "现行网格（26）",
        "方案质量",
        "平均紧凑度",
        "紧凑度(PP)",
    ):
        assert _has(page, label), label
    assert grids() == before
    en = client.get(f"/map/plans/{ZHAOJIA}", params={"tolerance": 0.15, "lang": "en"}).text
    assert _has(en, "Proposed grids (by deviation)") and _has(en, "Current grids（26）")


def test_no_personal_data_in_pages(client, loaded_engine):
    with loaded_engine.connect() as conn:
        secrets = clear_values(conn)
        names = {r[0] for r in conn.execute(sa.text("SELECT name FROM residents LIMIT 2000"))}
    pages = [
        client.get("/map/planner", params={"town": ZHAOJIA}).text,
        client.get("/map/incidents", params={"town": ZHAOJIA}).text,
    ]
    for page in pages:
        assert not [s for s in secrets if s in page]
        assert not [n for n in names if len(n) >= 3 and n in page]
