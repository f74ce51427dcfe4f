"""Checked inputs of the drawing: villages, households and natural lines in metres."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer

from gis_grid.crs import CGCS2000, require_crs
from gis_grid.errors import DataFileError, GeometryError, GridError, RuleError
from gis_grid.io import check_unique
from gis_grid.measure import measure_crs

if TYPE_CHECKING:
    from numpy.typing import NDArray
    from pyproj import CRS

__all__ = [
    "BARRIER_KINDS",
    "DistrictingError",
    "InfeasibleError",
    "Inputs",
    "natural_lines",
    "transform_geoms",
]

#: Line kinds that grids should not straddle (rivers, larger streams, ridges); other lines
#: (roads, brooks) are guides: boundaries may follow them, grids may cross them.
BARRIER_KINDS = frozenset({"river", "creek", "stream", "ridge"})
By = Literal["people", "households"]


class DistrictingError(GridError):
    """Grids cannot be drawn from these inputs (bad coverage, points outside villages ...)."""


class InfeasibleError(DistrictingError, RuleError):
    """The target band cannot be met; :attr:`report` says where and why.

    A :class:`~gis_grid.errors.RuleError` too (the band is a rule the villages cannot meet):
    the service answers 422 with the report's rows as ``problems``.

    Attributes
    ----------
    report
        One row per village that cannot be drawn within the band: ``kind``, ``village``,
        ``grid``, ``detail``.
    """

    def __init__(self, message: str, report: pd.DataFrame) -> None:
        rows = json.loads(report.to_json(orient="records", force_ascii=False))
        super().__init__(message, problems=[{"rule": "band", **row} for row in rows])
        self.report = report


def transform_geoms(geoms: NDArray[np.object_], source: CRS, target: CRS) -> NDArray[np.object_]:
    """Reproject an array of geometries (every coordinate at once); as is for the same CRS."""
    if source == target or not len(geoms):
        return geoms
    transformer = Transformer.from_crs(source, target, always_xy=True)

    def move(xy: NDArray[np.float64]) -> NDArray[np.float64]:
        x, y = transformer.transform(xy[:, 0], xy[:, 1])
        return np.column_stack([x, y])

    return np.asarray(shapely.transform(geoms, move), dtype=object)


@dataclass(frozen=True)
class Inputs:
    """Villages, households and lines projected to the Gauss-Krüger zone of the data.

    ``outlines`` are the villages in their own (storage) CRS ``store_crs``, coordinates
    untouched: the grids' outer edges are built from them, so a village's grids tile it
    exactly as stored (no re-projection round trip along the outline).
    """

    crs: CRS
    village_ids: NDArray[np.str_]
    villages: NDArray[np.object_]
    xy: NDArray[np.float64]
    people: NDArray[np.float64]
    point_village: NDArray[np.intp]
    guides: NDArray[np.object_]
    barriers: NDArray[np.object_]
    store_crs: CRS
    outlines: NDArray[np.object_]

    def weights(self, by: By) -> NDArray[np.float64]:
        """Load of each household: its people, or 1."""
        return self.people if by == "people" else np.ones_like(self.people)

    def to_store(self, geoms: NDArray[np.object_]) -> NDArray[np.object_]:
        """Geometries in metres -> the villages' storage CRS."""
        return transform_geoms(geoms, self.crs, self.store_crs)

    def to_metres(self, geoms: NDArray[np.object_]) -> NDArray[np.object_]:
        """Geometries in the storage CRS -> metres (the Gauss-Krüger zone)."""
        return transform_geoms(geoms, self.store_crs, self.crs)


def _lonlat(crs: CRS, xy: NDArray[np.float64]) -> NDArray[np.float64]:
    lon, lat = Transformer.from_crs(crs, CGCS2000, always_xy=True).transform(xy[:, 0], xy[:, 1])
    return np.column_stack([lon, lat])


