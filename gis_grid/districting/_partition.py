"""Partition a village's units into grids: barrier regions, METIS, contiguity, balance moves.

1. **Regions.** Units joined by non-barrier borders form regions (the land between rivers and
   ridges). Each region gets a whole number of grids whose mean load lies in the band; a region
   that cannot (too few people for a grid on its own) is merged with the neighbouring region
   it shares most barrier with, so grids straddle a barrier only where no balanced alternative
   exists.
2. **METIS** (pymetis, k-way with contiguity) splits each region, minimising the weighted
   cut: plain borders cost their length, borders on guide lines (roads, brooks) a fifth and
   borders on barriers a fiftieth, so cuts follow natural lines and stay short (compact).
3. **Contiguity.** Any detached piece of a part joins the neighbour it shares most border with.
4. **Balance moves.** Boundary units move between neighbouring parts, keeping each part
   connected: first until every part is in the band (the move removing most excess first,
   ties broken by the smaller cut), then, when ``polish``, while the squared deviation from
   the target falls by more than the cut grows. When no single move helps, *ejection chains*
   pass load along a shortest path of neighbouring grids from where it is spare to where it
   is short, moving strings of units (a loaded unit and the empty land between it and the
   border) at each step.
5. **Redraw around stuck grids.** A grid still outside the band and its neighbours (grown
   until their mean load is near the target) are split again by METIS into as many grids and
   balanced again; kept only when their excess falls (a ReCom-like merge and split, aimed).
   On the 300,000-household synthetic county this brought the last 12 grids (a cluster of
   short grids in a 127-grid village, their spare load several grids away across empty land)
   into the ±5 % band.
"""

from __future__ import annotations

import itertools
import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pymetis
from scipy import sparse
from scipy.sparse.csgraph import breadth_first_order, connected_components

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["count_range", "cut_weights", "partition_village", "refine"]

#: Relative cost of cutting along a guide line and along a barrier (plain border = 1).
GUIDE_COST = 0.2
BARRIER_COST = 0.02
#: Weight of the cut (relative to the grid perimeter) against squared deviation when polishing.
_POLISH_ALPHA = 0.02
#: Candidate moves tried (best first) before giving up on a step: most fail on contiguity.
_TRIES = 60


def count_range(load: float, low: float, high: float) -> tuple[int, int]:
    """Smallest and largest number of grids whose mean load lies in ``[low, high]``."""
    if load <= 0:
        return 1, 0  # nobody: cannot hold a grid of its own
    return max(1, math.ceil(load / high - 1e-9)), math.floor(load / low + 1e-9)


def cut_weights(edges: pd.DataFrame) -> NDArray[np.float64]:
    """Cost of cutting each edge: shared length, discounted where it lies on lines."""
    plain = edges["length"] - edges["guide_m"].clip(upper=edges["length"])
    barrier = edges["barrier_m"].clip(upper=edges["length"])
    plain = (plain - barrier).clip(lower=0)
    guide = edges["length"] - plain - barrier
    return (plain + GUIDE_COST * guide + BARRIER_COST * barrier).to_numpy(dtype=float)


def _matrix(
    n: int, a: NDArray[np.intp], b: NDArray[np.intp], w: NDArray[np.float64]
) -> sparse.csr_matrix:
    return sparse.coo_matrix(
        (np.concatenate([w, w]), (np.concatenate([a, b]), np.concatenate([b, a]))), shape=(n, n)
    ).tocsr()


def _regions(
    n: int, a: NDArray[np.intp], b: NDArray[np.intp], barrier: NDArray[np.bool_]
) -> NDArray[np.intp]:
    keep = ~barrier
    graph = _matrix(n, a[keep], b[keep], np.ones(int(keep.sum())))
    return np.asarray(connected_components(graph, directed=False)[1], dtype=np.intp)


