"""The login page (``/login``) and the session control every map page carries.

Plain HTML (no folium, no web framework): a user name and password form that
``maps/static/planner/login.js`` posts to the service's ``POST /api/v1/auth/login``; the
answer's token is kept for the tab (sessionStorage, for the pages' writes) and its HttpOnly
cookie opens the pages. A refusal (wrong password, account locked, service down) is shown in
place; a success goes to ``next``, a path on this site checked by the service. Labels are
Chinese, with English one click away (``?lang=en``). The page runs no inline script (its
settings are a JSON block), so the service can serve it under a strict
Content-Security-Policy.

:func:`add_session` puts the logged-in user's name and a logout button on a folium page
(``maps/static/planner/session.js``).
"""

from __future__ import annotations

import html
import json
from typing import Any
from urllib.parse import quote

import folium

from maps._page import Lang

__all__ = ["LOGIN_LABELS", "SESSION_LABELS", "add_session", "build_login_page"]

LOGIN_LABELS: dict[str, dict[str, str]] = {
    "zh": {
        "title": "网格化管理平台 · 登录",
        "heading": "网格化管理平台",
        "subtitle": "请登录后使用地图和数据",
        "username": "用户名",
        "password": "密码",
        "submit": "登录",
        "logging_in": "正在登录…",
        "missing": "请输入用户名和密码",
        "wrong": "用户名或密码错误",
        "locked": "登录失败次数过多，账户已暂时锁定，请约 {minutes} 分钟后再试",
        "unavailable": "服务暂不可用，请稍后再试",
        "failed": "登录失败",
        "logged_out": "您已退出登录",
        "next": "登录后前往",
        "other_lang": "English",
    },
    "en": {
        "title": "Grid management · Log in",
        "heading": "Grid management platform",
        "subtitle": "Log in to use the maps and data",
        "username": "User name",
        "password": "Password",
        "submit": "Log in",
        "logging_in": "Logging in…",
        "missing": "Enter your user name and password",
        "wrong": "Wrong user name or password",
        "locked": "Too many failed logins: the account is locked, try again in about {minutes} min",
        "unavailable": "The service is unavailable, try again later",
        "failed": "Login failed",
        "logged_out": "You have logged out",
        "next": "Then going to",
        "other_lang": "中文",
    },
}

SESSION_LABELS: dict[str, dict[str, str]] = {
    "zh": {"logout": "退出登录", "user": "当前用户", "login": "登录"},
    "en": {"logout": "Log out", "user": "Logged in as", "login": "Log in"},
}


def build_login_page(
    *,
    next_url: str,
    lang: Lang = "zh",
    static_url: str = "/static",
    api_url: str = "/api/v1",
    logged_out: bool = False,
) -> str:
    """Render the login page.

    Parameters
    ----------
    next_url
        Where a successful login goes: a path on this site, already checked by the caller
        (:func:`api.pages_auth.safe_next`).
    lang
        ``zh`` (default) or ``en``.
    static_url, api_url
        Where ``maps/static`` and the API are served.
    logged_out
        Say that the user has just logged out.

    Returns
    -------
    str
        The HTML page.

    Examples
    --------
    >>> "用户名" in build_login_page(next_url="/map")
    True
    """
    labels = LOGIN_LABELS[lang]
    static = html.escape(static_url.rstrip("/"))
    config = {"api": api_url.rstrip("/"), "next": next_url, "lang": lang, "labels": labels}
    payload = json.dumps(config, ensure_ascii=False).replace("</", "<\\/")
    other = "en" if lang == "zh" else "zh"
    switch = html.escape(f"?lang={other}&next={quote(next_url, safe='')}")
    notice = (
        f'<p class="gg-login-msg" id="gg-login-notice">{html.escape(labels["logged_out"])}</p>'
        if logged_out
        else ""
    )
    return f"""<!DOCTYPE html>
<html lang="{"zh-CN" if lang == "zh" else "en"}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(labels["title"])}</title>
<link rel="icon" href="{static}/img/favicon.svg">
<link rel="stylesheet" href="{static}/planner/login.css">
<script type="application/json" id="gg-login-config">{payload}</script>
<script defer src="{static}/planner/api.js"></script>
<script defer src="{static}/planner/login.js"></script>
</head>
<body class="gg-login-body">
<main class="gg-login-card">
  <div class="gg-login-head">
    <img src="{static}/img/favicon.svg" alt="" width="36" height="36">
    <div><h1>{html.escape(labels["heading"])}</h1>
    <p class="gg-login-sub">{html.escape(labels["subtitle"])}</p></div>
  </div>
  {notice}
  <form id="gg-login-form" method="post" action="{html.escape(api_url.rstrip("/"))}/auth/login"
        autocomplete="on" novalidate>
    <label for="gg-login-user">{html.escape(labels["username"])}</label>
    <input id="gg-login-user" name="username" autocomplete="username" maxlength="200"
           autofocus>
    <label for="gg-login-password">{html.escape(labels["password"])}</label>
    <input id="gg-login-password" name="password" type="password" maxlength="1000"
           autocomplete="current-password">
    <button id="gg-login-submit" type="submit">{html.escape(labels["submit"])}</button>
    <p id="gg-login-msg" class="gg-login-msg" role="alert" aria-live="polite"></p>
  </form>
  <p class="gg-login-foot">{html.escape(labels["next"])}: <code id="gg-login-next">{
        html.escape(next_url)
    }</code> · <a href="{switch}" id="gg-login-lang">{html.escape(labels["other_lang"])}</a></p>
</main>
</body>
</html>
"""


def add_session(
    fmap: folium.Map,
    *,
    static_url: str = "/static",
    api_url: str = "/api/v1",
    lang: Lang = "zh",
    with_api: bool = True,
) -> None:
    """Show the logged-in user and a logout button on a page (bottom left).

    Parameters
    ----------
    fmap
        The page's map.
    static_url, api_url
        Where ``maps/static`` and the API are served.
    lang
        Language of the control.
    with_api
        Also load ``api.js`` (pages that load it already pass ``False``).
    """
    base = html.escape(f"{static_url.rstrip('/')}/planner")
    data: dict[str, Any] = {
        "api": api_url.rstrip("/"),
        "labels": SESSION_LABELS[lang],
    }
    attr = html.escape(json.dumps(data, ensure_ascii=False), quote=True)
    tags = f'<script defer src="{base}/api.js"></script>' if with_api else ""
    tags += (
        f'<link rel="stylesheet" href="{base}/login.css">'
        f'<script defer src="{base}/session.js" data-session="{attr}"></script>'
    )
    root: Any = fmap.get_root()
    root.header.add_child(folium.Element(tags))
