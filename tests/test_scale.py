"""gis_grid.scale: the batch on Dask gives the single-machine answers; IO at scale; bad input.

One in-process LocalCluster (two worker threads) serves the module, so no process start-up
is paid per test. Everything is compared with the single-machine path on the sample data
(data/shapefiles, two towns) and the sample database.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import dask_geopandas
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
import sqlalchemy as sa
from distributed import Client
from sqlalchemy.engine import URL
from typer.testing import CliRunner

from gis_grid.assign import assign_points
from gis_grid.db.read import read_town
from gis_grid.errors import ConflictError, CRSError, DataFileError, NotFoundError
from gis_grid.io import read_layer
from gis_grid.plans import draw_town, inputs_from_files
from gis_grid.scale import (
    SchedulerError,
    assign_partitioned,
    copy_to_postgis,
    dask_client,
    draw_towns,
    file_draw_sources,
    iter_postgis,
    read_geoparquet,
    read_postgis_partitioned,
    spatial_partition,
    town_reports,
    write_geoparquet,
    write_postgis_partitioned,
)
from gis_grid.scale.cli import app
from gis_grid.town import town_report
from tests.conftest import SAMPLE_DATA

TOWNS = ("511703109", "511703129")
PARTS = ("assignment", "balance", "ab_posts")
runner = CliRunner()


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    with dask_client(workers=2, processes=False, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def grids() -> gpd.GeoDataFrame:
    return read_layer(SAMPLE_DATA / "grids.shp")


@pytest.fixture(scope="module")
def points(grids: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The sample households, plus points on shared grid vertices and outside every grid."""
    homes = read_layer(SAMPLE_DATA / "households.shp")[["hh_id", "geometry"]]
    xy = shapely.get_coordinates(np.asarray(grids.geometry))
    rng = np.random.default_rng(0)
    on_vertices = xy[rng.choice(len(xy), 300, replace=False)]
    minx, miny, _, maxy = grids.total_bounds
    outside = np.column_stack([np.full(20, minx - 0.01), np.linspace(miny, maxy, 20)])
    extra = np.vstack([on_vertices, outside])
    more = gpd.GeoDataFrame(
        {"hh_id": [f"extra{i}" for i in range(len(extra))]},
        geometry=shapely.points(extra),
        crs=grids.crs,
    )
    return pd.concat([homes, more], ignore_index=True)


