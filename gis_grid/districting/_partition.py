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
   the target falls by more than the cut grows.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pymetis
from scipy import sparse
from scipy.sparse.csgraph import connected_components

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


def _connected_without(unit: int, members: NDArray[np.intp], graph: sparse.csr_matrix) -> bool:
    rest = members[members != unit]
    if rest.size <= 1:
        return rest.size == 1
    sub = graph[rest][:, rest]
    return int(connected_components(sub, directed=False)[0]) == 1


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
                if _connected_without(unit, np.flatnonzero(part == src_part), graph):
                    part[unit] = q[i]
                    pw[src_part] -= load[unit]
                    pw[q[i]] += load[unit]
                    moved = True
                    break
            if moved:
                break
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
