"""The planner, incident and plan pages in a real browser (Debian's chromium via Playwright).

Edits go through the page's own controls: a vertex dragged with the mouse (Leaflet-Geoman), the
dry run's new loads read from the page's panel, the save checked in PostGIS, a stale ETag's 412
drawn on the map. Screenshots go to a temporary folder, or to docs/ (where the committed ones
live) when ``GIS_GRID_SCREENSHOTS=docs`` is set: a test run never changes tracked files.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import shapely
import sqlalchemy as sa

from tests.security_support import TEST_PASSWORD, TEST_USERS
from tests.test_browser import PageLog

pytestmark = [pytest.mark.browser, pytest.mark.postgis, pytest.mark.slow]

ZHAOJIA = "511703109"
HESHI = "511703129"
DOCS = (
    Path(__file__).resolve().parents[1] / "docs"
    if os.environ.get("GIS_GRID_SCREENSHOTS") == "docs"
    else Path(tempfile.mkdtemp(prefix="gis_grid_screenshots_"))
)


def _open(browser: Any, base_url: str, path: str, *, role: str = "planner") -> tuple[Any, Any]:
    """A logged-in page (the login cookie) at ``path``, and its log."""
    context = browser.new_context(viewport={"width": 1400, "height": 950}, locale="zh-CN")
    r = context.request.post(
        f"{base_url}/api/v1/auth/login",
        data={"username": TEST_USERS[role], "password": TEST_PASSWORD},
    )
    assert r.ok, r.text()
    page = context.new_page()
    log = PageLog(origin=base_url)
    log.attach(page)
    page.goto(f"{base_url}{path}", wait_until="networkidle", timeout=120_000)
    return page, log


def _login_in_panel(page: Any, role: str = "planner") -> None:
    page.fill("#gg-username", TEST_USERS[role])
    page.fill("#gg-password", TEST_PASSWORD)
    page.click("#gg-login-btn")
    page.wait_for_selector("#gg-whoami:has-text('test.')")


_SCREEN_XY = """([lat, lon]) => {
  const map = window.GG.map();
  const p = map.latLngToContainerPoint([lat, lon]);
  const r = map.getContainer().getBoundingClientRect();
  return [p.x + r.left, p.y + r.top];
}"""


def _interior_vertex(base_url: str, headers: dict[str, str]) -> tuple[str, float, float]:
    """A Zhaojia grid and one of its vertices well inside its village (not on its border)."""
    grids = httpx.get(
        f"{base_url}/api/v1/grids",
        params={"town": ZHAOJIA, "limit": 100},
        headers=headers,
        timeout=60,
    ).json()["features"]
    villages = httpx.get(
        f"{base_url}/api/v1/villages",
        params={"town": ZHAOJIA, "limit": 100},
        headers=headers,
        timeout=60,
    ).json()["features"]
    outline = {v["properties"]["code"]: shapely.geometry.shape(v["geometry"]) for v in villages}
    for feature in grids:
        props = feature["properties"]
        grid = shapely.geometry.shape(feature["geometry"])
        border = outline[props["village_code"]].boundary
        coords = shapely.get_coordinates(grid)[:-1]
        far = [
            (x, y)
            for x, y in coords
            if border.distance(shapely.Point(x, y)) > 0.003  # ~300 m inside the village
        ]
        if props["member"] and far:
            return props["code"], far[0][0], far[0][1]
    pytest.fail("no grid with an interior vertex")


def _start_vertex_edit(
    page: Any, code: str, lon: float, lat: float, *, towards: tuple[float, float] | None = None
) -> None:
    """Select the grid in 'move vertex' mode and drag the vertex at lon/lat by 12 px.

    With ``towards`` (lon, lat), drag it 80 px away from that point instead.
    """
    page.wait_for_function("document.body.dataset.gridsLoaded > 0")
    page.evaluate(
        """(code) => {
             const s = window.GisGridPlanner;
             s.layers.households.remove();  // cluster icons would catch the clicks
             window.GG.map().fitBounds(s.grids.get(code).layer.getBounds(), {animate: false});
           }""",
        code,
    )
    page.click("button[data-mode=edit]")
    inside = page.evaluate(
        """(code) => { const s = window.GisGridPlanner;
             const f = s.grids.get(code).feature; return f.geometry.coordinates; }""",
        code,
    )
    point = shapely.geometry.shape({"type": "MultiPolygon", "coordinates": inside})
    rep = point.representative_point()
    x, y = page.evaluate(_SCREEN_XY, [rep.y, rep.x])
    page.mouse.click(x, y)
    page.wait_for_selector(".marker-icon")
    vx, vy = page.evaluate(_SCREEN_XY, [lat, lon])
    dx, dy = 12.0, 8.0
    if towards is not None:
        cx, cy = page.evaluate(_SCREEN_XY, [towards[1], towards[0]])
        norm = max(((vx - cx) ** 2 + (vy - cy) ** 2) ** 0.5, 1.0)
        dx, dy = 80 * (vx - cx) / norm, 80 * (vy - cy) / norm
    page.mouse.move(vx, vy)
    page.mouse.down()
    page.mouse.move(vx + dx / 2, vy + dy / 2, steps=3)
    page.mouse.move(vx + dx, vy + dy, steps=3)
    page.mouse.up()


def _grid_row(engine: sa.Engine, code: str) -> tuple[int, str]:
    with engine.connect() as conn:
        row = conn.execute(
            sa.text(
                "SELECT version, ST_AsText(geom) FROM grids WHERE code = :c AND valid_to IS NULL"
            ),
            {"c": code},
        ).one()
    return int(row[0]), str(row[1])


@pytest.fixture(scope="module")
def writable_engine(writable_database_url) -> Iterator[sa.Engine]:
    engine = sa.create_engine(writable_database_url)
    yield engine
    engine.dispose()


def test_planner_map_loads_without_errors(browser, writable_server_url):
    page, log = _open(browser, writable_server_url, f"/map/planner?town={ZHAOJIA}")
    page.wait_for_function("document.body.dataset.householdsLoaded > 0", timeout=60_000)
    info = page.evaluate(
        """() => ({grids: window.GisGridPlanner.grids.size,
                   overlays: [...document.querySelectorAll(
                                '.leaflet-control-layers-overlays label')]
                             .map(l => l.textContent.trim())})"""
    )
    assert info["grids"] == 26
    text = " ".join(info["overlays"])
    for label in ("村（社区）", "道路", "住户", "网格（按负荷着色）", "提议方案"):
        assert label in text, (label, text)
    assert page.locator("#gg-planner").inner_text().count("区间内") == 1
    assert page.locator("#gg-msg").inner_text() == ""  # no error reported in the panel
    assert page.evaluate("window.GisGridPlanner.layers.households.getLayers().length") > 5000
    page.wait_for_timeout(500)
    page.screenshot(path=str(DOCS / "planner_map.png"))
    assert log.console_errors == [] and log.failed == [] and log.external == []


def test_vertex_move_preview_then_stale_etag_then_save(
    browser, writable_server_url, writable_engine, auth_headers
):
    headers = auth_headers(writable_server_url)
    code, lon, lat = _interior_vertex(writable_server_url, headers)
    before = _grid_row(writable_engine, code)
    page, log = _open(browser, writable_server_url, f"/map/planner?town={ZHAOJIA}")
    _login_in_panel(page)
    _start_vertex_edit(page, code, lon, lat)

    # The dry run: the new loads of every grid the move changes, nothing stored.
    page.wait_for_function("document.body.dataset.dryRun > 0", timeout=60_000)
    result = page.locator("#gg-result").inner_text()
    assert "预演结果" in result and code in result and "改边" in result
    assert _grid_row(writable_engine, code) == before
    assert page.locator("#gg-save").is_enabled()

    # Someone else renames the grid meanwhile: the page's ETag is stale, the save is refused
    # and the refusal is drawn on the map, at the grid.
    r = httpx.patch(
        f"{writable_server_url}/api/v1/grids/{code}",
        json={"name": "浏览器测试改名"},
        headers={**headers, "If-Match": f'"{code}-v{before[0]}"'},
        timeout=60,
    )
    assert r.status_code == 200, r.text
    renamed = _grid_row(writable_engine, code)
    page.click("#gg-save")
    page.wait_for_selector(".gg-problem-tip", timeout=30_000)
    tip = page.locator(".gg-problem-tip").inner_text()
    assert "412" in tip and "已被他人修改" in tip and code in tip
    assert _grid_row(writable_engine, code) == renamed  # the stale save stored nothing
    page.screenshot(path="/tmp/gis_grid_planner_conflict.png")

    # Reloaded, the same move saves: a new version with the moved vertex, loads updated.
    page.click("#gg-cancel")
    page.wait_for_timeout(300)
    _start_vertex_edit(page, code, lon, lat)
    page.wait_for_function("document.body.dataset.dryRun > 0", timeout=60_000)
    page.click("#gg-save")
    page.wait_for_function(f"document.body.dataset.saved === '{code}'", timeout=60_000)
    version, wkt = _grid_row(writable_engine, code)
    assert version == renamed[0] + 1
    old = shapely.from_wkt(renamed[1])
    new = shapely.from_wkt(wkt)
    assert not new.equals_exact(old, 1e-9)
    assert abs(new.area - old.area) > 0
    assert not shapely.get_coordinates(new).tolist().count([lon, lat])  # the vertex moved
    assert "已保存" in page.locator("#gg-result").inner_text()
    assert log.console_errors == [] or all("412" in e for e in log.console_errors)


def test_move_outside_the_town_is_shown_on_the_map(
    browser, writable_server_url, writable_engine, auth_headers
):
    """A vertex dragged out of the town: the service's refusal is marked where it names."""
    headers = auth_headers(writable_server_url)
    grids = httpx.get(
        f"{writable_server_url}/api/v1/grids",
        params={"town": ZHAOJIA, "limit": 100},
        headers=headers,
        timeout=60,
    ).json()["features"]
    town = httpx.get(
        f"{writable_server_url}/api/v1/layers/towns",
        params={"town": ZHAOJIA},
        headers=headers,
        timeout=60,
    ).json()["features"][0]
    outline = shapely.geometry.shape(town["geometry"])
    code, lon, lat = "", 0.0, 0.0
    for feature in grids:
        coords = shapely.get_coordinates(shapely.geometry.shape(feature["geometry"]))[:-1]
        on_border = [
            (x, y) for x, y in coords if outline.boundary.distance(shapely.Point(x, y)) < 1e-6
        ]
        if len(on_border) > 4:
            code, (lon, lat) = feature["properties"]["code"], on_border[len(on_border) // 2]
            break
    assert code
    before = _grid_row(writable_engine, code)
    page, _ = _open(browser, writable_server_url, f"/map/planner?town={ZHAOJIA}")
    _login_in_panel(page)
    centre = outline.centroid
    _start_vertex_edit(page, code, lon, lat, towards=(centre.x, centre.y))
    page.wait_for_function("document.body.dataset.lastError", timeout=60_000)
    assert page.evaluate("document.body.dataset.lastError") in {"409", "422"}
    tip = page.locator(".gg-problem-tip").first.inner_text()
    assert "未能保存" in tip
    where = page.evaluate(
        """() => { const out = []; window.GG.problemsLayer.eachLayer(l => {
             const p = l.getLatLng(); out.push([p.lng, p.lat]); }); return out; }"""
    )
    # Marked at the overhang the service located (outside the town), not at a default spot.
    assert where and any(not outline.contains(shapely.Point(x, y)) for x, y in where)
    page.screenshot(path="/tmp/gis_grid_planner_refused.png")
    assert _grid_row(writable_engine, code) == before


def test_incident_filters_change_the_choropleth(browser, writable_server_url, auth_headers):
    headers = auth_headers(writable_server_url)
    page, log = _open(browser, writable_server_url, f"/map/incidents?town={ZHAOJIA}")
    page.wait_for_function("document.body.dataset.incidents !== undefined", timeout=60_000)
    total = httpx.get(
        f"{writable_server_url}/api/v1/incidents",
        params={"town": ZHAOJIA, "limit": 1},
        headers=headers,
        timeout=60,
    ).json()["numberMatched"]
    assert int(page.evaluate("document.body.dataset.incidents")) == total
    all_counts = page.evaluate("JSON.parse(document.body.dataset.choropleth)")
    assert sum(all_counts.values()) == total
    overlays = page.locator(".leaflet-control-layers-overlays").inner_text()
    for label in ("网格（事件数）", "事件", "超期事件", "污染排放点", "环境隐患", "AB岗结对"):
        assert label in overlays, (label, overlays)
    page.wait_for_timeout(500)
    page.screenshot(path=str(DOCS / "incident_map.png"))

    # Overdue only: the counts drop to the overdue incidents, per grid.
    overdue = httpx.get(
        f"{writable_server_url}/api/v1/incidents",
        params={"town": ZHAOJIA, "overdue": "true", "limit": 10000},
        headers=headers,
        timeout=60,
    ).json()
    page.check("#gg-overdue")
    page.click("#gg-apply")
    page.wait_for_function(
        f"document.body.dataset.incidents === '{overdue['numberMatched']}'", timeout=60_000
    )
    counts = page.evaluate("JSON.parse(document.body.dataset.choropleth)")
    expected: dict[str, int] = {}
    for f in overdue["features"]:
        expected[f["properties"]["grid_code"]] = expected.get(f["properties"]["grid_code"], 0) + 1
    assert counts == expected
    assert counts != all_counts
    fills = page.evaluate(
        """() => { const out = {}; window.GG.map().eachLayer(l => {
             const p = l.feature && l.feature.properties;
             if (p && p.incident_count !== undefined)
               out[l.feature.properties.code] = l.options.fillColor; }); return out; }"""
    )
    assert len(set(fills.values())) >= 2  # the choropleth has classes

    # A type filter: only that type's incidents.
    page.uncheck("#gg-overdue")
    page.select_option("#gg-type", "T01")
    page.click("#gg-apply")
    t01 = httpx.get(
        f"{writable_server_url}/api/v1/incidents",
        params={"town": ZHAOJIA, "type": "T01", "limit": 1},
        headers=headers,
        timeout=60,
    ).json()["numberMatched"]
    page.wait_for_function(f"document.body.dataset.incidents === '{t01}'", timeout=60_000)
    assert log.console_errors == [] and log.failed == [] and log.external == []


_TILE_PATHS = """() => Object.fromEntries(Object.entries(window.GisGridTiles).map(
  ([name, layer]) => [name, layer.getContainer().querySelectorAll('path').length]))"""


def test_incident_points_come_from_vector_tiles(browser, server_url):
    """Incidents, pollution points and hazards: tiles fetched with the login, drawn, popups."""
    context = browser.new_context(viewport={"width": 1400, "height": 950}, locale="zh-CN")
    r = context.request.post(
        f"{server_url}/api/v1/auth/login",
        data={"username": TEST_USERS["planner"], "password": TEST_PASSWORD},
    )
    assert r.ok, r.text()
    page = context.new_page()
    log = PageLog(origin=server_url)
    log.attach(page)
    tiles: list[tuple[str, int, str]] = []
    page.on(
        "response",
        lambda resp: (
            "/tiles/" in resp.url
            and tiles.append((resp.url, resp.status, resp.headers.get("content-type", "")))
        ),
    )
    page.goto(f"{server_url}/map/incidents?town={ZHAOJIA}", wait_until="networkidle")
    page.wait_for_function("document.body.dataset.incidents !== undefined", timeout=60_000)
    page.wait_for_function(
        "Object.values(window.GisGridTiles).every(l => "
        "l.getContainer().querySelectorAll('path').length > 0)",
        timeout=60_000,
    )
    for layer in ("incidents", "pollution", "hazards"):
        answered = [(u, st, ct) for u, st, ct in tiles if f"/tiles/{layer}/" in u]
        assert answered, layer
        assert {st for _, st, _ in answered} <= {200, 204, 304}, answered
        ok = [ct for _, st, ct in answered if st == 200]
        assert ok and all(ct == "application/vnd.mapbox-vector-tile" for ct in ok), answered
    paths = page.evaluate(_TILE_PATHS)
    assert all(n > 0 for n in paths.values()), paths
    overlays = page.locator(".leaflet-control-layers-overlays").inner_text()
    for label in ("事件", "污染排放点", "环境隐患"):
        assert label in overlays, (label, overlays)

    # A click on an incident drawn from a tile opens a popup with the tile's attributes.
    page.evaluate("window.GG.map().setZoom(15, {animate: false})")
    page.wait_for_load_state("networkidle")
    page.wait_for_function(
        "window.GisGridTiles.incidents.getContainer().querySelectorAll('path').length > 0"
    )
    spots = page.evaluate(
        """() => [...window.GisGridTiles.incidents.getContainer().querySelectorAll('path')]
             .map(p => p.getBoundingClientRect())
             .filter(r => r.width > 0 && r.left > 460 && r.right < 1300 && r.top > 60
                          && r.bottom < 850)
             .map(r => [r.left + r.width / 2, r.top + r.height / 2])"""
    )
    assert spots, "no incident on screen at zoom 15"
    page.mouse.click(*spots[0])
    page.wait_for_selector(".leaflet-popup-content", timeout=10_000)
    page.wait_for_timeout(400)  # the popup fades in
    popup = page.locator(".leaflet-popup-content").inner_text()
    assert "事件" in popup and "编号" in popup and "状态" in popup and "网格" in popup, popup
    assert re.search(r"511703109\d{6}", popup), popup  # the grid code from the tile
    page.screenshot(path=str(DOCS / "incident_map_tiles.png"))

    # Filters reach the tiles: only the matching incidents stay drawn.
    page.evaluate("window.GG.map().closePopup(); window.GG.map().setZoom(13, {animate: false})")
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(300)
    before = page.evaluate(_TILE_PATHS)["incidents"]
    page.check("#gg-overdue")
    page.click("#gg-apply")
    page.wait_for_function("document.body.dataset.incidents < 100", timeout=60_000)
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(500)
    after = page.evaluate(_TILE_PATHS)["incidents"]
    assert 0 < after < before, (before, after)
    assert log.console_errors == [] and log.failed == [] and log.external == []
    context.close()


@pytest.mark.parametrize(("town", "name"), [(ZHAOJIA, "zhaojia"), (HESHI, "heshi")])
def test_plan_page_screenshot(browser, server_url, town, name):
    page, log = _open(browser, server_url, f"/map/plans/{town}?tolerance=0.15")
    page.wait_for_selector("#gg-plan-panel")
    page.wait_for_timeout(800)
    shot = DOCS / f"plan_{name}.png"
    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 30_000
    assert "方案质量" in page.locator("#gg-plan-panel").inner_text()
    assert log.console_errors == [] and log.failed == [] and log.external == []


def test_propose_shows_the_proposal_then_accept_writes_it(
    browser, writable_server_url, writable_engine, auth_headers
):
    headers = auth_headers(writable_server_url)
    grids = httpx.get(
        f"{writable_server_url}/api/v1/grids",
        params={"town": ZHAOJIA, "limit": 100},
        headers=headers,
        timeout=60,
    ).json()["features"]
    load: dict[str, int] = {}
    for f in grids:
        code = f["properties"]["village_code"]
        load[code] = load.get(code, 0) + f["properties"]["households"]
    village = max(load, key=load.__getitem__)  # the largest: the 200-300 band fits it
    page, log = _open(browser, writable_server_url, f"/map/planner?town={ZHAOJIA}")
    _login_in_panel(page)
    page.wait_for_function("document.body.dataset.gridsLoaded > 0")
    page.select_option("#gg-village", village)
    page.click("#gg-propose")
    page.wait_for_selector("#gg-accept", timeout=120_000)
    drawn = page.evaluate("window.GisGridPlanner.layers.proposal.getLayers().length")
    assert drawn >= 2
    result = page.locator("#gg-result").inner_text()
    assert "偏差" in result and "紧凑度" in result and village in result
    page.screenshot(path="/tmp/gis_grid_planner_proposal.png")

    def current() -> list[tuple[str, int]]:
        with writable_engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT code, version FROM grids WHERE village_code = :v "
                    "AND valid_to IS NULL ORDER BY code"
                ),
                {"v": village},
            )
            return [tuple(r) for r in rows]

    before = current()
    page.click("#gg-accept")
    page.wait_for_function(
        "document.querySelector('#gg-result').innerText.includes('已保存')", timeout=120_000
    )
    after = current()
    assert len(after) == drawn and after != before
    assert log.console_errors == [] and log.failed == []
