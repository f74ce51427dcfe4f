"""Benchmark: province-scale batch on Dask (LocalCluster, 1 and W workers) vs one machine.

Usage (from the repository root)::

    .venv/bin/python benchmarks/scale.py --points 10000000 --workers 2

Two workloads, each run in the same process on the single-machine path and on a LocalCluster
with 1 and ``--workers`` worker processes (one thread each):

* **Assignment**: ``--points`` synthetic clustered points to ``--grids`` (100,000) Voronoi
  grids (``benchmarks/_synthetic.make_grids``). Points are generated partition by partition
  (``--partition-size`` each) inside the task that assigns them, never all at once: each
  partition is one tile of the grids' extent (tiles in serpentine order, so partitions are
  spatially compact), with hamlets (Pareto sizes, 50-800 m spreads) and a uniform
  background; 0.01 % of the points sit exactly on grid vertices (shared borders: the border
  rule) and 0.01 % lie outside every grid (the distance report). The single-machine path
  loops over the same partitions with :func:`gis_grid.assign.assign_points` (one index);
  the Dask path is :func:`gis_grid.scale.assign_partitioned` (one index per worker).
  Every partition's answer (grid code, distance and nearest grid of each point) is hashed;
  ``identical`` requires the same hashes on every path.
* **Drawing**: ``--towns`` (200) synthetic towns (``benchmarks/draw.make_area``:
  ``--town-households`` households, 3 villages, roads and rivers) drawn with
  :func:`gis_grid.plans.draw_town` in a loop, and with :func:`gis_grid.scale.draw_towns`
  (one task per town). ``identical`` also requires the same grids (exact geometry) and
  quality line per town.

Throughput counts generation + assignment + hashing of each partition (the generation is
about a fifth of it; the single-machine line shows the split), including the grid index
build (once, or once per worker). Peak RSS is sampled every 0.1 s over this process and all
its children (the LocalCluster's nannies and workers), per phase and for the whole run.

Prints one line per measurement and ends with
``points=<n> workers=<w> pts_per_s=<x> peak_rss_gib=<y> identical=<true|false>``
(``pts_per_s`` with ``--workers`` workers, median of ``--repeat`` runs).
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import math
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dask_geopandas  # noqa: F401 - registers the GeoDataFrame backend of dask
import geopandas as gpd
import numpy as np
import pandas as pd
import psutil
import shapely

if __package__ in (None, ""):  # run as a script: make `benchmarks` and `gis_grid` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._synthetic import EXTENT, make_grids
from benchmarks.draw import make_area
from gis_grid.assign import assign_points, build_grid_index
from gis_grid.plans import DrawInputs, TownPlan, draw_town
from gis_grid.scale import assign_partitioned, dask_client, draw_towns

GIB = 1024**3
ROOT = Path(__file__).resolve().parents[1]


# --- peak memory of this process and its children --------------------------------------------


class PeakRSS:
    """Sample the summed RSS of this process and all its descendants in a thread."""

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval
        self.peak = 0
        self.phase_peak = 0
        self._stop = threading.Event()
        self._me = psutil.Process()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> int:
        total = 0
        for proc in [self._me, *self._me.children(recursive=True)]:
            try:
                total += proc.memory_info().rss
            except psutil.Error:  # a worker exiting between listing and reading
                continue
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            rss = self._sample()
            self.peak = max(self.peak, rss)
            self.phase_peak = max(self.phase_peak, rss)
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def reset_phase(self) -> None:
        self.phase_peak = self._sample()

    def cpu_seconds(self) -> float:
        """CPU time (user + system) used so far by this process and its living children."""
        total = 0.0
        for proc in [self._me, *self._me.children(recursive=True)]:
            try:
                times = proc.cpu_times()
            except psutil.Error:
                continue
            total += times.user + times.system
        return total


# --- assignment workload ------------------------------------------------------------------


def tile_bounds(part: int, nparts: int) -> tuple[float, float, float, float]:
    """Bounds of partition ``part``'s tile: tiles in serpentine order over :data:`EXTENT`."""
    minx, miny, maxx, maxy = EXTENT
    cols = math.ceil(math.sqrt(nparts))
    rows = math.ceil(nparts / cols)
    row, col = divmod(part, cols)
    if row % 2:
        col = cols - 1 - col
    width, height = (maxx - minx) / cols, (maxy - miny) / rows
    x0, y0 = minx + col * width, miny + row * height
    return x0, y0, x0 + width, y0 + height


