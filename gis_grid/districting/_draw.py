"""``draw_grids``: balanced, compact grids inside villages that follow natural lines."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gis_grid.codes import grid_sequence, split_grid_code
from gis_grid.crs import CGCS2000, require_crs
from gis_grid.districting._blocks import Units, build_units
from gis_grid.districting._inputs import By, DistrictingError, InfeasibleError, Inputs, prepare
from gis_grid.districting._partition import count_range, partition_village

if TYPE_CHECKING:
    from numpy.typing import NDArray
    from pyproj import CRS

__all__ = ["Plan", "draw_grids"]

#: Seeds (blocks) per grid: enough granularity to balance within a few per cent.
BLOCKS_PER_GRID = 24
_ISSUE_COLUMNS = ["kind", "village", "grid", "detail"]


@dataclass(frozen=True)
class Plan:
    """A drawn (or rebalanced) set of grids.

    Attributes
    ----------
    grids
        EPSG:4490, one row per grid: ``grid_code`` (12-digit village code + 3-digit sequence,
        west→east, north→south), ``vill_code``, ``seq``, ``households``, ``people``,
        ``load`` (the ``by`` quantity), ``target``, ``dev_pct`` (load vs target), ``in_band``,
        ``locked``.
    issues
        What could not be met: ``kind`` (``infeasible_band``, ``out_of_band``,
        ``invalid_coverage``, ``multipart``), ``village``, ``grid``, ``detail``. Empty when
        every requirement holds.
    by, tolerance
        The balanced quantity and the band's relative half-width.
    seconds
        Wall time of the drawing.
    moves
        For :func:`rebalance`: the blocks that moved.
    assignment
        For :func:`draw_from_units`: the ``grid_code`` of each unit (indexed like the units).
    """

    grids: gpd.GeoDataFrame
    issues: pd.DataFrame
    by: str
    tolerance: float
    seconds: float = 0.0
    moves: pd.DataFrame | None = field(default=None)
    assignment: pd.Series | None = field(default=None)

    @property
    def ok(self) -> bool:
        """True when every grid is valid and within the band."""
        return self.issues.empty

    @property
    def max_dev_pct(self) -> float:
        """Largest absolute deviation from the target, in per cent."""
        return float(self.grids["dev_pct"].abs().max()) if len(self.grids) else 0.0


def _issues(rows: list[dict[str, object]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=_ISSUE_COLUMNS)


def _best_count(load: float, target: float, kmin: int, kmax: int) -> int:
    """Return the count nearest ``load / target`` in ``[kmin, kmax]``, else the best one."""
    if load <= 0:
        return 1
    if kmin <= kmax:
        return int(np.clip(round(load / target), kmin, kmax))
    options = np.array([max(1, int(load // target)), max(1, int(-(-load // target)))])
    return int(options[np.argmin(np.abs(load / options - target))])


def village_counts(
    loads: NDArray[np.float64],
    ids: NDArray[np.str_],
    *,
    target: float | None,
    tolerance: float,
    n_grids: int | Mapping[str, int] | None,
) -> tuple[NDArray[np.int64], NDArray[np.float64], list[dict[str, object]]]:
    """Grids per village and each village's target; the villages where the band fails."""
    total = float(loads.sum())
    if isinstance(n_grids, Mapping):
        counts = np.array([int(n_grids.get(v, 0)) for v in ids], dtype=np.int64)
        missing = [v for v, c in zip(ids, counts, strict=True) if c <= 0]
        if missing:
            msg = f"n_grids gives no (positive) count for villages {missing[:5]}"
            raise DistrictingError(msg)
    elif n_grids is not None:
        if int(n_grids) < len(ids):
            msg = (
                f"n_grids={n_grids} is fewer than the {len(ids)} villages (one grid each at least)"
            )
            raise DistrictingError(msg)
        share = loads / total * int(n_grids) if total > 0 else np.ones(len(ids))
        counts = np.maximum(np.floor(share).astype(np.int64), 1)
        while counts.sum() < int(n_grids):
            counts[int(np.argmax(loads / counts))] += 1
        while counts.sum() > int(n_grids):
            counts[int(np.argmin(np.where(counts > 1, loads / (counts - 1), np.inf)))] -= 1
    else:
        if target is None or target <= 0:
            msg = "give a positive target (load per grid) or n_grids"
            raise DistrictingError(msg)
        counts = np.zeros(len(ids), dtype=np.int64)
    targets = np.full(len(ids), float(target)) if target else loads / counts
    problems: list[dict[str, object]] = []
    for i, (w, t) in enumerate(zip(loads, targets, strict=True)):
        low, high = t * (1 - tolerance), t * (1 + tolerance)
        kmin, kmax = count_range(w, low, high)
        if counts[i] == 0:
            counts[i] = _best_count(w, t, kmin, kmax)
        if not kmin <= counts[i] <= kmax:
            problems.append(
                {
                    "kind": "infeasible_band",
                    "village": ids[i],
                    "grid": None,
                    "detail": f"village {ids[i]} has load {w:.0f}: {counts[i]} grid(s) give "
                    f"{w / counts[i]:.0f} each, outside the band {low:.0f}-{high:.0f}"
                    + ("" if kmin > kmax else f" (feasible: {kmin}-{kmax} grids)")
                    + (" (fewer than the floor for one grid)" if w < low else ""),
                }
            )
    return counts, targets, problems


