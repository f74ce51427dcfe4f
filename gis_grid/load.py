"""Load the sample layers (towns ... incidents, natural lines) into PostGIS in one transaction.

A load is a short chain (osmnx style): :func:`read_sample` reads and checks every layer
(CRS, encoding and coordinate range in :func:`gis_grid.io.read_layer`; geometries and unique
codes; field values), :func:`validate_sample` checks the layers against each other (codes
that refer to other layers, grids inside their village, points inside the towns, resident ID
numbers), and :func:`gis_grid.db.write.write_sample` writes everything and assigns points to
their grid and village in SQL, all inside one ``engine.begin()`` block. Any error raises a
:class:`~gis_grid.errors.GridError` naming the file, the feature and the field, and the
database is left exactly as it was.

The layers and their fields are listed in :data:`gis_grid.sample.LAYERS` (and in
``data/shapefiles/README.md``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import shapely
import sqlalchemy as sa

from gis_grid.codes import id_number_problems
from gis_grid.crs import gauss_kruger_crs
from gis_grid.errors import DataFileError
from gis_grid.sample import (
    LAYERS,
    LINE_LAYERS,
    Layer,
    fail_field,
    read_sample,
    read_sample_layer,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

__all__ = [
    "LAYERS",
    "LINE_LAYERS",
    "MAX_LINE_RANK",
    "TOLERANCE_M",
    "Layer",
    "LoadReport",
    "ProgressCallback",
    "load_sample",
    "read_sample",
    "read_sample_layer",
    "validate_sample",
]

#: Tolerance, in metres, of the "grid inside its village" and "point inside the towns" checks:
#: shared edges digitised twice or reprojected differ by millimetres to decimetres.
TOLERANCE_M = 1.0

#: Highest ``rank`` the database accepts (GSHHG river levels run 1-12).
MAX_LINE_RANK = 12


class ProgressCallback(Protocol):
    """Receives progress: the step being done, and steps done out of the total."""

    def __call__(self, step: str, done: int, total: int) -> None:
        """Report that ``step`` starts, after ``done`` of ``total`` steps."""


@dataclass
class LoadReport:
    """What a load did.

    Attributes
    ----------
    rows
        Rows written per table.
    unassigned
        Located rows per table that fall in no current grid (left with ``grid_code`` NULL).
    moved
        Located rows per table whose village, found spatially, differs from the file's.
    missing_layers
        Optional layer files that were not present.
    seconds
        Wall-clock time of the whole load.
    """

    rows: dict[str, int] = field(default_factory=dict)
    unassigned: dict[str, int] = field(default_factory=dict)
    moved: dict[str, int] = field(default_factory=dict)
    missing_layers: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _require_known(
    frames: Mapping[str, pd.DataFrame], name: str, column: str, target: str, field: str
) -> None:
    """Refuse values of ``frames[name][column]`` absent from ``frames[target]['code']``."""
    frame = frames[name]
    known = frames[target]["code"]
    present = frame[column].notna()
    bad = (present & ~frame[column].isin(known)).to_numpy()
    if bad.any():
        layer = LAYERS[name]
        source = pd.DataFrame({field: frame[column], **_key_column(layer, frame)})
        fail_field(layer, source, bad, field, f"names nothing in {LAYERS[target].file}")


def _key_column(layer: Layer, frame: pd.DataFrame) -> dict[str, pd.Series]:
    """Return the layer's key field (under its file name), to label features in messages."""
    if layer.key is None:
        return {}
    return {layer.key: frame[layer.fields[layer.key]]}


def _check_covered(
    name: str,
    frame: gpd.GeoDataFrame,
    wholes: gpd.GeoSeries,
    keys: pd.Series | None,
    why: str,
    *,
    predicate: Callable[[np.ndarray, np.ndarray], np.ndarray] = shapely.covered_by,
) -> None:
    """Refuse features of ``frame`` not covered by ``wholes.loc[keys]`` (all of it if None).

    Works in the Gauss-Krüger zone of the data so that :data:`TOLERANCE_M` is in metres;
    each whole is buffered once, then one vectorised ``predicate`` (``covered_by``, or
    ``intersects`` for lines that may leave their town) tests every feature. Features whose
    key is missing (a river piece outside every town) are not tested.
    """
    crs = gauss_kruger_crs(wholes.total_bounds)
    grown = shapely.buffer(np.asarray(wholes.to_crs(crs), dtype=object), TOLERANCE_M)
    shapely.prepare(grown)
    index = np.zeros(len(frame), dtype=np.intp) if keys is None else wholes.index.get_indexer(keys)
    tested = index >= 0
    parts = np.asarray(frame.geometry.to_crs(crs), dtype=object)
    bad = tested & ~predicate(parts, grown[np.where(tested, index, 0)])
    if bad.any():
        layer = LAYERS[name]
        labelled = pd.DataFrame({"geometry": np.full(len(frame), ""), **_key_column(layer, frame)})
        fail_field(layer, labelled, bad, "geometry", why)


def _validate_lines(frames: Mapping[str, gpd.GeoDataFrame], name: str) -> None:
    """Check one natural-lines layer: its town, that it reaches the town, its rank.

    A line only has to *reach* its town (lines run on across town borders); one without a
    town (a river piece outside every town) is not tested.
    """
    layer = LAYERS[name]
    frame = frames[name]
    rank_field = next(f for f, column in layer.fields.items() if column == "rank")
    bad = ((frame["rank"] < 1) | (frame["rank"] > MAX_LINE_RANK)).fillna(value=False)
    if bad.any():
        ranks = frame["rank"].astype(object)  # plain ints in the message, not np.int64(13)
        source = pd.DataFrame({rank_field: ranks, **_key_column(layer, frame)})
        why = f"must be a whole number from 1 (most important) to {MAX_LINE_RANK}"
        fail_field(layer, source, bad.to_numpy(), rank_field, why)
    if "town_code" not in frame.columns:
        return
    _require_known(frames, name, "town_code", "towns", "town_code")
    _check_covered(
        name, frame, frames["towns"].set_index("code").geometry, frame["town_code"],
        "the line does not reach its town (town_code); leave town_code empty for a line "
        "outside every town",
        predicate=shapely.intersects,
    )  # fmt: skip


