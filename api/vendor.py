"""Pinned browser assets of the API's documentation pages (Swagger UI and ReDoc).

FastAPI's ``/docs`` and ``/redoc`` load their JavaScript from jsDelivr at floating major
versions (``swagger-ui-dist@5``, ``redoc@2``). The platform serves exact versions itself, so
the docs work offline. Fetch or update with ``python -m api.vendor`` (uses ``npm pack``).
"""

from __future__ import annotations

from pathlib import Path

from maps.vendor import VendorPackage, asset_url, fetch_packages

__all__ = [
    "DOCS_PACKAGES",
    "REDOC",
    "STATIC_DIR",
    "SWAGGER_UI",
    "VENDOR_DIR",
    "asset_url",
]

#: Static files of the ``api`` package (mounted at ``/static/api``).
STATIC_DIR = Path(__file__).resolve().parent / "static"
VENDOR_DIR = STATIC_DIR / "vendor"

SWAGGER_UI = VendorPackage(
    "swagger-ui-dist",
    "5.35.0",
    "Apache-2.0",
    ("LICENSE", "NOTICE", "swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"),
)
REDOC = VendorPackage(
    "redoc",
    "2.5.2",
    "MIT",
    ("LICENSE", "bundles/redoc.standalone.js", "bundles/redoc.standalone.js.LICENSE.txt"),
)
DOCS_PACKAGES: tuple[VendorPackage, ...] = (SWAGGER_UI, REDOC)


def main() -> None:
    """Fetch the documentation packages into :data:`VENDOR_DIR` (``python -m api.vendor``)."""
    fetch_packages(DOCS_PACKAGES, VENDOR_DIR)


if __name__ == "__main__":
    main()
