"""Import grids, villages, pollution points, hazards and incidents from files.

A file is read with the same checks as the sample loader (:func:`gis_grid.sample.read_sample_layer`:
CRS required, encoding from the ``.cpg`` or detected (GBK/GB18030 read correctly), coordinates in
China and not swapped, valid geometries of the right type, unique codes, values that convert),
then compared with the database in one SQL statement, then written — or, for a dry run, written
inside a savepoint that is rolled back, so the report of a dry run is exactly what the import
would do (database constraints included) and nothing stored changes.

Field names may be the sample files' (``vill_code``, ``pp_id``; what shapefile exports carry) or
the tables' (``code``, ``village_code``; what GeoPackage and GeoJSON exports carry), so every
export of :mod:`gis_grid.export` imports back unchanged.

What an import changes, by layer:

- ``grids``: a new grid version (:func:`gis_grid.db.plans.apply_plan`) for each village whose
  grids differ from the file (a grid added, removed, renamed, or moved by more than about a
  centimetre); points of those villages are re-assigned. The file must tile those villages.
- ``villages``, ``pollution``, ``hazards``: rows are added by code or updated where a field or
  the geometry differs (grid and village codes of points are re-assigned by the triggers).
- ``incidents``: new codes are added; an existing incident that differs is *skipped* (reported):
  incidents change only through their workflow.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import pyogrio
import sqlalchemy as sa

from gis_grid.db.plans import apply_plan
from gis_grid.db.write import copy_frame
from gis_grid.edit import check_feature_count, check_geometry_limits
from gis_grid.errors import DataFileError, NotFoundError
from gis_grid.exchange._zip import safe_extract
from gis_grid.sample import LAYERS, Layer, read_sample_layer

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

__all__ = ["IMPORT_FORMATS", "IMPORT_LAYERS", "ImportReport", "import_layer", "read_import_file"]

#: File name endings accepted for import.
IMPORT_FORMATS = (".zip", ".gpkg", ".geojson", ".json", ".kml", ".shp")

#: Exchange layer name -> (sample layer, table, compared columns, geometry is multi-part).
_SPECS: dict[str, tuple[str, str, tuple[str, ...], bool]] = {
    "grids": ("grids", "grids", ("name",), True),
    "villages": ("villages", "villages", ("name", "town_code", "kind", "ur_code"), True),
    "pollution": ("pollution", "pollution_points", ("name", "kind", "village_code"), False),
    "hazards": ("hazards", "hazards", ("name", "kind", "level", "village_code"), False),
    "incidents": (
        "incidents",
        "incidents",
        ("task_type_code", "title", "status", "reported_at", "dispatched_at", "deadline"),
        False,
    ),
}
_ALIASES = {"pollution_points": "pollution"}

#: Layers that can be imported.
IMPORT_LAYERS = tuple(_SPECS)

#: Geometries closer than this (degrees, about 1 cm) count as unchanged.
_SAME_GEOMETRY_DEG = 1e-7
_LISTED = 200  # codes listed per kind of change in a report


@dataclass
class ImportReport:
    """What an import did (or, for a dry run, would do).

    Attributes
    ----------
    layer, file
        What was imported from where.
    dry_run
        True when nothing was stored.
    features
        Features read from the file.
    added, changed, unchanged, skipped
        Codes of each kind (at most 200 listed; the counts are exact). ``changed`` maps a code
        to the fields that differ (``geometry`` included); ``skipped`` to the reason.
    removed
        Grids only: current grid codes of the imported villages that the file drops.
    grid_versions
        Grids only: the summary of the new versions (:meth:`AppliedPlan.summary`).
    """

    layer: str
    file: str
    dry_run: bool
    features: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    added: list[str] = field(default_factory=list)
    changed: dict[str, list[str]] = field(default_factory=dict)
    unchanged: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)
    grid_versions: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "layer": self.layer,
            "file": self.file,
            "dry_run": self.dry_run,
            "features": self.features,
            "counts": self.counts,
            "added": self.added[:_LISTED],
            "changed": dict(list(self.changed.items())[:_LISTED]),
            "unchanged": self.unchanged[:_LISTED],
            "skipped": dict(list(self.skipped.items())[:_LISTED]),
            "removed": self.removed[:_LISTED],
            "grid_versions": self.grid_versions,
        }


def _layer_name(layer: str) -> str:
    name = _ALIASES.get(layer, layer)
    if name not in _SPECS:
        msg = f"cannot import layer {layer!r}; import one of: {', '.join(IMPORT_LAYERS)}"
        raise NotFoundError(msg, problems=[{"field": "layer", "value": layer}])
    return name


def _pick_shapefile(files: list[Path], spec: Layer, archive: str) -> Path:
    shps = sorted(p for p in files if p.suffix.lower() == ".shp" and not p.name.startswith("._"))
    if not shps:
        msg = f"{archive}: no shapefile (.shp) in the archive; nothing was imported"
        raise DataFileError(msg, problems=[{"file": archive}])
    if len(shps) == 1:
        return shps[0]
    wanted = {Path(spec.file).stem, spec.name, spec.table}
    matches = [p for p in shps if p.stem in wanted]
    if len(matches) != 1:
        names = [p.name for p in shps]
        msg = f"{archive} holds {len(shps)} shapefiles {names}; keep one named {spec.file}"
        raise DataFileError(msg, problems=[{"file": archive}])
    return matches[0]


def _spec_for(path: Path, spec: Layer, label: str) -> Layer:
    """Return the sample spec if the file uses its field names, else one with the table's."""
    try:
        fields = {str(f) for f in pyogrio.read_info(path)["fields"]}
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, OSError) as exc:
        msg = f"{label}: cannot be read ({exc})"
        raise DataFileError(msg, problems=[{"file": label}]) from exc
    if all(f in fields for f in spec.fields):
        return replace(spec, file=path.name)
    columns = list(spec.fields.values())

    def field_of(column: str) -> str:
        # KML keeps a feature's name in its <name> element, which GDAL reads as "Name".
        return "Name" if column == "name" and column not in fields else column

    if all(field_of(c) in fields for c in columns):
        return replace(
            spec,
            file=path.name,
            key="code",
            fields={field_of(c): c for c in columns},
            optional={field_of(c): c for c in spec.optional.values() if c not in columns},
        )
    missing = [f for f in spec.fields if f not in fields]
    msg = (
        f"{label}: missing field(s) {missing} (or, with the tables' names, "
        f"{[c for c in columns if c not in fields]}); the fields are {sorted(fields)}"
    )
    raise DataFileError(msg, problems=[{"file": label, "field": f} for f in missing])


