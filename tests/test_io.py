"""gis_grid.io: reading and writing real files in tmp_path, with the refusals users meet."""

from __future__ import annotations

import json
import warnings
import zipfile

import geopandas as gpd
import numpy as np
import pandas as pd
import prcoords
import pyogrio
import pytest
import shapely

from gis_grid.errors import (
    CoordinateError,
    CRSError,
    DataFileError,
    DuplicateCodeError,
    EncodingError,
    GeometryError,
    NotFoundError,
)
from gis_grid.io import check_geometries, check_unique, read_csv_points, read_layer, write_layer
from tests.common import (
    BOWTIE_CROSSING,
    bowtie,
    empty_polygon,
    line,
    multipolygon,
    point,
    point_outside_china,
    point_swapped,
    polygon_with_hole,
    shapefile_parts,
    square,
    towns,
)

NAMES = ["赵家镇", "亭子镇", "石梯镇"]


def write_raw_shapefile(path, gdf, *, encoding, cpg="keep", field="name"):
    """Write a shapefile whose DBF text is in ``encoding`` (checked), then set its .cpg."""
    pyogrio.write_dataframe(gdf, path, encoding=encoding)
    dbf = path.with_suffix(".dbf").read_bytes()
    assert gdf[field].iloc[0].encode(encoding) in dbf  # the bytes really are in that encoding
    cpg_path = path.with_suffix(".cpg")
    if cpg is None:
        cpg_path.unlink(missing_ok=True)
    elif cpg != "keep":
        cpg_path.write_text(cpg, encoding="ascii")
    return path


# ---------------------------------------------------------------- shapefile encodings


def test_gbk_shapefile_with_cpg(tmp_path):
    shp = write_raw_shapefile(tmp_path / "towns.shp", towns(), encoding="gbk")
    assert shp.with_suffix(".cpg").read_text().strip().upper() == "GBK"
    assert read_layer(shp)["name"].tolist() == NAMES


def test_gbk_shapefile_without_cpg_is_detected(tmp_path):
    shp = write_raw_shapefile(tmp_path / "towns.shp", towns(), encoding="gbk", cpg=None)
    gdf = read_layer(shp)
    assert gdf["name"].tolist() == NAMES
    # GDAL alone would have read the GBK bytes as Latin-1 mojibake:
    assert pyogrio.read_dataframe(shp)["name"].tolist() != NAMES


def test_gbk_field_names_without_cpg_are_detected(tmp_path):
    gdf = towns().rename(columns={"name": "村名"})
    shp = write_raw_shapefile(tmp_path / "towns.shp", gdf, encoding="gbk", cpg=None, field="村名")
    assert "村名".encode("gbk") in shp.with_suffix(".dbf").read_bytes()
    assert read_layer(shp)["村名"].tolist() == NAMES


def test_utf8_shapefile_without_cpg(tmp_path):
    names = ["利群社区", "赵家", "先锋"]
    shp = tmp_path / "towns.shp"
    write_raw_shapefile(shp, towns().assign(name=names), encoding="utf-8", cpg=None)
    # GB18030 also "decodes" these UTF-8 bytes, into the wrong characters: UTF-8 must win.
    for name in names:
        assert name.encode("utf-8").decode("gb18030") != name
    assert read_layer(shp)["name"].tolist() == names


def test_cpg_says_utf8_but_bytes_are_gbk_is_refused(tmp_path):
    # Decision: a .cpg contradicted by the bytes is an error, never silently second-guessed;
    # the message names the culprit and the encoding that would work.
    shp = write_raw_shapefile(tmp_path / "towns.shp", towns(), encoding="gbk", cpg="UTF-8")
    with pytest.raises(EncodingError) as err:
        read_layer(shp)
    text = str(err.value)
    assert "towns.shp" in text
    assert "feature 1 (code=511703109)" in text
    assert "field 'name'" in text
    assert "encoding='gb18030'" in text
    assert ".cpg" in text
    # ...and following the advice works: an explicit encoding wins over the .cpg.
    assert read_layer(shp, encoding="gb18030")["name"].tolist() == NAMES


def test_cpg_in_windows_code_page_form(tmp_path):
    shp = write_raw_shapefile(tmp_path / "towns.shp", towns(), encoding="gbk", cpg="ANSI 936")
    assert read_layer(shp)["name"].tolist() == NAMES


