"""Run the Alembic migrations from Python (the command line and the tests use this).

The migrations live in the package (``gis_grid/db/migrations``), so they work from an
installed wheel too; ``alembic.ini`` at the repository root only serves the ``alembic``
command during development.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import URL

from gis_grid.db.engine import database_url, make_engine

__all__ = ["MIGRATIONS_DIR", "alembic_config", "current_revision", "downgrade", "head", "upgrade"]

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str | URL | None = None) -> Config:
    """Build an Alembic configuration for the platform's migrations on ``url``.

    Parameters
    ----------
    url
        Database URL; defaults to ``GIS_GRID_DATABASE_URL``.

    Returns
    -------
    alembic.config.Config
        With ``script_location`` set and the URL in ``attributes["url"]`` (not in the ini
        options, where ``%`` in a password would be taken for interpolation).
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["url"] = database_url(url)
    return config


def upgrade(url: str | URL | None = None, revision: str = "head") -> None:
    """Migrate the database up to ``revision``.

    Parameters
    ----------
    url
        Database URL; defaults to ``GIS_GRID_DATABASE_URL``.
    revision
        Target revision (``"head"`` by default).

    Examples
    --------
    >>> upgrade("postgresql+psycopg://gis_grid:gis_grid@127.0.0.1:55432/gis_grid")  # doctest: +SKIP
    """
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str | URL | None, revision: str) -> None:
    """Migrate the database down to ``revision`` (``"base"`` removes the whole schema).

    Parameters
    ----------
    url
        Database URL; ``None`` means ``GIS_GRID_DATABASE_URL``.
    revision
        Target revision, e.g. ``"base"`` or ``"-1"``.
    """
    command.downgrade(alembic_config(url), revision)


def current_revision(url: str | URL | None = None) -> str | None:
    """Return the revision the database is at, or ``None`` if it was never migrated.

    Parameters
    ----------
    url
        Database URL; defaults to ``GIS_GRID_DATABASE_URL``.

    Returns
    -------
    str or None
        The revision id.
    """
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def head() -> str:
    """Return the newest revision of the migrations.

    Returns
    -------
    str
        The head revision id.
    """
    script = ScriptDirectory.from_config(alembic_config("postgresql://localhost/unused"))
    return str(script.get_current_head())
