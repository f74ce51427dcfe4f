"""Benchmark: drawing grids (gis_grid.districting) against GerryChain ReCom.

Cases: the two sample towns (Zhaojia, Heshi; grids balanced by households, counts as in the
sample) and Providence, RI (3,014 census blocks, 178,040 people, 15 wards). Providence is
projected to UTM 19N (EPSG:26919) and translated into the Gauss-Krüger zone of Dachuan
(EPSG:4545) so that the library's China-only CRS checks accept it; shapes and distances are
unchanged. Each block becomes one "household" point at its interior point carrying its people;
the city is one "village". The peer, GerryChain 1.0 ReCom (``recursive_tree_part`` seed,
±5 % population, ``--recom-steps`` steps), partitions the census blocks themselves.
spopt (max-p/AZP) is not run: it did not finish in 20 minutes on this case (ANCHORS.md) and
has no population ceiling.

Prints one line per measurement and ends with one line of ``key=value`` pairs.

    .venv/bin/python benchmarks/draw.py --recom-steps 10000
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

from gis_grid.districting import draw_grids, natural_lines, plan_quality
from gis_grid.io import read_layer

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "shapefiles"
PROVIDENCE = ROOT.parent / "shared" / "data" / "benchmarks" / "providence_blocks.zip"


def _sample_town(town: str, n: int) -> dict[str, float]:
    villages = read_layer(SAMPLE / "villages.shp")
    households = read_layer(SAMPLE / "households.shp")
    villages = villages[villages["town_code"] == town]
    households = households[households["town_code"] == town]
    lines = natural_lines(
        rivers=read_layer(SAMPLE / "rivers.shp"),
        streams=read_layer(SAMPLE / "streams.shp"),
        roads=read_layer(SAMPLE / "roads.shp"),
    )
    started = time.perf_counter()
    plan = draw_grids(villages, households, lines=lines, n_grids=n, by="households")
    seconds = time.perf_counter() - started
    q = plan_quality(plan, villages=villages, households=households, lines=lines).summary
    print(f"town={town} grids={n} seconds={seconds:.2f} {_pairs(q)}")
    return {"seconds": seconds, **{k: float(v) for k, v in q.items()}}


def _pairs(summary: dict[str, float | int | bool]) -> str:
    keys = ("max_dev_pct", "pp_mean", "natural_share", "crossings", "valid")
    return " ".join(
        f"{k}={summary[k]:.3f}" if isinstance(summary[k], float) else f"{k}={summary[k]}"
        for k in keys
    )


def _providence() -> gpd.GeoDataFrame:
    blocks = gpd.read_file(PROVIDENCE).to_crs(26919)
    minx, miny, _, _ = blocks.total_bounds
    moved = shapely.transform(
        blocks.geometry.to_numpy(), lambda xy: xy - [minx, miny] + [480_000.0, 3_440_000.0]
    )
    blocks = blocks.set_geometry(moved, crs=4545)
    blocks["geometry"] = shapely.make_valid(shapely.set_precision(moved, 0.01))
    return blocks.reset_index(drop=True)


def _pp(geoms: np.ndarray) -> float:
    return float(np.mean(4 * np.pi * shapely.area(geoms) / shapely.length(geoms) ** 2))


def _ours(blocks: gpd.GeoDataFrame, k: int) -> dict[str, float]:
    city = gpd.GeoDataFrame(
        {"vill_code": ["000000000001"]},
        geometry=[shapely.coverage_union_all(blocks.geometry.to_numpy())],
        crs=4545,
    )
    homes = gpd.GeoDataFrame(
        {"people": blocks["TOTPOP"].to_numpy()},
        geometry=blocks.geometry.representative_point().to_numpy(),
        crs=4545,
    )
    started = time.perf_counter()
    plan = draw_grids(city, homes, n_grids=k, tolerance=0.05, on_infeasible="report")
    seconds = time.perf_counter() - started
    q = plan_quality(plan, villages=city, households=homes).summary
    print(f"case=providence method=gis_grid seconds={seconds:.2f} {_pairs(q)}")
    return {
        "seconds": seconds,
        "max_dev_pct": float(q["max_dev_pct"]),
        "pp_mean": float(q["pp_mean"]),
        "valid": float(q["valid"]),
    }


def _recom(blocks: gpd.GeoDataFrame, k: int, steps: int) -> dict[str, float] | None:
    try:
        from functools import partial

        from gerrychain import Graph, MarkovChain, Partition, accept, constraints, updaters
        from gerrychain.proposals import recom
        from gerrychain.tree import recursive_tree_part
    except ImportError:
        print("case=providence method=recom skipped=gerrychain-not-installed")
        return None
    started = time.perf_counter()
    graph = Graph.from_geodataframe(blocks, ignore_errors=True)
    total = float(blocks["TOTPOP"].sum())
    ideal = total / k
    seed = recursive_tree_part(graph, range(k), ideal, "TOTPOP", 0.05)
    initial = Partition(graph, seed, {"population": updaters.Tally("TOTPOP", alias="population")})
    proposal = partial(recom, pop_col="TOTPOP", pop_target=ideal, epsilon=0.05, node_repeats=2)
    chain = MarkovChain(
        proposal=proposal,
        constraints=[constraints.within_percent_of_ideal_population(initial, 0.05)],
        accept=accept.always_accept,
        initial_state=initial,
        total_steps=steps,
    )
    last = initial
    for state in chain:
        last = state
    seconds = time.perf_counter() - started
    assignment = np.array([last.assignment[n] for n in range(len(blocks))])
    grids = blocks.assign(part=assignment).dissolve(by="part", method="coverage")
    pops = np.array(list(last["population"].values()))
    dev = float(np.abs(pops / ideal - 1).max() * 100)
    pp = _pp(grids.geometry.to_numpy())
    print(
        f"case=providence method=recom steps={steps} seconds={seconds:.2f} "
        f"max_dev_pct={dev:.3f} pp_mean={pp:.3f}"
    )
    return {"seconds": seconds, "max_dev_pct": dev, "pp_mean": pp, "valid": 1.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recom-steps", type=int, default=10_000)
    args = parser.parse_args()
    _sample_town("511703109", 26)
    _sample_town("511703129", 39)
    blocks = _providence()
    ours = _ours(blocks, 15)
    peer = _recom(blocks, 15, args.recom_steps)
    pairs = [f"{k}={v:.3f}" for k, v in ours.items()]
    if peer:
        pairs += [f"recom_{k}={v:.3f}" for k, v in peer.items()]
    pairs.append("spopt_skipped=1")
    print(" ".join(pairs))


if __name__ == "__main__":
    main()
