"""Read the real public data, convert GCJ-02 to CGCS2000, and build the two towns.

Town polygons are not published anywhere we could find, so they are *synthetic*: Voronoi cells
of the 52 real 2016 town seats (Amap centre points, GCJ-02 converted with
:func:`gis_grid.crs.convert_lonlat`), clipped to the real district boundary, and merged by the
2023 town each 2016 town became part of (found by matching village names of the 2016 and 2023
NBS lists, majority vote).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import rasterio.windows
import shapely

from gis_grid.crs import convert_geometry_datum, convert_lonlat
from gis_grid.errors import DataFileError
from scripts.sample_data import WORK_EPSG

__all__ = [
    "DEM_TILE_BOUNDS",
    "ZHAOJIA",
    "Sources",
    "choose_dem_town",
    "load_sources",
    "read_dem_window",
]

#: NBS code of Zhaojia Town (赵家镇), the town of the grid-member rules.
ZHAOJIA = "511703109"

#: The only DEM tile available: SRTM N31E107.
DEM_TILE_BOUNDS = (107.0, 31.0, 108.0, 32.0)

_SUFFIX = re.compile(r"(社区居民委员会|居民委员会|村民委员会|农村社区|社区)$")


@dataclass(frozen=True)
class Sources:
    """The real inputs, read and converted.

    Attributes
    ----------
    fence
        Dachuan District boundary in EPSG:4545 (converted from the GCJ-02 Amap fence).
    seats
        The 52 town seats of 2016 (EPSG:4545) with ``code_2016``, ``name``, ``town_2023``.
    towns
        Synthetic 2023 town polygons (EPSG:4545): ``town_code``, ``town_name``.
    cells
        The per-2016-seat Voronoi cells (EPSG:4545), each with its ``town_2023``.
    villages
        The 2023 NBS village-level units with ``kind``, ``ur_code`` and ``origin_2016``
        (the 2016 town the unit came from, when the name matches).
    rivers
        GSHHG WDB-II rivers clipped to the district (EPSG:4545).
    census
        The Dachuan row of the 2020 census table.
    shared
        The directory the files were read from.
    """

    fence: shapely.Polygon
    seats: gpd.GeoDataFrame
    towns: gpd.GeoDataFrame
    cells: gpd.GeoDataFrame
    villages: pd.DataFrame
    rivers: gpd.GeoDataFrame
    census: pd.Series
    shared: Path


def _require(shared: Path, name: str) -> Path:
    path = shared / name
    if not path.is_file():
        msg = f"{path} is missing: pass --shared pointing at the real data directory"
        raise DataFileError(msg)
    return path


def _stem(names: pd.Series) -> pd.Series:
    return names.str.replace(_SUFFIX, "", regex=True)


def _read_seats(shared: Path) -> gpd.GeoDataFrame:
    """2016 seats from the CSV's GCJ-02 lon/lat, converted and checked against the WGS84 file."""
    adcode = pd.read_csv(_require(shared, "dachuan_adcode_2016_vonng.csv"), dtype=str)
    towns = adcode[(adcode["level"] == "town") & adcode["longitude"].notna()].copy()
    lon, lat = convert_lonlat(
        towns["longitude"].astype(float), towns["latitude"].astype(float), source="gcj02"
    )
    seats = gpd.GeoDataFrame(
        {"code_2016": towns["code"].str[:9].to_numpy(), "name": towns["name"].to_numpy()},
        geometry=gpd.points_from_xy(lon, lat),
        crs=4490,
    )
    ref = gpd.read_file(_require(shared, "dachuan_town_seats_2016_wgs84.geojson"))
    ref = ref.set_index(ref["code_2016"].str[:9]).geometry.reindex(seats["code_2016"])
    gap = float(np.max(shapely.distance(seats.geometry.to_numpy(), ref.to_numpy())))
    if gap > 1e-5:
        msg = f"GCJ-02 conversion of the seats differs from the shared WGS84 file by {gap:.2e} deg"
        raise DataFileError(msg)
    return seats


def _read_villages(shared: Path) -> tuple[pd.DataFrame, pd.Series]:
    """The 2023 list with kind/ur_code/origin, and the 2016 -> 2023 town mapping."""
    v23 = pd.read_csv(_require(shared, "dachuan_villages_2023_nbs.csv"), dtype=str)
    a16 = pd.read_csv(_require(shared, "dachuan_adcode_2016_vonng.csv"), dtype=str)
    a16 = a16[a16["level"] == "village"].assign(
        stem=lambda d: _stem(d["name"]), town_2016=lambda d: d["parent"].str[:9]
    )
    v23 = v23.assign(stem=_stem(v23["village_name"]))
    by_name = v23.merge(a16[["stem", "town_2016"]], on="stem")
    mapping = by_name.groupby("town_2016")["town_code"].agg(lambda s: s.value_counts().index[0])
    # A 2023 unit's origin: the 2016 unit with the same stem inside a 2016 town that merged
    # into the same 2023 town (names repeat across the district, so the town must agree).
    a16 = a16.assign(town_2023=a16["town_2016"].map(mapping))
    origin = v23.merge(
        a16[["stem", "town_2023", "town_2016", "ur_code", "name"]],
        left_on=["stem", "town_code"],
        right_on=["stem", "town_2023"],
        how="left",
    ).drop_duplicates("village_code")
    kind = np.where(v23["village_name"].str.endswith("居民委员会"), "community", "village")
    default_ur = np.where(kind == "community", "121", "220")
    villages = pd.DataFrame(
        {
            "vill_code": v23["village_code"].to_numpy(),
            "vill_name": v23["village_name"].to_numpy(),
            "town_code": v23["town_code"].to_numpy(),
            "town_name": v23["town_name"].to_numpy(),
            "kind": kind,
            # The 2016 urban-rural code only where the unit kept its exact name (a village
            # that became a community keeps no valid code); otherwise 121 / 220.
            "ur_code": np.where(
                origin["name"].to_numpy() == v23["village_name"].to_numpy(),
                origin["ur_code"].to_numpy(),
                default_ur,
            ),
            "origin_2016": origin["town_2016"].to_numpy(),
        }
    )
    return villages, mapping