def read_import_file(
    path: str | Path, layer: str, *, name: str | None = None, workdir: str | Path | None = None
) -> gpd.GeoDataFrame:
    """Read and check a file for import, returning it with the table's column names.

    Parameters
    ----------
    path
        A zipped shapefile (``.zip``), ``.shp``, ``.gpkg``, ``.geojson``/``.json`` or ``.kml``.
    layer
        One of :data:`IMPORT_LAYERS`.
    name
        How messages name the file (an upload's original name); default ``path``.
    workdir
        Folder to unpack a zip into (a temporary folder by default, removed afterwards).

    Returns
    -------
    geopandas.GeoDataFrame
        Columns named as in the table, EPSG:4490.

    Raises
    ------
    GridError
        A subclass naming the file, feature and field (see :mod:`gis_grid.io`).
    """
    path = Path(path)
    label = name or str(path)
    spec = LAYERS[_SPECS[_layer_name(layer)][0]]
    suffix = path.suffix.lower()
    if suffix not in IMPORT_FORMATS:
        msg = f"{label}: cannot import {suffix or 'a file without extension'}; use {IMPORT_FORMATS}"
        raise DataFileError(msg, problems=[{"file": label}])
    if suffix != ".zip":
        return _read_limited(path, spec, label)
    with tempfile.TemporaryDirectory(dir=workdir, prefix="gis-grid-import-") as tmp:
        files = safe_extract(path, tmp, name=label)
        shp = _pick_shapefile(files, spec, label)
        return _read_limited(shp, spec, f"{label}!{shp.name}")


