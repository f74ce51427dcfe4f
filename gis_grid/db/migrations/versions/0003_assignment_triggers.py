"""Assignment on write: new and moved points get their village and current grid in the database.

A ``BEFORE INSERT OR UPDATE OF geom`` row trigger on households, pollution_points, hazards and
incidents sets ``grid_code`` to the current grid covering the point and, when the writer left
it NULL, ``village_code`` to the village covering it. Border rule, as in memory and in
:func:`gis_grid.assign.assign_in_database`: a point covered by several polygons (on a shared
edge or vertex) goes to the **smallest code**. A point outside every current grid gets
``grid_code = NULL``; such rows are never dropped or refused, and are reported by
:func:`gis_grid.assign.unassigned_in_database` (the row, and the distance in metres to the
nearest current grid), which :func:`~gis_grid.assign.assign_in_database` also returns.

The lookups are two STABLE SQL functions, ``current_grid_at(point)`` and ``village_at(point)``,
each one GiST probe (``geom && point``) and an exact ``ST_Covers``: about 0.1 ms a row.
A bulk writer that assigns set-based afterwards (the loader's ``COPY`` + one ``UPDATE``) can
skip the per-row lookups with ``SET LOCAL gis_grid.assign_on_write = off`` in its transaction.

Redrawing grids does not touch points here: :func:`gis_grid.assign.reassign_in_database`
re-examines the points of the changed grids.

Nothing here is a table, column or index, so the models (which describe tables only) are
unchanged. The downgrade drops the triggers and the functions.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Frozen as of this revision (gis_grid.db.write.LOCATED_TABLES).
TABLES = ("households", "pollution_points", "hazards", "incidents")
TRIGGER = "assign_location"

FUNCTIONS = (
    """
    CREATE FUNCTION current_grid_at(point geometry) RETURNS char(15)
    LANGUAGE sql STABLE PARALLEL SAFE AS $$
        SELECT min(code) FROM grids
        WHERE valid_to IS NULL AND geom && point AND ST_Covers(geom, point)
    $$
    """,
    """
    CREATE FUNCTION village_at(point geometry) RETURNS char(12)
    LANGUAGE sql STABLE PARALLEL SAFE AS $$
        SELECT min(code) FROM villages WHERE geom && point AND ST_Covers(geom, point)
    $$
    """,
    """
    CREATE FUNCTION assign_point_location() RETURNS trigger
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
    """,
)


def upgrade() -> None:
    for sql in FUNCTIONS:
        op.execute(sql)
    for table in TABLES:
        op.execute(
            f"CREATE TRIGGER {TRIGGER} BEFORE INSERT OR UPDATE OF geom ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION assign_point_location()"
        )


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"DROP TRIGGER {TRIGGER} ON {table}")
    op.execute("DROP FUNCTION assign_point_location()")
    op.execute("DROP FUNCTION village_at(geometry)")
    op.execute("DROP FUNCTION current_grid_at(geometry)")
