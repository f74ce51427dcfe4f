"""Grid editing in the library (gis_grid.edit): pure geometry on boxes, then a real PostGIS copy.

Database tests run on one module copy of the loaded sample; each works inside a transaction
that it rolls back (nothing stays), except those needing two edits in a row (a new version
must start after the previous one: two transactions), which take a fresh copy. Every refusal
is checked to leave the grids and the point assignments exactly as they were.
"""

from __future__ import annotations

from collections.abc import Iterator

import geopandas as gpd
import numpy as np
import pytest
import shapely
import sqlalchemy as sa
from pyproj import CRS
from sqlalchemy.engine import URL, Connection, Engine

from gis_grid.assign import ASSIGNED_TABLES, assign_in_database
from gis_grid.crs import CGCS2000
from gis_grid.edit import (
    Layout,
    check_line,
    check_polygon,
    edit_grid,
    merge_grids,
    read_layout,
    redraw,
    split,
    split_grid,
    version_tag,
)
from gis_grid.errors import (
    ConflictError,
    CoordinateError,
    GeometryError,
    NotFoundError,
    PreconditionFailedError,
    PreconditionRequiredError,
)
from gis_grid.plans import check_plan

VILLAGE = "511703109209"  # 石垭: four grids
G1, G2, G3, G4 = (f"{VILLAGE}00{i}" for i in (1, 2, 3, 4))
OTHER_TOWN_GRID = "511703129201001"

#: Everything an edit may change: grid versions and every point's grid.
SNAPSHOT_SQL = """
SELECT md5(coalesce((SELECT string_agg(concat_ws('|', id, code, version, valid_from, valid_to,
                                                 name, source, md5(ST_AsEWKB(geom))), ','
                                       ORDER BY id) FROM grids), '')
        || coalesce((SELECT string_agg(concat_ws('|', id, grid_code), ',' ORDER BY id)
                     FROM households), '')
        || coalesce((SELECT string_agg(concat_ws('|', id, grid_code), ',' ORDER BY id)
                     FROM incidents), '')
        || coalesce((SELECT string_agg(concat_ws('|', id, grid_code), ',' ORDER BY id)
                     FROM members), ''))
"""


# --- pure geometry on boxes -----------------------------------------------------------------


def boxes() -> Layout:
    """A village of three grids: A (north-west), B (north-east), C (the south strip)."""
    a = shapely.box(107.40, 30.96, 107.41, 30.97)
    b = shapely.box(107.41, 30.96, 107.42, 30.97)
    # C has a vertex where A and B meet it: the layout is an exact coverage.
    c = shapely.Polygon(
        [(107.40, 30.95), (107.42, 30.95), (107.42, 30.96), (107.41, 30.96), (107.40, 30.96)]
    )
    return Layout(
        village_code=VILLAGE,
        codes=np.asarray([G1, G2, G3], dtype=object),
        villages=np.asarray([VILLAGE] * 3, dtype=object),
        geoms=np.asarray([a, b, c], dtype=object),
        crs=CRS.from_epsg(4545),
    )


def after(layout: Layout, outcome) -> list[shapely.Geometry]:
    geoms = list(layout.geoms)
    for code, geom in outcome.geoms.items():
        if code in set(layout.codes):
            geoms[layout.index(code)] = geom
    return geoms


def test_moving_a_shared_edge_moves_the_neighbour_vertex_for_vertex():
    layout = boxes()
    outcome = redraw(layout, G1, shapely.box(107.40, 30.96, 107.412, 30.97))
    assert outcome.change == {G1: "redrawn", G2: "redrawn", G3: "noded"}
    new = after(layout, outcome)
    assert shapely.equals(new[1], shapely.box(107.412, 30.96, 107.42, 30.97))
    assert shapely.coverage_is_valid(new)  # shared edges identical, vertex for vertex
    assert shapely.equals(shapely.union_all(new), shapely.union_all(layout.geoms))
    # C gained the vertex where the moved edge meets it, and nothing else.
    assert shapely.equals(new[2], layout.geoms[2])
    assert shapely.get_num_coordinates(new[2]) == shapely.get_num_coordinates(layout.geoms[2]) + 1


