"""The map and docs pages in a real browser (Debian's chromium, driven by Playwright), offline.

The browser is started with background networking off; the pages must work with nothing but
the platform itself: every script, stylesheet, image and font comes from the server.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest
import shapely

from tests.conftest import login_headers

pytestmark = [pytest.mark.browser, pytest.mark.postgis, pytest.mark.slow]


SCREENSHOT = Path("/tmp/gis_grid_map.png")
LINES_SCREENSHOT = Path("/tmp/gis_grid_map_lines.png")


@dataclass
class PageLog:
    """What a page did: console errors, failed requests to the platform, external requests."""

    origin: str
    console_errors: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    external: list[str] = field(default_factory=list)

    def attach(self, page) -> None:
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.console_errors.append(f"pageerror: {exc}"))
        page.on("requestfailed", lambda req: self._failed(req.url, req.failure))
        page.on("response", lambda resp: resp.status >= 400 and self._failed(resp.url, resp.status))
        page.on("request", self._request)

    def _console(self, msg) -> None:
        if msg.type == "error":
            self.console_errors.append(msg.text)

    def _failed(self, url: str, why: object) -> None:
        if url.startswith(self.origin):
            self.failed.append(f"{url}: {why}")

    def _request(self, req) -> None:
        if urlparse(req.url).scheme in {"http", "https"} and not req.url.startswith(self.origin):
            self.external.append(req.url)


def _get(url: str, **kwargs: Any) -> httpx.Response:
    """GET as the test administrator."""
    return httpx.get(url, headers=login_headers(url), **kwargs)


@pytest.fixture
def page(browser, server_url):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="zh-CN")
    # Logged in as a browser is: the HttpOnly cookie the login sets (accepted for GETs).
    token = login_headers(server_url)["Authorization"].removeprefix("Bearer ")
    context.add_cookies([{"name": "gis_grid_token", "value": token, "url": server_url}])
    pg = context.new_page()
    log = PageLog(origin=server_url)
    log.attach(pg)
    yield pg, log
    context.close()


# Counts drawn features per overlay by walking the Leaflet map folium created.
_COUNT_LAYERS_JS = """
() => {
  const key = Object.keys(window).find(k => k.startsWith('map_') && window[k] instanceof L.Map);
  const map = window[key];
  const counts = {};
  let points = 0, shapes = 0;
  const coords = [];
  map.eachLayer(layer => {
    if (layer instanceof L.CircleMarker) {
      points += 1; const p = layer.getLatLng(); coords.push([p.lng, p.lat]);
    } else if (layer instanceof L.Polyline) { shapes += 1; }
  });
  const v = map.getBounds();
  const overlays = [...document.querySelectorAll('.leaflet-control-layers-overlays label')]
    .map(l => l.textContent.trim());
  const bases = [...document.querySelectorAll('.leaflet-control-layers-base label')]
    .map(l => l.textContent.trim());
  return {points, shapes, coords, overlays, bases, zoom: map.getZoom(),
          view: [v.getWest(), v.getSouth(), v.getEast(), v.getNorth()],
          canvases: document.querySelectorAll('.leaflet-overlay-pane canvas').length};
}
"""


def test_map_page_renders_every_layer_offline(page, server_url):
    pg, log = page
    towns = _get(f"{server_url}/api/v1/towns", timeout=60).json()["data"]
    pg.goto(f"{server_url}/map", wait_until="networkidle")
    pg.wait_for_function("typeof L !== 'undefined' && document.querySelector('.leaflet-container')")
    pg.wait_for_selector(".leaflet-control-layers-overlays label")
    pg.wait_for_timeout(500)  # let the canvas renderer finish its frame
    info = pg.evaluate(_COUNT_LAYERS_JS)
    pg.screenshot(path=str(SCREENSHOT))

    assert log.console_errors == []
    assert log.failed == []
    assert log.external == []  # the default (no-basemap) page asks nothing of the internet
    assert info["canvases"] >= 1

    households = sum(t["households"] for t in towns)
    assert info["points"] >= households  # households + pollution + hazards + incidents
    assert info["shapes"] >= len(towns) + sum(t["villages"] + t["grids"] for t in towns)
    overlay_text = " ".join(info["overlays"])
    for label in (
        "镇（街道）", "村（社区）", "网格", "溪流（DEM 提取）", "河流", "道路（合成）",
        "住户", "污染排放点", "环境隐患", "事件",
    ):  # fmt: skip
        assert label in overlay_text, (label, info["overlays"])
    assert info["bases"] == ["无底图（离线）", "OpenStreetMap（需联网）"]
    # Both towns are drawn and in view: each town's households are on the map.
    view = shapely.box(*info["view"])
    drawn = shapely.points(info["coords"])
    for town in towns:
        layer = _get(
            f"{server_url}/api/v1/layers/towns", params={"town": town["code"]}, timeout=60
        ).json()
        outline = shapely.geometry.shape(layer["features"][0]["geometry"])
        assert view.intersection(outline).area > 0.9 * outline.area, town["name"]
        inside = int(shapely.contains_xy(outline, info["coords"]).sum()) if len(drawn) else 0
        assert inside >= town["households"], (town["name"], inside, town["households"])
    assert info["zoom"] >= 9
    assert SCREENSHOT.stat().st_size > 20_000


# Lines (polylines that are not polygons) drawn on the map, by colour: [count, max weight].
_LINES_JS = """
() => {
  const key = Object.keys(window).find(k => k.startsWith('map_') && window[k] instanceof L.Map);
  const byColour = {};
  window[key].eachLayer(layer => {
    if (layer instanceof L.Polyline && !(layer instanceof L.Polygon)) {
      const c = layer.options.color, w = layer.options.weight;
      byColour[c] = byColour[c] || [0, 0, []];
      byColour[c][0] += 1; byColour[c][1] = Math.max(byColour[c][1], w);
      if (!byColour[c][2].includes(w)) byColour[c][2].push(w);
    }
  });
  return byColour;
}
"""


def test_map_draws_rivers_streams_and_roads(page, server_url):
    pg, log = page
    town = "511703129"  # Heshi: the DEM town, with the real river and the derived streams
    counts = {
        layer: _get(
            f"{server_url}/api/v1/layers/{layer}", params={"town": town, "limit": 1}, timeout=60
        ).json()["numberMatched"]
        for layer in ("rivers", "streams", "roads")
    }
    pg.goto(f"{server_url}/map?town={town}", wait_until="networkidle")
    pg.wait_for_selector(".leaflet-control-layers-overlays label")
    # Points off, so that the screenshot shows the lines over the grids.
    for label in ("住户", "污染排放点", "环境隐患", "事件"):
        box = pg.locator(".leaflet-control-layers-overlays label", has_text=label)
        if box.count():
            box.locator("input").uncheck()
    pg.wait_for_timeout(500)
    lines = pg.evaluate(_LINES_JS)
    pg.screenshot(path=str(LINES_SCREENSHOT))

    river, stream = lines["#08519c"], lines["#6baed6"]
    assert river[0] == counts["rivers"] >= 1
    assert stream[0] == counts["streams"] > 20
    roads = lines.get("#e6550d", [0])[0] + lines.get("#fd8d3c", [0])[0] + lines["#969696"][0]
    assert roads == counts["roads"]
    assert lines["#e6550d"][1] > lines["#969696"][1]  # county roads thicker than village roads
    assert min(river[2]) > stream[1]  # the river is thicker than any stream
    overlays = pg.locator(".leaflet-control-layers-overlays").inner_text()
    assert f"河流（{counts['rivers']}）" in overlays
    assert f"溪流（DEM 提取）（{counts['streams']}）" in overlays
    assert f"道路（合成）（{counts['roads']}）" in overlays
    assert log.console_errors == [] and log.failed == [] and log.external == []
    assert LINES_SCREENSHOT.stat().st_size > 20_000


def test_map_tooltip_shows_grid_counts(page, server_url):
    pg, log = page
    grid = _get(f"{server_url}/api/v1/layers/grids", params={"limit": 1}, timeout=60).json()
    feature = grid["features"][0]
    pg.goto(
        f"{server_url}/map?town={feature['properties']['village_code'][:9]}",
        wait_until="networkidle",
    )
    pg.wait_for_selector(".leaflet-control-layers-overlays label")
    # Hover the grid's representative point: the tooltip names the grid and its households.
    point = shapely.geometry.shape(feature["geometry"]).representative_point()
    xy = pg.evaluate(
        """([lat, lon]) => {
             const key = Object.keys(window)
               .find(k => k.startsWith('map_') && window[k] instanceof L.Map);
             const p = window[key].latLngToContainerPoint([lat, lon]);
             const r = window[key].getContainer().getBoundingClientRect();
             return [p.x + r.left, p.y + r.top];
           }""",
        [point.y, point.x],
    )
    # Switch off point layers so that the hover hits the grid polygon.
    for label in ("住户", "污染排放点", "环境隐患", "事件"):
        box = pg.locator(".leaflet-control-layers-overlays label", has_text=label)
        if box.count():
            box.locator("input").uncheck()
    pg.mouse.move(xy[0], xy[1])
    tooltip = pg.wait_for_selector(".leaflet-tooltip", timeout=5000)
    text = tooltip.inner_text()
    assert feature["properties"]["code"] in text
    assert "户数" in text and "人数" in text
    assert log.console_errors == [] and log.failed == []


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_docs_render_offline(page, server_url, path):
    pg, log = page
    pg.goto(f"{server_url}{path}", wait_until="networkidle")
    if path == "/docs":
        pg.wait_for_selector(".swagger-ui .opblock", timeout=20_000)
        assert pg.locator(".swagger-ui .opblock").count() >= 7
        assert "/api/v1/layers/{layer}" in pg.content()
    else:
        pg.wait_for_selector("[role=menuitem], .menu-content", timeout=20_000)
        assert "/api/v1/towns" in pg.content()
        # ReDoc 2 hard-codes its vendor logo (cdn.redoc.ly) in the menu footer; the page's
        # Content-Security-Policy blocks it before any network access, which Chromium reports.
        logo = "https://cdn.redoc.ly/redoc/logo-mini.svg"
        log.external = [u for u in log.external if u != logo]
        log.console_errors = [e for e in log.console_errors if "img-src" not in e]
    assert log.failed == []
    assert log.external == []
    assert log.console_errors == []
