"""Natural lines: rivers, streams, ridgelines and roads, the barriers grids are drawn along.

One table for every kind of line (``kind``), so that the grid-drawing work and the adjacency
"separated by a river" flag query one GiST index. ``rank`` orders lines within a kind, 1 being
the most important (GSHHG river level; stream class river/creek/brook; road class
county/township/village: see :mod:`gis_grid.lines`). ``town_code`` is the town a line was
digitised for, or NULL for lines that run outside every loaded town; lines may cross towns, so
"the lines of a town" is ``town_code = X OR ST_Intersects(geom, town)``. ``code`` is the
source's identifier (``river_id``, ``strm_id``, ``road_id``), unique per kind, so that reloading
the same file can never duplicate a line.

Written by hand, like 0001 (whose helpers' pattern it repeats, frozen here: a migration must
not change when the application code does). The downgrade drops the table and its enum type.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SRID = 4490
CHINA = (73.0, 3.0, 136.0, 54.0)  # gis_grid.crs.CHINA_BOUNDS, frozen as of this revision
TABLE = "natural_lines"
KIND = postgresql.ENUM("river", "stream", "ridge", "road", name="natural_line_kind")
#: GSHHG WDB-II river levels run 1-12 (rivers, intermittent rivers, canals); stream and road
#: classes use 1-3. Strahler orders (1-12 on Earth) would fit too.
MAX_RANK = 12


def upgrade() -> None:
    KIND.create(op.get_bind(), checkfirst=False)
    minx, miny, maxx, maxy = CHINA
    op.create_table(
        TABLE,
        sa.Column("id", sa.Integer(), sa.Identity(always=False), nullable=False),
        sa.Column(
            "kind",
            postgresql.ENUM(name="natural_line_kind", create_type=False),
            nullable=False,
        ),
        sa.Column("code", sa.Text(), nullable=True),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("rank", sa.SmallInteger(), nullable=True),
        sa.Column("town_code", sa.CHAR(9), nullable=True),
        sa.Column(
            "geom",
            Geometry(geometry_type="MULTILINESTRING", srid=SRID, spatial_index=False),
            nullable=False,
        ),
        sa.Column("synthetic", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("source", sa.Text(), nullable=True),
        sa.CheckConstraint(
            f"rank BETWEEN 1 AND {MAX_RANK}", name=op.f(f"ck_{TABLE}_rank_range")
        ),
        sa.CheckConstraint(
            "ST_IsValid(geom) AND NOT ST_IsEmpty(geom)", name=op.f(f"ck_{TABLE}_geom_valid")
        ),
        sa.CheckConstraint(
            f"ST_XMin(geom) >= {minx} AND ST_XMax(geom) <= {maxx} "
            f"AND ST_YMin(geom) >= {miny} AND ST_YMax(geom) <= {maxy}",
            name=op.f(f"ck_{TABLE}_geom_in_china"),
        ),
        sa.ForeignKeyConstraint(
            ["town_code"], ["towns.code"], name=f"fk_{TABLE}_town_code_towns"
        ),
        sa.PrimaryKeyConstraint("id", name=f"pk_{TABLE}"),
        sa.UniqueConstraint("kind", "code", name=f"uq_{TABLE}_kind_code"),
    )
    op.create_index(f"ix_{TABLE}_geom", TABLE, ["geom"], postgresql_using="gist")
    op.create_index(f"ix_{TABLE}_town_code", TABLE, ["town_code"])
    op.create_index(f"ix_{TABLE}_kind", TABLE, ["kind"])


def downgrade() -> None:
    op.drop_table(TABLE)  # its indexes and constraints go with it
    KIND.drop(op.get_bind(), checkfirst=False)
