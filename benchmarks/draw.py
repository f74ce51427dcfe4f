"""Benchmark: drawing grids (gis_grid.districting) against GerryChain ReCom and PySAL spopt.

Cases, all measured in one run:

* **Providence, RI** (real data nobody here drew): 3,014 census blocks (178,040 people) into 15
  grids at ±5 % over the whole city, no nesting; the 15 council wards in force are the
  human-drawn reference. Every method partitions **the same census blocks** with the same
  target (population / 15) and band: ``draw_from_units`` (ours), GerryChain 1.0 ReCom (a
  ``recursive_tree_part`` seed, which already meets the band, then ``--recom-steps`` steps with
  pair reselection) and spopt max-p (floor of the band, coordinates as attributes; it picks
  its own number of regions) and AZP (15 regions, no population constraint), each in a child
  process killed after ``--spopt-seconds``. Also ``draw_grids`` from one point per block (its
  own Voronoi blocks: not the same units, shown for reference).
* **Sample towns** (Zhaojia, Heshi): ``draw_grids`` by households, counts as in the sample.
* **Synthetic town** (``--town-households`` 10,000, ``--town-grids`` 40, ``--town-villages`` 6)
  and **synthetic county** (300,000 / 1,500 / 120): villages are Voronoi cells, households
  are clustered in hamlets (1-6 people), roads join the hamlets (a minimum spanning tree of
  their Delaunay graph: guides), meandering rivers cross the area (barriers). ``draw_grids``
  with ``n_grids`` (split by village) and the same band.

Measures: seconds to a valid plan, max population deviation (%), mean Polsby-Popper (in
metres: UTM 19N for Providence, Gauss-Krüger for the rest), share of drawn boundary on
natural lines (synthetic and sample cases; every census-block edge is a road, river or other
feature, so the share is 1 by construction on Providence and not reported), valid (every grid
one polygon and within the band). Our drawing is repeated ``--repeat`` times (medians).

Prints one line per measurement and ends with one line of ``key=value`` pairs: ours unprefixed
(Providence, same units), the peers prefixed ``recom_`` and ``spopt_``, the synthetic cases
prefixed ``town_`` and ``county_``.

    .venv/bin/python benchmarks/draw.py --recom-steps 10000 --spopt-seconds 150
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import time
from functools import partial
from pathlib import Path
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import shapely
from scipy import sparse
from scipy.sparse.csgraph import minimum_spanning_tree
from scipy.spatial import Delaunay

from gis_grid.districting import draw_from_units, draw_grids, natural_lines, plan_quality
from gis_grid.io import read_layer

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "shapefiles"
PROVIDENCE = ROOT.parent / "shared" / "data" / "benchmarks" / "providence_blocks.zip"
#: UTM 19N: metres for Providence.
UTM = 26919
#: Gauss-Krüger CM 108E (Dachuan) for the synthetic cases.
GK = 4545

Result = dict[str, float]


def _fmt(values: Result) -> str:
    return " ".join(f"{k}={v:.4g}" for k, v in values.items())


# --- measures on Providence (same blocks for every method) ---------------------------------


def _measure(blocks: gpd.GeoDataFrame, part: np.ndarray, k: int, tol: float) -> Result:
    """Max deviation, mean Polsby-Popper and validity of a block -> district assignment."""
    labels, part = np.unique(part, return_inverse=True)
    pops = np.bincount(part, weights=blocks["TOTPOP"].to_numpy(), minlength=len(labels))
    ideal = float(blocks["TOTPOP"].sum()) / k
    dev = float(np.abs(pops / ideal - 1).max() * 100)
    merged = blocks.assign(part=part).dissolve(by="part", method="coverage").geometry.to_numpy()
    pp = float(np.mean(4 * np.pi * shapely.area(merged) / shapely.length(merged) ** 2))
    single = bool((shapely.get_type_id(merged) == 3).all())
    valid = single and len(labels) == k and dev <= tol * 100 + 1e-9
    return {"max_dev_pct": dev, "pp_mean": pp, "valid": float(valid), "n": float(len(labels))}


def _providence() -> gpd.GeoDataFrame:
    blocks = gpd.read_file(PROVIDENCE).to_crs(UTM)
    geoms = shapely.make_valid(shapely.set_precision(blocks.geometry.to_numpy(), 0.01))
    return blocks.set_geometry(geoms, crs=UTM).reset_index(drop=True)


def _ours_units(blocks: gpd.GeoDataFrame, k: int, tol: float, repeat: int) -> Result:
    times, plan = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        plan = draw_from_units(blocks, weight="TOTPOP", n_grids=k, tolerance=tol)
        times.append(time.perf_counter() - started)
    assert plan is not None and plan.assignment is not None
    out = {"seconds": statistics.median(times)} | _measure(
        blocks, plan.assignment.to_numpy(), k, tol
    )
    print(f"case=providence method=draw_from_units units=census-blocks {_fmt(out)}")
    return out


def _ours_points(blocks: gpd.GeoDataFrame, k: int, tol: float) -> Result:
    """``draw_grids`` from one point per block (its own Voronoi blocks; reference only)."""
    # The library's CRS checks accept China's zones only: translate the projected city into
    # the Gauss-Krüger zone of Dachuan (shapes and distances unchanged).
    minx, miny, _, _ = blocks.total_bounds
    moved = shapely.transform(
        blocks.geometry.to_numpy(), lambda xy: xy - [minx, miny] + [480_000.0, 3_440_000.0]
    )
    city = gpd.GeoDataFrame(
        {"vill_code": ["000000000001"]}, geometry=[shapely.coverage_union_all(moved)], crs=GK
    )
    homes = gpd.GeoDataFrame(
        {"people": blocks["TOTPOP"].to_numpy()},
        geometry=shapely.point_on_surface(moved),
        crs=GK,
    )
    started = time.perf_counter()
    plan = draw_grids(city, homes, n_grids=k, tolerance=tol, on_infeasible="report")
    seconds = time.perf_counter() - started
    q = plan_quality(plan, villages=city, households=homes, tolerance=tol).summary
    out = {
        "seconds": seconds,
        "max_dev_pct": float(q["max_dev_pct"]),
        "pp_mean": float(q["pp_mean"]),
        "valid": float(bool(q["valid"]) and plan.ok),
    }
    print(f"case=providence method=draw_grids units=own-voronoi-blocks {_fmt(out)}")
    return out


def _wards(blocks: gpd.GeoDataFrame, k: int, tol: float) -> None:
    out = _measure(blocks, blocks["WARD"].astype(str).to_numpy(), k, tol)
    print(f"case=providence method=council-wards(human) {_fmt(out)}")


def _recom(blocks: gpd.GeoDataFrame, k: int, tol: float, steps: int) -> Result | None:
    try:
        from gerrychain import Graph, MarkovChain, Partition, constraints, updaters
        from gerrychain.accept import always_accept
        from gerrychain.proposals import recom
        from gerrychain.tree import bipartition_tree, recursive_tree_part
    except ImportError:
        print("case=providence method=recom skipped=gerrychain-not-installed")
        return None
    started = time.perf_counter()
    graph = Graph.from_geodataframe(blocks[["TOTPOP", "geometry"]], ignore_errors=True)
    graph_seconds = time.perf_counter() - started
    ideal = float(blocks["TOTPOP"].sum()) / k
    seed = recursive_tree_part(graph, range(k), ideal, "TOTPOP", tol)
    tally = {"population": updaters.Tally("TOTPOP", alias="population")}
    initial = Partition(graph, seed, tally)
    to_valid = time.perf_counter() - started
    first = _measure(blocks, np.array([seed[n] for n in range(len(blocks))]), k, tol)
    print(f"case=providence method=recom-seed {_fmt({'seconds': to_valid} | first)}")
    # Pair reselection: a pair of districts with no balanced cut (a narrow neck) is dropped
    # and another drawn, instead of stalling (ANCHORS.md).
    proposal = partial(
        recom,
        pop_col="TOTPOP",
        pop_target=ideal,
        epsilon=tol,
        node_repeats=2,
        bipartition_tree_fn=partial(bipartition_tree, allow_pair_reselection=True),
    )
    chain = MarkovChain(
        proposal_fn=proposal,
        constraints=[constraints.within_percent_of_ideal_population(initial, tol)],
        acceptance_fn=always_accept,
        initial_partition=initial,
        total_steps=steps,
    )
    last = initial
    for state in chain:
        last = state
    seconds = time.perf_counter() - started
    final = _measure(blocks, np.array([last.assignment[n] for n in range(len(blocks))]), k, tol)
    out = {
        "seconds": to_valid,
        "graph_seconds": graph_seconds,
        "steps_seconds": seconds,
        "steps": float(steps),
    } | final
    print(
        f"case=providence method=recom {_fmt(out)} steps_per_s={steps / (seconds - to_valid):.1f}"
    )
    return out


def _spopt_child(kind: str, blocks: gpd.GeoDataFrame, k: int, floor: float, queue: Any) -> None:
    from libpysal.weights import Rook
    from spopt.region import AZP, MaxPHeuristic

    frame = blocks[["TOTPOP", "geometry"]].copy()
    centre = frame.geometry.representative_point()
    frame["x"], frame["y"] = centre.x / 1000.0, centre.y / 1000.0
    w = Rook.from_dataframe(frame, use_index=False, silence_warnings=True)
    if kind == "maxp":
        model: Any = MaxPHeuristic(frame, w, ["x", "y"], "TOTPOP", floor, top_n=2)
    else:
        model = AZP(frame, w, ["x", "y"], n_clusters=k, random_state=0)
    model.solve()
    queue.put(np.asarray(model.labels_))


def _spopt(blocks: gpd.GeoDataFrame, k: int, tol: float, cap: float) -> dict[str, Result]:
    ideal = float(blocks["TOTPOP"].sum()) / k
    out: dict[str, Result] = {}
    ctx = mp.get_context("fork")
    for kind in ("maxp", "azp"):
        queue = ctx.Queue()
        started = time.perf_counter()
        child = ctx.Process(target=_spopt_child, args=(kind, blocks, k, ideal * (1 - tol), queue))
        child.start()
        labels = None
        try:
            labels = queue.get(timeout=cap)
        except Exception:  # noqa: BLE001 - queue.Empty on timeout, or the child died
            labels = None
        seconds = time.perf_counter() - started
        if child.is_alive():
            child.terminate()  # only the child this benchmark started
        child.join()
        if labels is None:
            print(f"case=providence method=spopt-{kind} finished=0 capped_seconds={cap:.0f}")
            out[kind] = {"seconds": float("nan"), "finished": 0.0, "valid": 0.0}
            continue
        result = {"seconds": seconds, "finished": 1.0} | _measure(blocks, labels, k, tol)
        print(f"case=providence method=spopt-{kind} {_fmt(result)}")
        out[kind] = result
    return out


# --- synthetic and sample towns -------------------------------------------------------------


def make_area(
    households: int, n_villages: int, *, seed: int = 0, per_km2: float = 400.0
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Synthetic villages, households and natural lines (all labelled ``synthetic = "Y"``)."""
    rng = np.random.default_rng(seed)
    side = float(np.sqrt(households / per_km2) * 1000)
    x0, y0 = 480_000.0, 3_420_000.0
    frame = shapely.box(x0, y0, x0 + side, y0 + side)
    seeds = rng.uniform((x0, y0), (x0 + side, y0 + side), size=(n_villages, 2))
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=frame))
    cells = shapely.set_precision(shapely.intersection(cells, frame), 0.001)
    cells = cells[~shapely.is_empty(cells)]
    codes = [f"511703{100 + i // 50:03d}{200 + i % 50:03d}" for i in range(len(cells))]
    villages = gpd.GeoDataFrame({"vill_code": codes, "synthetic": "Y"}, geometry=cells, crs=GK)
    n_hamlets = max(4, households // 150)
    centres = rng.uniform((x0, y0), (x0 + side, y0 + side), size=(n_hamlets, 2))
    size = rng.pareto(1.5, n_hamlets) + 1
    spread = rng.uniform(40.0, 300.0, n_hamlets)
    clustered = int(0.85 * households)
    which = rng.choice(n_hamlets, clustered, p=size / size.sum())
    xy = np.empty((households, 2))
    xy[:clustered] = centres[which] + rng.normal(size=(clustered, 2)) * spread[which, None]
    xy[clustered:] = rng.uniform((x0, y0), (x0 + side, y0 + side), (households - clustered, 2))
    xy = np.clip(xy, [x0 + 1, y0 + 1], [x0 + side - 1, y0 + side - 1])
    homes = gpd.GeoDataFrame(
        {"people": rng.integers(1, 7, households), "synthetic": "Y"},
        geometry=shapely.points(xy),
        crs=GK,
    )
    tri = Delaunay(centres).simplices
    pairs = np.unique(np.sort(np.vstack([tri[:, [0, 1]], tri[:, [1, 2]], tri[:, [0, 2]]])), axis=0)
    dist = np.hypot(*(centres[pairs[:, 0]] - centres[pairs[:, 1]]).T)
    graph = sparse.coo_matrix((dist, (pairs[:, 0], pairs[:, 1])), shape=(n_hamlets,) * 2)
    tree = minimum_spanning_tree(graph).tocoo()
    ends = np.stack([centres[tree.row], centres[tree.col]], axis=1)
    roads: list[Any] = np.asarray(shapely.linestrings(ends), dtype=object).tolist()
    rivers: list[Any] = []
    t = np.linspace(0, 1, 60)
    for _ in range(max(1, int(side / 8000))):
        wave = 0.08 * side * np.sin(t * rng.uniform(4, 9) + rng.uniform(0, 6))
        y = rng.uniform(0.2, 0.8) * side + wave + np.cumsum(rng.normal(0, side / 400, t.size))
        rivers.append(shapely.LineString(np.column_stack([x0 - 10 + t * (side + 20), y0 + y])))
    lines = gpd.GeoDataFrame(
        {
            "kind": ["road"] * len(roads) + ["river"] * len(rivers),
            "barrier": [False] * len(roads) + [True] * len(rivers),
            "synthetic": "Y",
        },
        geometry=roads + rivers,
        crs=GK,
    )
    return villages, homes, lines


def _draw_case(
    name: str,
    villages: gpd.GeoDataFrame,
    homes: gpd.GeoDataFrame,
    lines: gpd.GeoDataFrame,
    *,
    k: int,
    tol: float,
    by: Literal["people", "households"],
    repeat: int,
) -> Result:
    times, plan = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        plan = draw_grids(
            villages, homes, lines=lines, n_grids=k, by=by, tolerance=tol, on_infeasible="report"
        )
        times.append(time.perf_counter() - started)
    assert plan is not None
    q = plan_quality(
        plan, villages=villages, households=homes, lines=lines, by=by, tolerance=tol
    ).summary
    out = {
        "seconds": statistics.median(times),
        "max_dev_pct": float(q["max_dev_pct"]),
        "pp_mean": float(q["pp_mean"]),
        "natural_share": float(q["natural_share"]),
        "crossings": float(q["crossings"]),
        "valid": float(bool(q["valid"]) and plan.ok),
    }
    print(
        f"case={name} villages={len(villages)} households={len(homes)} grids={k} "
        f"by={by} runs={repeat} {_fmt(out)}"
    )
    # What could not be met, village by village (the InfeasibleError report when the band
    # cannot be met at all; grids left outside the band otherwise).
    for row in plan.issues.head(20).itertuples(index=False):
        print(f"case={name} issue={row.kind} village={row.village} grid={row.grid} {row.detail}")
    return out


def _sample_towns(tol: float) -> None:
    villages = read_layer(SAMPLE / "villages.shp")
    homes = read_layer(SAMPLE / "households.shp")
    lines = natural_lines(
        rivers=read_layer(SAMPLE / "rivers.shp"),
        streams=read_layer(SAMPLE / "streams.shp"),
        roads=read_layer(SAMPLE / "roads.shp"),
    )
    for town, k in (("511703109", 26), ("511703129", 39)):
        _draw_case(
            f"sample-{town}",
            villages[villages["town_code"] == town],
            homes[homes["town_code"] == town],
            lines,
            k=k,
            tol=tol,
            by="households",
            repeat=1,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--tolerance", type=float, default=0.05)
    parser.add_argument("--repeat", type=int, default=3, help="runs of our drawing (median)")
    parser.add_argument("--recom-steps", type=int, default=10_000)
    parser.add_argument("--spopt-seconds", type=float, default=150.0, help="cap per spopt run")
    parser.add_argument("--town-households", type=int, default=10_000)
    parser.add_argument("--town-grids", type=int, default=40)
    parser.add_argument("--town-villages", type=int, default=6)
    parser.add_argument("--county-households", type=int, default=300_000)
    parser.add_argument("--county-grids", type=int, default=1_500)
    parser.add_argument("--county-villages", type=int, default=120)
    parser.add_argument(
        "--county-repeat", type=int, default=1, help="runs of the county drawing (median)"
    )
    parser.add_argument("--skip", nargs="*", default=[], help="any of: samples county spopt")
    args = parser.parse_args()
    tol, pairs = args.tolerance, []
    if "samples" not in args.skip:
        _sample_towns(tol)
    town = _draw_case(
        "synthetic-town",
        *make_area(args.town_households, args.town_villages),
        k=args.town_grids,
        tol=tol,
        by="people",
        repeat=args.repeat,
    )
    blocks = _providence()
    k = 15
    _wards(blocks, k, tol)
    _ours_points(blocks, k, tol)
    ours = _ours_units(blocks, k, tol, args.repeat)
    pairs += [f"{key}={ours[key]:.4g}" for key in ("seconds", "max_dev_pct", "pp_mean", "valid")]
    peer = _recom(blocks, k, tol, args.recom_steps) if args.recom_steps else None
    if peer:
        pairs += [f"recom_{key}={value:.4g}" for key, value in peer.items() if key != "n"]
        pairs.append(f"ratio_time_vs_recom_steps={peer['steps_seconds'] / ours['seconds']:.4g}")
    if "spopt" not in args.skip:
        for kind, result in _spopt(blocks, k, tol, args.spopt_seconds).items():
            prefix = "spopt_" if kind == "maxp" else "spopt_azp_"
            pairs += [f"{prefix}{key}={value:.4g}" for key, value in result.items() if key != "n"]
    pairs += [f"town_{key}={town[key]:.4g}" for key in ("seconds", "max_dev_pct", "pp_mean")]
    pairs += [f"town_natural_share={town['natural_share']:.4g}", f"town_valid={town['valid']:g}"]
    if "county" not in args.skip:
        county = _draw_case(
            "synthetic-county",
            *make_area(args.county_households, args.county_villages, seed=1),
            k=args.county_grids,
            tol=tol,
            by="people",
            repeat=args.county_repeat,
        )
        pairs += [f"county_{key}={county[key]:.4g}" for key in ("seconds", "max_dev_pct")]
        pairs.append(f"county_valid={county['valid']:g}")
    print(" ".join(pairs))


if __name__ == "__main__":
    main()
