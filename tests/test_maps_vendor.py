"""The pinned browser assets: exact versions, committed files matching their manifest."""

from __future__ import annotations

import json
import re

import pytest

from api import vendor as api_vendor
from maps import vendor as maps_vendor
from maps.vendor import LICENCE_IN_README, MAP_PACKAGES, folium_default_css, folium_default_js

ALL = [
    (maps_vendor.MAP_PACKAGES, maps_vendor.VENDOR_DIR),
    (api_vendor.DOCS_PACKAGES, api_vendor.VENDOR_DIR),
]


@pytest.mark.parametrize(("packages", "target"), ALL)
def test_vendored_files_match_manifest(packages, target):
    assert maps_vendor.verify_packages(packages, target) == []


@pytest.mark.parametrize(("packages", "target"), ALL)
def test_versions_are_exact_and_licences_recorded(packages, target):
    vendor_md = (target / "VENDOR.md").read_text(encoding="utf-8")
    manifest = json.loads((target / "manifest.json").read_text(encoding="utf-8"))
    assert len(manifest) == len(packages)
    for package in packages:
        assert re.fullmatch(r"\d+\.\d+\.\d+", package.version), package.spec
        assert package.license
        assert f"| {package.name} | {package.version} | {package.license} |" in vendor_md
        if package.name in LICENCE_IN_README:  # no LICENSE file: the README states the licence
            readme = (target / package.directory / "README.md").read_text(encoding="utf-8")
            assert "beer-ware license" in readme.lower(), package.spec
        else:
            assert any("LICEN" in f for f in package.files), f"{package.spec} ships no licence"


@pytest.mark.parametrize(("packages", "target"), ALL)
def test_only_listed_files_are_vendored(packages, target):
    listed = {target / p.directory / f for p in packages for f in p.files}
    present = {p for p in target.rglob("*") if p.is_file()} - {
        target / "VENDOR.md",
        target / "manifest.json",
    }
    assert present == listed


def test_folium_assets_replace_every_cdn_asset():
    import folium
    import folium.folium

    local_js = dict(folium_default_js("/static"))
    local_css = dict(folium_default_css("/static"))
    assert set(local_js) == {name for name, _ in folium.folium._default_js}
    # glyphicons (Bootstrap 3) is deliberately dropped: icons use Font Awesome (prefix="fa").
    assert set(local_css) == {name for name, _ in folium.folium._default_css} - {"glyphicons_css"}
    for url in [*local_js.values(), *local_css.values()]:
        assert (maps_vendor.STATIC_DIR / url.removeprefix("/static/")).is_file(), url


def test_css_references_resolve():
    """Images and fonts referenced by the vendored stylesheets are vendored too."""
    for package in MAP_PACKAGES:
        for rel in package.files:
            if not rel.endswith(".css"):
                continue
            path = maps_vendor.VENDOR_DIR / package.directory / rel
            for ref in re.findall(
                r"url\(['\"]?([^)'\"]+)['\"]?\)", path.read_text(encoding="utf-8")
            ):
                if ref.startswith(("data:", "#")) or ref.endswith(".ttf"):
                    continue  # inline, or a fallback after the vendored woff2
                assert (path.parent / ref.split("?")[0].split("#")[0]).resolve().is_file(), (
                    rel,
                    ref,
                )
