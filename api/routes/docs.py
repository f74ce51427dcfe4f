"""``/docs`` and ``/redoc``: the OpenAPI documentation with locally served assets."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse

from api.vendor import REDOC, SWAGGER_UI, asset_url

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

#: Where the app mounts ``api/static``.
API_STATIC_NAME = "api-static"


def _static(request: Request) -> str:
    return str(request.app.url_path_for(API_STATIC_NAME, path="/")).rstrip("/")


@router.get("/docs", response_class=HTMLResponse)
def swagger_ui(request: Request) -> HTMLResponse:
    """Swagger UI, from the pinned swagger-ui-dist copy."""
    static = _static(request)
    return get_swagger_ui_html(
        openapi_url=str(request.app.openapi_url),
        title=f"{request.app.title} – Swagger UI",
        oauth2_redirect_url="/docs/oauth2-redirect",
        swagger_js_url=asset_url(static, SWAGGER_UI, "swagger-ui-bundle.js"),
        swagger_css_url=asset_url(static, SWAGGER_UI, "swagger-ui.css"),
        swagger_favicon_url=asset_url(static, SWAGGER_UI, "favicon-32x32.png"),
        # No online validator badge: it would send the spec's URL to validator.swagger.io.
        swagger_ui_parameters={"validatorUrl": None},
    )


@router.get("/docs/oauth2-redirect", response_class=HTMLResponse)
def swagger_ui_redirect() -> HTMLResponse:
    """OAuth2 redirect page of Swagger UI (used once the API has logins)."""
    return get_swagger_ui_oauth2_redirect_html()


@router.get("/redoc", response_class=HTMLResponse)
def redoc(request: Request) -> HTMLResponse:
    """ReDoc, from the pinned redoc copy (no Google fonts, no remote images)."""
    static = _static(request)
    page = get_redoc_html(
        openapi_url=str(request.app.openapi_url),
        title=f"{request.app.title} – ReDoc",
        redoc_js_url=asset_url(static, REDOC, "bundles/redoc.standalone.js"),
        redoc_favicon_url=asset_url(static, SWAGGER_UI, "favicon-32x32.png"),
        with_google_fonts=False,
    )
    # ReDoc 2 always shows its vendor's logo from cdn.redoc.ly in the menu footer; images are
    # restricted to the platform so the page asks nothing of the internet (the logo hides
    # itself when it cannot load).
    page.headers["Content-Security-Policy"] = "img-src 'self' data:"
    return page
