"""Benchmark: vector tiles and point lookups served over HTTP, against TiPg on the same table.

Usage (from the repository root)::

    .venv/bin/python -m benchmarks.serve --grids 5000 --households 1000000 --rounds 3 \
        --concurrency 16 --low-concurrency 4

Data: a district-sized synthetic sample (``benchmarks/_synthetic.py``: a clean Voronoi coverage
of 100 km x 100 km, ``--grids`` grids, ``--households`` clustered households with 1-6 people
each) loaded into a scratch database that the benchmark creates and drops on the server of
``GIS_GRID_DATABASE_URL`` (``benchmarks/_database.py``).

Servers, each one uvicorn process with one worker (``--workers 2`` loses TCP_NODELAY, see
ANCHORS.md), started by the benchmark on loopback ports:

* ours: ``uvicorn --factory api.app:create_app``; tiles ``/tiles/grids/{z}/{x}/{y}.pbf`` (with
  each grid's households and people counted per tile), lookups ``/api/v1/lookup``;
* the peer: TiPg (``tipg.main:app``, asyncpg), tiles
  ``/collections/public.grids/tiles/WebMercatorQuad/{z}/{x}/{y}``, and as the lookup peer its
  items endpoint with a 1e-6-degree ``bbox`` around the point (the grid under the point).

The client is this process (a second process on loopback): ``--concurrency`` requests in
flight (httpx, HTTP/1.1 keep-alive). Tiles are drawn where households are, evenly over zooms
12-16; every round uses fresh tiles, the same for both servers, and the server that goes
first alternates, so neither profits from the other's warm database cache. Each tile is
requested once per round ("cold": our in-process tile cache cannot help). The tile rounds are
repeated, on other fresh tiles, at each ``--low-concurrency`` (default 4): with 16 requests
always in flight the mean latency is 16 / rate, so a p95 under 50 ms would need over 320
tiles/s, which neither server reaches on 2 shared cores; the lower concurrency shows the
latency of a tile when the machine is not saturated. A last pass replays one round's tiles
(``warm``: what a map panning over the same area gets from our cache, which keeps tiles under
the database's tile data version) and is printed apart, with the login check alone. Medians
over rounds; p95 over all requests of a server at that concurrency.

Prints ``c<n>: tiles_per_s=... tipg_tiles_per_s=... p95_ms=... tipg_p95_ms=...`` per
concurrency and ends with ``tiles_per_s=<x> tipg_tiles_per_s=<y> p95_ms=<z>`` (cold tiles,
z12-16, at ``--concurrency``; ``p95_ms`` is ours).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import geopandas as gpd
import httpx
import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

if __package__ in (None, ""):  # run as a script: make `benchmarks` and `gis_grid` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._database import load_grids, scratch_database, to_platform
from benchmarks._synthetic import make_grids, make_points
from gis_grid.config import get_settings
from gis_grid.db.write import copy_frame
from gis_grid.security.accounts import create_user

ROOT = Path(__file__).resolve().parents[1]
#: The account our server's requests are made with (a login is required; TiPg has none).
BENCH_USER, BENCH_PASSWORD = "bench.analyst", "bench password 123"
ZOOMS = (12, 13, 14, 15, 16)


# --- data ------------------------------------------------------------------------------------


def load_district(url: URL, *, grids_n: int, households_n: int, seed: int) -> np.ndarray:
    """Load grids and households; return the households' lon/lat (for tiles and lookups)."""
    start = time.perf_counter()
    grids = make_grids(grids_n, seed=seed)
    points = make_points(households_n, grids, seed=seed + 1)
    joined = gpd.sjoin(points, grids[["code", "geometry"]], predicate="within", how="inner")
    joined = joined[~joined.index.duplicated()]
    grids4490 = to_platform(grids)
    codes = to_platform(joined[["code", "geometry"]])["code"]
    households = gpd.GeoDataFrame(
        {
            "code": "H" + joined["pid"].astype(str).to_numpy(),
            "village_code": codes.str.slice(0, 12).to_numpy(),
            "grid_code": codes.to_numpy(),
            "people": np.random.default_rng(seed).integers(1, 7, len(joined)),
            "synthetic": True,
        },
        geometry=joined.to_crs(4490).geometry.to_numpy(),
        crs=4490,
    )
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    with engine.begin() as conn:
        create_user(conn, BENCH_USER, BENCH_PASSWORD, "analyst")
        load_grids(conn, grids4490)
        conn.exec_driver_sql("ALTER TABLE households DISABLE TRIGGER USER")
        copy_frame(
            conn,
            "households",
            households,
            ["code", "village_code", "grid_code", "people", "synthetic"],
            geom_column="geom",
        )
        conn.exec_driver_sql("ALTER TABLE households ENABLE TRIGGER USER")
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE")
    engine.dispose()
    print(
        f"data: {len(grids4490)} grids, {len(households)} households, "
        f"{households['people'].sum()} people; loaded in {time.perf_counter() - start:.1f} s",
        flush=True,
    )
    return shapely_xy(households)


