"""Alembic migrations: upgrade, downgrade and upgrade again; models match the migrated schema."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import URL

from gis_grid.db import migrate
from gis_grid.db.engine import drop_database
from gis_grid.db.models import Base

pytestmark = pytest.mark.postgis

TABLES = {
    "districts",
    "towns",
    "villages",
    "grids",
    "members",
    "households",
    "residents",
    "pollution_points",
    "hazards",
    "task_types",
    "incidents",
    "natural_lines",
    "member_status_changes",
    "ab_posts",
    "absences",
    "incident_events",
    "attachments",
    "patrol_logs",
    "task_type_changes",
    *("users", "sessions", "audit_log"),
}
ENUMS = {
    "village_kind",
    "gender",
    "member_status",
    "approval_state",
    "incident_status",
    "natural_line_kind",
}
#: What revision 0002 adds on top of 0001.
LINES_TABLES, LINES_ENUMS = {"natural_lines"}, {"natural_line_kind"}
#: What revision 0004 adds (tables; it also adds columns to members, incidents, residents).
WORKFLOW_TABLES = {
    "member_status_changes",
    "ab_posts",
    "absences",
    "incident_events",
    "attachments",
    "patrol_logs",
    "task_type_changes",
}
#: What revision 0005 adds (tables; it also changes residents and enables row-level security).
SECURITY_TABLES = {"users", "sessions", "audit_log"}


@pytest.fixture
def fresh_url(database_url: URL) -> Iterator[URL]:
    """A database of its own: these tests tear the schema down, other modules must not see it."""
    name = f"gis_grid_mig_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(database_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield database_url.set(database=name)
    finally:
        with admin.connect() as conn:
            drop_database(conn, name)
        admin.dispose()


def _state(url: URL) -> tuple[set[str], set[str], bool]:
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    with engine.connect() as conn:
        tables = set(sa.inspect(conn).get_table_names()) - {"spatial_ref_sys", "alembic_version"}
        enums = set(conn.scalars(sa.text("SELECT typname FROM pg_type WHERE typtype = 'e'")))
        func = bool(
            conn.scalar(
                sa.text("SELECT count(*) FROM pg_proc WHERE proname = 'id_number_check_character'")
            )
        )
    engine.dispose()
    return tables, enums, func


def _diff(url: URL) -> list[object]:
    engine = sa.create_engine(url, poolclass=sa.NullPool)

    def include_object(obj, name, type_, reflected, compare_to):
        return not (type_ == "table" and name == "spatial_ref_sys")

    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"include_object": include_object, "compare_type": True}
        )
        diff = compare_metadata(context, Base.metadata)
    engine.dispose()
    return diff


def test_upgrade_downgrade_upgrade(fresh_url):
    assert migrate.current_revision(fresh_url) is None
    migrate.upgrade(fresh_url)
    assert migrate.current_revision(fresh_url) == migrate.head()
    assert _state(fresh_url) == (TABLES, ENUMS, True)

    migrate.downgrade(fresh_url, "base")
    assert migrate.current_revision(fresh_url) is None
    assert _state(fresh_url) == (set(), set(), False)

    migrate.upgrade(fresh_url, "head")
    assert _state(fresh_url) == (TABLES, ENUMS, True)
    # PostGIS itself survives the downgrade (extensions are shared, never dropped)
    engine = sa.create_engine(fresh_url, poolclass=sa.NullPool)
    with engine.connect() as conn:
        assert conn.scalar(sa.text("SELECT postgis_version()"))
    engine.dispose()


def test_natural_lines_revision_goes_down_and_up_alone(fresh_url):
    # 0002 on its own: down to 0001 removes only the lines table and its enum, keeps the
    # rows of 0001's tables, and up again restores it
    migrate.upgrade(fresh_url, "0001")
    assert _state(fresh_url) == (
        TABLES - WORKFLOW_TABLES - SECURITY_TABLES - LINES_TABLES,
        ENUMS - LINES_ENUMS,
        True,
    )
    engine = sa.create_engine(fresh_url, poolclass=sa.NullPool)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO districts (code, name) VALUES ('511703', '达川区')"))
    engine.dispose()

    migrate.upgrade(fresh_url, "0002")
    assert migrate.current_revision(fresh_url) == "0002"
    assert _state(fresh_url) == (TABLES - WORKFLOW_TABLES - SECURITY_TABLES, ENUMS, True)

    migrate.downgrade(fresh_url, "0001")
    assert migrate.current_revision(fresh_url) == "0001"
    assert _state(fresh_url) == (
        TABLES - WORKFLOW_TABLES - SECURITY_TABLES - LINES_TABLES,
        ENUMS - LINES_ENUMS,
        True,
    )
    engine = sa.create_engine(fresh_url, poolclass=sa.NullPool)
    with engine.connect() as conn:
        assert conn.scalar(sa.text("SELECT count(*) FROM districts")) == 1
        lines_columns = conn.scalar(
            sa.text("SELECT count(*) FROM geometry_columns WHERE f_table_name = 'natural_lines'")
        )
        assert lines_columns == 0
    engine.dispose()

    migrate.upgrade(fresh_url)
    assert _state(fresh_url) == (TABLES, ENUMS, True)
    assert _diff(fresh_url) == []


def test_models_match_migrated_schema(fresh_url):
    migrate.upgrade(fresh_url)
    assert _diff(fresh_url) == []


def test_comparison_would_notice_a_difference(fresh_url):
    # guard against a comparison that is blind: drop an index and a column, expect diffs
    migrate.upgrade(fresh_url)
    engine = sa.create_engine(fresh_url, poolclass=sa.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP INDEX ix_grids_geom")
        conn.exec_driver_sql("ALTER TABLE households DROP COLUMN address")
        conn.exec_driver_sql("ALTER TABLE members ALTER COLUMN education TYPE varchar(20)")
    engine.dispose()
    kinds = {entry[0] if isinstance(entry, tuple) else entry[0][0] for entry in _diff(fresh_url)}
    assert {"add_index", "add_column", "modify_type"} <= kinds


def test_workflow_revision_goes_down_and_up_alone(fresh_url):
    # 0004 on its own: down to 0003 removes its tables and columns, keeps members' rows
    migrate.upgrade(fresh_url)
    engine = sa.create_engine(fresh_url, poolclass=sa.NullPool)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO members (code, name, status, grid_code, veteran) "
                "VALUES ('M1', '张三', 'appointed', '511703109001001', true)"
            )
        )
        # one appointed member per grid (article 5)
        with (
            pytest.raises(sa.exc.IntegrityError, match="uq_members_appointed_grid"),
            conn.begin_nested(),
        ):
            conn.execute(
                sa.text(
                    "INSERT INTO members (code, name, status, grid_code) "
                    "VALUES ('M2', '李四', 'appointed', '511703109001001')"
                )
            )
    migrate.downgrade(fresh_url, "0003")
    assert _state(fresh_url) == (TABLES - WORKFLOW_TABLES - SECURITY_TABLES, ENUMS, True)
    with engine.connect() as conn:
        columns = set(
            conn.scalars(
                sa.text(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_name = 'members'"
                )
            )
        )
        assert "veteran" not in columns and "village_code" not in columns
        assert conn.scalar(sa.text("SELECT name FROM members WHERE code = 'M1'")) == "张三"
    migrate.upgrade(fresh_url)
    assert _state(fresh_url) == (TABLES, ENUMS, True)
    engine.dispose()
