"""``draw_from_units``: grids made of given polygon units (census blocks, parcels, hamlets).

:func:`~gis_grid.districting.draw_grids` cuts its own blocks out of villages from household
points. When the building blocks already exist as polygons with a load each (census blocks
with a population, as in the districting literature and in GerryChain), this draws grids from
them with the same machinery: the units' adjacency (shared border lengths, and the parts of
them on natural lines), barrier regions, METIS k-way with contiguity, and the balance moves.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gis_grid.codes import grid_sequence
from gis_grid.crs import CGCS2000, require_crs
from gis_grid.districting._blocks import face_edges
from gis_grid.districting._draw import Plan, _issues, village_counts
from gis_grid.districting._inputs import DistrictingError, InfeasibleError, _split_lines
from gis_grid.districting._partition import partition_village
from gis_grid.errors import DataFileError, GeometryError
from gis_grid.measure import measure_crs

if TYPE_CHECKING:
    from numpy.typing import NDArray
    from pyproj import CRS

__all__ = ["draw_from_units"]

_GRID_COLUMNS = [
    "grid_code",
    "vill_code",
    "seq",
    "units",
    "load",
    "target",
    "dev_pct",
    "in_band",
    "locked",
    "geometry",
]


def _metric(units: gpd.GeoDataFrame) -> CRS:
    """Return the CRS to work in: the units' own if in metres, else their Gauss-Krüger zone."""
    crs = require_crs(units.crs, source="units")
    if crs.is_projected and crs.axis_info[0].unit_name in {"metre", "meter"}:
        return crs
    return measure_crs(units)


def _unit_geoms(units: gpd.GeoDataFrame, crs: CRS) -> NDArray[np.object_]:
    geoms = np.asarray(units.geometry.to_crs(crs).array, dtype=object)
    bad = np.flatnonzero(~np.isin(shapely.get_type_id(geoms), (3, 6)) | shapely.is_empty(geoms))
    if bad.size:
        msg = f"units: {bad.size} geometries are missing or not polygons (rows {bad[:5] + 1})"
        raise GeometryError(msg)
    geoms = shapely.make_valid(geoms)
    if not shapely.coverage_is_valid(geoms):
        edges = shapely.coverage_invalid_edges(geoms)
        rows = np.flatnonzero(~shapely.is_empty(edges))
        msg = (
            f"units: {rows.size} unit(s) overlap a neighbour or do not share its vertices "
            f"exactly (not a clean coverage), rows {(rows[:5] + 1).tolist()}. Repair them "
            "first (e.g. shapely.set_precision, shapely.coverage_simplify)."
        )
        raise DistrictingError(msg)
    return geoms


