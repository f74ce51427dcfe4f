"""Security: accounts, login sessions, the append-only audit log, row-level security,
personal data encrypted at rest, and the application role.

- ``users``: accounts with an argon2 password hash, a role, the member a ``member`` account
  is (``member_code``: the member's stable code, no foreign key, so that reloading the
  sample, which replaces the members' rows, keeps the accounts), lockout state.
- ``sessions``: one row per login token (its ``jti``), so that logout revokes it.
- ``audit_log``: who unmasked whose personal data, which fields, why, when, with what
  outcome. The application role may only SELECT and INSERT; a trigger refuses UPDATE, DELETE
  and TRUNCATE for everybody (the owner too).
- ``residents``: ``id_number``/``phone`` replaced by AES-GCM ciphertext (``*_enc``), a keyed
  lookup hash (``*_hash``, unique for ID numbers) and the masked form (``*_masked``); rows
  already stored are converted with the platform's secret key (:mod:`gis_grid.security.crypto`).
  The GB 11643 check of ID numbers moves to the writers (loader, registry), which check the
  clear value before sealing it.
- Row-level security, ENABLEd and FORCEd on households, residents, incidents, patrol_logs and
  attachments. The policies read ``gis_grid.role`` and ``gis_grid.grids`` (set per transaction
  by :func:`gis_grid.security.context.set_context`): without them no row is visible. The owner
  role (migrations, loading, the command line) has BYPASSRLS (``scripts/setup.sh``).
- The application role (``gis_grid_app``; setting ``GIS_GRID_APP_ROLE``): created here NOLOGIN
  when the migrating role may create roles (``scripts/setup.sh`` gives it LOGIN and a
  password), else it must exist; granted DML on the tables (not on ``alembic_version``,
  only SELECT/INSERT on ``audit_log``), the sequences, and the same on tables created later.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROLES = ("admin", "planner", "member", "analyst", "reader")
RLS_TABLES = ("households", "residents", "incidents", "patrol_logs", "attachments")

# Who may read / write a row of a table, given the row's grid. Central roles see every row
# (an analyst or reader only reads; a reader never sees patrols or attachments); a member sees
# and changes the rows of the grids in gis_grid.grids (their own, plus those they cover on
# the day). No role setting -> false: nothing visible, nothing writable.
ACCESS_FUNCTIONS = """
CREATE FUNCTION gis_grid_in_grids(grid text) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(
        grid = ANY (string_to_array(nullif(current_setting('gis_grid.grids', true), ''), ',')),
        false)
$$;
CREATE FUNCTION gis_grid_may_read(grid text, tbl text) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE current_setting('gis_grid.role', true)
        WHEN 'admin' THEN true
        WHEN 'planner' THEN true
        WHEN 'analyst' THEN true
        WHEN 'reader' THEN tbl NOT IN ('patrol_logs', 'attachments')
        WHEN 'member' THEN gis_grid_in_grids(grid)
        ELSE false END
$$;
CREATE FUNCTION gis_grid_may_write(grid text, tbl text) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE current_setting('gis_grid.role', true)
        WHEN 'admin' THEN true
        WHEN 'planner' THEN tbl IN ('households', 'incidents')
        WHEN 'member' THEN gis_grid_in_grids(grid)
        ELSE false END
$$;
"""

# The grid of a row: its own column, or its household's / incident's (looked up bypassing
# nothing: the lookup itself is subject to the households / incidents policies).
_GRID_OF = {
    "households": "grid_code",
    "incidents": "grid_code",
    "patrol_logs": "grid_code",
    "residents": "(SELECT h.grid_code FROM households h WHERE h.id = household_id)",
    "attachments": "(SELECT i.grid_code FROM incidents i WHERE i.id = incident_id)",
}

AUDIT_GUARD = """
CREATE FUNCTION audit_log_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
"""


def _app_role() -> str:
    from gis_grid.config import get_settings

    return get_settings().app_role


def _ensure_app_role(role: str) -> None:
    bind = op.get_bind()
    exists = bind.scalar(sa.text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role})
    if exists:
        return
    may = bind.scalar(
        sa.text("SELECT rolcreaterole OR rolsuper FROM pg_roles WHERE rolname = current_user")
    )
    if not may:
        msg = (
            f"the application role {role!r} does not exist and {bind.engine.url.username!r} "
            f"cannot create it: create it as a superuser (CREATE ROLE {role} LOGIN PASSWORD "
            "'...' NOBYPASSRLS; scripts/setup.sh does) and migrate again"
        )
        raise RuntimeError(msg)
    # Roles are shared by all databases of the cluster: two migrations at once may race.
    op.execute(
        f"""
        DO $$ BEGIN
            CREATE ROLE "{role}" NOLOGIN NOBYPASSRLS;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END $$
        """
    )


def _our_tables() -> list[str]:
    bind = op.get_bind()
    return list(
        bind.scalars(
            sa.text(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND tableowner = current_user AND tablename <> 'alembic_version' "
                "ORDER BY tablename"
            )
        )
    )


def _seal_existing_residents() -> None:
    """Encrypt the ID numbers and phones already stored (with the platform's key)."""
    from gis_grid.config import get_settings
    from gis_grid.security.crypto import keys_from_settings, seal

    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT id, id_number, phone FROM residents "
            "WHERE id_number IS NOT NULL OR phone IS NOT NULL"
        )
    ).all()
    if not rows:
        return
    keys = keys_from_settings(get_settings())
    params = []
    for rid, number, phone in rows:
        n = seal(number, keys, "id_number")
        p = seal(phone, keys, "phone")
        params.append(
            {
                "id": rid,
                "ne": n and n.enc,
                "nh": n and n.hash,
                "nm": n and n.masked,
                "pe": p and p.enc,
                "ph": p and p.hash,
                "pm": p and p.masked,
            }
        )
    bind.execute(
        sa.text(
            "UPDATE residents SET id_number_enc = :ne, id_number_hash = :nh, "
            "id_number_masked = :nm, phone_enc = :pe, phone_hash = :ph, phone_masked = :pm "
            "WHERE id = :id"
        ),
        params,
    )


