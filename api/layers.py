"""Map layers: which tables the service exposes, and their GeoJSON / GeoDataFrame queries.

No web framework here: functions take an SQLAlchemy connection and raise
:mod:`gis_grid.errors`, so the same layer catalogue serves the API, the map page, notebooks
and (later) OGC API Features / vector tiles. GeoJSON is assembled by PostGIS
(``ST_AsGeoJSON`` + ``json_agg``) in one statement per request, never row by row in Python.

Privacy: every layer lists the columns it exposes (:class:`LayerSpec`) and nothing else is
selected. Residents (names, ID numbers, phones), members' phones, household addresses and
incident titles (free text that may name people) never appear in a layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from api.crud import GEOJSON_DIGITS, BBox, area_km2_sql
from gis_grid.db.models import NaturalLineKind
from gis_grid.errors import NotFoundError
from gis_grid.lines import class_label_sql
from gis_grid.queries import Where

__all__ = [
    "LAYER_SPECS",
    "LayerPage",
    "LayerSpec",
    "available_layers",
    "data_fingerprint",
    "get_layer_spec",
    "layer_feature_collection",
    "layer_frame",
]


@dataclass(frozen=True)
class LayerSpec:
    """How one map layer is read: its table, the columns it exposes, and its town filter.

    Parameters
    ----------
    name
        Layer name in URLs (``/api/v1/layers/{name}``).
    title
        Chinese title.
    geometry_type
        GeoJSON geometry type of its features.
    table
        The table it needs; layers whose table is absent are not offered.
    from_sql
        ``FROM`` clause; the main table is aliased ``t``.
    properties
        ``(name, SQL expression)`` of every property exposed. Nothing else is selected.
    town_sql
        Condition selecting one town's features, with the bound parameter ``:town``.
    where_sql
        Condition always applied (e.g. only current grid versions).
    """

    name: str
    title: str
    geometry_type: str
    table: str
    from_sql: str
    properties: tuple[tuple[str, str], ...]
    town_sql: str
    where_sql: str = "TRUE"
    id_sql: str = "t.id"
    order_sql: str = "t.id"


#: A village-coded row's town: the first 9 digits of its 12-digit village code.
_IN_TOWN = "left(t.village_code, 9) = :town"


def _area_layer(
    name: str,
    title: str,
    from_sql: str,
    properties: tuple[tuple[str, str], ...],
    *,
    town_sql: str,
    where_sql: str = "TRUE",
) -> LayerSpec:
    """Describe a layer of areas (towns, villages, grids), keyed and ordered by code.

    Its table is the one ``from_sql`` starts with.
    """
    return LayerSpec(
        name=name,
        title=title,
        geometry_type="MultiPolygon",
        table=from_sql.split(maxsplit=1)[0],
        from_sql=from_sql,
        properties=properties,
        town_sql=town_sql,
        where_sql=where_sql,
        id_sql="t.code",
        order_sql="t.code",
    )


def _point_layer(
    name: str, title: str, table: str, extra: tuple[tuple[str, str], ...]
) -> LayerSpec:
    return LayerSpec(
        name=name,
        title=title,
        geometry_type="Point",
        table=table,
        from_sql=f"{table} t LEFT JOIN villages v ON v.code = t.village_code",
        properties=(
            ("code", "t.code"),
            *extra,
            ("village_code", "t.village_code"),
            ("village", "v.name"),
            ("grid_code", "t.grid_code"),
        ),
        town_sql=_IN_TOWN,
    )


def _line_layer(name: str, title: str, kind: NaturalLineKind) -> LayerSpec:
    """One kind of natural line; a town's lines are its own and those crossing it."""
    return LayerSpec(
        name=name,
        title=title,
        geometry_type="MultiLineString",
        table="natural_lines",
        from_sql="natural_lines t LEFT JOIN towns tw ON tw.code = t.town_code",
        properties=(
            ("code", "t.code"),
            ("name", "t.name"),
            ("rank", "t.rank"),
            ("class", class_label_sql()),
            ("town_code", "t.town_code"),
            ("town", "tw.name"),
            ("synthetic", "t.synthetic"),
            ("source", "t.source"),
        ),
        # The OR's second arm uses the GiST index: the town polygon is one row by its key.
        town_sql=(
            "t.town_code = :town OR ST_Intersects(t.geom, "
            "(SELECT tn.geom FROM towns tn WHERE tn.code = :town))"
        ),
        where_sql=f"t.kind = '{kind.value}'",
    )


_GRID_COUNTS = (
    "LEFT JOIN LATERAL (SELECT count(*) AS households, coalesce(sum(hh.people), 0) AS people "
    "FROM households hh WHERE hh.grid_code = t.code) hc ON true"
)

