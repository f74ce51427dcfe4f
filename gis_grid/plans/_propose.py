"""Proposals drawn from the database for one village or one town, and their application.

:func:`propose_plan` reads the town (:func:`~gis_grid.db.read.read_town`, inside the caller's
transaction), checks the drawing parameters against it (each refusal names its field), draws
with :func:`~gis_grid.plans.draw_town`'s machinery and measures the plan; nothing is written.
:func:`apply_proposal` writes a proposal (drawn, or features sent back by a client: see
:func:`plan_from_features`) as one new grid version through
:func:`gis_grid.db.plans.apply_plan`, recording who applied it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import shapely
import shapely.errors
import shapely.geometry

from gis_grid.codes import split_grid_code
from gis_grid.crs import CGCS2000
from gis_grid.districting import draw_grids, plan_quality, propose_counts
from gis_grid.errors import GridError, NotFoundError
from gis_grid.plans._check import PlanError
from gis_grid.plans._draw import DrawInputs, TownPlan, inputs_from_town

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from gis_grid.db.plans import AppliedPlan
    from gis_grid.districting._inputs import By

__all__ = [
    "PlanParameters",
    "apply_proposal",
    "plan_from_features",
    "propose_plan",
    "village_counts",
]

#: Natural lines followed when the planner asks to respect them (rivers, streams, roads).
_LINES = ("rivers", "streams", "roads")


@dataclass(frozen=True)
class PlanParameters:
    """What a planner asks for.

    Attributes
    ----------
    by
        ``"households"`` or ``"people"``.
    target
        Load per grid (> 0); may be left out for a village when ``n_grids`` is given.
    tolerance
        Half-width of the band around the target, strictly between 0 and 1.
    n_grids
        Grids of the village (village proposals only), 1 to its number of households.
    locked
        Current grid codes kept exactly; the rest is redrawn.
    natural_lines
        Follow rivers, streams and roads (and do not straddle rivers and streams).
    seed
        Seed of the drawing.
    """

    by: By = "households"
    target: float | None = None
    tolerance: float = 0.1
    n_grids: int | None = None
    locked: Sequence[str] = ()
    natural_lines: bool = True
    seed: int = 0

    def describe(self) -> str:
        """One line for the grids' ``source`` note."""
        what = f"target {self.target:g}" if self.target is not None else f"{self.n_grids} grids"
        return f"by {self.by}, {what}, ±{self.tolerance:.0%}" + (
            f", locked {', '.join(self.locked)}" if self.locked else ""
        )


def _refuse(field: str, message: str, value: object = None) -> PlanError:
    shown = value if not isinstance(value, float) or math.isfinite(value) else str(value)
    return PlanError(message, problems=[{"field": field, "value": shown, "detail": message}])


def _check_parameters(params: PlanParameters, *, village: str | None) -> None:
    if params.by not in ("households", "people"):
        raise _refuse("by", f"by={params.by!r}: choose 'households' or 'people'", params.by)
    tol = params.tolerance
    if not (math.isfinite(tol) and 0 < tol < 1):
        raise _refuse("tolerance", f"tolerance={tol} must lie strictly between 0 and 1", tol)
    if params.target is not None and not (math.isfinite(params.target) and params.target > 0):
        raise _refuse("target", f"target={params.target} must be a positive load per grid")
    if params.n_grids is not None and village is None:
        raise _refuse("n_grids", "n_grids is for a village's plan; a town's follows the target")
    if params.target is None and params.n_grids is None:
        raise _refuse("target", "give a target load per grid" + (" or n_grids" if village else ""))


def _village_inputs(inputs: DrawInputs, data: Any, village: str) -> DrawInputs:
    """Only ``village``: its outline, the households assigned to it, the lines near it."""
    villages = inputs.villages[inputs.villages["vill_code"] == village].reset_index(drop=True)
    homes = data.households
    households = homes[homes["village_code"] == village][["people", "geometry"]]
    lines = inputs.lines
    if len(lines):
        lines = lines[lines.intersects(villages.geometry.iloc[0].buffer(1e-3))]
    return replace(
        inputs,
        villages=villages,
        households=households.reset_index(drop=True),
        lines=lines.reset_index(drop=True),
        current={k: v for k, v in inputs.current.items() if k == village},
    )


def _locked(
    data: Any, locked: Sequence[str], *, town: str, village: str | None
) -> gpd.GeoDataFrame | None:
    if not locked:
        return None
    codes = [str(code) for code in locked]
    scope = village if village is not None else town
    current = data.grids
    known = set(current["code"].astype(str))
    wrong = [c for c in codes if not c.startswith(scope) or c not in known]
    if wrong:
        msg = (
            f"locked: {wrong[:5]} are not current grids of "
            f"{'village' if village else 'town'} {scope}; GET /api/v1/grids?"
            f"{'village' if village else 'town'}={scope} lists them"
        )
        raise _refuse("locked", msg, wrong)
    if len(set(codes)) != len(codes):
        raise _refuse("locked", "locked: a grid code is given twice", codes)
    kept = current[current["code"].astype(str).isin(codes)]
    return gpd.GeoDataFrame(
        {"grid_code": kept["code"].astype(str).to_numpy()},
        geometry=kept.geometry.to_numpy(),
        crs=CGCS2000,
    )