def test_land_given_up_goes_to_the_neighbour_with_the_longest_border():
    layout = boxes()
    # A gives up its southern strip: it borders C over 0.01° and B over 0.002°.
    outcome = redraw(layout, G1, shapely.box(107.40, 30.962, 107.41, 30.97))
    new = after(layout, outcome)
    assert shapely.equals(
        new[2],
        shapely.box(107.40, 30.95, 107.42, 30.96).union(shapely.box(107.40, 30.96, 107.41, 30.962)),
    )
    assert shapely.equals(new[1], layout.geoms[1])
    assert shapely.coverage_is_valid(new)


def test_a_gap_no_neighbour_borders_is_refused_with_its_location():
    layout = boxes()
    notch = shapely.box(107.40, 30.965, 107.401, 30.966)  # on the village's west edge
    with pytest.raises(ConflictError, match="no grid covers") as err:
        redraw(layout, G1, layout.geoms[0].difference(notch))
    (problem,) = err.value.problems
    assert notch.contains(shapely.Point(problem["lon"], problem["lat"]))
    assert problem["area_m2"] > 9000


def test_a_sliver_at_the_village_edge_stays_with_the_grid():
    layout = boxes()
    thin = shapely.box(107.40, 30.965, 107.400001, 30.966)  # 0.1 m wide: drawing noise
    outcome = redraw(layout, G1, layout.geoms[0].difference(thin))
    assert outcome.change == {}  # nothing left the grid: no new version at all


def test_land_beyond_the_village_is_refused_and_slivers_trimmed():
    layout = boxes()
    with pytest.raises(GeometryError, match="outside its village") as err:
        redraw(layout, G1, shapely.box(107.39, 30.96, 107.41, 30.97))
    assert err.value.problems[0]["lon"] < 107.40
    assert "no village" in err.value.problems[0]["in"]
    # 0.2 m beyond the edge: trimmed, the grid keeps the village's outline.
    outcome = redraw(layout, G1, shapely.box(107.399998, 30.96, 107.412, 30.97))
    assert shapely.equals(outcome.geoms[G1], shapely.box(107.40, 30.96, 107.412, 30.97))


def test_a_neighbour_swallowed_or_cut_in_two_is_refused():
    layout = boxes()
    with pytest.raises(ConflictError, match="without land"):
        redraw(layout, G1, shapely.box(107.40, 30.96, 107.42, 30.97))
    finger = shapely.box(107.405, 30.95, 107.406, 30.96)  # through C to the village edge
    with pytest.raises(ConflictError, match="cut into 2 pieces") as err:
        redraw(layout, G1, shapely.union(layout.geoms[0], finger))
    assert err.value.problems[0]["grid"] == G3


def test_split_keeps_the_code_on_the_larger_piece():
    layout = boxes()
    line = shapely.LineString([(107.3995, 30.963), (107.4105, 30.963)])
    outcome = split(layout, G1, line, f"{VILLAGE}004")
    assert outcome.change == {G1: "redrawn", f"{VILLAGE}004": "added", G2: "noded"}
    assert shapely.equals(outcome.geoms[G1], shapely.box(107.40, 30.963, 107.41, 30.97))
    assert shapely.equals(
        outcome.geoms[f"{VILLAGE}004"], shapely.box(107.40, 30.96, 107.41, 30.963)
    )
    assert shapely.coverage_is_valid([*after(layout, outcome), outcome.geoms[f"{VILLAGE}004"]])


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ([(107.405, 30.963), (107.4105, 30.963)], "does not cross"),  # ends inside
        ([(107.43, 30.963), (107.44, 30.963)], "does not touch"),  # misses
        (
            [(107.3995, 30.962), (107.4105, 30.962), (107.4105, 30.968), (107.3995, 30.968)],
            "3 pieces",
        ),
    ],
)
def test_a_line_that_does_not_cut_in_two_is_refused(line, reason):
    with pytest.raises(GeometryError, match=reason):
        split(boxes(), G1, shapely.LineString(line), f"{VILLAGE}004")