def _check_coverage(ids: NDArray[np.str_], geoms: NDArray[np.object_], crs: CRS) -> None:
    if shapely.coverage_is_valid(geoms, gap_width=1.0):
        return
    edges = shapely.coverage_invalid_edges(geoms, gap_width=1.0)
    bad = np.flatnonzero(~shapely.is_empty(edges))
    where = []
    for i in bad[:5]:
        point = shapely.get_coordinates(edges[i])[:1]
        lon, lat = _lonlat(crs, point)[0]
        where.append(f"{ids[i]} near ({lon:.5f}, {lat:.5f})")
    msg = (
        f"villages: {bad.size} village(s) overlap a neighbour or leave a gap narrower than 1 m "
        f"(not a clean coverage): {'; '.join(where)}. Repair the layer first (e.g. "
        "shapely.coverage_simplify, or QGIS 'Snap geometries to layer')."
    )
    raise DistrictingError(msg)


def _project_villages(
    villages: gpd.GeoDataFrame, village_id: str
) -> tuple[NDArray[np.str_], NDArray[np.object_], CRS, NDArray[np.object_]]:
    require_crs(villages.crs, source="villages")
    if village_id not in villages.columns:
        msg = f"villages: no field {village_id!r}; pass village_id= naming the village code"
        raise DataFileError(msg)
    check_unique(villages, village_id, source="villages")
    geoms = np.asarray(villages.geometry.array, dtype=object)
    types = shapely.get_type_id(geoms)
    bad = np.flatnonzero(~np.isin(types, (3, 6)) | shapely.is_empty(geoms))
    if bad.size:
        msg = f"villages: {bad.size} geometries are missing or not polygons (rows {bad[:5] + 1})"
        raise GeometryError(msg)
    crs = measure_crs(villages)
    # make_valid returns a valid geometry unchanged: stored outlines keep their coordinates.
    outlines = np.asarray(shapely.make_valid(geoms), dtype=object)
    projected = transform_geoms(outlines, villages.crs, crs)
    ids = villages[village_id].astype(str).to_numpy()
    _check_coverage(ids, projected, crs)
    return ids, projected, crs, outlines


def _locate(
    xy: NDArray[np.float64], villages: NDArray[np.object_], labels: NDArray[np.str_], crs: CRS
) -> NDArray[np.intp]:
    tree = shapely.STRtree(villages)
    pts, hit = tree.query(shapely.points(xy), predicate="intersects")
    owner = np.full(len(xy), -1, dtype=np.intp)
    owner[pts[::-1]] = hit[::-1]  # the first hit wins
    outside = np.flatnonzero(owner < 0)
    if outside.size:
        lon, lat = _lonlat(crs, xy[outside[:1]])[0]
        msg = (
            f"households: {outside.size} household(s) lie outside every village, the first is "
            f"{labels[outside[0]]} at ({lon:.5f}, {lat:.5f}). Fix their coordinates or the "
            "village boundaries, or leave them out explicitly before drawing."
        )
        raise DistrictingError(msg)
    return owner


def _split_lines(
    lines: gpd.GeoDataFrame | None, crs: CRS, extent: shapely.Geometry
) -> tuple[NDArray[np.object_], NDArray[np.object_]]:
    empty = np.empty(0, dtype=object)
    if lines is None or len(lines) == 0:
        return empty, empty
    require_crs(lines.crs, source="lines")
    geoms = np.asarray(lines.geometry.to_crs(crs).array, dtype=object)
    if "barrier" in lines.columns:
        barrier = lines["barrier"].fillna(value=False).astype(bool).to_numpy()
    elif "kind" in lines.columns:
        barrier = lines["kind"].astype(str).str.lower().isin(BARRIER_KINDS).to_numpy()
    else:
        barrier = np.ones(len(lines), dtype=bool)
    keep = ~shapely.is_missing(geoms) & ~shapely.is_empty(geoms)
    keep &= np.isin(shapely.get_type_id(geoms), (1, 5))
    clipped = shapely.intersection(geoms, extent)
    parts, idx = shapely.get_parts(clipped, return_index=True)
    lines_ok = np.isin(shapely.get_type_id(parts), (1, 5)) & keep[idx]
    parts, idx = parts[lines_ok], idx[lines_ok]
    return parts[~barrier[idx]], parts[barrier[idx]]


