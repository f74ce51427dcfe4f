"""File exchange over HTTP and the CLI: downloads, round trips, dry runs, GBK shapefiles, and
hostile or broken uploads.

Real uvicorn server over the module's writable copy of the sample. Each refusal is checked
twice: a 4xx whose body names the file, entry, feature or field, and a digest of every table
an import can touch, showing that nothing stored changed.
"""

from __future__ import annotations

import io
import json
import stat
import zipfile
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import httpx
import pyogrio
import pytest
import shapely
import sqlalchemy as sa
import typer
from typer.testing import CliRunner

from gis_grid.exchange import MAX_ENTRIES, cli

pytestmark = pytest.mark.postgis

V1 = "/api/v1"
TOWN = "511703109"
VILLAGE = "511703109209"

SNAPSHOT_SQL = """
SELECT md5(concat(
  (SELECT string_agg(concat_ws('|', id, code, version, valid_to, name, md5(ST_AsEWKB(geom))), ','
          ORDER BY id) FROM grids),
  (SELECT string_agg(concat_ws('|', code, name, kind, md5(ST_AsEWKB(geom))), ',' ORDER BY code)
   FROM villages),
  (SELECT string_agg(concat_ws('|', id, code, name, kind, grid_code, md5(ST_AsEWKB(geom))), ','
          ORDER BY id) FROM pollution_points),
  (SELECT string_agg(concat_ws('|', id, code, name, level, grid_code, md5(ST_AsEWKB(geom))), ','
          ORDER BY id) FROM hazards),
  (SELECT string_agg(concat_ws('|', id, code, status, grid_code), ',' ORDER BY id) FROM incidents),
  (SELECT string_agg(concat_ws('|', id, grid_code), ',' ORDER BY id) FROM households)
))
"""


@pytest.fixture(scope="module")
def client(writable_server_url: str, auth_headers) -> Iterator[httpx.Client]:
    headers = auth_headers(writable_server_url)
    with httpx.Client(base_url=writable_server_url + V1, timeout=120, headers=headers) as c:
        yield c


@pytest.fixture(scope="module")
def db(writable_database_url) -> Iterator[sa.Engine]:
    engine = sa.create_engine(writable_database_url)
    yield engine
    engine.dispose()


def snapshot(db: sa.Engine) -> str:
    with db.connect() as conn:
        return str(conn.scalar(sa.text(SNAPSHOT_SQL)))


def download(client: httpx.Client, layer: str, fmt: str, tmp_path: Path) -> Path:
    response = client.get(f"/exchange/{layer}", params={"format": fmt, "town": TOWN})
    assert response.status_code == 200, response.text
    name = response.headers["content-disposition"].split('filename="')[1].rstrip('"')
    path = tmp_path / name
    path.write_bytes(response.content)
    return path


def upload(
    client: httpx.Client, layer: str, name: str, data: bytes, *, dry_run: bool = False
) -> httpx.Response:
    return client.post(
        f"/exchange/{layer}",
        params={"dry_run": str(dry_run).lower()},
        files={"file": (name, data)},
    )


