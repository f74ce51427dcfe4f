"""The login page, the redirect of pages opened without a login, logout, and members' maps.

Over HTTP: ``/login`` (local assets, strict CSP, Chinese and English), ``next`` accepted only
as a path on this site, map pages answering a browser with ``303 → /login?next=...`` and
everything else with the JSON 401, ``POST /logout`` revoking the session, and a member's
pages holding no other grid's code (also on a day they cover an absent member's grid). In a
real browser (Debian's chromium via Playwright): logging in through the form, refusals and
the lockout shown in place, a logged-out visit to a map coming back to it after the login,
the logout button, and a member's maps drawing only their grid.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import sqlalchemy as sa

from gis_grid.security.context import CHINA_TIME, clear_cache
from tests.security_support import TEST_PASSWORD, TEST_USERS
from tests.test_browser import PageLog

pytestmark = [pytest.mark.postgis]

ZHAOJIA = "511703109"
HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
PAGES = (
    "/map",
    f"/map/planner?town={ZHAOJIA}",
    f"/map/incidents?town={ZHAOJIA}",
    f"/map/plans/{ZHAOJIA}",
)
SHOTS = Path(tempfile.mkdtemp(prefix="gis_grid_login_"))


def _config(page: str) -> dict[str, Any]:
    found = re.search(r'<script type="application/json" id="gg-login-config">(.*?)</script>', page)
    assert found, "login config missing"
    return json.loads(found.group(1).replace("<\\/", "</"))


def _page_config(page: str) -> dict[str, Any]:
    found = re.search(r"window\.GIS_GRID_PAGE = (\{.*?\});</script>", page)
    assert found, "page config missing"
    return json.loads(found.group(1).replace("<\\/", "</"))


def _grid_codes(engine: sa.Engine) -> set[str]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT DISTINCT code FROM grids"))
        return {str(r[0]) for r in rows}


# ---- the login page over HTTP ---------------------------------------------------------------


def test_login_page_is_local_and_strict(server_url):
    r = httpx.get(f"{server_url}/login", headers=HTML, timeout=60)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    page = r.text
    for label in ("网格化管理平台", "用户名", "密码", "登录", "English"):
        assert label in page, label
    cfg = _config(page)
    assert cfg["next"] == "/map" and cfg["api"] == "/api/v1"
    # No inline script to run (the settings are a JSON block), every asset served here.
    assert not re.search(r"<script(?![^>]*(src=|application/json))", page)
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', page)
    assert len(assets) >= 4
    for asset in assets:
        assert httpx.get(f"{server_url}{asset}", timeout=60).status_code == 200, asset
    assert "http://" not in page and "https://" not in page and "@latest" not in page
    en = httpx.get(f"{server_url}/login", params={"lang": "en"}, timeout=60).text
    assert "User name" in en and "Password" in en and "中文" in en


@pytest.mark.parametrize(
    "target",
    ["/map/incidents?town=511703109&type=T01", "/map", "/map/plans/511703109?target=200"],
)
def test_next_paths_on_this_site_are_kept(server_url, target):
    r = httpx.get(f"{server_url}/login", params={"next": target}, timeout=60)
    assert r.status_code == 200, r.text
    assert _config(r.text)["next"] == target


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example/map",
        "https://evil.example/",
        "http:/evil.example",
        "javascript:alert(1)",
        "/\\evil.example",
        "map/planner",
        "/map\nSet-Cookie:x",
        "/login?next=//evil.example",
        "/" + "a" * 2100,
    ],
)
def test_next_elsewhere_is_refused(server_url, target):
    r = httpx.get(f"{server_url}/login", params={"next": target}, timeout=60)
    assert r.status_code == 422, r.text
    assert "next" in r.text


@pytest.mark.parametrize("path", PAGES)
def test_a_browser_without_login_goes_to_the_login_page(server_url, path):
    r = httpx.get(f"{server_url}{path}", headers=HTML, timeout=60)
    assert r.status_code == 303, r.text
    location = r.headers["location"]
    assert location.startswith("/login?next=")
    assert parse_qs(urlsplit(location).query)["next"] == [path]
    # A forged cookie is no login either.
    r = httpx.get(
        f"{server_url}{path}", headers=HTML, cookies={"gis_grid_token": "x.y.z"}, timeout=60
    )
    assert r.status_code == 303 and r.headers["location"] == location


@pytest.mark.parametrize("path", [*PAGES, "/api/v1/towns", "/tiles/incidents/13/6638/3349.pbf"])
def test_other_clients_keep_the_json_401(server_url, path):
    r = httpx.get(f"{server_url}{path}", timeout=60)
    assert r.status_code == 401, (path, r.text)
    assert r.headers["content-type"].startswith("application/json")
    assert "not logged in" in r.json()["detail"]
    if path.startswith(("/api", "/tiles")):  # API routes: JSON even for a browser
        r = httpx.get(f"{server_url}{path}", headers=HTML, timeout=60)
        assert r.status_code == 401


def test_logout_revokes_the_cookie_and_the_token(server_url):
    with httpx.Client(base_url=server_url, timeout=60) as client:
        r = client.post(
            "/api/v1/auth/login",
            json={"username": TEST_USERS["analyst"], "password": TEST_PASSWORD},
        )
        assert r.status_code == 200, r.text
        token = r.json()["access_token"]
        assert client.get("/map", headers=HTML).status_code == 200  # the cookie opens pages
        r = client.post("/logout", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 204, r.text
        assert "gis_grid_token" not in client.cookies
        gone = httpx.get(
            f"{server_url}/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}
        )
        assert gone.status_code == 401
        assert client.get("/map", headers=HTML).status_code == 303
    # Nothing to revoke, or a forged token: still 204, nothing else happens.
    assert httpx.post(f"{server_url}/logout", timeout=60).status_code == 204
    r = httpx.post(f"{server_url}/logout", headers={"Authorization": "Bearer a.b.c"}, timeout=60)
    assert r.status_code == 204


# ---- a member's pages over HTTP ---------------------------------------------------------------


def _member_grids(base_url: str, auth_headers) -> tuple[str, ...]:
    me = httpx.get(
        f"{base_url}/api/v1/auth/me", headers=auth_headers(base_url, "member"), timeout=60
    ).json()
    assert me["role"] == "member" and me["grids"], me
    return tuple(me["grids"])


def _assert_only(page: str, visible: tuple[str, ...], every: set[str]) -> None:
    others = sorted(code for code in every - set(visible) if code in page)
    assert not others, f"other grids in the page: {others[:5]}"
    assert visible[0] in page


def test_member_pages_hold_only_their_grids(server_url, auth_headers, loaded_engine):
    visible = _member_grids(server_url, auth_headers)
    every = _grid_codes(loaded_engine)
    headers = auth_headers(server_url, "member")
    for path in (f"/map/planner?town={ZHAOJIA}", f"/map/incidents?town={ZHAOJIA}", "/map"):
        r = httpx.get(f"{server_url}{path}", headers=headers, timeout=120)
        assert r.status_code == 200, (path, r.text)
        _assert_only(r.text, visible, every)
        if path != "/map":
            assert _page_config(r.text)["grids"] == list(visible)
    cfg = _page_config(
        httpx.get(
            f"{server_url}/map/incidents", params={"town": ZHAOJIA}, headers=headers, timeout=120
        ).text
    )
    assert cfg["tiles"]["layers"] == ["incidents"]  # other layers' tiles hold every grid
    # The whole town's plan is not a member's page.
    r = httpx.get(f"{server_url}/map/plans/{ZHAOJIA}", headers=headers, timeout=120)
    assert r.status_code == 403 and "member" in r.json()["detail"]
    r = httpx.get(
        f"{server_url}/map/plans/{ZHAOJIA}",
        headers={**headers, **HTML},
        timeout=120,
    )
    assert r.status_code == 403 and "无权访问" in r.text and "/login?next=" in r.text
    # A planner's page holds every grid.
    planner = httpx.get(
        f"{server_url}/map/incidents",
        params={"town": ZHAOJIA},
        headers=auth_headers(server_url, "planner"),
        timeout=120,
    )
    cfg = _page_config(planner.text)
    assert cfg["grids"] is None and cfg["tiles"]["layers"] == ["incidents", "pollution", "hazards"]


@pytest.fixture
def covering(writable_server_url, writable_database_url, auth_headers) -> Iterator[tuple[str, str]]:
    """Today, the member of a grid the test member covers (AB post) is absent.

    The town has no stored pairing, so the day's cover is computed: the members of the
    neighbouring grids are made absent in turn until the test member is the one covering.
    Yields ``(own grid, covered grid)``; the absence is deleted afterwards, and the grids
    cached for the member forgotten (the cache is per process, and the other servers of the
    test session run in this one).
    """
    admin = auth_headers(writable_server_url, "admin")
    own = _member_grids(writable_server_url, auth_headers)[0]
    me = httpx.get(
        f"{writable_server_url}/api/v1/auth/me",
        headers=auth_headers(writable_server_url, "member"),
        timeout=60,
    ).json()
    engine = sa.create_engine(writable_database_url)
    try:
        with engine.connect() as conn:
            candidates = conn.execute(
                sa.text(
                    "SELECT m.code, m.grid_code FROM members m JOIN grids g "
                    "ON g.code = m.grid_code AND g.valid_to IS NULL "
                    "JOIN grids o ON o.code = :own AND o.valid_to IS NULL "
                    "WHERE m.status = 'appointed' AND m.grid_code <> :own "
                    "AND m.grid_code LIKE :town ORDER BY ST_Distance(g.geom, o.geom), m.code"
                ),
                {"own": own, "town": f"{own[:9]}%"},
            ).all()
    finally:
        engine.dispose()
    today = dt.datetime.now(CHINA_TIME).date()
    found = None
    for member_code, grid_code in candidates[:8]:
        r = httpx.post(
            f"{writable_server_url}/api/v1/members/{member_code}/absences",
            json={"starts_on": str(today), "ends_on": str(today), "reason": "测试：病假"},
            headers=admin,
            timeout=60,
        )
        assert r.status_code == 201, r.text
        absence = r.json()["id"]
        cover = httpx.get(
            f"{writable_server_url}/api/v1/towns/{own[:9]}/cover",
            params={"date": str(today)},
            headers=admin,
            timeout=120,
        ).json()
        if any(
            c["grid_code"] == grid_code and c["cover_member"]["code"] == me["member_code"]
            for c in cover["data"]
        ):
            found = (str(grid_code), absence)
            break
        httpx.delete(f"{writable_server_url}/api/v1/absences/{absence}", headers=admin)
    assert found, f"{own}'s member covers none of the nearest grids"
    clear_cache()  # the server runs in this process: forget the grids cached before
    yield own, found[0]
    httpx.delete(f"{writable_server_url}/api/v1/absences/{found[1]}", headers=admin, timeout=60)
    clear_cache()


def test_member_pages_add_the_grid_they_cover_today(
    writable_server_url, writable_database_url, auth_headers, covering
):
    own, covered = covering
    visible = _member_grids(writable_server_url, auth_headers)
    assert set(visible) == {own, covered}
    engine = sa.create_engine(writable_database_url)
    try:
        every = _grid_codes(engine)
    finally:
        engine.dispose()
    headers = auth_headers(writable_server_url, "member")
    for path in (f"/map/planner?town={ZHAOJIA}", f"/map/incidents?town={ZHAOJIA}"):
        page = httpx.get(f"{writable_server_url}{path}", headers=headers, timeout=120).text
        _assert_only(page, visible, every)
        assert covered in page
        assert sorted(_page_config(page)["grids"]) == sorted(visible)


# ---- in the browser -----------------------------------------------------------------------------


def _context(browser: Any) -> Any:
    return browser.new_context(viewport={"width": 1400, "height": 950}, locale="zh-CN")


def _log_in(page: Any, role: str, password: str = TEST_PASSWORD) -> None:
    page.fill("#gg-login-user", TEST_USERS[role])
    page.fill("#gg-login-password", password)
    page.click("#gg-login-submit")


@pytest.mark.browser
def test_browser_login_reaches_the_planner_map(browser, server_url):
    context = _context(browser)
    page = context.new_page()
    log = PageLog(origin=server_url)
    log.attach(page)
    target = f"/map/planner?town={ZHAOJIA}"
    page.goto(f"{server_url}{target}", wait_until="networkidle", timeout=120_000)
    assert urlsplit(page.url).path == "/login"  # sent to the login page
    assert page.locator("#gg-login-next").inner_text() == target
    page.screenshot(path=str(SHOTS / "login.png"))

    _log_in(page, "planner", "wrong password")
    page.wait_for_selector("#gg-login-msg.gg-err")
    assert page.locator("#gg-login-msg").inner_text() == "用户名或密码错误"
    assert urlsplit(page.url).path == "/login"
    page.screenshot(path=str(SHOTS / "login_wrong_password.png"))

    _log_in(page, "planner")
    page.wait_for_url(f"{server_url}{target}", timeout=60_000)
    page.wait_for_function("document.body.dataset.gridsLoaded > 0", timeout=60_000)
    assert page.evaluate("window.GisGridPlanner.grids.size") == 26
    # The tab holds the token: the planner's edits need no second login.
    assert page.evaluate("window.GisGridApi.token()") != ""
    page.wait_for_selector("#gg-session-user:has-text('test.planner')")
    assert page.locator("#gg-login").is_hidden()
    page.screenshot(path=str(SHOTS / "login_then_planner.png"))
    # The one failure: the wrong password's 401 (which chromium also logs on the console).
    assert [f for f in log.failed if "/auth/login" not in f] == [] and len(log.failed) == 1
    assert all("401" in e for e in log.console_errors) and len(log.console_errors) <= 1
    assert log.external == []
    context.close()


@pytest.mark.browser
def test_browser_logged_out_incident_map_comes_back_after_login_then_logout(browser, server_url):
    context = _context(browser)
    page = context.new_page()
    log = PageLog(origin=server_url)
    log.attach(page)
    target = f"/map/incidents?town={ZHAOJIA}&type=T01"
    page.goto(f"{server_url}{target}", wait_until="networkidle", timeout=120_000)
    assert urlsplit(page.url).path == "/login"
    _log_in(page, "admin")
    page.wait_for_url(f"{server_url}{target}", timeout=60_000)
    page.wait_for_function("document.body.dataset.incidents !== undefined", timeout=60_000)
    assert page.locator("#gg-type").input_value() == "T01"  # the filters came back too
    page.wait_for_selector("#gg-session-user:has-text('test.admin')")
    page.screenshot(path=str(SHOTS / "login_then_incidents.png"))

    page.click("#gg-logout")
    page.wait_for_url(re.compile(r".*/login\?logged_out=1.*"), timeout=60_000)
    assert "已退出登录" in page.locator("#gg-login-notice").inner_text()
    assert page.evaluate("window.GisGridApi.token()") == ""
    page.screenshot(path=str(SHOTS / "logged_out.png"))
    # The session is over: the map sends the browser to the login page again.
    page.goto(f"{server_url}{target}", wait_until="networkidle", timeout=120_000)
    assert urlsplit(page.url).path == "/login"
    assert log.console_errors == [] and log.external == []
    context.close()


@pytest.mark.browser
def test_browser_shows_the_lockout(browser, writable_server_url):
    """Repeated failures lock the account (429): the page says for how long."""
    context = _context(browser)
    page = context.new_page()
    page.goto(f"{writable_server_url}/login?lang=en", wait_until="networkidle")
    # (The login page's CSP forbids eval: wait on selectors, not on JavaScript predicates.)
    for _ in range(8):
        _log_in(page, "reader", "not the password")
        page.wait_for_selector("body[data-login-status]")
        if page.get_attribute("body", "data-login-status") == "429":
            break
        page.evaluate("delete document.body.dataset.loginStatus")
    assert page.get_attribute("body", "data-login-status") == "429"
    text = page.locator("#gg-login-msg").inner_text()
    assert "locked" in text and re.search(r"\d+ min", text), text
    # Even the right password is refused while locked; the page stays on the form.
    page.evaluate("delete document.body.dataset.loginStatus")
    _log_in(page, "reader")
    page.wait_for_selector("body[data-login-status='429']")
    assert urlsplit(page.url).path == "/login"
    page.screenshot(path=str(SHOTS / "login_locked.png"))
    context.close()


@pytest.mark.browser
def test_browser_member_sees_only_their_grid(browser, server_url, auth_headers):
    visible = _member_grids(server_url, auth_headers)
    context = _context(browser)
    page = context.new_page()
    log = PageLog(origin=server_url)
    log.attach(page)
    grids_requests: list[str] = []
    page.on("request", lambda req: "/api/v1/grids" in req.url and grids_requests.append(req.url))
    page.goto(f"{server_url}/login?next=/map/planner%3Ftown%3D{ZHAOJIA}")
    _log_in(page, "member")
    page.wait_for_url(f"{server_url}/map/planner?town={ZHAOJIA}", timeout=60_000)
    page.wait_for_function("document.body.dataset.gridsLoaded !== undefined", timeout=60_000)
    shown = page.evaluate("[...window.GisGridPlanner.grids.keys()]")
    assert sorted(shown) == sorted(visible)
    # Only the member's grids were asked for, one by one (never the town's list).
    assert grids_requests and all(
        urlsplit(u).path.removeprefix("/api/v1/grids/") in visible for u in grids_requests
    )
    # A member cannot edit grids: the tools are hidden and the page says it is read only.
    assert page.locator('[data-mode="edit"]').is_hidden()
    assert page.locator("#gg-propose").is_hidden()
    assert "只读" in page.locator("#gg-msg").inner_text()
    page.wait_for_timeout(500)
    page.screenshot(path=str(SHOTS / "member_planner.png"))

    page.goto(f"{server_url}/map/incidents?town={ZHAOJIA}", wait_until="networkidle")
    page.wait_for_function("document.body.dataset.incidents !== undefined", timeout=60_000)
    counts = page.evaluate("JSON.parse(document.body.dataset.choropleth)")
    assert set(counts) <= set(visible)
    drawn = page.evaluate(
        """() => { const out = []; window.GG.map().eachLayer(l => {
             const p = l.feature && l.feature.properties;
             if (p && p.incident_count !== undefined) out.push(p.code); }); return out; }"""
    )
    assert sorted(drawn) == sorted(visible)
    page.wait_for_timeout(500)
    page.screenshot(path=str(SHOTS / "member_incidents.png"))
    assert log.console_errors == [] and log.failed == [] and log.external == []
    context.close()
