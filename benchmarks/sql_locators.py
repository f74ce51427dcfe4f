"""Benchmark: a plain-SQL lookup raster against the plain PostGIS join, locating points in bulk.

Usage (from the repository root; needs ``GIS_GRID_DATABASE_URL``, as ``benchmarks/assign.py``)::

    .venv/bin/python -m benchmarks.sql_locators --points 1000000 --grids 10000 --repeat 3

The question it answers: can a statement in plain SQL, on a stock PostGIS (no C extension),
locate points at least twice as fast as the best plain ``INSERT ... SELECT ... ST_Contains``
join (issue 3's bulk target)? ``assign_in_database`` itself is GiST-based and no faster than
the join; this is the fastest plain-SQL locator found, measured against the same join on the
same data in the same run.

**The locator.** The in-memory engine's lookup raster (:func:`gis_grid.assign.build_grid_index`
at a fine cell size), stored in two levels as PostgreSQL arrays and subscripted per point in
one pass over the points table:

* ``cells`` (coarse cells, ``factor`` x ``factor`` fine cells each): the grid's position + 1
  where every fine cell of the block lies inside that one grid, 0 where all lie outside every
  grid, otherwise -(block number + 1);
* ``sub``: the fine cells of each such mixed block (grid position + 1, 0 outside, -1 where a
  boundary crosses the fine cell);
* ``cand``/``bounds``: for each mixed block, the ids of the grids its box intersects. Only a
  point in a fine cell crossed by a boundary is tested, against those grids (``_ST_Covers``,
  smallest code wins, as in ``assign_in_database``).

The arrays are concatenated with an empty array once per statement (``cells || '{}'``): a
subscript of a toasted array would detoast the whole array at every row.

**Output** is the same for both: ``(id, code)`` rows inserted into an empty temporary table.
The join leaves out points on a shared border (``ST_Contains``); the locator gives them the
smallest code (``ST_Covers``). ``identical`` compares the locator with the in-memory
``assign_points`` answer (every point), and with the join on every point the join assigns.

``--config FINE:FACTOR`` (repeatable; FINE in degrees) chooses the rasters; ``FACTOR`` 1 is a
one-level raster (every boundary cell tested). Prints one ``ratio_vs_plain_join=`` line per
configuration.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, make_url

if __package__ in (None, ""):  # run as a script: make `benchmarks` and `gis_grid` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import _database as db
from benchmarks._synthetic import make_grids, make_points
from gis_grid.assign import assign_points, build_grid_index
from gis_grid.assign._index import BORDER, OUTSIDE

PLAIN_JOIN = (
    "INSERT INTO located (id, code) SELECT p.id, g.code "
    "FROM households AS p JOIN grids AS g ON ST_Contains(g.geom, p.geom) "
    "WHERE g.valid_to IS NULL"
)


@dataclass(frozen=True)
class Lookup:
    """A two-level lookup raster, as arrays, and where it lies."""

    fine: float  # fine cell size (degrees)
    factor: int  # fine cells per coarse cell side
    origin: tuple[float, float]
    shape: tuple[int, int]  # (rows, columns) of coarse cells
    cells: np.ndarray  # int32, one per coarse cell
    sub: np.ndarray  # int32, factor**2 per mixed block
    bounds: np.ndarray  # int32, (first, last) 1-based into cand, per mixed block
    cand: np.ndarray  # int32 grid ids
    codes: np.ndarray  # int64: position -> grid code as a number (codes are 15 digits)
    fine_border: float  # share of fine cells crossed by a boundary

    def arrays(self) -> dict[str, tuple[np.ndarray, str]]:
        """The arrays to store, with their SQL types."""
        return {
            "cells": (self.cells, "int4"),
            "sub": (self.sub, "int4"),
            "bounds": (self.bounds, "int4"),
            "cand": (self.cand, "int4"),
            "codes": (self.codes, "int8"),
        }


def build_lookup(grids: gpd.GeoDataFrame, fine: float, factor: int) -> Lookup:
    """Build the two-level raster of the current grids (``id``, ``code``, geometry)."""
    index = build_grid_index(grids, grid_id="code", cell_size=fine, max_cells=250_000_000)
    raster = index.raster
    rows, cols = raster.shape
    ny, nx = -(-rows // factor), -(-cols // factor)
    padded = np.full((ny * factor, nx * factor), OUTSIDE, dtype=np.int32)
    padded[:rows, :cols] = raster.grid_of_cell.reshape(rows, cols)
    blocks = padded.reshape(ny, factor, nx, factor).transpose(0, 2, 1, 3).reshape(ny * nx, -1)
    first = blocks[:, 0]
    uniform = (blocks == first[:, None]).all(axis=1) & (first != BORDER)
    cells = np.where(uniform, first + 1, 0).astype(np.int64)  # OUTSIDE (-1) + 1 = 0
    mixed = np.flatnonzero(~uniform)
    cells[mixed] = -(np.arange(mixed.size) + 1)
    if cells.min(initial=0) < np.iinfo(np.int32).min:
        msg = f"{mixed.size:,} mixed blocks do not fit int4: choose a coarser raster"
        raise ValueError(msg)
    fine_values = blocks[mixed]
    sub = np.where(fine_values >= 0, fine_values + 1, np.where(fine_values == BORDER, -1, 0))
    iy, ix = np.divmod(mixed, nx)
    x0, y0 = raster.origin
    side = fine * factor
    boxes = shapely.box(x0 + ix * side, y0 + iy * side, x0 + (ix + 1) * side, y0 + (iy + 1) * side)
    block_i, grid_i = index.tree.query(boxes, predicate="intersects")
    order = np.lexsort((grid_i, block_i))
    block_i, grid_i = block_i[order], grid_i[order]
    counts = np.bincount(block_i, minlength=mixed.size)
    starts = np.cumsum(counts) - counts
    bounds = np.empty(2 * mixed.size, dtype=np.int32)
    bounds[0::2], bounds[1::2] = starts + 1, starts + counts
    ids = grids["id"].to_numpy()[index.rows]
    if any(str(code).startswith("0") for code in index.codes):
        msg = "a grid code starts with 0: its number would lose the digit"
        raise ValueError(msg)
    return Lookup(
        fine=fine,
        factor=factor,
        origin=(float(x0), float(y0)),
        shape=(ny, nx),
        cells=cells.astype(np.int32),
        sub=sub.astype(np.int32).ravel(),
        bounds=bounds,
        cand=ids[grid_i].astype(np.int32),
        codes=np.array([int(code) for code in index.codes], dtype=np.int64),
        fine_border=float((raster.grid_of_cell == BORDER).mean()),
    )


def store_lookup(conn: Connection, lookup: Lookup) -> int:
    """Store the arrays in table ``lookup`` (one row); return their stored size in bytes."""
    columns = lookup.arrays()
    conn.exec_driver_sql("DROP TABLE IF EXISTS lookup")
    conn.exec_driver_sql(
        "CREATE TABLE lookup ("
        + ", ".join(f"{name} {kind}[] NOT NULL" for name, (_, kind) in columns.items())
        + ")"
    )
    literals = {
        name: "{" + ",".join(map(str, values.tolist())) + "}"
        for name, (values, _) in columns.items()
    }
    casts = ", ".join(f"CAST(:{name} AS {kind}[])" for name, (_, kind) in columns.items())
    conn.execute(sa.text(f"INSERT INTO lookup VALUES ({casts})"), literals)
    sizes = " + ".join(f"pg_column_size({name})" for name in columns)
    return int(conn.exec_driver_sql(f"SELECT {sizes} FROM lookup").scalar_one())


def locate_sql(lookup: Lookup) -> str:
    """The locating statement: one pass over the points, subscripts, rare exact tests."""
    arr = {
        name: f"(SELECT {name} || '{{}}'::{kind}[] FROM lookup)"
        for name, (_, kind) in lookup.arrays().items()
    }
    (ny, nx), (x0, y0), f = lookup.shape, lookup.origin, lookup.factor
    inv = 1.0 / lookup.fine
    fx = f"least(greatest(floor((ST_X(t.geom) - {x0!r}) * {inv!r}), 0), {nx * f - 1})::int4"
    fy = f"least(greatest(floor((ST_Y(t.geom) - {y0!r}) * {inv!r}), 0), {ny * f - 1})::int4"
    # Every level is fenced with OFFSET 0: flattened, the planner would compute ST_X, the
    # subscripts and the exact test once per reference instead of once per row.
    return f"""
