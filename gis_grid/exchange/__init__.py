"""File exchange with GIS tools: import and export shapefile (zip), GeoPackage, GeoJSON, KML.

Layers: grids, villages, pollution points, hazards and incidents. Exports are UTF-8 (shapefiles
with a ``.cpg``) and open directly in QGIS; imports read GBK/GB18030 shapefiles correctly
(:mod:`gis_grid.io` detects the encoding), check everything before writing, and can be run as a
dry run that reports what would change. Uploaded zips are unpacked safely
(:func:`safe_extract`: no zip slip, no links, capped size and entry count).

Examples
--------
>>> from gis_grid.exchange import import_layer
>>> with engine.begin() as conn:  # doctest: +SKIP
...     report = import_layer(conn, "grids", "grids.zip", dry_run=True)
>>> report.counts  # doctest: +SKIP
{'added': 0, 'changed': 2, 'unchanged': 24, 'skipped': 0, 'removed': 0}
"""

from gis_grid.exchange._export import EXPORT_FORMATS, EXPORT_LAYERS, MEDIA_TYPES, export_bytes
from gis_grid.exchange._import import (
    IMPORT_FORMATS,
    IMPORT_LAYERS,
    ImportReport,
    import_layer,
    read_import_file,
)
from gis_grid.exchange._zip import MAX_ENTRIES, MAX_UNPACKED_BYTES, safe_extract

__all__ = [
    "EXPORT_FORMATS",
    "EXPORT_LAYERS",
    "IMPORT_FORMATS",
    "IMPORT_LAYERS",
    "MAX_ENTRIES",
    "MAX_UNPACKED_BYTES",
    "MEDIA_TYPES",
    "ImportReport",
    "export_bytes",
    "import_layer",
    "read_import_file",
    "safe_extract",
]
