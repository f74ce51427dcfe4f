"""Checking a plan against its villages before it is written."""

from __future__ import annotations

from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import shapely
from pyproj import Transformer

from gis_grid.codes import split_grid_code
from gis_grid.crs import CGCS2000, require_crs
from gis_grid.districting import Plan
from gis_grid.errors import GridError, RuleError
from gis_grid.measure import measure_crs

if TYPE_CHECKING:
    from pyproj import CRS

__all__ = ["COVERAGE_TOLERANCE_M", "PlanError", "check_plan", "plan_frame"]

#: Width (metres) of a gap, overlap or overhang a plan may have along its villages' outlines.
#: Same allowance as the loader's "grid inside its village" check (``gis_grid.load``), for
#: hand-made plans (digitised, re-projected). Drawn grids need none: they are built from the
#: villages' stored coordinates and tile them exactly (``gis_grid.districting``).
COVERAGE_TOLERANCE_M = 1.0

#: Problems listed in one error message (the rest are counted).
_SHOWN = 5


class PlanError(RuleError):
    """A grid plan cannot be written: invalid grids, gaps, overlaps, wrong codes or villages.

    Also bad drawing parameters (:func:`~gis_grid.plans.propose_plan`); ``problems`` names
    the field. A :class:`~gis_grid.errors.RuleError`: the service answers 422.
    """


def _lonlat(crs: CRS, geoms: np.ndarray) -> list[tuple[float, float]]:
    points = shapely.point_on_surface(geoms)
    to_lonlat = Transformer.from_crs(crs, CGCS2000, always_xy=True)
    lon, lat = to_lonlat.transform(shapely.get_x(points), shapely.get_y(points))
    return list(zip(np.atleast_1d(lon).tolist(), np.atleast_1d(lat).tolist(), strict=True))


def _wide(pieces: shapely.Geometry, width: float) -> np.ndarray:
    """Polygonal parts of ``pieces`` containing a disc of diameter ``width`` (not slivers)."""
    parts = shapely.get_parts(pieces)
    parts = parts[np.isin(shapely.get_type_id(parts), (3, 6))]
    return parts[~shapely.is_empty(shapely.buffer(parts, -width / 2))]