def validate_sample(frames: Mapping[str, gpd.GeoDataFrame]) -> None:
    """Check the layers against each other.

    Parameters
    ----------
    frames
        As returned by :func:`read_sample`.

    Raises
    ------
    DataFileError
        Naming the file, feature and field: a code that refers to nothing (village -> town,
        grid -> village, point -> village, member -> grid, resident -> household, incident ->
        task type); a grid code that is not its village code + 3-digit number; a grid not
        inside its village or a village not inside its town (with :data:`TOLERANCE_M`); a
        located point outside the towns; an invalid resident ID number (GB 11643); a natural
        line whose town is not in ``towns.shp`` or that does not reach that town, or whose
        rank (river ``level``) is outside 1-12.
    """
    towns, villages, grids = frames["towns"], frames["villages"], frames["grids"]
    _require_known(frames, "villages", "town_code", "towns", "town_code")
    _require_known(frames, "grids", "village_code", "villages", "vill_code")

    layer = LAYERS["grids"]
    expected = grids["village_code"] + grids["seq"].astype("string").str.zfill(3)
    bad = (grids["code"] != expected).fillna(value=True).to_numpy()
    if bad.any():
        why = "is not the village code (vill_code) followed by the 3-digit number (seq)"
        fail_field(layer, grids.rename(columns={"code": "grid_code"}), bad, "grid_code", why)

    _check_covered(
        "villages", villages, towns.set_index("code").geometry, villages["town_code"],
        "the village polygon is not inside its town's polygon",
    )  # fmt: skip
    _check_covered(
        "grids", grids, villages.set_index("code").geometry, grids["village_code"],
        "the grid is not inside its village's polygon (every grid belongs to one village)",
    )  # fmt: skip
    all_towns = gpd.GeoSeries([towns.geometry.union_all()], crs=towns.crs)
    for name in ("households", "pollution", "hazards", "incidents"):
        if name in frames:
            _require_known(frames, name, "village_code", "villages", "vill_code")
            _check_covered(name, frames[name], all_towns, None, "the point is outside the towns")

    for name in LINE_LAYERS:
        if name in frames:
            _validate_lines(frames, name)

    if "members" in frames:
        _require_known(frames, "members", "grid_code", "grids", "grid_code")
    if "incidents" in frames and "task_types" in frames:
        _require_known(frames, "incidents", "task_type_code", "task_types", "type_code")
    if "residents" in frames:
        residents = frames["residents"]
        if "households" not in frames:
            msg = "residents.csv: needs households.shp in the same directory"
            raise DataFileError(msg)
        known = frames["households"]["code"]
        bad = (~residents["household_code"].isin(known)).to_numpy()
        if bad.any():
            source = residents.rename(columns={"household_code": "hh_id"})
            fail_field(LAYERS["residents"], source, bad, "hh_id", "names nothing in households.shp")
        if "id_number" in residents.columns:
            numbers = residents["id_number"]
            problems = id_number_problems(numbers.to_numpy(dtype=object))
            bad = pd.notna(problems) & numbers.notna().to_numpy()
            if bad.any():
                why = f"invalid resident ID number (GB 11643): {problems[bad][0]}"
                fail_field(LAYERS["residents"], residents, bad, "id_number", why)


def load_sample(
    directory: str | Path,
    engine: Engine,
    *,
    replace: bool = False,
    progress: ProgressCallback | None = None,
) -> LoadReport:
    """Read, check and load the sample layers in one transaction.

    Parameters
    ----------
    directory
        Folder of the sample layers (``data/shapefiles``).
    engine
        Engine on a migrated database (``gis-grid db upgrade``).
    replace
        Replace the data of the towns in the files (and everything in them) in the same
        transaction; without it, loading towns that are already there is an error. Natural
        lines replaced are those of the files' towns and those without a town lying inside
        the extent of the files' towns and lines, so loading the same files twice never
        duplicates a line.
    progress
        Called as ``progress(step, done, total)`` before each step.

    Returns
    -------
    LoadReport
        Rows written per table, points left outside every grid, timing.

    Raises
    ------
    GridError
        Any problem with the files (naming file, feature and field) or refused by the
        database; nothing is written then.

    Examples
    --------
    >>> report = load_sample("data/shapefiles", engine)  # doctest: +SKIP
    >>> report.rows["grids"]  # doctest: +SKIP
    64
    """
    from gis_grid.db.write import WRITE_STEPS, DatabaseRefusedError, write_sample

    start = time.perf_counter()
    total = len(LAYERS) + 1 + len(WRITE_STEPS)
    done = 0

    def step(name: str) -> None:
        nonlocal done
        if progress is not None:
            progress(name, done, total)
        done += 1

    frames = read_sample(directory, progress=lambda name: step(f"reading {LAYERS[name].file}"))
    step("checking layers against each other")
    validate_sample(frames)
    report = LoadReport(missing_layers=[n for n in LAYERS if n not in frames])
    try:
        with engine.begin() as conn:
            write_sample(conn, frames, report=report, replace=replace, step=step)
    except (sa.exc.DBAPIError, psycopg.Error) as exc:
        raise DatabaseRefusedError.from_dbapi(exc, LAYERS) from exc
    if progress is not None:
        progress("done", total, total)
    report.seconds = time.perf_counter() - start
    return report