def _locked(
    locked: gpd.GeoDataFrame | None, crs: CRS
) -> tuple[NDArray[np.object_], NDArray[np.str_]]:
    """Kept grids in ``crs`` (the villages' storage CRS: kept exactly) and their codes."""
    if locked is None or len(locked) == 0:
        return np.empty(0, dtype=object), np.empty(0, dtype=str)
    require_crs(locked.crs, source="locked")
    if "grid_code" not in locked.columns:
        msg = "locked: the grids to keep need their 'grid_code' column"
        raise DistrictingError(msg)
    codes = locked["grid_code"].astype(str).to_numpy()
    for code in codes:
        split_grid_code(code)
    return np.asarray(locked.geometry.to_crs(crs).array, dtype=object), codes


def _why(
    units: Units, village: int, mine: NDArray[np.bool_], target: float, tolerance: float
) -> str:
    """Why a grid stayed outside the band: an indivisible unit, or stalled balancing."""
    width = 2 * tolerance * target
    heavy = float(units.load[mine].max(initial=0.0))
    if heavy > width:
        return (
            f": it holds an indivisible block of {heavy:.0f} (households at one spot), wider "
            f"than the band ({width:.0f}); widen the tolerance or change the target"
        )
    near = units.load[units.village == village]
    return (
        f"; the balance moves and redraws of neighbouring grids found no contiguous fix "
        f"(largest block in the village {near.max(initial=0.0):.0f}, band width {width:.0f})"
    )


def dissolve(units: Units, unit_grid: NDArray[np.intp], crs: CRS) -> gpd.GeoSeries:
    """Union the faces of each grid (a coverage union: exact, fast), in EPSG:4490.

    The faces are taken in the villages' storage CRS ``crs``: their outer edges are the
    villages' own coordinates, so with villages stored in EPSG:4490 nothing is re-projected.
    """
    faces = gpd.GeoDataFrame(
        {"grid": unit_grid[units.face_unit]}, geometry=units.store_faces, crs=crs
    )
    merged = faces.dissolve(by="grid", method="coverage")
    return merged.geometry.to_crs(CGCS2000)