def make_part(
    part: int, *, nparts: int, n: int, seed: int, vertices: np.ndarray, crs: Any
) -> gpd.GeoDataFrame:
    """Points of one partition: clustered in its tile, a few on vertices and outside."""
    rng = np.random.default_rng([seed, part])
    lo = np.array(tile_bounds(part, nparts)[:2])
    hi = np.array(tile_bounds(part, nparts)[2:])
    n_hamlets = max(1, n // 400)
    centres = rng.uniform(lo, hi, size=(n_hamlets, 2))
    weights = rng.pareto(1.5, n_hamlets) + 1.0
    spread = rng.uniform(50.0, 800.0, n_hamlets)
    n_clustered = int(0.8 * n)
    which = rng.choice(n_hamlets, size=n_clustered, p=weights / weights.sum())
    xy = np.empty((n, 2))
    xy[:n_clustered] = centres[which] + rng.normal(size=(n_clustered, 2)) * spread[which, None]
    xy[n_clustered:] = rng.uniform(lo, hi, size=(n - n_clustered, 2))
    bad = ((xy < lo) | (xy > hi)).any(axis=1)
    xy[bad] = rng.uniform(lo, hi, size=(int(bad.sum()), 2))
    k = max(1, n // 10_000)
    in_tile = vertices[((vertices >= lo) & (vertices <= hi)).all(axis=1)]
    if len(in_tile):
        xy[:k] = in_tile[rng.integers(0, len(in_tile), k)]
    xy[k : 2 * k, 0] = EXTENT[0] - rng.uniform(1.0, 5_000.0, k)  # west of every grid
    start = part * n  # ids unique across partitions (all partitions have n points)
    return gpd.GeoDataFrame(
        {"pid": np.arange(start, start + n, dtype=np.int64), "synthetic": "Y"},
        geometry=shapely.points(xy),
        crs=crs,
        index=pd.RangeIndex(start, start + n),
    )


def generate(
    parts: pd.DataFrame, vertices: np.ndarray, *, nparts: int, n: int, seed: int, crs: Any
) -> gpd.GeoDataFrame:
    """The points of the partition numbered in ``parts`` (one row)."""
    part = int(parts["part"].iloc[0]) if len(parts) else 0
    return make_part(part, nparts=nparts, n=n, seed=seed, vertices=vertices, crs=crs)


def digest(frame: pd.DataFrame) -> str:
    """Hash of every point's id, grid, distance (to the mm) and nearest grid."""
    h = hashlib.sha1(usedforsecurity=False)
    h.update(frame["pid"].to_numpy(dtype=np.int64).tobytes())
    for name in ("grid", "nearest"):
        h.update(pd.util.hash_array(frame[name].astype(object).fillna("").to_numpy()).tobytes())
    h.update(np.nan_to_num(frame["distance_m"].to_numpy(dtype=float) * 1000, nan=-1).round())
    return h.hexdigest()


def summarise(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per partition: first id, points, unassigned points, digest."""
    return pd.DataFrame(
        {
            "first": [int(frame["pid"].iloc[0]) if len(frame) else -1],
            "n": [len(frame)],
            "unassigned": [int(frame["grid"].isna().sum())],
            "digest": [digest(frame)],
        }
    )


def single_machine(
    grids: gpd.GeoDataFrame, nparts: int, size: int, seed: int, vertices: np.ndarray
) -> tuple[float, pd.DataFrame, float, float]:
    """The single-machine path: one index, then each partition generated and assigned."""
    start = time.perf_counter()
    index = build_grid_index(grids)
    rows, gen_s, assign_s = [], 0.0, 0.0
    for part in range(nparts):
        t0 = time.perf_counter()
        points = make_part(part, nparts=nparts, n=size, seed=seed, vertices=vertices, crs=grids.crs)
        t1 = time.perf_counter()
        result = assign_points(points, grids, index=index)
        out = pd.DataFrame({"pid": points["pid"].to_numpy()}, index=points.index)
        out["grid"] = result.grid.astype(object).where(result.grid.notna(), None)
        un = result.unassigned
        out["distance_m"] = un["distance_m"].reindex(points.index)
        out["nearest"] = un["nearest"].reindex(points.index).astype(object)
        assign_s += time.perf_counter() - t1
        gen_s += t1 - t0
        rows.append(summarise(out))
        del points, result, out
    return time.perf_counter() - start, pd.concat(rows, ignore_index=True), gen_s, assign_s


def on_dask(
    grids: gpd.GeoDataFrame, nparts: int, size: int, seed: int, vertices: np.ndarray
) -> tuple[float, pd.DataFrame]:
    """The Dask path on the current client: generate, assign and hash per partition."""
    import dask
    import dask.dataframe as dd

    start = time.perf_counter()
    meta = make_part(0, nparts=1, n=1, seed=seed, vertices=vertices[:1], crs=grids.crs).iloc[:0]
    # One row per partition, expanded into its points by the task (never on the client); the
    # vertices are one key of the graph, sent once to each worker.
    parts = dd.from_pandas(pd.DataFrame({"part": np.arange(nparts)}), npartitions=nparts, sort=True)
    points = parts.map_partitions(
        generate,
        dask.delayed(vertices, name=f"bench-vertices-{nparts}", traverse=False),
        nparts=nparts,
        n=size,
        seed=seed,
        crs=grids.crs,
        meta=meta,
        align_dataframes=False,
        enforce_metadata=False,
    )
    located = assign_partitioned(points, grids, keep=["pid"])
    summary = located.map_partitions(summarise, meta=summarise(located._meta)).compute()
    return time.perf_counter() - start, summary.sort_values("first").reset_index(drop=True)


# --- drawing workload ---------------------------------------------------------------------


def town_inputs(i: int, households: int) -> DrawInputs:
    """Synthetic town ``i`` (its own seed)."""
    villages, homes, lines = make_area(households, 3, seed=1000 + i)
    villages["name"] = villages["vill_code"]
    return DrawInputs(
        code=f"9{i:08d}",
        name=f"synthetic town {i}",
        villages=villages[["vill_code", "name", "geometry"]],
        households=homes[["people", "geometry"]],
        lines=lines,
        current={},
        source=f"benchmarks/draw.py make_area({households}, 3, seed={1000 + i})",
    )


def plan_key(plan: TownPlan) -> tuple[str, bytes]:
    """What must be the same on every path: the quality line and the exact grids."""
    grids = plan.plan.grids.sort_values("grid_code")
    wkb = b"".join(shapely.to_wkb(np.asarray(grids.geometry, dtype=object)).tolist())
    return plan.quality.line(), hashlib.sha1(wkb, usedforsecurity=False).digest()


DRAW = {"target": 250.0, "tolerance": 0.1, "on_infeasible": "report", "seed": 0}


def draw_single(towns: int, households: int) -> tuple[float, dict[str, Any]]:
    start = time.perf_counter()
    out = {}
    for i in range(towns):
        plan = draw_town(town_inputs(i, households), **DRAW)  # type: ignore[arg-type]
        out[plan.inputs.code] = plan_key(plan)
    return time.perf_counter() - start, out


def draw_dask(towns: int, households: int) -> tuple[float, dict[str, Any]]:
    from functools import partial

    start = time.perf_counter()
    sources = {f"9{i:08d}": partial(town_inputs, i, households) for i in range(towns)}
    out = {}
    for result in draw_towns(sources, **DRAW):  # type: ignore[arg-type]
        if result.value is None:
            print(f"draw town={result.code} error={result.error}", flush=True)
            continue
        out[result.code] = plan_key(result.value)
    return time.perf_counter() - start, out


# --- driver -----------------------------------------------------------------------------------


def median_of(
    repeat: int, run: Callable[[], tuple[Any, ...]], rss: PeakRSS
) -> tuple[float, float, list[Any]]:
    """Median wall time and median CPU time (all processes) of ``repeat`` runs, and results."""
    times, cpu, results = [], [], []
    for _ in range(repeat):
        gc.collect()
        before = rss.cpu_seconds()
        result = run()
        cpu.append(rss.cpu_seconds() - before)
        times.append(result[0])
        results.append(result)
    return statistics.median(times), statistics.median(cpu), results


@contextmanager
def cluster(workers: int) -> Iterator[None]:
    with dask_client(workers=workers, threads_per_worker=1, processes=True, timeout=60):
        yield


def run_assign(args: argparse.Namespace, rss: PeakRSS) -> tuple[dict[int, float], bool]:
    """Assignment on one machine, then on LocalClusters; returns points/s per path."""
    size = min(args.partition_size, args.points)
    nparts = max(1, args.points // size)
    n_points = nparts * size
    t0 = time.perf_counter()
    grids = make_grids(args.grids, seed=args.seed)
    vertices = np.unique(shapely.get_coordinates(np.asarray(grids.geometry)), axis=0)
    print(f"grids made in {time.perf_counter() - t0:.1f} s", flush=True)
    reference = None
    identical = True
    rates: dict[int, float] = {}
    if not args.no_single:
        rss.reset_phase()
        seconds, cpu, runs = median_of(
            args.repeat, lambda: single_machine(grids, nparts, size, args.seed, vertices), rss
        )
        reference = runs[-1][1]
        gen_s, assign_s = runs[-1][2], runs[-1][3]
        rates[0] = n_points / seconds
        print(
            f"assign path=single points={n_points} seconds={seconds:.1f} "
            f"pts_per_s={rates[0]:.0f} (generate {gen_s:.1f} s, assign {assign_s:.1f} s) "
            f"unassigned={int(reference['unassigned'].sum())} cpu_s={cpu:.1f} "
            f"pts_per_cpu_s={n_points / cpu:.0f} "
            f"peak_rss_gib={rss.phase_peak / GIB:.2f}",
            flush=True,
        )
    for workers in args.worker_counts:
        with cluster(workers):
            rss.reset_phase()
            seconds, cpu, runs = median_of(
                args.repeat, lambda: on_dask(grids, nparts, size, args.seed, vertices), rss
            )
        if reference is None:
            reference = runs[-1][1]
        same = all(r[1]["digest"].tolist() == reference["digest"].tolist() for r in runs)
        identical &= same
        rates[workers] = n_points / seconds
        print(
            f"assign path=dask workers={workers} points={n_points} seconds={seconds:.1f} "
            f"pts_per_s={rates[workers]:.0f} per_worker={rates[workers] / workers:.0f} "
            f"speedup_vs_1={rates[workers] / rates[args.worker_counts[0]]:.2f} "
            f"cpu_s={cpu:.1f} pts_per_cpu_s={n_points / cpu:.0f} "
            f"same_as_single={str(same).lower()} peak_rss_gib={rss.phase_peak / GIB:.2f}",
            flush=True,
        )
    return rates, identical


def run_draw(args: argparse.Namespace, rss: PeakRSS) -> bool:
    """Drawing on one machine, then on LocalClusters; returns whether all plans agree."""
    reference = None
    identical = True
    if not args.no_single:
        rss.reset_phase()
        seconds, cpu, runs = median_of(
            args.repeat, lambda: draw_single(args.towns, args.town_households), rss
        )
        reference = runs[-1][1]
        print(
            f"draw path=single towns={args.towns} seconds={seconds:.1f} "
            f"towns_per_s={args.towns / seconds:.2f} cpu_s={cpu:.1f} "
            f"towns_per_cpu_s={args.towns / cpu:.2f} peak_rss_gib={rss.phase_peak / GIB:.2f}",
            flush=True,
        )
    rates: dict[int, float] = {}
    for workers in args.worker_counts:
        with cluster(workers):
            rss.reset_phase()
            seconds, cpu, runs = median_of(
                args.repeat, lambda: draw_dask(args.towns, args.town_households), rss
            )
        plans = runs[-1][1]
        if reference is None:
            reference = plans
        same = len(plans) == args.towns and all(r[1] == reference for r in runs)
        identical &= same
        rates[workers] = args.towns / seconds
        print(
            f"draw path=dask workers={workers} towns={args.towns} seconds={seconds:.1f} "
            f"towns_per_s={rates[workers]:.2f} per_worker={rates[workers] / workers:.2f} "
            f"speedup_vs_1={rates[workers] / rates[args.worker_counts[0]]:.2f} "
            f"cpu_s={cpu:.1f} towns_per_cpu_s={args.towns / cpu:.2f} "
            f"same_as_single={str(same).lower()} peak_rss_gib={rss.phase_peak / GIB:.2f}",
            flush=True,
        )
    return identical


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--points", type=int, default=10_000_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--grids", type=int, default=100_000)
    parser.add_argument("--partition-size", type=int, default=1_000_000)
    parser.add_argument("--towns", type=int, default=200)
    parser.add_argument("--town-households", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=1, help="runs per measurement (median)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-single", action="store_true", help="skip the single-machine runs")
    parser.add_argument(
        "--no-one-worker", action="store_true", help="skip the 1-worker cluster (long runs)"
    )
    args = parser.parse_args()
    args.worker_counts = [args.workers] if args.no_one_worker else sorted({1, args.workers})
    # Worker processes import the benchmark's helpers by module name.
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    size = min(args.partition_size, args.points)
    n_points = max(1, args.points // size) * size
    print(
        f"setup points={n_points} partition_size={size} grids={args.grids} "
        f"towns={args.towns}x{args.town_households} households workers={args.worker_counts} "
        f"cores={os.cpu_count()} load_avg={os.getloadavg()[0]:.2f} repeat={args.repeat}",
        flush=True,
    )
    with PeakRSS() as rss:
        rates, identical = run_assign(args, rss)
        gc.collect()
        if args.towns:
            identical &= run_draw(args, rss)
    print(
        f"points={n_points} workers={args.workers} pts_per_s={rates[args.workers]:.0f} "
        f"peak_rss_gib={rss.peak / GIB:.2f} identical={str(identical).lower()}",
        flush=True,
    )


if __name__ == "__main__":
    main()