def _read_limited(path: Path, spec: Layer, label: str) -> gpd.GeoDataFrame:
    """Read a file within the geometry limits (:mod:`gis_grid.edit`).

    The feature count is checked from the file's header before anything is read; the
    vertices and rings of each feature right after reading.
    """
    layer_spec = _spec_for(path, spec, label)
    try:
        count = int(pyogrio.read_info(path, force_feature_count=True)["features"])
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, OSError) as exc:
        msg = f"{label}: cannot be read ({exc})"
        raise DataFileError(msg, problems=[{"file": label}]) from exc
    check_feature_count(count, field=label)
    frame = read_sample_layer(path.parent, layer_spec)
    if frame is None:  # only an optional layer's missing file reads as None
        msg = f"{label}: not found; nothing was imported"
        raise DataFileError(msg, problems=[{"file": label}])
    check_geometry_limits(frame.geometry.to_numpy(), field=label)
    return frame


# --- comparing and writing ---------------------------------------------------------------


def _stage(conn: Connection, table: str, frame: gpd.GeoDataFrame, *, multi: bool) -> list[str]:
    """Copy the file's rows into a temporary table shaped like ``table``; return its columns."""
    table_columns = set(
        conn.execute(
            sa.text(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_name = :t AND table_schema = current_schema()"
            ),
            {"t": table},
        ).scalars()
    )
    columns = [c for c in frame.columns if c in table_columns and c not in {"geom", "id"}]
    conn.execute(sa.text("DROP TABLE IF EXISTS incoming"))
    conn.execute(
        sa.text(
            f"CREATE TEMP TABLE incoming ON COMMIT DROP AS SELECT {', '.join(columns)}, geom "
            f"FROM {table} WITH NO DATA"
        )
    )
    copy_frame(conn, "incoming", frame, columns, geom_column="geom", multi=multi)
    return columns


def _diff(conn: Connection, table: str, compared: tuple[str, ...], columns: list[str]) -> list[Any]:
    """Each incoming code with ``added``/``changed``/``unchanged`` and the fields that differ."""
    checks = [
        f"CASE WHEN i.{c} IS DISTINCT FROM t.{c} THEN '{c}' END" for c in compared if c in columns
    ]
    checks.append(
        "CASE WHEN NOT ST_Equals(i.geom, t.geom) AND "
        f"ST_HausdorffDistance(i.geom, t.geom) > {_SAME_GEOMETRY_DEG} THEN 'geometry' END"
    )
    current = "AND t.valid_to IS NULL" if table == "grids" else ""
    return list(
        conn.execute(
            sa.text(
                f"SELECT i.code, t.code IS NULL AS new, "
                f"array_remove(ARRAY[{', '.join(checks)}], NULL) AS fields "
                f"FROM incoming i LEFT JOIN {table} t ON t.code = i.code {current} ORDER BY i.code"
            )
        )
    )


def _upsert(conn: Connection, table: str, columns: list[str], codes: list[str]) -> None:
    names = [*columns, "geom"]
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in names if c != "code")
    conn.execute(
        sa.text(
            f"INSERT INTO {table} ({', '.join(names)}) SELECT {', '.join(names)} FROM incoming "
            f"WHERE code = ANY(:codes) ON CONFLICT (code) DO UPDATE SET {updates}"
        ),
        {"codes": codes},
    )


def _check_references(conn: Connection, layer: str, frame: gpd.GeoDataFrame, label: str) -> None:
    """Refuse codes that name nothing (town, village, task type), naming the feature."""
    refs = {
        "villages": ("town_code", "towns"),
        "pollution": ("village_code", "villages"),
        "hazards": ("village_code", "villages"),
        "incidents": ("task_type_code", "task_types"),
    }
    if layer not in refs or refs[layer][0] not in frame.columns:
        return
    column, table = refs[layer]
    values = sorted({str(v) for v in frame[column].dropna()})
    known = set(
        conn.execute(
            sa.text(f"SELECT code FROM {table} WHERE code = ANY(:v)"), {"v": values}
        ).scalars()
    )
    unknown = [v for v in values if v not in known]
    if unknown:
        first = frame.index[frame[column].astype(str) == unknown[0]][0]
        code = frame.loc[first, "code"]
        msg = (
            f"{label}: feature {first + 1} (code={code!r}), field {column}={unknown[0]!r} names "
            f"no row of {table} ({len(unknown)} unknown value(s): {unknown[:10]}); "
            "nothing was imported"
        )
        problems = [{"file": label, "field": column, "value": v} for v in unknown[:20]]
        raise DataFileError(msg, problems=problems)