def assemble(
    inputs: Inputs,
    units: Units,
    unit_grid: NDArray[np.intp],
    grid_village: NDArray[np.intp],
    targets: NDArray[np.float64],
    *,
    by: By,
    tolerance: float,
    kept_codes: Mapping[int, str],
    issues: list[dict[str, object]],
    started: float,
    locked_rows: set[int] | None = None,
) -> Plan:
    """Dissolve, count, validate and code the grids of a partition."""
    geoms = dissolve(units, unit_grid, inputs.store_crs)
    n = len(grid_village)
    point_grid = unit_grid[units.point_unit]
    load = np.bincount(point_grid, weights=inputs.weights(by), minlength=n)
    frame = gpd.GeoDataFrame(
        {
            "vill_code": inputs.village_ids[grid_village],
            "households": np.bincount(point_grid, minlength=n),
            "people": np.bincount(point_grid, weights=inputs.people, minlength=n).astype(int),
            "load": load,
            "target": targets[grid_village],
            "locked": np.isin(
                np.arange(n), list(kept_codes if locked_rows is None else locked_rows)
            ),
        },
        geometry=geoms.reindex(np.arange(n)).to_numpy(),
        crs=CGCS2000,
    )
    frame["dev_pct"] = (frame["load"] / frame["target"] - 1) * 100
    frame["in_band"] = frame["dev_pct"].abs() <= tolerance * 100 + 1e-9
    frame["grid_code"] = ""
    frame["seq"] = 0
    for village, rows in frame.groupby("vill_code").indices.items():
        taken = {split_grid_code(kept_codes[r])[1]: r for r in rows if r in kept_codes}
        free = [r for r in rows if r not in kept_codes]
        order = np.asarray(free)[np.argsort(grid_sequence(frame.geometry.to_numpy()[free]))]
        numbers = [s for s in range(1, len(rows) + len(taken) + 1) if s not in taken]
        seq = dict(zip(order.tolist(), numbers, strict=False)) | {r: s for s, r in taken.items()}
        frame.loc[list(seq), "seq"] = list(seq.values())
        frame.loc[list(seq), "grid_code"] = [f"{village}{s:03d}" for s in seq.values()]
    projected = frame.geometry.to_crs(inputs.crs).to_numpy()
    for i, village in enumerate(inputs.village_ids):
        rows = np.flatnonzero(grid_village == i)
        if not shapely.coverage_is_valid(projected[rows]):
            issues.append(
                {
                    "kind": "invalid_coverage",
                    "village": village,
                    "grid": None,
                    "detail": "the village's grids do not form a clean coverage",
                }
            )
    multi = np.flatnonzero(shapely.get_type_id(projected) != 3)
    issues.extend(
        {
            "kind": "multipart",
            "village": frame["vill_code"].iloc[i],
            "grid": frame["grid_code"].iloc[i],
            "detail": "the grid is not one polygon",
        }
        for i in multi
    )
    for i in np.flatnonzero(~frame["in_band"].to_numpy()).tolist():
        if not frame["locked"].iloc[i]:
            issues.append(
                {
                    "kind": "out_of_band",
                    "village": frame["vill_code"].iloc[i],
                    "grid": frame["grid_code"].iloc[i],
                    "detail": f"load {load[i]:.0f} is {frame['dev_pct'].iloc[i]:+.1f} % "
                    f"from the target {frame['target'].iloc[i]:.0f}"
                    + _why(
                        units, grid_village[i], unit_grid == i, frame["target"].iloc[i], tolerance
                    ),
                }
            )
    columns = [
        "grid_code",
        "vill_code",
        "seq",
        "households",
        "people",
        "load",
        "target",
        "dev_pct",
        "in_band",
        "locked",
        "geometry",
    ]
    grids = frame[columns].sort_values("grid_code").reset_index(drop=True)
    return Plan(
        grids=grids,
        issues=_issues(issues),
        by=by,
        tolerance=tolerance,
        seconds=time.perf_counter() - started,
    )