def shapely_xy(frame: gpd.GeoDataFrame) -> np.ndarray:
    """Lon/lat of a point frame as an (n, 2) array."""
    return np.column_stack([frame.geometry.x.to_numpy(), frame.geometry.y.to_numpy()])


def tiles_at(lonlat: np.ndarray, z: int) -> np.ndarray:
    """XYZ tile of each lon/lat at zoom ``z``."""
    n = 1 << z
    x = ((lonlat[:, 0] + 180) / 360 * n).astype(int)
    lat = np.radians(lonlat[:, 1])
    y = ((1 - np.arcsinh(np.tan(lat)) / math.pi) / 2 * n).astype(int)
    return np.column_stack([x, y])


def tile_sets(
    lonlat: np.ndarray, *, rounds: int, per_zoom: int, seed: int
) -> list[list[tuple[int, int, int]]]:
    """``rounds + 1`` disjoint lists of distinct tiles with households, ``per_zoom`` per zoom."""
    rng = np.random.default_rng(seed)
    sets: list[list[tuple[int, int, int]]] = [[] for _ in range(rounds + 1)]
    for z in ZOOMS:
        sample = lonlat[rng.choice(len(lonlat), size=min(len(lonlat), 200_000), replace=False)]
        unique = np.unique(tiles_at(sample, z), axis=0)
        rng.shuffle(unique)
        need = per_zoom * (rounds + 1)
        if len(unique) < need:  # low zooms hold few tiles: reuse them across rounds
            unique = np.resize(unique, (need, 2))
        for r in range(rounds + 1):
            part = unique[r * per_zoom : (r + 1) * per_zoom]
            sets[r] += [(z, int(x), int(y)) for x, y in part]
    for s in sets:
        rng.shuffle(s)
    return sets


# --- servers ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def server(args: Sequence[str], env: dict[str, str], probe: str) -> Iterator[str]:
    """Start a uvicorn server; yield its base URL once ``probe`` answers; stop it."""
    port = free_port()
    cmd = [sys.executable, "-m", "uvicorn", *args, "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--log-level", "warning", "--no-access-log"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env})  # noqa: S603
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                msg = f"server {args[0]} exited with {proc.returncode}"
                raise RuntimeError(msg)
            try:
                if httpx.get(base + probe, timeout=30).status_code < 500:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                msg = f"server {args[0]} did not answer {probe}"
                raise RuntimeError(msg)
            time.sleep(0.3)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


# --- load ------------------------------------------------------------------------------------


HEADERS: dict[str, dict[str, str]] = {}


async def _run(base: str, paths: Sequence[str], concurrency: int) -> tuple[float, list[float], int]:
    latencies = [math.nan] * len(paths)
    errors = 0
    queue = list(reversed(range(len(paths))))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = HEADERS.get(base, {})
    async with httpx.AsyncClient(
        base_url=base, limits=limits, timeout=60, headers=headers
    ) as client:

        async def worker() -> None:
            nonlocal errors
            while queue:
                i = queue.pop()
                t0 = time.perf_counter()
                response = await client.get(paths[i])
                await response.aread()
                latencies[i] = time.perf_counter() - t0
                if response.status_code not in {200, 204}:
                    errors += 1

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return len(paths) / elapsed, latencies, errors


def run(base: str, paths: Sequence[str], concurrency: int) -> tuple[float, list[float], int]:
    """Request every path once with ``concurrency`` in flight.

    Returns (requests per second, each request's latency in seconds in ``paths`` order, errors).
    """
    return asyncio.run(_run(base, paths, concurrency))


def p95_ms(latencies: Sequence[float]) -> float:
    return float(np.percentile(np.asarray(latencies) * 1000, 95)) if latencies else math.nan


def ours_tile(t: tuple[int, int, int]) -> str:
    return f"/tiles/grids/{t[0]}/{t[1]}/{t[2]}.pbf"


