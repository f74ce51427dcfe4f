"""Villages, hamlets, roads and households of one town (all synthetic, seeded).

The town is rasterised at 40 m in EPSG:4545. Its "ruggedness" is the real SRTM terrain where
the DEM covers the town, and a smooth seeded random field in Zhaojia (no DEM covers it). From
it come, in order:

1. village seeds: communities (社区) beside their real seat, villages spread over the part of
   the town their 2016 town covered (k-means on random points), moved to valley floors;
2. village polygons, grown from the seeds over a cost graph where climbing and crossing
   streams is expensive, so boundaries tend to run along ridges and streams;
3. hamlets, sampled where the land is flat and low (DEM) or smooth (Zhaojia);
4. roads: least-cost paths from the seat to every village centre and out towards the nearest
   neighbouring town seats, then from every hamlet to the nearest road;
5. households, sampled from an intensity that is high on valley floors, along roads, in
   hamlets and around the seats.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio.features
import rasterio.warp
import shapely
from numpy.typing import NDArray
from pyproj import CRS
from scipy import ndimage
from scipy.cluster.vq import kmeans2

from gis_grid.terrain import d8_receivers, fill_depressions, flow_accumulation, stream_lines
from scripts.sample_data import HOUSEHOLD_SIZE_P, TARGET_DENSITY, WORK_EPSG
from scripts.sample_data.raster import (
    Frame,
    cell_graph,
    faces_to_regions,
    grow_regions,
    noded_faces,
    path_edges,
    regions_to_polygons,
)
from scripts.sample_data.sources import Sources, read_dem_window

__all__ = ["Town", "build_town"]

RES = 40.0  # metres per cell of the working raster
STREAM_KM2 = 0.5  # drained area from which a DEM cell is a stream
ROAD_CLASSES = ("county", "township", "village")  # 县道, 乡道, 村道: best class first


@dataclass
class Town:
    """Everything generated for one town, in EPSG:4545.

    Attributes
    ----------
    code, name
        Real NBS code and name.
    polygon
        Synthetic town polygon.
    has_dem
        Whether the terrain is the real SRTM DEM.
    frame
        The working raster.
    seat
        The real town seat (converted from GCJ-02).
    villages
        One row per real village: ``vill_code``, ``vill_name``, ``kind``, ``ur_code``,
        ``seed_x``, ``seed_y`` and the polygon.
    households
        ``x``, ``y``, ``people``, ``vill_code``.
    roads, streams
        Line layers (``kind``; streams also ``up_km2``).
    suit
        Settlement suitability per cell (0-1), used to place pollution points and hazards.
    slope
        Slope in degrees per cell (zeros where there is no DEM).
    stream_dist, river_dist, road_dist
        Distance rasters (metres) to DEM streams, real rivers and roads.
    graph
        The travel-cost graph of the town's cells.
    """

    code: str
    name: str
    polygon: shapely.Polygon
    has_dem: bool
    frame: Frame
    seat: shapely.Point
    villages: gpd.GeoDataFrame
    households: pd.DataFrame = field(default_factory=pd.DataFrame)
    roads: gpd.GeoDataFrame | None = None
    streams: gpd.GeoDataFrame | None = None
    suit: NDArray[np.float64] | None = None
    slope: NDArray[np.float64] | None = None
    stream_dist: NDArray[np.float64] | None = None
    river_dist: NDArray[np.float64] | None = None
    road_dist: NDArray[np.float64] | None = None
    graph: object = None


def _distance(frame: Frame, geoms: NDArray[np.object_]) -> NDArray[np.float64]:
    """Euclidean distance (m) from every cell to the nearest of ``geoms``."""
    geoms = geoms[~shapely.is_empty(geoms)] if len(geoms) else geoms
    if len(geoms) == 0:
        return np.full(frame.size, 1e6)
    burn = rasterio.features.rasterize(
        [(g, 1) for g in geoms],
        out_shape=frame.shape,
        transform=frame.transform,
        all_touched=True,
        fill=0,
        dtype="uint8",
    )
    return (ndimage.distance_transform_edt(burn == 0) * frame.res).ravel()


def _dem_terrain(
    src: Sources, town: shapely.Polygon, frame: Frame
) -> tuple[NDArray[np.float64], gpd.GeoDataFrame]:
    """Elevation on the working raster, and DEM-derived streams (EPSG:4545)."""
    ll = gpd.GeoSeries([town], crs=WORK_EPSG).to_crs(4490).total_bounds
    margin = 0.06  # degrees: enough upstream area for the streams entering the town
    bounds = (ll[0] - margin, ll[1] - margin, ll[2] + margin, ll[3] + margin)
    z, transform = read_dem_window(src.shared, bounds)
    filled = fill_depressions(z)
    lat = (bounds[1] + bounds[3]) / 2
    dx = transform.a * 111_320 * np.cos(np.radians(lat))
    dy = -transform.e * 110_574
    recv = d8_receivers(filled, dx=dx, dy=dy)
    area = flow_accumulation(recv) * dx * dy / 1e6
    lines, up = stream_lines(recv, area, transform, z.shape, threshold_km2=STREAM_KM2)
    streams = gpd.GeoDataFrame({"up_km2": up}, geometry=lines, crs=4490).to_crs(WORK_EPSG)
    streams["geometry"] = shapely.simplify(streams.geometry.to_numpy(), 15.0)

    elev = np.zeros(frame.shape)
    rasterio.warp.reproject(
        z,
        elev,
        src_transform=transform,
        src_crs=CRS.from_epsg(4326),
        dst_transform=frame.transform,
        dst_crs=CRS.from_epsg(WORK_EPSG),
        resampling=rasterio.warp.Resampling.bilinear,
    )
    return elev, streams


def _noise(rng: np.random.Generator, frame: Frame, sigma_cells: float) -> NDArray[np.float64]:
    """Smooth random field with zero mean and unit standard deviation."""
    f = ndimage.gaussian_filter(rng.standard_normal(frame.shape), sigma_cells, mode="reflect")
    return ((f - f.mean()) / f.std()).ravel()


def _kmeans(rng: np.random.Generator, pts: NDArray[np.float64], k: int) -> NDArray[np.float64]:
    centres, _ = kmeans2(pts, k, minit="++", rng=rng)
    return centres


def _village_seeds(
    rng: np.random.Generator,
    src: Sources,
    code: str,
    town: shapely.Polygon,
    seat: shapely.Point,
) -> pd.DataFrame:
    """Seed point per village: communities by their seat, villages by their 2016 origin."""
    vill = src.villages[src.villages["town_code"] == code].reset_index(drop=True)
    cells = src.cells[src.cells["town_2023"] == code].copy()
    cells["geometry"] = cells.geometry.intersection(town)
    seats = src.seats.set_index("code_2016").geometry
    xs = np.zeros(len(vill))
    ys = np.zeros(len(vill))

    # Communities: beside the seat of their 2016 town when their name is that town's name
    # (碑高社区 sits at the old 碑高乡 seat), else around the town seat, 350-650 m out.
    stem = vill["vill_name"].str.replace("社区居民委员会", "")
    own = src.seats[src.seats["town_2023"] == code]
    seat_by_name = own.assign(stem=own["name"].str[:-1]).set_index("stem")
    comm = np.flatnonzero(vill["kind"].to_numpy() == "community")
    at_seat = [i for i in comm if stem[i] not in seat_by_name.index]
    angles = rng.uniform(0, 2 * np.pi) + 2 * np.pi * np.arange(len(at_seat)) / max(len(at_seat), 1)
    radii = rng.uniform(350, 650, len(at_seat))
    xs[at_seat] = seat.x + radii * np.cos(angles)
    ys[at_seat] = seat.y + radii * np.sin(angles)
    centres = [seat]
    for i in comm:
        if stem[i] in seat_by_name.index:
            p = seat_by_name.geometry[stem[i]]
            xs[i], ys[i] = p.x, p.y
            centres.append(p)

    # Villages: counted per 2016 sub-area (unmatched ones share out by area), spread by k-means
    # over random points of the sub-area kept 1.2 km away from the seats.
    is_vill = vill["kind"].to_numpy() == "village"
    origin = vill["origin_2016"].where(vill["origin_2016"].isin(cells["code_2016"]))
    known = origin[is_vill].value_counts().reindex(cells["code_2016"], fill_value=0)
    free = int((is_vill & origin.isna()).sum())
    share = cells.geometry.area.to_numpy() / cells.geometry.area.sum() * (known.sum() + free)
    extra = np.maximum(share - known.to_numpy(), 0)
    add = np.floor(extra / max(extra.sum(), 1e-9) * free).astype(int)
    left = free - add.sum()
    add[np.argsort(-(extra - add), kind="stable")[:left]] += 1
    unmatched = list(np.flatnonzero(is_vill & origin.isna()))
    keepout = shapely.union_all(shapely.buffer(np.asarray(centres, dtype=object), 1200))
    for (c16, geom), n_extra in zip(
        cells.set_index("code_2016").geometry.items(), add, strict=True
    ):
        members = list(np.flatnonzero(is_vill & (origin == c16).to_numpy()))
        members += unmatched[:n_extra]
        unmatched = unmatched[n_extra:]
        if not members:
            continue
        area = geom.difference(keepout)
        minx, miny, maxx, maxy = area.bounds
        pts = rng.uniform((minx, miny), (maxx, maxy), size=(4000, 2))
        pts = pts[shapely.contains_xy(area, pts[:, 0], pts[:, 1])]
        centre = _kmeans(rng, pts, len(members))
        order = np.argsort(np.arctan2(centre[:, 1] - seats[c16].y, centre[:, 0] - seats[c16].x))
        xs[members] = centre[order, 0]
        ys[members] = centre[order, 1]
    return vill.assign(seed_x=xs, seed_y=ys)


def _valley_snap(
    frame: Frame, x: NDArray, y: NDArray, *, score: NDArray, ok: NDArray, radius: float
) -> NDArray[np.int64]:
    """Move each point to the best-scoring allowed cell within ``radius`` metres."""
    cx, cy = frame.centres()
    cand = np.flatnonzero(ok)
    out = frame.cell_of(x, y)
    for i in range(len(x)):  # a few dozen seeds
        near = cand[np.hypot(cx[cand] - x[i], cy[cand] - y[i]) <= radius]
        if near.size:
            out[i] = near[np.argmin(score[near])]
    return out


def _roads(
    frame: Frame,
    graph: object,
    *,
    seat_cell: int,
    village_cells: NDArray[np.int64],
    exit_cells: NDArray[np.int64],
    hamlet_cells: NDArray[np.int64],
    town: shapely.Polygon,
) -> gpd.GeoDataFrame:
    """Least-cost road network: seat -> villages/exits, then hamlets -> nearest road."""
    _, _, pred = grow_regions(graph, np.array([seat_cell]))
    parts = {
        "county": path_edges(pred, exit_cells),
        "township": path_edges(pred, village_cells),
    }
    on_road = np.unique(np.concatenate([parts["county"][0], parts["township"][0], [seat_cell]]))
    _, _, pred2 = grow_regions(graph, on_road)
    parts["village"] = path_edges(pred2, hamlet_cells)
    cx, cy = frame.centres()
    seen: set[tuple[int, int]] = set()
    rows = []
    for kind in ROAD_CLASSES:
        a, b = parts[kind]
        pairs = {(int(min(p, q)), int(max(p, q))) for p, q in zip(a, b, strict=True)} - seen
        seen |= pairs
        if not pairs:
            continue
        arr = np.array(sorted(pairs))
        segs = shapely.linestrings(
            np.stack(
                [
                    np.column_stack([cx[arr[:, 0]], cy[arr[:, 0]]]),
                    np.column_stack([cx[arr[:, 1]], cy[arr[:, 1]]]),
                ],
                axis=1,
            )
        )
        lines = shapely.get_parts(shapely.line_merge(shapely.multilinestrings(segs)))
        lines = shapely.simplify(lines, frame.res * 0.6)
        lines = shapely.get_parts(shapely.intersection(lines, town))
        lines = lines[shapely.get_type_id(lines) == 1]
        rows += [(kind, g) for g in lines]
    return gpd.GeoDataFrame(
        {"kind": [r[0] for r in rows]}, geometry=[r[1] for r in rows], crs=WORK_EPSG
    )


def _partition_villages(
    frame: Frame,
    town: shapely.Polygon,
    graph: object,
    seeds: NDArray[np.int64],
    offsets: NDArray[np.float64],
) -> list[shapely.Polygon]:
    label, _, _ = grow_regions(graph, seeds, offsets)
    pieces, labels = regions_to_polygons(frame, label, tolerance=frame.res * 1.5)
    # Unclipped piece outlines cross the town edge, so noding joins them to it exactly.
    lines = [town.boundary, *shapely.boundary(pieces)]
    faces = noded_faces(lines)
    faces = faces[shapely.contains(town, shapely.point_on_surface(faces))]
    tree = shapely.STRtree(pieces)
    fi, pi = tree.query(shapely.point_on_surface(faces), predicate="within")
    face_label = np.full(len(faces), -1)
    face_label[fi] = labels[pi]
    regions = faces_to_regions(faces[face_label >= 0], face_label[face_label >= 0])
    return [regions[k] for k in range(len(seeds))]


def build_town(rng: np.random.Generator, src: Sources, code: str, *, dem: bool) -> Town:
    """Generate villages, roads, streams and households of one town.

    Parameters
    ----------
    rng
        The run's random generator (consumed in a fixed order).
    src
        The real inputs.
    code
        NBS town code.
    dem
        Use the real SRTM terrain (the town must lie inside the tile).

    Returns
    -------
    Town
    """
    row = src.towns.set_index("town_code").loc[code]
    town = shapely.set_precision(row.geometry, 0.01)
    seat = src.seats[src.seats["town_2023"] == code].sort_values("code_2016").geometry.iloc[0]
    frame = Frame.around(town, res=RES, margin=10 * RES)
    domain = frame.mask(town.buffer(3 * RES))
    inside = frame.mask(town, all_touched=False)
    cx, cy = frame.centres()
    rivers = src.rivers.geometry.to_numpy()
    river_dist = _distance(frame, shapely.intersection(rivers, town.buffer(5000)))

    if dem:
        elev_grid, streams = _dem_terrain(src, town, frame)
        elev = elev_grid.ravel()
        gy, gx = np.gradient(elev_grid, frame.res)
        slope = np.degrees(np.arctan(np.hypot(gx, gy))).ravel()
        # Height above the 1 km and the 3 km neighbourhood means: below both is a valley floor.
        relz = (elev_grid - ndimage.uniform_filter(elev_grid, size=25)).ravel()
        relz3 = (elev_grid - ndimage.uniform_filter(elev_grid, size=75)).ravel()
        big = streams[streams["up_km2"] >= 3].geometry.to_numpy()
        stream_dist = _distance(frame, streams.geometry.to_numpy())
        barrier = np.where(_distance(frame, big) < RES, 120.0, 0.0)
        barrier += np.where(river_dist < 2 * RES, 1500.0, 0.0)
        rugged = 1.0 + slope / 10
        suit = np.exp(-np.maximum(relz, 0) / 20 - np.maximum(relz3, 0) / 30)
        suit *= np.exp(-((slope / 12) ** 2))
        suit *= (river_dist > 60) * (0.4 + np.exp(-stream_dist / 300))
        climb = 12.0
        streams["geometry"] = shapely.intersection(streams.geometry.to_numpy(), town)
        streams = streams[~streams.geometry.is_empty].explode(ignore_index=True)
        streams = streams[streams.geom_type == "LineString"].reset_index(drop=True)
    else:
        elev = None
        slope = np.zeros(frame.size)
        stream_dist = np.full(frame.size, 1e6)
        noise = _noise(rng, frame, sigma_cells=10)
        rugged = np.exp(0.6 * noise + 0.5 * _noise(rng, frame, sigma_cells=3))
        barrier = None
        suit = np.exp(-0.9 * np.maximum(noise, -1.5) - 1.35)
        climb = 0.0
        streams = None
    suit = np.clip(suit / np.quantile(suit[inside], 0.99), 0, 1) * inside

    graph = cell_graph(frame, domain, rugged, elevation=elev, climb=climb, barrier=barrier)

    seeds = _village_seeds(rng, src, code, town, seat)
    score = -suit if dem else rugged
    is_comm = (seeds["kind"] == "community").to_numpy()
    seed_cells = _valley_snap(
        frame,
        seeds["seed_x"].to_numpy(),
        seeds["seed_y"].to_numpy(),
        score=score,
        ok=inside,
        radius=600.0 if dem else 300.0,
    )
    seed_cells[is_comm] = frame.cell_of(seeds["seed_x"][is_comm], seeds["seed_y"][is_comm])
    seed_cells = _dedupe(seed_cells, frame)
    seeds["seed_x"], seeds["seed_y"] = cx[seed_cells], cy[seed_cells]
    offsets = np.where(is_comm, 400.0, 0.0)
    polys = _partition_villages(frame, town, graph, seed_cells, offsets)
    villages = gpd.GeoDataFrame(seeds, geometry=polys, crs=WORK_EPSG)

    # Hamlets: about 1.6 per km², where settling is easy.
    area_km2 = town.area / 1e6
    p = suit**2 / (suit**2).sum()
    hamlet_cells = rng.choice(frame.size, size=round(area_km2 * 1.6), p=p, replace=False)

    # Roads, towards the three nearest real seats of other towns as well.
    others = src.seats[~src.seats.within(town.buffer(-1))]
    others = others.iloc[np.argsort(others.distance(seat).to_numpy(), kind="stable")[:3]]
    exits = [_exit_point(seat, o, town) for o in others.geometry]
    exit_cells = frame.cell_of(np.array([e.x for e in exits]), np.array([e.y for e in exits]))
    seat_cell = int(frame.cell_of(np.array([seat.x]), np.array([seat.y]))[0])
    roads = _roads(
        frame,
        graph,
        seat_cell=seat_cell,
        village_cells=seed_cells,
        exit_cells=exit_cells,
        hamlet_cells=hamlet_cells,
        town=town,
    )
    road_dist = _distance(frame, roads.geometry.to_numpy())

    # Households: valley floors / smooth land, along roads, in hamlets, around seats.
    impulse = np.zeros(frame.size)
    np.add.at(impulse, hamlet_cells, rng.lognormal(0, 0.6, hamlet_cells.size))
    hamlets = ndimage.gaussian_filter(impulse.reshape(frame.shape), 2.5).ravel()
    hamlets /= hamlets.max()
    seat_pts = np.column_stack([seeds["seed_x"][is_comm], seeds["seed_y"][is_comm]])
    d_seat = np.min(np.hypot(cx[:, None] - seat_pts[:, 0], cy[:, None] - seat_pts[:, 1]), axis=1)
    d_vc = np.min(
        np.hypot(
            cx[:, None] - seeds["seed_x"].to_numpy(), cy[:, None] - seeds["seed_y"].to_numpy()
        ),
        axis=1,
    )
    intensity = suit * (0.12 + np.exp(-road_dist / 120) + 2.5 * hamlets)
    intensity += inside * (6.0 * np.exp(-d_seat / 300) + 0.8 * np.exp(-d_vc / 200))
    intensity *= inside * (river_dist > 40)
    mean_size = float(np.dot(np.arange(1, 8), HOUSEHOLD_SIZE_P))
    n_hh = round(area_km2 * TARGET_DENSITY / mean_size)
    households = _sample_points(rng, frame, intensity, n_hh, town)
    households["people"] = rng.choice(np.arange(1, 8), size=n_hh, p=HOUSEHOLD_SIZE_P)
    tree = shapely.STRtree(villages.geometry.to_numpy())
    hi, vi = tree.query(shapely.points(households[["x", "y"]].to_numpy()), predicate="intersects")
    first = pd.Series(vi, index=hi).groupby(level=0).min()
    households["vill_code"] = villages["vill_code"].to_numpy()[
        first.reindex(range(n_hh)).to_numpy()
    ]

    return Town(
        code=code,
        name=str(row.town_name),
        polygon=town,
        has_dem=dem,
        frame=frame,
        seat=seat,
        villages=villages,
        households=households,
        roads=roads,
        streams=streams,
        suit=suit,
        slope=slope,
        stream_dist=stream_dist,
        river_dist=river_dist,
        road_dist=road_dist,
        graph=graph,
    )


def _exit_point(seat: shapely.Point, other: shapely.Point, town: shapely.Polygon) -> shapely.Point:
    """Where the straight line from the seat towards another town's seat leaves the town."""
    ray = shapely.LineString([seat, other])
    hits = shapely.get_parts(ray.intersection(town.boundary))
    if hits.size == 0:
        return other
    return ray.interpolate(float(np.min(ray.project(hits))))