def propose_plan(
    conn: Connection,
    params: PlanParameters,
    *,
    village_code: str | None = None,
    town_code: str | None = None,
) -> TownPlan:
    """Draw a proposal for one village or a whole town from the database; write nothing.

    Parameters
    ----------
    conn
        Connection on the platform database (read inside the caller's transaction).
    params
        The planner's request (checked here: each refusal names its field).
    village_code, town_code
        Exactly one: the village (12 digits) or the town (9 digits) to redraw.

    Returns
    -------
    TownPlan
        The drawn plan (``plan.issues`` lists grids outside the band, if any) and its quality.

    Raises
    ------
    PlanError
        A bad parameter (``problems[0]["field"]`` names it): tolerance not in (0, 1), target
        not positive, ``n_grids`` below 1 or above the village's households, locked codes that
        are not current grids of the village or town.
    NotFoundError
        Unknown village or town.
    InfeasibleError
        The band cannot be met; ``problems`` has one row per village.

    Examples
    --------
    >>> drawn = propose_plan(conn, PlanParameters(target=200), village_code="511703109201")
    ... # doctest: +SKIP
    """
    from gis_grid.db.read import read_town

    if (village_code is None) == (town_code is None):
        msg = "propose_plan: give exactly one of village_code= or town_code="
        raise ValueError(msg)
    _check_parameters(params, village=village_code)
    town = town_code if town_code is not None else str(village_code)[:9]
    try:
        data = read_town(conn, town)
    except NotFoundError:
        if village_code is None:
            raise
        data = None
    if village_code is not None and (
        data is None or village_code not in set(data.villages["code"].astype(str))
    ):
        msg = f"village {village_code!r} not found; GET /api/v1/villages lists the villages"
        raise NotFoundError(msg, problems=[{"field": "code", "value": village_code}])
    assert data is not None
    inputs = inputs_from_town(data, lines=_LINES if params.natural_lines else ())
    if village_code is not None:
        inputs = _village_inputs(inputs, data, village_code)
    households = len(inputs.households)
    if params.n_grids is not None and not 1 <= params.n_grids <= max(households, 1):
        msg = (
            f"n_grids={params.n_grids}: village {village_code} has {households} households; "
            f"give 1 to {households} grids"
        )
        raise _refuse("n_grids", msg, params.n_grids)
    if households == 0:
        msg = f"{village_code or town}: no households to draw grids from"
        raise _refuse("code", msg, village_code or town)
    locked = _locked(data, params.locked, town=town, village=village_code)
    n_grids: int | Mapping[str, int] | None = None
    if params.n_grids is not None and village_code is not None:
        n_grids = {village_code: int(params.n_grids)}
    plan = draw_grids(
        inputs.villages,
        inputs.households,
        lines=inputs.lines,
        target=params.target,
        by=params.by,
        tolerance=params.tolerance,
        n_grids=n_grids,
        locked=locked,
        seed=params.seed,
    )
    quality = plan_quality(
        plan,
        villages=inputs.villages,
        households=inputs.households,
        lines=inputs.lines,
        tolerance=params.tolerance,
    )
    return TownPlan(inputs=inputs, plan=plan, quality=quality)


def plan_from_features(features: Sequence[Mapping[str, Any]], *, scope: str) -> gpd.GeoDataFrame:
    """Grid polygons from GeoJSON features (a proposal sent back), EPSG:4490.

    Parameters
    ----------
    features
        GeoJSON features whose ``properties`` hold ``grid_code`` (15 digits) and whose
        ``geometry`` is a Polygon or MultiPolygon in CGCS2000 lon/lat.
    scope
        The village (12 digits) or town (9 digits) every code must belong to.

    Returns
    -------
    geopandas.GeoDataFrame
        ``grid_code`` and geometry.

    Raises
    ------
    PlanError
        No features, a missing or malformed code, a code of another village or town, a
        duplicate code, a geometry that is not a valid non-empty polygon (the problem names
        ``features[i]``).
    """
    if not features:
        raise _refuse("features", "features: the plan has no grids", [])
    codes, geoms = [], []
    for i, feature in enumerate(features):
        field = f"features[{i}]"
        props = feature.get("properties") or {}
        code = str(props.get("grid_code", ""))
        try:
            split_grid_code(code)
        except GridError as exc:
            raise _refuse(f"{field}.properties.grid_code", f"{field}: {exc}", code) from exc
        if not code.startswith(scope):
            msg = f"{field}: grid {code} is not in {scope}"
            raise _refuse(f"{field}.properties.grid_code", msg, code)
        try:
            geom = shapely.geometry.shape(feature.get("geometry") or {})
        except (
            ValueError,
            TypeError,
            KeyError,
            AttributeError,
            IndexError,
            shapely.errors.ShapelyError,
        ) as exc:
            msg = f"{field}: the geometry cannot be read: {exc}"
            raise _refuse(f"{field}.geometry", msg) from exc
        if geom.geom_type not in ("Polygon", "MultiPolygon") or geom.is_empty:
            msg = f"{field}: grid {code} must be a non-empty Polygon, not {geom.geom_type}"
            raise _refuse(f"{field}.geometry", msg, geom.geom_type)
        coords = shapely.get_coordinates(geom)
        if not np.isfinite(coords).all():
            raise _refuse(f"{field}.geometry", f"{field}: coordinates must be finite numbers")
        if not geom.is_valid:
            msg = f"{field}: grid {code} is not a valid polygon: {shapely.is_valid_reason(geom)}"
            raise _refuse(f"{field}.geometry", msg)
        codes.append(code)
        geoms.append(geom)
    seen: set[str] = set()
    for i, code in enumerate(codes):
        if code in seen:
            msg = f"features[{i}]: grid code {code} appears twice"
            raise _refuse(f"features[{i}].properties.grid_code", msg, code)
        seen.add(code)
    return gpd.GeoDataFrame({"grid_code": codes}, geometry=geoms, crs=CGCS2000)


