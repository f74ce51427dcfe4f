"""Load balance of grids and grid members (一格一员, 就地就近: article 5).

For every grid: households, people, area, pollution points, hazards and open incidents; for
every member the load of the grid they serve and the distance from their home to it. The
spread across grids is summarised three ways (maximum deviation from the mean in %, coefficient
of variation, Gini). Grids whose load per member falls outside the planner's band (e.g.
200-300 households per member) are flagged, and so are the breaches of article 5: a grid with
no member or several, a member whose grid does not exist, a member living far from the grid.

Points (households, pollution points, hazards, incidents) are taken as already assigned when
they carry a ``grid_code`` column (``grid_field``); otherwise each point is assigned to the
grid that covers it by :func:`gis_grid.assign.assign_points` (a point on a shared border goes
to the grid with the smallest code), with one grid index built per report.

Examples
--------
>>> import geopandas as gpd, shapely
>>> x, y = 500_000, 3_400_000
>>> grids = gpd.GeoDataFrame({"code": ["A", "B"]}, crs=4545, geometry=[
...     shapely.box(x, y, x + 1000, y + 1000), shapely.box(x + 1000, y, x + 2000, y + 1000)])
>>> households = gpd.GeoDataFrame({"people": [3, 2, 4]}, crs=4545, geometry=[
...     shapely.Point(x + 10, y + 10), shapely.Point(x + 20, y + 20), shapely.Point(x + 1500, y)])
>>> report = balance_report(grids.to_crs(4490), households=households, band=(1, 1))
>>> report.grids["households"].tolist(), report.grids["people"].tolist()
([2, 1], [5, 4])
>>> round(float(report.spread.loc["households", "max_dev_pct"]), 2)
33.33
>>> report.issues["kind"].tolist()
['above_band']
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gis_grid.adjacency import grid_geometries
from gis_grid.crs import require_crs
from gis_grid.errors import DataFileError

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray
    from pyproj import CRS

    from gis_grid.assign import GridIndex

__all__ = [
    "CLOSED_STATUSES",
    "METRICS",
    "BalanceReport",
    "assign_to_grids",
    "balance_report",
    "spread",
]

#: Per-grid quantities of the report, in column order.
METRICS = ("households", "people", "area_km2", "pollution", "hazards", "open_incidents")
#: Incident steps after which an incident is no longer open (核查结案, 评价).
CLOSED_STATUSES = ("closed", "evaluated")
_ISSUE_COLUMNS = ("kind", "grid", "member", "detail")


@dataclass(frozen=True)
class BalanceReport:
    """Loads per grid and per member, their spread, and what breaks the rules.

    Attributes
    ----------
    grids
        Indexed by grid id: the :data:`METRICS`, ``members`` (count), ``member_ids``
        (comma-separated), ``per_member`` (the ``by`` load divided by the number of members,
        or the whole load for a grid without member) and ``band`` (``"below"``, ``"within"``,
        ``"above"``; empty without a band).
    members
        Indexed by member id (``None`` without members): ``grid``, each metric as the member's
        share of their grid (the grid's load divided by its members), ``home_m`` (distance from
        home to the grid, 0 inside) and ``home_inside``.
    spread
        Indexed by metric: ``mean``, ``min``, ``max``, ``max_dev_pct``, ``cv``, ``gini``
        across grids (see :func:`spread`).
    issues
        One row per problem: ``kind`` (``no_member``, ``several_members``, ``unknown_grid``,
        ``no_home``, ``home_far``, ``below_band``, ``above_band``, ``unassigned``), ``grid``,
        ``member`` and a ``detail`` sentence.
    by
        The load the band applies to (``"households"`` or ``"people"``).
    band
        ``(low, high)`` load per member, or ``None``.
    """

    grids: pd.DataFrame
    members: pd.DataFrame | None
    spread: pd.DataFrame
    issues: pd.DataFrame
    by: str
    band: tuple[float, float] | None

    @property
    def ok(self) -> bool:
        """True when no issue was found."""
        return self.issues.empty


def spread(values: ArrayLike) -> dict[str, float]:
    """Mean, min, max and three spread measures of loads.

    Parameters
    ----------
    values
        Loads (one per grid or member); NaN values are ignored.

    Returns
    -------
    dict
        ``mean``, ``min``, ``max``; ``max_dev_pct`` = max |x - mean| / mean x 100;
        ``cv`` = population standard deviation / mean; ``gini`` = sum |xi - xj| / (2 n^2 mean).
        The relative measures are NaN when the mean is 0 or there are no values.

    Examples
    --------
    >>> {k: round(v, 4) for k, v in spread([100, 200, 300]).items()}
    {'mean': 200.0, 'min': 100.0, 'max': 300.0, 'max_dev_pct': 50.0, 'cv': 0.4082, 'gini': 0.2222}
    """
    x = np.sort(np.asarray(values, dtype=float).ravel())
    x = x[~np.isnan(x)]
    if x.size == 0:
        return dict.fromkeys(("mean", "min", "max", "max_dev_pct", "cv", "gini"), np.nan)
    mean = float(x.mean())
    out = {"mean": mean, "min": float(x[0]), "max": float(x[-1])}
    if mean == 0:
        return out | {"max_dev_pct": np.nan, "cv": np.nan, "gini": np.nan}
    rank = np.arange(1, x.size + 1)
    return out | {
        "max_dev_pct": float(np.abs(x - mean).max() / mean * 100),
        "cv": float(x.std() / mean),
        "gini": float(((2 * rank - x.size - 1) * x).sum() / (x.size * x.sum())),
    }


def assign_to_grids(
    points: gpd.GeoDataFrame,
    grids: gpd.GeoDataFrame,
    *,
    id_field: str = "code",
    grid_field: str = "grid_code",
    name: str = "points",
    index: GridIndex | None = None,
) -> pd.Series:
    """Grid id of every point: its ``grid_field`` when present, else the grid covering it.

    Parameters
    ----------
    points
        Points with a CRS (any), or a table with a ``grid_field`` column.
    grids
        Grid polygons with a CRS and ``id_field``.
    id_field
        Grid id column of ``grids``.
    grid_field
        Column of ``points`` holding the grid id, used as given when present.
    name
        Layer name for error messages.
    index
        A :class:`gis_grid.assign.GridIndex` of these grids, to reuse across layers.

    Returns
    -------
    pandas.Series
        On the index of ``points``; missing (``None``) where no grid covers the point. Points
        are located by :func:`gis_grid.assign.assign_points` (a point on a shared border goes
        to the grid with the smallest code).

    Raises
    ------
    CRSError
        ``points`` must be located but has no CRS.
    """
    if grid_field in points.columns:
        return points[grid_field].astype(object).where(points[grid_field].notna(), None)
    from gis_grid.assign import assign_points

    require_crs(getattr(points, "crs", None), source=name)
    located = points.to_crs(grids.crs)  # converted here: assign_points would warn
    result = assign_points(located, grids, grid_id=id_field, index=index)
    codes = result.grid.astype(object)
    return codes.where(codes.notna(), None).rename("grid")


def _issue(kind: str, grid: object, member: object, detail: str) -> dict[str, object]:
    return {"kind": kind, "grid": grid, "member": member, "detail": detail}


def _count_points(
    layer: gpd.GeoDataFrame | None,
    name: str,
    grids: gpd.GeoDataFrame,
    ids: pd.Index,
    *,
    id_field: str,
    grid_field: str,
    weights: tuple[str, ...] = (),
    keep: NDArray[np.bool_] | None = None,
    index: GridIndex | None = None,
) -> tuple[pd.DataFrame, list[dict[str, object]]]:
    """Count the points of ``layer`` per grid (and sum ``weights`` columns); note strays."""
    columns = ["count", *weights]
    if layer is None:
        return pd.DataFrame(np.nan, index=ids, columns=columns), []
    codes = assign_to_grids(
        layer, grids, id_field=id_field, grid_field=grid_field, name=name, index=index
    )
    mask = codes.isin(ids).to_numpy().copy()
    issues = []
    if (~mask).any():
        rows = np.flatnonzero(~mask)
        detail = f"{name}: {rows.size} feature(s) in no known grid, e.g. row {rows[0] + 1}"
        issues.append(_issue("unassigned", None, None, detail))
    if keep is not None:
        mask &= keep
    values = pd.DataFrame({"count": 1}, index=layer.index)
    for column in weights:
        values[column] = layer[column].to_numpy()
    sums = values[mask].groupby(codes.to_numpy()[mask]).sum()
    return sums.reindex(ids, fill_value=0), issues


def _grid_loads(
    grids: gpd.GeoDataFrame,
    ids: pd.Index,
    geoms: NDArray[np.object_],
    layers: dict[str, gpd.GeoDataFrame | None],
    *,
    id_field: str,
    grid_field: str,
    people_field: str,
    open_mask: NDArray[np.bool_] | None,
) -> tuple[pd.DataFrame, list[dict[str, object]]]:
    """Compute the :data:`METRICS` of every grid; note the points that fell in no grid."""
    households = layers["households"]
    assert households is not None  # always given by balance_report
    people = (people_field,) if people_field in households.columns else ()
    index = None
    if any(layer is not None and grid_field not in layer.columns for layer in layers.values()):
        from gis_grid.assign import build_grid_index

        index = build_grid_index(grids, grid_id=id_field)  # once for every layer
    table = pd.DataFrame(index=pd.Index(ids, name="grid"))
    counted, issues = _count_points(
        households,
        "households",
        grids,
        ids,
        id_field=id_field,
        grid_field=grid_field,
        weights=people,
        index=index,
    )
    table["households"] = counted["count"]
    table["people"] = counted[people_field] if people else np.nan
    table["area_km2"] = shapely.area(geoms) / 1e6
    for name, column in (
        ("pollution", "pollution"),
        ("hazards", "hazards"),
        ("incidents", "open_incidents"),
    ):
        counted, found = _count_points(
            layers[name],
            name,
            grids,
            ids,
            id_field=id_field,
            grid_field=grid_field,
            keep=open_mask if name == "incidents" else None,
            index=index,
        )
        table[column] = counted["count"]
        issues += found
    return table, issues


def _member_table(
    members: gpd.GeoDataFrame,
    geoms: NDArray[np.object_],
    ids: pd.Index,
    crs: CRS,
    *,
    member_field: str,
    grid_field: str,
) -> tuple[pd.DataFrame, list[dict[str, object]]]:
    for field in (member_field, grid_field):
        if field not in members.columns:
            msg = f"members: no field {field!r}; the fields are {list(members.columns)}"
            raise DataFileError(msg)
    require_crs(members.crs, source="members")
    grid = members[grid_field].to_numpy(dtype=object)
    pos = ids.get_indexer(grid)
    homes = np.asarray(members.geometry.to_crs(crs).array, dtype=object)
    target = geoms[np.maximum(pos, 0)].copy()
    target[pos < 0] = None
    home_m = np.asarray(shapely.distance(homes, target), dtype=float)
    table = pd.DataFrame(
        {"grid": grid, "home_m": home_m, "home_inside": home_m == 0},
        index=pd.Index(members[member_field].to_numpy(dtype=object), name="member"),
    )
    issues = []
    for member, code in table.index[pos < 0].to_series().items():
        detail = f"member {member} serves grid {grid[table.index.get_loc(member)]!r}, not a grid"
        issues.append(_issue("unknown_grid", code, member, detail))
    for member, code in table.loc[(pos >= 0) & np.isnan(home_m), "grid"].items():
        issues.append(_issue("no_home", code, member, "home not located"))
    return table, issues


def _staffing_issues(table: pd.DataFrame) -> list[dict[str, object]]:
    """Grids breaking 一格一员 (article 5): no member, or several."""
    issues = []
    for grid, row in table[table["members"] != 1].iterrows():
        if row["members"] == 0:
            issues.append(_issue("no_member", grid, None, "grid has no member (一格一员)"))
        else:
            detail = f"{row['members']} members ({row['member_ids']}); article 5 asks for one"
            issues.append(_issue("several_members", grid, None, detail))
    return issues


def _band_issues(
    table: pd.DataFrame, band: tuple[float, float] | None, by: str
) -> list[dict[str, object]]:
    """Fill ``table["band"]`` and flag the grids whose load per member is outside ``band``."""
    table["band"] = ""
    if band is None:
        return []
    low, high = band
    per_member = table["per_member"]
    table["band"] = np.select([per_member < low, per_member > high], ["below", "above"], "within")
    issues = []
    for grid, row in table[table["band"] != "within"].iterrows():
        detail = f"{row['per_member']:g} {by} per member, outside the band {low:g}-{high:g}"
        issues.append(_issue(f"{row['band']}_band", grid, None, detail))
    return issues


def balance_report(
    grids: gpd.GeoDataFrame,
    *,
    households: gpd.GeoDataFrame,
    members: gpd.GeoDataFrame | None = None,
    pollution: gpd.GeoDataFrame | None = None,
    hazards: gpd.GeoDataFrame | None = None,
    incidents: gpd.GeoDataFrame | None = None,
    band: tuple[float, float] | None = None,
    by: Literal["households", "people"] = "households",
    id_field: str = "code",
    grid_field: str = "grid_code",
    people_field: str = "people",
    member_field: str = "member_id",
    status_field: str = "status",
    closed_statuses: tuple[str, ...] = CLOSED_STATUSES,
    home_limit_m: float | None = None,
) -> BalanceReport:
    """Report the load of every grid and member, its spread, and the rule breaches.

    Parameters
    ----------
    grids
        Grid polygons with a CRS and a unique ``id_field``.
    households
        Household points, with a ``people_field`` count (needed for ``by="people"``).
    members
        Member homes (points) with ``member_field`` and ``grid_field`` (the grid they serve).
    pollution, hazards, incidents
        Points to count per grid. Incidents count while open: a ``status_field`` not in
        ``closed_statuses`` (without that column every incident counts).
    band
        ``(low, high)`` load per member in ``by`` units, e.g. ``(200, 300)`` households.
    by
        ``"households"`` or ``"people"``: the load the band applies to.
    id_field
        Grid id column of ``grids``.
    grid_field
        Column giving a point's or member's grid; points without it are located.
    people_field, member_field, status_field, closed_statuses
        Field names and the incident steps that count as closed.
    home_limit_m
        Flag members living farther than this from their grid (就地就近).

    Returns
    -------
    BalanceReport

    Raises
    ------
    CRSError
        An input to be located or measured has no CRS.
    DataFileError, DuplicateCodeError, GeometryError
        Missing fields, duplicated grid ids, grids without polygons.

    Examples
    --------
    See the module docstring.
    """
    if by not in ("households", "people"):
        msg = f"by must be 'households' or 'people', not {by!r}"
        raise ValueError(msg)
    if by == "people" and people_field not in households.columns:
        msg = f"households: no field {people_field!r} to balance people by"
        raise DataFileError(msg)
    ids, geoms, crs = grid_geometries(grids, id_field=id_field)
    open_mask = None
    if incidents is not None and status_field in incidents.columns:
        open_mask = ~incidents[status_field].isin(closed_statuses).to_numpy()
    layers = {
        "households": households,
        "pollution": pollution,
        "hazards": hazards,
        "incidents": incidents,
    }
    table, issues = _grid_loads(
        grids,
        ids,
        geoms,
        layers,
        id_field=id_field,
        grid_field=grid_field,
        people_field=people_field,
        open_mask=open_mask,
    )

    member_table = None
    if members is None:
        table["members"] = 1  # one member per grid assumed
        table["member_ids"] = ""
    else:
        member_table, found = _member_table(
            members, geoms, ids, crs, member_field=member_field, grid_field=grid_field
        )
        issues += found
        served = member_table[member_table["grid"].isin(ids)]
        table["members"] = served.groupby("grid").size().reindex(ids, fill_value=0)
        names = served.reset_index().groupby("grid")["member"].agg(lambda s: ",".join(map(str, s)))
        table["member_ids"] = names.reindex(ids, fill_value="")
        issues += _staffing_issues(table)
        share = table[list(METRICS)].div(table["members"].clip(lower=1), axis=0)
        member_table = member_table.join(share, on="grid")
        if home_limit_m is not None:
            far = member_table[member_table["home_m"] > home_limit_m]
            for member, row in far.iterrows():
                detail = f"home {row['home_m']:.0f} m from grid, limit {home_limit_m:g} m"
                issues.append(_issue("home_far", row["grid"], member, detail))
    table["per_member"] = table[by] / table["members"].clip(lower=1)
    issues += _band_issues(table, band, by)

    summary = pd.DataFrame({metric: spread(table[metric]) for metric in METRICS}).T
    return BalanceReport(
        grids=table,
        members=member_table,
        spread=summary,
        issues=pd.DataFrame(issues, columns=list(_ISSUE_COLUMNS)),
        by=by,
        band=None if band is None else (float(band[0]), float(band[1])),
    )