#: Every layer the service knows, in drawing order.
LAYER_SPECS: dict[str, LayerSpec] = {
    spec.name: spec
    for spec in (
        _area_layer(
            "towns",
            "镇（街道）",
            "towns t",
            (
                ("code", "t.code"),
                ("name", "t.name"),
                ("villages", "(SELECT count(*) FROM villages v WHERE v.town_code = t.code)"),
                ("area_km2", f"round(({area_km2_sql('t.geom')})::numeric, 3)"),
            ),
            town_sql="t.code = :town",
        ),
        _area_layer(
            "villages",
            "村（社区）",
            "villages t JOIN towns tw ON tw.code = t.town_code",
            (
                ("code", "t.code"),
                ("name", "t.name"),
                ("kind", "t.kind::text"),
                ("town_code", "t.town_code"),
                ("town", "tw.name"),
            ),
            town_sql="t.town_code = :town",
        ),
        _area_layer(
            "grids",
            "网格（现行）",
            f"grids t JOIN villages v ON v.code = t.village_code {_GRID_COUNTS}",
            (
                ("code", "t.code"),
                ("name", "t.name"),
                ("village_code", "t.village_code"),
                ("village", "v.name"),
                ("version", "t.version"),
                ("valid_from", "t.valid_from"),
                ("households", "hc.households"),
                ("people", "hc.people"),
            ),
            town_sql=_IN_TOWN,
            where_sql="t.valid_to IS NULL",
        ),
        LayerSpec(
            name="households",
            title="住户",
            geometry_type="Point",
            table="households",
            from_sql="households t JOIN villages v ON v.code = t.village_code",
            # Deliberately no code, address or residents: id, place and size only.
            properties=(
                ("id", "t.id"),
                ("village_code", "t.village_code"),
                ("village", "v.name"),
                ("grid_code", "t.grid_code"),
                ("people", "t.people"),
            ),
            town_sql=_IN_TOWN,
        ),
        _point_layer(
            "pollution", "污染排放点", "pollution_points", (("name", "t.name"), ("kind", "t.kind"))
        ),
        _point_layer(
            "hazards",
            "环境隐患",
            "hazards",
            (("name", "t.name"), ("kind", "t.kind"), ("level", "t.level")),
        ),
        LayerSpec(
            name="incidents",
            title="事件",
            geometry_type="Point",
            table="incidents",
            from_sql=(
                "incidents t LEFT JOIN villages v ON v.code = t.village_code "
                "LEFT JOIN task_types tt ON tt.code = t.task_type_code"
            ),
            # The free-text title may name residents: the type stands in for it.
            properties=(
                ("code", "t.code"),
                ("task_type_code", "t.task_type_code"),
                ("kind", "tt.name"),
                ("status", "t.status::text"),
                ("reported_at", "t.reported_at"),
                ("deadline", "t.deadline"),
                ("village_code", "t.village_code"),
                ("village", "v.name"),
                ("grid_code", "t.grid_code"),
            ),
            town_sql=_IN_TOWN,
        ),
        # Natural lines, one table filtered by kind (offered once the schema has it, 0002).
        _line_layer("rivers", "河流", NaturalLineKind.RIVER),
        _line_layer("streams", "溪流（DEM 提取）", NaturalLineKind.STREAM),
        _line_layer("roads", "道路（合成）", NaturalLineKind.ROAD),
    )
}


def available_layers(conn: Connection) -> list[LayerSpec]:
    """List the layers whose tables exist in this database, in drawing order.

    Parameters
    ----------
    conn
        Connection to the platform database.

    Returns
    -------
    list of LayerSpec
        A subset of :data:`LAYER_SPECS`.
    """
    tables = {spec.table for spec in LAYER_SPECS.values()}
    present = set(
        conn.execute(
            sa.text(
                "SELECT c.relname FROM pg_class c "
                "WHERE c.relname = ANY(:names) AND c.relkind IN ('r', 'v', 'm', 'p') "
                "AND pg_table_is_visible(c.oid)"
            ),
            {"names": sorted(tables)},
        ).scalars()
    )
    return [spec for spec in LAYER_SPECS.values() if spec.table in present]


def get_layer_spec(conn: Connection, name: str) -> LayerSpec:
    """Return the spec of one available layer.

    Raises
    ------
    NotFoundError
        If the layer is unknown or not stored here; the message lists the known layers.
    """
    layers = available_layers(conn)
    for spec in layers:
        if spec.name == name:
            return spec
    msg = f"layer {name!r} not found; known layers: {', '.join(s.name for s in layers)}"
    raise NotFoundError(msg)