def apply_proposal(
    conn: Connection,
    grids: TownPlan | gpd.GeoDataFrame,
    *,
    actor: str,
    village_code: str | None = None,
    town_code: str | None = None,
    note: str | None = None,
) -> AppliedPlan:
    """Write a proposal as the new grid version of its village or town.

    Parameters
    ----------
    conn
        Connection in the caller's read-write transaction (the caller commits).
    grids
        A proposal from :func:`propose_plan` (refused if any grid misses the band) or grid
        polygons with ``grid_code`` (:func:`plan_from_features`).
    actor
        Who applies it: recorded in the grids' ``source`` (``drawn: by <actor>; ...``).
    village_code, town_code
        Exactly one: what the plan replaces; it must tile it.
    note
        Why (appended to the record).

    Returns
    -------
    gis_grid.db.plans.AppliedPlan

    Raises
    ------
    PlanError
        The proposal has grids outside the band, or does not tile the village/town (gap,
        overlap, overhang), or has invalid grids; nothing is written.
    """
    from gis_grid.db.plans import apply_plan

    record = f"by {actor}"
    if isinstance(grids, TownPlan):
        if not grids.plan.ok:
            issues = grids.plan.issues
            problems = [
                {"rule": "band", **{str(k): v for k, v in row.items()}}
                for row in issues.to_dict("records")
            ]
            msg = (
                f"the proposal has {len(issues)} problem(s) (e.g. {issues['detail'].iloc[0]}); "
                "nothing was written: change the target or tolerance, or edit the grids"
            )
            raise PlanError(msg, problems=problems)
        frame: gpd.GeoDataFrame = grids.plan.grids
    else:
        frame = grids
    text = f"{record}; {note}" if note else record
    return apply_plan(
        conn,
        frame,
        village_codes=None if village_code is None else [village_code],
        town_code=town_code,
        source="drawn",
        note=text,
    )


def village_counts(
    conn: Connection, village_code: str, *, band: tuple[float, float], by: By = "households"
) -> dict[str, Any]:
    """How many grids (and members) a village needs for a load band, from the database.

    Parameters
    ----------
    conn
        Connection on the platform database.
    village_code
        12-digit code.
    band
        ``(low, high)``: load per grid, ``0 < low <= high``, finite.
    by
        ``"households"`` or ``"people"``.

    Returns
    -------
    dict
        ``vill_code``, ``load``, ``n_min``, ``n_max``, ``grids``, ``members``, ``per_grid``,
        ``feasible``, ``detail`` (see :func:`~gis_grid.districting.propose_counts`).

    Raises
    ------
    PlanError
        A bad band (``problems`` names ``low`` or ``high``) or ``by``.
    NotFoundError
        Unknown village.
    """
    from gis_grid.db.read import read_town

    low, high = (float(b) for b in band)
    if by not in ("households", "people"):
        raise _refuse("by", f"by={by!r}: choose 'households' or 'people'", by)
    if not (math.isfinite(low) and low > 0):
        raise _refuse("low", f"low={low}: the floor must be a positive number", low)
    if not (math.isfinite(high) and high >= low):
        raise _refuse("high", f"high={high}: the ceiling must be a number >= low ({low})", high)
    try:
        data = read_town(conn, village_code[:9])
    except NotFoundError:
        data = None
    if data is None or village_code not in set(data.villages["code"].astype(str)):
        msg = f"village {village_code!r} not found; GET /api/v1/villages lists the villages"
        raise NotFoundError(msg, problems=[{"field": "code", "value": village_code}])
    inputs = _village_inputs(inputs_from_town(data, lines=()), data, village_code)
    table = propose_counts(inputs.villages, inputs.households, band=(low, high), by=by)
    row = {str(k): v for k, v in table.iloc[0].to_dict().items()}
    return {
        key: (value.item() if isinstance(value, np.generic) else value)
        for key, value in row.items()
    }