def zip_bytes(entries: dict[str, bytes], infos: list[zipfile.ZipInfo] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
        for info in infos or []:
            archive.writestr(info, b"/etc/passwd")
    return buffer.getvalue()


def shapefile_zip(
    gdf: gpd.GeoDataFrame, tmp_path: Path, *, encoding: str, cpg: str | None
) -> bytes:
    """A zipped shapefile written in ``encoding``, with the given .cpg text or none."""
    folder = tmp_path / f"shp_{encoding}_{cpg}"
    folder.mkdir()
    pyogrio.write_dataframe(gdf, folder / "pollution.shp", encoding=encoding)
    (folder / "pollution.cpg").unlink(missing_ok=True)
    if cpg is not None:
        (folder / "pollution.cpg").write_text(cpg)
    return zip_bytes({p.name: p.read_bytes() for p in sorted(folder.iterdir())})


def new_points(db: sa.Engine, n: int = 2) -> gpd.GeoDataFrame:
    """Pollution points with Chinese names inside a village, in the sample files' fields."""
    with db.connect() as conn:
        lon, lat = conn.execute(
            sa.text(
                "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p FROM villages "
                "WHERE code = :v) s"
            ),
            {"v": VILLAGE},
        ).one()
    return gpd.GeoDataFrame(
        {
            "pp_id": [f"PX{i:03d}" for i in range(n)],
            "name": [f"养殖场排污口{i}号" for i in range(n)],
            "vill_code": [VILLAGE] * n,
            "kind": ["养殖"] * n,
        },
        geometry=[shapely.Point(lon + i * 1e-4, lat) for i in range(n)],
        crs=4490,
    )


# --- downloads -------------------------------------------------------------------------------


@pytest.mark.parametrize("layer", ["grids", "villages", "pollution", "hazards", "incidents"])
@pytest.mark.parametrize("fmt", ["gpkg", "shp", "geojson", "kml"])
def test_download_every_layer_and_format(
    client: httpx.Client, tmp_path: Path, layer: str, fmt: str
) -> None:
    path = download(client, layer, fmt, tmp_path)
    if fmt == "shp":
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            cpg = next(n for n in names if n.endswith(".cpg"))
            assert archive.read(cpg).decode().strip().upper() in {"UTF-8", "UTF8"}
            assert any(n.endswith(".prj") for n in names)
        frame = gpd.read_file(f"/vsizip/{path}")
    else:
        frame = gpd.read_file(path)
    assert len(frame) > 0
    assert frame.crs is not None
    # No personal data (KML's own "description" element is empty).
    assert {"phone", "id_number", "address", "reported_by", "member_id"}.isdisjoint(frame.columns)
    if "description" in frame.columns:
        assert not frame["description"].fillna("").astype(str).str.strip().any()


def test_geopackage_opens_as_a_gis_layer(client: httpx.Client, tmp_path: Path) -> None:
    path = download(client, "grids", "gpkg", tmp_path)
    layers = pyogrio.list_layers(path)
    assert layers[0][0] == "grids"
    info = pyogrio.read_info(path)
    assert info["crs"] == "EPSG:4490"
    assert info["geometry_type"] == "MultiPolygon"
    names = gpd.read_file(path)["name"].tolist()
    assert any("网格" in str(n) for n in names)  # Chinese text survives as UTF-8


def test_download_bad_input(client: httpx.Client) -> None:
    assert client.get("/exchange/residents").status_code == 422
    response = client.get("/exchange/grids", params={"format": "dxf"})
    assert response.status_code == 422
    assert "format" in response.text
    response = client.get("/exchange/grids", params={"town": "511703999"})
    assert response.status_code == 404
    assert "511703999" in response.text


# --- round trips and dry runs ----------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["gpkg", "shp", "geojson", "kml"])
def test_exported_files_import_back_unchanged(
    client: httpx.Client, db: sa.Engine, tmp_path: Path, fmt: str
) -> None:
    before = snapshot(db)
    for layer in ("grids", "hazards", "incidents"):
        path = download(client, layer, fmt, tmp_path)
        response = upload(client, layer, path.name, path.read_bytes())
        assert response.status_code == 200, response.text
        report = response.json()
        assert report["counts"]["unchanged"] == report["features"] > 0, report
        assert report["counts"]["added"] == report["counts"]["changed"] == 0
    assert snapshot(db) == before


def test_dry_run_reports_and_import_applies(
    client: httpx.Client, db: sa.Engine, tmp_path: Path
) -> None:
    path = download(client, "hazards", "gpkg", tmp_path)
    frame = gpd.read_file(path)
    frame.loc[0, "name"] = "改名的隐患"
    frame.loc[1, "geometry"] = shapely.Point(
        frame.loc[1].geometry.x + 2e-4, frame.loc[1].geometry.y
    )
    extra = frame.iloc[[2]].copy()
    extra["code"] = "HZ-NEW-001"
    edited = gpd.GeoDataFrame([*frame.to_dict("records"), *extra.to_dict("records")], crs=frame.crs)
    edited_path = tmp_path / "hazards_edited.gpkg"
    edited.to_file(edited_path, layer="hazards")
    data = edited_path.read_bytes()

    before = snapshot(db)
    dry = upload(client, "hazards", "hazards_edited.gpkg", data, dry_run=True)
    assert dry.status_code == 200, dry.text
    report = dry.json()
    assert report["dry_run"] is True
    assert report["added"] == ["HZ-NEW-001"]
    assert report["changed"] == {frame.loc[0, "code"]: ["name"], frame.loc[1, "code"]: ["geometry"]}
    assert snapshot(db) == before  # a dry run stores nothing

    done = upload(client, "hazards", "hazards_edited.gpkg", data)
    assert done.status_code == 200, done.text
    assert {k: v for k, v in done.json().items() if k != "dry_run"} == {
        k: v for k, v in report.items() if k != "dry_run"
    }
    with db.connect() as conn:
        name = conn.scalar(
            sa.text("SELECT name FROM hazards WHERE code = :c"), {"c": frame.loc[0, "code"]}
        )
        grid = conn.scalar(sa.text("SELECT grid_code FROM hazards WHERE code = 'HZ-NEW-001'"))
    assert name == "改名的隐患"
    assert grid is not None  # the trigger assigned the new point to its grid


def test_gbk_shapefile_without_cpg_is_read_correctly(
    client: httpx.Client, db: sa.Engine, tmp_path: Path
) -> None:
    points = new_points(db)
    data = shapefile_zip(points, tmp_path, encoding="GBK", cpg=None)
    response = upload(client, "pollution", "排污点_gbk.zip", data)
    assert response.status_code == 200, response.text
    assert response.json()["added"] == ["PX000", "PX001"]
    with db.connect() as conn:
        names = conn.execute(
            sa.text("SELECT name, kind FROM pollution_points WHERE code LIKE 'PX%' ORDER BY code")
        ).all()
    assert [tuple(r) for r in names] == [("养殖场排污口0号", "养殖"), ("养殖场排污口1号", "养殖")]


def test_grid_import_writes_a_new_version(
    client: httpx.Client, db: sa.Engine, tmp_path: Path
) -> None:
    path = download(client, "grids", "gpkg", tmp_path)
    grids = gpd.read_file(path)
    village = grids[grids["village_code"] == VILLAGE].reset_index(drop=True)
    # Merge the first grid with a neighbour: one code disappears, one grid grows.
    first = village.geometry.iloc[0]
    neighbour = next(i for i in range(1, len(village)) if village.geometry.iloc[i].touches(first))
    merged = village.drop(index=neighbour).reset_index(drop=True)
    merged.loc[0, "geometry"] = shapely.union(first, village.geometry.iloc[neighbour])
    merged_path = tmp_path / "grids_merged.gpkg"
    merged.to_file(merged_path, layer="grids")
    data = merged_path.read_bytes()

    before = snapshot(db)
    dry = upload(client, "grids", "grids_merged.gpkg", data, dry_run=True)
    assert dry.status_code == 200, dry.text
    report = dry.json()
    assert report["removed"] == [village.loc[neighbour, "code"]]
    assert report["changed"] == {village.loc[0, "code"]: ["geometry"]}
    assert report["grid_versions"]["villages"] == 1
    assert report["grid_versions"]["dropped_codes"] == 1
    assert snapshot(db) == before

    done = upload(client, "grids", "grids_merged.gpkg", data)
    assert done.status_code == 200, done.text
    with db.connect() as conn:
        current = conn.scalar(
            sa.text("SELECT count(*) FROM grids WHERE village_code = :v AND valid_to IS NULL"),
            {"v": VILLAGE},
        )
        source = conn.scalar(
            sa.text(
                "SELECT source FROM grids WHERE village_code = :v AND valid_to IS NULL LIMIT 1"
            ),
            {"v": VILLAGE},
        )
    assert current == len(village) - 1
    assert source.startswith("import: grids_merged.gpkg by test.admin")


# --- hostile and broken uploads --------------------------------------------------------------


def _symlink_info() -> zipfile.ZipInfo:
    info = zipfile.ZipInfo("pollution.shp")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


def _bomb() -> bytes:
    return zip_bytes({"pollution.shp": b"\0" * (8 * 1024 * 1024)})


def _many() -> bytes:
    return zip_bytes({f"f{i}.txt": b"x" for i in range(MAX_ENTRIES + 1)})


HOSTILE = [
    ("slip.zip", lambda: zip_bytes({"../../evil.shp": b"x"}), "..", "../../evil.shp"),
    ("abs.zip", lambda: zip_bytes({"/etc/evil.shp": b"x"}), "absolute", "/etc/evil.shp"),
    ("link.zip", lambda: zip_bytes({}, [_symlink_info()]), "symbolic link", "pollution.shp"),
    ("many.zip", _many, "entries", "many.zip"),
    ("bomb.zip", _bomb, "compressed", "pollution.shp"),
    ("junk.zip", lambda: b"this is not a zip archive", "not a readable zip", "junk.zip"),
    ("empty.zip", lambda: zip_bytes({"readme.txt": b"x"}), "no shapefile", "empty.zip"),
    ("notes.txt", lambda: b"hello", ".zip", "notes.txt"),
    ("empty.gpkg", lambda: b"", "empty", "empty.gpkg"),
    ("broken.gpkg", lambda: b"SQLite format 3\0garbage", "cannot be read", "broken.gpkg"),
]


@pytest.mark.parametrize(("name", "make", "why", "named"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_uploads_are_refused(
    client: httpx.Client, db: sa.Engine, *, name: str, make, why: str, named: str
) -> None:
    before = snapshot(db)
    response = upload(client, "pollution", name, make())
    assert response.status_code == 422, response.text
    body = response.json()
    assert why in body["detail"]
    assert named in body["detail"]
    assert snapshot(db) == before


def test_zip_slip_writes_nothing_outside(client: httpx.Client, tmp_path: Path) -> None:
    from gis_grid.errors import DataFileError
    from gis_grid.exchange import safe_extract

    archive = tmp_path / "slip.zip"
    archive.write_bytes(zip_bytes({"ok.txt": b"fine", "../outside.txt": b"evil"}))
    target = tmp_path / "out"
    target.mkdir()
    with pytest.raises(DataFileError, match=r"\.\."):
        safe_extract(archive, target)
    assert not (tmp_path / "outside.txt").exists()
    assert list(target.iterdir()) == []  # every entry is checked before any is written


def test_broken_files_are_refused_naming_the_problem(
    client: httpx.Client, db: sa.Engine, tmp_path: Path
) -> None:
    before = snapshot(db)
    points = new_points(db)

    # GBK text declared UTF-8 by the .cpg: the feature and field are named.
    wrong = shapefile_zip(
        points.assign(pp_id=["PW0", "PW1"]), tmp_path, encoding="GBK", cpg="UTF-8"
    )
    response = upload(client, "pollution", "wrong_cpg.zip", wrong)
    assert response.status_code == 422
    assert "name" in response.json()["detail"]

    # No .prj: the CRS must be declared.
    folder = tmp_path / "noprj"
    folder.mkdir()
    pyogrio.write_dataframe(points, folder / "pollution.shp", encoding="UTF-8")
    (folder / "pollution.prj").unlink()
    no_prj = zip_bytes({p.name: p.read_bytes() for p in folder.iterdir()})
    response = upload(client, "pollution", "noprj.zip", no_prj)
    assert response.status_code == 422
    assert "pollution.shp" in response.json()["detail"]
    assert "CRS" in response.json()["detail"]

    # A missing required field.
    path = tmp_path / "nofield.geojson"
    points.drop(columns=["vill_code"]).to_file(path)
    response = upload(client, "pollution", "nofield.geojson", path.read_bytes())
    assert response.status_code == 422
    assert "vill_code" in response.json()["detail"]

    # A village code naming nothing.
    path = tmp_path / "badvillage.geojson"
    points.assign(vill_code="511703109999").to_file(path)
    response = upload(client, "pollution", "badvillage.geojson", path.read_bytes())
    assert response.status_code == 422, response.text
    assert "511703109999" in response.json()["detail"]
    assert "vill" in response.json()["detail"]

    # Points where polygons belong: the feature is named.
    path = tmp_path / "grids_points.geojson"
    gpd.GeoDataFrame(
        {"grid_code": ["511703109209001"], "vill_code": [VILLAGE]},
        geometry=[shapely.Point(107.4, 30.95)],
        crs=4490,
    ).to_file(path)
    response = upload(client, "grids", "grids_points.geojson", path.read_bytes())
    assert response.status_code == 422
    assert "511703109209001" in response.json()["detail"]
    assert "Point" in response.json()["detail"]

    # A self-intersecting village outline.
    bowtie = shapely.Polygon([(107.40, 30.95), (107.41, 30.96), (107.41, 30.95), (107.40, 30.96)])
    path = tmp_path / "villages_bowtie.geojson"
    gpd.GeoDataFrame(
        {"vill_code": [VILLAGE], "vill_name": ["x"], "town_code": [TOWN], "kind": ["village"]},
        geometry=[bowtie],
        crs=4490,
    ).to_file(path)
    response = upload(client, "villages", "villages_bowtie.geojson", path.read_bytes())
    assert response.status_code == 422
    assert "Self-intersection" in response.json()["detail"]
    assert VILLAGE in response.json()["detail"]

    # Grids that no longer tile their village (one grid shrunk): the plan check refuses.
    grids = gpd.read_file(download(client, "grids", "gpkg", tmp_path))
    village = grids[grids["village_code"] == VILLAGE].reset_index(drop=True)
    village.loc[0, "geometry"] = village.geometry.iloc[0].buffer(-0.002)
    path = tmp_path / "grids_gap.gpkg"
    village.to_file(path, layer="grids")
    response = upload(client, "grids", "grids_gap.gpkg", path.read_bytes())
    assert response.status_code == 422, response.text
    assert VILLAGE in response.text

    # Latitude and longitude swapped.
    path = tmp_path / "swapped.geojson"
    swapped = [shapely.Point(30.95, 107.4), shapely.Point(30.951, 107.4)]
    gpd.GeoDataFrame(points.drop(columns="geometry"), geometry=swapped, crs=4490).to_file(path)
    response = upload(client, "pollution", "swapped.geojson", path.read_bytes())
    assert response.status_code == 422
    assert "swap" in response.text.lower() or "latitude" in response.text.lower()

    assert snapshot(db) == before


def test_upload_needs_a_login_a_writer_and_a_known_layer(
    client: httpx.Client, db: sa.Engine, writable_server_url: str, auth_headers, tmp_path: Path
) -> None:
    before = snapshot(db)
    path = download(client, "hazards", "gpkg", tmp_path)
    url = f"{writable_server_url}{V1}/exchange/hazards"
    files = {"file": ("hazards.gpkg", path.read_bytes())}
    assert httpx.post(url, files=files, timeout=60).status_code == 401
    reader = auth_headers(writable_server_url, "reader")
    response = httpx.post(url, files=files, headers=reader, timeout=60)
    assert response.status_code == 403
    response = upload(client, "residents", "r.geojson", b"{}")
    assert response.status_code == 422
    assert "layer" in response.text
    assert snapshot(db) == before


# --- command line ----------------------------------------------------------------------------


def test_cli_export_and_dry_run_import(fresh_database_url, tmp_path: Path) -> None:
    runner = CliRunner()
    app = typer.Typer()
    app.add_typer(cli.app, name="exchange")
    env = {"GIS_GRID_DATABASE_URL": fresh_database_url.render_as_string(hide_password=False)}
    out = tmp_path / "hazards.zip"
    result = runner.invoke(
        app, ["exchange", "export", "hazards", str(out), "--town", TOWN], env=env
    )
    assert result.exit_code == 0, result.output
    assert out.exists()
    result = runner.invoke(
        app, ["exchange", "import", "hazards", str(out), "--dry-run", "--json"], env=env
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["dry_run"] is True
    assert report["counts"]["unchanged"] == report["features"] > 0
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"nope")
    result = runner.invoke(app, ["exchange", "import", "hazards", str(bad)], env=env)
    assert result.exit_code == 2
    assert "bad.zip" in result.output
