"""Spatial-engine results over HTTP: load balance and grid adjacency for a town or village.

The same library path as ``gis-grid balance`` and ``gis-grid adjacency``
(:func:`gis_grid.db.read.read_town` then :func:`gis_grid.town.town_report`), read on the
request's connection: every point counts in the grid it lies in, lengths and areas are measured
in the Gauss-Krüger zone. For a village the town is read and narrowed to the village's grids,
their members and the village's points (:func:`_village_data`).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
import shapely
from fastapi import APIRouter, Query, Response

from api.deps import ConnectionDep, TownDep, VillageCode, query_error
from api.errors import error_responses
from api.responses import GEOJSON_MEDIA_TYPE
from api.schemas.engine import (
    AdjacencyPairPublic,
    AdjacencyPublic,
    AdjacencySummaryPublic,
    AssignmentSummaryPublic,
    BalanceIssuePublic,
    BalancePublic,
    BalanceSummaryPublic,
    GridLoadPublic,
    MemberLoadPublic,
    SpreadPublic,
)
from gis_grid import queries
from gis_grid.db.read import TownData, read_town
from gis_grid.queries import GEOJSON_DIGITS
from gis_grid.report import TownReport
from gis_grid.town import BARRIER_SETS, town_report

__all__ = ["router"]

router = APIRouter(tags=["engine"])

By = Annotated[
    Literal["households", "people"],
    Query(description="The load the band applies to (per member)"),
]
Low = Annotated[
    float | None,
    Query(ge=0, allow_inf_nan=False, description="Lowest load per member (with high)"),
]
High = Annotated[
    float | None,
    Query(gt=0, allow_inf_nan=False, description="Highest load per member (with low)"),
]
HomeLimit = Annotated[
    float | None,
    Query(
        ge=0,
        allow_inf_nan=False,
        description="Flag members living farther than this from their grid (metres)",
    ),
]
Barriers = Annotated[
    Literal["rivers", "rivers+streams", "none"],
    Query(description="Natural lines counted as barriers between grids"),
]
Format = Annotated[
    Literal["json", "geojson"],
    Query(description="json: pairs; geojson: the shared borders as lines"),
]

_ENGINE_ERRORS = error_responses(404, 422)


@dataclasses.dataclass(frozen=True)
class _Scope:
    scope: Literal["town", "village"]
    code: str
    name: str
    data: TownData


def _town_scope(conn: Any, code: str) -> _Scope:
    data = read_town(conn, code)
    return _Scope("town", code, data.name, data)


def _village_data(data: TownData, village: str) -> TownData:
    """Narrow a town to one village: its grids, their members, the village's points."""
    grids = data.grids[data.grids["village_code"] == village]
    codes = set(grids["code"])

    def of_village(frame: pd.DataFrame) -> Any:
        return frame[frame["village_code"] == village]

    return dataclasses.replace(
        data,
        villages=data.villages[data.villages["code"] == village],
        grids=grids,
        members=data.members[data.members["grid_code"].isin(codes)],
        households=of_village(data.households),
        pollution=of_village(data.pollution),
        hazards=of_village(data.hazards),
        incidents=of_village(data.incidents),
    )


