"""The sample layers: which file feeds which table, and how their values are read.

:data:`LAYERS` lists every sample file (``towns.shp`` ... ``task_types.csv``, and the natural
lines ``rivers.shp``, ``streams.shp``, ``roads.shp`` that all go to ``natural_lines``), its
required and optional fields and the table columns they go to; :func:`read_sample_layer` reads one
file with :func:`gis_grid.io.read_layer` (CRS, encoding and coordinate checks), checks its
geometries and unique codes, and converts each field (numbers, yes/no, dates, enums) with
vectorised pandas operations, refusing a value that does not convert with a message naming
the file, the feature and the field. Cross-layer checks and the database load are in
:mod:`gis_grid.load`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from io import StringIO
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from gis_grid.db import models as m
from gis_grid.errors import DataFileError, EncodingError
from gis_grid.io import check_geometries, check_unique, read_layer
from gis_grid.lines import ROAD_CLASSES, STREAM_CLASSES

__all__ = [
    "LAYERS",
    "LINES",
    "LINE_LAYERS",
    "POLYGONS",
    "Layer",
    "fail_field",
    "read_sample",
    "read_sample_layer",
]

POLYGONS = ("Polygon", "MultiPolygon")
LINES = ("LineString", "MultiLineString")
_LOCAL_TZ = "Asia/Shanghai"  # times without a zone in the files are Beijing time
_TRUE = {"1", "true", "t", "yes", "y", "是"}
_FALSE = {"0", "false", "f", "no", "n", "否"}
_GENDER = {
    "male": "male", "m": "male", "男": "male", "1": "male",
    "female": "female", "f": "female", "女": "female", "2": "female",
}  # fmt: skip
#: Admission states; "pending" (submitted, awaiting the district) is read as "applied".
_APPROVAL = {**{s.value: s.value for s in m.ApprovalState}, "pending": "applied"}

#: ``"int"``, ``"bool"``, ``"date"``, ``"datetime"``, ``"text"``; an enum; or accepted
#: spellings -> stored value (text, or whole numbers for a class read into a rank).
Converter = str | type[StrEnum] | Mapping[str, str] | Mapping[str, int]


@dataclass(frozen=True)
class Layer:
    """How one sample file maps onto one table.

    Attributes
    ----------
    name, file, table
        Layer name, file inside the sample directory, and target table.
    key
        Field identifying features in messages (and unique in the file), or ``None``.
    fields
        Required file field -> table column.
    optional
        Optional file field -> table column.
    types
        Table column -> converter: ``"int"``, ``"bool"``, ``"date"``, ``"datetime"``, an enum
        class, or a mapping of accepted spellings to stored values. Others stay text.
    geometry
        Accepted geometry types, or ``None`` for a table without geometry (CSV).
    geom_column
        Geometry column in the table.
    required
        Whether a load fails without this file.
    constants
        Table column -> value set on every row (the ``kind`` of a natural-lines layer).
    """

    name: str
    file: str
    table: str
    key: str | None
    fields: Mapping[str, str]
    optional: Mapping[str, str] = field(default_factory=dict)
    types: Mapping[str, Converter] = field(default_factory=dict)
    geometry: tuple[str, ...] | None = ("Point",)
    geom_column: str = "geom"
    required: bool = False
    constants: Mapping[str, str] = field(default_factory=dict)


_PROVENANCE = {"synthetic": "synthetic", "source": "source"}
_PROVENANCE_TYPES: dict[str, Converter] = {"synthetic": "bool"}
#: Optional fields of the natural-lines layers (rivers pieces outside every town: no town).
_LINE_OPTIONAL = {"name": "name", "town_code": "town_code", **_PROVENANCE}

#: The sample layers, in load order.
LAYERS: dict[str, Layer] = {
    layer.name: layer
    for layer in (
        Layer(
            "towns", "towns.shp", "towns", "town_code",
            {"town_code": "code", "town_name": "name", "county_cd": "district_code"},
            {"county_nm": "district_name", **_PROVENANCE},
            _PROVENANCE_TYPES, POLYGONS, required=True,
        ),
        Layer(
            "villages", "villages.shp", "villages", "vill_code",
            {"vill_code": "code", "vill_name": "name", "town_code": "town_code", "kind": "kind"},
            {"ur_code": "ur_code", **_PROVENANCE},
            {"kind": m.VillageKind, **_PROVENANCE_TYPES}, POLYGONS, required=True,
        ),
        Layer(
            "grids", "grids.shp", "grids", "grid_code",
            {"grid_code": "code", "vill_code": "village_code"},
            {"seq": "seq", "grid_name": "name", "valid_from": "valid_from", **_PROVENANCE},
            {"seq": "int", "valid_from": "datetime", **_PROVENANCE_TYPES}, POLYGONS,
            required=True,
        ),
        # Natural lines, one table: the barriers grids follow. Rank 1 = most important.
        Layer(
            "rivers", "rivers.shp", "natural_lines", "river_id",
            {"river_id": "code", "level": "rank"}, _LINE_OPTIONAL,
            {"rank": "int", **_PROVENANCE_TYPES}, LINES, constants={"kind": "river"},
        ),
        Layer(
            "streams", "streams.shp", "natural_lines", "strm_id",
            {"strm_id": "code", "kind": "rank"}, _LINE_OPTIONAL,
            {"rank": STREAM_CLASSES, **_PROVENANCE_TYPES}, LINES, constants={"kind": "stream"},
        ),
        Layer(
            "roads", "roads.shp", "natural_lines", "road_id",
            {"road_id": "code", "kind": "rank"}, _LINE_OPTIONAL,
            {"rank": ROAD_CLASSES, **_PROVENANCE_TYPES}, LINES, constants={"kind": "road"},
        ),
        Layer(
            "task_types", "task_types.csv", "task_types", "code",
            {"code": "code", "name": "name", "state": "approval_state"},
            {
                "applied": "applied_on", "reviewed": "reviewed_on", "decided": "decided_on",
                "decided_by": "decided_by", "sla_days": "sla_days", **_PROVENANCE,
            },
            {
                "approval_state": _APPROVAL, "applied_on": "date", "reviewed_on": "date",
                "decided_on": "date", "sla_days": "int", **_PROVENANCE_TYPES,
            },
            None,
        ),
        Layer(
            "members", "members.shp", "members", "member_id",
            {"member_id": "code", "name": "name", "grid_code": "grid_code"},
            {
                "gender": "gender", "birth_date": "birth_date", "education": "education",
                "party": "party_member", "status": "status", "phone": "phone", **_PROVENANCE,
            },
            {
                "gender": _GENDER, "birth_date": "date", "party_member": "bool",
                "status": m.MemberStatus, **_PROVENANCE_TYPES,
            },
            geom_column="home",
        ),
        Layer(
            "households", "households.shp", "households", "hh_id",
            {"hh_id": "code", "vill_code": "village_code", "people": "people"},
            {"address": "address", **_PROVENANCE},
            {"people": "int", **_PROVENANCE_TYPES},
        ),
        Layer(
            "residents", "residents.csv", "residents", None,
            {"hh_id": "household_code", "name": "name"},
            {
                "id_number": "id_number", "phone": "phone", "gender": "gender",
                "birth_date": "birth_date", "relation": "relation", "whereabouts": "whereabouts",
                **_PROVENANCE,
            },
            {"gender": _GENDER, "birth_date": "date", **_PROVENANCE_TYPES},
            None,
        ),
        Layer(
            "pollution", "pollution.shp", "pollution_points", "pp_id",
            {"pp_id": "code", "name": "name", "vill_code": "village_code"},
            {"kind": "kind", **_PROVENANCE}, _PROVENANCE_TYPES,
        ),
        Layer(
            "hazards", "hazards.shp", "hazards", "hz_id",
            {"hz_id": "code", "name": "name", "vill_code": "village_code"},
            {"kind": "kind", "level": "level", **_PROVENANCE},
            {"level": "int", **_PROVENANCE_TYPES},
        ),
        Layer(
            "incidents", "incidents.shp", "incidents", "inc_id",
            {"inc_id": "code", "type_code": "task_type_code", "title": "title",
             "reported": "reported_at", "vill_code": "village_code"},
            {"status": "status", "dispatched": "dispatched_at", "deadline": "deadline",
             **_PROVENANCE},
            {"status": m.IncidentStatus, "reported_at": "datetime", "dispatched_at": "datetime",
             "deadline": "datetime", **_PROVENANCE_TYPES},
        ),
    )
}  # fmt: skip

#: The layers that feed ``natural_lines``.
LINE_LAYERS = tuple(name for name, layer in LAYERS.items() if layer.table == "natural_lines")


def _labels(frame: pd.DataFrame, rows: np.ndarray, key: str | None, *, header: int = 0) -> str:
    """``feature 3 (vill_code=511703109201)`` for the first of ``rows`` (1-based)."""
    i = int(rows[0])
    kind = "line" if header else "feature"
    label = f"{kind} {i + 1 + header}"
    if key is not None and key in frame.columns:
        label += f" ({key}={frame[key].iloc[i]!r})"
    more = f" (and {rows.size - 1} more)" if rows.size > 1 else ""
    return label + more


def fail_field(layer: Layer, frame: pd.DataFrame, bad: np.ndarray, field: str, why: str) -> None:
    """Raise a DataFileError naming the file, the first bad feature and the field."""
    rows = np.flatnonzero(bad)
    header = 1 if layer.geometry is None else 0  # CSV: line numbers, header on line 1
    where = _labels(frame, rows, layer.key, header=header)
    value = frame[field].iloc[int(rows[0])] if field in frame.columns else None
    msg = f"{layer.file}: {where}, field {field}={value!r}: {why}"
    raise DataFileError(msg)


def _convert(layer: Layer, frame: pd.DataFrame, src: str, kind: Converter) -> pd.Series:
    """Convert one file column, vectorised; refuse values that do not convert."""
    raw = frame[src]
    present = raw.notna() & (raw.astype("string").str.strip() != "")
    if kind == "int":
        out = pd.to_numeric(raw.where(present), errors="coerce")
        bad = present & (out.isna() | (out % 1 != 0))
        if bad.any():
            fail_field(layer, frame, bad.to_numpy(), src, "not a whole number")
        return out.astype("Int64")
    if kind == "bool":
        text = raw.astype("string").str.strip().str.lower()
        out = pd.Series(pd.NA, index=raw.index, dtype="boolean")
        out[text.isin(_TRUE).fillna(value=False)] = True
        out[text.isin(_FALSE).fillna(value=False)] = False
        bad = present & out.isna()
        if bad.any():
            fail_field(
                layer, frame, bad.to_numpy(), src, "not a yes/no value (1/0, true/false, 是/否)"
            )
        return out
    if kind in ("date", "datetime"):
        values = pd.to_datetime(raw.where(present), errors="coerce", format="mixed")
        bad = present & values.isna()
        if bad.any():
            fail_field(layer, frame, bad.to_numpy(), src, "not a date (use YYYY-MM-DD)")
        if kind == "date":
            return values.dt.date.where(values.notna(), None)
        if values.dt.tz is None:
            values = values.dt.tz_localize(_LOCAL_TZ)
        return values
    if isinstance(kind, (Mapping, type)):
        allowed = kind if isinstance(kind, Mapping) else {e.value: e.value for e in kind}
        return _convert_choice(layer, frame, src, present, allowed)
    return raw.astype("string").str.strip().where(present, None)


def _convert_choice(
    layer: Layer,
    frame: pd.DataFrame,
    src: str,
    present: pd.Series,
    allowed: Mapping[str, str] | Mapping[str, int],
) -> pd.Series:
    """Map accepted spellings (any case) to stored values; refuse any other value."""
    text = frame[src].astype("string").str.strip()
    mapped = text.str.lower().map(dict(allowed))
    bad = present & mapped.isna()
    # A class read into a number (a road class into a rank) lists the class names.
    numeric = all(isinstance(v, int) for v in allowed.values())
    if bad.any():
        names = allowed.keys() if numeric else allowed.values()
        accepted = ", ".join(sorted({str(v) for v in names}))
        fail_field(layer, frame, bad.to_numpy(), src, f"not one of {accepted}")
    if numeric:
        return mapped.where(present).astype("Int64")
    return mapped.where(present, None)


def _read_csv(path: Path, layer: Layer) -> pd.DataFrame:
    """Read a CSV table strictly as text: UTF-8 (with or without BOM), else GB18030."""
    raw = path.read_bytes()
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError as exc:
            error = exc
    else:
        line = raw[: error.start].count(b"\n") + 1
        msg = (
            f"{layer.file}: line {line} (byte {error.start}) is neither UTF-8 nor GB18030; "
            "save the file as UTF-8"
        )
        raise EncodingError(msg)
    return pd.read_csv(StringIO(text), dtype=str, keep_default_na=False, na_values=[""])


def read_sample_layer(directory: str | Path, layer: Layer | str) -> gpd.GeoDataFrame | None:
    """Read and check one sample layer, returning it with the table's column names.

    Parameters
    ----------
    directory
        Folder holding the sample files.
    layer
        A :class:`Layer` or its name in :data:`LAYERS`.

    Returns
    -------
    geopandas.GeoDataFrame or None
        Columns renamed to the table's, values converted, geometry in EPSG:4490 (a plain
        DataFrame for CSV tables); ``None`` if an optional file is absent.

    Raises
    ------
    GridError
        A subclass naming the file, the feature and the field: missing file or field, missing
        or unknown CRS, wrong encoding, coordinates outside China or swapped, invalid, empty or
        wrong-type geometry, duplicate code, or a value that does not convert.

    Examples
    --------
    >>> grids = read_sample_layer("data/shapefiles", "grids")  # doctest: +SKIP
    >>> grids.columns.tolist()[:2]  # doctest: +SKIP
    ['code', 'village_code']
    """
    spec = LAYERS[layer] if isinstance(layer, str) else layer
    path = Path(directory) / spec.file
    if not path.exists():
        if spec.required:
            msg = f"{path}: required layer {spec.name!r} not found"
            raise DataFileError(msg)
        return None
    if spec.geometry is None:
        frame: pd.DataFrame = _read_csv(path, spec)
    else:
        frame = read_layer(path, id_field=spec.key)
        check_geometries(frame, source=spec.file, id_field=spec.key, geom_types=spec.geometry)
    missing = [f for f in spec.fields if f not in frame.columns]
    if missing:
        msg = f"{spec.file}: missing field(s) {missing}; the fields are {list(frame.columns)}"
        raise DataFileError(msg)
    if spec.key is not None:
        check_unique(frame, spec.key, source=spec.file)
    columns = {**spec.fields, **{k: v for k, v in spec.optional.items() if k in frame.columns}}
    out = pd.DataFrame(index=frame.index)
    for src, column in columns.items():
        out[column] = _convert(spec, frame, src, spec.types.get(column, "text"))
        if src in spec.fields and out[column].isna().any():
            fail_field(spec, frame, out[column].isna().to_numpy(), src, "must not be empty")
    if spec.name == "grids" and "seq" not in out.columns:  # the code carries the number
        out["seq"] = pd.to_numeric(out["code"].str[-3:], errors="coerce").astype("Int64")
    if spec.name == "residents" and "id_number" in out.columns:
        out["id_number"] = out["id_number"].str.upper()  # GB 11643 writes the check "X" upper case
    for column, value in spec.constants.items():
        out[column] = value
    if spec.geometry is None:
        return out
    return gpd.GeoDataFrame(out, geometry=frame.geometry.to_numpy(), crs=frame.crs)


def read_sample(
    directory: str | Path, *, progress: Callable[[str], None] | None = None
) -> dict[str, gpd.GeoDataFrame]:
    """Read and check every sample layer present in ``directory``.

    Parameters
    ----------
    directory
        Folder holding the sample files (``towns.shp`` ... ``task_types.csv``).
    progress
        Called with the layer name before each layer is read.

    Returns
    -------
    dict
        Layer name -> frame (see :func:`read_sample_layer`); absent optional layers are left out.
    """
    directory = Path(directory)
    if not directory.is_dir():
        msg = f"{directory}: not a directory of sample layers"
        raise DataFileError(msg)
    frames = {}
    for name in LAYERS:
        if progress is not None:
            progress(name)
        frame = read_sample_layer(directory, name)
        if frame is not None:
            frames[name] = frame
    return frames