INSERT INTO located (id, code)
SELECT a.id, a.code FROM (
    SELECT s.id, CASE WHEN s.w > 0 THEN ({arr["codes"]}[s.w])::text ELSE (
        SELECT min(g.code) FROM unnest(
            {arr["cand"]}[{arr["bounds"]}[2 * s.o + 1] : {arr["bounds"]}[2 * s.o + 2]]
        ) AS c(id)
        JOIN grids AS g ON g.id = c.id
        WHERE _ST_Covers(g.geom, s.geom)
    ) END AS code
    FROM (
        SELECT k.id, k.geom, -k.v - 1 AS o, CASE WHEN k.v >= 0 THEN k.v
            ELSE {arr["sub"]}[(-k.v - 1) * {f * f} + (k.fy %% {f}) * {f} + k.fx %% {f} + 1]
            END AS w
        FROM (
            SELECT p.id, p.geom, p.fx, p.fy,
                {arr["cells"]}[(p.fy / {f}) * {nx} + p.fx / {f} + 1] AS v
            FROM (SELECT t.id, t.geom, {fx} AS fx, {fy} AS fy FROM households AS t OFFSET 0) AS p
            OFFSET 0
        ) AS k
        OFFSET 0
    ) AS s
    WHERE s.w <> 0
    OFFSET 0
) AS a
WHERE a.code IS NOT NULL
"""


def _run(engine: Engine, sql: str, *, grids_drive: bool) -> tuple[float, dict[int, str]]:
    """Time one statement into an empty temporary table (rolled back); return its rows."""
    with engine.connect() as conn:
        trans = conn.begin()
        try:
            if grids_drive:  # the faster plan of the join (benchmarks/assign.py: 3.3 s vs 19 s)
                conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
            conn.exec_driver_sql("CREATE TEMP TABLE located (id int, code char(15))")
            start = time.perf_counter()
            conn.exec_driver_sql(sql)
            elapsed = time.perf_counter() - start
            rows = conn.exec_driver_sql("SELECT id, min(code) FROM located GROUP BY id").all()
            return elapsed, {int(i): str(c) for i, c in rows}
        finally:
            trans.rollback()


def main(argv: list[str] | None = None) -> None:
    """Load the data into a scratch database, then time the join and each lookup raster."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--grids", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=20210129)
    parser.add_argument(
        "--config",
        action="append",
        help="FINE:FACTOR, fine cell in degrees and fine cells per coarse side "
        "(default: 0.0001:5 and 0.0005:1)",
    )
    args = parser.parse_args(argv)
    configs = [
        (float(fine), int(factor))
        for fine, factor in (c.split(":") for c in (args.config or ["0.0001:5", "0.0005:1"]))
    ]
    raw = os.environ.get("GIS_GRID_DATABASE_URL")
    if not raw:
        raise SystemExit("GIS_GRID_DATABASE_URL is not set: this benchmark needs a server")
    grids = make_grids(args.grids, seed=args.seed)
    points = make_points(args.points, grids, seed=args.seed + 1, on_vertices=1e-4, outside=1e-4)
    g4490, p4490 = db.to_platform(grids), db.to_platform(points)
    memory = assign_points(p4490, g4490)  # the answer, border rule included
    expected = pd.Series(
        np.asarray(memory.grid, dtype=object), index=("P" + p4490["pid"].astype(str)).to_numpy()
    ).dropna()
    with db.scratch_database(make_url(raw)) as url:
        engine = sa.create_engine(url)
        try:
            with engine.begin() as conn:
                db.load_grids(conn, g4490)
                village = str(g4490["code"].iloc[0])[:12]
                db.load_points(conn, "households", p4490, village=village, triggers=False)
                stored = gpd.read_postgis(
                    "SELECT id, code, geom FROM grids WHERE valid_to IS NULL", conn, crs=4490
                )
                point_code: dict[int, str] = {
                    int(i): str(c)
                    for i, c in conn.exec_driver_sql("SELECT id, code FROM households").all()
                }
            with engine.connect() as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
                    "VACUUM ANALYZE"
                )
            grids_4490 = stored.rename_geometry("geometry")
            _measure(engine, grids_4490, expected, point_code, configs, args.repeat)
        finally:
            engine.dispose()


