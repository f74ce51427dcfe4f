"""Export layers from PostGIS to files (GeoPackage, GeoJSON, shapefile, zipped shapefile, KML).

Exports follow PIPL's minimum-data rule (DOMAIN.md, article 9 of the Zhaojia measures): no
resident names, ID numbers or phones ever leave the database this way, and members are
exported without phone or birth date. Residents are exported as anonymous rows at their
household's point (gender, birth year, relation), enough for analysts to count people by age
and grid. Households are exported without their street address.

Natural lines export by kind (``rivers``, ``streams``, ``roads``, with the sample files'
columns) or all together (``natural_lines``, with ``kind`` and ``class``); a town's lines are
those digitised for it or crossing it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import geopandas as gpd
import sqlalchemy as sa

from gis_grid.crs import CGCS2000
from gis_grid.errors import NotFoundError
from gis_grid.io import write_layer
from gis_grid.lines import class_label_sql

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

__all__ = ["EXPORT_LAYERS", "export_layer", "read_export_layer"]

_PROVENANCE = "synthetic, source"

#: A natural line belongs to a town if it was digitised for it or crosses it (lines run on
#: across town borders; river pieces outside every town have no town_code).
_LINE_IN_TOWN = (
    "(town_code = :town OR ST_Intersects(geom, (SELECT tw.geom FROM towns tw "
    "WHERE tw.code = :town)))"
)


def _lines_query(kind: str) -> tuple[str, str]:
    """One kind of natural line, with the sample file's columns (so a shapefile reloads).

    Streams and roads carry their class name as ``kind`` (as in ``streams.shp`` and
    ``roads.shp``) besides the ``rank`` it maps to.
    """
    label = f"{class_label_sql(kind='kind', rank='rank')} AS kind, " if kind != "river" else ""
    return (
        f"SELECT code, name, {label}rank, town_code, {_PROVENANCE}, geom "
        f"FROM natural_lines WHERE kind = '{kind}'",
        _LINE_IN_TOWN,
    )


#: Layer name -> (SELECT ... FROM ... [WHERE ...], the condition selecting town ``:town``).
_QUERIES: dict[str, tuple[str, str]] = {
    "towns": (f"SELECT code, name, district_code, {_PROVENANCE}, geom FROM towns", "code = :town"),
    "villages": (
        f"SELECT code, name, town_code, kind::text AS kind, ur_code, {_PROVENANCE}, geom "
        "FROM villages",
        "town_code = :town",
    ),
    "grids": (
        f"SELECT code, village_code, seq, name, version, valid_from, {_PROVENANCE}, geom "
        "FROM grids WHERE valid_to IS NULL",
        "left(village_code, 9) = :town",
    ),
    "members": (
        "SELECT code, name, gender::text AS gender, education, party_member, "
        f"status::text AS status, grid_code, {_PROVENANCE}, home AS geom "
        "FROM members WHERE home IS NOT NULL",
        "left(grid_code, 9) = :town",
    ),
    "households": (
        f"SELECT code, village_code, grid_code, people, {_PROVENANCE}, geom FROM households",
        "left(village_code, 9) = :town",
    ),
    "residents": (
        "SELECT r.id, h.code AS household_code, h.village_code, h.grid_code, "
        "r.gender::text AS gender, extract(year FROM r.birth_date)::int AS birth_year, "
        "r.relation, r.whereabouts, r.synthetic, r.source, h.geom "
        "FROM residents AS r JOIN households AS h ON h.id = r.household_id",
        "left(h.village_code, 9) = :town",
    ),
    "pollution_points": (
        f"SELECT code, name, kind, village_code, grid_code, {_PROVENANCE}, geom "
        "FROM pollution_points",
        "left(village_code, 9) = :town",
    ),
    "hazards": (
        f"SELECT code, name, kind, level, village_code, grid_code, {_PROVENANCE}, geom "
        "FROM hazards",
        "left(village_code, 9) = :town",
    ),
    "incidents": (
        "SELECT id, code, task_type_code, title, status::text AS status, reported_at, "
        "dispatched_at, deadline, "
        f"village_code, grid_code, {_PROVENANCE}, geom FROM incidents",
        "left(village_code, 9) = :town",
    ),
    "rivers": _lines_query("river"),
    "streams": _lines_query("stream"),
    "roads": _lines_query("road"),
    "natural_lines": (
        "SELECT id, kind::text AS kind, code, name, rank, "
        f"{class_label_sql(kind='kind', rank='rank')} AS class, town_code, {_PROVENANCE}, geom "
        "FROM natural_lines",
        _LINE_IN_TOWN,
    ),
}

#: Names of the layers :func:`export_layer` can write.
EXPORT_LAYERS = tuple(_QUERIES)


def read_export_layer(
    engine: Engine | sa.Connection, layer: str, *, town: str | None = None
) -> gpd.GeoDataFrame:
    """Read a layer as it is exported (personal data left out), in EPSG:4490.

    Parameters
    ----------
    engine
        Engine or connection on the database.
    layer
        One of :data:`EXPORT_LAYERS` (``pollution`` is accepted for ``pollution_points``).
    town
        9-digit town code to export only that town's features.

    Returns
    -------
    geopandas.GeoDataFrame
        The rows, ordered by their first column.

    Raises
    ------
    NotFoundError
        Unknown layer, or no rows (for this town).
    """
    name = "pollution_points" if layer == "pollution" else layer
    if name not in _QUERIES:
        msg = f"unknown layer {layer!r}; export one of: {', '.join(EXPORT_LAYERS)}"
        raise NotFoundError(msg)
    sql, town_expr = _QUERIES[name]
    params = {}
    if town is not None:
        joiner = " AND " if " WHERE " in sql else " WHERE "
        sql += f"{joiner}{town_expr}"
        params["town"] = town
    sql += " ORDER BY 1"
    frame = gpd.read_postgis(sa.text(sql), engine, geom_col="geom", params=params, crs=CGCS2000)
    if frame.empty:
        where = f" in town {town}" if town is not None else ""
        msg = f"no {name}{where} in the database; nothing to export (was the data loaded?)"
        raise NotFoundError(msg)
    return frame


def _for_shapefile(frame: gpd.GeoDataFrame, name: str) -> gpd.GeoDataFrame:
    """Use the sample files' short field names (10 bytes) and text timestamps.

    The loader's field names fit the DBF limit, so a shapefile export of a layer can be read
    back by :mod:`gis_grid.load`; DBF has no time-zone-aware timestamp, so those are written
    as ISO 8601 text.
    """
    from gis_grid.load import LAYERS

    renames: dict[str, str] = {}
    # The layer of that name (rivers ... roads share one table), else the one layer of the
    # table; natural_lines, fed by three files, keeps the table's names.
    layers = [LAYERS[name]] if name in LAYERS else [x for x in LAYERS.values() if x.table == name]
    if len(layers) == 1:
        mapping = {**layers[0].fields, **layers[0].optional}
        renames = {column: field for field, column in mapping.items() if column != field}
    renames = {c: f for c, f in renames.items() if c in frame.columns and f not in frame.columns}
    out = frame.rename(columns=renames)
    for column in out.columns:
        if str(out[column].dtype).startswith("datetime64"):
            local = out[column].dt.tz_convert("Asia/Shanghai")  # the local time people read
            out[column] = local.dt.strftime("%Y-%m-%dT%H:%M:%S%z")
    return out


def export_layer(
    engine: Engine | sa.Connection,
    layer: str,
    path: str | Path,
    *,
    town: str | None = None,
    driver: str | None = None,
) -> tuple[Path, int]:
    """Export a layer to a file, choosing the format from the extension.

    Parameters
    ----------
    engine
        Engine or connection on the database.
    layer
        One of :data:`EXPORT_LAYERS`.
    path
        Output file: ``.gpkg``, ``.geojson``, ``.shp``, ``.zip`` (zipped shapefile) or ``.kml``.
    town
        9-digit town code to export only that town's features.
    driver
        GDAL driver, for a format the extension does not imply.

    Returns
    -------
    tuple of (pathlib.Path, int)
        The file written and the number of features.

    Examples
    --------
    >>> export_layer(engine, "grids", "out/grids.gpkg", town="511703109")  # doctest: +SKIP
    (PosixPath('out/grids.gpkg'), 64)
    """
    frame = read_export_layer(engine, layer, town=town)
    name = "pollution_points" if layer == "pollution" else layer
    if driver is None and Path(path).suffix.lower() in (".shp", ".zip"):
        frame = _for_shapefile(frame, name)
    written = write_layer(frame, path, layer=name, driver=driver)
    return written, len(frame)