def _unseal_residents() -> None:
    from gis_grid.config import get_settings
    from gis_grid.security.crypto import decrypt, keys_from_settings

    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT id, id_number_enc, phone_enc FROM residents "
            "WHERE id_number_enc IS NOT NULL OR phone_enc IS NOT NULL"
        )
    ).all()
    if not rows:
        return
    keys = keys_from_settings(get_settings())
    bind.execute(
        sa.text("UPDATE residents SET id_number = :n, phone = :p WHERE id = :id"),
        [
            {
                "id": rid,
                "n": None if ne is None else decrypt(ne, keys, "id_number"),
                "p": None if pe is None else decrypt(pe, keys, "phone"),
            }
            for rid, ne, pe in rows
        ],
    )


def upgrade() -> None:
    role = _app_role()
    _ensure_app_role(role)

    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), sa.Identity(always=False), nullable=False),
        sa.Column("username", sa.Text(), nullable=False),
        sa.Column("display_name", sa.Text(), nullable=True),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("member_code", sa.Text(), nullable=True),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("disabled", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("failed_logins", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "password_changed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "username ~ '^[a-z0-9][a-z0-9_.@-]{2,63}$'", name=op.f("ck_users_username_format")
        ),
        sa.CheckConstraint(
            f"role IN ({', '.join(repr(r) for r in ROLES)})", name=op.f("ck_users_role_known")
        ),
        sa.CheckConstraint(
            "(role = 'member') = (member_code IS NOT NULL)", name=op.f("ck_users_member_role")
        ),
        sa.CheckConstraint("failed_logins >= 0", name=op.f("ck_users_failed_logins")),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("username", name="uq_users_username"),
    )
    op.create_index("ix_users_member_code", "users", ["member_code"])

    op.create_table(
        "sessions",
        sa.Column("jti", sa.CHAR(32), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column(
            "issued_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("jti ~ '^[0-9a-f]{32}$'", name=op.f("ck_sessions_jti_format")),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], ondelete="CASCADE", name="fk_sessions_user_id_users"
        ),
        sa.PrimaryKeyConstraint("jti", name="pk_sessions"),
    )
    op.create_index("ix_sessions_user_id", "sessions", ["user_id"])

    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("username", sa.Text(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("resident_id", sa.Integer(), nullable=True),
        sa.Column(
            "fields", sa.ARRAY(sa.Text()), server_default=sa.text("'{}'::text[]"),
            nullable=False,
        ),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "outcome IN ('granted', 'denied', 'rate_limited')",
            name=op.f("ck_audit_log_outcome_known"),
        ),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_username_at", "audit_log", ["username", "at"])
    op.create_index("ix_audit_log_resident_id", "audit_log", ["resident_id"])
    op.execute(AUDIT_GUARD)

    # Residents: ciphertext, lookup hash, masked form.
    for column in ("id_number", "phone"):
        op.add_column("residents", sa.Column(f"{column}_enc", sa.LargeBinary(), nullable=True))
        op.add_column("residents", sa.Column(f"{column}_hash", sa.CHAR(64), nullable=True))
    op.add_column("residents", sa.Column("id_number_masked", sa.CHAR(18), nullable=True))
    op.add_column("residents", sa.Column("phone_masked", sa.Text(), nullable=True))
    _seal_existing_residents()
    op.drop_constraint("uq_residents_id_number", "residents", type_="unique")
    op.drop_constraint(op.f("ck_residents_id_number_format"), "residents", type_="check")
    op.drop_constraint(op.f("ck_residents_phone_format"), "residents", type_="check")
    op.drop_column("residents", "id_number")
    op.drop_column("residents", "phone")
    op.create_unique_constraint(
        "uq_residents_id_number_hash", "residents", ["id_number_hash"]
    )
    op.create_index("ix_residents_phone_hash", "residents", ["phone_hash"])
    for column in ("id_number", "phone"):
        op.create_check_constraint(
            op.f(f"ck_residents_{column}_sealed"),
            "residents",
            f"num_nulls({column}_enc, {column}_hash, {column}_masked) IN (0, 3)",
        )
        op.create_check_constraint(
            op.f(f"ck_residents_{column}_hash_format"),
            "residents",
            f"{column}_hash ~ '^[0-9a-f]{{64}}$'",
        )
    op.create_check_constraint(
        op.f("ck_residents_id_number_masked_format"),
        "residents",
        "id_number_masked ~ '^[0-9]{3}[*]{11}[0-9]{3}[0-9X]$'",
    )
    op.create_check_constraint(
        op.f("ck_residents_phone_masked_format"),
        "residents",
        "phone_masked ~ '^([0-9+]{3}[*]{4,13}[0-9]{4}|[*]{5,20})$'",
    )

    # Row-level security.
    op.execute(ACCESS_FUNCTIONS)
    for table in RLS_TABLES:
        grid = _GRID_OF[table]
        read = f"gis_grid_may_read({grid}, '{table}')"
        write = f"gis_grid_may_write({grid}, '{table}')"
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY {table}_read ON {table} FOR SELECT USING ({read})")
        op.execute(f"CREATE POLICY {table}_insert ON {table} FOR INSERT WITH CHECK ({write})")
        op.execute(
            f"CREATE POLICY {table}_update ON {table} FOR UPDATE USING ({write}) "
            f"WITH CHECK ({write})"
        )
        op.execute(f"CREATE POLICY {table}_delete ON {table} FOR DELETE USING ({write})")

    # The application role's privileges.
    op.execute(f'GRANT USAGE ON SCHEMA public TO "{role}"')
    for table in _our_tables():
        if table == "audit_log":
            op.execute(f'GRANT SELECT, INSERT ON audit_log TO "{role}"')
        else:
            op.execute(f'GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO "{role}"')
    op.execute(f'GRANT SELECT ON alembic_version TO "{role}"')
    op.execute(f'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO "{role}"')
    op.execute(
        "ALTER DEFAULT PRIVILEGES IN SCHEMA public "
        f'GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO "{role}"'
    )
    op.execute(
        f'ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO "{role}"'
    )


def downgrade() -> None:
    role = _app_role()
    op.execute(
        f'ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE USAGE, SELECT ON SEQUENCES FROM "{role}"'
    )
    op.execute(
        "ALTER DEFAULT PRIVILEGES IN SCHEMA public "
        f'REVOKE SELECT, INSERT, UPDATE, DELETE ON TABLES FROM "{role}"'
    )
    for table in _our_tables():
        op.execute(f'REVOKE ALL ON {table} FROM "{role}"')
    op.execute(f'REVOKE ALL ON alembic_version FROM "{role}"')
    op.execute(f'REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM "{role}"')
    op.execute(f'REVOKE USAGE ON SCHEMA public FROM "{role}"')

    for table in RLS_TABLES:
        for action in ("read", "insert", "update", "delete"):
            op.execute(f"DROP POLICY {table}_{action} ON {table}")
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
    op.execute("DROP FUNCTION gis_grid_may_write(text, text)")
    op.execute("DROP FUNCTION gis_grid_may_read(text, text)")
    op.execute("DROP FUNCTION gis_grid_in_grids(text)")

    for name in (
        "phone_masked_format", "id_number_masked_format", "phone_hash_format", "phone_sealed",
        "id_number_hash_format", "id_number_sealed",
    ):  # fmt: skip
        op.drop_constraint(op.f(f"ck_residents_{name}"), "residents", type_="check")
    op.drop_index("ix_residents_phone_hash", table_name="residents")
    op.drop_constraint("uq_residents_id_number_hash", "residents", type_="unique")
    op.add_column("residents", sa.Column("id_number", sa.CHAR(18), nullable=True))
    op.add_column("residents", sa.Column("phone", sa.Text(), nullable=True))
    _unseal_residents()
    for column in ("id_number_enc", "id_number_hash", "id_number_masked", "phone_enc",
                   "phone_hash", "phone_masked"):  # fmt: skip
        op.drop_column("residents", column)
    op.create_check_constraint(
        op.f("ck_residents_id_number_format"),
        "residents",
        "CASE WHEN id_number ~ '^[0-9]{17}[0-9X]$' "
        "THEN right(id_number, 1) = id_number_check_character(left(id_number, 17)) "
        "ELSE false END",
    )
    op.create_check_constraint(
        op.f("ck_residents_phone_format"), "residents", "phone ~ '^[0-9+() -]{5,20}$'"
    )
    op.create_unique_constraint("uq_residents_id_number", "residents", ["id_number"])

    op.drop_table("audit_log")
    op.execute("DROP FUNCTION audit_log_append_only()")
    op.drop_table("sessions")
    op.drop_table("users")
    # The application role is shared by every database of the cluster: it stays.