def test_unknown_cpg_is_refused(tmp_path):
    shp = write_raw_shapefile(tmp_path / "towns.shp", towns(), encoding="gbk", cpg="KLINGON")
    with pytest.raises(EncodingError, match="KLINGON"):
        read_layer(shp)


def test_gbk_in_later_row_named(tmp_path):
    gdf = towns()
    gdf["name"] = ["Zhaojia", "Tingzi", "石梯镇"]
    pyogrio.write_dataframe(gdf, tmp_path / "towns.shp", encoding="gbk")
    with pytest.raises(EncodingError, match=r"feature 3 \(code=511703111\), field 'name'"):
        read_layer(tmp_path / "towns.shp", encoding="utf-8")


def test_deleted_records_are_skipped_and_rows_numbered_as_read(tmp_path):
    shp = write_raw_shapefile(tmp_path / "towns.shp", towns(), encoding="gbk")  # .cpg: GBK
    dbf = bytearray(shp.with_suffix(".dbf").read_bytes())
    header = int.from_bytes(dbf[8:10], "little")
    size = int.from_bytes(dbf[10:12], "little")
    second, third = header + size, header + 2 * size
    dbf[second] = ord("*")  # record 2 deleted (GDAL skips it) ...
    at = dbf.find("亭子镇".encode("gbk"), second)
    dbf[at : at + 2] = b"\xff\xff"  # ... and its stale bytes are garbage: ignored
    assert read_layer_bytes(shp, dbf)["code"].tolist() == ["511703109", "511703111"]
    at = dbf.find("石梯镇".encode("gbk"), third)
    dbf[at + 1] = 0x20  # break a character in record 3, the 2nd feature GDAL returns
    # GDAL alone would drop the broken character with a mere warning; we refuse:
    with pytest.raises(EncodingError, match=r"feature 2 \(code=511703111\), field 'name'"):
        read_layer_bytes(shp, dbf)


def test_damaged_value_in_undeclared_gbk_file_is_named(tmp_path):
    # Neither UTF-8 nor GB18030 decodes every value; GB18030 decodes most, so the file is
    # GB18030 with one damaged value (not Latin-1 mojibake, which would "decode" everything).
    names = ["赵家镇", "亭子镇", "石梯镇", "麻柳镇", "石桥镇"]
    gdf = gpd.GeoDataFrame(
        {"code": [f"51170310{i}" for i in range(5)], "name": names},
        geometry=[point] * 5,
        crs=4490,
    )
    shp = write_raw_shapefile(tmp_path / "towns.shp", gdf, encoding="gbk", cpg=None)
    dbf = bytearray(shp.with_suffix(".dbf").read_bytes())
    at = dbf.find("麻柳镇".encode("gbk"))
    dbf[at + 1] = 0x20
    with pytest.raises(EncodingError) as err:
        read_layer_bytes(shp, dbf)
    text = str(err.value)
    assert "feature 4 (code=511703103), field 'name'" in text
    assert "gb18030 (detected, no .cpg)" in text


def test_other_encodings_are_judged_by_charset_normalizer_with_a_warning(tmp_path):
    names = ["Café crème", "Zürich Straße Grüße", "Ærø Ålborg"]
    shp = tmp_path / "l.shp"
    write_raw_shapefile(shp, towns().assign(name=names), encoding="cp1252", cpg=None)
    with pytest.warns(UserWarning, match="charset-normalizer judged"):
        gdf = read_layer(shp)
    assert gdf["name"].iloc[1] == "Zürich Straße Grüße"  # the guess may still miss letters
    assert read_layer(shp, encoding="cp1252")["name"].tolist() == names


def read_layer_bytes(shp, dbf):
    shp.with_suffix(".dbf").write_bytes(bytes(dbf))
    return read_layer(shp)


# ---------------------------------------------------------------- containers and formats


def test_zip_of_a_shapefile(tmp_path):
    shp = write_raw_shapefile(tmp_path / "towns.shp", towns(), encoding="gbk", cpg=None)
    archive = tmp_path / "towns.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for part in shapefile_parts(shp).values():
            zf.write(part, arcname=f"export/{part.name}")
    gdf = read_layer(archive)
    assert gdf["name"].tolist() == NAMES
    assert gdf.crs.to_epsg() == 4490