def _classify(report: ImportReport, rows: list[Any]) -> None:
    for row in rows:
        code = str(row.code)
        if row.new:
            report.added.append(code)
        elif not row.fields:
            report.unchanged.append(code)
        elif report.layer == "incidents":
            report.skipped[code] = (
                f"differs in {', '.join(row.fields)}; incidents change only through their workflow"
            )
        else:
            report.changed[code] = list(row.fields)


def _import_grids(
    conn: Connection, frame: gpd.GeoDataFrame, report: ImportReport, actor: str | None
) -> None:
    villages = sorted({str(v) for v in frame["village_code"]})
    removed = list(
        conn.execute(
            sa.text(
                "SELECT g.code FROM grids g WHERE g.valid_to IS NULL "
                "AND g.village_code = ANY(:v) AND g.code NOT IN (SELECT code FROM incoming) "
                "ORDER BY g.code"
            ),
            {"v": villages},
        ).scalars()
    )
    report.removed = [str(c) for c in removed]
    touched = {c[:12] for c in report.added} | {c[:12] for c in report.changed}
    touched |= {c[:12] for c in report.removed}
    if not touched:
        return
    plan = frame[frame["village_code"].astype(str).isin(touched)]
    keep = [c for c in ("grid_code", "name", "geometry") if c in plan.columns or c == "grid_code"]
    plan = plan.rename(columns={"code": "grid_code"})[keep]
    applied = apply_plan(
        conn,
        gpd.GeoDataFrame(plan, geometry="geometry", crs=frame.crs),
        village_codes=sorted(touched),
        source="import",
        note=report.file if actor is None else f"{report.file} by {actor}",
    )
    report.grid_versions = applied.summary()


def import_layer(
    conn: Connection,
    layer: str,
    path: str | Path,
    *,
    dry_run: bool = False,
    name: str | None = None,
    actor: str | None = None,
) -> ImportReport:
    """Import one layer from a file into the database, or report what that would change.

    Parameters
    ----------
    conn
        Connection in the caller's transaction (the caller commits).
    layer
        One of :data:`IMPORT_LAYERS` (``pollution_points`` is accepted for ``pollution``).
    path
        The file (see :func:`read_import_file`).
    dry_run
        Do everything inside a savepoint and roll it back: the report says what would change;
        nothing stored changes.
    name
        How messages and the report name the file (an upload's original name).
    actor
        Who imports, recorded with new grid versions (``grids.source``).

    Returns
    -------
    ImportReport

    Raises
    ------
    GridError
        Bad file (naming the file, feature and field), unknown references, or a grid plan that
        does not tile its villages. Nothing is written.

    Examples
    --------
    >>> with engine.begin() as conn:  # doctest: +SKIP
    ...     report = import_layer(conn, "hazards", "hazards.gpkg", dry_run=True)
    >>> report.counts  # doctest: +SKIP
    {'added': 2, 'changed': 1, 'unchanged': 40, 'skipped': 0, 'removed': 0}
    """
    layer = _layer_name(layer)
    label = name or str(path)
    frame = read_import_file(path, layer, name=label)
    _, table, compared, multi = _SPECS[layer]
    report = ImportReport(layer=layer, file=label, dry_run=dry_run, features=len(frame))
    savepoint = conn.begin_nested()
    try:
        _check_references(conn, layer, frame, label)
        columns = _stage(conn, table, frame, multi=multi)
        _classify(report, _diff(conn, table, compared, columns))
        if layer == "grids":
            _import_grids(conn, frame, report, actor)
        else:
            writes = report.added + list(report.changed)
            if writes:
                _upsert(conn, table, columns, writes)
        conn.execute(sa.text("DROP TABLE IF EXISTS incoming"))
    except sa.exc.DBAPIError as exc:
        savepoint.rollback()
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        msg = f"{label}: the database refused the data: {reason}; nothing was imported"
        raise DataFileError(msg, problems=[{"file": label, "reason": reason}]) from exc
    except BaseException:
        savepoint.rollback()
        raise
    if dry_run:
        savepoint.rollback()
    else:
        savepoint.commit()
    report.counts = {
        "added": len(report.added),
        "changed": len(report.changed),
        "unchanged": len(report.unchanged),
        "skipped": len(report.skipped),
        "removed": len(report.removed),
    }
    return report
