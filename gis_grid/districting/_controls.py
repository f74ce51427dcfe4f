"""Planner controls: rebalance an existing plan with the fewest moves; propose grid counts."""

from __future__ import annotations

import time
from dataclasses import replace

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gis_grid.crs import CGCS2000, require_crs
from gis_grid.districting._blocks import build_units
from gis_grid.districting._draw import BLOCKS_PER_GRID, Plan, _best_count, assemble
from gis_grid.districting._inputs import By, DistrictingError, prepare
from gis_grid.districting._partition import count_range, cut_weights, refine

__all__ = ["propose_counts", "rebalance"]


def rebalance(
    plan: Plan | gpd.GeoDataFrame,
    *,
    villages: gpd.GeoDataFrame,
    households: gpd.GeoDataFrame,
    lines: gpd.GeoDataFrame | None = None,
    target: float | None = None,
    by: By = "people",
    tolerance: float = 0.1,
    seed: int = 0,
    village_id: str = "vill_code",
    people: str = "people",
) -> Plan:
    """Bring every grid into the band by moving blocks across shared borders, and say what moved.

    Each grid is cut into small blocks (its own boundary, the natural lines and a Voronoi
    partition of its households); blocks on a border then move to the neighbouring grid, the
    move removing most excess load first (ties: the shorter new border), never disconnecting a
    grid, until every grid is within the band or no move helps. Grids keep their codes; the
    grid count does not change (use :func:`draw_grids` with ``locked=`` to redraw).

    Parameters
    ----------
    plan
        A :class:`Plan` or grid polygons with ``grid_code`` (a clean coverage of the villages).
    villages, households, lines, by, village_id, people
        As for :func:`draw_grids`.
    target
        Load per grid; by default the plan's ``target`` column, else each village's mean.
    tolerance
        Band half-width around the target.
    seed
        Seed of the block sampling.

    Returns
    -------
    Plan
        The rebalanced grids; :attr:`Plan.moves` lists each moved block: ``block``,
        ``from_grid``, ``to_grid``, ``households``, ``people``, ``area_m2``, ``geometry``
        (EPSG:4490). Grids still outside the band are in :attr:`Plan.issues`.

    Examples
    --------
    >>> fixed = rebalance(plan, villages=villages, households=households)  # doctest: +SKIP
    >>> fixed.moves[["from_grid", "to_grid", "people"]]  # doctest: +SKIP
    """
    started = time.perf_counter()
    frame = plan.grids if isinstance(plan, Plan) else plan
    require_crs(frame.crs, source="plan")
    inputs = prepare(villages, households, lines=lines, village_id=village_id, people=people, by=by)
    weights = inputs.weights(by)
    # The plan's grids in the villages' storage CRS: their borders are noded as they are.
    geoms = np.asarray(frame.geometry.to_crs(inputs.store_crs).array, dtype=object)
    codes = frame["grid_code"].astype(str).to_numpy()
    pts, hit = shapely.STRtree(inputs.outlines).query(
        shapely.point_on_surface(geoms), predicate="within"
    )
    grid_village = np.full(len(geoms), -1, dtype=np.intp)
    grid_village[pts] = hit
    counts = np.bincount(grid_village[grid_village >= 0], minlength=len(inputs.villages))
    units = build_units(
        inputs.villages,
        inputs.xy,
        inputs.people,
        weights,
        point_village=inputs.point_village,
        blocks=np.maximum(counts * BLOCKS_PER_GRID, 8),
        guides=inputs.guides,
        barriers=inputs.barriers,
        cuts=geoms,
        seed=seed,
        outlines=inputs.outlines,
        to_store=inputs.to_store,
        to_metres=inputs.to_metres,
        cuts_cover=True,
    )
    if (units.cut < 0).any():
        where = inputs.village_ids[np.unique(units.village[units.cut < 0])]
        msg = f"plan: the grids do not cover villages {list(where[:5])}; draw them first"
        raise DistrictingError(msg)
    before = units.cut.copy()
    after = before.copy()
    loads = np.bincount(before, weights=units.load, minlength=len(geoms))
    nv = len(inputs.villages)
    village_load = np.bincount(
        grid_village[grid_village >= 0], weights=loads[grid_village >= 0], minlength=nv
    )
    if target is not None:
        targets = np.full(nv, float(target))
    elif "target" in frame.columns:
        given = pd.Series(frame["target"].to_numpy(dtype=float)).groupby(grid_village).mean()
        targets = given.reindex(np.arange(nv)).to_numpy()
    else:
        targets = village_load / np.maximum(counts, 1)
    for v in range(len(inputs.villages)):
        rows = np.flatnonzero(grid_village == v)
        members = np.flatnonzero(units.village == v)
        if rows.size < 2 or not members.size:
            continue
        local = np.full(units.n, -1, dtype=np.intp)
        local[members] = np.arange(members.size)
        e = units.edges
        ea, eb = local[e["a"].to_numpy()], local[e["b"].to_numpy()]
        inside = (ea >= 0) & (eb >= 0)
        part_of = {g: i for i, g in enumerate(rows)}
        part = np.array([part_of[g] for g in before[members]], dtype=np.intp)
        t = float(targets[v])
        new = refine(
            part,
            units.load[members],
            ea[inside],
            eb[inside],
            cut_weights(e[inside]),
            target=t,
            low=t * (1 - tolerance),
            high=t * (1 + tolerance),
            polish=False,
        )
        after[members] = rows[new]
    moved = np.flatnonzero(after != before)
    point_unit = units.point_unit
    block_geoms = gpd.GeoDataFrame({"unit": units.face_unit}, geometry=units.faces, crs=inputs.crs)
    block_geoms = block_geoms[np.isin(units.face_unit, moved)].dissolve(
        by="unit", method="coverage"
    )
    moves = gpd.GeoDataFrame(
        {
            "block": moved,
            "from_grid": codes[before[moved]],
            "to_grid": codes[after[moved]],
            "households": np.bincount(point_unit, minlength=units.n)[moved],
            "people": np.bincount(point_unit, weights=inputs.people, minlength=units.n)[moved],
            "area_m2": block_geoms.area.reindex(moved).to_numpy(),
        },
        geometry=block_geoms.geometry.reindex(moved).to_numpy(),
        crs=inputs.crs,
    ).to_crs(CGCS2000)
    kept = {i: codes[i] for i in range(len(geoms))}
    result = assemble(
        inputs,
        units,
        after,
        grid_village,
        targets,
        by=by,
        tolerance=tolerance,
        kept_codes=kept,
        issues=[],
        started=started,
        locked_rows=set(),
    )
    return replace(result, moves=moves)