def _dedupe(cells: NDArray[np.int64], frame: Frame) -> NDArray[np.int64]:
    """Shift seeds that landed in the same cell one cell east until all differ."""
    cells = cells.copy()
    while True:
        _, first = np.unique(cells, return_index=True)
        dup = np.setdiff1d(np.arange(cells.size), first)
        if not dup.size:
            return cells
        cells[dup] = np.minimum(cells[dup] + 1, frame.size - 1)


def _sample_points(
    rng: np.random.Generator, frame: Frame, intensity: NDArray, n: int, town: shapely.Polygon
) -> pd.DataFrame:
    """``n`` points drawn from the cell intensity, jittered in their cell, inside ``town``."""
    cx, cy = frame.centres()
    p = intensity / intensity.sum()
    out = np.empty((0, 2))
    while len(out) < n:
        cell = rng.choice(frame.size, size=int(n * 1.1) + 10, p=p)
        pts = np.column_stack([cx[cell], cy[cell]]) + rng.uniform(
            -frame.res / 2, frame.res / 2, size=(cell.size, 2)
        )
        pts = np.round(pts, 2)
        pts = pts[shapely.contains_xy(town, pts[:, 0], pts[:, 1])]
        out = np.vstack([out, pts])
    return pd.DataFrame({"x": out[:n, 0], "y": out[:n, 1]})
