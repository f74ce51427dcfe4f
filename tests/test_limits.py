"""Vertex, ring and feature-count limits on every route that accepts geometries (issue 6, 4).

The limits are defined once (:mod:`gis_grid.edit._checks`): ``MAX_VERTICES`` and
``MAX_RINGS`` per geometry, ``MAX_FEATURES`` and ``MAX_TOTAL_VERTICES`` per request or file.
They hold for grid edits (PUT/PATCH/split), plans sent back (``…/plans/apply``) and file
imports (``POST /exchange/{layer}``); registry edits take exactly one Point, whose shape the
schema fixes. Each refusal is a 422 naming the field or file, the feature, the count and the
limit, and nothing stored changes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import httpx
import numpy as np
import pytest
import shapely
import sqlalchemy as sa
from shapely.geometry import mapping, shape
from sqlalchemy.engine import URL, Engine

from gis_grid.edit._checks import (
    MAX_FEATURES,
    MAX_RINGS,
    MAX_TOTAL_VERTICES,
    MAX_VERTICES,
    check_geojson_limits,
    check_geometry_limits,
    geojson_size,
    geometry_from_geojson,
)
from gis_grid.errors import GeometryError
from gis_grid.exchange import read_import_file
from tests.conftest import login_headers

V1 = "/api/v1"
TOWN = "511703109"
VILLAGE = "511703109209"

SNAPSHOT_SQL = """
SELECT md5(concat(
  (SELECT string_agg(concat_ws('|', id, code, version, valid_to, name, md5(ST_AsEWKB(geom))), ','
          ORDER BY id) FROM grids),
  (SELECT string_agg(concat_ws('|', id, code, name, md5(ST_AsEWKB(geom))), ',' ORDER BY id)
   FROM hazards),
  (SELECT string_agg(concat_ws('|', id, grid_code), ',' ORDER BY id) FROM households)
))
"""


def square(x: float, y: float, d: float) -> list[tuple[float, float]]:
    return [(x, y), (x + d, y), (x + d, y + d), (x, y + d), (x, y)]


def circle(x: float, y: float, r: float, n: int) -> shapely.Polygon:
    t = np.linspace(0, 2 * math.pi, n, endpoint=False)
    return shapely.Polygon(np.column_stack([x + r * np.cos(t), y + r * np.sin(t)]))


def holed(x: float, y: float, holes: int) -> shapely.Polygon:
    """A square with ``holes`` tiny square holes: valid, with ``holes + 1`` rings."""
    side = math.ceil(math.sqrt(holes))
    cell = 1e-5
    inner = [
        square(x + (k % side) * cell + 3e-6, y + (k // side) * cell + 3e-6, 4e-6)
        for k in range(holes)
    ]
    return shapely.Polygon(square(x, y, side * cell), inner)


# --- the library -----------------------------------------------------------------------------


def test_limits_are_sane() -> None:
    assert 1_000 <= MAX_VERTICES <= MAX_TOTAL_VERTICES
    assert 10 <= MAX_RINGS < MAX_VERTICES
    assert MAX_FEATURES >= 5_000  # a whole town's grids, points or incidents in one file


@pytest.mark.parametrize(
    ("geojson", "size"),
    [
        ({"type": "Point", "coordinates": [107.4, 31.0]}, (1, 0)),
        ({"type": "LineString", "coordinates": [[0, 0], [1, 1], [2, 2]]}, (3, 0)),
        ({"type": "Polygon", "coordinates": [square(0, 0, 1), square(0.2, 0.2, 0.1)]}, (10, 2)),
        (
            {"type": "MultiPolygon", "coordinates": [[square(0, 0, 1)], [square(5, 5, 1)]]},
            (10, 2),
        ),
        (
            {"type": "GeometryCollection", "geometries": [mapping(shapely.Point(1, 1))] * 3},
            (3, 0),
        ),
        ({"type": "Polygon", "coordinates": None}, (0, 0)),
    ],
)
def test_geojson_size_counts_without_building(geojson: dict[str, Any], size: tuple) -> None:
    assert geojson_size(geojson) == size


def test_vertex_limit_per_geometry() -> None:
    at_limit = circle(107.4, 31.0, 1e-3, MAX_VERTICES - 1)  # + the closing vertex
    check_geometry_limits(at_limit)
    check_geojson_limits(mapping(at_limit))
    over = circle(107.4, 31.0, 1e-3, MAX_VERTICES)
    with pytest.raises(GeometryError, match=f"{MAX_VERTICES + 1} vertices.*{MAX_VERTICES}") as e:
        check_geometry_limits(over, field="geometry")
    assert e.value.problems[0]["problem"] == "too many vertices"
    with pytest.raises(GeometryError, match="vertices"):
        geometry_from_geojson(mapping(over))  # refused before shapely builds it


def test_ring_limit_per_geometry() -> None:
    check_geometry_limits(holed(107.4, 31.0, MAX_RINGS - 1))
    over = holed(107.4, 31.0, MAX_RINGS)
    assert over.is_valid
    with pytest.raises(GeometryError, match=f"{MAX_RINGS + 1} rings.*{MAX_RINGS}"):
        check_geometry_limits(over)
    with pytest.raises(GeometryError, match="rings"):
        geometry_from_geojson(mapping(over))
    # Parts of a MultiPolygon count together.
    parts = shapely.MultiPolygon(
        [shapely.Polygon(square(107 + i * 1e-3, 31, 5e-4)) for i in range(MAX_RINGS + 1)]
    )
    with pytest.raises(GeometryError, match="rings"):
        check_geometry_limits(parts)


def test_feature_and_total_limits_name_the_feature() -> None:
    points = shapely.points(np.full((MAX_FEATURES + 1, 2), [107.4, 31.0]))
    with pytest.raises(GeometryError, match=f"{MAX_FEATURES + 1} features") as e:
        check_geometry_limits(points, field="hazards.geojson")
    assert e.value.problems[0]["field"] == "hazards.geojson"

    small = shapely.Point(107.4, 31.0)
    big = circle(107.4, 31.0, 1e-3, MAX_VERTICES + 5)
    with pytest.raises(GeometryError, match=r"hazards\.geojson: feature 3 has") as e:
        check_geometry_limits([small, small, big], field="hazards.geojson")
    assert e.value.problems[0]["feature"] == 3

    per_line = MAX_VERTICES
    lines = shapely.linestrings(
        np.tile(np.column_stack([np.linspace(107, 108, per_line), np.full(per_line, 31.0)]),
                (MAX_TOTAL_VERTICES // per_line + 1, 1)),
        indices=np.repeat(np.arange(MAX_TOTAL_VERTICES // per_line + 1), per_line),
    )  # fmt: skip
    with pytest.raises(GeometryError, match="vertices in all"):
        check_geometry_limits(lines, field="upload")


def test_unclosed_ring_is_refused_naming_where() -> None:
    open_ring = {"type": "Polygon", "coordinates": [square(107.4, 31.0, 1e-3)[:-1]]}
    with pytest.raises(GeometryError, match=r"ring 1 is not closed.*\(107.4, 31.0\)") as e:
        geometry_from_geojson(open_ring)
    assert e.value.problems[0]["problem"] == "ring not closed"
    multi = {
        "type": "MultiPolygon",
        "coordinates": [[square(107.4, 31.0, 1e-3)], [square(107.5, 31, 1e-3)[:-1]]],
    }
    with pytest.raises(GeometryError, match="ring 1 of polygon 2 is not closed"):
        geometry_from_geojson(multi)


def test_import_file_with_too_many_features_is_refused_before_reading(tmp_path: Path) -> None:
    n = MAX_FEATURES + 1
    frame = gpd.GeoDataFrame(
        {
            "code": [f"HZ-LIMIT-{i}" for i in range(n)],
            "name": ["隐患"] * n,
            "village_code": [VILLAGE] * n,
            "level": [1] * n,
        },
        geometry=shapely.points(np.full((n, 2), [107.4, 31.0])),
        crs=4490,
    )
    path = tmp_path / "hazards.gpkg"
    frame.to_file(path, driver="GPKG")
    with pytest.raises(GeometryError, match=f"hazards.gpkg has {n} features.*{MAX_FEATURES}"):
        read_import_file(path, "hazards", name="hazards.gpkg")


# --- over HTTP -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def db(writable_database_url: URL) -> Iterator[Engine]:
    eng = sa.create_engine(writable_database_url, poolclass=sa.NullPool)
    yield eng
    eng.dispose()


@pytest.fixture(scope="module")
def client(writable_server_url: str) -> Iterator[httpx.Client]:
    headers = login_headers(writable_server_url, "admin")
    with httpx.Client(base_url=writable_server_url + V1, timeout=120, headers=headers) as c:
        yield c


def snapshot(db: Engine) -> str:
    with db.connect() as conn:
        return str(conn.scalar(sa.text(SNAPSHOT_SQL)))


def a_grid(client: httpx.Client) -> tuple[str, str, Any]:
    r = client.get("/grids", params={"village": VILLAGE, "limit": 1})
    assert r.status_code == 200, r.text
    code = r.json()["features"][0]["properties"]["code"]
    r = client.get(f"/grids/{code}")
    assert r.status_code == 200, r.text
    return code, r.headers["ETag"], shape(r.json()["geometry"])


def refused(r: httpx.Response, *words: str) -> dict[str, Any]:
    assert r.status_code == 422, r.text
    for word in words:
        assert word in r.text, f"{word!r} not in {r.text[:500]}"
    return r.json()


@pytest.mark.postgis
@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_grid_edit_over_the_vertex_limit(client: httpx.Client, db: Engine, method: str) -> None:
    code, tag, outline = a_grid(client)
    dense: Any = shapely.segmentize(outline, outline.length / (MAX_VERTICES + 10))
    assert shapely.get_num_coordinates(dense) > MAX_VERTICES and dense.is_valid
    geometry = mapping(dense)
    body = geometry if method == "PUT" else {"geometry": geometry}
    before = snapshot(db)
    r = client.request(method, f"/grids/{code}", json=body, headers={"If-Match": tag})
    refused(r, "geometry has", "vertices", str(MAX_VERTICES))
    assert snapshot(db) == before


@pytest.mark.postgis
def test_grid_edit_over_the_ring_limit(client: httpx.Client, db: Engine) -> None:
    code, tag, outline = a_grid(client)
    x, y = shapely.get_coordinates(outline.buffer(-1e-4).representative_point())[0]
    many = holed(float(x), float(y), MAX_RINGS)
    before = snapshot(db)
    r = client.put(f"/grids/{code}", json=mapping(many), headers={"If-Match": tag})
    refused(r, "rings", str(MAX_RINGS))
    assert snapshot(db) == before


@pytest.mark.postgis
def test_split_line_over_the_vertex_limit(client: httpx.Client, db: Engine) -> None:
    code, tag, outline = a_grid(client)
    minx, miny, maxx, maxy = outline.bounds
    y = (miny + maxy) / 2
    line = {
        "type": "LineString",
        "coordinates": [[x, y] for x in np.linspace(minx - 1e-3, maxx + 1e-3, MAX_VERTICES + 1)],
    }
    before = snapshot(db)
    r = client.post(f"/grids/{code}/split", json={"line": line}, headers={"If-Match": tag})
    refused(r, "line has", "vertices", str(MAX_VERTICES))
    assert snapshot(db) == before


@pytest.mark.postgis
def test_plan_sent_back_over_the_limits(client: httpx.Client, db: Engine) -> None:
    code, _, outline = a_grid(client)
    dense: Any = shapely.segmentize(outline, outline.length / (MAX_VERTICES + 10))
    feature = {"type": "Feature", "geometry": mapping(dense), "properties": {"grid_code": code}}
    before = snapshot(db)
    r = client.post(f"/villages/{VILLAGE}/plans/apply", json={"features": [feature]})
    body = refused(r, "features[0].geometry", "vertices", str(MAX_VERTICES))
    assert isinstance(body["detail"], list)
    assert snapshot(db) == before


@pytest.mark.postgis
def test_registry_points_take_exactly_one_position(client: httpx.Client, db: Engine) -> None:
    before = snapshot(db)
    many = {"type": "Point", "coordinates": [[107.4, 31.0]] * 5}
    r = client.post(
        "/hazards",
        json={"code": "HZ-LIMIT-1", "name": "隐患", "level": 1, "location": many},
    )
    refused(r, "location")
    assert snapshot(db) == before


def _grids_geojson(client: httpx.Client) -> dict[str, Any]:
    r = client.get("/exchange/grids", params={"format": "geojson", "town": TOWN})
    assert r.status_code == 200, r.text
    return json.loads(r.content)


@pytest.mark.postgis
@pytest.mark.parametrize("limit", ["vertices", "rings"])
def test_import_over_the_limits_names_file_and_feature(
    client: httpx.Client, db: Engine, limit: str
) -> None:
    collection = _grids_geojson(client)
    features = collection["features"]
    i = next(k for k, f in enumerate(features) if f["properties"]["village_code"] == VILLAGE)
    outline: Any = shape(features[i]["geometry"])
    if limit == "vertices":
        ugly: Any = shapely.segmentize(outline, outline.length / (MAX_VERTICES + 10))
    else:  # holes in the first part
        x, y = shapely.get_coordinates(outline.buffer(-1e-4).representative_point())[0]
        hole_host = holed(float(x), float(y), MAX_RINGS)
        ugly = shapely.MultiPolygon(
            [shapely.Polygon(outline.geoms[0].exterior, list(hole_host.interiors))]
            if outline.geom_type == "MultiPolygon"
            else [shapely.Polygon(outline.exterior, list(hole_host.interiors))]
        )
    features[i]["geometry"] = mapping(ugly)
    before = snapshot(db)
    r = client.post(
        "/exchange/grids",
        params={"dry_run": "false"},
        files={"file": ("grids.geojson", json.dumps(collection).encode())},
    )
    refused(r, "grids.geojson", f"feature {i + 1}", limit)
    assert snapshot(db) == before