def test_zip_with_several_shapefiles_needs_layer(tmp_path):
    archive = write_layer(towns(), tmp_path / "a.zip", layer="towns")
    with zipfile.ZipFile(archive, "a") as zf:
        for name in list(zf.namelist()):
            zf.writestr(name.replace("towns", "seats"), zf.read(name))
    with pytest.raises(DataFileError, match=r"2 shapefiles \['seats', 'towns'\]"):
        read_layer(archive)
    assert len(read_layer(archive, layer="seats")) == 3
    with pytest.raises(NotFoundError, match="grids"):
        read_layer(archive, layer="grids")


def test_folder_holding_one_shapefile(tmp_path):
    write_layer(towns(), tmp_path / "data" / "towns.shp")
    assert read_layer(tmp_path / "data")["name"].tolist() == NAMES
    write_layer(towns().iloc[:1], tmp_path / "data" / "seats.shp")
    with pytest.raises(DataFileError, match="choose one with layer="):
        read_layer(tmp_path / "data")
    assert len(read_layer(tmp_path / "data", layer="seats")) == 1


def test_geopackage_with_several_layers(tmp_path):
    gpkg = write_layer(towns(), tmp_path / "dachuan.gpkg", layer="towns")
    write_layer(towns().iloc[:2], gpkg, layer="grids", replace="layer")
    with pytest.raises(DataFileError) as err:
        read_layer(gpkg)
    assert "towns" in str(err.value)
    assert "grids" in str(err.value)
    assert len(read_layer(gpkg, layer="towns")) == 3
    assert len(read_layer(gpkg, layer="grids")) == 2
    with pytest.raises(NotFoundError, match="villages"):
        read_layer(gpkg, layer="villages")


def test_real_geojson(shared_data):
    gdf = read_layer(shared_data / "dachuan_fence_vonng_wgs84.geojson")
    assert gdf.crs.to_epsg() == 4490
    assert gdf["name"].tolist() == ["达川区"]
    assert shapely.get_num_coordinates(gdf.geometry.iloc[0]) == 1933


def test_unsupported_and_missing_files(tmp_path):
    (tmp_path / "a.csv").write_text("lon,lat\n")
    with pytest.raises(DataFileError, match="read_csv_points"):
        read_layer(tmp_path / "a.csv")
    with pytest.raises(DataFileError, match="does not exist"):
        read_layer(tmp_path / "nothing.gpkg")
    with pytest.raises(DataFileError, match="UTF-8"):
        read_layer(write_layer(towns(), tmp_path / "t.gpkg"), encoding="gbk")


# ---------------------------------------------------------------- GCJ-02 / BD-09 layers


def test_gcj02_fence_matches_published_wgs84_vertex_by_vertex(shared_data):
    gcj = read_layer(shared_data / "dachuan_fence_vonng_gcj02.geojson", datum="gcj02")
    wgs = read_layer(shared_data / "dachuan_fence_vonng_wgs84.geojson")
    a = shapely.get_coordinates(gcj.geometry)
    b = shapely.get_coordinates(wgs.geometry)
    assert a.shape == b.shape == (1933, 2)
    assert np.abs(a - b).max() < 1e-6
    raw = gpd.read_file(shared_data / "dachuan_fence_vonng_gcj02.geojson").geometry
    raw = shapely.get_coordinates(raw)
    assert np.abs(raw - b).max() > 1e-3  # without datum= the offset (~500 m) stays


def test_datum_with_projected_crs_is_refused(tmp_path):
    path = write_layer(towns().to_crs(4545), tmp_path / "t.gpkg")
    with pytest.raises(CRSError, match="projected"):
        read_layer(path, datum="gcj02")


# ---------------------------------------------------------------- CRS and coordinates


def test_missing_prj_is_refused_with_choices(tmp_path):
    shp = write_layer(towns(), tmp_path / "towns.shp")
    shp.with_suffix(".prj").unlink()
    with pytest.raises(CRSError) as err:
        read_layer(shp)
    text = str(err.value)
    assert "towns.shp" in text
    for choice in ("EPSG:4490", "EPSG:4326", "EPSG:4545", "gcj02"):
        assert choice in text


def test_explicit_crs_is_accepted(tmp_path):
    shp = write_layer(towns().to_crs(4545), tmp_path / "t.shp")
    shp.with_suffix(".prj").unlink()
    gdf = read_layer(shp, crs="EPSG:4545")
    assert gdf.crs.to_epsg() == 4490
    # shapefiles store outer rings clockwise: compare normalised geometries
    expected = shapely.get_coordinates(towns().geometry.normalize())
    got = shapely.get_coordinates(gdf.geometry.normalize())
    np.testing.assert_allclose(got, expected, atol=1e-8)


