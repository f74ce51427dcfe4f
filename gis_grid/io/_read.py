"""Read vector layers and lon/lat tables into CGCS2000 GeoDataFrames, refusing bad input."""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import charset_normalizer
import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from gis_grid.crs import (
    CGCS2000,
    Datum,
    check_lonlat_in_china,
    convert_geometry_datum,
    convert_lonlat,
    parse_datum,
    require_crs,
)
from gis_grid.errors import CRSError, DataFileError, EncodingError
from gis_grid.io._checks import feature_labels, pick_id_field
from gis_grid.io._dbf import detect_encoding, normalise_encoding, parse_dbf, validate_encoding
from gis_grid.io._source import Source, resolve

if TYPE_CHECKING:
    from pyproj import CRS

__all__ = ["read_csv_points", "read_layer"]

_WEB_DATUMS = (Datum.GCJ02, Datum.BD09)


def _shapefile_encoding(source: Source, encoding: str | None) -> str:
    """Decide a shapefile's encoding: explicit, else .cpg, else detected; then validate it."""
    if encoding is not None:
        chosen, origin = normalise_encoding(encoding, source=source.name), "given as encoding="
    elif source.cpg is not None:
        chosen = normalise_encoding(source.cpg, source=f"{source.name} (.cpg)")
        origin = f"declared by the .cpg as {source.cpg!r}"
    else:
        chosen, origin = "", "detected, no .cpg"
    if source.dbf is None:
        return _iconv_name(chosen or "utf-8")
    text = parse_dbf(source.dbf, source=source.name)
    if not chosen:
        chosen = detect_encoding(text)
        if chosen not in {"utf-8", "gb18030"}:
            warnings.warn(
                f"{source.name}: text is neither UTF-8 nor GB18030; charset-normalizer judged "
                f"it {chosen}. Check the names and pass encoding= (or add a .cpg) to be sure.",
                UserWarning,
                stacklevel=3,
            )
    validate_encoding(text, chosen, source=source.name, origin=origin)
    return _iconv_name(chosen)


def _iconv_name(codec: str) -> str:
    """Spell a Python codec name the way GDAL's iconv recoding accepts it.

    pyogrio hands shapefile encodings to GDAL (SHAPE_ENCODING), which recodes with iconv and
    silently drops what it cannot convert: hence the validation above.
    """
    return codec.upper().replace("_", "-")


def _read_gdal(source: Source, encoding: str | None) -> gpd.GeoDataFrame:
    try:
        return pyogrio.read_dataframe(source.gdal_path, layer=source.layer, encoding=encoding)
    except UnicodeDecodeError as exc:
        msg = f"{source.name}: text is not valid {exc.encoding} ({exc.reason}); pass encoding="
        raise EncodingError(msg) from exc
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, OSError) as exc:
        msg = f"{source.name}: cannot be read ({exc})"
        raise DataFileError(msg) from exc


def _check_in_china(gdf: gpd.GeoDataFrame, labels: np.ndarray, *, source: str) -> None:
    """Check the bounds of every non-empty feature, which lie in China iff all vertices do."""
    bounds = shapely.bounds(np.asarray(gdf.geometry, dtype=object))
    present = ~np.isnan(bounds).any(axis=1)  # empty geometries are check_geometries' business
    b, lab = bounds[present], labels[present]
    check_lonlat_in_china(
        np.concatenate([b[:, 0], b[:, 2]]),
        np.concatenate([b[:, 1], b[:, 3]]),
        source=source,
        labels=np.concatenate([lab, lab]),
    )


