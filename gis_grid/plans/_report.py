"""The plan and its quality as a GeoPackage or JSON report."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from gis_grid.errors import DataFileError

if TYPE_CHECKING:
    from gis_grid.plans._draw import TownPlan

__all__ = ["write_plan_report"]


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = json.loads(frame.to_json(orient="records", force_ascii=False))
    return out


def write_plan_report(
    path: str | Path, drawn: TownPlan, *, applied: Mapping[str, Any] | None = None
) -> Path:
    """Write a drawn plan and its quality to GeoPackage (``.gpkg``) or JSON (``.json``).

    Parameters
    ----------
    path
        ``.gpkg``: layer ``grids`` (the plan's polygons with every per-grid quality column)
        and attribute tables ``summary`` and ``issues``. ``.json``: ``town``, ``summary``,
        ``issues``, ``grids`` (no geometry) and ``applied``.
    drawn
        The plan (:func:`draw_town`).
    applied
        What writing it changed (e.g. :meth:`gis_grid.db.plans.AppliedPlan.to_dict`).

    Returns
    -------
    pathlib.Path

    Raises
    ------
    DataFileError
        An extension other than ``.gpkg`` or ``.json``.

    Examples
    --------
    >>> write_plan_report("out/zhaojia.gpkg", drawn)  # doctest: +SKIP
    """
    out = Path(path)
    # The plan's own columns (load, target, dev_pct ...) plus the measures only the quality has.
    extra = ["grid_code", *(c for c in drawn.quality.grids if c not in drawn.plan.grids)]
    grids = drawn.plan.grids.merge(drawn.quality.grids[extra], on="grid_code")
    summary = {"town": drawn.inputs.code, "name": drawn.inputs.name, **drawn.quality.summary}
    suffix = out.suffix.lower()
    if suffix == ".json":
        document = {
            "town": {"code": drawn.inputs.code, "name": drawn.inputs.name},
            "source": drawn.inputs.source,
            "by": drawn.plan.by,
            "tolerance": drawn.plan.tolerance,
            "summary": drawn.quality.summary,
            "issues": _records(drawn.plan.issues),
            "grids": _records(pd.DataFrame(grids.drop(columns="geometry"))),
            "applied": applied,
        }
        out.parent.mkdir(parents=True, exist_ok=True)
        # default=str: timestamps and numpy scalars in ``applied``.
        text = json.dumps(document, ensure_ascii=False, indent=2, default=str)
        out.write_text(text, encoding="utf-8")
        return out
    if suffix != ".gpkg":
        msg = f"{out}: write the report as .gpkg or .json"
        raise DataFileError(msg)
    import pyogrio

    from gis_grid.io import write_layer

    write_layer(grids, out, layer="grids")
    tables = {
        "summary": pd.DataFrame([summary]),
        "issues": drawn.plan.issues.astype(str),
    }
    for name, table in tables.items():
        # Attribute tables (no geometry) beside the grids, in the same file.
        pyogrio.write_dataframe(table, out, layer=name, driver="GPKG", append=False)
    return out
