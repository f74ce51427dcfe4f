"""Streams and ridgelines from the real SRTM tile; DEMs without CRS or with voids refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from gis_grid.terrain import TerrainError, read_dem, terrain_lines
from tests.conftest import SHARED_DATA

DEM = SHARED_DATA / "srtm3_N31E107.tif"
HESHI = (107.36, 31.10, 107.50, 31.22)


def test_streams_follow_low_ground_and_ridges_high_ground() -> None:
    dem = read_dem(DEM, bounds=HESHI)
    lines = terrain_lines(dem, bounds=HESHI, stream_km2=1.0, ridge_km2=0.25)
    assert set(lines["kind"]) == {"stream", "ridge"}
    assert lines.crs.to_epsg() == 4490
    inv = ~dem.transform
    median = float(np.median(dem.z))

    def mean_elevation(kind: str) -> float:
        coords = np.vstack([np.asarray(g.coords) for g in lines[lines["kind"] == kind].geometry])
        cols, rows = inv @ (coords[:, 0], coords[:, 1])
        return float(dem.z[rows.astype(int), cols.astype(int)].mean())

    assert mean_elevation("stream") < median - 20
    assert mean_elevation("ridge") > median + 20


def _write(path: Path, z: np.ndarray, *, crs: str | None, nodata: float | None = None) -> Path:
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=z.shape[1],
        height=z.shape[0],
        count=1,
        dtype="float32",
        crs=crs,
        transform=from_origin(107.0, 32.0, 0.01, 0.01),
        nodata=nodata,
    ) as dst:
        dst.write(z.astype("float32"), 1)
    return path


def test_dem_without_crs_refused(tmp_path: Path) -> None:
    path = _write(tmp_path / "nocrs.tif", np.ones((100, 100)), crs=None)
    with pytest.raises(TerrainError, match="no coordinate reference system"):
        read_dem(path, bounds=(107.3, 31.3, 107.5, 31.5))


def test_dem_with_voids_refused(tmp_path: Path) -> None:
    z = np.ones((100, 100))
    z[50, 40] = -32768
    path = _write(tmp_path / "voids.tif", z, crs="EPSG:4326", nodata=-32768)
    with pytest.raises(TerrainError, match="1 void cell"):
        read_dem(path, bounds=(107.3, 31.3, 107.5, 31.5))


def test_dem_not_covering_area_refused() -> None:
    with pytest.raises(TerrainError, match="does not cover"):
        read_dem(DEM, bounds=(107.3, 30.9, 107.5, 31.05))
