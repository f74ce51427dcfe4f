"""AB posts (AB岗): members of adjacent grids back each other up (article 11).

:func:`pair_ab_posts` pairs every grid with an adjacent grid by a maximum matching on the
adjacency graph (networkx ``max_weight_matching`` with ``maxcardinality=True``: as many pairs
as possible, and among those the heaviest). An edge weighs more for a long shared border
(the part not along a barrier river), for members living close to each other's grid
(就地就近) and for a small combined load of the two grids (squared, so that two heavy grids
are not made to back each other up).

A maximum matching can leave grids unpaired: an odd number of grids, or a grid whose neighbours
are all taken. Each of them joins a neighbouring group, which becomes a **ring**: in a ring
``(g0, g1, …)`` the member of ``g[i+1]`` covers ``g[i]`` and the last is covered by the first,
so every member still covers exactly one other grid. The unpaired grid is inserted between two
consecutive grids of the group, preferring a place where it is adjacent to both (three grids
meeting at a point: a true three-way ring), else adjacent to one, so the other link reaches a
**second-ring** neighbour (a neighbour's neighbour). A grid with no neighbour at all (an island,
an exclave) is attached the same way to the group of the nearest grid in metres (``link =
"nearest"``, ``gap_m`` says how far). Only a town with a single grid stays uncovered, with the
reason in :attr:`ABPlan.uncovered`.

:func:`plan_absence` says who covers which grid today when members are absent: the AB partner
first, then another member of the ring, then a free member of an adjacent grid, then one of the
second ring; each present member takes at most ``max_extra`` grids. It refuses
(:class:`CoverError`) with the reason for each grid that no one can cover.

Examples
--------
>>> import geopandas as gpd, shapely
>>> cells = [shapely.box(500_000 + 1000 * i, 3_400_000, 501_000 + 1000 * i, 3_401_000)
...          for i in range(4)]
>>> grids = gpd.GeoDataFrame({"code": list("ABCD")}, geometry=cells, crs=4545)
>>> from gis_grid.adjacency import build_adjacency
>>> plan = pair_ab_posts(grids, build_adjacency(grids))
>>> sorted(plan.groups)
[('A', 'B'), ('C', 'D')]
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import networkx as nx
import numpy as np
import pandas as pd
import shapely

from gis_grid.adjacency import Adjacency, grid_geometries
from gis_grid.balance import BalanceReport
from gis_grid.crs import require_crs
from gis_grid.errors import DataFileError, GridError, NotFoundError

if TYPE_CHECKING:
    import geopandas as gpd
    from numpy.typing import NDArray

__all__ = ["ABPlan", "AbsencePlan", "CoverError", "pair_ab_posts", "plan_absence"]

#: Order in which :func:`plan_absence` looks for a cover member.
RULES = ("ab_post", "group", "neighbour", "second_ring")
_COVER_COLUMNS = ["grid", "group", "kind", "backup_grid", "backup_member", "link", "hops"]
_COVER_COLUMNS += ["shared_m", "gap_m"]


class CoverError(GridError):
    """No present member can cover a grid (all candidates absent or busy)."""


@dataclass(frozen=True)
class ABPlan:
    """Who backs up whom.

    Attributes
    ----------
    cover
        Indexed by grid: ``group`` (number), ``kind`` (``"pair"``/``"ring"``), ``backup_grid``
        (whose member covers this grid), ``backup_member`` (that grid's member, or ``None``),
        ``link`` (``"adjacent"``, ``"second_ring"``, ``"ring_<k>"`` for k hops, ``"nearest"``
        across a gap), ``hops``, ``shared_m`` (border with the backup grid) and ``gap_m``
        (distance between the two grids, 0 when they touch).
    groups
        The rings, each a tuple of grid ids; a pair is a ring of two.
    uncovered
        Grids no one can back up, with a ``reason``.
    members
        Indexed by member id: ``grid`` they serve (empty without members).
    load
        Load per grid used for weighting (0 without load).
    graph
        The adjacency graph the plan was built on (border contacts only).
    """

    cover: pd.DataFrame
    groups: tuple[tuple[object, ...], ...]
    uncovered: pd.DataFrame
    members: pd.DataFrame
    load: pd.Series
    graph: nx.Graph


@dataclass(frozen=True)
class AbsencePlan:
    """Cover for the grids of today's absent members.

    Attributes
    ----------
    assignments
        One row per grid needing cover: ``grid``, ``absent`` (its absent members, or empty for
        a vacant grid), ``cover_member``, ``cover_grid`` (the cover member's own grid),
        ``rule`` (one of :data:`RULES`) and ``hops`` between the two grids.
    load
        Indexed by present member: ``grid``, ``own_load``, ``covers`` (comma-separated grids),
        ``extra_load`` and ``total_load``.
    uncovered
        Grids left without cover and why (empty unless ``strict=False``).
    """

    assignments: pd.DataFrame
    load: pd.DataFrame
    uncovered: pd.DataFrame


def _pairs_table(adjacency: Adjacency | pd.DataFrame, ids: pd.Index) -> pd.DataFrame:
    pairs = adjacency.pairs if isinstance(adjacency, Adjacency) else adjacency
    missing = {"a", "b", "shared_m"} - set(pairs.columns)
    if missing:
        msg = f"adjacency: missing column(s) {sorted(missing)}; use build_adjacency()"
        raise DataFileError(msg)
    if "contact" in pairs.columns:
        pairs = pairs[pairs["contact"] == "border"]
    unknown = ~(pairs["a"].isin(ids) & pairs["b"].isin(ids))
    if unknown.any():
        row = pairs[unknown].iloc[0]
        msg = (
            f"adjacency: {int(unknown.sum())} pair(s) name grids not in the grids, e.g. "
            f"{row['a']!r}-{row['b']!r}; build the adjacency from the same grids"
        )
        raise NotFoundError(msg)
    out = pairs[["a", "b", "shared_m"]].copy()
    barrier = pairs["barrier_m"] if "barrier_m" in pairs.columns else 0.0
    out["open_m"] = (pairs["shared_m"] - barrier).clip(lower=0)
    return out.reset_index(drop=True)


def _members_table(
    members: pd.DataFrame | None, ids: pd.Index, *, member_field: str, grid_field: str
) -> pd.DataFrame:
    if members is None:
        return pd.DataFrame({"grid": pd.Series(dtype=object)}, index=pd.Index([], name="member"))
    for field in (member_field, grid_field):
        if field not in members.columns:
            msg = f"members: no field {field!r}; the fields are {list(members.columns)}"
            raise DataFileError(msg)
    table = pd.DataFrame(
        {"grid": members[grid_field].to_numpy(dtype=object)},
        index=pd.Index(members[member_field].to_numpy(dtype=object), name="member"),
    )
    return table[table["grid"].isin(ids)]


def _home_distances(
    members: gpd.GeoDataFrame | pd.DataFrame | None,
    table: pd.DataFrame,
    *,
    ids: pd.Index,
    geoms: NDArray[np.object_],
    pairs: pd.DataFrame,
    crs: object,
    member_field: str,
) -> NDArray[np.float64]:
    """Mean distance of each pair's members' homes to the other grid (NaN when unknown)."""
    if members is None or "geometry" not in members.columns or table.empty:
        return np.full(len(pairs), np.nan)
    require_crs(members.crs, source="members")
    homes = members.set_index(member_field).geometry.to_crs(crs)
    first_home = homes[table.index].groupby(table["grid"].to_numpy()).first()
    home = first_home.reindex(ids).to_numpy(dtype=object)
    a, b = ids.get_indexer(pd.Index(pairs["a"])), ids.get_indexer(pd.Index(pairs["b"]))
    there = np.asarray(shapely.distance(home[a], geoms[b]), dtype=float)
    back = np.asarray(shapely.distance(home[b], geoms[a]), dtype=float)
    both = np.vstack([there, back])
    known = (~np.isnan(both)).sum(axis=0)
    total = np.nansum(both, axis=0)
    return np.where(known > 0, total / np.maximum(known, 1), np.nan)


def _scaled(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """Values divided by their maximum (0 where unknown or when all are 0)."""
    top = np.nanmax(values) if values.size and not np.isnan(values).all() else 0.0
    return np.nan_to_num(values / top) if top > 0 else np.zeros_like(values)


def _insert(grid: object, groups: list[list[object]], near: Iterable[object]) -> set[object]:
    """Insert an unpaired ``grid`` into the best group holding one of ``near`` (see module).

    Returns the grids now placed: ``grid``, and ``near`` too when none of them was in a
    group yet (an island whose nearest grid is another unpaired island: a new pair).
    """
    near = set(near)
    best: tuple[tuple[int, int], int, int] | None = None
    for g, ring in enumerate(groups):
        if near.isdisjoint(ring):
            continue
        for i, before in enumerate(ring):
            after = ring[(i + 1) % len(ring)]
            touching = int(before in near) + int(after in near)
            key = (-touching, len(ring))
            if best is None or key < best[0]:
                best = (key, g, i)
    if best is None:
        groups.append([grid, *near])  # the nearest grid was unpaired too
        return {grid, *near}
    _, g, i = best
    groups[g].insert(i + 1, grid)
    return {grid}


def _hops(graph: nx.Graph, a: object, b: object) -> int:
    """Count the steps between two grids on the adjacency graph (-1: not connected)."""
    if graph.has_edge(a, b):
        return 1
    if not set(graph.neighbors(a)).isdisjoint(graph.neighbors(b)):
        return 2
    try:
        return int(nx.shortest_path_length(graph, a, b))
    except nx.NetworkXNoPath:
        return -1


def pair_ab_posts(
    grids: gpd.GeoDataFrame,
    adjacency: Adjacency | pd.DataFrame,
    *,
    load: pd.Series | BalanceReport | None = None,
    members: gpd.GeoDataFrame | pd.DataFrame | None = None,
    id_field: str = "code",
    member_field: str = "member_id",
    grid_field: str = "grid_code",
    border_weight: float = 1.0,
    distance_weight: float = 1.0,
    load_weight: float = 1.0,
) -> ABPlan:
    """Pair every grid with an adjacent grid whose member backs it up (AB岗).

    Parameters
    ----------
    grids
        Grid polygons with a CRS and ``id_field``.
    adjacency
        :func:`~gis_grid.adjacency.build_adjacency` result, or a table ``a, b, shared_m``
        (optional ``barrier_m``, ``contact``). Corner contacts are not used.
    load
        Load per grid (a Series indexed by grid id, or a :class:`BalanceReport`, whose
        ``by`` column is used). Pairs with a small combined load are preferred.
    members
        Members with ``member_field`` and ``grid_field``; with point geometry (their homes)
        pairs whose members live near each other's grid are preferred.
    id_field, member_field, grid_field
        Field names.
    border_weight, distance_weight, load_weight
        Relative importance of a long open border, short home distances, a small
        combined load. Each term is scaled to 0-1 over all candidate pairs.

    Returns
    -------
    ABPlan

    Raises
    ------
    CRSError, DataFileError, NotFoundError
        Inputs without a CRS, missing fields, adjacency naming unknown grids.

    Examples
    --------
    See the module docstring.
    """
    ids, geoms, crs = grid_geometries(grids, id_field=id_field)
    pairs = _pairs_table(adjacency, ids)
    member_table = _members_table(members, ids, member_field=member_field, grid_field=grid_field)
    if isinstance(load, BalanceReport):
        load = load.grids[load.by]
    grid_load = (
        pd.Series(0.0, index=ids)
        if load is None
        else pd.Series(load, dtype=float).reindex(ids).fillna(0.0)
    )
    home_m = _home_distances(
        members,
        member_table,
        ids=ids,
        geoms=geoms,
        pairs=pairs,
        crs=crs,
        member_field=member_field,
    )
    combined = np.asarray(
        grid_load.reindex(pairs["a"]).to_numpy() + grid_load.reindex(pairs["b"]).to_numpy(),
        dtype=np.float64,
    )
    weight = (
        1.0
        + border_weight * _scaled(pairs["open_m"].to_numpy(dtype=np.float64))
        + distance_weight * (1 - _scaled(home_m)) * ~np.isnan(home_m)
        # Squared: in a perfect matching the plain combined loads always add up to the same
        # total, so only a convex term keeps two heavy grids from backing each other up.
        + load_weight * (1 - _scaled(combined) ** 2) * (combined > 0)
    )
    graph = nx.Graph()
    graph.add_nodes_from(ids)
    for a, b, shared, w in zip(pairs["a"], pairs["b"], pairs["shared_m"], weight, strict=True):
        graph.add_edge(a, b, weight=float(w), shared_m=float(shared))
    matching = nx.max_weight_matching(graph, maxcardinality=True, weight="weight")
    position = {grid: i for i, grid in enumerate(ids)}
    groups = [sorted(pair, key=position.__getitem__) for pair in matching]
    groups.sort(key=lambda ring: position[ring[0]])

    placed = {grid for ring in groups for grid in ring}
    uncovered = []
    # Fewest neighbours first: the most constrained grid picks its place first.
    for grid in sorted(set(ids) - placed, key=lambda g: (graph.degree(g), position[g])):
        if grid in placed:  # an island already grouped as another island's nearest grid
            continue
        near = list(graph.neighbors(grid))
        if not near:
            others = np.flatnonzero(np.arange(len(ids)) != position[grid])
            if others.size == 0:
                uncovered.append({"grid": grid, "reason": "the only grid: no member to cover it"})
                continue
            gaps = shapely.distance(geoms[position[grid]], geoms[others])
            near = [ids[others[int(np.argmin(gaps))]]]
        placed.update(_insert(grid, groups, near))

    rows = []
    for number, ring in enumerate(groups):
        for i, grid in enumerate(ring):
            backup = ring[(i + 1) % len(ring)]
            hops = _hops(graph, grid, backup)
            link = {1: "adjacent", 2: "second_ring", -1: "nearest"}.get(hops, f"ring_{hops}")
            helpers = member_table.index[member_table["grid"] == backup]
            gap = float(shapely.distance(geoms[position[grid]], geoms[position[backup]]))
            rows.append(
                {
                    "grid": grid,
                    "group": number,
                    "kind": "pair" if len(ring) == 2 else "ring",
                    "backup_grid": backup,
                    "backup_member": helpers[0] if len(helpers) else None,
                    "link": link,
                    "hops": hops,
                    "shared_m": graph.edges[grid, backup]["shared_m"] if hops == 1 else 0.0,
                    "gap_m": gap,
                }
            )
    cover = pd.DataFrame(rows, columns=_COVER_COLUMNS).set_index("grid")
    cover = cover.loc[[grid for grid in ids if grid in cover.index]]
    if members is not None:
        vacant = cover.index[cover["backup_member"].isna()]
        uncovered += [
            {"grid": g, "reason": f"its backup grid {backup!s} has no member"}
            for g, backup in cover.loc[vacant, "backup_grid"].items()
        ]
    return ABPlan(
        cover=cover,
        groups=tuple(tuple(ring) for ring in groups),
        uncovered=pd.DataFrame(uncovered, columns=["grid", "reason"]),
        members=member_table,
        load=grid_load,
        graph=graph,
    )


def _candidates(
    plan: ABPlan, grid: object, present: pd.DataFrame, *, second_ring: bool
) -> list[tuple[object, int]]:
    """Present members who may cover ``grid``, with the rank of the rule that allows it."""
    by_grid = present.groupby("grid").groups
    found: dict[object, int] = {}

    def offer(grids: Iterable[object], rank: int) -> None:
        for other in grids:
            for member in by_grid.get(other, []):
                found.setdefault(member, rank)

    backup_of = plan.cover["backup_grid"].to_dict()
    if grid in backup_of:
        offer([backup_of[grid]], 0)
        group = plan.groups[int(plan.cover["group"].to_dict()[grid])]
        offer([g for g in group if g != grid], 1)
    ring1 = set(plan.graph.neighbors(grid))
    offer(sorted(ring1, key=str), 2)
    if second_ring:
        ring2 = {far for near in ring1 for far in plan.graph.neighbors(near)} - ring1 - {grid}
        offer(sorted(ring2, key=str), 3)
    return list(found.items())


def _why_not(
    plan: ABPlan, grid: object, absent: set[object], busy: dict[object, list[object]]
) -> str:
    """Say why no one covers ``grid``: each candidate grid and what its members are doing."""
    looked = []
    backup_of = plan.cover["backup_grid"].to_dict()
    near = [backup_of[grid]] if grid in backup_of else []
    near += sorted(set(plan.graph.neighbors(grid)) - set(near), key=str)
    for other in near:
        names = plan.members.index[plan.members["grid"] == other]
        if len(names) == 0:
            looked.append(f"{other!s} has no member")
        for member in names:
            if member in absent:
                looked.append(f"{other!s}'s member {member!s} is absent too")
            elif member in busy:
                looked.append(f"{other!s}'s member {member!s} already covers {busy[member]}")
    if not near:
        return f"grid {grid}: no neighbouring grid, and no AB partner"
    return f"grid {grid}: no free member nearby: " + "; ".join(looked)


def plan_absence(
    plan: ABPlan,
    absent_members: Iterable[object],
    *,
    max_extra: int = 1,
    second_ring: bool = True,
    include_vacant: bool = True,
    strict: bool = True,
) -> AbsencePlan:
    """Decide who covers the grids of today's absent members (应急替补, article 11).

    Parameters
    ----------
    plan
        The AB plan (:func:`pair_ab_posts`, built with ``members``).
    absent_members
        Ids of the members absent today (illness, leave).
    max_extra
        Most grids one present member covers besides their own.
    second_ring
        Allow a member of a neighbour's neighbour when no adjacent member is free.
    include_vacant
        Also cover grids that have no member at all.
    strict
        Raise :class:`CoverError` when a grid cannot be covered (else list it in
        ``uncovered``).

    Returns
    -------
    AbsencePlan
        Candidates are tried in the order of :data:`RULES` (AB partner, rest of the ring,
        adjacent grids, second ring); a maximum matching covers as many grids as possible,
        preferring earlier rules and less loaded members.

    Raises
    ------
    NotFoundError
        An absent member is not in the plan.
    CoverError
        Naming each grid no one can cover and the state of the members around it.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> from gis_grid.adjacency import build_adjacency
    >>> grids = gpd.GeoDataFrame({"code": ["A", "B"]}, crs=4545, geometry=[
    ...     shapely.box(500_000, 3_400_000, 501_000, 3_401_000),
    ...     shapely.box(501_000, 3_400_000, 502_000, 3_401_000)])
    >>> members = gpd.GeoDataFrame({"member_id": ["MA", "MB"], "grid_code": ["A", "B"]},
    ...     geometry=grids.centroid, crs=4545)
    >>> plan = pair_ab_posts(grids, build_adjacency(grids), members=members)
    >>> plan_absence(plan, ["MA"]).assignments[["grid", "cover_member", "rule"]].to_dict("records")
    [{'grid': 'A', 'cover_member': 'MB', 'rule': 'ab_post'}]
    """
    if plan.members.empty:
        msg = "the AB plan has no members: build it with pair_ab_posts(..., members=...)"
        raise DataFileError(msg)
    absent = set(absent_members)
    unknown = sorted(absent - set(plan.members.index), key=str)
    if unknown:
        msg = f"absent member(s) {unknown} are not members of the plan"
        raise NotFoundError(msg)
    present = plan.members[~plan.members.index.isin(list(absent))]
    staffed = set(present["grid"])
    grids = list(plan.graph.nodes)
    needy = [
        g for g in grids if g not in staffed and (include_vacant or g in set(plan.members["grid"]))
    ]

    load = plan.load
    home_grid = present["grid"].to_dict()
    top = float(load.max()) if len(load) and load.max() > 0 else 1.0
    bipartite = nx.Graph()
    rules: dict[tuple[object, object], int] = {}
    for grid in needy:
        for member, rank in _candidates(plan, grid, present, second_ring=second_ring):
            rules[grid, member] = rank
            own = float(load.get(home_grid[member], 0.0))
            for slot in range(max_extra):
                # Earlier rules first, then spreading over members, then lighter members.
                weight = 100.0 - 20.0 * rank - 5.0 * slot + (1 - own / top)
                bipartite.add_edge(("grid", grid), ("member", member, slot), weight=weight)
    matching = nx.max_weight_matching(bipartite, maxcardinality=True, weight="weight")
    chosen: dict[object, object] = {}
    for u, v in matching:
        grid_node, member_node = (u, v) if u[0] == "grid" else (v, u)
        chosen[grid_node[1]] = member_node[1]
    busy: dict[object, list[object]] = {}
    for grid, member in chosen.items():
        busy.setdefault(member, []).append(grid)

    rows, uncovered = [], []
    for grid in needy:
        away = [m for m in plan.members.index[plan.members["grid"] == grid] if m in absent]
        if grid not in chosen:
            uncovered.append({"grid": grid, "reason": _why_not(plan, grid, absent, busy)})
            continue
        member = chosen[grid]
        own_grid = home_grid[member]
        rows.append(
            {
                "grid": grid,
                "absent": ",".join(map(str, away)),
                "cover_member": member,
                "cover_grid": own_grid,
                "rule": RULES[rules[grid, member]],
                "hops": _hops(plan.graph, grid, own_grid),
            }
        )
    if uncovered and strict:
        msg = "no cover possible: " + " | ".join(row["reason"] for row in uncovered)
        msg += ". Raise max_extra, allow second_ring, or send a member from the town centre."
        raise CoverError(msg)
    table = present.copy()
    table["own_load"] = load.reindex(table["grid"]).to_numpy()
    table["covers"] = [",".join(map(str, busy.get(m, []))) for m in table.index]
    table["extra_load"] = [float(load.reindex(busy.get(m, [])).sum()) for m in table.index]
    table["total_load"] = table["own_load"] + table["extra_load"]
    columns = ["grid", "absent", "cover_member", "cover_grid", "rule", "hops"]
    return AbsencePlan(
        assignments=pd.DataFrame(rows, columns=columns),
        load=table,
        uncovered=pd.DataFrame(uncovered, columns=["grid", "reason"]),
    )