def test_metres_declared_as_degrees_are_refused(tmp_path):
    shp = write_layer(towns().to_crs(4545), tmp_path / "t.shp")
    shp.with_suffix(".prj").unlink()
    with pytest.raises(CoordinateError, match="projected metres"):
        read_layer(shp, crs=4490)


def test_feature_outside_china_is_named(tmp_path):
    gdf = towns().iloc[:2].set_geometry([point, point_outside_china])
    path = write_layer(gdf, tmp_path / "t.geojson")
    with pytest.raises(CoordinateError) as err:
        read_layer(path)
    assert "feature 2 (code=511703110)" in str(err.value)
    assert "swapped" not in str(err.value)


def test_swapped_lat_lon_is_named(tmp_path):
    gdf = towns().iloc[:2].set_geometry([point, point_swapped])
    path = write_layer(gdf, tmp_path / "t.gpkg")
    with pytest.raises(CoordinateError) as err:
        read_layer(path)
    text = str(err.value)
    assert "1 feature(s) outside" in text  # both corners of one feature count once
    assert "first is feature 2 (code=511703110) at (30.964000, 107.405000)" in text
    assert "swapped" in text


def test_null_geometry_is_named(tmp_path):
    gdf = towns().set_geometry([square, None, square])
    path = write_layer(gdf, tmp_path / "t.gpkg")
    with pytest.raises(DataFileError, match=r"feature 2 \(code=511703110\) has no geometry"):
        read_layer(path)


# ---------------------------------------------------------------- writing


def test_shapefile_written_is_utf8_with_cpg_and_round_trips(tmp_path):
    shp = write_layer(towns(), tmp_path / "towns.shp")
    assert shp.with_suffix(".cpg").read_text().strip() == "UTF-8"
    assert NAMES[0].encode("utf-8") in shp.with_suffix(".dbf").read_bytes()
    back = read_layer(shp)
    assert back["name"].tolist() == NAMES
    assert back["code"].tolist() == towns()["code"].tolist()
    assert back["households"].tolist() == [1200, 950, 1430]
    # shapefiles store outer rings clockwise: compare normalised geometries
    expected = towns().geometry.normalize()
    assert back.geometry.normalize().geom_equals_exact(expected, tolerance=1e-12).all()


def test_overwrite_removes_stale_shapefile_parts(tmp_path):
    shp = write_raw_shapefile(tmp_path / "towns.shp", towns(), encoding="gbk")  # GBK .cpg
    shp.with_suffix(".qix").write_bytes(b"stale index")
    write_layer(towns()[["code", "geometry"]].iloc[:1], shp)
    assert not shp.with_suffix(".qix").exists()
    assert shp.with_suffix(".cpg").read_text().strip() == "UTF-8"
    back = read_layer(shp)
    assert list(back.columns) == ["code", "geometry"]
    assert len(back) == 1


def test_overwrite_replaces_whole_geopackage(tmp_path):
    gpkg = write_layer(towns(), tmp_path / "t.gpkg", layer="old")
    write_layer(towns(), gpkg, layer="new")
    assert pyogrio.list_layers(gpkg)[:, 0].tolist() == ["new"]


def test_long_field_names_are_cut_deterministically_with_a_warning(tmp_path):
    gdf = towns().rename(columns={"households": "households_2020"})
    with pytest.warns(UserWarning, match="households_2020.*households"):
        shp = write_layer(gdf, tmp_path / "t.shp")
    assert "households" in read_layer(shp).columns


def test_colliding_field_names_are_refused(tmp_path):
    gdf = towns().assign(village_name_a="a", village_name_b="b")
    with pytest.raises(DataFileError, match=r"village_name_a.*village_name_b"):
        write_layer(gdf, tmp_path / "t.shp")
    assert not (tmp_path / "t.shp").exists()


def test_text_too_long_for_dbf_is_refused(tmp_path):
    gdf = towns().assign(note=["短", "镇" * 90, "短"])  # 270 bytes of UTF-8
    with pytest.raises(DataFileError, match=r"feature 2 \(code=511703110\), field 'note'"):
        write_layer(gdf, tmp_path / "t.shp")


