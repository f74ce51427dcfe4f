"""Find the dataset and layer a path stands for: shapefile, folder, zip, GeoPackage, etc."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

import pyogrio

from gis_grid.errors import DataFileError, NotFoundError

Kind = Literal["shapefile", "gpkg", "geojson", "kml"]
_KINDS: dict[str, Kind] = {
    ".shp": "shapefile",
    ".gpkg": "gpkg",
    ".geojson": "geojson",
    ".json": "geojson",
    ".kml": "kml",
}
SUPPORTED = "a .shp, a folder or .zip holding a shapefile, .gpkg, .geojson/.json or .kml"


@dataclass(frozen=True)
class Source:
    """A resolved input: what GDAL opens, plus the shapefile's raw .dbf and .cpg."""

    name: str  # how messages name the input, e.g. "grids.zip!grids/grids.shp"
    gdal_path: str
    kind: Kind
    layer: str | None = None
    dbf: bytes | None = None
    cpg: str | None = None  # the .cpg's text, None when absent or empty


def _cpg_text(raw: bytes | None) -> str | None:
    if raw is None:
        return None
    text = raw.decode("ascii", errors="replace").strip()
    return text or None


def _pick(candidates: list[str], layer: str | None, *, where: str, key: str) -> str:
    """Choose one shapefile among ``candidates`` (paths), by stem when ``layer`` is given."""
    stems = [PurePosixPath(c).stem for c in candidates]
    if not candidates:
        msg = f"{where}: no shapefile (.shp) found; expected {SUPPORTED}"
        raise DataFileError(msg)
    if layer is not None:
        matches = [c for c, s in zip(candidates, stems, strict=True) if layer in (s, c)]
        if not matches:
            msg = f"{where}: no {key} named {layer!r}; the {key}s are {stems}"
            raise NotFoundError(msg)
        return matches[0]
    if len(candidates) > 1:
        msg = f"{where} holds {len(candidates)} shapefiles {stems}: choose one with layer="
        raise DataFileError(msg)
    return candidates[0]


def _sidecar(members: dict[str, str], shp: str, ext: str) -> str | None:
    """Return the member/file named like ``shp`` with extension ``ext``, any letter case."""
    stem = shp[: -len(".shp")]
    return members.get((stem + ext).lower())


def _from_zip(path: Path, layer: str | None) -> Source:
    try:
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if not n.endswith("/")]
            shps = [
                n
                for n in names
                if n.lower().endswith(".shp")
                and not n.startswith("__MACOSX/")
                and not PurePosixPath(n).name.startswith("._")
            ]
            shp = _pick(sorted(shps), layer, where=str(path), key="shapefile")
            members = {n.lower(): n for n in names}
            dbf_name = _sidecar(members, shp, ".dbf")
            cpg_name = _sidecar(members, shp, ".cpg")
            dbf = archive.read(dbf_name) if dbf_name else None
            cpg = archive.read(cpg_name) if cpg_name else None
    except zipfile.BadZipFile as exc:
        msg = f"{path}: not a readable zip archive ({exc})"
        raise DataFileError(msg) from exc
    return Source(
        name=f"{path}!{shp}",
        gdal_path=f"/vsizip/{path.resolve()}/{shp}",
        kind="shapefile",
        dbf=dbf,
        cpg=_cpg_text(cpg),
    )


def _from_shp(shp: Path) -> Source:
    members = {p.name.lower(): p.name for p in shp.parent.iterdir()}
    dbf_name = _sidecar(members, shp.name, ".dbf")
    cpg_name = _sidecar(members, shp.name, ".cpg")
    dbf = (shp.parent / dbf_name).read_bytes() if dbf_name else None
    cpg = (shp.parent / cpg_name).read_bytes() if cpg_name else None
    return Source(name=str(shp), gdal_path=str(shp), kind="shapefile", dbf=dbf, cpg=_cpg_text(cpg))


def _from_gdal(path: Path, kind: Kind, layer: str | None) -> Source:
    try:
        layers = [str(n) for n in pyogrio.list_layers(path)[:, 0]]
    except (pyogrio.errors.DataSourceError, OSError) as exc:
        msg = f"{path}: cannot be opened as {kind} ({exc})"
        raise DataFileError(msg) from exc
    if layer is None:
        if len(layers) != 1:
            msg = (
                f"{path} holds {len(layers)} layers {layers}: choose one with layer="
                if layers
                else f"{path} holds no layer"
            )
            raise DataFileError(msg)
        layer = layers[0]
    elif layer not in layers:
        msg = f"{path}: no layer named {layer!r}; the layers are {layers}"
        raise NotFoundError(msg)
    name = str(path) if len(layers) == 1 else f"{path} (layer {layer})"
    return Source(name=name, gdal_path=str(path), kind=kind, layer=layer)


def resolve(path: str | Path, *, layer: str | None) -> Source:
    """Resolve ``path`` (and ``layer``) to one readable layer, or explain why not."""
    path = Path(path)
    if not path.exists():
        msg = f"{path} does not exist"
        raise DataFileError(msg)
    if path.is_dir():
        shps = sorted(p.name for p in path.iterdir() if p.suffix.lower() == ".shp")
        return _from_shp(path / _pick(shps, layer, where=str(path), key="shapefile"))
    suffix = path.suffix.lower()
    if suffix == ".zip":
        return _from_zip(path, layer)
    kind = _KINDS.get(suffix)
    if kind is None:
        hint = " Use read_csv_points for CSV tables." if suffix in {".csv", ".txt"} else ""
        msg = f"{path}: unsupported file type {suffix!r}; expected {SUPPORTED}.{hint}"
        raise DataFileError(msg)
    if kind == "shapefile":
        if layer is not None and layer != path.stem:
            msg = f"{path}: a shapefile holds one layer, {path.stem!r}, not {layer!r}"
            raise NotFoundError(msg)
        return _from_shp(path)
    return _from_gdal(path, kind, layer)
