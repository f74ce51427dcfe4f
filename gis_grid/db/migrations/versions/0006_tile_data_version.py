"""Vector tiles: a data version for the service's tile cache, and the grids' load from an index.

The service keeps rendered vector tiles in memory keyed by this version
(:mod:`api.routes.tiles`), so that a kept tile is never served after the rows it was built
from changed: every tile request reads the version in the same snapshot as the tile it
renders, and a changed version misses the cache.

The version is the sum of the ``weight`` column of ``gis_grid_tiles.changes``:

- A statement-level ``AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE`` trigger on grids,
  households (the grids' load), incidents, pollution_points and hazards inserts one row per
  writing transaction (its transaction id, weight 1; ``ON CONFLICT DO NOTHING`` for the next
  statements of the same transaction). Writers never wait for each other: each inserts its
  own row, there is no shared counter row to lock.
- When that transaction commits, the sum seen by new snapshots grows by one. Rows are never
  updated by anybody else; now and then (about one writing transaction in 32, one at a time:
  ``pg_try_advisory_xact_lock``, and only under READ COMMITTED) the writer folds the committed
  rows into its own (``DELETE ... RETURNING weight``, their weights added to its row), which
  keeps the table small and leaves the sum unchanged until it commits, then one higher.
- The reader's version is ``sum(weight)`` and ``max(xid)``: the sum grows by one per
  committed writing transaction; the transaction ids make a table created again (downgrade,
  upgrade) start from versions it never had before (the first row is the migration's own).

``ix_households_grid_code`` becomes a covering index, ``(grid_code) INCLUDE (people)``: a grid
tile counts the households and people of each of its grids (under row-level security, whose
policy reads ``grid_code`` only), which an index-only scan now answers without visiting the
households' rows (a z12 tile of a district: ~10,000 row visits before, a few index pages now).
Same name and key column, so every lookup by grid is served as before.

The table lives in its own schema, ``gis_grid_tiles``: it is bookkeeping of the service's
cache, not part of the platform's data model (:mod:`gis_grid.db.models` describes the
``public`` schema). The application role may read it; the trigger function runs as its owner
(``SECURITY DEFINER``), so writers need no privilege on it.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "gis_grid_tiles"
#: Frozen as of this revision: the tables whose rows vector tiles show (gis_grid.tiles).
TABLES = ("grids", "households", "incidents", "pollution_points", "hazards")
TRIGGER = "tile_data_changed"
#: The grids' load: households counted and people summed per grid from the index alone.
LOAD_INDEX = "ix_households_grid_code"
#: Advisory lock key of the folding (one writer at a time folds the committed rows).
_FOLD_LOCK = 7_202_611_006

BUMP = f"""
CREATE FUNCTION {SCHEMA}.bump() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    me xid8 := pg_current_xact_id();
    folded bigint;
BEGIN
    INSERT INTO {SCHEMA}.changes (xid, weight) VALUES (me, 1) ON CONFLICT (xid) DO NOTHING;
    IF FOUND AND random() < 1.0 / 32
       AND current_setting('transaction_isolation') = 'read committed'
       AND pg_try_advisory_xact_lock({_FOLD_LOCK}) THEN
        WITH gone AS (DELETE FROM {SCHEMA}.changes WHERE xid <> me RETURNING weight)
        SELECT coalesce(sum(weight), 0) INTO folded FROM gone;
        UPDATE {SCHEMA}.changes SET weight = weight + folded WHERE xid = me;
    END IF;
    RETURN NULL;
END
$$
"""


def _app_role() -> str:
    from gis_grid.config import get_settings

    return get_settings().app_role


def upgrade() -> None:
    role = _app_role()
    op.execute(f"CREATE SCHEMA {SCHEMA}")
    op.execute(
        f"CREATE TABLE {SCHEMA}.changes (xid xid8 PRIMARY KEY, weight bigint NOT NULL "
        "CHECK (weight > 0))"
    )
    # The first version is this transaction's: never seen before, even after a downgrade.
    op.execute(f"INSERT INTO {SCHEMA}.changes VALUES (pg_current_xact_id(), 1)")
    op.execute(BUMP)
    for table in TABLES:
        op.execute(
            f"CREATE TRIGGER {TRIGGER} AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {SCHEMA}.bump()"
        )
    op.execute(f"DROP INDEX {LOAD_INDEX}")
    op.execute(f"CREATE INDEX {LOAD_INDEX} ON households (grid_code) INCLUDE (people)")
    op.execute(f'GRANT USAGE ON SCHEMA {SCHEMA} TO "{role}"')
    op.execute(f'GRANT SELECT ON {SCHEMA}.changes TO "{role}"')
    op.execute(f"REVOKE ALL ON FUNCTION {SCHEMA}.bump() FROM PUBLIC")


def downgrade() -> None:
    op.execute(f"DROP INDEX {LOAD_INDEX}")
    op.execute(f"CREATE INDEX {LOAD_INDEX} ON households (grid_code)")
    for table in TABLES:
        op.execute(f"DROP TRIGGER {TRIGGER} ON {table}")
    op.execute(f"DROP SCHEMA {SCHEMA} CASCADE")
