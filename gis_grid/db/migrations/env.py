"""Alembic environment of the platform's migrations.

The database comes from, in order: a connection in ``config.attributes["connection"]``, a URL
in ``config.attributes["url"]`` (both set by :mod:`gis_grid.db.migrate`), or the
``GIS_GRID_DATABASE_URL`` setting (the ``alembic`` command during development).
"""

from __future__ import annotations

from logging.config import fileConfig

import sqlalchemy as sa
from alembic import context

from gis_grid.db.engine import database_url
from gis_grid.db.models import Base

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata

#: Tables that PostGIS and its companion extensions own, never ours to migrate.
POSTGIS_TABLES = frozenset({"spatial_ref_sys", "geometry_columns", "geography_columns"})


def include_object(obj, name, type_, reflected, compare_to):
    """Leave PostGIS's own tables out of autogenerate comparisons."""
    postgis_owned = name in POSTGIS_TABLES or obj.schema in {"tiger", "topology"}
    return not (type_ == "table" and postgis_owned)


def _configure(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_object=include_object,
        compare_type=True,
        transaction_per_migration=False,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    """Emit SQL instead of running it (``alembic upgrade head --sql``)."""
    url = config.attributes.get("url") or database_url()
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        include_object=include_object,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run the migrations on a live connection, in one transaction."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        return
    engine = sa.create_engine(config.attributes.get("url") or database_url(), poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            _configure(conn)
            conn.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
