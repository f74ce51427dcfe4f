"""File I/O: read vector layers and lon/lat tables into CGCS2000, write them back out.

Readers refuse what they cannot trust instead of guessing: a file without a CRS, text the
encoding cannot decode, coordinates outside China or with latitude and longitude swapped,
and null geometries each raise a :class:`~gis_grid.errors.GridError` subclass naming the file,
the feature (``feature N`` counted from 1, with its code when the layer has one) and the field.
Geometry validity and code uniqueness are separate checks (:func:`check_geometries`,
:func:`check_unique`) because some callers repair geometries before validating them.

Examples
--------
>>> from gis_grid.io import read_layer, check_geometries, write_layer
>>> grids = read_layer("grids.zip", layer="grids")  # doctest: +SKIP
>>> check_geometries(grids, source="grids.zip", geom_types="Polygon")  # doctest: +SKIP
>>> write_layer(grids, "grids.kml")  # doctest: +SKIP
"""

from gis_grid.io._checks import check_geometries, check_unique
from gis_grid.io._read import read_csv_points, read_layer
from gis_grid.io._write import write_layer

__all__ = [
    "check_geometries",
    "check_unique",
    "read_csv_points",
    "read_layer",
    "write_layer",
]
