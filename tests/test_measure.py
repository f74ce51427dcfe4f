"""gis_grid.measure: the Gauss-Krüger zone is chosen from the data; areas and lengths in metres."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from pyproj import Geod

from gis_grid.errors import CRSError, GeometryError
from gis_grid.measure import area_m2, length_m, measure_crs
from tests.common import URUMQI, empty_polygon, line, point, square, towns


def test_zone_for_dachuan_is_4545(shared_data):
    fence = gpd.read_file(shared_data / "dachuan_fence_vonng_wgs84.geojson")
    assert measure_crs(fence).to_epsg() == 4545


def test_zone_for_urumqi_is_another_one():
    pts = gpd.GeoSeries([shapely.Point(*URUMQI)], crs=4490)
    assert measure_crs(pts).to_epsg() == 4538  # CM 87 E


def test_zone_of_projected_data_is_found_through_lonlat():
    assert measure_crs(towns().to_crs(3857)).to_epsg() == 4545


def test_one_km_square_built_in_4545_measures_1e6_m2():
    # a square 1 km on a side in the zone's own plane, around Zhaojia (~107.4 E, 31 N)
    box = shapely.box(440_000, 3_425_000, 441_000, 3_426_000)
    lonlat = gpd.GeoSeries([box], crs=4545).to_crs(4490)
    assert lonlat.iloc[0].bounds[0] == pytest.approx(107.37, abs=0.01)
    assert area_m2(lonlat).iloc[0] == pytest.approx(1e6, rel=1e-3)
    assert length_m(lonlat).iloc[0] == pytest.approx(4_000, rel=1e-3)


def test_area_of_geographic_frame_is_not_in_degrees():
    gdf = towns()
    areas = area_m2(gdf)
    assert areas.name == "area_m2"
    assert list(areas.index) == list(gdf.index)
    # 0.01 deg x 0.01 deg at 31 N is about 1.11 km x 0.955 km
    assert areas.iloc[0] == pytest.approx(1_113_000 * 0.955, rel=0.01)


def test_lengths_and_degenerate_geometries():
    s = gpd.GeoSeries([line, point, empty_polygon, None, square], crs=4490)
    lengths = length_m(s)
    assert lengths.iloc[0] == pytest.approx(np.hypot(955.0, 1109.0), rel=0.01)
    assert lengths.iloc[1] == 0
    assert area_m2(s).iloc[2] == 0
    assert np.isnan(area_m2(s).iloc[3])


def test_automatic_zone_matches_geodesic_area_and_a_wrong_zone_does_not():
    truth, _ = Geod(ellps="GRS80").geometry_area_perimeter(square)  # CGCS2000 ellipsoid
    assert area_m2(towns()).iloc[0] == pytest.approx(abs(truth), rel=1e-4)
    wrong = area_m2(towns(), crs=4546).iloc[0]  # CM 111 E, 3.6 degrees away
    assert abs(wrong / abs(truth) - 1) > 2e-3


def test_refusals():
    with pytest.raises(CRSError):
        area_m2(gpd.GeoSeries([square]))
    with pytest.raises(GeometryError, match="nothing to measure"):
        measure_crs(gpd.GeoSeries([empty_polygon], crs=4490))
    assert area_m2(gpd.GeoSeries([], crs=4490)).empty
