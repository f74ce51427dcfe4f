"""The gis-grid command line, run with typer's CliRunner against the real scratch database."""

from __future__ import annotations

import shutil
from pathlib import Path

import geopandas as gpd
import pytest
from sample_factory import LINE_COUNTS, clean_tables, row_counts, write_sample
from sqlalchemy.engine import URL, Engine
from typer.testing import CliRunner

from gis_grid.cli import app
from gis_grid.db import migrate
from gis_grid.sample import read_sample_layer

pytestmark = pytest.mark.postgis

runner = CliRunner()


@pytest.fixture
def env(database_url: URL, engine: Engine) -> dict[str, str]:
    migrate.upgrade(database_url)
    clean_tables(engine)
    return {"GIS_GRID_DATABASE_URL": database_url.render_as_string(hide_password=False)}


@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_sample(tmp_path_factory.mktemp("cli") / "sample")


def _run(args: list[str], env: dict[str, str]):
    return runner.invoke(app, args, env=env)


def test_db_check(env):
    result = _run(["db", "check"], env)
    assert result.exit_code == 0, result.output
    assert "PostGIS 3." in result.output and "up to date" in result.output


def test_db_check_unreachable_fails_clearly():
    env = {"GIS_GRID_DATABASE_URL": "postgresql+psycopg://nobody:secret@127.0.0.1:1/none"}
    result = _run(["db", "check"], env)
    assert result.exit_code == 2
    assert "cannot connect" in result.output
    assert "secret" not in result.output  # the password is never printed
    assert "Traceback" not in result.output


def test_db_upgrade_and_bad_downgrade(env):
    result = _run(["db", "upgrade"], env)
    assert result.exit_code == 0 and migrate.head() in result.output
    result = _run(["db", "downgrade", "nonexistent"], env)
    assert result.exit_code == 2 and "migration" in result.output


def test_load_info_export(env, engine, sample_dir, tmp_path):
    result = _run(["load", str(sample_dir)], env)
    assert result.exit_code == 0, result.output
    assert "households" in result.output and "40" in result.output
    assert row_counts(engine)["grids"] == 8

    result = _run(["info"], env)
    assert result.exit_code == 0
    assert "grids (current)" in result.output and "residents" in result.output

    out = tmp_path / "members.gpkg"
    result = _run(["export", "members", str(out), "--town", "511703109"], env)
    assert result.exit_code == 0, result.output
    members = gpd.read_file(out)
    assert (
        len(members) == 8 and "phone" not in members.columns and "birth_date" not in members.columns
    )

    out = tmp_path / "residents.geojson"
    assert _run(["export", "residents", str(out)], env).exit_code == 0
    residents = gpd.read_file(out)
    assert not {"name", "id_number", "phone"} & set(residents.columns)
    assert len(residents) == row_counts(engine)["residents"]

    out = tmp_path / "grids.zip"
    assert _run(["export", "grids", str(out)], env).exit_code == 0
    grids = gpd.read_file(out)
    assert grids.crs.to_epsg() == 4490 and "grid_code" in grids.columns and len(grids) == 8


def test_export_natural_lines(env, engine, sample_dir, tmp_path):
    assert _run(["load", str(sample_dir)], env).exit_code == 0
    info = _run(["info"], env)
    assert "natural_lines" in info.output and str(sum(LINE_COUNTS.values())) in info.output

    for layer, count in LINE_COUNTS.items():
        out = tmp_path / f"{layer}.gpkg"
        result = _run(["export", layer, str(out)], env)
        assert result.exit_code == 0, result.output
        assert f"wrote {count} {layer}" in result.output
        frame = gpd.read_file(out, layer=layer)
        assert len(frame) == count and frame.crs.to_epsg() == 4490
        assert set(frame.geom_type) == {"MultiLineString"}
    out = tmp_path / "natural_lines.gpkg"
    assert _run(["export", "natural_lines", str(out)], env).exit_code == 0
    lines = gpd.read_file(out)
    assert lines["kind"].value_counts().to_dict() == {"road": 3, "river": 2, "stream": 2}
    assert set(lines.loc[lines["kind"] == "road", "class"]) == {"county", "township", "village"}

    # --town: the lines of the town, and those crossing it (not the town-less piece beside it)
    out = tmp_path / "rivers_town.geojson"
    assert _run(["export", "rivers", str(out), "--town", "511703109"], env).exit_code == 0
    assert len(gpd.read_file(out)) == 1

    # a shapefile export uses the sample's field names: it loads back as the same layer
    out = tmp_path / "streams.shp"
    assert _run(["export", "streams", str(out)], env).exit_code == 0
    again = read_sample_layer(tmp_path, "streams")
    assert again is not None
    original = read_sample_layer(sample_dir, "streams")
    assert again["code"].tolist() == original["code"].tolist()
    assert again["rank"].tolist() == original["rank"].tolist()


def test_load_twice_and_replace(env, sample_dir):
    assert _run(["load", str(sample_dir)], env).exit_code == 0
    result = _run(["load", str(sample_dir)], env)
    assert result.exit_code == 2 and "--replace" in result.output
    assert _run(["load", str(sample_dir), "--replace"], env).exit_code == 0


def test_bad_input_is_a_clear_error_without_traceback(env, engine, sample_dir, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(sample_dir, broken)
    (broken / "grids.prj").unlink()
    result = _run(["load", str(broken)], env)
    assert result.exit_code == 2
    assert "error:" in result.output and "grids.shp" in result.output
    assert "Traceback" not in result.output
    assert row_counts(engine)["towns"] == 0


def test_export_errors(env, tmp_path):
    result = _run(["export", "nonsense", str(tmp_path / "x.gpkg")], env)
    assert result.exit_code == 2 and "unknown layer" in result.output
    result = _run(["export", "grids", str(tmp_path / "x.gpkg"), "--town", "511703999"], env)
    assert result.exit_code == 2 and "no grids in town 511703999" in result.output
