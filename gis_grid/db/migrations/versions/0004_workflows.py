"""Workflows of the service: member selection and AB posts, absences, incident events,
attachments, patrol logs, residents' categories.

- ``members``: the recommending village, article-6 preferences (veteran, unemployed graduate)
  and exclusions found by vetting (NULL = not yet vetted), workflow dates, and a partial unique
  index: at most one *appointed* member per grid (一格一员, article 5).
- ``member_status_changes``: every step of the article-7 workflow (who, when, note).
- ``ab_posts``: the stored AB-post pairing (who covers whom), versioned like grids.
- ``absences``: a member's absences (date range, reason), from which the day's cover follows.
- ``incidents``: description, reporter, responsible member, closing time, evaluation (1–5);
  ``incident_events``: each workflow transition; ``attachments``: photos stored in the database
  with their size and SHA-256.
- ``patrol_logs``: patrols of pollution points and hazards (article 8).
- ``residents.categories``: incoming people, returnees from key areas, people in need.
- ``task_type_changes``: each step of a task type's admission (article 10).
- The assignment trigger of 0003 also re-locates the village when a point moves and the writer
  did not set a new village itself (0003 kept the old village of a moved point).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _enum(name):
    return postgresql.ENUM(name=name, create_type=False)


def _identity():
    return sa.Column("id", sa.Integer(), sa.Identity(always=False), nullable=False)


def _now(name):
    return sa.Column(
        name, sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
    )


ASSIGN_FUNCTION = """
CREATE OR REPLACE FUNCTION assign_point_location() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('gis_grid.assign_on_write', true) = 'off' THEN
        RETURN NEW;
    END IF;
    IF NEW.village_code IS NULL
       OR (TG_OP = 'UPDATE' AND NEW.village_code IS NOT DISTINCT FROM OLD.village_code) THEN
        NEW.village_code := coalesce(village_at(NEW.geom), NEW.village_code);
    END IF;
    NEW.grid_code := current_grid_at(NEW.geom);
    RETURN NEW;
END
$$
"""

#: The function as 0003 created it (restored by the downgrade).
ASSIGN_FUNCTION_0003 = """
CREATE OR REPLACE FUNCTION assign_point_location() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('gis_grid.assign_on_write', true) = 'off' THEN
        RETURN NEW;
    END IF;
    IF NEW.village_code IS NULL THEN
        NEW.village_code := village_at(NEW.geom);
    END IF;
    NEW.grid_code := current_grid_at(NEW.geom);
    RETURN NEW;
