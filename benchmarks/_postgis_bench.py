"""The PostGIS part of ``benchmarks/assign.py``: bulk, on-insert and re-assignment in the database.

Every measurement that writes runs in a transaction rolled back afterwards, so each repeat
starts from the same state (freshly loaded points, ``grid_code`` NULL, triggers off for the
load).
"""

from __future__ import annotations

import gc
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, make_url

from benchmarks import _database as db
from benchmarks._synthetic import changed_codes
from gis_grid.assign import (
    DatabaseAssignment,
    assign_in_database,
    assign_points,
    reassign_in_database,
)

__all__ = ["run_postgis"]

TABLE = "households"

# The peers: plain joins, with the planner's plan (it drives from the points) and with the
# grids forced to be the driving side (seq scans off: the grids are then read by an index and
# each probes the points' GiST index, as in the polygon-driven plan).
PLAIN_JOIN = (
    "INSERT INTO plain_join (id, code) SELECT p.id, g.code "
    "FROM households AS p JOIN grids AS g ON ST_Contains(g.geom, p.geom) "
    "WHERE g.valid_to IS NULL"
)

# The peer's full re-run after a redraw (ANCHORS.md: "34 s as a PostGIS UPDATE"): every point
# joined again with the current grids and its row rewritten, by the same plain join.
PLAIN_UPDATE = (
    "UPDATE households AS p SET grid_code = g.code "
    "FROM grids AS g WHERE g.valid_to IS NULL AND ST_Contains(g.geom, p.geom)"
)


def _timed(label: str, repeat: int, run: Callable[[], Any]) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        result = None
        gc.collect()
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    spread = " ".join(f"{t:.4f}" for t in times)
    print(f"{label}: median {median:.4f} s (runs: {spread})", flush=True)
    return median, result


def _rolled_back(engine: Engine, work: Callable[[Connection], Any]) -> Callable[[], Any]:
    def run() -> Any:
        with engine.connect() as conn:
            trans = conn.begin()
            try:
                return work(conn)
            finally:
                trans.rollback()

    return run


def _plain_join(*, grids_drive: bool) -> Callable[[Connection], int]:
    def work(conn: Connection) -> int:
        conn.exec_driver_sql("CREATE TEMP TABLE plain_join (id int, code char(15))")
        if grids_drive:
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        plan = conn.exec_driver_sql("EXPLAIN " + PLAIN_JOIN).all()
        outer = next(r[0] for r in plan if "Scan on" in r[0])
        driver = "grids" if "on grids" in outer else "households"
        if driver != ("grids" if grids_drive else "households"):  # pragma: no cover
            print(f"  warning: the planner drove the join from {driver}")
        return int(conn.exec_driver_sql(PLAIN_JOIN).rowcount)

    return work


def _codes(conn: Connection) -> pd.Series:
    rows = conn.execute(sa.text(f"SELECT code, grid_code FROM {TABLE}")).all()
    series = pd.Series([r[1] for r in rows], index=[r[0] for r in rows], dtype=object)
    return series.sort_index()


def _memory_codes(points: gpd.GeoDataFrame, grids: gpd.GeoDataFrame) -> tuple[pd.Series, Any]:
    result = assign_points(points, grids)
    codes = result.grid.astype(object).where(result.grid.notna(), None)
    codes.index = "P" + points["pid"].astype(str)
    return codes.sort_index(), result


def _redraw_in_database(
    conn: Connection, old: gpd.GeoDataFrame, new: gpd.GeoDataFrame
) -> list[str]:
    """Close the changed grids and insert their new versions; return the changed codes."""
    changed = db.platform_codes(pd.Series(changed_codes(old, new), dtype=object)).tolist()
    new_platform = db.to_platform(new)
    at = conn.scalar(sa.text("SELECT now()"))
    versions = conn.execute(
        sa.text(
            "UPDATE grids SET valid_to = :at WHERE code = ANY(:c) AND valid_to IS NULL "
            "RETURNING code, version"
        ),
        {"at": at, "c": changed},
    ).all()
    version_of: dict[str, int] = {str(code): int(version) for code, version in versions}
    redrawn = new_platform[new_platform["code"].isin(changed)]
    next_version = redrawn["code"].map(lambda c: version_of.get(c, 0) + 1)
    db.load_grid_version(conn, redrawn, version=next_version.to_numpy(), valid_from=at)
    return changed


def _after_redraw(
    engine: Engine,
    grids: gpd.GeoDataFrame,
    new_grids: gpd.GeoDataFrame,
    work: Callable[[Connection, list[str]], Any],
    *,
    read_codes: bool = True,
) -> tuple[float, Any, pd.Series]:
    """Redraw, then time ``work`` only (same transaction, rolled back after).

    Returns (seconds, what ``work`` returned, every point's ``grid_code`` afterwards: empty
    unless ``read_codes``).
    """
    with engine.connect() as conn:
        trans = conn.begin()
        try:
            codes = _redraw_in_database(conn, grids, new_grids)
            start = time.perf_counter()
            out = work(conn, codes)
            elapsed = time.perf_counter() - start
            return elapsed, out, _codes(conn) if read_codes else pd.Series(dtype=object)
        finally:
            trans.rollback()


