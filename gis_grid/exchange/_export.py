"""Export the exchange layers to a file, as bytes for a download or to a path."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from gis_grid.errors import DataFileError, NotFoundError
from gis_grid.export import export_layer

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = ["EXPORT_FORMATS", "EXPORT_LAYERS", "MEDIA_TYPES", "export_bytes"]

#: Layers exchanged with GIS tools (exports of :mod:`gis_grid.export` by these names).
EXPORT_LAYERS = ("grids", "villages", "pollution", "hazards", "incidents")

#: Format name -> file ending.
EXPORT_FORMATS = {"gpkg": ".gpkg", "shp": ".zip", "geojson": ".geojson", "kml": ".kml"}

#: File ending -> media type of the download.
MEDIA_TYPES = {
    ".gpkg": "application/geopackage+sqlite3",
    ".zip": "application/zip",
    ".geojson": "application/geo+json",
    ".kml": "application/vnd.google-earth.kml+xml",
}


def export_bytes(
    conn: sa.Connection, layer: str, fmt: str, *, town: str | None = None
) -> tuple[bytes, str, int]:
    """Export a layer in a format and return the file's bytes, its name and the feature count.

    Parameters
    ----------
    conn
        Connection on the platform database.
    layer
        One of :data:`EXPORT_LAYERS`.
    fmt
        ``gpkg`` (GeoPackage, opens directly in QGIS), ``shp`` (zipped shapefile, UTF-8 with
        a ``.cpg``), ``geojson`` or ``kml``.
    town
        Only this town's features (9-digit code).

    Returns
    -------
    tuple of (bytes, str, int)

    Raises
    ------
    NotFoundError
        Unknown layer or no features.
    DataFileError
        Unknown format.

    Examples
    --------
    >>> data, filename, n = export_bytes(conn, "grids", "gpkg")  # doctest: +SKIP
    >>> filename  # doctest: +SKIP
    'grids.gpkg'
    """
    if layer not in EXPORT_LAYERS:
        msg = f"cannot export layer {layer!r}; export one of: {', '.join(EXPORT_LAYERS)}"
        raise NotFoundError(msg, problems=[{"field": "layer", "value": layer}])
    if fmt not in EXPORT_FORMATS:
        msg = f"unknown format {fmt!r}; use one of: {', '.join(EXPORT_FORMATS)}"
        raise DataFileError(msg, problems=[{"field": "format", "value": fmt}])
    stem = layer if town is None else f"{layer}_{town}"
    filename = stem + EXPORT_FORMATS[fmt]
    with tempfile.TemporaryDirectory(prefix="gis-grid-export-") as tmp:
        path, count = export_layer(conn, layer, Path(tmp) / filename, town=town)
        return path.read_bytes(), filename, count