def read_layer(
    path: str | Path,
    *,
    layer: str | None = None,
    crs: object = None,
    datum: Datum | str | None = None,
    encoding: str | None = None,
    id_field: str | None = None,
) -> gpd.GeoDataFrame:
    """Read a vector layer into CGCS2000 (EPSG:4490), refusing what cannot be trusted.

    Parameters
    ----------
    path
        A ``.shp``; a folder holding shapefiles; a ``.zip`` of a shapefile; a ``.gpkg``;
        a ``.geojson``/``.json``; or a ``.kml``.
    layer
        Which layer (GeoPackage/KML layer, or shapefile name in a folder or zip). Required
        when there are several; the error lists them.
    crs
        CRS of the coordinates (anything pyproj accepts, e.g. ``"EPSG:4545"``). Required when
        the file has none (no ``.prj``); it overrides the file's CRS when given.
    datum
        ``"gcj02"`` or ``"bd09"`` when the lon/lat are web-map coordinates (AMap/Tencent or
        Baidu); their vertices are converted to CGCS2000. Only valid with a geographic CRS.
    encoding
        Shapefile text encoding. Otherwise the ``.cpg`` is used, else it is detected from the
        DBF bytes (UTF-8 if they decode strictly, else GB18030, which covers GBK). GBK and
        GB2312 are read as their superset GB18030. GeoPackage, GeoJSON and KML are UTF-8.
    id_field
        Field naming features in messages; by default a ``code``/``id``-like field.

    Returns
    -------
    geopandas.GeoDataFrame
        In EPSG:4490, 2-D for KML (whose altitudes are dropped).

    Raises
    ------
    DataFileError
        Unreadable or unsupported file, several layers and none chosen, or a null geometry.
    NotFoundError
        The requested layer does not exist.
    CRSError
        No CRS and none declared (the message lists the choices), or ``datum`` with a
        projected CRS.
    EncodingError
        A text value the encoding cannot decode, naming the feature and field.
    CoordinateError
        A feature outside China's range or with latitude and longitude swapped.

    Notes
    -----
    Geometry validity is not checked here: call :func:`check_geometries` (and
    :func:`check_unique` for codes) on the result.

    Examples
    --------
    >>> fence = read_layer("dachuan_fence_vonng_gcj02.geojson", datum="gcj02")  # doctest: +SKIP
    >>> fence.crs.to_epsg()  # doctest: +SKIP
    4490
    """
    source = resolve(path, layer=layer)
    if source.kind == "shapefile":
        chosen: str | None = _shapefile_encoding(source, encoding)
    elif encoding is not None:
        msg = f"{source.name}: encoding= applies to shapefiles; {source.kind} is always UTF-8"
        raise DataFileError(msg)
    else:
        chosen = None
    gdf = _read_gdal(source, chosen)
    declared: CRS = require_crs(crs if crs is not None else gdf.crs, source=source.name)
    gdf = gdf.set_crs(declared, allow_override=True)

    if id_field is None:
        id_field = pick_id_field(c for c in gdf.columns if c != gdf.geometry.name)
    elif id_field not in gdf.columns:
        msg = f"{source.name}: no field {id_field!r}; the fields are {list(gdf.columns)}"
        raise DataFileError(msg)
    values = gdf[id_field] if id_field is not None else None
    labels = feature_labels(values, len(gdf), id_field=id_field)
    null = np.flatnonzero(shapely.is_missing(np.asarray(gdf.geometry, dtype=object)))
    if null.size:
        msg = (
            f"{source.name}: {labels[null[0]]} has no geometry ({null.size} feature(s) in "
            "all); remove them or give them a shape"
        )
        raise DataFileError(msg)
    if source.kind == "kml":
        gdf = gdf.set_geometry(shapely.force_2d(np.asarray(gdf.geometry, dtype=object)))

    web = parse_datum(datum) if datum is not None else None
    if web is not None and web in _WEB_DATUMS and not declared.is_geographic:
        msg = (
            f"{source.name}: datum={web.value!r} applies to longitude/latitude, but the CRS "
            f"is projected ({declared.name}); drop datum= or declare a geographic crs="
        )
        raise CRSError(msg)
    if declared.is_geographic:  # swaps are visible only before any transformation
        _check_in_china(gdf, labels, source=source.name)
    if web is not None and web in _WEB_DATUMS:
        converted = convert_geometry_datum(np.asarray(gdf.geometry, dtype=object), source=web)
        gdf = gdf.set_geometry(gpd.GeoSeries(converted, index=gdf.index, crs=CGCS2000))
    gdf = gdf.to_crs(CGCS2000)
    if not declared.is_geographic:
        _check_in_china(gdf, labels, source=source.name)
    return gdf


def _decode_text(raw: bytes, encoding: str | None, *, source: str) -> str:
    """Decode a CSV strictly: given encoding, else UTF-8 (BOM or not), GB18030, or a guess.

    The guess (charset-normalizer) only runs when neither UTF-8 nor GB18030 decodes.
    """
    if encoding is None:
        for candidate in ("utf-8-sig", "gb18030"):
            try:
                return raw.decode(candidate)
            except UnicodeDecodeError:
                continue
        best = charset_normalizer.from_bytes(raw).best()
        encoding = "gb18030" if best is None else best.encoding
        origin = "detected"
    else:
        encoding = normalise_encoding(encoding, source=source)
        encoding = "utf-8-sig" if encoding == "utf-8" else encoding  # drop a BOM if present
        origin = "given as encoding="
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        start = raw.rfind(b"\n", 0, exc.start) + 1
        column = raw.count(b",", start, exc.start)  # approximate if a quoted value holds a comma
        header = raw.split(b"\n", 1)[0].decode("ascii", errors="replace").strip().split(",")
        field = header[column] if column < len(header) else f"column {column + 1}"
        msg = (
            f"{source}: line {line}, field {field!r}: bytes {raw[exc.start : exc.end]!r} are "
            f"not valid {encoding} ({origin}); pass the right encoding="
        )
        raise EncodingError(msg) from exc