@pytest.mark.parametrize(
    ("geom", "error", "match"),
    [
        ("POLYGON EMPTY", GeometryError, "empty"),
        ("POINT (107.4 30.96)", GeometryError, "Polygon or MultiPolygon"),
        (
            "POLYGON ((30.96 107.4, 30.97 107.4, 30.97 107.41, 30.96 107.4))",
            CoordinateError,
            "swapped",
        ),
        ("POLYGON ((1e6 3e6, 1.1e6 3e6, 1.1e6 3.1e6, 1e6 3e6))", CoordinateError, "outside China"),
        (
            "POLYGON ((107.4 30.96, NaN 30.97, 107.41 30.97, 107.4 30.96))",
            CoordinateError,
            "not a finite",
        ),
    ],
)
@pytest.mark.filterwarnings("ignore:invalid value encountered")
def test_bad_outlines_are_named(geom, error, match):
    with pytest.raises(error, match=match) as err:
        check_polygon(shapely.from_wkt(geom))
    assert err.value.problems[0]["field"] == "geometry"


def test_too_many_vertices_are_refused():
    circle = shapely.Point(107.4, 30.96).buffer(0.01, quad_segs=2600)  # 10,401 vertices
    with pytest.raises(GeometryError, match="more than 10000"):
        check_polygon(circle)


def test_a_self_intersection_is_located():
    bowtie = shapely.Polygon([(107.40, 30.96), (107.41, 30.97), (107.41, 30.96), (107.40, 30.97)])
    with pytest.raises(GeometryError, match="Self-intersection") as err:
        check_polygon(bowtie)
    (problem,) = err.value.problems
    assert (problem["lon"], problem["lat"]) == pytest.approx((107.405, 30.965))
    with pytest.raises(GeometryError, match="no length"):
        check_line(shapely.LineString([(107.4, 30.96), (107.4, 30.96)]))


# --- on the database --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def engine(writable_database_url: URL) -> Iterator[Engine]:
    eng = sa.create_engine(writable_database_url)
    yield eng
    eng.dispose()