def run_postgis(
    grids: gpd.GeoDataFrame,
    points: gpd.GeoDataFrame,
    new_grids: gpd.GeoDataFrame,
    *,
    repeat: int,
    trigger_rows: int,
) -> tuple[float, bool]:
    """Run the PostGIS measurements; return (ratio vs the faster plain join, all equal)."""
    raw = os.environ.get("GIS_GRID_DATABASE_URL")
    if not raw:
        msg = "GIS_GRID_DATABASE_URL is not set: the PostGIS part needs a server"
        raise SystemExit(msg)
    g4490, p4490 = db.to_platform(grids), db.to_platform(points)
    with db.scratch_database(make_url(raw)) as url:
        engine = sa.create_engine(url)
        start = time.perf_counter()
        with engine.begin() as conn:
            db.load_grids(conn, g4490)
            village = str(g4490["code"].iloc[0])[:12]
            db.load_points(conn, TABLE, p4490, village=village, triggers=False)
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")
        print(
            f"postgis: loaded {len(p4490):,} households and {len(g4490):,} grids (EPSG:4490) "
            f"into a scratch database in {time.perf_counter() - start:.1f} s",
            flush=True,
        )
        try:
            return _measure(engine, g4490, p4490, grids, new_grids, repeat, trigger_rows)
        finally:
            engine.dispose()