def _located(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[["grid", "distance_m", "nearest"]].astype(
        {"grid": object, "nearest": object, "distance_m": float}
    )


def _single(points: gpd.GeoDataFrame, grids: gpd.GeoDataFrame) -> pd.DataFrame:
    result = assign_points(points, grids, grid_id="grid_code")
    out = pd.DataFrame(index=points.index)
    out["grid"] = result.grid.astype(object).where(result.grid.notna(), None)
    out["distance_m"] = result.unassigned["distance_m"].reindex(points.index)
    out["nearest"] = result.unassigned["nearest"].reindex(points.index).astype(object)
    return _located(out)


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    a, b = _located(a).sort_index(), _located(b).sort_index()
    assert a.index.equals(b.index)
    assert a["grid"].fillna("-").tolist() == b["grid"].fillna("-").tolist()
    assert a["nearest"].fillna("-").tolist() == b["nearest"].fillna("-").tolist()
    np.testing.assert_array_equal(a["distance_m"].to_numpy(), b["distance_m"].to_numpy())


# --- assignment -------------------------------------------------------------------------------


@pytest.mark.parametrize("shuffle", [False, True], ids=["row-order", "hilbert"])
def test_assign_partitioned_equals_single_machine(
    client: Client, points: gpd.GeoDataFrame, grids: gpd.GeoDataFrame, shuffle: bool
) -> None:
    expected = _single(points, grids)
    # Border cases present: shared vertices (smallest code) and points outside every grid.
    assert expected["grid"].isna().sum() == 20
    assert (expected["distance_m"].dropna() > 0).all()
    parts = dask_geopandas.from_geopandas(points, npartitions=5)
    if shuffle:
        parts = spatial_partition(parts, npartitions=4)
    located = assign_partitioned(parts, grids, grid_id="grid_code", keep=["hh_id"]).compute()
    _same(located, expected)
    assert (located["hh_id"] == points.loc[located.index, "hh_id"]).all()


def test_assign_converts_points_once(
    client: Client, points: gpd.GeoDataFrame, grids: gpd.GeoDataFrame
) -> None:
    expected = _single(points, grids)
    metric = dask_geopandas.from_geopandas(points.to_crs(4545), npartitions=3)
    with pytest.warns(UserWarning, match="converted"):
        located = assign_partitioned(metric, grids, grid_id="grid_code")
    got = located.compute()
    # Converted there and back: points on a vertex may move off it, all others must agree.
    inner = ~points["hh_id"].str.startswith("extra")
    assert (got["grid"][inner] == expected["grid"][inner]).all()


def test_assign_refuses_bad_input(
    client: Client, points: gpd.GeoDataFrame, grids: gpd.GeoDataFrame
) -> None:
    parts = dask_geopandas.from_geopandas(points, npartitions=2)
    with pytest.raises(CRSError, match="points: no coordinate reference system"):
        assign_partitioned(
            dask_geopandas.from_geopandas(points.set_crs(None, allow_override=True), 2),
            grids,
            grid_id="grid_code",
        )
    with pytest.raises(CRSError, match="grids: no coordinate reference system"):
        assign_partitioned(parts, grids.set_crs(None, allow_override=True), grid_id="grid_code")
    with pytest.raises(DataFileError, match="no column 'code'"):
        assign_partitioned(parts, grids)
    with pytest.raises(DataFileError, match="no column"):
        assign_partitioned(parts, grids, grid_id="grid_code", keep=["nope"])
    bad = grids.copy()
    bad.loc[bad.index[0], "geometry"] = shapely.Polygon()
    with pytest.raises(Exception, match=str(bad["grid_code"].iloc[0])):
        assign_partitioned(parts, bad, grid_id="grid_code")


# --- per-town reports and drawing ----------------------------------------------------------


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


@pytest.mark.postgis
def test_town_reports_equal_single_machine(client: Client, loaded_database_url: URL) -> None:
    engine = sa.create_engine(loaded_database_url)
    try:
        expected = {
            code: _json(
                town_report(read_town(engine, code), band=(150, 300), parts=PARTS).to_dict(PARTS)
            )
            for code in TOWNS
        }
    finally:
        engine.dispose()
    seen: list[str] = []
    results = list(
        town_reports(
            loaded_database_url,
            band=(150, 300),
            parts=PARTS,
            progress=lambda r: seen.append(r.code),
        )
    )
    assert sorted(seen) == sorted(TOWNS)
    assert all(r.ok for r in results)
    got = {r.code: _json(r.value.to_dict(PARTS)) for r in results if r.value is not None}
    assert got == expected
    # The balance and AB posts are really there (not empty parts compared equal).
    first = json.loads(got[TOWNS[0]])
    assert first["balance"]["summary"]["grids"] == 26
    assert first["ab_posts"]["summary"]["groups"] > 0


@pytest.mark.postgis
def test_town_reports_refuse_unknown_town(client: Client, loaded_database_url: URL) -> None:
    with pytest.raises(NotFoundError, match="999999999"):
        list(town_reports(loaded_database_url, ["999999999"]))


@pytest.mark.slow
def test_draw_towns_equal_single_machine(client: Client) -> None:
    options = {"target": 250.0, "tolerance": 0.15, "on_infeasible": "report", "seed": 3}
    expected = {
        code: draw_town(inputs_from_files(SAMPLE_DATA, code), **options)  # type: ignore[arg-type]
        for code in TOWNS
    }
    results = {
        r.code: r
        for r in draw_towns(file_draw_sources(SAMPLE_DATA, TOWNS), **options)  # type: ignore[arg-type]
    }
    assert sorted(results) == sorted(TOWNS)
    for code, plan in expected.items():
        got = results[code].value
        assert got is not None, results[code].error
        assert got.quality.line() == plan.quality.line()
        a = plan.plan.grids.sort_values("grid_code")
        b = got.plan.grids.sort_values("grid_code")
        assert a["grid_code"].tolist() == b["grid_code"].tolist()
        assert shapely.equals_exact(
            np.asarray(a.geometry, dtype=object), np.asarray(b.geometry, dtype=object), 0.0
        ).all()


def test_draw_towns_reports_a_bad_town_without_stopping(client: Client) -> None:
    sources = file_draw_sources(SAMPLE_DATA, ["511703109", "000000000"])
    results = {r.code: r for r in draw_towns({"000000000": sources["000000000"]}, target=250.0)}
    assert not results["000000000"].ok
    assert "no town '000000000'" in str(results["000000000"].error)


# --- IO at scale ---------------------------------------------------------------------------


def test_geoparquet_round_trip(client: Client, points: gpd.GeoDataFrame, tmp_path: Path) -> None:
    target = write_geoparquet(points, tmp_path / "points", npartitions=3)
    assert len(list(target.glob("*.parquet"))) == 3
    back = read_geoparquet(target)
    assert back.npartitions == 3
    assert back.crs == points.crs
    frame = back.compute()
    assert frame["hh_id"].tolist() == points["hh_id"].tolist()
    assert shapely.equals_exact(
        np.asarray(frame.geometry, dtype=object), np.asarray(points.geometry, dtype=object), 0.0
    ).all()
    # A partitioned frame is written by the workers, partition by partition.
    again = write_geoparquet(back, tmp_path / "again")
    assert len(read_geoparquet(again).compute()) == len(points)
    with pytest.raises(ConflictError, match="already exists"):
        write_geoparquet(points, target)


def test_geoparquet_refuses_missing_crs_and_path(points: gpd.GeoDataFrame, tmp_path: Path) -> None:
    bare = points.set_crs(None, allow_override=True)
    with pytest.raises(CRSError, match="no coordinate reference system"):
        write_geoparquet(bare, tmp_path / "bare")
    bare.to_parquet(tmp_path / "bare.parquet")  # written by another tool, without a CRS
    with pytest.raises(CRSError, match=r"bare\.parquet: no coordinate reference system"):
        read_geoparquet(tmp_path / "bare.parquet")
    with pytest.raises(DataFileError, match="no GeoParquet dataset"):
        read_geoparquet(tmp_path / "missing")


@pytest.mark.postgis
def test_postgis_chunked_round_trip(client: Client, fresh_database_url: URL) -> None:
    engine = sa.create_engine(fresh_database_url)
    try:
        with engine.connect() as conn:
            whole = gpd.read_postgis(
                "SELECT id, people, geom FROM households ORDER BY id", conn, geom_col="geom"
            )
            chunks = list(iter_postgis(conn, "households", columns=["people"], chunk_size=5000))
        assert [len(c) for c in chunks[:-1]] == [5000] * (len(chunks) - 1)
        assert len(chunks) == -(-len(whole) // 5000)
        read = pd.concat(chunks, ignore_index=True)
        assert read["id"].tolist() == whole["id"].tolist()
        assert read.crs == whole.crs
        assert shapely.equals_exact(
            np.asarray(read.geometry, dtype=object), np.asarray(whole.geometry, dtype=object), 0
        ).all()
        # Written back with COPY, chunk by chunk (a generator: never all in memory).
        with engine.begin() as conn:
            source = iter_postgis(conn, "households", columns=["people"], chunk_size=4000)
            assert copy_to_postgis(conn, source, "households_copy") == len(whole)
        with engine.begin() as conn, pytest.raises(ConflictError, match="already exists"):
            copy_to_postgis(conn, chunks[0], "households_copy")
        # Read partitioned by id ranges on the workers, and written partitioned with COPY.
        parts = read_postgis_partitioned(
            fresh_database_url, "households_copy", columns=["people"], npartitions=4
        )
        assert parts.npartitions == 4
        assert parts.crs == whole.crs
        frame = parts.compute()
        assert frame["id"].tolist() == whole["id"].tolist()
        assert frame["people"].tolist() == whole["people"].tolist()
        assert write_postgis_partitioned(parts, fresh_database_url, "households_copy2") == len(
            whole
        )
        with engine.connect() as conn:
            same = conn.exec_driver_sql(
                "SELECT count(*) FROM households h JOIN households_copy2 c USING (id) "
                "WHERE ST_Equals(h.geom, c.geom) AND h.people = c.people "
                "AND ST_SRID(c.geom) = 4490"
            ).scalar()
        assert same == len(whole)
    finally:
        engine.dispose()


@pytest.mark.postgis
def test_postgis_refuses_unknown_table(fresh_database_url: URL) -> None:
    engine = sa.create_engine(fresh_database_url)
    try:
        with engine.connect() as conn:
            with pytest.raises(NotFoundError, match="no geometry column"):
                next(iter_postgis(conn, "nothing_here"))
            with pytest.raises(DataFileError, match="not a plain SQL name"):
                next(iter_postgis(conn, "households; DROP TABLE x"))
    finally:
        engine.dispose()


# --- cluster selection ----------------------------------------------------------------------


def test_bad_scheduler_address_is_refused_at_once() -> None:
    with (
        pytest.raises(SchedulerError, match="not a Dask scheduler address"),
        dask_client("tcp://host:99999"),
    ):
        pass


@pytest.mark.timeout(60)
def test_unreachable_scheduler_fails_within_timeout() -> None:
    started = time.perf_counter()
    with (
        pytest.raises(SchedulerError, match=r"no Dask scheduler answered at tcp://127\.0\.0\.1:9"),
        dask_client("tcp://127.0.0.1:9", timeout=2),
    ):
        pass
    assert time.perf_counter() - started < 30  # a clear error, not a hang


def test_cli_bad_scheduler(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIS_GRID_DASK_SCHEDULER", "tcp://127.0.0.1:9")
    result = runner.invoke(app, ["batch", "--timeout", "2"])
    assert result.exit_code == 2
    assert "no Dask scheduler answered at tcp://127.0.0.1:9" in result.output


@pytest.mark.postgis
def test_cli_batch_on_local_cluster(loaded_database_url: URL, tmp_path: Path) -> None:
    env = {"GIS_GRID_DATABASE_URL": loaded_database_url.render_as_string(hide_password=False)}
    result = runner.invoke(
        app,
        ["batch", "--threads", "--workers", "2", "--band", "150-300", "--out", str(tmp_path)],
        env=env,
    )
    assert result.exit_code == 0, result.output
    assert "511703109" in result.output
    assert "511703129" in result.output
    report = json.loads((tmp_path / "511703109.report.json").read_text(encoding="utf-8"))
    assert report["balance"]["summary"]["grids"] == 26
    bad = runner.invoke(app, ["batch", "--threads", "--town", "999999999"], env=env)
    assert bad.exit_code == 2
    assert "999999999" in bad.output


def test_cli_assign_geoparquet(
    points: gpd.GeoDataFrame, grids: gpd.GeoDataFrame, tmp_path: Path
) -> None:
    source = write_geoparquet(points, tmp_path / "points", npartitions=2)
    out = tmp_path / "located"
    args = ["assign", str(source), "--grids", str(SAMPLE_DATA / "grids.shp")]
    args += ["--grid-id", "grid_code", "--keep", "hh_id", "--out", str(out), "--threads"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert f"{len(points)} points assigned" in result.output
    assert "20 outside every grid" in result.output
    located = pd.read_parquet(out).set_index("hh_id")
    expected = _single(points, grids).set_axis(points["hh_id"])
    assert located["grid"].reindex(expected.index).fillna("-").tolist() == (
        expected["grid"].fillna("-").tolist()
    )
    bad = runner.invoke(app, [*args[:-1], "--grid-id", "nope", "--threads"])
    assert bad.exit_code == 2
    assert "no column 'nope'" in bad.output