def _merge_region(
    region: NDArray[np.intp],
    worst: int,
    *,
    a: NDArray[np.intp],
    b: NDArray[np.intp],
    length: NDArray[np.float64],
    rload: NDArray[np.float64],
) -> NDArray[np.intp]:
    """Merge region ``worst`` into the neighbouring region it shares most border with."""
    ra, rb = region[a], region[b]
    from_worst = np.concatenate([rb[ra == worst], ra[rb == worst]])
    from_worst_len = np.concatenate([length[ra == worst], length[rb == worst]])
    other_side = from_worst != worst
    near = np.bincount(
        from_worst[other_side], weights=from_worst_len[other_side], minlength=len(rload)
    )
    if near.max(initial=0) > 0:
        other = int(np.argmax(near))
    else:  # an island: the heaviest other region
        other = int(np.argmax(np.where(np.arange(len(rload)) == worst, -1, rload)))
    region = region.copy()
    region[region == worst] = other
    return region


def _allocate(
    region: NDArray[np.intp],
    load: NDArray[np.float64],
    a: NDArray[np.intp],
    b: NDArray[np.intp],
    length: NDArray[np.float64],
    *,
    k: int,
    target: float,
    low: float,
    high: float,
) -> tuple[NDArray[np.intp], NDArray[np.int64]]:
    """Merge regions until each can hold whole grids in the band; give each its count."""
    region = region.copy()
    for _ in range(len(np.unique(region)) + 1):
        labels, region = np.unique(region, return_inverse=True)
        region = region.ravel()
        r = len(labels)
        rload = np.bincount(region, weights=load, minlength=r).astype(float)
        ranges = np.array([count_range(w, low, high) for w in rload]).reshape(-1, 2)
        bad = ranges[:, 0] > ranges[:, 1]
        if r > 1 and not bad.any() and ranges[:, 0].sum() <= k <= ranges[:, 1].sum():
            counts = np.clip(np.rint(rload / target), ranges[:, 0], ranges[:, 1]).astype(np.int64)
            while counts.sum() != k:
                step = 1 if counts.sum() < k else -1
                room = counts + step
                ok = (room >= ranges[:, 0]) & (room <= ranges[:, 1]) & (room >= 0)
                dev = np.where(ok, np.abs(rload / np.maximum(room, 1) - target), np.inf)
                counts[int(np.argmin(dev))] += step
            return region, counts
        if r == 1:
            return region, np.array([k], dtype=np.int64)
        # Merge the lightest offending region (or, if counts cannot sum to k, the lightest).
        pick = np.flatnonzero(bad)
        worst = int(pick[np.argmin(rload[pick])]) if pick.size else int(np.argmin(rload))
        region = _merge_region(region, worst, a=a, b=b, length=length, rload=rload)
    return np.zeros_like(region), np.array([k], dtype=np.int64)


def _metis(
    k: int,
    a: NDArray[np.intp],
    b: NDArray[np.intp],
    cost: NDArray[np.float64],
    *,
    load: NDArray[np.float64],
    seed: int,
) -> NDArray[np.intp]:
    n = len(load)
    if k <= 1 or n <= 1:
        return np.zeros(n, dtype=np.intp)
    graph = _matrix(n, a, b, np.maximum(1, np.rint(cost)))
    graph.sort_indices()
    options = pymetis.Options(seed=seed, ufactor=30, contig=True)
    _, parts = pymetis.part_graph(
        k,
        pymetis.CSRAdjacency(graph.indptr.astype(np.int64), graph.indices.astype(np.int64)),
        vweights=np.maximum(np.rint(load), 0).astype(np.int64) + 1,
        eweights=graph.data.astype(np.int64),
        recursive=False,
        options=options,
    )
    return np.asarray(parts, dtype=np.intp)


def _fill_empty(
    part: NDArray[np.intp],
    k: int,
    a: NDArray[np.intp],
    b: NDArray[np.intp],
    cost: NDArray[np.float64],
    *,
    load: NDArray[np.float64],
    seed: int,
) -> NDArray[np.intp]:
    """METIS may leave a part empty on small graphs: split the heaviest part in two."""
    part = np.unique(part, return_inverse=True)[1].ravel()
    while int(part.max()) + 1 < min(k, len(part)):
        heavy = int(np.argmax(np.bincount(part, weights=load + 1e-6)))
        members = np.flatnonzero(part == heavy)
        local = np.full(len(part), -1, dtype=np.intp)
        local[members] = np.arange(members.size)
        inside = (part[a] == heavy) & (part[b] == heavy)
        halves = _metis(
            2, local[a[inside]], local[b[inside]], cost[inside], load=load[members], seed=seed
        )
        if halves.max() < 1:
            break
        part[members[halves == 1]] = int(part.max()) + 1
    return part


