"""The database the notebooks read: the sample data in PostGIS, the same on every run.

By default :func:`sample_engine` creates a scratch database on the server that
``GIS_GRID_DATABASE_URL`` points at, migrates it (:func:`gis_grid.db.migrate.upgrade`), loads
``data/shapefiles/`` into it (:func:`gis_grid.load.load_sample`, ~4 s) and drops it when the
kernel exits. The notebooks therefore never see (or change) the platform's own data, and CI
gets the same numbers every time.

To read the platform's database as it is instead (e.g. after real data was loaded), set
``GIS_GRID_NOTEBOOK_DATABASE=existing``: the notebooks then use ``GIS_GRID_DATABASE_URL``
itself, read-only (they never write).
"""

from __future__ import annotations

import atexit
import os
import uuid
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gis_grid.db.engine import database_url, drop_database
from gis_grid.db.migrate import upgrade
from gis_grid.load import load_sample

__all__ = ["HESHI", "ROOT", "SAMPLE_DATA", "ZHAOJIA", "close", "sample_engine"]

#: The repository root and the sample layers shipped with it.
ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DATA = ROOT / "data" / "shapefiles"

#: The two sample towns' NBS codes: 赵家镇 (no DEM) and 河市镇 (with the SRTM tile).
ZHAOJIA = "511703109"
HESHI = "511703129"


#: Scratch databases created by :func:`sample_engine`, by engine: dropped by :func:`close`.
_SCRATCH: dict[int, tuple[Engine, str]] = {}


def _drop(admin: Engine, name: str) -> None:
    with admin.connect() as conn:
        drop_database(conn, name)  # retries while autovacuum works in the fresh database
    admin.dispose()


def close(engine: Engine) -> None:
    """Dispose of ``engine`` and drop its scratch database (a no-op for ``existing``).

    Parameters
    ----------
    engine
        An engine from :func:`sample_engine`.
    """
    engine.dispose()
    scratch = _SCRATCH.pop(id(engine), None)
    if scratch is not None:
        _drop(*scratch)


def sample_engine() -> Engine:
    """Return an engine on a database holding the sample data.

    Returns
    -------
    sqlalchemy.engine.Engine
        On a scratch database loaded from ``data/shapefiles/`` (dropped at exit), or on
        ``GIS_GRID_DATABASE_URL`` itself when ``GIS_GRID_NOTEBOOK_DATABASE=existing``.
    """
    server = database_url()
    if os.environ.get("GIS_GRID_NOTEBOOK_DATABASE", "scratch") == "existing":
        return sa.create_engine(server)
    name = f"gis_grid_nb_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = server.set(database=name)
    engine = sa.create_engine(url)
    _SCRATCH[id(engine)] = (admin, name)
    # Should the last cell (close) not run, the database is still dropped when the kernel exits.
    atexit.register(close, engine)
    try:
        with engine.begin() as conn:  # already there when template1 has them (setup.sh)
            conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS postgis")
            conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS btree_gist")
        upgrade(url)
        load_sample(SAMPLE_DATA, engine, replace=True)
    except BaseException:
        close(engine)
        raise
    return engine