def _weights(units: gpd.GeoDataFrame, weight: str) -> NDArray[np.float64]:
    if weight not in units.columns:
        msg = f"units: no field {weight!r} with the load of each unit; pass weight="
        raise DataFileError(msg)
    load = pd.to_numeric(units[weight], errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(np.isnan(load) | (load < 0))
    if bad.size:
        msg = f"units: field {weight!r} is missing or negative in row {int(bad[0]) + 1}"
        raise DataFileError(msg)
    return load


def _codes(
    grids: NDArray[np.object_], grid_village: NDArray[np.intp], ids: NDArray[np.str_]
) -> tuple[NDArray[np.str_], NDArray[np.int64]]:
    """Sequence numbers west→east, north→south inside each village, and the codes."""
    seq = np.zeros(len(grids), dtype=np.int64)
    for v in np.unique(grid_village):
        rows = np.flatnonzero(grid_village == v)
        seq[rows[np.argsort(grid_sequence(grids[rows]))]] = np.arange(1, rows.size + 1)
    codes = np.array([f"{ids[v]}{s:03d}" for v, s in zip(grid_village, seq, strict=True)])
    return codes, seq


def draw_from_units(
    units: gpd.GeoDataFrame,
    *,
    weight: str,
    n_grids: int | Mapping[str, int] | None = None,
    target: float | None = None,
    tolerance: float = 0.1,
    village: str | None = None,
    lines: gpd.GeoDataFrame | None = None,
    seed: int = 0,
    on_infeasible: Literal["raise", "report"] = "raise",
) -> Plan:
    """Draw grids as unions of given polygon units: balanced, contiguous, compact.

    Parameters
    ----------
    units
        Polygons forming a clean coverage (neighbours share their vertices exactly), with a CRS.
    weight
        Column with each unit's load (people, households).
    n_grids
        Total grids (shared out by load between villages) or a mapping village -> grids.
    target
        Load per grid, when ``n_grids`` is not given (see :func:`draw_grids`).
    tolerance
        Half-width of the band around the target (0.05 = ±5 %).
    village
        Column nesting the grids: a grid never spans two values (villages, tracts). Without it
        the whole layer is one area.
    lines
        Natural lines as for :func:`draw_grids`: unit borders on them are cheap to cut, and
        barriers are not straddled where a balanced alternative exists.
    seed
        Seed of METIS.
    on_infeasible
        ``"raise"`` an :class:`InfeasibleError` when the band cannot be met in a village, or
        ``"report"`` it in :attr:`Plan.issues`.

    Returns
    -------
    Plan
        ``grids`` in EPSG:4490 with ``grid_code`` (the village value + a 3-digit sequence
        west→east, north→south; just the sequence without ``village``), ``vill_code``, ``seq``,
        ``units``, ``load``, ``target``, ``dev_pct``, ``in_band``, ``locked``; ``assignment``
        gives the ``grid_code`` of each unit (indexed like ``units``).

    Raises
    ------
    DistrictingError
        Units overlapping or not sharing vertices, a bad ``weight`` column.
    InfeasibleError
        The band cannot be met (``on_infeasible="raise"``).

    Examples
    --------
    >>> plan = draw_from_units(blocks, weight="TOTPOP", n_grids=15, tolerance=0.05)
    ... # doctest: +SKIP
    >>> plan.max_dev_pct < 5  # doctest: +SKIP
    True
    """
    started = time.perf_counter()
    crs = _metric(units)
    geoms = _unit_geoms(units, crs)
    load = _weights(units, weight)
    labels = (
        units[village].astype(str).to_numpy()
        if village is not None
        else np.full(len(units), "", dtype=object)
    )
    ids, unit_village = np.unique(labels, return_inverse=True)
    ids = ids.astype(str)
    unit_village = unit_village.ravel()
    loads = np.bincount(unit_village, weights=load, minlength=len(ids)).astype(float)
    counts, targets, problems = village_counts(
        loads, ids, target=target, tolerance=tolerance, n_grids=n_grids
    )
    if problems and on_infeasible == "raise":
        msg = f"the band cannot be met in {len(problems)} village(s): " + "; ".join(
            str(p["detail"]) for p in problems[:3]
        )
        raise InfeasibleError(msg, _issues(problems))
    extent = shapely.box(*shapely.total_bounds(geoms)).buffer(1.0)
    guides, barriers = _split_lines(lines, crs, extent)
    edges = face_edges(geoms, guides, barriers)
    edges = edges[unit_village[edges["a"]] == unit_village[edges["b"]]]
    unit_grid = np.full(len(geoms), -1, dtype=np.intp)
    grid_village: list[int] = []
    for i in range(len(ids)):
        members = np.flatnonzero(unit_village == i)
        local = np.full(len(geoms), -1, dtype=np.intp)
        local[members] = np.arange(members.size)
        sub = edges.assign(a=local[edges["a"]], b=local[edges["b"]])
        sub = sub[(sub["a"] >= 0) & (sub["b"] >= 0)]
        t = float(targets[i])
        part = partition_village(
            load[members],
            sub,
            int(counts[i]),
            target=t,
            low=t * (1 - tolerance),
            high=t * (1 + tolerance),
            seed=seed,
        )
        unit_grid[members] = part + len(grid_village)
        grid_village.extend([i] * (int(part.max()) + 1))
    return _assemble(
        units,
        geoms,
        load,
        unit_grid,
        np.asarray(grid_village, dtype=np.intp),
        ids=ids,
        targets=targets,
        crs=crs,
        weight=weight,
        tolerance=tolerance,
        problems=problems,
        started=started,
    )


def _assemble(
    units: gpd.GeoDataFrame,
    geoms: NDArray[np.object_],
    load: NDArray[np.float64],
    unit_grid: NDArray[np.intp],
    grid_village: NDArray[np.intp],
    *,
    ids: NDArray[np.str_],
    targets: NDArray[np.float64],
    crs: CRS,
    weight: str,
    tolerance: float,
    problems: list[dict[str, object]],
    started: float,
) -> Plan:
    n = len(grid_village)
    merged = (
        gpd.GeoDataFrame({"grid": unit_grid}, geometry=geoms, crs=crs)
        .dissolve(by="grid", method="coverage")
        .geometry.reindex(np.arange(n))
        .to_numpy()
    )
    codes, seq = _codes(merged, grid_village, ids)
    grid_load = np.bincount(unit_grid, weights=load, minlength=n)
    grid_target = targets[grid_village]
    dev = (grid_load / grid_target - 1) * 100
    frame = gpd.GeoDataFrame(
        {
            "grid_code": codes,
            "vill_code": ids[grid_village],
            "seq": seq,
            "units": np.bincount(unit_grid, minlength=n),
            "load": grid_load,
            "target": grid_target,
            "dev_pct": dev,
            "in_band": np.abs(dev) <= tolerance * 100 + 1e-9,
            "locked": False,
        },
        geometry=merged,
        crs=crs,
    )
    issues = list(problems)
    for i in np.flatnonzero(shapely.get_type_id(merged) != 3).tolist():
        issues.append(
            {
                "kind": "multipart",
                "village": ids[grid_village[i]],
                "grid": codes[i],
                "detail": "the grid is not one polygon",
            }
        )
    for i in np.flatnonzero(~frame["in_band"].to_numpy()).tolist():
        issues.append(
            {
                "kind": "out_of_band",
                "village": ids[grid_village[i]],
                "grid": codes[i],
                "detail": f"load {grid_load[i]:.0f} ({weight}) is {dev[i]:+.1f} % from the "
                f"target {grid_target[i]:.0f}",
            }
        )
    grids = frame[_GRID_COLUMNS].to_crs(CGCS2000).sort_values("grid_code").reset_index(drop=True)
    return Plan(
        grids=grids,
        issues=_issues(issues),
        by=weight,
        tolerance=tolerance,
        seconds=time.perf_counter() - started,
        assignment=pd.Series(codes[unit_grid], index=units.index, name="grid_code"),
    )
