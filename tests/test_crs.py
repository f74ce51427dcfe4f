"""gis_grid.crs: datums, Gauss-Krüger zones, CRS requirement, China range checks."""

from __future__ import annotations

import numpy as np
import prcoords
import pytest
import shapely
from pyproj import CRS

from gis_grid.crs import (
    CGCS2000,
    Datum,
    check_lonlat_in_china,
    convert_geometry_datum,
    convert_lonlat,
    gauss_kruger_crs,
    gauss_kruger_epsg,
    parse_datum,
    require_crs,
)
from gis_grid.errors import CoordinateError, CRSError
from tests.common import DACHUAN_BOUNDS, URUMQI, ZHAOJIA, dachuan_grid, polygon_with_hole

# ---------------------------------------------------------------- datums


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("gcj02", Datum.GCJ02),
        ("GCJ-02", Datum.GCJ02),
        ("BD-09", Datum.BD09),
        ("WGS 84", Datum.WGS84),
        ("CGCS2000", Datum.CGCS2000),
        (Datum.BD09, Datum.BD09),
    ],
)
def test_parse_datum_accepts_usual_spellings(name, expected):
    assert parse_datum(name) is expected


def test_parse_datum_refuses_unknown_and_lists_choices():
    with pytest.raises(CRSError) as err:
        parse_datum("beijing54")
    for choice in ("wgs84", "cgcs2000", "gcj02", "bd09"):
        assert choice in str(err.value)


# ---------------------------------------------------------------- Gauss-Krüger zones


def test_zone_for_dachuan_is_4545():
    assert gauss_kruger_epsg(ZHAOJIA[0]) == 4545
    assert gauss_kruger_crs(DACHUAN_BOUNDS) == CRS.from_epsg(4545)


def test_zone_for_urumqi_is_cm_87e():
    # 87.6 E is nearest the 87 E meridian: EPSG:4538 (EPSG:4537 is CM 84 E).
    assert gauss_kruger_epsg(URUMQI[0]) == 4538
    assert "CM 87E" in CRS.from_epsg(4538).name


@pytest.mark.parametrize("cm", range(75, 136, 3))
def test_every_zone_code_matches_its_central_meridian(cm):
    epsg = gauss_kruger_epsg(cm + 0.3)
    crs = CRS.from_epsg(epsg)
    assert f"CM {cm}E" in crs.name
    assert "CGCS2000" in crs.name


@pytest.mark.parametrize(
    ("lon", "epsg"), [(106.4999, 4544), (106.5, 4545), (109.4999, 4545), (109.5, 4546)]
)
def test_zone_edges_are_half_open(lon, epsg):
    assert gauss_kruger_epsg(lon) == epsg


@pytest.mark.parametrize("lon", [10.0, 140.0, float("nan"), 3_400_000.0])
def test_zone_outside_china_is_refused(lon):
    with pytest.raises(CoordinateError, match="outside"):
        gauss_kruger_epsg(lon)


# ---------------------------------------------------------------- require_crs


def test_require_crs_refuses_none_and_lists_choices():
    with pytest.raises(CRSError) as err:
        require_crs(None, source="grids.shp")
    text = str(err.value)
    assert "grids.shp" in text
    for choice in ("EPSG:4490", "EPSG:4326", "EPSG:4545", "gcj02", "bd09"):
        assert choice in text


def test_require_crs_refuses_nonsense():
    with pytest.raises(CRSError, match="unknown coordinate reference system"):
        require_crs("EPSG:999999", source="grids.shp")


@pytest.mark.parametrize("value", [4490, "EPSG:4490", CGCS2000, CGCS2000.to_wkt()])
def test_require_crs_accepts_any_pyproj_input(value):
    assert require_crs(value, source="x") == CGCS2000


# ---------------------------------------------------------------- China range


def test_points_in_china_pass():
    lon, lat = dachuan_grid()
    check_lonlat_in_china(lon, lat, source="seats.csv")


def test_point_outside_china_names_feature():
    with pytest.raises(CoordinateError) as err:
        check_lonlat_in_china([107.4, 2.35], [30.9, 48.85], source="seats.csv", labels=["A", "B-7"])
    text = str(err.value)
    assert "seats.csv" in text
    assert "B-7" in text
    assert "swapped" not in text