def propose_counts(
    villages: gpd.GeoDataFrame,
    households: gpd.GeoDataFrame,
    *,
    band: tuple[float, float],
    by: By = "people",
    village_id: str = "vill_code",
    people: str = "people",
) -> pd.DataFrame:
    """How many grids (and members: 一格一员) each village needs for a load band.

    Parameters
    ----------
    villages, households
        As for :func:`draw_grids`.
    band
        ``(low, high)`` load per grid (people or households, see ``by``).
    by, village_id, people
        As for :func:`draw_grids`.

    Returns
    -------
    pandas.DataFrame
        One row per village: ``vill_code``, ``load``, ``n_min``, ``n_max`` (grid counts whose
        mean load is in the band), ``grids`` (the suggested count, nearest the band's middle),
        ``members`` (= grids), ``per_grid``, ``feasible`` and a ``detail`` when it is not.

    Examples
    --------
    >>> propose_counts(villages, households, band=(500, 700))  # doctest: +SKIP
    """
    low, high = (float(b) for b in band)
    if not 0 < low <= high:
        msg = f"band {band} must be (low, high) with 0 < low <= high"
        raise DistrictingError(msg)
    inputs = prepare(villages, households, lines=None, village_id=village_id, people=people, by=by)
    loads = np.bincount(
        inputs.point_village, weights=inputs.weights(by), minlength=len(inputs.village_ids)
    )
    mid = (low + high) / 2
    rows = []
    for code, w in zip(inputs.village_ids, loads, strict=True):
        kmin, kmax = count_range(float(w), low, high)
        k = _best_count(float(w), mid, kmin, kmax)
        feasible = kmin <= kmax
        detail = (
            ""
            if feasible
            else (
                f"load {w:.0f} is below the floor {low:.0f} of one grid"
                if w < low
                else f"no whole number of grids puts {w:.0f} within {low:.0f}-{high:.0f}"
            )
        )
        rows.append(
            {
                "vill_code": code,
                "load": float(w),
                "n_min": kmin,
                "n_max": kmax,
                "grids": k,
                "members": k,
                "per_grid": float(w) / k,
                "feasible": feasible,
                "detail": detail,
            }
        )
    return pd.DataFrame(rows)