def _filters(spec: LayerSpec, town: str | None, bbox: BBox | None) -> tuple[str, dict[str, Any]]:
    where = Where().add(spec.where_sql).given(spec.town_sql, town=town).bbox(bbox)
    return where.sql, where.params


@dataclass(frozen=True)
class LayerPage:
    """One page of a layer as a GeoJSON FeatureCollection (text, built by PostGIS)."""

    geojson: str
    number_matched: int
    number_returned: int


def layer_feature_collection(
    conn: Connection,
    spec: LayerSpec,
    *,
    town: str | None = None,
    bbox: BBox | None = None,
    limit: int = 1000,
    offset: int = 0,
) -> LayerPage:
    """One page of a layer as a GeoJSON FeatureCollection, built in one SQL statement.

    Parameters
    ----------
    conn
        Connection to the platform database.
    spec
        The layer (from :func:`get_layer_spec`).
    town
        Only features of this town (9-digit code).
    bbox
        Only features intersecting this box.
    limit, offset
        Paging, in the layer's stable order.

    Returns
    -------
    LayerPage
        The FeatureCollection text with ``numberMatched``/``numberReturned`` (OGC API
        Features members), and those two counts.
    """
    where, params = _filters(spec, town, bbox)
    props = ", ".join(f"'{name}', p.{name}" for name, _ in spec.properties)
    cols = ", ".join(f"{expr} AS {name}" for name, expr in spec.properties)
    sql = f"""
    WITH p AS (
        SELECT {spec.id_sql} AS feature_id, {cols}, t.geom AS geom
        FROM {spec.from_sql}
        WHERE {where}
        ORDER BY {spec.order_sql}
        LIMIT :limit OFFSET :offset
    ), m AS (
        SELECT count(*) AS n FROM {spec.from_sql} WHERE {where}
    )
    SELECT
        m.n AS matched,
        count(p.feature_id) AS returned,
        json_build_object(
            'type', 'FeatureCollection',
            'name', CAST(:layer AS text),
            'numberMatched', m.n,
            'numberReturned', count(p.feature_id),
            'features', coalesce(json_agg(json_build_object(
                'type', 'Feature',
                'id', p.feature_id,
                'geometry', ST_AsGeoJSON(p.geom, {GEOJSON_DIGITS}, 0)::json,
                'properties', json_build_object({props})
            )) FILTER (WHERE p.feature_id IS NOT NULL), '[]'::json)
        )::text AS geojson
    FROM m LEFT JOIN p ON true
    GROUP BY m.n
    """
    row = conn.execute(
        sa.text(sql), {**params, "limit": limit, "offset": offset, "layer": spec.name}
    ).one()
    return LayerPage(
        geojson=row.geojson, number_matched=int(row.matched), number_returned=int(row.returned)
    )


def layer_frame(conn: Connection, spec: LayerSpec, *, town: str | None = None) -> gpd.GeoDataFrame:
    """Read a whole layer (or one town's part) as a GeoDataFrame in EPSG:4490.

    Parameters
    ----------
    conn
        Connection to the platform database.
    spec
        The layer.
    town
        Only this town's features.

    Returns
    -------
    geopandas.GeoDataFrame
        The exposed properties and ``geometry``, CRS EPSG:4490.
    """
    where, params = _filters(spec, town, None)
    cols = ", ".join(f"{expr} AS {name}" for name, expr in spec.properties)
    sql = (
        f"SELECT {cols}, t.geom AS geometry FROM {spec.from_sql} "
        f"WHERE {where} ORDER BY {spec.order_sql}"
    )
    frame = gpd.read_postgis(sa.text(sql), conn, geom_col="geometry", params=params)
    if frame.crs is None:  # empty results carry no SRID
        frame = frame.set_crs(4490)
    return frame


def data_fingerprint(conn: Connection) -> str:
    """Return a cheap value that changes with the layers' data (to cache rendered maps).

    Combines row counts with PostgreSQL's cumulative insert/update/delete counters of the
    tables. The counters are flushed with a short delay, so callers should also expire cached
    entries after a while.

    Returns
    -------
    str
        An opaque string.
    """
    tables = sorted({spec.table for spec in available_layers(conn)})
    row = conn.execute(
        sa.text(
            "SELECT json_agg(json_build_array(relname, n_live_tup, n_tup_ins, n_tup_upd, "
            "n_tup_del) ORDER BY relname)::text FROM pg_stat_user_tables "
            "WHERE relname = ANY(:names)"
        ),
        {"names": tables},
    ).scalar_one()
    return str(row)
