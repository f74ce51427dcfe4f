"""File exchange: download a layer as GeoPackage, zipped shapefile, GeoJSON or KML; upload one.

``GET /api/v1/exchange/{layer}?format=gpkg`` downloads grids, villages, pollution points,
hazards or incidents (a GeoPackage opens directly in QGIS; shapefiles are UTF-8 with a
``.cpg``). ``POST /api/v1/exchange/{layer}`` imports an uploaded file (multipart field
``file``); with ``dry_run=true`` it reports what would change and stores nothing. A bad file
is a 4xx naming the file, the feature and the field, and nothing stored changes: the import
runs in the request's transaction, rolled back on any error.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path, PurePath
from typing import Annotated, Literal

from fastapi import APIRouter, File, Query, UploadFile
from fastapi import Path as PathParam
from fastapi.responses import Response

from api.deps import ActorDep, ConnectionDep, TownFilterDep, WriteConnectionDep
from api.errors import error_responses
from api.schemas.exchange import ImportPublic
from gis_grid import exchange
from gis_grid.errors import DataFileError

__all__ = ["MAX_UPLOAD_BYTES", "router"]

router = APIRouter(prefix="/exchange", tags=["exchange"])

#: Largest upload accepted (bytes).
MAX_UPLOAD_BYTES = 200 * 1024 * 1024

Layer = Annotated[
    Literal["grids", "villages", "pollution", "hazards", "incidents"],
    PathParam(description="grids, villages, pollution, hazards or incidents"),
]


@router.get(
    "/{layer}",
    response_class=Response,
    responses={
        200: {
            "description": "The file (Content-Disposition names it)",
            "content": {t: {} for t in exchange.MEDIA_TYPES.values()},
        },
        **error_responses(404, 422),
    },
)
def download(
    conn: ConnectionDep,
    layer: Layer,
    town: TownFilterDep,
    fmt: Annotated[
        Literal["gpkg", "shp", "geojson", "kml"],
        Query(alias="format", description="gpkg, shp (zipped, UTF-8 + .cpg), geojson or kml"),
    ] = "gpkg",
) -> Response:
    """Download a layer as a file (CGCS2000, EPSG:4490; KML in WGS84 as the format requires)."""
    data, filename, count = exchange.export_bytes(
        conn, layer, fmt, town=town.code if town else None
    )
    media = exchange.MEDIA_TYPES[PurePath(filename).suffix]
    return Response(
        data,
        media_type=media,
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "X-Feature-Count": str(count),
        },
    )


def _save_upload(upload: UploadFile, folder: Path) -> tuple[Path, str]:
    original = upload.filename or "upload"
    name = PurePath(original.replace("\\", "/")).name  # never a path from the client
    suffix = PurePath(name).suffix.lower()
    if suffix not in exchange.IMPORT_FORMATS or suffix == ".shp":
        msg = (
            f"{name}: upload a .zip (shapefile with its .dbf/.shx/.prj), .gpkg, .geojson, "
            ".json or .kml"
        )
        raise DataFileError(msg, problems=[{"field": "file", "file": name}])
    path = folder / f"upload{suffix}"
    size = 0
    with path.open("wb") as out:
        while chunk := upload.file.read(1 << 20):
            size += len(chunk)
            if size > MAX_UPLOAD_BYTES:
                msg = f"{name}: larger than {MAX_UPLOAD_BYTES} bytes; split it by town"
                raise DataFileError(msg, problems=[{"field": "file", "file": name}])
            out.write(chunk)
    if size == 0:
        msg = f"{name}: the file is empty"
        raise DataFileError(msg, problems=[{"field": "file", "file": name}])
    return path, name


@router.post(
    "/{layer}",
    response_model=ImportPublic,
    responses=error_responses(404, 409, 422),
)
def upload(
    conn: WriteConnectionDep,
    actor: ActorDep,
    layer: Layer,
    file: Annotated[UploadFile, File(description="The file to import")],
    dry_run: Annotated[bool, Query(description="Report what would change; store nothing")] = False,
) -> ImportPublic:
    """Import a layer from a file: add and update by code (grids: a new grid version).

    Recorded under the logged-in account (new grid versions name it in ``source``).

    Incidents are only added: an existing incident that differs is reported as skipped
    (incidents change through their workflow).
    """
    folder = Path(tempfile.mkdtemp(prefix="gis-grid-upload-"))
    try:
        path, name = _save_upload(file, folder)
        report = exchange.import_layer(conn, layer, path, dry_run=dry_run, name=name, actor=actor)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return ImportPublic.model_validate(report.to_dict())
