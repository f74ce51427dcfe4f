"""Drawing inputs from the database or from files, and the drawing of a whole town."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import geopandas as gpd
import pandas as pd

from gis_grid.crs import CGCS2000
from gis_grid.districting import Plan, QualityReport, draw_grids, natural_lines, plan_quality
from gis_grid.errors import DataFileError
from gis_grid.lines import STREAM_CLASSES

if TYPE_CHECKING:
    from gis_grid.db.read import TownData
    from gis_grid.districting._inputs import By

__all__ = [
    "LINE_KINDS",
    "DrawInputs",
    "TownPlan",
    "draw_town",
    "inputs_from_files",
    "inputs_from_town",
]

#: Names accepted for ``lines`` (the command line's ``--lines``) -> natural line kind.
LINE_KINDS: Mapping[str, str] = {
    "rivers": "river",
    "streams": "stream",
    "roads": "road",
    "ridges": "ridge",
}

_STREAM_NAMES = {rank: name for name, rank in STREAM_CLASSES.items()}


@dataclass(frozen=True)
class DrawInputs:
    """What a town's grids are drawn from.

    Attributes
    ----------
    code, name
        The town's 9-digit code and name.
    villages
        ``vill_code``, ``name`` and polygon, EPSG:4490.
    households
        ``people`` and point, EPSG:4490.
    lines
        Natural lines with ``kind`` and ``barrier`` (see
        :func:`~gis_grid.districting.natural_lines`), EPSG:4490, possibly empty.
    current
        Grids per village in the current plan (the database's current version, or the files'
        ``grids.shp``); villages without grids are absent.
    source
        Where the inputs came from (``"database"`` or the folder).
    """

    code: str
    name: str
    villages: gpd.GeoDataFrame
    households: gpd.GeoDataFrame
    lines: gpd.GeoDataFrame
    current: Mapping[str, int]
    source: str


@dataclass(frozen=True)
class TownPlan:
    """A drawn plan of one town and its quality.

    Attributes
    ----------
    inputs
        What it was drawn from.
    plan
        The grids (:attr:`Plan.grids`) and what could not be met (:attr:`Plan.issues`).
    quality
        Per-grid measures and the summary.
    """

    inputs: DrawInputs
    plan: Plan
    quality: QualityReport


def _line_kinds(lines: Sequence[str]) -> list[str]:
    unknown = [name for name in lines if name not in LINE_KINDS]
    if unknown:
        msg = f"unknown line kind(s) {unknown}: use {', '.join(LINE_KINDS)} (or none)"
        raise DataFileError(msg)
    return [LINE_KINDS[name] for name in lines]


def _gather_lines(
    frames: Mapping[str, gpd.GeoDataFrame],
    lines: Sequence[str],
    *,
    dem: str | Path | None,
    bounds: tuple[float, float, float, float],
) -> gpd.GeoDataFrame:
    """Natural lines of the chosen kinds; streams keep their class (brooks are guides)."""
    kinds = _line_kinds(lines)

    def pick(kind: str) -> gpd.GeoDataFrame | None:
        frame = frames.get(kind)
        if kind not in kinds or frame is None or frame.empty:
            return None
        if kind == "stream" and "rank" in frame.columns:
            # rank 1-3 = river/creek/brook (gis_grid.lines): brooks guide, the others bar.
            return frame.assign(kind=frame["rank"].map(_STREAM_NAMES).fillna("stream"))
        return frame

    terrain = []
    if "ridge" in kinds and frames.get("ridge") is not None and len(frames["ridge"]):
        terrain.append(frames["ridge"].assign(kind="ridge"))
    if dem is not None:
        from gis_grid.terrain import terrain_lines

        terrain.append(terrain_lines(dem, bounds=bounds))
    return natural_lines(
        rivers=pick("river"),
        streams=pick("stream"),
        roads=pick("road"),
        terrain=(
            gpd.GeoDataFrame(pd.concat(terrain, ignore_index=True), crs=CGCS2000)
            if terrain
            else None
        ),
    )


def _bounds(frame: gpd.GeoDataFrame) -> tuple[float, float, float, float]:
    minx, miny, maxx, maxy = (float(v) for v in frame.to_crs(CGCS2000).total_bounds)
    return minx, miny, maxx, maxy


def inputs_from_town(
    data: TownData,
    *,
    lines: Sequence[str] = ("rivers", "streams", "roads"),
    dem: str | Path | None = None,
) -> DrawInputs:
    """Gather the drawing inputs of a town read from the database.

    Parameters
    ----------
    data
        A town read by :func:`~gis_grid.db.read.read_town` (its current grids give the
        current counts per village).
    lines
        Natural lines to follow: any of ``"rivers"``, ``"streams"``, ``"roads"``,
        ``"ridges"`` (rivers, streams other than brooks, and ridges are barriers; roads and
        brooks are guides).
    dem
        A DEM file: streams and ridgelines derived from it (:func:`gis_grid.terrain.terrain_lines`)
        are added as barriers. Its CRS is required and voids are refused.

    Returns
    -------
    DrawInputs

    Raises
    ------
    DataFileError
        An unknown line kind.
    gis_grid.terrain.TerrainError
        The DEM has no CRS, does not cover the town, or has voids.

    Examples
    --------
    >>> inputs = inputs_from_town(read_town(engine, "511703109"), lines=["roads"])
    ... # doctest: +SKIP
    """
    villages = data.villages.rename(columns={"code": "vill_code"})[
        ["vill_code", "name", "geometry"]
    ]
    current = data.grids.groupby("village_code").size()
    return DrawInputs(
        code=data.code,
        name=data.name,
        villages=villages.reset_index(drop=True),
        households=data.households[["people", "geometry"]],
        lines=_gather_lines(data.lines, lines, dem=dem, bounds=_bounds(data.town)),
        current={str(k): int(v) for k, v in current.items()},
        source="database",
    )


def inputs_from_files(
    directory: str | Path,
    town_code: str,
    *,
    lines: Sequence[str] = ("rivers", "streams", "roads"),
    dem: str | Path | None = None,
) -> DrawInputs:
    """Gather the drawing inputs of one town from a folder of sample layers.

    The layers are read and checked by :func:`gis_grid.sample.read_sample_layer` (CRS,
    encoding, coordinates, geometries, codes): ``towns.shp``, ``villages.shp``,
    ``households.shp``, and when present ``grids.shp`` (current counts), ``rivers.shp``,
    ``streams.shp``, ``roads.shp``.

    Parameters
    ----------
    directory
        The folder (as loaded by ``gis-grid load``).
    town_code
        9-digit code of the town to draw.
    lines, dem
        As for :func:`inputs_from_town`.

    Returns
    -------
    DrawInputs

    Raises
    ------
    DataFileError
        A required layer is missing or unreadable, or the town is not in ``towns.shp``.

    Examples
    --------
    >>> inputs = inputs_from_files("data/shapefiles", "511703109")  # doctest: +SKIP
    """
    from gis_grid.sample import read_sample_layer

    folder = Path(directory)
    if not folder.is_dir():
        msg = f"{folder}: not a directory of layers (towns.shp, villages.shp, households.shp ...)"
        raise DataFileError(msg)

    def required(name: str) -> gpd.GeoDataFrame:
        frame = read_sample_layer(folder, name)
        if frame is None:
            msg = f"{folder}: {name}.shp is missing; it is needed to draw grids"
            raise DataFileError(msg)
        return frame

    towns = required("towns")
    town = towns[towns["code"] == town_code]
    if town.empty:
        msg = (
            f"{folder / 'towns.shp'}: no town {town_code!r}; the towns are "
            f"{', '.join(towns['code'].astype(str))}"
        )
        raise DataFileError(msg)
    all_villages, all_households = required("villages"), required("households")
    villages = all_villages[all_villages["town_code"] == town_code]
    households = all_households[
        all_households["village_code"].astype(str).str.startswith(town_code)
    ]
    grids = read_sample_layer(folder, "grids")
    current: dict[str, int] = {}
    if grids is not None:
        counts = grids[grids["village_code"].astype(str).str.startswith(town_code)]
        current = {str(k): int(v) for k, v in counts.groupby("village_code").size().items()}
    frames = {
        kind: frame
        for name, kind in (("rivers", "river"), ("streams", "stream"), ("roads", "road"))
        if (frame := read_sample_layer(folder, name)) is not None
    }
    return DrawInputs(
        code=town_code,
        name=str(town["name"].iloc[0]),
        villages=villages.rename(columns={"code": "vill_code"})[
            ["vill_code", "name", "geometry"]
        ].reset_index(drop=True),
        households=households[["people", "geometry"]].reset_index(drop=True),
        lines=_gather_lines(frames, lines, dem=dem, bounds=_bounds(town)),
        current=current,
        source=str(folder),
    )


def draw_town(
    inputs: DrawInputs,
    *,
    by: By = "households",
    target: float | None = None,
    tolerance: float = 0.1,
    grids_per_village: Literal["auto", "current"] = "auto",
    seed: int = 0,
    on_infeasible: Literal["raise", "report"] = "raise",
    step: Callable[[str], None] | None = None,
) -> TownPlan:
    """Draw the grids of a town and measure the plan.

    Parameters
    ----------
    inputs
        From :func:`inputs_from_town` or :func:`inputs_from_files`.
    by
        Balance ``"households"`` or ``"people"``.
    target
        Load per grid; each village gets the grid count nearest ``load / target`` that fits
        the band. Without it, ``grids_per_village`` decides.
    tolerance
        Half-width of the band around the target (0.1 = ±10 %).
    grids_per_village
        Without ``target``: ``"auto"`` keeps the town's current number of grids and shares
        them out among the villages by load; ``"current"`` keeps each village's count.
    seed
        Seed of the drawing.
    on_infeasible
        ``"raise"`` an :class:`~gis_grid.districting.InfeasibleError` (its ``report`` says
        which villages cannot meet the band), or ``"report"``: draw anyway and list the
        failures in ``plan.issues``.
    step
        Called with the name of each step (for a progress display).

    Returns
    -------
    TownPlan

    Raises
    ------
    DistrictingError
        Villages with gaps or overlaps, households outside every village, no current grids
        to count from (give ``target``).
    InfeasibleError
        The band cannot be met (``on_infeasible="raise"``).

    Examples
    --------
    >>> drawn = draw_town(inputs, by="households", target=200)  # doctest: +SKIP
    >>> drawn.plan.grids[["grid_code", "load", "dev_pct"]].head(2)  # doctest: +SKIP
    """
    from gis_grid.districting import DistrictingError

    n_grids: int | dict[str, int] | None = None
    if target is None:
        if not inputs.current:
            msg = (
                f"town {inputs.code} has no current grids to count from: give a target load "
                "per grid (--target)"
            )
            raise DistrictingError(msg)
        if grids_per_village == "current":
            n_grids = dict(inputs.current)
            missing = sorted(set(inputs.villages["vill_code"]) - set(n_grids))
            if missing:
                msg = f"villages {missing[:5]} have no current grid: give a target (--target)"
                raise DistrictingError(msg)
        else:
            n_grids = sum(inputs.current.values())
    if step is not None:
        step(f"drawing {len(inputs.villages)} villages, {len(inputs.households)} households")
    plan = draw_grids(
        inputs.villages,
        inputs.households,
        lines=inputs.lines,
        target=target,
        by=by,
        tolerance=tolerance,
        n_grids=n_grids,
        seed=seed,
        on_infeasible=on_infeasible,
    )
    if step is not None:
        step(f"measuring {len(plan.grids)} grids")
    quality = plan_quality(
        plan,
        villages=inputs.villages,
        households=inputs.households,
        lines=inputs.lines,
        tolerance=tolerance,
    )
    return TownPlan(inputs=inputs, plan=plan, quality=quality)
