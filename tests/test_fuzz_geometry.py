"""Hypothesis-generated ugly geometries against the grid-editing routes: 4xx with a reason.

Every geometry generated here is wrong by construction (self-intersecting, zero-area, with
duplicate points on a crossing outline, unclosed rings, too few positions, NaN/Infinity,
huge and tiny coordinates, too many vertices or rings, wrong nesting, wrong type), so every
answer must be a 4xx whose body says what was wrong, never a 5xx, and the stored grids and
point assignments must be exactly what they were. The requests are real writes (correct
``If-Match``, no dry run) on a writable copy of the sample: a check that let one through
would change the grid, and the snapshot would show it.

Deterministic (``derandomize``) with a small budget: the same examples every CI run.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import shapely
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import shape
from sqlalchemy.engine import URL, Engine

from gis_grid.edit import MAX_VERTICES
from gis_grid.edit._checks import MAX_RINGS
from tests.conftest import login_headers

pytestmark = [pytest.mark.postgis, pytest.mark.slow]

V1 = "/api/v1"
FUZZ = settings(
    max_examples=30,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

SNAPSHOT_SQL = """
SELECT md5(coalesce((SELECT string_agg(concat_ws('|', id, code, version, valid_from, valid_to,
                                                 name, source, md5(ST_AsEWKB(geom))), ','
                                       ORDER BY id) FROM grids), '')
        || coalesce((SELECT string_agg(concat_ws('|', id, grid_code), ',' ORDER BY id)
                     FROM households), ''))