def load_sources(shared: Path) -> Sources:
    """Read every real input and build the synthetic 2023 town polygons.

    Parameters
    ----------
    shared
        Directory holding the files of ``shared/data`` (see its README).

    Returns
    -------
    Sources
        Everything in EPSG:4545, converted from GCJ-02 where the source is GCJ-02.
    """
    fence_gcj = gpd.read_file(_require(shared, "dachuan_fence_vonng_gcj02.geojson"))
    fence_ll = shapely.make_valid(
        convert_geometry_datum(fence_gcj.geometry.to_numpy(), source="gcj02")[0]
    )
    fence = gpd.GeoSeries([fence_ll], crs=4490).to_crs(WORK_EPSG).iloc[0]
    seats = _read_seats(shared).to_crs(WORK_EPSG)
    villages, mapping = _read_villages(shared)
    seats["town_2023"] = seats["code_2016"].map(mapping)

    pts = seats.geometry.to_numpy()
    vor = shapely.get_parts(
        shapely.voronoi_polygons(shapely.multipoints(pts), extend_to=fence.buffer(20_000))
    )
    tree = shapely.STRtree(vor)
    seat_idx, cell_idx = tree.query(pts, predicate="within")
    order = np.argsort(seat_idx)
    cell_geoms = shapely.intersection(vor[cell_idx[order]], fence)
    cells = gpd.GeoDataFrame(
        {
            "code_2016": seats["code_2016"].to_numpy(),
            "town_2023": seats["town_2023"].to_numpy(),
        },
        geometry=cell_geoms,
        crs=WORK_EPSG,
    )
    names = villages.drop_duplicates("town_code").set_index("town_code")["town_name"]
    towns = (
        cells.dropna(subset=["town_2023"])
        .dissolve("town_2023", as_index=False)
        .rename(columns={"town_2023": "town_code"})[["town_code", "geometry"]]
    )
    towns["town_name"] = towns["town_code"].map(names)
    towns["geometry"] = shapely.make_valid(towns.geometry.to_numpy())

    rivers = gpd.read_file(_require(shared, "gshhg_wdbii_rivers_dazhou.geojson"))
    rivers = rivers.set_crs(4326, allow_override=True).to_crs(WORK_EPSG)
    rivers["geometry"] = shapely.intersection(rivers.geometry.to_numpy(), fence)
    rivers = rivers[~rivers.geometry.is_empty].reset_index(drop=True)

    census = pd.read_csv(
        _require(shared, "dazhou_counties_census2020_ghsl.csv"), dtype={"CODE": str}
    )
    census_row = census.set_index("CODE").loc["511703"]
    return Sources(fence, seats, towns, cells, villages, rivers, census_row, shared)


def choose_dem_town(src: Sources, *, margin_m: float = 2000.0) -> tuple[str, str]:
    """Pick the second town: inside the DEM tile, with the most real river inside.

    Candidates are 2023 towns (镇, not 街道 or 乡) whose seat lies north of 31° N and whose whole
    polygon, grown by ``margin_m``, lies inside the SRTM tile 107-108 E, 31-32 N; among them
    the one crossed by the longest length of real GSHHG river wins.

    Returns
    -------
    tuple of str
        The town code and a sentence saying why it was chosen.
    """
    towns = src.towns[src.towns["town_name"].str.endswith("镇")].copy()
    ll = towns.set_geometry(towns.buffer(margin_m)).to_crs(4490).bounds
    x0, y0, x1, y1 = DEM_TILE_BOUNDS
    inside = (ll["minx"] > x0) & (ll["miny"] > y0) & (ll["maxx"] < x1) & (ll["maxy"] < y1)
    seat_lat = src.seats.to_crs(4490).set_index("town_2023").geometry.y.groupby(level=0).max()
    north = towns["town_code"].map(seat_lat) > 31.0
    river = src.rivers.geometry.union_all()
    towns["river_km"] = towns.geometry.intersection(river).length / 1000
    cand = towns[inside & north].sort_values(["river_km", "town_code"], ascending=[False, True])
    best = cand.iloc[0]
    why = (
        f"{best['town_name']} ({best['town_code']}): of the {len(cand)} towns north of 31° N "
        f"lying wholly inside the SRTM tile with a {margin_m / 1000:.0f} km margin, it is "
        f"crossed by the most real GSHHG river ({best['river_km']:.1f} km, the Zhou River)"
    )
    return str(best["town_code"]), why


def read_dem_window(shared: Path, bounds_ll: tuple[float, float, float, float]) -> tuple:
    """Read the SRTM tile over lon/lat ``bounds_ll``.

    Returns
    -------
    tuple
        ``(elevation float64 array, affine transform)`` in EPSG:4326 (taken as CGCS2000).
    """
    with rasterio.open(_require(shared, "srtm3_N31E107.tif")) as ds:
        win = rasterio.windows.from_bounds(*bounds_ll, transform=ds.transform)
        win = win.round_offsets().round_lengths()
        z = ds.read(1, window=win).astype(np.float64)
        transform = ds.window_transform(win)
        if ds.nodata is not None and np.any(z == ds.nodata):
            msg = "the DEM window has voids; the tile was documented as void-free"
            raise DataFileError(msg)
    return z, transform
