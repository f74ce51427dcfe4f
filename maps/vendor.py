"""Pinned third-party browser assets, served by the platform itself.

Folium's maps load Leaflet, jQuery, Bootstrap, Font Awesome and friends from public CDNs by
default. The platform runs on village and town networks that may have no internet (and CDNs
are unreliable from China anyway), so every asset a page needs is copied from an npm package
at an exact version into ``maps/static/vendor/<name>@<version>/`` and served locally. Nothing
here is ever ``@latest``: changing a version is a reviewed edit of :data:`MAP_PACKAGES`,
followed by::

    python -m maps.vendor            # fetch with `npm pack`, copy the listed files, write VENDOR.md

Only the files a page actually loads are copied (no source maps, no sources), and
``VENDOR.md`` / ``manifest.json`` record each file's size and SHA-256 so a test can verify
the committed copies.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "LICENCE_IN_README",
    "MAP_PACKAGES",
    "STATIC_DIR",
    "VENDOR_DIR",
    "VendorPackage",
    "asset_url",
    "fetch_packages",
    "folium_default_css",
    "folium_default_js",
    "marker_cluster_css",
    "marker_cluster_js",
    "vector_grid_js",
    "verify_packages",
]

#: Static files of the ``maps`` package (mounted by the service, e.g. at ``/static``).
STATIC_DIR = Path(__file__).resolve().parent / "static"
#: Where pinned npm packages are copied.
VENDOR_DIR = STATIC_DIR / "vendor"


@dataclass(frozen=True)
class VendorPackage:
    """One npm package pinned at an exact version, and the files of it that pages load.

    Parameters
    ----------
    name
        npm package name, e.g. ``"leaflet"`` or ``"@fortawesome/fontawesome-free"``.
    version
        Exact version (never a range or tag).
    license
        SPDX identifier of the package's licence.
    files
        Paths inside the package (relative to its root) to copy, licence file included.
    """

    name: str
    version: str
    license: str
    files: tuple[str, ...]

    @property
    def spec(self) -> str:
        """The exact npm spec, ``name@version``."""
        return f"{self.name}@{self.version}"

    @property
    def directory(self) -> str:
        """Directory name under the vendor dir: the spec without the npm scope."""
        return f"{self.name.rsplit('/', 1)[-1]}@{self.version}"


LEAFLET = VendorPackage(
    "leaflet",
    "1.9.4",
    "BSD-2-Clause",
    (
        "LICENSE",
        "dist/leaflet.js",
        "dist/leaflet.css",
        "dist/images/layers.png",
        "dist/images/layers-2x.png",
        "dist/images/marker-icon.png",
        "dist/images/marker-icon-2x.png",
        "dist/images/marker-shadow.png",
    ),
)
JQUERY = VendorPackage("jquery", "3.7.1", "MIT", ("LICENSE.txt", "dist/jquery.min.js"))
BOOTSTRAP = VendorPackage(
    "bootstrap",
    "5.2.2",
    "MIT",
    ("LICENSE", "dist/js/bootstrap.bundle.min.js", "dist/css/bootstrap.min.css"),
)
# Font Awesome: icons CC-BY-4.0, fonts OFL-1.1, code MIT. Only the woff2 fonts are copied:
# every browser the platform supports picks them before the .ttf fallbacks in all.min.css.
FONTAWESOME = VendorPackage(
    "@fortawesome/fontawesome-free",
    "6.2.0",
    "CC-BY-4.0 AND OFL-1.1 AND MIT",
    (
        "LICENSE.txt",
        "css/all.min.css",
        "webfonts/fa-brands-400.woff2",
        "webfonts/fa-regular-400.woff2",
        "webfonts/fa-solid-900.woff2",
        "webfonts/fa-v4compatibility.woff2",
    ),
)
# folium pins Leaflet.awesome-markers 2.0.2 from cdnjs, which npm does not carry; 2.0.5 is the
# same plugin (maintained fork of lvoogdt's) with the same API and CSS classes.
AWESOME_MARKERS = VendorPackage(
    "leaflet.awesome-markers",
    "2.0.5",
    "ISC",
    (
        "LICENSE",
        "dist/leaflet.awesome-markers.js",
        "dist/leaflet.awesome-markers.css",
        "dist/images/markers-soft.png",
        "dist/images/markers-soft@2x.png",
        "dist/images/markers-shadow.png",
        "dist/images/markers-shadow@2x.png",
    ),
)
MARKER_CLUSTER = VendorPackage(
    "leaflet.markercluster",
    "1.5.3",
    "MIT",
    (
        "MIT-LICENCE.txt",
        "dist/leaflet.markercluster.js",
        "dist/MarkerCluster.css",
        "dist/MarkerCluster.Default.css",
    ),
)

# Leaflet.VectorGrid: draws the service's Mapbox vector tiles (/tiles/...) on canvas. The
# bundled build carries its decoders (pbf, vector-tile: BSD-3-Clause). The package ships no
# LICENSE file: its licence (Beerware) is stated in its README, vendored for that reason.
VECTORGRID = VendorPackage(
    "leaflet.vectorgrid",
    "1.3.0",
    "Beerware",
    ("README.md", "dist/Leaflet.VectorGrid.bundled.min.js"),
)

#: Packages whose licence text is in their README (they ship no LICENSE file).
LICENCE_IN_README: frozenset[str] = frozenset({VECTORGRID.name})

#: Every package the map pages load.
MAP_PACKAGES: tuple[VendorPackage, ...] = (
    LEAFLET,
    JQUERY,
    BOOTSTRAP,
    FONTAWESOME,
    AWESOME_MARKERS,
    MARKER_CLUSTER,
    VECTORGRID,
)

# Our own replacement for folium's leaflet.awesome.rotate.min.css (served from a GitHub CDN by
# folium): the `fa-rotate-<angle>` classes folium.Icon(angle=...) adds. Generated, not vendored.
ROTATE_CSS = "css/awesome-rotate.css"


def asset_url(static_url: str, package: VendorPackage, path: str) -> str:
    """URL of one vendored file, below the URL the static dir is served at.

    Parameters
    ----------
    static_url
        Where :data:`STATIC_DIR` is mounted, e.g. ``"/static"``.
    package
        The package; ``path`` must be one of its :attr:`VendorPackage.files`.
    path
        Path inside the package.

    Returns
    -------
    str
        E.g. ``"/static/vendor/leaflet@1.9.4/dist/leaflet.js"``.

    Examples
    --------
    >>> asset_url("/static", LEAFLET, "dist/leaflet.js")
    '/static/vendor/leaflet@1.9.4/dist/leaflet.js'
    """
    if path not in package.files:
        msg = f"{path!r} is not vendored for {package.spec}; add it to maps.vendor and re-fetch"
        raise ValueError(msg)
    return f"{static_url.rstrip('/')}/vendor/{package.directory}/{path}"


def folium_default_js(static_url: str) -> list[tuple[str, str]]:
    """Return the local replacement for ``folium.Map.default_js``.

    The names are folium's, so plugins that check for them still find them.
    """
    return [
        ("leaflet", asset_url(static_url, LEAFLET, "dist/leaflet.js")),
        ("jquery", asset_url(static_url, JQUERY, "dist/jquery.min.js")),
        ("bootstrap", asset_url(static_url, BOOTSTRAP, "dist/js/bootstrap.bundle.min.js")),
        (
            "awesome_markers",
            asset_url(static_url, AWESOME_MARKERS, "dist/leaflet.awesome-markers.js"),
        ),
    ]


def folium_default_css(static_url: str) -> list[tuple[str, str]]:
    """Return the local replacement for ``folium.Map.default_css``.

    Folium's Bootstrap-3 glyphicons stylesheet is left out (Bootstrap 3 is not on npm in that
    form): use ``folium.Icon(prefix="fa")`` with Font Awesome icons instead.
    """
    base = static_url.rstrip("/")
    return [
        ("leaflet_css", asset_url(static_url, LEAFLET, "dist/leaflet.css")),
        ("bootstrap_css", asset_url(static_url, BOOTSTRAP, "dist/css/bootstrap.min.css")),
        ("awesome_markers_font_css", asset_url(static_url, FONTAWESOME, "css/all.min.css")),
        (
            "awesome_markers_css",
            asset_url(static_url, AWESOME_MARKERS, "dist/leaflet.awesome-markers.css"),
        ),
        ("awesome_rotate_css", f"{base}/{ROTATE_CSS}"),
    ]


def marker_cluster_js(static_url: str) -> list[tuple[str, str]]:
    """Return the local replacement for ``folium.plugins.MarkerCluster.default_js``."""
    return [
        (
            "markerclusterjs",
            asset_url(static_url, MARKER_CLUSTER, "dist/leaflet.markercluster.js"),
        )
    ]


def marker_cluster_css(static_url: str) -> list[tuple[str, str]]:
    """Return the local replacement for ``folium.plugins.MarkerCluster.default_css``."""
    return [
        ("markerclustercss", asset_url(static_url, MARKER_CLUSTER, "dist/MarkerCluster.css")),
        (
            "markerclusterdefaultcss",
            asset_url(static_url, MARKER_CLUSTER, "dist/MarkerCluster.Default.css"),
        ),
    ]


def vector_grid_js(static_url: str) -> list[tuple[str, str]]:
    """Return the script that draws vector tiles (Leaflet.VectorGrid, bundled build)."""
    return [
        (
            "vectorgrid",
            asset_url(static_url, VECTORGRID, "dist/Leaflet.VectorGrid.bundled.min.js"),
        )
    ]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _npm_pack(spec: str, workdir: Path) -> Path:
    """Download one exact package tarball with ``npm pack`` (npm checks its integrity hash)."""
    npm = shutil.which("npm")
    if npm is None:
        msg = "npm not found: install Node.js/npm to fetch vendored assets"
        raise RuntimeError(msg)
    out = subprocess.run(  # noqa: S603 - fixed argv, spec comes from the pinned table
        [npm, "pack", spec, "--silent", "--pack-destination", str(workdir)],
        check=True,
        capture_output=True,
        text=True,
    )
    return workdir / out.stdout.strip().splitlines()[-1]


def fetch_packages(packages: tuple[VendorPackage, ...], target: Path) -> None:
    """Fetch pinned npm packages and copy their listed files below ``target``.

    Writes ``target/manifest.json`` and ``target/VENDOR.md`` with version, licence, size and
    SHA-256 of every copied file. Directories of packages no longer listed are removed.

    Parameters
    ----------
    packages
        The packages to vendor.
    target
        The vendor directory, e.g. :data:`VENDOR_DIR`.
    """
    target.mkdir(parents=True, exist_ok=True)
    wanted = {p.directory for p in packages}
    for old in target.iterdir():
        if old.is_dir() and old.name not in wanted:
            shutil.rmtree(old)
    with tempfile.TemporaryDirectory(prefix="gis-grid-vendor-") as tmp:
        for package in packages:
            tarball = _npm_pack(package.spec, Path(tmp))
            extract = Path(tmp) / package.directory
            with tarfile.open(tarball) as tar:
                tar.extractall(extract, filter="data")
            dest = target / package.directory
            if dest.exists():
                shutil.rmtree(dest)
            for rel in package.files:
                src = extract / "package" / rel
                if not src.is_file():
                    msg = f"{package.spec} has no file {rel!r}; fix maps.vendor"
                    raise FileNotFoundError(msg)
                (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dest / rel)
    _write_manifest(packages, target)


def _write_manifest(packages: tuple[VendorPackage, ...], target: Path) -> None:
    manifest: list[dict[str, object]] = []
    total = 0
    lines = [
        "# Vendored browser assets",
        "",
        "Copied from npm at exact versions by `fetch_packages` (see `maps/vendor.py`);",
        "do not edit by hand. Only the files pages load are kept. Regenerate after changing",
        "a version; `tests/test_maps_vendor.py` checks the hashes below.",
        "",
        "| package | version | licence | file | bytes | sha256 |",
        "|---|---|---|---|---:|---|",
    ]
    for package in packages:
        files = []
        for rel in package.files:
            path = target / package.directory / rel
            size = path.stat().st_size
            total += size
            digest = _sha256(path)
            files.append({"path": rel, "bytes": size, "sha256": digest})
            lines.append(
                f"| {package.name} | {package.version} | {package.license} | {rel} "
                f"| {size} | `{digest[:16]}…` |"
            )
        manifest.append(
            {
                "name": package.name,
                "version": package.version,
                "license": package.license,
                "directory": package.directory,
                "files": files,
            }
        )
    lines += ["", f"Total: {total} bytes.", ""]
    (target / "manifest.json").write_text(
        json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    (target / "VENDOR.md").write_text("\n".join(lines), encoding="utf-8")


def verify_packages(packages: tuple[VendorPackage, ...], target: Path) -> list[str]:
    """Compare the vendored files with the manifest.

    Parameters
    ----------
    packages
        The packages that should be vendored.
    target
        The vendor directory holding ``manifest.json``.

    Returns
    -------
    list of str
        One line per problem (missing package or file, changed hash); empty when all is well.
    """
    problems: list[str] = []
    manifest_path = target / "manifest.json"
    if not manifest_path.is_file():
        return [f"{manifest_path} is missing: run fetch_packages"]
    recorded = {p["directory"]: p for p in json.loads(manifest_path.read_text(encoding="utf-8"))}
    for package in packages:
        entry = recorded.get(package.directory)
        if entry is None:
            problems.append(f"{package.spec} is not in {manifest_path}")
            continue
        hashes = {f["path"]: f["sha256"] for f in entry["files"]}
        for rel in package.files:
            path = target / package.directory / rel
            if not path.is_file():
                problems.append(f"{package.spec}: {rel} is missing")
            elif hashes.get(rel) != _sha256(path):
                problems.append(f"{package.spec}: {rel} differs from the manifest")
    return problems


def _write_rotate_css(static_dir: Path) -> None:
    rules = [f".fa-rotate-{angle}{{transform:rotate({angle}deg)}}" for angle in range(360)]
    path = static_dir / ROTATE_CSS
    path.parent.mkdir(parents=True, exist_ok=True)
    header = (
        "/* fa-rotate-<deg> classes used by folium.Icon(angle=...); generated by maps.vendor */"
    )
    path.write_text(header + "\n" + "\n".join(rules) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    """Fetch the map packages into :data:`VENDOR_DIR` (``python -m maps.vendor``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--target", type=Path, default=VENDOR_DIR)
    args = parser.parse_args(argv)
    fetch_packages(MAP_PACKAGES, args.target)
    _write_rotate_css(STATIC_DIR)


if __name__ == "__main__":
    main()