@pytest.fixture
def conn(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction rolled back after the test: the copy stays as loaded."""
    with engine.connect() as c:
        transaction = c.begin()
        yield c
        transaction.rollback()


def snapshot(conn: Connection) -> str:
    return str(conn.scalar(sa.text(SNAPSHOT_SQL)))


def current(conn: Connection, code: str) -> shapely.Geometry:
    wkb = conn.scalar(
        sa.text("SELECT ST_AsBinary(geom) FROM grids WHERE code = :c AND valid_to IS NULL"),
        {"c": code},
    )
    return shapely.from_wkb(bytes(wkb))


def assert_tiled(conn: Connection) -> None:
    """Current grids: an exact coverage, tiling every village (the plans' own check)."""
    grids = gpd.read_postgis(
        "SELECT code AS grid_code, geom FROM grids WHERE valid_to IS NULL", conn, geom_col="geom"
    )
    villages = gpd.read_postgis("SELECT code AS vill_code, geom FROM villages", conn, "geom")
    assert shapely.coverage_is_valid(grids.geometry.to_numpy())
    check_plan(grids, villages, tolerance_m=0.5)


def assert_assignment_is_complete(conn: Connection) -> None:
    """The incremental re-assignment left nothing a full one would change."""
    with conn.begin_nested() as savepoint:
        for table in ASSIGNED_TABLES:
            assert assign_in_database(conn, table).changed == 0, table
        savepoint.rollback()


def grown_into(conn: Connection, code: str, neighbour: str, radius: float = 0.0008):
    """``code`` grown over a disc of ``neighbour`` at the middle of their shared border."""
    mine, theirs = current(conn, code), current(conn, neighbour)
    border = shapely.line_merge(shapely.intersection(mine.boundary, theirs.boundary))
    longest = max(shapely.get_parts(border), key=shapely.length)
    middle = shapely.line_interpolate_point(longest, 0.5, normalized=True)
    return shapely.union(mine, shapely.intersection(theirs, shapely.buffer(middle, radius)))


def test_redraw_moves_the_neighbour_writes_versions_and_reassigns(conn):
    before = {g: current(conn, g) for g in (G1, G2, G3, G4)}
    people = conn.execute(
        sa.text("SELECT count(*) FROM households WHERE left(grid_code, 12) = :v"), {"v": VILLAGE}
    ).scalar_one()
    edit = edit_grid(
        conn, G1, geometry=grown_into(conn, G1, G3), if_match={G1: 1}, actor="test", note="why"
    )
    assert [(c.code, c.change) for c in edit.changes][:2] == [(G1, "redrawn"), (G3, "redrawn")]
    assert {c.code for c in edit.changes if c.change == "redrawn"} == {G1, G3}
    assert edit.etag == version_tag(G1, 2) == '"511703109209001-v2"'
    assert edit.points_moved["households"] > 0 and not edit.dry_run
    rows = conn.execute(
        sa.text(
            "SELECT code, version, valid_from, valid_to, source FROM grids WHERE code = ANY(:c) "
            "ORDER BY code, version"
        ),
        {"c": [G1, G2, G3, G4]},
    ).all()
    by_code = {code: [r for r in rows if r.code == code] for code in (G1, G2, G3, G4)}
    for code in (G1, G3):
        old, new = by_code[code]
        assert (old.version, new.version) == (1, 2)
        assert old.valid_to == new.valid_from == edit.valid_from and new.valid_to is None
        assert new.source == "redraw by test: why"
    assert len(by_code[G4]) == 1  # untouched: no new version
    # G2 at most gains the vertex where G1's new edge meets it ("noded"): same shape.
    kinds = {c.code: c.change for c in edit.changes}
    assert kinds.get(G2, "noded") == "noded" and len(by_code[G2]) == 1 + (G2 in kinds)
    assert shapely.area(shapely.symmetric_difference(current(conn, G2), before[G2])) < 1e-12
    assert_tiled(conn)
    assert_assignment_is_complete(conn)
    moved = conn.execute(
        sa.text("SELECT count(*) FROM households WHERE left(grid_code, 12) = :v"), {"v": VILLAGE}
    ).scalar_one()
    assert moved == people  # households changed grid, not village
    loads = {c.code: c.households for c in edit.changes}
    counted = {
        row[0]: row[1]
        for row in conn.execute(
            sa.text(
                "SELECT grid_code, count(*) FROM households WHERE grid_code = ANY(:c) "
                "GROUP BY grid_code"
            ),
            {"c": [G1, G3]},
        )
    }
    assert loads[G1] == counted[G1] and loads[G3] == counted[G3]


def test_dry_run_reports_the_same_and_stores_nothing(conn):
    geometry = grown_into(conn, G1, G3)
    before = snapshot(conn)
    preview = edit_grid(conn, G1, geometry=geometry, if_match={G1: 1}, actor="t", dry_run=True)
    assert preview.dry_run and snapshot(conn) == before
    done = edit_grid(conn, G1, geometry=geometry, if_match={G1: 1}, actor="t")
    assert [(c.code, c.change, c.households, c.people) for c in preview.changes] == [
        (c.code, c.change, c.households, c.people) for c in done.changes
    ]
    assert preview.points_moved == done.points_moved


def test_shrinking_at_the_village_edge_without_neighbour_is_refused(conn):
    g1 = current(conn, G1)
    others = shapely.union_all([current(conn, g) for g in (G2, G3, G4)])
    outer = shapely.difference(g1.boundary, shapely.buffer(others, 0.001))
    longest = max(shapely.get_parts(shapely.line_merge(outer)), key=shapely.length)
    bite = shapely.buffer(shapely.line_interpolate_point(longest, 0.5, normalized=True), 0.0003)
    before = snapshot(conn)
    with pytest.raises(ConflictError, match="no grid covers") as err:
        edit_grid(conn, G1, geometry=g1.difference(bite), if_match={G1: 1}, actor="t")
    where = shapely.Point(err.value.problems[0]["lon"], err.value.problems[0]["lat"])
    assert bite.buffer(1e-6).contains(where)
    assert snapshot(conn) == before


@pytest.mark.parametrize("target", [OTHER_TOWN_GRID, "511703109211002"])
def test_an_outline_in_another_village_or_town_is_refused(conn, target):
    before = snapshot(conn)
    with pytest.raises(GeometryError, match="outside its village"):
        edit_grid(conn, G1, geometry=current(conn, target), if_match={G1: 1}, actor="t")
    taking = shapely.union(current(conn, G1), current(conn, "511703109003002"))
    with pytest.raises(GeometryError, match="village 511703109003") as err:
        edit_grid(conn, G1, geometry=taking, if_match={G1: 1}, actor="t")
    assert {"lon", "lat", "area_m2"} <= set(err.value.problems[0])
    assert snapshot(conn) == before


def test_if_match_missing_stale_or_for_another_grid(conn):
    geometry = grown_into(conn, G1, G3)
    before = snapshot(conn)
    with pytest.raises(PreconditionRequiredError, match="If-Match is required"):
        edit_grid(conn, G1, geometry=geometry, if_match=None, actor="t")
    for stale in ({G1: 2}, {G2: 1}, {}):
        with pytest.raises(PreconditionFailedError, match='"511703109209001-v1"') as err:
            edit_grid(conn, G1, geometry=geometry, if_match=stale, actor="t")
        assert err.value.problems[0]["current_version"] == 1
    with pytest.raises(NotFoundError, match="not found"):
        edit_grid(conn, f"{VILLAGE}099", geometry=geometry, if_match={}, actor="t")
    assert snapshot(conn) == before


def test_split_adds_the_next_code_and_keeps_history(conn):
    g1 = current(conn, G1)
    (minx, _, maxx, _), y = g1.bounds, shapely.centroid(g1).y
    edit = split_grid(
        conn,
        G1,
        shapely.LineString([(minx - 0.001, y), (maxx + 0.001, y)]),
        if_match={G1: 1},
        actor="t",
    )
    new = f"{VILLAGE}005"
    changes = {c.code: c for c in edit.changes}
    assert (changes[G1].change, changes[G1].version) == ("redrawn", 2)
    assert (changes[new].change, changes[new].version, changes[new].previous_version) == (
        "added",
        1,
        None,
    )
    assert {c.change for c in edit.changes} <= {"redrawn", "added", "noded"}
    assert edit.grids_without_member == [new]
    name, seq = conn.execute(
        sa.text("SELECT name, seq FROM grids WHERE code = :c AND valid_to IS NULL"), {"c": new}
    ).one()
    assert (name, seq) == ("石垭第5网格", 5)
    assert changes[G1].area_km2 >= changes[new].area_km2  # the larger piece keeps the code
    assert shapely.equals(shapely.union(current(conn, G1), current(conn, new)), g1.buffer(0)) or (
        shapely.area(
            shapely.symmetric_difference(shapely.union(current(conn, G1), current(conn, new)), g1)
        )
        < 1e-12
    )
    assert changes[G1].households + changes[new].households > 0
    assert_tiled(conn)
    assert_assignment_is_complete(conn)


def test_split_refusals_change_nothing(conn):
    before = snapshot(conn)
    g1 = current(conn, G1)
    c = shapely.centroid(g1)
    with pytest.raises(GeometryError, match="does not cut"):
        split_grid(
            conn,
            G1,
            shapely.LineString([(c.x, c.y), (c.x + 1e-4, c.y)]),
            if_match={G1: 1},
            actor="t",
        )
    assert snapshot(conn) == before


def test_merge_keeps_the_smaller_code_and_reports_the_member(conn):
    union = shapely.union(current(conn, G1), current(conn, G2))
    edit = merge_grids(conn, G2, G1, if_match={G1: 1, G2: 1}, actor="t")
    assert edit.code == G1
    assert [(c.code, c.change, c.version) for c in edit.changes] == [
        (G1, "redrawn", 2),
        (G2, "retired", None),
    ]
    assert [m["code"] for m in edit.retired_members] == ["M511703109209002"]
    assert "*" in edit.retired_members[0]["phone"]
    assert shapely.area(shapely.symmetric_difference(current(conn, G1), union)) < 1e-12
    closed = conn.execute(
        sa.text("SELECT count(*), bool_and(valid_to IS NOT NULL) FROM grids WHERE code = :c"),
        {"c": G2},
    ).one()
    assert tuple(closed) == (1, True)  # closed, no successor, history kept
    stayed = conn.execute(
        sa.text("SELECT status::text, grid_code FROM members WHERE code = 'M511703109209002'")
    ).one()
    assert tuple(stayed) == ("appointed", G2)  # reported, not changed
    assert (
        conn.scalar(sa.text("SELECT count(*) FROM households WHERE grid_code = :c"), {"c": G2}) == 0
    )
    assert_tiled(conn)
    assert_assignment_is_complete(conn)


def test_merge_refusals(conn):
    before = snapshot(conn)
    with pytest.raises(ConflictError, match="not neighbours"):
        merge_grids(conn, G1, G4, if_match={G1: 1, G4: 1}, actor="t")
    with pytest.raises(ConflictError, match="different villages"):
        merge_grids(conn, G1, "511703109003002", if_match={G1: 1, "511703109003002": 1}, actor="t")
    with pytest.raises(PreconditionRequiredError, match="511703109209002"):
        merge_grids(conn, G1, G2, if_match={G1: 1}, actor="t")
    with pytest.raises(NotFoundError):
        merge_grids(conn, G1, f"{VILLAGE}098", if_match={G1: 1}, actor="t")
    assert snapshot(conn) == before


def test_rename_writes_a_version_with_the_same_shape(conn):
    shape = current(conn, G4)
    edit = edit_grid(conn, G4, name="石垭新四组网格", if_match={G4: 1}, actor="t")
    assert [(c.code, c.change, c.version) for c in edit.changes] == [(G4, "renamed", 2)]
    assert edit.points_moved == dict.fromkeys(ASSIGNED_TABLES, 0)
    assert shapely.equals_exact(current(conn, G4), shape, tolerance=0)
    assert edit.grid["properties"]["name"] == "石垭新四组网格"
    same = edit_grid(conn, G3, name="石垭第3网格", if_match={G3: 1}, actor="t")
    assert same.changes == []  # nothing changed: nothing written


def test_two_edits_in_a_row_the_second_needs_the_new_etag(fresh_database_url):
    eng = sa.create_engine(fresh_database_url)
    try:
        with eng.begin() as conn:
            first = edit_grid(
                conn, G1, geometry=grown_into(conn, G1, G3), if_match={G1: 1}, actor="a"
            )
        with eng.begin() as conn, pytest.raises(PreconditionFailedError, match=first.etag):
            edit_grid(conn, G1, geometry=grown_into(conn, G1, G2), if_match={G1: 1}, actor="b")
        with eng.begin() as conn:
            second = edit_grid(
                conn, G1, geometry=grown_into(conn, G1, G2), if_match={G1: 2}, actor="b"
            )
            assert second.etag == version_tag(G1, 3)
            versions = conn.execute(
                sa.text(
                    "SELECT version, valid_from, valid_to FROM grids WHERE code = :c "
                    "ORDER BY version"
                ),
                {"c": G1},
            ).all()
            assert [v.version for v in versions] == [1, 2, 3]
            assert versions[0].valid_to == versions[1].valid_from
            assert versions[1].valid_to == versions[2].valid_from and versions[2].valid_to is None
            assert_tiled(conn)
            assert_assignment_is_complete(conn)
    finally:
        eng.dispose()


def test_layout_reads_the_village_and_its_neighbours(conn):
    layout = read_layout(conn, VILLAGE)
    assert set(layout.codes[layout.own]) == {G1, G2, G3, G4}
    assert (~layout.own).any() and layout.crs.to_epsg() == 4545
    assert CGCS2000.is_geographic
