"""The synthetic benchmark data in a scratch PostGIS database of the platform's schema.

``make_grids``/``make_points``/``redraw`` (``benchmarks/_synthetic.py``) work in EPSG:4545 with
codes ``G0000001`` ...; the platform stores EPSG:4490 and 15-digit codes (12-digit village code
+ 3-digit sequence). This module converts both, order-preserving, so that the "smallest code"
border rule picks the same grid in memory and in the database:

* synthetic code ``G<k>`` -> village ``k // 499`` (``511703109`` + ``201``, ``202`` ...),
  sequence ``2 (k mod 499) + 1``; the part a redraw splits off (``G<k>b``) gets the next, even
  sequence. Codes therefore sort the same way before and after the mapping.
* coordinates are transformed point by point (pyproj), so vertices shared by neighbours stay
  identical and points placed on vertices stay on them.

``scratch_database`` creates a database on the server of ``GIS_GRID_DATABASE_URL`` (migrated to
head: the assignment triggers included) and drops it afterwards, even on error.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection

from gis_grid.db import migrate
from gis_grid.db.engine import drop_database
from gis_grid.db.write import copy_frame

__all__ = [
    "DISTRICT",
    "TOWN",
    "load_grid_version",
    "load_grids",
    "load_points",
    "platform_codes",
    "scratch_database",
    "to_platform",
]

DISTRICT, TOWN = "511703", "511703109"
_PER_VILLAGE = 499
_FIRST = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


@contextmanager
def scratch_database(server: URL) -> Iterator[URL]:
    """Create a migrated database with PostGIS on ``server``; drop it on exit."""
    name = f"gis_grid_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = server.set(database=name)
    try:
        engine = sa.create_engine(url, poolclass=sa.NullPool)
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS postgis")
            conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS btree_gist")
        engine.dispose()
        migrate.upgrade(url)
        yield url
    finally:
        with admin.connect() as conn:
            drop_database(conn, name)
        admin.dispose()


def platform_codes(codes: pd.Series) -> pd.Series:
    """Map synthetic codes (``G0000042``, ``G0000042b``) to 15-digit grid codes, in order."""
    text = codes.astype(str)
    split = text.str.endswith("b")
    k = text.str.slice(1, 8).astype(np.int64) - 1
    village = k // _PER_VILLAGE
    seq = 2 * (k % _PER_VILLAGE) + 1 + split.astype(np.int64)
    return TOWN + (201 + village).map("{:03d}".format) + seq.map("{:03d}".format)


def to_platform(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """``frame`` in EPSG:4490, with 15-digit ``code`` (grids) if it has a code column."""
    out = frame.to_crs(4490)
    if "code" in out.columns:
        out = out.assign(code=platform_codes(out["code"]).to_numpy())
    return out


def load_grids(conn: Connection, grids: gpd.GeoDataFrame) -> None:
    """District, town, villages (union of their grids) and the grids (version 1)."""
    codes = grids["code"]
    village_of = codes.str.slice(0, 12)
    geoms = np.asarray(grids.geometry, dtype=object)
    villages = sorted(village_of.unique())
    village_geoms = [
        shapely.coverage_union_all(geoms[(village_of == v).to_numpy()]) for v in villages
    ]
    town = shapely.box(*shapely.total_bounds(geoms))
    conn.execute(
        sa.text("INSERT INTO districts (code, name) VALUES (:d, 'bench')"), {"d": DISTRICT}
    )
    conn.execute(
        sa.text(
            "INSERT INTO towns (code, name, district_code, geom) "
            "VALUES (:t, 'bench', :d, ST_Multi(ST_GeomFromText(:g, 4490)))"
        ),
        {"t": TOWN, "d": DISTRICT, "g": town.wkt},
    )
    frame = gpd.GeoDataFrame(
        {"code": villages, "name": villages, "town_code": TOWN, "kind": "village"},
        geometry=village_geoms,
        crs=4490,
    )
    copy_frame(
        conn,
        "villages",
        frame,
        ["code", "name", "town_code", "kind"],
        geom_column="geom",
        multi=True,
    )
    load_grid_version(conn, grids, version=1, valid_from=_FIRST)


def load_grid_version(
    conn: Connection, grids: gpd.GeoDataFrame, *, version: int | pd.Series, valid_from: dt.datetime
) -> None:
    """COPY grid rows (15-digit ``code``, geometry in EPSG:4490) as current versions."""
    codes = grids["code"]
    frame = gpd.GeoDataFrame(
        {
            "code": codes.to_numpy(),
            "village_code": codes.str.slice(0, 12).to_numpy(),
            "seq": codes.str.slice(12).astype(int).to_numpy(),
            "version": version,
            "valid_from": valid_from.isoformat(),
            "synthetic": True,
        },
        geometry=np.asarray(grids.geometry, dtype=object),
        crs=4490,
    )
    columns = ["code", "village_code", "seq", "version", "valid_from", "synthetic"]
    copy_frame(conn, "grids", frame, columns, geom_column="geom", multi=True)


def load_points(
    conn: Connection, table: str, points: gpd.GeoDataFrame, *, village: str, triggers: bool
) -> None:
    """COPY points (EPSG:4490) into ``table`` with ``grid_code`` NULL; triggers off if asked."""
    frame = gpd.GeoDataFrame(
        {"code": "P" + points["pid"].astype(str), "village_code": village, "synthetic": True},
        geometry=np.asarray(points.geometry, dtype=object),
        crs=4490,
    )
    if not triggers:
        conn.exec_driver_sql(f"ALTER TABLE {table} DISABLE TRIGGER USER")
    copy_frame(conn, table, frame, ["code", "village_code", "synthetic"], geom_column="geom")
    if not triggers:
        conn.exec_driver_sql(f"ALTER TABLE {table} ENABLE TRIGGER USER")