def _measure(  # noqa: PLR0917 - one caller
    engine: Engine,
    grids: gpd.GeoDataFrame,
    expected: pd.Series,
    point_code: dict[int, str],
    configs: list[tuple[float, int]],
    repeat: int,
) -> None:
    """Time the join and each lookup raster, interleaved; check the answers; print ratios."""
    join_times: list[float] = []
    joined: dict[int, str] = {}
    for fine, factor in configs:
        start = time.perf_counter()
        lookup = build_lookup(grids, fine, factor)
        built = time.perf_counter() - start
        with engine.begin() as conn:
            size = store_lookup(conn, lookup)
        mixed = lookup.bounds.size // 2
        print(
            f"lookup {fine:g} deg x {factor}: {lookup.shape[1]} x {lookup.shape[0]} coarse "
            f"cells, {mixed:,} mixed ({mixed / lookup.cells.size:.1%}), fine cells crossed by "
            f"a boundary {lookup.fine_border:.1%}; built in {built:.1f} s, stored "
            f"{size / 1e6:.1f} MB",
            flush=True,
        )
        sql = locate_sql(lookup)
        ours: list[float] = []
        located: dict[int, str] = {}
        for _ in range(repeat):  # interleaved with the join: both see the same machine
            elapsed, joined = _run(engine, PLAIN_JOIN, grids_drive=True)
            join_times.append(elapsed)
            elapsed, located = _run(engine, sql, grids_drive=False)
            ours.append(elapsed)
        t_join, t_ours = statistics.median(join_times[-repeat:]), statistics.median(ours)
        answer = pd.Series({point_code[i]: code for i, code in located.items()}, dtype=object)
        both = pd.concat({"sql": answer, "memory": expected}, axis=1)
        differ = both[both["sql"].ne(both["memory"])]  # NaN on one side only differs too
        same_memory = differ.empty
        same_join = all(located.get(i) == code for i, code in joined.items())
        if not same_memory:
            print(f"  differences from in-memory: {len(differ):,}, e.g.\n{differ.head()}")
        print(
            f"  plain join, grids drive: median {t_join:.3f} s "
            f"(runs: {' '.join(f'{t:.3f}' for t in join_times[-repeat:])})\n"
            f"  lookup raster: median {t_ours:.3f} s (runs: {' '.join(f'{t:.3f}' for t in ours)})"
            f"\n  {len(located):,} located ({len(joined):,} by the join, which leaves out "
            f"border points); equal to in-memory: {same_memory}; to the join: {same_join}",
            flush=True,
        )
        print(
            f"ratio_vs_plain_join={t_join / t_ours:.2f} fine={fine:g} factor={factor} "
            f"identical={str(same_memory and same_join).lower()}",
            flush=True,
        )


if __name__ == "__main__":
    main()
