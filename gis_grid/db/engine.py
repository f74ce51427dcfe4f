"""Engines for the platform's PostGIS database.

Library functions take the caller's engine or connection and never build one (geopandas
style); this module is where the command line and the service build theirs.
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine, make_url

from gis_grid.config import get_settings
from gis_grid.errors import GridError

__all__ = ["DatabaseError", "database_url", "drop_database", "make_engine", "postgis_version"]


class DatabaseError(GridError):
    """The database is unreachable, or lacks PostGIS or the schema."""


def database_url(url: str | URL | None = None) -> URL:
    """Return the database URL: ``url`` if given, else ``GIS_GRID_DATABASE_URL`` (or its default).

    Parameters
    ----------
    url
        An SQLAlchemy URL or its string form.

    Returns
    -------
    sqlalchemy.engine.URL
        The parsed URL.
    """
    return make_url(url if url is not None else get_settings().database_url)


def make_engine(url: str | URL | None = None, **kwargs: object) -> Engine:
    """Create an engine on the platform database.

    Parameters
    ----------
    url
        Database URL; defaults to the settings' ``database_url``.
    **kwargs
        Passed on to :func:`sqlalchemy.create_engine`.

    Returns
    -------
    sqlalchemy.engine.Engine
        An engine with ``pool_pre_ping`` so that a restarted server is noticed: a pooled
        connection that died with the server is replaced when next checked out, and the first
        request after a database restart succeeds (``tests/test_resilience.py``).

    Examples
    --------
    >>> engine = make_engine("postgresql+psycopg://u:p@127.0.0.1:5432/db")
    >>> engine.url.database
    'db'
    """
    options: dict[str, object] = {"pool_pre_ping": True, **kwargs}
    return sa.create_engine(database_url(url), **options)


def postgis_version(engine: Engine) -> str:
    """Connect and return the PostGIS version, failing clearly when that is not possible.

    Parameters
    ----------
    engine
        Engine on the database.

    Returns
    -------
    str
        E.g. ``"3.3 USE_GEOS=1 USE_PROJ=1 USE_STATS=1"``.

    Raises
    ------
    DatabaseError
        If the server is unreachable, refuses the login, or has no PostGIS extension.
    """
    where = engine.url.render_as_string(hide_password=True)
    try:
        with engine.connect() as conn:
            has_postgis = conn.scalar(
                sa.text("SELECT count(*) FROM pg_extension WHERE extname = 'postgis'")
            )
            if not has_postgis:
                msg = (
                    f"{where}: PostGIS is not installed in this database. Run "
                    "'CREATE EXTENSION postgis' as a superuser, or 'gis-grid db upgrade' "
                    "with a role allowed to create it."
                )
                raise DatabaseError(msg)
            return str(conn.scalar(sa.text("SELECT postgis_version()")))
    except sa.exc.OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        msg = (
            f"cannot connect to {where}: {reason}. Is the server running and "
            "GIS_GRID_DATABASE_URL right? (scripts/setup.sh starts a private cluster.)"
        )
        raise DatabaseError(msg) from exc


def drop_database(conn: Connection, name: str) -> None:
    """Drop a scratch database (tests, notebooks, benchmarks), even while autovacuum works in it.

    ``WITH (FORCE)`` ends the sessions of our own role, but a non-superuser cannot signal an
    autovacuum worker that entered the freshly loaded database ("must be a member of the role
    whose process is being terminated or member of pg_signal_backend"); a plain ``DROP
    DATABASE`` asks autovacuum to leave. So: FORCE first, then plain, a few times.

    Parameters
    ----------
    conn
        A connection in autocommit mode to another database of the same server.
    name
        The database to drop (a plain name: no double quote).

    Raises
    ------
    ValueError
        ``name`` contains a double quote.
    sqlalchemy.exc.DBAPIError
        Still refused after about half a minute of retries.
    """
    if '"' in name:
        msg = f"database name {name!r}: double quotes are not accepted"
        raise ValueError(msg)
    for attempt in range(20):
        try:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            return
        except sa.exc.DBAPIError:
            time.sleep(0.25 * (attempt + 1))
        try:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
            return
        except sa.exc.DBAPIError:
            time.sleep(0.25)
    conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