def draw_grids(
    villages: gpd.GeoDataFrame,
    households: gpd.GeoDataFrame,
    *,
    lines: gpd.GeoDataFrame | None = None,
    target: float | None = None,
    by: By = "people",
    tolerance: float = 0.1,
    n_grids: int | Mapping[str, int] | None = None,
    locked: gpd.GeoDataFrame | None = None,
    seed: int = 0,
    village_id: str = "vill_code",
    people: str = "people",
    on_infeasible: Literal["raise", "report"] = "raise",
    blocks_per_grid: int = BLOCKS_PER_GRID,
) -> Plan:
    """Draw grids: inside villages, balanced, compact, following natural lines.

    Parameters
    ----------
    villages
        Village polygons (a clean coverage) with a CRS and a 12-digit code in ``village_id``.
    households
        Household points with a CRS; ``people`` holds people per household.
    lines
        Natural lines (see :func:`natural_lines`): a ``barrier`` column (or ``kind``) says
        which must not be straddled (rivers, streams, ridges); the others (roads) are guides.
    target
        Load per grid (people or households, see ``by``). Without it, ``n_grids`` sets the
        counts and each village's target is its load divided by its grids.
    by
        Balance ``"people"`` or ``"households"``.
    tolerance
        Half-width of the band around the target (0.1 = ±10 %).
    n_grids
        Total grids (shared out by load) or a mapping village code -> grids. By default the
        count per village is the one nearest ``load / target`` whose grids fit the band.
    locked
        Existing grids (with ``grid_code``) kept exactly; the rest of their village is redrawn.
    seed
        Seed of the block sampling and METIS.
    village_id, people
        Column names.
    on_infeasible
        ``"raise"``: an :class:`InfeasibleError` when a village cannot meet the band;
        ``"report"``: draw anyway and list the failures in :attr:`Plan.issues`.
    blocks_per_grid
        Granularity of the building blocks.

    Returns
    -------
    Plan

    Raises
    ------
    DistrictingError
        Villages overlapping or with gaps, households outside every village, bad columns.
    InfeasibleError
        The band cannot be met (``on_infeasible="raise"``); ``.report`` lists the villages.

    Examples
    --------
    >>> plan = draw_grids(villages, households, lines=lines, target=600)  # doctest: +SKIP
    >>> plan.grids[["grid_code", "people", "dev_pct"]].head(2)  # doctest: +SKIP
    """
    started = time.perf_counter()
    inputs = prepare(villages, households, lines=lines, village_id=village_id, people=people, by=by)
    weights = inputs.weights(by)
    kept_geoms, kept_codes = _locked(locked, inputs.store_crs)
    nv = len(inputs.village_ids)
    loads = np.bincount(inputs.point_village, weights=weights, minlength=nv).astype(float)
    kept_village = np.full(len(kept_geoms), -1, dtype=np.intp)
    if len(kept_geoms):
        pts, hit = shapely.STRtree(inputs.outlines).query(
            shapely.point_on_surface(kept_geoms), predicate="within"
        )
        kept_village[pts] = hit
    counts, targets, problems = village_counts(
        loads, inputs.village_ids, target=target, tolerance=tolerance, n_grids=n_grids
    )
    if problems and on_infeasible == "raise":
        report = _issues(problems)
        msg = f"the band cannot be met in {len(problems)} village(s): " + "; ".join(
            str(d) for d in report["detail"][:3]
        )
        raise InfeasibleError(msg, report)
    blocks = np.maximum(counts * blocks_per_grid, 8)
    units = build_units(
        inputs.villages,
        inputs.xy,
        inputs.people,
        weights,
        point_village=inputs.point_village,
        blocks=blocks,
        guides=inputs.guides,
        barriers=inputs.barriers,
        cuts=kept_geoms,
        seed=seed,
        outlines=inputs.outlines,
        to_store=inputs.to_store,
        to_metres=inputs.to_metres,
    )
    unit_grid = np.full(units.n, -1, dtype=np.intp)
    grid_village: list[int] = []
    kept: dict[int, str] = {}
    for j in range(len(kept_geoms)):
        unit_grid[units.cut == j] = len(grid_village)
        kept[len(grid_village)] = kept_codes[j]
        grid_village.append(
            int(units.village[units.cut == j][0])
            if (units.cut == j).any()
            else int(kept_village[j])
        )
    for i in range(nv):
        members = np.flatnonzero((units.village == i) & (units.cut < 0))
        if not members.size:
            continue
        k = int(counts[i]) - int((kept_village == i).sum())
        if k < 1:
            msg = f"village {inputs.village_ids[i]}: every grid is locked but land is left over"
            raise DistrictingError(msg)
        local = np.full(units.n, -1, dtype=np.intp)
        local[members] = np.arange(members.size)
        e = units.edges
        inside = (local[e["a"].to_numpy()] >= 0) & (local[e["b"].to_numpy()] >= 0)
        sub = e[inside].assign(a=local[e["a"][inside]], b=local[e["b"][inside]])
        t = float(targets[i])
        part = partition_village(
            units.load[members],
            sub,
            k,
            target=t,
            low=t * (1 - tolerance),
            high=t * (1 + tolerance),
            seed=seed,
        )
        unit_grid[members] = part + len(grid_village)
        grid_village.extend([i] * (int(part.max()) + 1))
    return assemble(
        inputs,
        units,
        unit_grid,
        np.asarray(grid_village, dtype=np.intp),
        targets,
        by=by,
        tolerance=tolerance,
        kept_codes=kept,
        issues=problems,
        started=started,
    )