def _village_scope(conn: Any, code: str) -> _Scope:
    queries.require_village(conn, code)
    data = read_town(conn, code[:9])  # a village code starts with its town's
    village = _village_data(data, code)
    name = str(village.villages["name"].iloc[0]) if len(village.villages) else code
    return _Scope("village", code, name, village)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts (NaN -> None, numpy scalars -> Python)."""
    records: list[dict[str, Any]] = json.loads(
        frame.to_json(orient="records", force_ascii=False, double_precision=10)
    )
    return records


def _band(low: float | None, high: float | None) -> tuple[float, float] | None:
    if low is None and high is None:
        return None
    if low is None or high is None:
        missing = "low" if low is None else "high"
        query_error(missing, f"{missing} is missing: give low and high together", None)
    if low > high:
        query_error("low", f"low ({low:g}) is above high ({high:g})", low)
    return low, high


def _balance(
    scope: _Scope,
    *,
    by: str,
    band: tuple[float, float] | None,
    home_limit_m: float | None,
) -> BalancePublic:
    report: TownReport = town_report(
        scope.data,
        band=band,
        by="people" if by == "people" else "households",
        home_limit_m=home_limit_m,
        parts=("balance",),
    )
    tables, summary = report.tables("balance"), report.summary("balance")
    assert report.balance is not None  # asked for
    grids = [
        GridLoadPublic(
            grid=row["grid"],
            members=row["members"],
            member_codes=[c for c in (row["member_ids"] or "").split(",") if c],
            households=row["households"],
            people=row["people"],
            per_member=row["per_member"],
            band=row["band"] or None,
            area_km2=row["area_km2"],
            pollution_points=row["pollution"],
            hazards=row["hazards"],
            open_incidents=row["open_incidents"],
            home_m=row["home_m"],
        )
        for row in _records(tables["grids"])
    ]
    members_frame = report.balance.members
    members = []
    if members_frame is not None and len(members_frame):
        frame = members_frame.rename_axis("member").reset_index()
        frame["home_m"] = frame["home_m"].round(1)
        members = [
            MemberLoadPublic(
                member=row["member"],
                grid=row["grid"],
                households=row["households"],
                people=row["people"],
                area_km2=None if row["area_km2"] is None else round(row["area_km2"], 3),
                pollution_points=row["pollution"],
                hazards=row["hazards"],
                open_incidents=row["open_incidents"],
                home_m=row["home_m"],
                home_inside=bool(row["home_inside"]),
            )
            for row in _records(frame)
        ]
    return BalancePublic(
        scope=scope.scope,
        code=scope.code,
        name=scope.name,
        town_code=scope.data.code,
        by="people" if by == "people" else "households",
        band=band,
        home_limit_m=home_limit_m,
        summary=BalanceSummaryPublic(**{k: summary[k] for k in BalanceSummaryPublic.model_fields}),
        assignment=AssignmentSummaryPublic(**report.summary("assignment")),
        grids=grids,
        members=members,
        spread=[SpreadPublic(**row) for row in _records(tables["spread"])],
        issues=[BalanceIssuePublic(**row) for row in _records(tables["issues"])],
    )


@router.get("/towns/{code}/balance", response_model=BalancePublic, responses=_ENGINE_ERRORS)
def read_town_balance(
    *,
    conn: ConnectionDep,
    town: TownDep,
    by: By = "households",
    low: Low = None,
    high: High = None,
    home_limit_m: HomeLimit = None,
) -> BalancePublic:
    """Load balance of a town's grids and appointed members (articles 5 and 8).

    Per grid and per member: households, people, area (km²), pollution points, hazards, open
    incidents; the spread across grids (max deviation %, CV, Gini); grids whose load per member
    (``by``) lies outside ``low``-``high`` flagged; grids without exactly one appointed member
    (一格一员); each member's home distance to their grid (就地就近), flagged beyond
    ``home_limit_m``. 422 naming ``low``/``high`` when only one is given or low > high.
    """
    band = _band(low, high)
    return _balance(_town_scope(conn, town.code), by=by, band=band, home_limit_m=home_limit_m)


@router.get("/villages/{code}/balance", response_model=BalancePublic, responses=_ENGINE_ERRORS)
def read_village_balance(
    *,
    conn: ConnectionDep,
    code: VillageCode,
    by: By = "households",
    low: Low = None,
    high: High = None,
    home_limit_m: HomeLimit = None,
) -> BalancePublic:
    """Load balance of one village's grids and their members (as for a town)."""
    band = _band(low, high)
    return _balance(_village_scope(conn, code), by=by, band=band, home_limit_m=home_limit_m)


def _adjacency_report(scope: _Scope, barriers: str) -> TownReport:
    return town_report(scope.data, barriers=BARRIER_SETS[barriers], parts=("adjacency",))