def prepare(
    villages: gpd.GeoDataFrame,
    households: gpd.GeoDataFrame,
    *,
    lines: gpd.GeoDataFrame | None,
    village_id: str,
    people: str,
    by: By,
) -> Inputs:
    """Check and project the inputs; raise a :class:`DistrictingError` naming what is wrong."""
    if by not in ("people", "households"):
        msg = f"by={by!r}: choose 'people' or 'households'"
        raise DistrictingError(msg)
    ids, geoms, crs, outlines = _project_villages(villages, village_id)
    require_crs(households.crs, source="households")
    pts = households.geometry.to_crs(crs)
    if not pts.geom_type.eq("Point").all():
        msg = "households: every geometry must be a point (one per household)"
        raise GeometryError(msg)
    xy = np.column_stack([pts.x.to_numpy(), pts.y.to_numpy()])
    if by == "people" or people in households.columns:
        if people not in households.columns:
            msg = f"households: no field {people!r} with people per household (by='people')"
            raise DataFileError(msg)
        count = pd.to_numeric(households[people], errors="coerce").to_numpy(dtype=float)
        if np.isnan(count).any() or (count < 0).any():
            first = int(np.flatnonzero(np.isnan(count) | (count < 0))[0])
            msg = f"households: field {people!r} is missing or negative in row {first + 1}"
            raise DataFileError(msg)
    else:
        count = np.ones(len(households))
    labels = (
        households["hh_id"].astype(str).to_numpy()
        if "hh_id" in households.columns
        else np.array([f"row {i + 1}" for i in range(len(households))])
    )
    owner = _locate(xy, geoms, labels, crs)
    extent = shapely.box(*shapely.total_bounds(geoms)).buffer(1.0)
    guides, barriers = _split_lines(lines, crs, extent)
    return Inputs(
        crs,
        ids,
        geoms,
        xy,
        count,
        owner,
        guides,
        barriers,
        store_crs=require_crs(villages.crs, source="villages"),
        outlines=outlines,
    )


def natural_lines(
    *,
    rivers: gpd.GeoDataFrame | None = None,
    streams: gpd.GeoDataFrame | None = None,
    roads: gpd.GeoDataFrame | None = None,
    terrain: gpd.GeoDataFrame | None = None,
    barrier_streams: tuple[str, ...] = ("creek", "river", "stream"),
) -> gpd.GeoDataFrame:
    """Gather natural lines into one layer with ``kind`` and ``barrier`` columns.

    Parameters
    ----------
    rivers
        River lines: barriers.
    streams
        Stream lines with a ``kind`` column (``brook``/``creek``/``river``); those whose kind
        is in ``barrier_streams`` are barriers, the others guides.
    roads
        Road lines: guides (boundaries may follow them; grids may cross them).
    terrain
        Output of :func:`gis_grid.terrain.terrain_lines` (streams and ridges): barriers.
    barrier_streams
        Stream kinds treated as barriers.

    Returns
    -------
    geopandas.GeoDataFrame
        Columns ``kind``, ``barrier`` and ``geometry``, in EPSG:4490.

    Examples
    --------
    >>> import shapely
    >>> roads = gpd.GeoDataFrame(geometry=[shapely.LineString([(107.4, 31.1), (107.5, 31.1)])],
    ...                          crs=4490)
    >>> natural_lines(roads=roads)[["kind", "barrier"]].to_dict("records")
    [{'kind': 'road', 'barrier': False}]
    """
    frames = []
    for layer, kind, barrier in (
        (rivers, "river", True),
        (streams, None, None),
        (roads, "road", False),
        (terrain, None, True),
    ):
        if layer is None or len(layer) == 0:
            continue
        require_crs(layer.crs, source="lines")
        kinds = (
            layer["kind"].astype(str)
            if kind is None and "kind" in layer.columns
            else pd.Series(kind or "stream", index=layer.index)
        )
        flags = (
            kinds.isin(barrier_streams)
            if barrier is None
            else pd.Series(barrier, index=layer.index)
        )
        frames.append(
            gpd.GeoDataFrame(
                {"kind": kinds.to_numpy(), "barrier": flags.to_numpy(dtype=bool)},
                geometry=layer.geometry.to_crs(CGCS2000).to_numpy(),
                crs=CGCS2000,
            )
        )
    if not frames:
        return gpd.GeoDataFrame({"kind": [], "barrier": []}, geometry=[], crs=CGCS2000)
    return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=CGCS2000)
