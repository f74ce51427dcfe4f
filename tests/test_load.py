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
from sample_factory import LINE_COUNTS, clean_tables, row_counts, town_code_for, write_sample
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
    _check_lines(db, good_dir)
    assert report.rows["natural_lines"] == sum(LINE_COUNTS.values())


def _line_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT kind::text, count(*) FROM natural_lines GROUP BY 1"))
        return dict(rows.all())


def _check_lines(engine: Engine, directory: Path) -> None:
    """natural_lines holds exactly the features of the line files, with their attributes."""
    files = {
        name: gpd.read_file(directory / f"{name}.shp") for name in ("rivers", "streams", "roads")
    }
    kinds = {"rivers": "river", "streams": "stream", "roads": "road"}
    assert _line_counts(engine) == {kinds[n]: len(f) for n, f in files.items()}
    with engine.connect() as conn:
        stored = gpd.read_postgis(
            "SELECT kind::text AS kind, code, rank, town_code, synthetic, geom FROM natural_lines",
            conn,
        )
    assert set(stored.geom_type) == {"MultiLineString"}
    assert stored.crs.to_epsg() == 4490
    rivers = stored[stored["kind"] == "river"].set_index("code")
    expected = files["rivers"].set_index("river_id")
    assert rivers["rank"].to_dict() == expected["level"].to_dict()
    assert rivers["town_code"].isna().sum() == expected["town_code"].isna().sum()
    roads = stored[stored["kind"] == "road"].set_index("code")
    road_files = files["roads"].set_index("road_id")
    ranks = {"county": 1, "township": 2, "village": 3}
    assert roads["rank"].to_dict() == road_files["kind"].map(ranks).to_dict()
    # the geometry is the file's, promoted to multi-part
    for name, frame in files.items():
        mine = stored[stored["kind"] == kinds[name]].set_index("code").geometry
        for code, geom in zip(frame.iloc[:, 0], frame.geometry, strict=True):
            assert mine[code].equals(shapely.MultiLineString([geom]))


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


def test_replacing_twice_never_duplicates_lines(db, good_dir):
    load_sample(good_dir, db)
    first = row_counts(db)
    assert first["natural_lines"] == sum(LINE_COUNTS.values())
    for _ in range(2):
        load_sample(good_dir, db, replace=True)
        assert row_counts(db) == first
    _check_lines(db, good_dir)


def test_replacing_one_town_keeps_the_other_towns_lines(db, good_dir, tmp_path):
    other = write_sample(tmp_path / "other", town_index=12, seed=5)
    load_sample(good_dir, db)
    load_sample(other, db)
    with db.connect() as conn:
        before = conn.execute(
            sa.text("SELECT id, code FROM natural_lines WHERE code LIKE :p ORDER BY id"),
            {"p": f"%{town_code_for(12)}%"},
        ).all()
    assert len(before) == sum(LINE_COUNTS.values())  # its town-less river piece too
    load_sample(good_dir, db, replace=True)
    with db.connect() as conn:
        after = conn.execute(
            sa.text("SELECT id, code FROM natural_lines WHERE code LIKE :p ORDER BY id"),
            {"p": f"%{town_code_for(12)}%"},
        ).all()
        replaced = conn.scalar(
            sa.text("SELECT count(*) FROM natural_lines WHERE code LIKE :p"),
            {"p": f"%{town_code_for(9)}%"},
        )
    assert after == before  # same rows, same ids: untouched
    assert replaced == sum(LINE_COUNTS.values())


def test_town_less_line_already_stored_elsewhere_is_refused(db, good_dir, tmp_path):
    # a town-less river piece already loaded outside this load's extent keeps its code:
    # the database refuses a second copy rather than duplicating it or taking it over
    load_sample(good_dir, db)
    moved = write_sample(tmp_path / "moved", town_index=12, seed=5)
    rivers = gpd.read_file(moved / "rivers.shp")
    rivers.loc[1, "river_id"] = f"R{town_code_for(9)}2"
    rivers.to_file(moved / "rivers.shp")
    before = row_counts(db)
    with pytest.raises(DuplicateCodeError, match=r"rivers\.shp.*uq_natural_lines_kind_code"):
        load_sample(moved, db, replace=True)
    assert row_counts(db) == before


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


def _unknown_road_class(d: Path) -> None:
    gdf = gpd.read_file(d / "roads.shp")
    gdf.loc[2, "kind"] = "highway"
    gdf.to_file(d / "roads.shp")


def _river_level_out_of_range(d: Path) -> None:
    gdf = gpd.read_file(d / "rivers.shp")
    gdf.loc[1, "level"] = 13
    gdf.to_file(d / "rivers.shp")


def _line_of_unknown_town(d: Path) -> None:
    gdf = gpd.read_file(d / "streams.shp")
    gdf.loc[1, "town_code"] = "511703199"
    gdf.to_file(d / "streams.shp")


def _line_far_from_its_town(d: Path) -> None:
    gdf = gpd.read_file(d / "roads.shp")
    gdf.loc[1, "geometry"] = shapely.LineString([(107.1, 31.3), (107.12, 31.31)])
    gdf.to_file(d / "roads.shp")


def _line_outside_china(d: Path) -> None:
    gdf = gpd.read_file(d / "rivers.shp")
    gdf.loc[0, "geometry"] = shapely.LineString([(2.30, 48.85), (2.31, 48.86)])
    gdf.to_file(d / "rivers.shp")


def _line_is_a_point(d: Path) -> None:
    gdf = gpd.read_file(d / "streams.shp")
    gdf = gpd.GeoDataFrame(
        gdf.drop(columns="geometry"), geometry=gdf.representative_point(), crs=gdf.crs
    )
    gdf.to_file(d / "streams.shp")


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
    "unknown road class": (
        _unknown_road_class,
        DataFileError,
        ["roads.shp", "feature 3 (road_id=", "kind='highway'", "county, township, village"],
    ),
    "river level out of range": (
        _river_level_out_of_range,
        DataFileError,
        ["rivers.shp", "feature 2 (river_id=", "level", "1 (most important) to 12"],
    ),
    "line of an unknown town": (
        _line_of_unknown_town,
        DataFileError,
        ["streams.shp", "feature 2 (strm_id=", "town_code", "towns.shp"],
    ),
    "line far from its town": (
        _line_far_from_its_town,
        DataFileError,
        ["roads.shp", "feature 2 (road_id=", "geometry", "does not reach its town"],
    ),
    "line outside China": (_line_outside_china, CoordinateError, ["rivers.shp", "outside China"]),
    "point in a line layer": (
        _line_is_a_point,
        GeometryError,
        ["streams.shp", "Point", "LineString"],
    ),
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
        # rivers and streams are real (GSHHG, SRTM-derived), roads synthetic
        provenance = dict(
            conn.execute(
                sa.text("SELECT kind::text, bool_and(synthetic) FROM natural_lines GROUP BY 1")
            ).all()
        )
        assert provenance == {"river": False, "stream": False, "road": True}
    # every feature of the three line files, once; and again after replacing twice
    _check_lines(db, SAMPLE_DATA)
    assert report.rows["natural_lines"] == counts["natural_lines"] == 4 + 124 + 344
    for _ in range(2):
        load_sample(SAMPLE_DATA, db, replace=True)
        assert row_counts(db) == counts
