"""Town reports: assignment check, load balance, adjacency and AB posts of one town.

:func:`town_report` is a short chain of small public functions, each usable on its own in a
notebook, on a :class:`~gis_grid.db.read.TownData` read by :func:`~gis_grid.db.read.read_town`:

1. :func:`check_assignment` locates every household, pollution point, hazard and incident again
   in memory (:func:`gis_grid.assign.assign_points`, same border rule as the loader: smallest
   code) and compares with the ``grid_code`` stored in the database: mismatches and points
   outside every grid (with the distance to the nearest grid) are listed.
2. :func:`town_balance` runs :func:`gis_grid.balance.balance_report` with the appointed
   members (一格一员, 就地就近: article 5), counting each point in the grid it *lies in* (step
   1), so a stale stored code never shifts the load.
3. :func:`town_adjacency` builds the grid adjacency with the town's rivers (optionally streams)
   as barriers (:func:`gis_grid.adjacency.build_adjacency`).
4. :func:`town_ab_posts` pairs adjacent grids into AB posts (article 11) weighted by load and
   the members' homes (:func:`gis_grid.backup.pair_ab_posts`).
5. :func:`town_absence` says who covers whom when members are absent
   (:func:`gis_grid.backup.plan_absence`), refusing with :class:`~gis_grid.backup.CoverError`.

Every part also renders as plain tables (:meth:`TownReport.tables`, DataFrames with a
RangeIndex) and JSON-ready dicts (:meth:`TownReport.to_dict`), which the command line prints
(:mod:`gis_grid.report`).

Examples
--------
>>> from gis_grid.db.read import read_town  # doctest: +SKIP
>>> report = town_report(read_town(engine, "511703129"), band=(150, 300))  # doctest: +SKIP
>>> report.summary("balance")["households"]  # doctest: +SKIP
8906
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from gis_grid.adjacency import Adjacency, build_adjacency
from gis_grid.assign import assign_points, build_grid_index
from gis_grid.backup import ABPlan, AbsencePlan, pair_ab_posts, plan_absence
from gis_grid.balance import CLOSED_STATUSES, BalanceReport, balance_report
from gis_grid.db.read import POINT_LAYERS
from gis_grid.errors import GridError, NotFoundError
from gis_grid.report import PARTS, AssignmentCheck, TownReport

if TYPE_CHECKING:
    from gis_grid.db.read import TownData

__all__ = [
    "BARRIER_SETS",
    "PARTS",
    "AssignmentCheck",
    "BandError",
    "TownReport",
    "absent_by_town",
    "check_assignment",
    "parse_band",
    "town_ab_posts",
    "town_absence",
    "town_adjacency",
    "town_balance",
    "town_report",
]

#: Named barrier choices (the command line's ``--barriers``) -> natural line kinds.
BARRIER_SETS: Mapping[str, tuple[str, ...]] = {
    "rivers": ("river",),
    "rivers+streams": ("river", "stream"),
    "none": (),
}


class BandError(GridError):
    """A load band that cannot be read, e.g. ``"300-150"`` or ``"lots"``."""


def _codes(values: pd.Series) -> pd.Series:
    """Codes as an object Series with ``None`` for missing (categorical, str or object in)."""
    out = values.astype(object)
    return out.where(values.notna().to_numpy(), None)


def check_assignment(data: TownData) -> AssignmentCheck:
    """Locate every point again in memory and compare with its stored grid code.

    Parameters
    ----------
    data
        A town read by :func:`~gis_grid.db.read.read_town`; its ``grids`` are the ones
        located against (current, or as of ``data.as_of``).

    Returns
    -------
    AssignmentCheck

    Raises
    ------
    NotFoundError
        The town has no grids (at ``as_of``).

    Examples
    --------
    >>> check = check_assignment(read_town(engine, "511703109"))  # doctest: +SKIP
    >>> check.ok, int(check.layers.loc["households", "agree"])  # doctest: +SKIP
    (True, 5208)
    """
    _require_grids(data)
    index = build_grid_index(data.grids, grid_id="code")  # once for the four layers
    layer_rows, mismatches, unassigned, located = [], [], [], {}
    for layer in POINT_LAYERS:
        frame = data.points(layer)
        result = assign_points(frame, data.grids, grid_id="code", index=index)
        here, stored = _codes(result.grid), _codes(frame["grid_code"])
        located[layer] = here
        inside = here.notna()
        differ = inside & (stored.fillna("") != here.fillna(""))
        far = result.unassigned
        layer_rows.append(
            {
                "layer": layer,
                "points": len(frame),
                "stored": int(stored.notna().sum()),
                "located": int(inside.sum()),
                "agree": int((inside & ~differ).sum()),
                "mismatched": int(differ.sum()),
                "unassigned": len(far),
                "max_distance_m": float(far["distance_m"].max()) if len(far) else 0.0,
            }
        )
        mismatches.append(
            pd.DataFrame(
                {"layer": layer, "id": frame.index[differ], "stored": stored[differ]},
            ).assign(located=here[differ].to_numpy())
        )
        unassigned.append(
            pd.DataFrame(
                {
                    "layer": layer,
                    "id": far.index,
                    "stored": stored.reindex(far.index).to_numpy(),
                    "distance_m": far["distance_m"].round(1).to_numpy(),
                    "nearest": far["nearest"].to_numpy(),
                }
            )
        )
    return AssignmentCheck(
        layers=pd.DataFrame(layer_rows).set_index("layer"),
        grids=_located_counts(data, located),
        mismatches=pd.concat(mismatches, ignore_index=True),
        unassigned=pd.concat(unassigned, ignore_index=True),
        located=located,
    )


def _require_grids(data: TownData) -> None:
    if data.grids.empty:
        when = "now" if data.as_of is None else f"as of {data.as_of.isoformat()}"
        msg = f"town {data.code} ({data.name}) has no grids {when}: draw or load grids first"
        raise NotFoundError(msg)


def _located_counts(data: TownData, located: Mapping[str, pd.Series]) -> pd.DataFrame:
    """Points per grid as located (households also summed as people)."""
    grids = data.grids.set_index("code")
    table = pd.DataFrame(
        {"village": grids["village_code"], "name": grids["name"]},
        index=pd.Index(grids.index, name="grid"),
    )

    def per_grid(codes: pd.Series, weights: pd.Series | None = None) -> pd.Series:
        values = pd.Series(1 if weights is None else weights.to_numpy(), index=codes.index)
        return values.groupby(codes.to_numpy()).sum().reindex(table.index, fill_value=0)

    table["households"] = per_grid(located["households"])
    table["people"] = per_grid(located["households"], data.households["people"])
    table["pollution"] = per_grid(located["pollution"])
    table["hazards"] = per_grid(located["hazards"])
    table["incidents"] = per_grid(located["incidents"])
    is_open = ~data.incidents["status"].isin(CLOSED_STATUSES)
    table["open_incidents"] = per_grid(located["incidents"][is_open.to_numpy()])
    return table.astype(dict.fromkeys(table.columns[2:], "int64"))


def town_balance(
    data: TownData,
    *,
    check: AssignmentCheck | None = None,
    band: tuple[float, float] | None = None,
    by: Literal["households", "people"] = "households",
    home_limit_m: float | None = None,
) -> BalanceReport:
    """Balance report of the town's grids and appointed members.

    Parameters
    ----------
    data
        The town.
    check
        Its :func:`check_assignment` (computed here if ``None``): points count in the grid
        they lie in.
    band, by, home_limit_m
        As :func:`gis_grid.balance.balance_report`: the load band per member (e.g.
        ``(150, 300)``), the load it applies to, and the farthest a member may live from
        their grid.

    Returns
    -------
    gis_grid.balance.BalanceReport
    """
    check = check if check is not None else check_assignment(data)
    layers = {
        layer: data.points(layer).assign(grid_code=check.located[layer]) for layer in POINT_LAYERS
    }
    return balance_report(
        data.grids,
        households=layers["households"],
        members=data.serving_members(),
        pollution=layers["pollution"],
        hazards=layers["hazards"],
        incidents=layers["incidents"],
        band=band,
        by=by,
        member_field="code",
        home_limit_m=home_limit_m,
    )


def town_adjacency(data: TownData, *, barriers: Sequence[str] = ("river",)) -> Adjacency:
    """Adjacency of the town's grids, with natural lines of the given kinds as barriers.

    Parameters
    ----------
    data
        The town.
    barriers
        Kinds of natural line (``"river"``, ``"stream"``, ...); ``()`` for none. The town's
        lines are those digitised for it or crossing it.

    Returns
    -------
    gis_grid.adjacency.Adjacency
    """
    _require_grids(data)
    lines = data.barriers(tuple(barriers))
    if lines is not None and lines.empty:
        lines = None  # no such line in this town: nothing to measure
    return build_adjacency(data.grids, id_field="code", barriers=lines)


def town_ab_posts(data: TownData, adjacency: Adjacency, *, balance: BalanceReport) -> ABPlan:
    """Pair the town's grids into AB posts, weighted by the balance's load and members' homes.

    Parameters
    ----------
    data
        The town.
    adjacency
        Its :func:`town_adjacency`.
    balance
        Its :func:`town_balance` (the ``by`` load is used).

    Returns
    -------
    gis_grid.backup.ABPlan
    """
    return pair_ab_posts(
        data.grids, adjacency, load=balance, members=data.serving_members(), member_field="code"
    )


def _check_absent(data: TownData, absent: Iterable[str]) -> list[str]:
    """Return the absent member codes; refuse any that is not an appointed member here."""
    codes = list(dict.fromkeys(str(code).strip() for code in absent if str(code).strip()))
    status = data.members.set_index("code")["status"]
    unknown = [code for code in codes if code not in status.index]
    if unknown:
        msg = (
            f"member(s) {', '.join(unknown)} not found in town {data.code} ({data.name}); "
            f"its members are coded like {status.index[0] if len(status) else '(none)'}"
        )
        raise NotFoundError(msg)
    idle = [f"{code} ({status[code]})" for code in codes if status[code] != "appointed"]
    if idle:
        msg = f"member(s) {', '.join(idle)} serve no grid (not appointed): nothing to cover"
        raise NotFoundError(msg)
    return codes


def town_absence(
    data: TownData, plan: ABPlan, absent: Iterable[str], *, max_extra: int = 1
) -> AbsencePlan:
    """Who covers the grids of the absent members (应急替补, article 11).

    Parameters
    ----------
    data
        The town.
    plan
        Its :func:`town_ab_posts`.
    absent
        Codes of the members absent today.
    max_extra
        Most grids a present member covers besides their own.

    Returns
    -------
    gis_grid.backup.AbsencePlan

    Raises
    ------
    NotFoundError
        A code that is not an appointed member of the town.
    gis_grid.backup.CoverError
        A grid nobody can cover, with the reason.
    """
    return plan_absence(plan, _check_absent(data, absent), max_extra=max_extra)


def town_report(
    data: TownData,
    *,
    band: tuple[float, float] | None = None,
    by: Literal["households", "people"] = "households",
    absent: Iterable[str] = (),
    barriers: Sequence[str] = ("river",),
    home_limit_m: float | None = None,
    max_extra: int = 1,
    parts: Collection[str] = PARTS,
) -> TownReport:
    """Check assignment, balance, adjacency, AB posts and (with ``absent``) the cover plan.

    Parameters
    ----------
    data
        A town read by :func:`~gis_grid.db.read.read_town`.
    band
        ``(low, high)`` load per member to flag grids outside of, in ``by`` units.
    by
        ``"households"`` or ``"people"``.
    absent
        Codes of absent members; the cover plan is made when there is one.
    barriers
        Natural line kinds used as adjacency barriers (:data:`BARRIER_SETS` names the usual
        choices).
    home_limit_m
        Flag members living farther than this from their grid.
    max_extra
        Most grids a present member covers besides their own.
    parts
        The parts to compute (:data:`PARTS`), besides those they need (AB posts need the
        balance and the adjacency) and the assignment check, always made. The others are
        ``None`` in the report. ``absent`` members always bring the cover plan.

    Returns
    -------
    TownReport

    Raises
    ------
    NotFoundError
        No grids, an absent code that is not an appointed member of the town, or an unknown
        part.
    gis_grid.backup.CoverError
        The absent members' grids cannot all be covered.

    Examples
    --------
    >>> report = town_report(read_town(engine, "511703109"), absent=["M511703109001001"])
    ... # doctest: +SKIP
    >>> report.absence.assignments["rule"].tolist()  # doctest: +SKIP
    ['ab_post']
    """
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        msg = f"unknown report part(s) {unknown}; use {', '.join(PARTS)}"
        raise NotFoundError(msg)
    absent = _check_absent(data, absent)
    lines = data.barriers(tuple(barriers))  # an unknown kind fails before any work
    need_plan = bool(absent) or not {"ab_posts", "absence"}.isdisjoint(parts)
    check = check_assignment(data)
    balance = adjacency = plan = absence = None
    if need_plan or "balance" in parts:
        balance = town_balance(data, check=check, band=band, by=by, home_limit_m=home_limit_m)
    if need_plan or "adjacency" in parts:
        adjacency = town_adjacency(data, barriers=barriers)
    if need_plan and balance is not None and adjacency is not None:
        plan = town_ab_posts(data, adjacency, balance=balance)
        if absent:
            absence = town_absence(data, plan, absent, max_extra=max_extra)
    return TownReport(
        code=data.code,
        name=data.name,
        as_of=data.as_of,
        assignment=check,
        balance=balance,
        adjacency=adjacency,
        ab_posts=plan,
        absence=absence,
        barriers=tuple(barriers),
        barrier_lines=0 if lines is None else len(lines),
    )


def absent_by_town(towns: Sequence[TownData], absent: Iterable[str]) -> dict[str, list[str]]:
    """Split absent member codes by the town they serve in (for a report on several towns).

    Parameters
    ----------
    towns
        The towns reported on.
    absent
        Member codes.

    Returns
    -------
    dict of str to list of str
        Town code -> its absent members (every town present, possibly with none).

    Raises
    ------
    NotFoundError
        A code that is a member of none of the towns.
    """
    codes = list(dict.fromkeys(str(code).strip() for code in absent if str(code).strip()))
    out: dict[str, list[str]] = {data.code: [] for data in towns}
    for data in towns:
        members = set(data.members["code"])
        out[data.code] = [code for code in codes if code in members]
    found = {code for town in out.values() for code in town}
    unknown = [code for code in codes if code not in found]
    if unknown:
        where = ", ".join(f"{data.code} ({data.name})" for data in towns)
        msg = f"member(s) {', '.join(unknown)} not found in the town(s) {where}"
        raise NotFoundError(msg)
    return out


def parse_band(text: str) -> tuple[float, float]:
    """Read a load band ``"LOW-HIGH"`` such as ``"150-300"`` (units of the ``by`` load).

    Parameters
    ----------
    text
        Two non-negative numbers joined by ``-`` (or ``:``, ``..``, ``~``), low first.

    Returns
    -------
    tuple of float

    Raises
    ------
    BandError
        Not two numbers, negative, or low above high.

    Examples
    --------
    >>> parse_band("150-300")
    (150.0, 300.0)
    """
    cleaned = text.strip().replace("..", "-").replace(":", "-").replace("~", "-")
    parts = [part.strip() for part in cleaned.split("-")]
    try:
        if len(parts) != 2:
            raise ValueError(text)  # one message below for every malformed band
        low, high = float(parts[0]), float(parts[1])
    except ValueError:
        msg = f"band {text!r} is not LOW-HIGH: give two numbers, e.g. 150-300"
        raise BandError(msg) from None
    if not (np.isfinite(low) and np.isfinite(high)) or low > high:
        msg = f"band {text!r}: LOW must not exceed HIGH (both finite), e.g. 150-300"
        raise BandError(msg)
    return low, high
