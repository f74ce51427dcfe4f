"""Write the layers: shapefiles in EPSG:4490 (villages GBK, the rest UTF-8) and CSV files.

Every shapefile's DBF header carries :data:`~scripts.sample_data.AS_OF` as its "last update"
date instead of today's, so the same seed gives byte-identical files on any day.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio

from scripts.sample_data import AS_OF

__all__ = ["write_csv", "write_layer"]


def write_layer(gdf: gpd.GeoDataFrame, path: Path, *, encoding: str = "UTF-8") -> None:
    """Write one layer as a shapefile in EPSG:4490 with a ``.cpg`` naming ``encoding``.

    Parameters
    ----------
    gdf
        The layer, in any CRS (it is transformed to EPSG:4490).
    path
        Target ``.shp`` path; existing files of the same name are replaced.
    encoding
        ``"UTF-8"`` or ``"GBK"`` (written into the ``.cpg`` and used for the DBF text).
    """
    for ext in (".shp", ".shx", ".dbf", ".prj", ".cpg"):
        path.with_suffix(ext).unlink(missing_ok=True)
    too_long = [c for c in gdf.columns if len(c.encode()) > 10]
    if too_long:
        msg = f"{path.name}: field names longer than 10 bytes: {too_long}"
        raise ValueError(msg)
    pyogrio.write_dataframe(
        gdf.to_crs(4490),
        path,
        driver="ESRI Shapefile",
        encoding=encoding,
        layer_options={"RESIZE": "YES", "DBF_DATE_LAST_UPDATE": AS_OF.isoformat()},
    )


def write_csv(df: pd.DataFrame, path: Path) -> None:
    """Write a UTF-8 CSV with ``\\n`` line ends (byte-stable)."""
    df.to_csv(path, index=False, encoding="utf-8", lineterminator="\n")