def _numbers(df: pd.DataFrame, column: str, labels: np.ndarray, *, source: str) -> pd.Series:
    text = df[column].str.strip()
    values = pd.to_numeric(text, errors="coerce")
    bad = np.flatnonzero((values.isna() & text.notna() & (text != "")).to_numpy())
    if bad.size:
        msg = (
            f"{source}: {labels[bad[0]]}, field {column!r}: {df[column].iloc[bad[0]]!r} is not a "
            f"number ({bad.size} such value(s)); give decimal degrees such as 107.405"
        )
        raise DataFileError(msg)
    return values.where(text != "")


def read_csv_points(
    path: str | Path,
    *,
    lon: str = "lon",
    lat: str = "lat",
    datum: Datum | str,
    encoding: str | None = None,
    sep: str = ",",
    missing: Literal["raise", "drop"] = "raise",
    id_field: str | None = None,
) -> gpd.GeoDataFrame:
    """Read a table with longitude/latitude columns into CGCS2000 points.

    Parameters
    ----------
    path
        The CSV file.
    lon, lat
        Names of the longitude and latitude columns (decimal degrees).
    datum
        Datum of those coordinates: ``"wgs84"``, ``"cgcs2000"``, ``"gcj02"`` (AMap, Tencent)
        or ``"bd09"`` (Baidu). Required: the platform never guesses.
    encoding
        Text encoding; detected when omitted (UTF-8 with or without BOM, else GB18030).
    sep
        Field separator.
    missing
        ``"raise"`` (default) refuses rows with an empty coordinate; ``"drop"`` skips them.
    id_field
        Column naming rows in messages; by default a ``code``/``id``-like column.

    Returns
    -------
    geopandas.GeoDataFrame
        Points in EPSG:4490. The other columns are kept as text (codes such as ``0818``
        keep their leading zeros); the ``lon``/``lat`` columns are dropped so that no
        GCJ-02/BD-09 value is stored.

    Raises
    ------
    DataFileError
        Missing column (the message lists those present), non-numeric or missing coordinate.
    EncodingError
        Bytes the encoding cannot decode, naming the line and field.
    CRSError
        Unknown datum.
    CoordinateError
        A point outside China or with latitude and longitude swapped.

    Notes
    -----
    Rows are named by their line in the file (the header is line 1), which is exact unless a
    quoted value spans lines.

    Examples
    --------
    >>> seats = read_csv_points(
    ...     "dachuan_adcode_2016_vonng.csv", lon="longitude", lat="latitude",
    ...     datum="gcj02", missing="drop",
    ... )  # doctest: +SKIP
    """
    path = Path(path)
    source = str(path)
    src_datum = parse_datum(datum)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        msg = f"{source}: cannot be read ({exc})"
        raise DataFileError(msg) from exc
    text = _decode_text(raw, encoding, source=source)
    try:
        df = pd.read_csv(
            io.StringIO(text), sep=sep, dtype=str, keep_default_na=False, na_values=[""]
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        msg = f"{source}: not a readable CSV table ({exc})"
        raise DataFileError(msg) from exc
    absent = [c for c in (lon, lat) if c not in df.columns]
    if absent:
        msg = (
            f"{source}: no column {absent} (lon={lon!r}, lat={lat!r}); the columns are "
            f"{list(df.columns)}. Name the coordinate columns with lon= and lat="
        )
        raise DataFileError(msg)
    if id_field is None:
        id_field = pick_id_field(c for c in df.columns if c not in (lon, lat))
    values = df[id_field] if id_field is not None and id_field in df.columns else None
    labels = feature_labels(values, len(df), id_field=id_field, first=2, kind="line")
    x = _numbers(df, lon, labels, source=source)
    y = _numbers(df, lat, labels, source=source)
    empty = (x.isna() | y.isna()).to_numpy()
    if empty.any():
        if missing == "raise":
            first = int(np.flatnonzero(empty)[0])
            msg = (
                f"{source}: {labels[first]} has no {lon}/{lat} ({int(empty.sum())} row(s) in "
                "all); fill them in or pass missing='drop'"
            )
            raise DataFileError(msg)
        df, x, y, labels = df[~empty], x[~empty], y[~empty], labels[~empty]
    check_lonlat_in_china(x.to_numpy(), y.to_numpy(), source=source, labels=labels)
    cx, cy = convert_lonlat(x.to_numpy(), y.to_numpy(), source=src_datum)
    return gpd.GeoDataFrame(
        df.drop(columns=[lon, lat]).reset_index(drop=True),
        geometry=gpd.points_from_xy(cx, cy),
        crs=CGCS2000,
    )