def plan_frame(grids: Plan | gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Normalise a plan: ``grid_code``, ``vill_code``, ``seq``, optional ``name``; EPSG:4490.

    Parameters
    ----------
    grids
        A :class:`~gis_grid.districting.Plan` or polygons with a CRS and ``grid_code`` (or
        ``code``); the village is the code's first 12 digits.

    Returns
    -------
    geopandas.GeoDataFrame

    Raises
    ------
    PlanError
        No code column, malformed or duplicate codes, a village column disagreeing with the
        codes.
    """
    frame = grids.grids if isinstance(grids, Plan) else grids
    require_crs(frame.crs, source="plan")
    column = "grid_code" if "grid_code" in frame.columns else "code"
    if column not in frame.columns:
        msg = "plan: the grids need a 'grid_code' column (15-digit standard codes)"
        raise PlanError(msg)
    codes = frame[column].astype(str)
    try:
        parts = [split_grid_code(code) for code in codes]
    except GridError as exc:
        raise PlanError(f"plan: {exc}") from exc
    duplicated = codes[codes.duplicated()].unique().tolist()
    if duplicated:
        msg = f"plan: grid code(s) {duplicated[:_SHOWN]} appear more than once"
        raise PlanError(msg)
    out = gpd.GeoDataFrame(
        {
            "grid_code": codes.to_numpy(),
            "vill_code": [village for village, _ in parts],
            "seq": [seq for _, seq in parts],
        },
        geometry=frame.geometry.to_crs(CGCS2000).to_numpy(),
        crs=CGCS2000,
    )
    given = next((c for c in ("vill_code", "village_code") if c in frame.columns), None)
    if given is not None:
        wrong = out["vill_code"].to_numpy() != frame[given].astype(str).to_numpy()
        if wrong.any():
            first = int(np.flatnonzero(wrong)[0])
            msg = (
                f"plan: grid {out['grid_code'].iloc[first]} is coded for village "
                f"{out['vill_code'].iloc[first]} but its {given} is {frame[given].iloc[first]}"
            )
            raise PlanError(msg)
    if "name" in frame.columns:
        out["name"] = frame["name"].to_numpy()
    return out


def check_plan(
    grids: Plan | gpd.GeoDataFrame,
    villages: gpd.GeoDataFrame,
    *,
    tolerance_m: float = COVERAGE_TOLERANCE_M,
    village_id: str = "vill_code",
) -> gpd.GeoDataFrame:
    """Check that a plan tiles exactly the given villages; return it normalised.

    Every grid must be a valid, non-empty polygon of one of ``villages``; each village must
    have grids, and within it the grids may neither leave a gap, overlap, nor reach outside
    it by a piece wider than ``tolerance_m`` (slivers narrower than that are outline noise).

    Parameters
    ----------
    grids
        A :class:`~gis_grid.districting.Plan` or grid polygons (see :func:`plan_frame`).
    villages
        The villages the plan replaces the grids of, with a CRS and codes in ``village_id``.
    tolerance_m
        Widest sliver tolerated along the outlines (metres).
    village_id
        Column of the village codes.

    Returns
    -------
    geopandas.GeoDataFrame
        ``grid_code``, ``vill_code``, ``seq`` (and ``name`` if given), EPSG:4490.

    Raises
    ------
    PlanError
        Listing each problem: the village, the grid, what is wrong and where (lon/lat).

    Examples
    --------
    >>> checked = check_plan(plan, villages)  # doctest: +SKIP
    """
    frame = plan_frame(grids)
    require_crs(villages.crs, source="villages")
    crs = measure_crs(villages)
    ids = villages[village_id].astype(str).to_numpy()
    vgeoms = np.asarray(villages.geometry.to_crs(crs).array, dtype=object)
    geoms = np.asarray(frame.geometry.to_crs(crs).array, dtype=object)
    problems: list[str] = []
    outside = sorted(set(frame["vill_code"]) - set(ids))
    if outside:
        problems.append(f"grids of villages {outside[:_SHOWN]} that this plan does not replace")
    missing = sorted(set(ids) - set(frame["vill_code"]))
    if missing:
        problems.append(f"villages {missing[:_SHOWN]} have no grid in the plan")
    types = shapely.get_type_id(geoms)
    bad = np.flatnonzero(~np.isin(types, (3, 6)) | shapely.is_empty(geoms))
    problems += [f"grid {frame['grid_code'].iloc[i]} is empty or not a polygon" for i in bad]
    invalid = np.flatnonzero(~shapely.is_valid(geoms) & np.isin(types, (3, 6)))
    for i in invalid:
        reason = shapely.is_valid_reason(frame.geometry.iloc[i])
        problems.append(f"grid {frame['grid_code'].iloc[i]} is invalid: {reason}")
    if problems:
        raise PlanError(_message(problems), problems=_rows(problems))
    for village, vgeom in zip(ids, vgeoms, strict=True):
        rows = np.flatnonzero(frame["vill_code"].to_numpy() == village)
        mine = geoms[rows]
        covered = shapely.union_all(mine)
        for label, pieces in (
            ("a gap covered by no grid", shapely.difference(vgeom, covered)),
            ("grid land outside the village", shapely.difference(covered, vgeom)),
        ):
            wide = _wide(pieces, tolerance_m)
            problems += [
                f"village {village}: {label}, {shapely.area(p):.1f} m², near ({lon:.6f}, {lat:.6f})"
                for p, (lon, lat) in zip(wide, _lonlat(crs, wide), strict=True)
            ]
        a, b = shapely.STRtree(mine).query(mine, predicate="intersects")
        for i, j in zip(a[a < b], b[a < b], strict=True):
            wide = _wide(shapely.intersection(mine[i], mine[j]), tolerance_m)
            codes = frame["grid_code"].to_numpy()[rows]
            problems += [
                f"village {village}: grids {codes[i]} and {codes[j]} overlap, "
                f"{shapely.area(p):.1f} m², near ({lon:.6f}, {lat:.6f})"
                for p, (lon, lat) in zip(wide, _lonlat(crs, wide), strict=True)
            ]
    if problems:
        raise PlanError(_message(problems, tolerance_m), problems=_rows(problems))
    return frame


def _rows(problems: list[str]) -> list[dict[str, object]]:
    """Each problem for the service's ``problems`` (the geometry of the plan is at fault)."""
    return [{"rule": "tiling", "field": "geometry", "detail": text} for text in problems]


def _message(problems: list[str], tolerance_m: float | None = None) -> str:
    more = f"; and {len(problems) - _SHOWN} more" if len(problems) > _SHOWN else ""
    width = "" if tolerance_m is None else f" (pieces wider than {tolerance_m:g} m)"
    return (
        f"the plan cannot be written{width}: " + "; ".join(problems[:_SHOWN]) + more + ". "
        "Nothing was written; redraw, or fix the grids (they must tile their villages)."
    )