"""


class Target:
    """The grid every example tries to change, and how to check it did not change."""

    def __init__(self, base: str, db: Engine) -> None:
        self.base, self.db = base, db
        self.headers = login_headers(base, "admin")
        r = httpx.get(f"{base}{V1}/grids?limit=1", headers=self.headers, timeout=30)
        assert r.status_code == 200, r.text
        self.code = str(r.json()["features"][0]["properties"]["code"])
        r = httpx.get(f"{base}{V1}/grids/{self.code}", headers=self.headers, timeout=30)
        assert r.status_code == 200, r.text
        self.etag = r.headers["ETag"]
        self.shape = shape(r.json()["geometry"])
        self.before = self.snapshot()

    def snapshot(self) -> str:
        with self.db.connect() as conn:
            return str(conn.scalar(sa.text(SNAPSHOT_SQL)))

    def send(self, method: str, path: str, body: Any) -> httpx.Response:
        # Serialized here: json.dumps writes NaN/Infinity as the bare tokens a sloppy client
        # sends (invalid JSON, which the server must still refuse with a 4xx).
        content = body if isinstance(body, str) else json.dumps(body)
        return httpx.request(
            method,
            f"{self.base}{V1}/grids/{self.code}{path}",
            content=content.encode(),
            headers={**self.headers, "If-Match": self.etag, "Content-Type": "application/json"},
            timeout=60,
        )

    def assert_refused(self, r: httpx.Response, body: Any) -> None:
        sent = body if isinstance(body, str) else json.dumps(body)
        assert 400 <= r.status_code < 500, f"{r.status_code} for {sent[:300]}: {r.text[:500]}"
        detail = r.json()["detail"]
        if isinstance(detail, list):  # FastAPI's field errors: each says where and why
            assert detail, r.text
            assert all(item.get("loc") and item.get("msg") for item in detail), r.text
        else:
            assert len(detail) > 10, r.text
        assert self.snapshot() == self.before, f"the grids changed after {sent[:300]}"


@pytest.fixture(scope="module")
def target(writable_server_url: str, writable_database_url: URL) -> Iterator[Target]:
    db = sa.create_engine(writable_database_url, poolclass=sa.NullPool)
    yield Target(writable_server_url, db)
    db.dispose()


# --- strategies ------------------------------------------------------------------------------
# Positions are built around the target grid (so that only the ugliness is wrong, not the
# place), from the grid's bounding box: (minx, miny, maxx, maxy).

Box = tuple[float, float, float, float]


def _inside(box: Box) -> st.SearchStrategy[tuple[float, float]]:
    minx, miny, maxx, maxy = box
    return st.tuples(st.floats(minx, maxx, allow_nan=False), st.floats(miny, maxy, allow_nan=False))


def _closed(ring: list[list[float]]) -> list[list[float]]:
    return [*ring, ring[0]]


@st.composite
def bowtie(draw: st.DrawFn, box: Box) -> dict[str, Any]:
    """A self-intersecting outline (sizes from 1e-9 to 0.5 degrees), maybe with duplicates."""
    x, y = draw(_inside(box))
    w = draw(st.floats(1e-9, 0.5))
    h = draw(st.floats(1e-9, 0.5))
    ring = [[x, y], [x + w, y + h], [x + w, y], [x, y + h]]
    for _ in range(draw(st.integers(0, 3))):  # duplicate points do not make it valid
        i = draw(st.integers(0, len(ring) - 1))
        ring.insert(i, list(ring[i]))
    return {"type": "Polygon", "coordinates": [_closed(ring)]}


@st.composite
def zero_area(draw: st.DrawFn, box: Box) -> dict[str, Any]:
    """All positions on one line, or one position repeated."""
    x, y = draw(_inside(box))
    n = draw(st.integers(3, 12))
    if draw(st.booleans()):
        dx, dy = draw(st.floats(-0.01, 0.01)), draw(st.floats(-0.01, 0.01))
        ring = [[x + k * dx, y + k * dy] for k in range(n)]
    else:
        ring = [[x, y]] * n
    return {"type": "Polygon", "coordinates": [_closed(ring)]}


@st.composite
def unclosed(draw: st.DrawFn, box: Box) -> dict[str, Any]:
    """A plausible outline whose ring does not end where it starts."""
    x, y = draw(_inside(box))
    d = draw(st.floats(1e-4, 0.01))
    ring = [[x, y], [x + d, y], [x + d, y + d], [x, y + d]][: draw(st.integers(2, 4))]
    return {"type": "Polygon", "coordinates": [ring]}


@st.composite
def too_few(draw: st.DrawFn, box: Box) -> dict[str, Any]:
    """Rings of 0 to 3 positions (a closed ring needs 4), or no ring at all."""
    x, y = draw(_inside(box))
    n = draw(st.integers(0, 3))
    ring = [[x + k * 1e-3, y + (k % 2) * 1e-3] for k in range(n)]
    if n >= 2:
        ring[-1] = ring[0]
    return {"type": "Polygon", "coordinates": [ring] if draw(st.booleans()) else []}


@st.composite
def not_finite(draw: st.DrawFn, box: Box) -> str:
    """A good-looking outline with NaN or +-Infinity in one coordinate (raw JSON text)."""
    x, y = draw(_inside(box))
    d = 1e-3
    ring = [[x, y], [x + d, y], [x + d, y + d], [x, y]]
    i, j = draw(st.integers(0, 3)), draw(st.integers(0, 1))
    ring[i][j] = draw(st.sampled_from([math.nan, math.inf, -math.inf]))
    return json.dumps({"type": "Polygon", "coordinates": [ring]})  # allow_nan: bare tokens


@st.composite
def extreme(draw: st.DrawFn, box: Box) -> dict[str, Any]:
    """Huge (up to 1.7e308) or tiny (down to 5e-324) coordinates, somewhere in the ring."""
    magnitude = draw(st.one_of(st.floats(1e6, 1.7e308), st.floats(5e-324, 1e-6), st.just(-1.7e308)))
    sign = draw(st.sampled_from([1.0, -1.0]))
    x, y = draw(_inside(box))
    d = 1e-3
    ring = [[x, y], [x + d, y], [x + d, y + d], [x, y + d]]
    i, j = draw(st.integers(0, 3)), draw(st.integers(0, 1))
    ring[i][j] = sign * magnitude
    if draw(st.booleans()):  # or everything tiny / huge
        ring = [[sign * magnitude, magnitude], [magnitude, sign * magnitude], [magnitude] * 2]
    return {"type": "Polygon", "coordinates": [_closed(ring)]}


def _circle(x: float, y: float, r: float, n: int) -> list[list[float]]:
    ring = [
        [x + r * math.cos(2 * math.pi * k / n), y + r * math.sin(2 * math.pi * k / n)]
        for k in range(n)
    ]
    return _closed(ring)


@st.composite
def too_many_vertices(draw: st.DrawFn, box: Box) -> dict[str, Any]:
    """A valid circle inside the grid with more vertices than MAX_VERTICES."""
    x, y = draw(_inside(box))
    n = MAX_VERTICES + draw(st.integers(0, 50))
    return {"type": "Polygon", "coordinates": [_circle(x, y, 1e-4, n)]}


@st.composite
def too_many_rings(draw: st.DrawFn, box: Box) -> dict[str, Any]:
    """A square with more holes than MAX_RINGS allows (each hole a tiny valid square)."""
    x, y = draw(_inside(box))
    holes = MAX_RINGS + draw(st.integers(0, 5))
    side = math.ceil(math.sqrt(holes))
    cell, hole = 1e-5, 4e-6
    shell = _closed([[x, y], [x + side * cell, y], [x + side * cell, y + side * cell],
                     [x, y + side * cell]])  # fmt: skip
    rings = [shell]
    for k in range(holes):
        hx, hy = x + (k % side) * cell + 3e-6, y + (k // side) * cell + 3e-6
        rings.append(_closed([[hx, hy], [hx, hy + hole], [hx + hole, hy + hole], [hx + hole, hy]]))
    return {"type": "Polygon", "coordinates": rings}


@st.composite
def wrong_nesting(draw: st.DrawFn, box: Box) -> dict[str, Any]:
    """A hole outside its shell, a shell inside its hole, overlapping parts, or bad depth."""
    x, y = draw(_inside(box))
    d = draw(st.floats(1e-4, 0.01))
    square = _closed([[x, y], [x + d, y], [x + d, y + d], [x, y + d]])
    far = _closed([[x + 3 * d, y], [x + 4 * d, y], [x + 4 * d, y + d], [x + 3 * d, y + d]])
    inner = _closed([[x + d / 4, y + d / 4], [x + d / 2, y + d / 4], [x + d / 2, y + d / 2]])
    kind = draw(st.integers(0, 4))
    if kind == 0:  # hole outside the shell
        return {"type": "Polygon", "coordinates": [square, far]}
    if kind == 1:  # shell inside its hole
        return {"type": "Polygon", "coordinates": [inner, square]}
    if kind == 2:  # parts overlapping
        return {"type": "MultiPolygon", "coordinates": [[square], [square]]}
    if kind == 3:  # a ring where the rings belong (one level too shallow)
        return {"type": "Polygon", "coordinates": square}
    return {"type": "MultiPolygon", "coordinates": [square]}  # one level too shallow


@st.composite
def wrong_type(draw: st.DrawFn, box: Box) -> dict[str, Any]:
    """Geometries that are not a (multi)polygon, or not a geometry at all."""
    x, y = draw(_inside(box))
    return draw(
        st.sampled_from(
            [
                {"type": "Point", "coordinates": [x, y]},
                {"type": "LineString", "coordinates": [[x, y], [x + 1e-3, y]]},
                {"type": "GeometryCollection", "geometries": []},
                {"type": "Polygon"},
                {"type": "Polygon", "coordinates": None},
                {"type": "Polygon", "coordinates": [[["107.4", "31.0"]] * 4]},
                {"type": "Feature", "geometry": None, "properties": {}},
                {},
            ]
        )
    )


#: Every kind of bad outline, by name (each is fuzzed on its own by PUT, mixed by PATCH).
KINDS = {
    "bowtie": bowtie,
    "zero_area": zero_area,
    "unclosed": unclosed,
    "too_few": too_few,
    "not_finite": not_finite,
    "extreme": extreme,
    "wrong_nesting": wrong_nesting,
    "wrong_type": wrong_type,
    "too_many_rings": too_many_rings,
    "too_many_vertices": too_many_vertices,
}


def ugly_polygons(box: Box) -> st.SearchStrategy[Any]:
    """Any kind of bad outline."""
    return st.one_of(*(kind(box) for kind in KINDS.values()))


def _as_feature(geometry: Any, wrap: bool) -> Any:
    if not wrap or isinstance(geometry, str):
        return geometry
    return {"type": "Feature", "geometry": geometry, "properties": {"name": "丑陋的网格"}}


# --- the tests --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(KINDS))
def test_ugly_outlines_are_refused_by_put(target: Target, kind: str) -> None:
    box = target.shape.bounds

    @settings(FUZZ, max_examples=8)
    @given(geometry=KINDS[kind](box), wrap=st.booleans())
    def run(geometry: Any, wrap: bool) -> None:
        body = _as_feature(geometry, wrap)
        target.assert_refused(target.send("PUT", "", body), body)

    run()


def test_ugly_outlines_are_refused_by_patch(target: Target) -> None:
    box = target.shape.bounds

    @FUZZ
    @given(geometry=ugly_polygons(box), rename=st.booleans())
    def run(geometry: Any, rename: bool) -> None:
        if isinstance(geometry, str):  # raw text with NaN: put it in the PATCH body as text
            body: Any = '{"geometry": ' + geometry + "}"
        else:
            body = {"geometry": geometry, **({"name": "丑陋的网格"} if rename else {})}
        target.assert_refused(target.send("PATCH", "", body), body)

    run()


@st.composite
def ugly_lines(draw: st.DrawFn, box: Box, inner: tuple[float, float]) -> Any:
    """Cutting lines that cannot cut: no length, one position, NaN, huge/tiny, far away."""
    x, y = draw(_inside(box))
    kind = draw(st.integers(0, 5))
    if kind == 0:  # no length: one position repeated
        return {"type": "LineString", "coordinates": [[x, y]] * draw(st.integers(1, 5))}
    if kind == 1:  # NaN / Infinity (raw JSON text)
        bad = draw(st.sampled_from([math.nan, math.inf, -math.inf]))
        return json.dumps({"type": "LineString", "coordinates": [[x, y], [bad, y]]})
    if kind == 2:  # huge or tiny coordinates
        v = draw(st.one_of(st.floats(1e6, 1.7e308), st.floats(5e-324, 1e-6)))
        return {"type": "LineString", "coordinates": [[x, y], [v, -v]]}
    if kind == 3:  # far from the grid (still in China): cuts nothing
        return {"type": "LineString", "coordinates": [[x + 5, y + 5], [x + 5.01, y + 5]]}
    if kind == 4:  # inside the grid, touching no edge: cuts nothing in two
        w = (box[2] - box[0]) * 1e-4
        cx, cy = inner
        return {"type": "LineString", "coordinates": [[cx, cy], [cx + w, cy]]}
    n = MAX_VERTICES + draw(st.integers(1, 20))  # too many vertices
    return {"type": "LineString", "coordinates": [[x + k * 1e-9, y] for k in range(n)]}


def test_ugly_cutting_lines_are_refused_by_split(target: Target) -> None:
    box = target.shape.bounds
    # A point well inside the grid: a short line from it touches no edge.
    inner = shapely.get_coordinates(target.shape.buffer(-1e-4).representative_point())[0]

    @FUZZ
    @given(line=ugly_lines(box, (float(inner[0]), float(inner[1]))))
    def run(line: Any) -> None:
        body: Any = '{"line": ' + line + "}" if isinstance(line, str) else {"line": line}
        target.assert_refused(target.send("POST", "/split", body), body)

    run()
