"""Loading the sample layers: one transaction, clear errors on bad input, nothing half-written."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely
import sqlalchemy as sa
from sample_factory import clean_tables, row_counts, town_code_for, write_sample
from sqlalchemy.engine import URL, Engine

from gis_grid.db import migrate
from gis_grid.errors import (
    CoordinateError,
    CRSError,
    DataFileError,
    DuplicateCodeError,
    EncodingError,
    GeometryError,
    GridError,
)
from gis_grid.load import LAYERS, load_sample, read_sample, validate_sample

pytestmark = pytest.mark.postgis


@pytest.fixture(scope="module")
def migrated(database_url: URL, engine: Engine) -> Engine:
    migrate.upgrade(database_url)
    return engine


@pytest.fixture
def db(migrated: Engine) -> Engine:
    clean_tables(migrated)
    return migrated


@pytest.fixture(scope="module")
def good_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_sample(tmp_path_factory.mktemp("good") / "sample")


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_load_counts_and_spatial_assignment(db, good_dir):
    report = load_sample(good_dir, db)
    counts = row_counts(db)
    assert counts["towns"] == 1 and counts["villages"] == 2 and counts["grids"] == 8
    assert counts["households"] == 40 and counts["members"] == 8 and counts["task_types"] == 3
    assert report.rows["residents"] == counts["residents"] > 0
    assert report.unassigned == {
        "households": 0,
        "pollution_points": 0,
        "hazards": 0,
        "incidents": 0,
    }
    assert report.missing_layers == [] and report.seconds > 0
    with db.connect() as conn:
        people = conn.scalar(sa.text("SELECT sum(people) FROM households"))
        assert people == counts["residents"]
        # every point sits in the grid it was given, and the grid is in its village
        wrong = conn.scalar(
            sa.text(
                "SELECT count(*) FROM households h JOIN grids g ON g.code = h.grid_code "
                "WHERE NOT ST_Covers(g.geom, h.geom) OR g.village_code <> h.village_code"
            )
        )
        assert wrong == 0
        assert conn.scalar(sa.text("SELECT bool_and(synthetic) FROM residents"))
        assert conn.scalar(sa.text("SELECT name FROM villages ORDER BY code LIMIT 1")) == "利群社区"
        reported = conn.scalar(sa.text("SELECT min(reported_at) FROM incidents"))
        assert reported.utcoffset() is not None
        assert reported.astimezone().isoformat().startswith("2026-03-01")


def test_second_load_without_replace_is_refused_and_changes_nothing(db, good_dir):
    load_sample(good_dir, db)
    before = row_counts(db)
    with pytest.raises(DuplicateCodeError, match=r"towns\.shp.*already loaded.*--replace"):
        load_sample(good_dir, db)
    assert row_counts(db) == before


def test_replace_in_one_transaction(db, good_dir, tmp_path):
    other = write_sample(tmp_path / "other", town_index=12, seed=5)
    load_sample(good_dir, db)
    load_sample(other, db)
    both = row_counts(db)
    # fewer households the second time: replace drops the old ones (and their residents)
    smaller = _copy(good_dir, tmp_path / "smaller")
    households = gpd.read_file(smaller / "households.shp").iloc[:30]
    households.to_file(smaller / "households.shp")
    residents = pd.read_csv(smaller / "residents.csv", dtype=str)
    residents[residents["hh_id"].isin(households["hh_id"])].to_csv(
        smaller / "residents.csv", index=False
    )
    report = load_sample(smaller, db, replace=True)
    after = row_counts(db)
    assert after["households"] == both["households"] - 10
    assert after["towns"] == 2 and after["grids"] == both["grids"]
    assert report.rows["households"] == 30
    with db.connect() as conn:
        other_town = town_code_for(12)
        kept = conn.scalar(
            sa.text("SELECT count(*) FROM households WHERE left(village_code, 9) = :t"),
            {"t": other_town},
        )
    assert kept == 40


def _no_prj(d: Path) -> None:
    (d / "grids.prj").unlink()


def _garbage_prj(d: Path) -> None:
    (d / "grids.prj").write_text("GEOGCS[nonsense")


def _swapped(d: Path) -> None:
    gdf = gpd.read_file(d / "households.shp")
    gdf.geometry = shapely.transform(gdf.geometry.to_numpy(), lambda xy: xy[:, ::-1])
    gdf.to_file(d / "households.shp")


def _projected_metres_declared_degrees(d: Path) -> None:
    gdf = gpd.read_file(d / "pollution.shp").to_crs(4545).set_crs(4490, allow_override=True)
    gdf.to_file(d / "pollution.shp")


def _bowtie(d: Path) -> None:
    gdf = gpd.read_file(d / "grids.shp")
    x0, y0, x1, y1 = gdf.geometry.iloc[2].bounds
    gdf.loc[2, "geometry"] = shapely.Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1), (x0, y0)])
    gdf.to_file(d / "grids.shp")


def _empty(d: Path) -> None:
    gdf = gpd.read_file(d / "grids.shp")
    gdf.loc[1, "geometry"] = None
    gdf.to_file(d / "grids.shp")


def _duplicate_codes(d: Path) -> None:
    gdf = gpd.read_file(d / "grids.shp")
    gdf.loc[3, "grid_code"] = gdf.loc[0, "grid_code"]
    gdf.to_file(d / "grids.shp")


def _wrong_encoding(d: Path) -> None:
    (d / "villages.cpg").write_text("UTF-8")  # the DBF is GBK


def _grid_outside_village(d: Path) -> None:
    gdf = gpd.read_file(d / "grids.shp")
    gdf.loc[0, "geometry"] = shapely.affinity.translate(gdf.geometry.iloc[0], xoff=-0.005)
    gdf.to_file(d / "grids.shp")


def _code_not_from_village(d: Path) -> None:
    gdf = gpd.read_file(d / "grids.shp")
    gdf.loc[0, "grid_code"] = "511703109299001"
    gdf.to_file(d / "grids.shp")


def _bad_id_number(d: Path) -> None:
    residents = pd.read_csv(d / "residents.csv", dtype=str)
    number = residents.loc[4, "id_number"]
    residents.loc[4, "id_number"] = number[:17] + ("0" if number[17] != "0" else "1")
    residents.to_csv(d / "residents.csv", index=False)


def _unknown_status(d: Path) -> None:
    gdf = gpd.read_file(d / "incidents.shp")
    gdf.loc[1, "status"] = "finished"
    gdf.to_file(d / "incidents.shp")


def _unknown_village(d: Path) -> None:
    gdf = gpd.read_file(d / "hazards.shp")
    gdf.loc[0, "vill_code"] = "511703109999"
    gdf.to_file(d / "hazards.shp")


def _point_outside_town(d: Path) -> None:
    gdf = gpd.read_file(d / "households.shp")
    gdf.loc[5, "geometry"] = shapely.Point(107.0, 31.3)
    gdf.to_file(d / "households.shp")


def _missing_field(d: Path) -> None:
    gdf = gpd.read_file(d / "villages.shp", encoding="GBK").drop(columns=["kind"])
    gdf.to_file(d / "villages.shp", encoding="GBK")


def _missing_layer(d: Path) -> None:
    for part in d.glob("grids.*"):
        part.unlink()


BROKEN: dict[str, tuple[Callable[[Path], None], type[GridError], list[str]]] = {
    "no CRS": (_no_prj, CRSError, ["grids.shp", "EPSG:4490"]),
    "unknown CRS": (_garbage_prj, GridError, ["grids.shp"]),
    "swapped lat/lon": (_swapped, CoordinateError, ["households.shp", "feature 1", "swapped"]),
    "outside China": (
        _projected_metres_declared_degrees,
        CoordinateError,
        ["pollution.shp", "outside China"],
    ),
    "bow-tie polygon": (
        _bowtie,
        GeometryError,
        ["grids.shp", "feature 3", "grid_code=", "Self-intersection"],
    ),
    "empty polygon": (_empty, GridError, ["grids.shp", "feature 2", "no geometry"]),
    "duplicate grid codes": (
        _duplicate_codes,
        DuplicateCodeError,
        ["grids.shp", "feature 1", "feature 4", "grid_code"],
    ),
    "wrong encoding": (_wrong_encoding, EncodingError, ["villages", "vill_name"]),
    "grid outside village": (
        _grid_outside_village,
        DataFileError,
        ["grids.shp", "feature 1 (grid_code=", "inside its village"],
    ),
    "grid code not from village": (
        _code_not_from_village,
        DataFileError,
        ["grids.shp", "feature 1", "grid_code"],
    ),
    "bad ID number": (
        _bad_id_number,
        DataFileError,
        ["residents.csv", "line 6", "id_number", "check character"],
    ),
    "unknown status": (
        _unknown_status,
        DataFileError,
        ["incidents.shp", "feature 2", "status", "dispatched"],
    ),
    "unknown village": (
        _unknown_village,
        DataFileError,
        ["hazards.shp", "feature 1", "vill_code", "villages.shp"],
    ),
    "point outside the town": (
        _point_outside_town,
        DataFileError,
        ["households.shp", "feature 6", "outside the towns"],
    ),
    "missing field": (_missing_field, DataFileError, ["villages.shp", "kind"]),
    "missing layer": (_missing_layer, DataFileError, ["grids.shp", "required"]),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_broken_copy_gives_clear_error_and_changes_nothing(db, good_dir, tmp_path, case):
    load_sample(good_dir, db)
    before = row_counts(db)
    breaker, error, fragments = BROKEN[case]
    broken = _copy(good_dir, tmp_path / "broken")
    breaker(broken)
    with pytest.raises(error) as info:
        load_sample(broken, db, replace=True)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    assert row_counts(db) == before


def test_database_refusal_rolls_back_the_replace(db, good_dir, tmp_path):
    # a household code already used by another town passes the file checks but the
    # database's unique constraint refuses it after the replacing DELETEs have run:
    # the whole transaction must roll back, leaving the first town as it was
    other = write_sample(tmp_path / "other", town_index=12, seed=5)
    load_sample(good_dir, db)
    load_sample(other, db)
    before = row_counts(db)
    broken = _copy(good_dir, tmp_path / "broken")
    households = gpd.read_file(broken / "households.shp")
    stolen = gpd.read_file(other / "households.shp")["hh_id"].iloc[0]
    residents = pd.read_csv(broken / "residents.csv", dtype=str)
    residents.loc[residents["hh_id"] == households.loc[0, "hh_id"], "hh_id"] = stolen
    residents.to_csv(broken / "residents.csv", index=False)
    households.loc[0, "hh_id"] = stolen
    households.to_file(broken / "households.shp")
    with pytest.raises(
        DuplicateCodeError, match=r"households\.shp.*uq_households_code.*Nothing was loaded"
    ):
        load_sample(broken, db, replace=True)
    assert row_counts(db) == before


def test_read_and_validate_without_database(good_dir):
    frames = read_sample(good_dir)
    assert set(frames) == set(LAYERS)
    assert frames["grids"].crs.to_epsg() == 4490
    assert frames["villages"]["name"].tolist() == ["利群社区", "林山村"]
    validate_sample(frames)


def test_progress_is_reported(db, good_dir):
    steps: list[tuple[str, int, int]] = []
    load_sample(good_dir, db, progress=lambda step, done, total: steps.append((step, done, total)))
    assert steps[0][1] == 0 and steps[-1] == ("done", steps[-1][2], steps[-1][2])
    assert [s[1] for s in steps] == sorted(s[1] for s in steps)
    assert any("assigning households" in s[0] for s in steps)


SAMPLE_DATA = Path(__file__).resolve().parents[1] / "data" / "shapefiles"


@pytest.mark.slow
def test_shipped_sample_data_loads(db):
    report = load_sample(SAMPLE_DATA, db)
    counts = row_counts(db)
    assert counts["towns"] >= 1 and counts["grids"] > 0 and counts["households"] > 1000
    assert report.rows["residents"] == counts["residents"]
    # every household and located item falls in a current grid of its village
    assert set(report.unassigned.values()) == {0}
    with db.connect() as conn:
        orphans = conn.scalar(
            sa.text(
                "SELECT count(*) FROM households h LEFT JOIN grids g "
                "ON g.code = h.grid_code AND g.valid_to IS NULL WHERE g.id IS NULL"
            )
        )
        assert orphans == 0
        # 一格一员: one appointed member per current grid (article 5)
        per_grid = conn.execute(
            sa.text(
                "SELECT g.code, count(m.id) FROM grids g LEFT JOIN members m "
                "ON m.grid_code = g.code AND m.status = 'appointed' "
                "WHERE g.valid_to IS NULL GROUP BY g.code"
            )
        ).all()
        assert {n for _, n in per_grid} == {1}
        assert conn.scalar(sa.text("SELECT bool_and(synthetic) FROM households"))