def _measure(  # noqa: PLR0915, PLR0917 - measurements in order, printed as they come
    engine: Engine,
    g4490: gpd.GeoDataFrame,
    p4490: gpd.GeoDataFrame,
    grids: gpd.GeoDataFrame,
    new_grids: gpd.GeoDataFrame,
    repeat: int,
    trigger_rows: int,
) -> tuple[float, bool]:
    t_points, n_joined = _timed(
        "postgis plain INSERT ... SELECT ... ST_Contains join, planner's plan (points drive)",
        repeat,
        _rolled_back(engine, _plain_join(grids_drive=False)),
    )
    t_grids, _ = _timed(
        "postgis plain INSERT ... SELECT ... ST_Contains join, grids drive (enable_seqscan off)",
        repeat,
        _rolled_back(engine, _plain_join(grids_drive=True)),
    )
    best, best_name = min((t_points, "points drive"), (t_grids, "grids drive"))
    print(f"  faster plain join: {best_name} ({n_joined:,} rows joined)", flush=True)

    def bulk(conn: Connection) -> tuple[DatabaseAssignment, pd.Series]:
        return assign_in_database(conn, TABLE), _codes(conn)

    t_bulk, (result, db_codes) = _timed(
        "postgis assign_in_database, fresh points (every grid_code written)",
        repeat,
        _rolled_back(engine, bulk),
    )
    with engine.begin() as conn:  # keep the assignment: the re-run and re-assignment start here
        assign_in_database(conn, TABLE)
    # The rolled-back bulk runs above left ~1M dead row versions each, and their index entries:
    # autovacuum would remove them in a live database, here it would at a random moment during
    # the measurements below. Vacuum once, so that the re-run, the full re-run and the
    # re-assignment all start from the table a live database would have.
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
            f"VACUUM ANALYZE {TABLE}"
        )
    t_rerun, _ = _timed(
        "postgis assign_in_database, re-run (nothing to write)",
        repeat,
        _rolled_back(engine, lambda conn: assign_in_database(conn, TABLE)),
    )
    mem_codes, mem = _memory_codes(p4490, g4490)
    bulk_ok = db_codes.equals(mem_codes) and result.unassigned["code"].sort_values().tolist() == (
        sorted("P" + p4490["pid"].iloc[mem.unassigned["row"]].astype(str))
    )
    distance_gap = float(
        np.max(
            np.abs(
                np.sort(result.unassigned["distance_m"].to_numpy())
                - np.sort(mem.unassigned["distance_m"].to_numpy())
            ),
            initial=0.0,
        )
    )
    print(
        f"check postgis bulk vs in-memory (EPSG:4490): {'equal' if bulk_ok else 'DIFFERENT'}; "
        f"{result.n_unassigned} unassigned, distances differ by <= {distance_gap:.2e} m",
        flush=True,
    )

    # --- trigger cost per inserted row
    sample = p4490.sample(min(trigger_rows, len(p4490)), random_state=1)
    params = {
        "codes": ("T" + sample["pid"].astype(str)).tolist(),
        "xs": sample.geometry.x.tolist(),
        "ys": sample.geometry.y.tolist(),
        "village": str(g4490["code"].iloc[0])[:12],
    }
    insert = sa.text(
        f"INSERT INTO {TABLE} (code, village_code, geom) "
        "SELECT c, :village, ST_SetSRID(ST_MakePoint(x, y), 4490) "
        "FROM unnest(CAST(:codes AS text[]), CAST(:xs AS float8[]), CAST(:ys AS float8[])) "
        "AS u(c, x, y)"
    )

    def insert_rows(*, trigger: bool) -> Callable[[Connection], int]:
        def work(conn: Connection) -> int:
            if not trigger:
                conn.exec_driver_sql(f"ALTER TABLE {TABLE} DISABLE TRIGGER assign_location")
            return int(conn.execute(insert, params).rowcount)

        return work

    n = len(sample)
    t_plain, _ = _timed(
        f"postgis insert {n:,} rows, trigger off",
        repeat,
        _rolled_back(engine, insert_rows(trigger=False)),
    )
    t_trig, _ = _timed(
        f"postgis insert {n:,} rows, trigger on",
        repeat,
        _rolled_back(engine, insert_rows(trigger=True)),
    )
    print(
        f"trigger cost per row: {1000 * (t_trig - t_plain) / n:.3f} ms "
        f"({1000 * t_trig / n:.3f} ms per row with, {1000 * t_plain / n:.3f} without)",
        flush=True,
    )

    # --- re-assignment after a redraw, against a full re-run
    def full(conn: Connection, codes: list[str]) -> DatabaseAssignment:
        return assign_in_database(conn, TABLE)

    def partial(conn: Connection, codes: list[str]) -> DatabaseAssignment:
        return reassign_in_database(conn, TABLE, codes)

    times_full, times_partial = [], []
    for _ in range(repeat):
        elapsed, full_res, full_codes = _after_redraw(engine, grids, new_grids, full)
        times_full.append(elapsed)
        elapsed, part_res, part_codes = _after_redraw(engine, grids, new_grids, partial)
        times_partial.append(elapsed)
    t_full, t_partial = statistics.median(times_full), statistics.median(times_partial)

    def plain_update(*, grids_drive: bool) -> Callable[[Connection, list[str]], None]:
        def work(conn: Connection, codes: list[str]) -> None:
            if grids_drive:
                conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
            conn.exec_driver_sql(PLAIN_UPDATE)

        return work

    peer_times: dict[str, list[float]] = {"points drive": [], "grids drive": []}
    for _ in range(repeat):
        for name, times in peer_times.items():
            work = plain_update(grids_drive=name == "grids drive")
            times.append(_after_redraw(engine, grids, new_grids, work, read_codes=False)[0])
    for name, times in peer_times.items():
        print(
            f"postgis peer full re-run: plain UPDATE ... FROM grids ... ST_Contains, {name}: "
            f"median {statistics.median(times):.4f} s "
            f"(runs: {' '.join(f'{t:.4f}' for t in times)})",
            flush=True,
        )
    t_peer, peer_name = min((statistics.median(t), name) for name, t in peer_times.items())
    print(
        f"postgis full re-run after {len(changed_codes(grids, new_grids))} grids redrawn: "
        f"median {t_full:.4f} s (runs: {' '.join(f'{t:.4f}' for t in times_full)})"
    )
    print(
        f"postgis reassign_in_database: median {t_partial:.4f} s "
        f"(runs: {' '.join(f'{t:.4f}' for t in times_partial)})"
    )
    new_mem_codes, _ = _memory_codes(p4490, db.to_platform(new_grids))
    reassign_ok = (
        part_codes.equals(full_codes)
        and full_codes.equals(new_mem_codes)
        and part_res.unassigned.equals(full_res.unassigned)
    )
    print(
        f"check postgis reassign vs full re-run vs in-memory: "
        f"{'equal' if reassign_ok else 'DIFFERENT'}; re-examined {part_res.examined:,} of "
        f"{full_res.examined:,} points, {part_res.changed:,} changed grid",
        flush=True,
    )
    print(f"ratio_postgis_reassign_vs_full={t_full / t_partial:.1f}")
    print(
        f"ratio_postgis_reassign_vs_plain_update={t_peer / t_partial:.1f} "
        f"(peer's full re-run, the faster plan: {peer_name})"
    )
    # ANCHORS.md's "full re-run as a PostGIS UPDATE" rewrites every row; ours writes only the
    # rows that change. Against a run that writes every row (the fresh-points bulk above):
    print(f"ratio_postgis_reassign_vs_full_update={t_bulk / t_partial:.1f} (every row written)")
    print(f"ratio_postgis_rerun_vs_plain_join={best / t_rerun:.2f} (re-run writes nothing)")
    print(f"trigger_ms_per_row={1000 * (t_trig - t_plain) / n:.3f}")
    return best / t_bulk, bulk_ok and reassign_ok