def _adjacency(scope: _Scope, report: TownReport) -> AdjacencyPublic:
    pairs = report.tables("adjacency")["pairs"]
    summary = report.summary("adjacency")
    return AdjacencyPublic(
        scope=scope.scope,
        code=scope.code,
        name=scope.name,
        town_code=scope.data.code,
        barriers=summary["barriers"],
        barrier_lines=summary["barrier_lines"],
        summary=AdjacencySummaryPublic(
            **{k: summary[k] for k in AdjacencySummaryPublic.model_fields}
        ),
        pairs=[AdjacencyPairPublic(**row) for row in _records(pairs[list(_PAIR_FIELDS)])],
    )


_PAIR_FIELDS = ("a", "b", "shared_m", "barrier_m", "barrier", "same_village", "exact")


def _border_features(scope: _Scope, report: TownReport) -> str:
    """Return the shared borders as GeoJSON lines (CGCS2000), one feature per pair."""
    pairs = report.tables("adjacency")["pairs"]
    grids = scope.data.grids.set_index("code")
    boundaries = shapely.boundary(np.asarray(grids.geometry.array, dtype=object))
    position = pd.Series(np.arange(len(grids)), index=grids.index)
    a = boundaries[position.reindex(pairs["a"]).to_numpy()]
    b = boundaries[position.reindex(pairs["b"]).to_numpy()]
    shared = shapely.line_merge(shapely.intersection(a, b)) if len(pairs) else np.array([])
    lines = np.empty(len(shared), dtype=object)
    for i, geom in enumerate(shared):
        parts = shapely.get_parts(geom)
        parts = parts[np.isin(shapely.get_type_id(parts), (1, 5))]  # no touching points
        lines[i] = shapely.multilinestrings(parts) if len(parts) else None
    precise = shapely.set_precision(lines, 10**-GEOJSON_DIGITS)
    texts = shapely.to_geojson(precise) if len(lines) else np.array([])
    features = [
        {
            "type": "Feature",
            "id": f"{row['a']}-{row['b']}",
            "geometry": None if text is None else json.loads(str(text)),
            "properties": row,
        }
        for text, row in zip(texts, _records(pairs[list(_PAIR_FIELDS)]), strict=True)
    ]
    collection = {
        "type": "FeatureCollection",
        "name": f"adjacency_{scope.code}",
        "numberMatched": len(features),
        "numberReturned": len(features),
        "features": features,
    }
    return json.dumps(collection, ensure_ascii=False)


def _adjacency_response(scope: _Scope, barriers: str, fmt: str) -> AdjacencyPublic | Response:
    report = _adjacency_report(scope, barriers)
    if fmt == "geojson":
        return Response(_border_features(scope, report), media_type=GEOJSON_MEDIA_TYPE)
    return _adjacency(scope, report)


_ADJACENCY_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Pairs (json), or the shared borders as GeoJSON lines (geojson)",
        "content": {GEOJSON_MEDIA_TYPE: {}},
    },
    **_ENGINE_ERRORS,
}


@router.get("/towns/{code}/adjacency", response_model=AdjacencyPublic, responses=_ADJACENCY_DOC)
def read_town_adjacency(
    *,
    conn: ConnectionDep,
    town: TownDep,
    barriers: Barriers = "rivers",
    format: Format = "json",
) -> Any:
    """Grids sharing a border: shared length in metres and whether a river separates them.

    Corner-only contacts are not borders. ``barriers`` chooses the natural lines that count
    (rivers, rivers and streams, none); ``barrier_m`` is the part of the border along one.
    ``format=geojson`` gives the shared borders as (multi)lines with the same properties.
    """
    return _adjacency_response(_town_scope(conn, town.code), barriers, format)


@router.get("/villages/{code}/adjacency", response_model=AdjacencyPublic, responses=_ADJACENCY_DOC)
def read_village_adjacency(
    *,
    conn: ConnectionDep,
    code: VillageCode,
    barriers: Barriers = "rivers",
    format: Format = "json",
) -> Any:
    """Adjacency of one village's grids (pairs inside the village), as for a town."""
    return _adjacency_response(_village_scope(conn, code), barriers, format)
