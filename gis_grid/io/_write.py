"""Write GeoDataFrames to GeoPackage, GeoJSON, shapefile (plain or zipped) and KML."""

from __future__ import annotations

import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import pyogrio

from gis_grid.errors import CRSError, DataFileError
from gis_grid.io._checks import feature_labels, pick_id_field

if TYPE_CHECKING:
    import geopandas as gpd

__all__ = ["write_layer"]

_DRIVERS = {
    ".gpkg": "GPKG",
    ".geojson": "GeoJSON",
    ".json": "GeoJSON",
    ".shp": "ESRI Shapefile",
    ".zip": "ESRI Shapefile",
    ".kml": "KML",
}
#: Files that belong to a shapefile and must go when it is overwritten (stale indexes or a
#: stale .cpg would otherwise describe the new data wrongly).
_SHAPEFILE_PARTS = (
    ".shp",
    ".shx",
    ".dbf",
    ".prj",
    ".cpg",
    ".qix",
    ".sbn",
    ".sbx",
    ".fix",
    ".qmd",
    ".shp.xml",
)
_DBF_NAME_BYTES = 10
_DBF_TEXT_BYTES = 254


def _truncate(name: str) -> str:
    """Cut a field name to 10 bytes of UTF-8 without splitting a character."""
    return name.encode("utf-8")[:_DBF_NAME_BYTES].decode("utf-8", errors="ignore")


def _shapefile_ready(gdf: gpd.GeoDataFrame, path: Path) -> gpd.GeoDataFrame:
    """Map field names to the DBF's 10 bytes deterministically and refuse what would be lost."""
    columns = [str(c) for c in gdf.columns if c != gdf.geometry.name]
    short = {c: _truncate(c) for c in columns}
    groups: dict[str, list[str]] = {}
    for column, name in short.items():  # a loop over columns, not features
        groups.setdefault(name.upper(), []).append(column)
    clashes = [group for group in groups.values() if len(group) > 1]
    if clashes:
        msg = (
            f"{path}: shapefile field names are cut to 10 bytes and compared without case, so "
            f"these columns would collide: {clashes}. Rename them, or write a GeoPackage."
        )
        raise DataFileError(msg)
    renamed = {c: n for c, n in short.items() if c != n}
    if renamed:
        warnings.warn(
            f"{path}: shapefile field names are limited to 10 bytes; renamed {renamed}",
            UserWarning,
            stacklevel=3,
        )
    id_field = pick_id_field(columns)
    for column in columns:
        values = gdf[column]
        if values.dtype.kind not in "OSUT" and str(values.dtype) != "string":
            continue
        present = values.notna().to_numpy()
        lengths = np.zeros(len(values), dtype=int)
        lengths[present] = values[present].astype(str).str.encode("utf-8").str.len()
        too_long = np.flatnonzero(lengths > _DBF_TEXT_BYTES)
        if too_long.size:
            labels = feature_labels(
                gdf[id_field] if id_field else None, len(gdf), id_field=id_field
            )
            msg = (
                f"{path}: {labels[too_long[0]]}, field {column!r} holds "
                f"{lengths[too_long[0]]} bytes of UTF-8, more than a shapefile's "
                f"{_DBF_TEXT_BYTES} ({too_long.size} value(s)); shorten it or write a GeoPackage"
            )
            raise DataFileError(msg)
    return gdf.rename(columns=renamed)


def _write(gdf: gpd.GeoDataFrame, path: Path, *, layer: str | None, driver: str) -> None:
    options = {"ENCODING": "UTF-8"} if driver == "ESRI Shapefile" else None
    try:
        pyogrio.write_dataframe(gdf, path, layer=layer, driver=driver, layer_options=options)
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
        msg = f"{path}: cannot be written as {driver} ({exc})"
        raise DataFileError(msg) from exc
    except (pyogrio.errors.FieldError, pyogrio.errors.GeometryError) as exc:
        msg = f"{path}: the data cannot be stored as {driver} ({exc})"
        raise DataFileError(msg) from exc


