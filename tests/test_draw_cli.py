"""``gis-grid draw``: quality table, dry run, new grid versions, reports and bad input.

Runs with typer's CliRunner on a database of its own, loaded with the sample (every test may
write); each test compares the database before and after.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import sqlalchemy as sa
from pyproj import Transformer
from rasterio.transform import from_origin
from sqlalchemy.engine import URL, Engine
from typer.testing import CliRunner

from gis_grid.cli import app
from tests.conftest import SAMPLE_DATA
from tests.test_plans import ZHAOJIA, planning_database, snapshot

pytestmark = pytest.mark.postgis

runner = CliRunner()


@pytest.fixture(scope="module")
def db(database_url: URL) -> Iterator[Engine]:
    yield from planning_database(database_url, "draw_cli")


@pytest.fixture
def env(db: Engine) -> dict[str, str]:
    return {"GIS_GRID_DATABASE_URL": db.url.render_as_string(hide_password=False)}


def _draw(env: dict[str, str], *args: str):
    return runner.invoke(app, ["draw", "--town", ZHAOJIA, *args], env=env)


def _versions(engine: Engine) -> set[int]:
    sql = (
        "SELECT DISTINCT version FROM grids WHERE valid_to IS NULL AND village_code LIKE :t || '%'"
    )
    with engine.connect() as conn:
        return set(conn.scalars(sa.text(sql), {"t": ZHAOJIA}))


def test_dry_run_prints_the_quality_table_and_writes_nothing(db, env):
    before = snapshot(db)
    result = _draw(env, "--dry-run")
    assert result.exit_code == 0, result.output
    for text in ("plan quality", "Polsby-Popper", "natural share", "crossings", "dev"):
        assert text in result.output
    assert "n_grids=26" in result.output and "valid=True" in result.output
    assert "511703109209004" in result.output  # one row per grid
    assert "dry run: nothing written" in result.output
    assert snapshot(db) == before


def test_draw_writes_a_new_version_and_a_report(db, env, tmp_path):
    (version,) = _versions(db)
    report = tmp_path / "plan.json"
    result = _draw(env, "--by", "people", "--note", "cli test", "--report", str(report))
    assert result.exit_code == 0, result.output
    assert "wrote a new grid version" in result.output
    assert "26 grids closed, 26 added" in result.output
    assert "every member's grid code still exists" in result.output
    assert _versions(db) == {version + 1}
    document = json.loads(report.read_text(encoding="utf-8"))
    assert document["town"]["code"] == ZHAOJIA and document["by"] == "people"
    assert len(document["grids"]) == 26 and document["summary"]["valid"] is True
    assert document["applied"]["summary"]["added"] == 26
    assert document["applied"]["summary"]["points_unassigned"] == 0
    with db.connect() as conn:
        stored = conn.scalar(
            sa.text(
                "SELECT count(*) FROM households WHERE village_code LIKE :t || '%' "
                "AND grid_code IS NOT NULL"
            ),
            {"t": ZHAOJIA},
        )
    assert stored == sum(grid["households"] for grid in document["grids"])

    result = _draw(env, "--seed", "7", "--grids-per-village", "current")
    assert result.exit_code == 0, result.output
    assert _versions(db) == {version + 2}


def test_infeasible_target_exits_2_with_the_report(db, env):
    before = snapshot(db)
    result = _draw(env, "--target", "200", "--tolerance", "0.05")
    assert result.exit_code == 2
    assert "what cannot be met" in result.output and "infeasible_band" in result.output
    assert "511703109214" in result.output  # 59 households: below the floor of one grid
    assert "Nothing was written" in result.output and "Traceback" not in result.output
    assert snapshot(db) == before


def test_gpkg_report_from_files_without_a_database(tmp_path):
    report = tmp_path / "plan.gpkg"
    env = {"GIS_GRID_DATABASE_URL": "postgresql+psycopg://nobody:x@127.0.0.1:1/none"}
    result = _draw(env, "--from-files", str(SAMPLE_DATA), "--dry-run", "--report", str(report))
    assert result.exit_code == 0, result.output
    assert f"drawn from {SAMPLE_DATA}" in result.output.replace("\n", "")
    grids = gpd.read_file(report, layer="grids")
    assert len(grids) == 26 and grids.crs.to_epsg() == 4490
    assert {"polsby_popper", "crossings", "dev_pct"} <= set(grids.columns)
    summary = gpd.read_file(report, layer="summary")
    assert summary["town"].iloc[0] == ZHAOJIA


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--town", "511703999", "--dry-run"], "no town '511703999'"),
        (["--town", ZHAOJIA, "--lines", "rivers,lakes", "--dry-run"], "unknown line kind"),
        (["--town", ZHAOJIA, "--report", "plan.csv", "--dry-run"], ".gpkg or .json"),
    ],
)
def test_bad_input_exits_2(db, env, args, match):
    before = snapshot(db)
    result = runner.invoke(app, ["draw", *args], env=env)
    assert result.exit_code == 2, result.output
    assert match in result.output.replace("\n", "")
    assert snapshot(db) == before


# --- DEMs: another CRS is reprojected; no CRS or voids are refused --------------------------


def _dem(path: Path, *, crs: str | None, void: bool = False) -> Path:
    """A V-shaped valley DEM over Zhaojia (with a 3 km margin), 60 m cells, in EPSG:4545."""
    to_gk = Transformer.from_crs(4490, 4545, always_xy=True)
    x0, y0 = to_gk.transform(107.36287, 30.89681)
    x1, y1 = to_gk.transform(107.46728, 30.99236)
    res, pad = 60.0, 3000.0
    width, height = int((x1 - x0 + 2 * pad) / res), int((y1 - y0 + 2 * pad) / res)
    xs = np.arange(width) * res
    z = np.tile(300 + 0.05 * np.abs(xs - xs.mean()), (height, 1)) + np.linspace(
        50, 0, height
    ).reshape(-1, 1)
    if void:
        z[height // 2, width // 2] = -9999
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=width,
        height=height,
        count=1,
        dtype="float32",
        crs=crs,
        transform=from_origin(x0 - pad, y1 + pad, res, res),
        nodata=-9999,
    ) as dst:
        dst.write(z.astype("float32"), 1)
    return path


def test_dem_in_another_crs_adds_terrain_lines(env, tmp_path):
    dem = _dem(tmp_path / "gk.tif", crs="EPSG:4545")
    result = _draw(env, "--dem", str(dem), "--lines", "roads", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "valid=True" in result.output
    header = result.output.replace("\n", "")
    assert "ridge " in header and "stream " in header and "road 130" in header


@pytest.mark.parametrize(
    ("case", "match"),
    [
        ({"crs": None}, "no coordinate reference system"),
        ({"crs": "EPSG:4545", "void": True}, "void"),
    ],
    ids=["no-crs", "void"],
)
def test_dem_without_crs_or_with_voids_exits_2(db, env, tmp_path, case, match):
    before = snapshot(db)
    dem = _dem(tmp_path / "bad.tif", **case)
    result = _draw(env, "--dem", str(dem))
    assert result.exit_code == 2, result.output
    assert match in result.output.replace("\n", "")
    assert snapshot(db) == before
