"""Adjacency with shared lengths against libpysal's Rook contiguity (which gives no lengths).

Usage::

    .venv/bin/python -m benchmarks.adjacency --grids 10000
    .venv/bin/python -m benchmarks.adjacency --grids 100000 --repeat 3

Both run on the same synthetic clean Voronoi coverage (``benchmarks/_synthetic.make_grids``,
EPSG:4545). Prints one line per measurement (median of ``--repeat`` runs) and ends with
``ratio_vs_rook=<rook time / ours> identical=<true|false>``, where identical means both found
exactly the same neighbour pairs. Ours runs with ``min_shared_m=0`` (every shared segment counts,
as in Rook) and ``method="auto"`` (the default: the near-miss check included). libpysal is in
the optional ``bench`` extra.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks._synthetic import make_grids
from gis_grid.adjacency import build_adjacency


def _median_time(function: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def _rook(grids: Any) -> Any:
    from libpysal.weights import Rook

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # islands warnings etc.
        return Rook.from_dataframe(grids, use_index=False, ids=grids["code"].tolist())


def _rook_pairs(weights: Any) -> set[tuple[str, str]]:
    return {
        (min(a, b), max(a, b)) for a, neighbours in weights.neighbors.items() for b in neighbours
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grids", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=20210129)
    args = parser.parse_args()

    grids = make_grids(args.grids, seed=args.seed)
    n = len(grids)
    t_rook, weights = _median_time(lambda: _rook(grids), args.repeat)
    print(f"libpysal_rook grids={n} seconds={t_rook:.3f} lengths=no")
    t_ours, adjacency = _median_time(lambda: build_adjacency(grids, min_shared_m=0.0), args.repeat)
    pairs = adjacency.pairs
    print(
        f"gis_grid_build_adjacency grids={n} seconds={t_ours:.3f} pairs={len(pairs)} "
        f"median_shared_m={np.median(pairs['shared_m']):.1f} inexact={int((~pairs['exact']).sum())}"
    )
    t_exact, _ = _median_time(
        lambda: build_adjacency(grids, min_shared_m=0.0, method="exact"), args.repeat
    )
    print(f"gis_grid_build_adjacency_exact grids={n} seconds={t_exact:.3f}")

    ours = {(min(a, b), max(a, b)) for a, b in zip(pairs["a"], pairs["b"], strict=True)}
    theirs = _rook_pairs(weights)
    identical = ours == theirs
    if not identical:
        print(f"only_ours={len(ours - theirs)} only_rook={len(theirs - ours)}")
    print(f"ratio_vs_rook={t_rook / t_ours:.2f} identical={str(identical).lower()}")


if __name__ == "__main__":
    main()