def make_contiguous(
    part: NDArray[np.intp],
    a: NDArray[np.intp],
    b: NDArray[np.intp],
    length: NDArray[np.float64],
    load: NDArray[np.float64],
) -> NDArray[np.intp]:
    """Attach every detached piece of a part to the neighbour sharing most border with it."""
    part = part.copy()
    n = len(part)
    for _ in range(20):
        same = part[a] == part[b]
        comp = np.asarray(
            connected_components(
                _matrix(n, a[same], b[same], np.ones(int(same.sum()))), directed=False
            )[1]
        )
        frame = pd.DataFrame({"part": part, "comp": comp, "load": load + 1e-6})
        size = frame.groupby("comp")["load"].sum()
        main = (
            frame.assign(size=size[comp].to_numpy())
            .sort_values("size")
            .groupby("part")["comp"]
            .last()
        )
        detached = ~np.isin(comp, main.to_numpy())
        if not detached.any():
            break
        cross = (part[a] != part[b]) & (detached[a] | detached[b])
        src = np.concatenate([a[cross], b[cross]])
        dst = np.concatenate([b[cross], a[cross]])
        length2 = np.concatenate([length[cross], length[cross]])
        sel = detached[src]
        votes = pd.DataFrame({"comp": comp[src[sel]], "to": part[dst[sel]], "len": length2[sel]})
        ranked = votes.groupby(["comp", "to"])["len"].sum().reset_index().sort_values("len")
        best = ranked.groupby("comp")["to"].last()
        move = detached & np.isin(comp, best.index.to_numpy())
        part[move] = best.reindex(comp[move]).to_numpy()
    return part


def _connected_without(
    unit: int, part: NDArray[np.intp], indptr: list[int], indices: list[int]
) -> bool:
    """Whether ``unit``'s part stays connected without it (a breadth-first walk of the part).

    A plain walk over adjacency lists: parts hold tens of units, where slicing a sparse
    matrix per candidate move cost ~1 ms and dominated the balancing.
    """
    own = int(part[unit])
    start = [v for v in indices[indptr[unit] : indptr[unit + 1]] if part[v] == own]
    if not start:
        return False  # the unit is the whole part: moving it would empty the part
    size = int(np.count_nonzero(part == own)) - 1
    seen = {unit, start[0]}
    stack = [start[0]]
    while stack:
        node = stack.pop()
        for v in indices[indptr[node] : indptr[node + 1]]:
            if v not in seen and part[v] == own:
                seen.add(v)
                stack.append(v)
    return len(seen) - 1 == size


def _excess(w: NDArray[np.float64], low: float, high: float) -> NDArray[np.float64]:
    return np.maximum(w - high, 0) + np.maximum(low - w, 0)