def test_vertices_of_one_feature_count_once():
    with pytest.raises(CoordinateError, match=r"1 feature\(s\).*first is feature 7 at"):
        check_lonlat_in_china([107.4, 2.3, 2.4], [30.9, 48.8, 48.9], source="s", labels=[3, 7, 7])


def test_swapped_lat_lon_is_detected():
    with pytest.raises(CoordinateError, match="swapped") as err:
        check_lonlat_in_china([30.96], [107.4], source="seats.csv", labels=["line 2"])
    assert "line 2" in str(err.value)


def test_nan_coordinate_is_refused():
    with pytest.raises(CoordinateError):
        check_lonlat_in_china([np.nan], [30.9], source="seats.csv")


# ---------------------------------------------------------------- datum conversion


def test_gcj02_offset_near_zhaojia():
    # GCJ-02 lies ~451 m east and ~242 m south of WGS84 here (so converting GCJ-02 to WGS84
    # moves a point ~450 m west and ~240 m north).
    x, y = convert_lonlat([ZHAOJIA[0]], [ZHAOJIA[1]], source="wgs84", target="gcj02")
    east = (x[0] - ZHAOJIA[0]) * 111_320 * np.cos(np.radians(ZHAOJIA[1]))
    north = (y[0] - ZHAOJIA[1]) * 110_574
    assert 430 < east < 470
    assert -260 < north < -220


def test_conversion_matches_prcoords_forward_formula():
    lon, lat = dachuan_grid(5)
    gx, gy = convert_lonlat(lon, lat, source="wgs84", target="gcj02")
    bx, by = convert_lonlat(lon, lat, source="wgs84", target="bd09")
    for i in range(lon.size):
        g = prcoords.wgs_gcj((lat[i], lon[i]), check_china=False)
        b = prcoords.wgs_bd((lat[i], lon[i]), check_china=False)
        assert (gy[i], gx[i]) == pytest.approx((g.lat, g.lon), abs=1e-12)
        assert (by[i], bx[i]) == pytest.approx((b.lat, b.lon), abs=1e-12)


@pytest.mark.parametrize("datum", ["gcj02", "bd09"])
def test_round_trip_over_dachuan_within_1e7_degrees(datum):
    lon, lat = dachuan_grid(21)
    mx, my = convert_lonlat(lon, lat, source="wgs84", target=datum)
    assert np.abs(mx - lon).max() > 1e-3  # the obfuscation really moved the points
    wx, wy = convert_lonlat(mx, my, source=datum, target="wgs84")
    assert np.abs(wx - lon).max() < 1e-7
    assert np.abs(wy - lat).max() < 1e-7


def test_inverse_is_tighter_than_prcoords_bored():
    # prcoords' own BD-09 inverse stops at ~1e-7; ours iterates its forward formula further.
    lon, lat = dachuan_grid(11)
    bx, by = convert_lonlat(lon, lat, source="wgs84", target="bd09")
    wx, wy = convert_lonlat(bx, by, source="bd09")
    assert max(np.abs(wx - lon).max(), np.abs(wy - lat).max()) < 1e-9


def test_wgs84_and_cgcs2000_are_identical_here():
    x, y = convert_lonlat([107.4], [30.9], source="wgs84", target="cgcs2000")
    assert (x[0], y[0]) == (107.4, 30.9)


def test_missing_coordinates_pass_through():
    x, _ = convert_lonlat([np.nan, 107.4], [30.9, 30.9], source="gcj02")
    assert np.isnan(x[0])
    assert x[1] != 107.4


def test_convert_geometry_keeps_structure_and_converts_every_vertex():
    converted = convert_geometry_datum(polygon_with_hole, source="gcj02")[0]
    assert converted.geom_type == "Polygon"
    assert len(converted.interiors) == 1
    before = shapely.get_coordinates(polygon_with_hole)
    after = shapely.get_coordinates(converted)
    x, y = convert_lonlat(before[:, 0], before[:, 1], source="gcj02")
    np.testing.assert_allclose(after, np.column_stack([x, y]), atol=1e-12)
    assert converted.is_valid