def test_zipped_shapefile_round_trips(tmp_path):
    archive = write_layer(towns(), tmp_path / "out.zip", layer="towns")
    with zipfile.ZipFile(archive) as zf:
        assert sorted(zf.namelist()) == [f"towns.{e}" for e in ("cpg", "dbf", "prj", "shp", "shx")]
    assert read_layer(archive)["name"].tolist() == NAMES


def test_geojson_round_trips_with_its_crs(tmp_path):
    path = write_layer(towns(), tmp_path / "t.geojson")
    assert (
        json.loads(path.read_text(encoding="utf-8"))["features"][0]["properties"]["name"]
        == (NAMES[0])
    )
    back = read_layer(path)
    assert back["name"].tolist() == NAMES
    assert back.geom_equals_exact(towns().geometry, tolerance=1e-12).all()


def test_kml_is_written_in_wgs84_and_reads_back(tmp_path):
    projected = towns().to_crs(4545)
    path = write_layer(projected, tmp_path / "towns.kml")
    text = path.read_text(encoding="utf-8")
    assert "赵家镇" in text
    assert "107.405" in text  # lon/lat degrees, not Gauss-Krüger metres
    back = read_layer(path)
    assert back.crs.to_epsg() == 4490
    assert back["Name"].tolist() == NAMES
    assert back["code"].tolist() == towns()["code"].tolist()
    assert not back.has_z.any()
    np.testing.assert_allclose(
        shapely.get_coordinates(back.geometry),
        shapely.get_coordinates(towns().geometry),
        atol=1e-8,
    )


def test_writing_without_crs_is_refused(tmp_path):
    gdf = gpd.GeoDataFrame({"code": ["A"]}, geometry=[square])
    with pytest.raises(CRSError, match="no CRS"):
        write_layer(gdf, tmp_path / "t.gpkg")
    assert not (tmp_path / "t.gpkg").exists()


def test_unknown_extension_is_refused(tmp_path):
    with pytest.raises(DataFileError, match=r"\.dxf"):
        write_layer(towns(), tmp_path / "t.dxf")
    assert write_layer(towns(), tmp_path / "t.fgb", driver="FlatGeobuf").exists()


# ---------------------------------------------------------------- CSV points


@pytest.fixture
def town_seat_csvs(shared_data, tmp_path):
    """The real 2016 town centres (GCJ-02), also as BD-09, with the published WGS84 points."""
    table = pd.read_csv(shared_data / "dachuan_adcode_2016_vonng.csv", dtype=str)
    table = table.dropna(subset=["longitude"])
    bd = [
        prcoords.gcj_bd((float(y), float(x)))
        for x, y in zip(table["longitude"], table["latitude"], strict=True)
    ]
    bd_table = table.assign(longitude=[c.lon for c in bd], latitude=[c.lat for c in bd])
    bd_path = tmp_path / "seats_bd09.csv"
    bd_table.to_csv(bd_path, index=False, encoding="gbk")  # a GBK file, as Excel saves it
    wgs = gpd.read_file(shared_data / "dachuan_town_seats_2016_wgs84.geojson")
    return shared_data / "dachuan_adcode_2016_vonng.csv", bd_path, wgs


def _compare_with_published(points, wgs):
    merged = points.merge(wgs, left_on="code", right_on="code_2016", suffixes=("", "_wgs"))
    assert len(merged) == len(wgs) == 52
    got = shapely.get_coordinates(merged["geometry"])
    expected = shapely.get_coordinates(merged["geometry_wgs"])
    assert np.abs(got - expected).max() < 1.5e-6  # the published file is rounded to 1e-6


def test_csv_in_gcj02_is_converted(town_seat_csvs):
    gcj_path, _, wgs = town_seat_csvs
    with pytest.raises(DataFileError, match=r"line 3 .*code=511703001000.* no longitude"):
        read_csv_points(gcj_path, lon="longitude", lat="latitude", datum="gcj02")
    points = read_csv_points(
        gcj_path, lon="longitude", lat="latitude", datum="GCJ-02", missing="drop"
    )
    assert points.crs.to_epsg() == 4490
    assert "longitude" not in points.columns  # no GCJ-02 value is kept
    assert points.loc[points["code"] == "511703000000", "area_code"].item() == "0818"
    _compare_with_published(points[points["level"] == "town"], wgs)