def tipg_tile(t: tuple[int, int, int]) -> str:
    return f"/collections/public.grids/tiles/WebMercatorQuad/{t[0]}/{t[1]}/{t[2]}"


def ours_lookup(p: np.ndarray) -> str:
    return f"/api/v1/lookup?lon={p[0]:.7f}&lat={p[1]:.7f}"


def tipg_lookup(p: np.ndarray) -> str:
    d = 1e-6
    return (
        f"/collections/public.grids/items?bbox={p[0] - d:.7f},{p[1] - d:.7f},"
        f"{p[0] + d:.7f},{p[1] + d:.7f}&limit=1&properties=code"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grids", type=int, default=5000)
    parser.add_argument("--households", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tiles-per-zoom", type=int, default=200)
    parser.add_argument("--lookups", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--low-concurrency",
        type=int,
        nargs="*",
        default=[4],
        help="Also measure tiles at these concurrencies (fresh tiles; p95 at 16 on 2 cores "
        "cannot be under 50 ms for either server); none: only --concurrency",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--ours-app",
        default="api.app:create_app",
        help="App factory served as ours (e.g. a wrapper trying other pool settings)",
    )
    args = parser.parse_args(argv)

    server_url = make_url(get_settings().database_url)
    with scratch_database(server_url) as url:
        lonlat = load_district(
            url, grids_n=args.grids, households_n=args.households, seed=args.seed
        )
        levels = [args.concurrency] + [c for c in args.low_concurrency if c != args.concurrency]
        sets = tile_sets(
            lonlat, rounds=args.rounds * len(levels), per_zoom=args.tiles_per_zoom, seed=args.seed
        )
        dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        ours_env = {"GIS_GRID_DATABASE_URL": url.render_as_string(hide_password=False)}
        tipg_env = {
            "DATABASE_URL": dsn,
            "TIPG_DB_TABLES": '["public.grids"]',
            "TIPG_DB_SPATIAL_EXTENT": "false",
            "TIPG_DB_DATETIME_EXTENT": "false",
            "TIPG_DB_MAX_CONN_SIZE": str(args.concurrency),
        }
        ours_args = ["--factory", args.ours_app]
        with (
            server(ours_args, ours_env, "/health") as ours,
            server(["tipg.main:app"], tipg_env, "/collections") as tipg,
        ):
            login = httpx.post(
                f"{ours}/api/v1/auth/login",
                json={"username": BENCH_USER, "password": BENCH_PASSWORD},
                timeout=60,
            )
            login.raise_for_status()
            HEADERS[ours] = {"Authorization": f"Bearer {login.json()['access_token']}"}
            # Warm up both (connections, catalogue, code paths) on tiles not measured.
            warm = [(z, x + 1, y) for z, x, y in sets[-1][:50]]
            run(ours, [ours_tile(t) for t in warm], args.concurrency)
            run(tipg, [tipg_tile(t) for t in warm], args.concurrency)

            results = {}
            for i, c in enumerate(levels):
                part = sets[i * args.rounds : (i + 1) * args.rounds]
                results[c] = measure_tiles(ours, tipg, part, c)
            measure_floor(ours, sets[0], args.concurrency)
            for c in levels:
                t_ours, t_tipg, p_ours, p_tipg = results[c]
                print(
                    f"c{c}: tiles_per_s={t_ours:.1f} tipg_tiles_per_s={t_tipg:.1f} "
                    f"p95_ms={p_ours:.1f} tipg_p95_ms={p_tipg:.1f}"
                )
            tiles_ours, tiles_tipg, p95_ours, _ = results[args.concurrency]
            measure_lookups(ours, tipg, lonlat, args)
        print(
            f"tiles_per_s={tiles_ours:.1f} tipg_tiles_per_s={tiles_tipg:.1f} p95_ms={p95_ours:.1f}"
        )


def measure_tiles(
    ours: str,
    tipg: str,
    sets: Sequence[list[tuple[int, int, int]]],
    concurrency: int,
) -> tuple[float, float, float, float]:
    """Cold tiles, round by round, at ``concurrency``: (ours/s, TiPg/s, our p95, TiPg p95).

    Rates are medians of the rounds, p95 over all requests of a server.
    """
    rates: dict[str, list[float]] = {"ours": [], "tipg": []}
    latency: dict[str, list[float]] = {"ours": [], "tipg": []}
    by_zoom: dict[int, list[float]] = {z: [] for z in ZOOMS}
    for r, tiles in enumerate(sets):
        order = [("ours", ours, ours_tile), ("tipg", tipg, tipg_tile)]
        if r % 2:
            order.reverse()
        for name, base, path in order:
            rate, lat, errors = run(base, [path(t) for t in tiles], concurrency)
            rates[name].append(rate)
            latency[name] += lat
            print(
                f"c{concurrency} round {r + 1} {name:5s} tiles z12-16: {rate:8.1f} tiles/s  "
                f"p95 {p95_ms(lat):6.1f} ms  errors {errors}",
                flush=True,
            )
            if name == "ours":
                for t, seconds in zip(tiles, lat, strict=True):
                    by_zoom[t[0]].append(seconds)
    for z in ZOOMS:
        print(f"c{concurrency} ours z{z}: p95 {p95_ms(by_zoom[z]):6.1f} ms (cold)")
    tiles_ours, tiles_tipg = statistics.median(rates["ours"]), statistics.median(rates["tipg"])
    p95_ours, p95_tipg = p95_ms(latency["ours"]), p95_ms(latency["tipg"])
    print(
        f"c{concurrency}: ratio_tiles={tiles_ours / tiles_tipg:.2f} ours {tiles_ours:.1f} "
        f"tiles/s p95 {p95_ours:.1f} ms; TiPg {tiles_tipg:.1f} tiles/s p95 {p95_tipg:.1f} ms",
        flush=True,
    )
    # Little's law: with `concurrency` requests always in flight, the mean latency is
    # concurrency / rate; a p95 under 50 ms needs at least concurrency / 0.05 s per second.
    need = concurrency / 0.050
    if max(tiles_ours, tiles_tipg) < need:
        print(
            f"c{concurrency}: p95 < 50 ms needs more than {need:.0f} tiles/s at this "
            f"concurrency (mean latency = {concurrency} / rate): neither server reaches it here",
            flush=True,
        )
    return tiles_ours, tiles_tipg, p95_ours, p95_tipg


def measure_floor(ours: str, tiles: Sequence[tuple[int, int, int]], concurrency: int) -> None:
    """Print ours on tiles already built (the cache) and the login check alone."""
    warm_rate, warm_lat, _ = run(ours, [ours_tile(t) for t in tiles], concurrency)
    print(
        f"c{concurrency} ours tiles warm (replay, kept tiles): {warm_rate:8.1f} tiles/s  "
        f"p95 {p95_ms(warm_lat):6.1f} ms"
    )
    # The floor every request of ours pays: the login check (a route doing nothing else).
    me_rate, me_lat, _ = run(ours, ["/api/v1/auth/me"] * len(tiles), concurrency)
    print(
        f"c{concurrency} ours login check alone (/api/v1/auth/me): {me_rate:8.1f} /s  "
        f"p95 {p95_ms(me_lat):6.1f} ms",
        flush=True,
    )


def measure_lookups(ours: str, tipg: str, lonlat: np.ndarray, args: argparse.Namespace) -> None:
    """Point lookups (ours) against TiPg's items with a tiny bbox around the same points."""
    rng = np.random.default_rng(args.seed + 2)
    points = lonlat[rng.choice(len(lonlat), size=args.lookups, replace=False)]
    rates: dict[str, list[float]] = {"ours": [], "tipg": []}
    latency: dict[str, list[float]] = {"ours": [], "tipg": []}
    for r in range(args.rounds):
        for name, base, path in (("ours", ours, ours_lookup), ("tipg", tipg, tipg_lookup)):
            rate, lat, errors = run(base, [path(p) for p in points], args.concurrency)
            rates[name].append(rate)
            latency[name] += lat
            print(
                f"round {r + 1} {name:5s} lookups: {rate:8.1f} /s  "
                f"p95 {p95_ms(lat):6.1f} ms  errors {errors}",
                flush=True,
            )
    print(
        f"lookups_per_s={statistics.median(rates['ours']):.1f} "
        f"tipg_bbox_items_per_s={statistics.median(rates['tipg']):.1f} "
        f"lookup_p95_ms={p95_ms(latency['ours']):.1f} "
        f"tipg_lookup_p95_ms={p95_ms(latency['tipg']):.1f}"
    )


if __name__ == "__main__":
    # A plain SIGTERM would skip the `finally` that drops the scratch database.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    main()
