"""Checks on loaded layers: feature labels for messages, geometry validity, unique codes.

Features are named in messages as ``feature N`` with N counted from 1 in file order (the row a
person sees in QGIS's attribute table or a spreadsheet), followed by the value of the id/code
field when the layer has one, e.g. ``feature 12 (code=511703109001)``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import shapely

from gis_grid.errors import DataFileError, DuplicateCodeError, GeometryError

if TYPE_CHECKING:
    import geopandas as gpd
    from numpy.typing import NDArray

__all__ = ["check_geometries", "check_unique"]

#: Field names taken as the feature's id/code when the caller names none (compared in lower case).
_ID_NAMES = (
    "code",
    "grid_code",
    "gridcode",
    "village_code",
    "town_code",
    "adcode",
    "id",
    "gid",
    "fid",
    "objectid",
    "编码",
    "代码",
)
#: How many offending features a message spells out before summarising the rest.
_MAX_LISTED = 5
_GEOMETRY_TYPES = frozenset(
    {
        "Point",
        "MultiPoint",
        "LineString",
        "MultiLineString",
        "LinearRing",
        "Polygon",
        "MultiPolygon",
        "GeometryCollection",
    }
)
_COORDINATE = re.compile(r"\[\s*([-+0-9.eE]+)\s+([-+0-9.eE]+)")


def pick_id_field(columns: Iterable[object]) -> str | None:
    """Return the column that identifies features (a code or id), or ``None``."""
    names = [str(c) for c in columns]
    lower = {n.lower(): n for n in reversed(names)}
    for candidate in _ID_NAMES:
        if candidate in lower:
            return lower[candidate]
    for name in names:
        if name.lower().endswith(("code", "_id")):
            return name
    return None


def feature_labels(
    values: pd.Series | Sequence[object] | None,
    n: int,
    *,
    id_field: str | None,
    first: int = 1,
    kind: str = "feature",
) -> NDArray[np.str_]:
    """Return ``"feature N (code=...)"`` for every row, vectorised."""
    numbers = pd.Series(np.arange(first, first + n)).astype(str)
    labels = kind + " " + numbers
    if values is not None and id_field is not None:
        ids = pd.Series(np.asarray(values, dtype=object)).astype(str)
        labels = labels + " (" + id_field + "=" + ids + ")"
    return labels.to_numpy(dtype=str)


def _labels_for(data: gpd.GeoDataFrame | gpd.GeoSeries, id_field: str | None) -> NDArray[np.str_]:
    if id_field is None and hasattr(data, "columns"):
        id_field = pick_id_field(c for c in data.columns if c != data.geometry.name)
    values = None
    if id_field is not None:
        if not hasattr(data, "columns") or id_field not in data.columns:
            msg = f"id field {id_field!r} is not a column of the data"
            raise DataFileError(msg)
        values = data[id_field]
    return feature_labels(values, len(data), id_field=id_field)


def _first_coordinate(reason: str) -> str:
    match = _COORDINATE.search(reason)
    if match is None:
        return ""
    return f" at ({float(match.group(1)):.7f}, {float(match.group(2)):.7f})"


def check_geometries(
    data: gpd.GeoDataFrame | gpd.GeoSeries,
    *,
    source: str,
    id_field: str | None = None,
    geom_types: str | Iterable[str] | None = None,
) -> None:
    """Refuse null, empty, invalid or wrong-type geometries, naming the features.

    Parameters
    ----------
    data
        The layer to check.
    source
        File or layer name, for the message.
    id_field
        Column naming the features in the message; by default a ``code``/``id``-like column
        is used when there is one.
    geom_types
        Accepted geometry types (e.g. ``("Polygon", "MultiPolygon")``); any type if ``None``.

    Raises
    ------
    GeometryError
        Naming the source, the first offending features (number and id value), the reason
        (GEOS's validity reason, e.g. ``Self-intersection``) and the first bad coordinate.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> grids = gpd.GeoDataFrame(
    ...     {"code": ["A"]}, geometry=[shapely.box(107.4, 30.9, 107.5, 31.0)], crs=4490
    ... )
    >>> check_geometries(grids, source="grids.gpkg", geom_types="Polygon")
    """
    if isinstance(geom_types, str):
        geom_types = (geom_types,)
    allowed = None if geom_types is None else tuple(geom_types)
    if allowed is not None and (unknown := set(allowed) - _GEOMETRY_TYPES):
        msg = f"unknown geometry type(s) {sorted(unknown)}; use {sorted(_GEOMETRY_TYPES)}"
        raise ValueError(msg)
    series = data.geometry if hasattr(data, "columns") else data
    geoms = np.asarray(series, dtype=object)
    null = shapely.is_missing(geoms)
    empty = ~null & shapely.is_empty(geoms)
    invalid = ~null & ~empty & ~shapely.is_valid(geoms)
    types = series.geom_type.to_numpy(dtype=object)
    wrong = ~null & ~np.isin(types, allowed) if allowed is not None else np.zeros_like(null)
    bad = np.flatnonzero(null | empty | invalid | wrong)
    if bad.size == 0:
        return
    labels = _labels_for(data, id_field)
    shown = bad[:_MAX_LISTED]
    reasons = shapely.is_valid_reason(geoms[shown])
    details = []
    for i, reason in zip(shown, reasons, strict=True):  # only the few features reported
        if null[i]:
            why = "has no geometry"
        elif empty[i]:
            why = "has an empty geometry"
        elif invalid[i]:
            why = f"is invalid: {reason.split('[')[0]}{_first_coordinate(reason)}"
        else:
            why = f"is a {types[i]}, expected {' or '.join(allowed or ())}"
        details.append(f"{labels[i]} {why}")
    more = f"; and {bad.size - shown.size} more" if bad.size > shown.size else ""
    msg = (
        f"{source}: {bad.size} bad geometr{'y' if bad.size == 1 else 'ies'}: "
        + "; ".join(details)
        + more
        + ". Fix them in the source (e.g. shapely.make_valid or QGIS 'Fix geometries')."
    )
    raise GeometryError(msg)


def check_unique(data: gpd.GeoDataFrame | pd.DataFrame, field: str, *, source: str) -> None:
    """Refuse duplicate values in ``field`` (missing values are not compared).

    Parameters
    ----------
    data
        The layer or table.
    field
        The column that must be unique (a grid or village code).
    source
        File or layer name, for the message.

    Raises
    ------
    DataFileError
        If the field does not exist (the message lists the fields present).
    DuplicateCodeError
        Naming the first duplicated value and both (or all) features carrying it.

    Examples
    --------
    >>> import pandas as pd
    >>> check_unique(pd.DataFrame({"code": ["A", "B"]}), "code", source="grids.gpkg")
    """
    if field not in data.columns:
        msg = f"{source}: no field {field!r}; the fields are {[str(c) for c in data.columns]}"
        raise DataFileError(msg)
    values = data[field]
    dup = (values.duplicated(keep=False) & values.notna()).to_numpy()
    if not dup.any():
        return
    first = values.to_numpy()[np.flatnonzero(dup)[0]]
    holders = np.flatnonzero((values == first).to_numpy()) + 1
    listed = " and ".join(f"feature {n}" for n in holders[:_MAX_LISTED])
    if holders.size > _MAX_LISTED:
        listed += f" (and {holders.size - _MAX_LISTED} more)"
    n_values = values[dup].nunique()
    msg = (
        f"{source}: {field} must be unique, but {listed} "
        f"{'both' if holders.size == 2 else 'all'} have {field}={first!r} "
        f"({n_values} duplicated value{'s' if n_values > 1 else ''} in all). "
        "Give each feature its own code."
    )
    raise DuplicateCodeError(msg)