def test_csv_in_bd09_gbk_is_converted(town_seat_csvs):
    _, bd_path, wgs = town_seat_csvs
    assert "达川区".encode("gbk") in bd_path.read_bytes()
    points = read_csv_points(bd_path, lon="longitude", lat="latitude", datum="bd09", missing="drop")
    assert points["name"].iloc[0] == "达川区"
    _compare_with_published(points[points["level"] == "town"], wgs)


def test_csv_wrong_encoding_names_line_and_field(tmp_path):
    path = tmp_path / "p.csv"
    path.write_bytes("code,name,lon,lat\nA,x,107.4,30.9\nB,赵家镇,107.5,31.0\n".encode("gbk"))
    with pytest.raises(EncodingError, match="line 3, field 'name'"):
        read_csv_points(path, datum="wgs84", encoding="utf-8")
    assert read_csv_points(path, datum="wgs84")["name"].tolist() == ["x", "赵家镇"]


def test_csv_missing_column_lists_columns(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("code,x,y\nA,107.4,30.9\n", encoding="utf-8")
    with pytest.raises(DataFileError, match=r"p\.csv.*\['code', 'x', 'y'\]"):
        read_csv_points(path, datum="wgs84")


def test_csv_non_numeric_value_names_row_and_field(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("code,lon,lat\nA,107.4,30.9\nB,107.5,三十一\n", encoding="utf-8")
    with pytest.raises(DataFileError, match=r"line 3 \(code=B\), field 'lat'.*三十一"):
        read_csv_points(path, datum="wgs84")


def test_csv_swapped_columns_are_detected(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("code,lon,lat\nA,30.9,107.4\n", encoding="utf-8")
    with pytest.raises(CoordinateError, match=r"line 2 \(code=A\).*swapped"):
        read_csv_points(path, datum="wgs84")


def test_csv_unknown_datum_is_refused(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("lon,lat\n107.4,30.9\n", encoding="utf-8")
    with pytest.raises(CRSError, match="gcj02"):
        read_csv_points(path, datum="mars")


# ---------------------------------------------------------------- geometry and code checks


def test_valid_geometries_pass():
    gdf = towns().set_geometry([square, multipolygon, polygon_with_hole])
    check_geometries(gdf, source="t.gpkg", geom_types=("Polygon", "MultiPolygon"))


def test_bowtie_is_named_with_reason_and_coordinate():
    gdf = towns().set_geometry([square, bowtie, square])
    with pytest.raises(GeometryError) as err:
        check_geometries(gdf, source="grids.gpkg")
    text = str(err.value)
    assert "grids.gpkg" in text
    assert "feature 2 (code=511703110)" in text
    assert "Self-intersection" in text
    assert f"({BOWTIE_CROSSING[0]:.7f}, {BOWTIE_CROSSING[1]:.7f})" in text


def test_empty_and_wrong_type_are_named():
    gdf = towns().set_geometry([empty_polygon, line, square])
    with pytest.raises(GeometryError) as err:
        check_geometries(gdf, source="g", geom_types="Polygon", id_field="name")
    text = str(err.value)
    assert "feature 1 (name=赵家镇) has an empty geometry" in text
    assert "feature 2 (name=亭子镇) is a LineString, expected Polygon" in text


def test_real_self_intersection_in_dazhou_districts(shared_data):
    gdf = read_layer(shared_data / "dazhou_districts_wgs84.geojson")
    with pytest.raises(GeometryError, match=r"feature 5 \(adcode=511724\).*Self-intersection"):
        check_geometries(gdf, source="dazhou_districts_wgs84.geojson")
    repaired = shapely.make_valid(
        np.asarray(gdf.geometry, dtype=object), method="structure", keep_collapsed=False
    )
    fixed = gdf.set_geometry(repaired)
    check_geometries(fixed, source="fixed", geom_types=("Polygon", "MultiPolygon"))


def test_duplicate_codes_name_both_features():
    gdf = towns().assign(code=["A", "B", "A"])
    with pytest.raises(DuplicateCodeError, match=r"feature 1 and feature 3 .*code='A'"):
        check_unique(gdf, "code", source="grids.gpkg")
    check_unique(towns(), "code", source="grids.gpkg")
    check_unique(towns().assign(code=["A", None, None]), "code", source="grids.gpkg")


def test_unique_check_on_missing_field_lists_fields():
    with pytest.raises(DataFileError, match="households"):
        check_unique(towns(), "grid_code", source="grids.gpkg")


def test_no_warnings_on_clean_round_trip(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_layer(write_layer(towns(), tmp_path / "t.shp"))
