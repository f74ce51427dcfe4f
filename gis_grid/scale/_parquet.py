"""Partitioned GeoParquet in and out: one file (or row group) per partition, never gathered."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import geopandas as gpd

from gis_grid.crs import require_crs
from gis_grid.errors import ConflictError, DataFileError

if TYPE_CHECKING:
    import dask_geopandas

__all__ = ["read_geoparquet", "write_geoparquet"]


def read_geoparquet(
    path: str | Path, *, columns: Sequence[str] | None = None
) -> dask_geopandas.GeoDataFrame:
    """Open a (partitioned) GeoParquet dataset lazily, one partition per file or row group.

    Parameters
    ----------
    path
        A ``.parquet`` file, a directory of them (as written by :func:`write_geoparquet`), or
        a glob; local or any fsspec URL (``s3://...``) the workers can reach.
    columns
        Columns to read (the geometry is always read).

    Returns
    -------
    dask_geopandas.GeoDataFrame

    Raises
    ------
    DataFileError
        Nothing readable at ``path``.
    CRSError
        The dataset has no CRS in its GeoParquet metadata.

    Examples
    --------
    >>> points = read_geoparquet("households.parquet")  # doctest: +SKIP
    """
    import dask_geopandas

    try:
        frame = dask_geopandas.read_parquet(
            str(path), columns=None if columns is None else list(columns)
        )
    except (FileNotFoundError, OSError, ValueError) as exc:
        msg = f"{path}: no GeoParquet dataset could be read there ({exc})"
        raise DataFileError(msg) from exc
    require_crs(frame.crs, source=str(path))
    return frame


def write_geoparquet(
    frame: dask_geopandas.GeoDataFrame | gpd.GeoDataFrame,
    path: str | Path,
    *,
    npartitions: int | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a GeoDataFrame as a partitioned GeoParquet dataset (one file per partition).

    Parameters
    ----------
    frame
        Partitioned (written by the workers in parallel, never gathered) or in memory.
    path
        The dataset directory.
    npartitions
        For an in-memory frame: how many files (default 1 per million rows).
    overwrite
        Replace an existing dataset; otherwise an existing non-empty directory is refused.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    CRSError
        The frame has no CRS (the file would not say where its coordinates are).
    ConflictError
        ``path`` exists and ``overwrite`` is false.
    """
    import dask_geopandas

    require_crs(frame.crs, source="the frame to write")
    target = Path(path)
    if not overwrite and target.exists() and (target.is_file() or any(target.iterdir())):
        msg = f"{target} already exists: remove it or pass overwrite=True"
        raise ConflictError(msg)
    if isinstance(frame, gpd.GeoDataFrame):
        parts = npartitions or max(1, -(-len(frame) // 1_000_000))
        frame = dask_geopandas.from_geopandas(frame, npartitions=parts)
    frame.to_parquet(str(target), overwrite=overwrite)
    return target