def _move_shapefile(parts: list[Path], stem: str, path: Path) -> None:
    for ext in _SHAPEFILE_PARTS:
        for case in {ext, ext.upper()}:
            path.with_name(path.stem + case).unlink(missing_ok=True)
    for part in parts:
        part.replace(path.with_name(path.stem + part.name[len(stem) :]))


def write_layer(
    gdf: gpd.GeoDataFrame,
    path: str | Path,
    *,
    layer: str | None = None,
    driver: str | None = None,
    replace: Literal["file", "layer"] = "file",
) -> Path:
    """Write a layer, choosing the format from the extension; overwrite cleanly.

    Parameters
    ----------
    gdf
        The data; it must carry a CRS, which is written with it.
    path
        ``.gpkg``, ``.geojson``/``.json``, ``.shp``, ``.zip`` (a zipped shapefile) or
        ``.kml``. Parent folders are created.
    layer
        Layer name (GeoPackage/KML layer, the shapefile's name inside a zip); by default the
        file's stem.
    driver
        A GDAL driver name, to write a format not implied by the extension.
    replace
        ``"file"`` (default) replaces the whole file atomically: a new file is written beside
        it and moved over it, and every part of an old shapefile (.cpg, .qix, ...) goes.
        ``"layer"`` replaces only ``layer`` inside an existing GeoPackage, keeping the others.

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    CRSError
        The GeoDataFrame has no CRS.
    DataFileError
        Unknown extension; shapefile field names that would collide once cut to 10 bytes, or
        a text value longer than 254 bytes; or GDAL refused the data.

    Warns
    -----
    UserWarning
        When shapefile field names longer than 10 bytes are cut (the mapping is listed).

    Notes
    -----
    Shapefiles are written in UTF-8 with a ``.cpg`` saying so. KML is written in WGS84
    lon/lat (EPSG:4326), as the format requires; GeoJSON keeps the data's CRS.

    Examples
    --------
    >>> write_layer(grids, "out/grids.zip")  # doctest: +SKIP
    PosixPath('out/grids.zip')
    """
    path = Path(path)
    if gdf.crs is None:
        msg = (
            f"{path}: the GeoDataFrame has no CRS; set it with gdf.set_crs(...) before writing "
            "(the platform never writes coordinates without one)"
        )
        raise CRSError(msg)
    suffix = path.suffix.lower()
    driver = driver or _DRIVERS.get(suffix)
    if driver is None:
        msg = f"{path}: cannot tell the format from {suffix!r}; use one of {sorted(_DRIVERS)}"
        raise DataFileError(msg)
    if driver in {"KML", "LIBKML"}:
        gdf = gdf.to_crs(4326)
        driver = "LIBKML" if "LIBKML" in pyogrio.list_drivers(write=True) else "KML"
    if driver == "ESRI Shapefile":
        gdf = _shapefile_ready(gdf, path)
    if replace == "layer":
        if driver != "GPKG" or layer is None:
            msg = f"{path}: replace='layer' needs a GeoPackage and a layer name"
            raise ValueError(msg)
        _write(gdf, path, layer=layer, driver=driver)
        return path

    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.name}.") as tmp:
        scratch = Path(tmp)
        if driver == "ESRI Shapefile":
            stem = (layer or path.stem) if suffix == ".zip" else path.stem
            _write(gdf, scratch / f"{stem}.shp", layer=stem, driver=driver)
            parts = sorted(scratch.iterdir())
            if suffix == ".zip":
                archive = scratch / "archive.zip"
                with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
                    for part in parts:
                        zf.write(part, arcname=part.name)
                archive.replace(path)
            else:
                _move_shapefile(parts, stem, path)
        else:
            written = scratch / path.name
            _write(gdf, written, layer=layer or path.stem, driver=driver)
            written.replace(path)
    return path