END
$$
"""

MEMBER_FLAGS = (
    "criminal_record", "relative_criminal_record", "organised_petitions", "cult_member",
)


def upgrade() -> None:
    op.add_column("members", sa.Column("village_code", sa.CHAR(12), nullable=True))
    op.create_foreign_key(
        "fk_members_village_code_villages", "members", "villages", ["village_code"], ["code"]
    )
    op.create_index("ix_members_village_code", "members", ["village_code"])
    for column in ("veteran", "unemployed_graduate"):
        op.add_column(
            "members",
            sa.Column(column, sa.Boolean(), server_default=sa.false(), nullable=False),
        )
    for column in MEMBER_FLAGS:
        op.add_column("members", sa.Column(column, sa.Boolean(), nullable=True))
    for column in ("applied_on", "appointed_on", "dismissed_on"):
        op.add_column("members", sa.Column(column, sa.Date(), nullable=True))
    op.create_index(
        "uq_members_appointed_grid",
        "members",
        ["grid_code"],
        unique=True,
        postgresql_where=sa.text("status = 'appointed'"),
    )

    op.create_table(
        "member_status_changes",
        _identity(),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("from_status", _enum("member_status"), nullable=True),
        sa.Column("to_status", _enum("member_status"), nullable=False),
        _now("changed_at"),
        sa.Column("actor", sa.Text(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], ondelete="CASCADE",
            name="fk_member_status_changes_member_id_members",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_member_status_changes"),
    )
    op.create_index(
        "ix_member_status_changes_member_id", "member_status_changes", ["member_id"]
    )

    op.create_table(
        "ab_posts",
        _identity(),
        sa.Column("town_code", sa.CHAR(9), nullable=False),
        sa.Column("grid_code", sa.CHAR(15), nullable=False),
        sa.Column("cover_grid_code", sa.CHAR(15), nullable=False),
        sa.Column("link", sa.Text(), server_default="adjacent", nullable=False),
        sa.Column("group_no", sa.Integer(), nullable=False),
        _now("valid_from"),
        sa.Column("valid_to", sa.DateTime(timezone=True), nullable=True),
        sa.Column("source", sa.Text(), nullable=True),
        sa.CheckConstraint("grid_code <> cover_grid_code", name=op.f("ck_ab_posts_not_self")),
        sa.CheckConstraint(
            "valid_to IS NULL OR valid_to > valid_from", name=op.f("ck_ab_posts_valid_interval")
        ),
        sa.ForeignKeyConstraint(
            ["town_code"], ["towns.code"], name="fk_ab_posts_town_code_towns"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_ab_posts"),
    )
    op.create_index("ix_ab_posts_town_code", "ab_posts", ["town_code"])
    op.create_index("ix_ab_posts_cover_grid_code", "ab_posts", ["cover_grid_code"])
    op.create_index(
        "uq_ab_posts_current_grid",
        "ab_posts",
        ["grid_code"],
        unique=True,
        postgresql_where=sa.text("valid_to IS NULL"),
    )

    op.create_table(
        "absences",
        _identity(),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        _now("created_at"),
        sa.Column("actor", sa.Text(), nullable=True),
        sa.CheckConstraint("ends_on >= starts_on", name=op.f("ck_absences_dates_ordered")),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], ondelete="CASCADE",
            name="fk_absences_member_id_members",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_absences"),
    )
    op.create_index("ix_absences_member_id", "absences", ["member_id"])

    op.add_column("incidents", sa.Column("description", sa.Text(), nullable=True))
    op.add_column("incidents", sa.Column("reported_by", sa.Text(), nullable=True))
    op.add_column("incidents", sa.Column("member_id", sa.Integer(), nullable=True))
    op.add_column(
        "incidents", sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("incidents", sa.Column("evaluation", sa.SmallInteger(), nullable=True))
    op.create_foreign_key(
        "fk_incidents_member_id_members", "incidents", "members", ["member_id"], ["id"]
    )
    op.create_index("ix_incidents_member_id", "incidents", ["member_id"])
    op.create_check_constraint(
        op.f("ck_incidents_evaluation_range"), "incidents", "evaluation BETWEEN 1 AND 5"
    )

    op.create_table(
        "task_type_changes",
        _identity(),
        sa.Column("task_type_code", sa.Text(), nullable=False),
        sa.Column("from_state", _enum("approval_state"), nullable=True),
        sa.Column("to_state", _enum("approval_state"), nullable=False),
        sa.Column("effective_on", sa.Date(), nullable=False),
        _now("changed_at"),
        sa.Column("actor", sa.Text(), nullable=True),
        sa.Column("decided_by", sa.Text(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["task_type_code"], ["task_types.code"], ondelete="CASCADE",
            name="fk_task_type_changes_task_type_code_task_types",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_task_type_changes"),
    )
    op.create_index(
        "ix_task_type_changes_task_type_code", "task_type_changes", ["task_type_code"]
    )
    op.execute(ASSIGN_FUNCTION)

    op.create_table(
        "incident_events",
        _identity(),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("from_status", _enum("incident_status"), nullable=True),
        sa.Column("to_status", _enum("incident_status"), nullable=False),
        _now("at"),
        sa.Column("actor", sa.Text(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["incident_id"], ["incidents.id"], ondelete="CASCADE",
            name="fk_incident_events_incident_id_incidents",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_incident_events"),
    )
    op.create_index("ix_incident_events_incident_id", "incident_events", ["incident_id"])

    op.create_table(
        "attachments",
        _identity(),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=True),
        sa.Column("filename", sa.Text(), nullable=False),
        sa.Column("content_type", sa.Text(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.CHAR(64), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("uploaded_by", sa.Text(), nullable=True),
        _now("created_at"),
        sa.CheckConstraint("size = octet_length(data)", name=op.f("ck_attachments_size_matches")),
        sa.CheckConstraint(
            "sha256 ~ '^[0-9a-f]{64}$'", name=op.f("ck_attachments_sha256_format")
        ),
        sa.ForeignKeyConstraint(
            ["incident_id"], ["incidents.id"], ondelete="CASCADE",
            name="fk_attachments_incident_id_incidents",
        ),
        sa.ForeignKeyConstraint(
            ["event_id"], ["incident_events.id"], ondelete="CASCADE",
            name="fk_attachments_event_id_incident_events",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_attachments"),
    )
    op.create_index("ix_attachments_incident_id", "attachments", ["incident_id"])
    op.create_index("ix_attachments_event_id", "attachments", ["event_id"])

    op.create_table(
        "patrol_logs",
        _identity(),
        sa.Column("pollution_point_id", sa.Integer(), nullable=True),
        sa.Column("hazard_id", sa.Integer(), nullable=True),
        sa.Column("member_id", sa.Integer(), nullable=True),
        sa.Column("grid_code", sa.CHAR(15), nullable=True),
        sa.Column("patrolled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finding", sa.Text(), nullable=False),
        sa.Column("serious", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=True),
        _now("created_at"),
        sa.CheckConstraint(
            "num_nonnulls(pollution_point_id, hazard_id) = 1",
            name=op.f("ck_patrol_logs_one_target"),
        ),
        sa.ForeignKeyConstraint(
            ["pollution_point_id"], ["pollution_points.id"], ondelete="CASCADE",
            name="fk_patrol_logs_pollution_point_id_pollution_points",
        ),
        sa.ForeignKeyConstraint(
            ["hazard_id"], ["hazards.id"], ondelete="CASCADE",
            name="fk_patrol_logs_hazard_id_hazards",
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name="fk_patrol_logs_member_id_members"
        ),
        sa.ForeignKeyConstraint(
            ["incident_id"], ["incidents.id"], name="fk_patrol_logs_incident_id_incidents"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_patrol_logs"),
    )
    for column in ("pollution_point_id", "hazard_id", "member_id", "grid_code"):
        op.create_index(f"ix_patrol_logs_{column}", "patrol_logs", [column])

    op.add_column(
        "residents",
        sa.Column(
            "categories",
            postgresql.ARRAY(sa.Text()),
            server_default=sa.text("'{}'::text[]"),
            nullable=False,
        ),
    )
    op.create_check_constraint(
        op.f("ck_residents_categories_known"),
        "residents",
        "categories <@ ARRAY['incoming', 'returnee', 'in_need']::text[]",
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_residents_categories_known"), "residents", type_="check")
    op.drop_column("residents", "categories")
    for table in ("patrol_logs", "attachments", "incident_events", "task_type_changes"):
        op.drop_table(table)
    op.execute(ASSIGN_FUNCTION_0003)
    op.drop_constraint(op.f("ck_incidents_evaluation_range"), "incidents", type_="check")
    op.drop_index("ix_incidents_member_id", table_name="incidents")
    op.drop_constraint("fk_incidents_member_id_members", "incidents", type_="foreignkey")
    for column in ("evaluation", "closed_at", "member_id", "reported_by", "description"):
        op.drop_column("incidents", column)
    for table in ("absences", "ab_posts", "member_status_changes"):
        op.drop_table(table)
    op.drop_index("uq_members_appointed_grid", table_name="members")
    op.drop_index("ix_members_village_code", table_name="members")
    op.drop_constraint("fk_members_village_code_villages", "members", type_="foreignkey")
    for column in (
        "dismissed_on", "appointed_on", "applied_on", *reversed(MEMBER_FLAGS),
        "unemployed_graduate", "veteran", "village_code",
    ):
        op.drop_column("members", column)