def _candidates(
    part: NDArray[np.intp],
    src: NDArray[np.intp],
    dst: NDArray[np.intp],
    ecost: NDArray[np.float64],
    k: int,
) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.float64], NDArray[np.float64]]:
    """Boundary moves ``u -> q``: the border ``u`` shares with ``q`` and with its own part."""
    n = len(part)
    q_of = part[dst]
    same = part[src] == q_of
    own = np.bincount(src[same], weights=ecost[same], minlength=n)
    cross = ~same
    key, inverse = np.unique(src[cross] * k + q_of[cross], return_inverse=True)
    to_q = np.bincount(inverse.ravel(), weights=ecost[cross], minlength=len(key)).astype(float)
    u = (key // k).astype(np.intp)
    return u, (key % k).astype(np.intp), to_q, own[u].astype(float)


#: Depth of the strings of units a chain step may move at once, and strings tried per step.
_STRING_DEPTH = 6
_STRING_TRIES = 24


def _strings(
    src: int,
    dst: int,
    part: NDArray[np.intp],
    load: NDArray[np.float64],
    graph: tuple[list[int], list[int]],
    *,
    frozen: NDArray[np.bool_],
) -> tuple[dict[int, int], dict[int, float]]:
    """Strings of units of part ``src`` starting on its border with ``dst`` (a walk inwards).

    Returns each reached unit's parent (-1 on the border) and the load of its string (the
    unit and its parents up to the border): moved border-first, a string crosses empty land
    (units without households) to reach loaded units that no single move can bring over.
    """
    indptr, indices = graph
    parent: dict[int, int] = {}
    string: dict[int, float] = {}
    frontier = []
    for u in np.flatnonzero(part == src).tolist():
        if not frozen[u] and any(part[v] == dst for v in indices[indptr[u] : indptr[u + 1]]):
            parent[u], string[u] = -1, float(load[u])
            frontier.append(u)
    for _ in range(_STRING_DEPTH - 1):
        ahead = []
        for u in frontier:
            for v in indices[indptr[u] : indptr[u + 1]]:
                if part[v] == src and v not in parent and not frozen[v]:
                    parent[v], string[v] = u, string[u] + float(load[v])
                    ahead.append(v)
        frontier = ahead
    return parent, string


def _chain_step(
    cur: int,
    part: NDArray[np.intp],
    pw: NDArray[np.float64],
    load: NDArray[np.float64],
    graph: tuple[list[int], list[int]],
    *,
    frozen: NDArray[np.bool_],
    low: float,
    high: float,
    target: float,
    other: int,
) -> bool:
    """Bring part ``cur`` towards the band with a string of units from or to part ``other``.

    A short part takes a string of units from ``other``, a long one gives one; ``other`` may
    leave the band (the chain then continues from it). The string whose move leaves the least
    excess in both parts is tried first; every unit moved keeps the giving part connected
    (else the string is undone and the next tried). Returns whether a string moved.
    """
    indptr, indices = graph
    short = pw[cur] < low
    src, dst = (other, cur) if short else (cur, other)
    parent, string = _strings(src, dst, part, load, graph, frozen=frozen)
    if not parent:
        return False
    ends = np.fromiter(string, dtype=np.intp, count=len(string))
    w = np.fromiter(string.values(), dtype=float, count=len(string))
    after_cur = pw[cur] + w if short else pw[cur] - w
    after_other = pw[other] - w if short else pw[other] + w
    before = _excess(pw[[cur]], low, high)[0]
    # The chain must end: the least excess left in both parts, then the one nearest target.
    score = (
        _excess(after_cur, low, high)
        + _excess(after_other, low, high)
        + 1e-6 * np.abs(after_cur - target)
    )
    useful = np.flatnonzero(_excess(after_cur, low, high) < before - 1e-9)
    for end in ends[useful[np.argsort(score[useful], kind="stable")]][:_STRING_TRIES].tolist():
        path = [end]
        while parent[path[-1]] >= 0:
            path.append(parent[path[-1]])
        moved: list[int] = []
        for unit in reversed(path):  # border first: the string stays attached to ``dst``
            if not _connected_without(unit, part, indptr, indices):
                break
            part[unit] = dst
            moved.append(unit)
        if len(moved) == len(path):
            total = float(load[path].sum())
            pw[src] -= total
            pw[dst] += total
            return True
        part[moved] = src
    return False


def _paths(
    part: NDArray[np.intp],
    pw: NDArray[np.float64],
    a: NDArray[np.intp],
    b: NDArray[np.intp],
    start: int,
    *,
    target: float,
    tries: int,
) -> list[list[int]]:
    """Return shortest paths of neighbouring parts to the parts that can make up an excess.

    From ``start`` to the nearest parts above the target (for a short part) or below it (for
    a long one).
    """
    k = len(pw)
    cross = part[a] != part[b]
    pairs = np.unique(np.column_stack([part[a][cross], part[b][cross]]), axis=0)
    graph = sparse.coo_matrix(
        (np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(k, k)
    ).tocsr()
    graph = graph + graph.T
    order, pred = breadth_first_order(graph, start, directed=False)
    short = pw[start] < target
    ends = [int(g) for g in order[1:] if (pw[g] > target if short else pw[g] < target)]
    paths = []
    for end in ends[:tries]:
        path = [end]
        while path[-1] != start:
            path.append(int(pred[path[-1]]))
        paths.append(path[::-1])
    return paths


def _chains(
    part: NDArray[np.intp],
    pw: NDArray[np.float64],
    load: NDArray[np.float64],
    graph: tuple[list[int], list[int]],
    edges: tuple[NDArray[np.intp], NDArray[np.intp]],
    *,
    frozen: NDArray[np.bool_],
    low: float,
    high: float,
    target: float,
    tries: int = 4,
) -> bool:
    """Ejection chains: fix a part outside the band through a path of neighbouring parts.

    When every neighbour of a short part sits at the floor, no single move helps; here the
    short part takes a unit from the next part on a shortest path towards a part above the
    target, which takes one from the part after it, and so on until a part with room ends
    the chain (for a long part, the other way round). A chain is kept only if it lowers the
    total excess, else undone. Returns whether one was kept.
    """
    excess = _excess(pw, low, high)
    for start in np.argsort(-excess).tolist():
        if excess[start] <= 1e-9:
            break
        before = float(excess.sum())
        for path in _paths(part, pw, *edges, int(start), target=target, tries=tries):
            saved_part, saved_pw = part.copy(), pw.copy()
            for cur, nxt in itertools.pairwise(path):
                if not _chain_step(
                    cur,
                    part,
                    pw,
                    load,
                    graph,
                    frozen=frozen,
                    low=low,
                    high=high,
                    target=target,
                    other=nxt,
                ):
                    break
                if _excess(pw[[nxt]], low, high)[0] <= 1e-9:
                    break
            if float(_excess(pw, low, high).sum()) < before - 1e-9:
                return True
            part[:], pw[:] = saved_part, saved_pw
    return False


def refine(
    part: NDArray[np.intp],
    load: NDArray[np.float64],
    a: NDArray[np.intp],
    b: NDArray[np.intp],
    cost: NDArray[np.float64],
    *,
    target: float,
    low: float,
    high: float,
    polish: bool,
    fixed: NDArray[np.bool_] | None = None,
    max_moves: int | None = None,
) -> NDArray[np.intp]:
    """Move boundary units between neighbouring parts (see module docstring).

    While a part is outside the band and no single move reduces the excess (every neighbour
    of a short part is itself near the floor), load is first spread from heavier to lighter
    neighbouring parts (moves that lower the squared deviation and never raise the excess), so
    that a chain of moves reaches the short part. Each move lowers (excess, squared deviation)
    lexicographically, so the loop cannot cycle.
    """
    part = part.copy()
    n = len(part)
    k = int(part.max()) + 1 if n else 0
    if k <= 1:
        return part
    graph = _matrix(n, a, b, np.ones(len(a)))
    indptr, indices = graph.indptr.tolist(), graph.indices.tolist()
    frozen = np.zeros(n, dtype=bool) if fixed is None else fixed
    pw = np.bincount(part, weights=load, minlength=k).astype(float)
    src = np.concatenate([a, b])
    dst = np.concatenate([b, a])
    ecost = np.concatenate([cost, cost])
    perimeter = max(float(cost.sum()) * 2 / k, 1.0)
    budget = max_moves if max_moves is not None else 4 * n + 20
    for _ in range(budget):
        fix_band = bool(_excess(pw, low, high).sum() > 1e-9)
        if not fix_band and not polish:
            break
        u, q, to_q, own = _candidates(part, src, dst, ecost, k)
        p = part[u]
        keep = ~frozen[u]
        u, q, p, to_q, own = u[keep], q[keep], p[keep], to_q[keep], own[keep]
        wu = load[u]
        d_excess = (
            _excess(pw[p] - wu, low, high)
            + _excess(pw[q] + wu, low, high)
            - _excess(pw[p], low, high)
            - _excess(pw[q], low, high)
        )
        d_cut = own - to_q
        d_dev = (
            (pw[p] - wu - target) ** 2
            + (pw[q] + wu - target) ** 2
            - (pw[p] - target) ** 2
            - (pw[q] - target) ** 2
        ) / target**2
        tiers: list[NDArray[np.intp]] = []
        if fix_band:
            ok = np.flatnonzero(d_excess < -1e-9)
            tiers.append(ok[np.lexsort((d_cut[ok], np.round(d_excess[ok], 6)))])
            spread = np.flatnonzero((d_excess <= 1e-9) & (d_dev < -1e-9))
            tiers.append(spread[np.argsort(d_dev[spread], kind="stable")])
        else:
            score = d_dev + _POLISH_ALPHA * d_cut / perimeter
            ok = np.flatnonzero((d_excess <= 1e-9) & (score < -1e-6))
            tiers.append(ok[np.argsort(score[ok], kind="stable")])
        moved = False
        for order in tiers:
            for i in order[:_TRIES].tolist():
                unit, src_part = int(u[i]), int(p[i])
                if _connected_without(unit, part, indptr, indices):
                    part[unit] = q[i]
                    pw[src_part] -= load[unit]
                    pw[q[i]] += load[unit]
                    moved = True
                    break
            if moved:
                break
        if not moved and fix_band:
            moved = _chains(
                part,
                pw,
                load,
                (indptr, indices),
                (a, b),
                frozen=frozen,
                low=low,
                high=high,
                target=target,
            )
        if not moved:
            break
    return part


def partition_village(
    load: NDArray[np.float64],
    edges: pd.DataFrame,
    k: int,
    *,
    target: float,
    low: float,
    high: float,
    seed: int,
) -> NDArray[np.intp]:
    """Split one village's units (local ids ``0..n-1``) into ``k`` contiguous grids."""
    n = len(load)
    a = edges["a"].to_numpy()
    b = edges["b"].to_numpy()
    length = edges["length"].to_numpy(dtype=float)
    barrier = (edges["barrier_m"] > 0.5 * edges["length"]).to_numpy()
    cost = cut_weights(edges)
    region, counts = _allocate(
        _regions(n, a, b, barrier), load, a, b, length, k=k, target=target, low=low, high=high
    )
    # A region whose grids could be balanced on paper may still fail (its mean load close to
    # the band's edge, units too coarse to fine-tune): then merge it across its barrier.
    for _ in range(len(counts)):
        part = _split(
            region,
            counts,
            load,
            a=a,
            b=b,
            length=length,
            cost=cost,
            target=target,
            low=low,
            high=high,
            seed=seed,
        )
        pw = np.bincount(part, weights=load).astype(float)
        bad = np.flatnonzero(_excess(pw, low, high) > 1e-9)
        if not bad.size or len(counts) <= 1:
            break
        worst = bad[np.argmax(_excess(pw[bad], low, high))]
        rload = np.bincount(region, weights=load, minlength=len(counts)).astype(float)
        region = _merge_region(
            region, int(region[part == worst][0]), a=a, b=b, length=length, rload=rload
        )
        region, counts = _allocate(
            region, load, a, b, length, k=k, target=target, low=low, high=high
        )
    return part


#: Largest group of neighbouring grids redrawn together around a grid stuck outside the band.
_GROUP_MAX = 16


def _grid_neighbours(
    part: NDArray[np.intp], a: NDArray[np.intp], b: NDArray[np.intp], k: int
) -> list[set[int]]:
    cross = part[a] != part[b]
    out: list[set[int]] = [set() for _ in range(k)]
    for p, q in zip(part[a][cross].tolist(), part[b][cross].tolist(), strict=True):
        out[p].add(q)
        out[q].add(p)
    return out


def _group(
    start: int, pw: NDArray[np.float64], near: list[set[int]], *, target: float, slack: float
) -> list[int]:
    """Grow a group of neighbouring grids around ``start`` until its mean is near the target.

    One grid at a time, the neighbour bringing the mean closest to the target joins, until
    the mean lies within ``slack`` of the target (and the group has three grids) or the group
    reaches :data:`_GROUP_MAX` grids.
    """
    group = [start]
    total = float(pw[start])
    while len(group) < _GROUP_MAX:
        if len(group) >= 3 and abs(total / len(group) - target) <= slack:
            break
        options = set().union(*(near[g] for g in group)) - set(group)
        if not options:
            break
        best = min(options, key=lambda g: abs((total + pw[g]) / (len(group) + 1) - target))
        group.append(best)
        total += float(pw[best])
    return group


def repartition(
    part: NDArray[np.intp],
    load: NDArray[np.float64],
    a: NDArray[np.intp],
    b: NDArray[np.intp],
    *,
    cost: NDArray[np.float64],
    length: NDArray[np.float64],
    target: float,
    low: float,
    high: float,
    seed: int,
    rounds: int = 40,
) -> NDArray[np.intp]:
    """Redraw groups of neighbouring grids around grids the balance moves could not fix.

    Moves of single units (and chains of them) stall where a cluster of grids is short
    together and the load to spare lies several grids away, or where empty land separates
    the loaded units from the border. Here the stuck grid and its neighbours (grown until
    their mean load is near the target, see :func:`_group`) are split again by METIS into as
    many grids, made contiguous and balanced by :func:`refine`, in the same way as the whole
    village; the result is kept only if the group's excess falls. A little like ReCom's
    merge-and-split, but aimed at the grids outside the band.
    """
    part = part.copy()
    n = len(part)
    for attempt in range(rounds):
        k = int(part.max()) + 1
        pw = np.bincount(part, weights=load, minlength=k).astype(float)
        excess = _excess(pw, low, high)
        bad = np.flatnonzero(excess > 1e-9)
        if not bad.size:
            break
        near = _grid_neighbours(part, a, b, k)
        improved = False
        tries = [
            (start, spread)
            for start in bad[np.argsort(-excess[bad])][:6].tolist()
            for spread in (6, 12, 3)
        ]
        for start, spread in tries:
            group = _group(start, pw, near, target=target, slack=(high - low) / spread)
            members = np.flatnonzero(np.isin(part, group))
            local = np.full(n, -1, dtype=np.intp)
            local[members] = np.arange(members.size)
            inside = (local[a] >= 0) & (local[b] >= 0)
            sa, sb, sc, sl = local[a[inside]], local[b[inside]], cost[inside], length[inside]
            sub_load = load[members]
            sub = _metis(len(group), sa, sb, sc, load=sub_load, seed=seed + attempt + spread)
            sub = _fill_empty(sub, len(group), sa, sb, sc, load=sub_load, seed=seed)
            sub = make_contiguous(sub, sa, sb, sl, sub_load)
            sub = np.unique(sub, return_inverse=True)[1].ravel()
            if int(sub.max()) + 1 != len(group):
                continue
            sub = refine(sub, sub_load, sa, sb, sc, target=target, low=low, high=high, polish=False)
            new_pw = np.bincount(sub, weights=sub_load, minlength=len(group)).astype(float)
            if _excess(new_pw, low, high).sum() < excess[group].sum() - 1e-9:
                part[members] = np.asarray(group, dtype=np.intp)[sub]
                improved = True
                break
        if not improved:
            break
    return part


def _split(
    region: NDArray[np.intp],
    counts: NDArray[np.int64],
    load: NDArray[np.float64],
    *,
    a: NDArray[np.intp],
    b: NDArray[np.intp],
    length: NDArray[np.float64],
    cost: NDArray[np.float64],
    target: float,
    low: float,
    high: float,
    seed: int,
) -> NDArray[np.intp]:
    """METIS per region, then contiguity, balance moves and polish inside regions."""
    n = len(load)
    part = np.zeros(n, dtype=np.intp)
    offset = 0
    for r, kr in enumerate(counts):
        members = np.flatnonzero(region == r)
        local = np.full(n, -1, dtype=np.intp)
        local[members] = np.arange(members.size)
        inside = (region[a] == r) & (region[b] == r)
        sa, sb, sc = local[a[inside]], local[b[inside]], cost[inside]
        sub = _metis(int(kr), sa, sb, sc, load=load[members], seed=seed)
        sub = _fill_empty(sub, int(kr), sa, sb, sc, load=load[members], seed=seed)
        part[members] = sub + offset
        offset += max(int(kr), 1)
    part = np.unique(part, return_inverse=True)[1].ravel()
    same_region = region[a] == region[b]
    part = make_contiguous(part, a[same_region], b[same_region], length[same_region], load)
    part = np.unique(part, return_inverse=True)[1].ravel()
    part = refine(
        part,
        load,
        a[same_region],
        b[same_region],
        cost[same_region],
        target=target,
        low=low,
        high=high,
        polish=False,
    )
    part = repartition(
        part,
        load,
        a[same_region],
        b[same_region],
        cost=cost[same_region],
        length=length[same_region],
        target=target,
        low=low,
        high=high,
        seed=seed,
    )
    return refine(
        part,
        load,
        a[same_region],
        b[same_region],
        cost[same_region],
        target=target,
        low=low,
        high=high,
        polish=True,
    )
