"""SQLAlchemy models of the platform's PostGIS schema.

All geometry is stored in CGCS2000 (EPSG:4490) with an explicit geometry type in the column's
typmod, so PostGIS itself refuses a wrong SRID or type. Each geometry column has a GiST index,
a CHECK that the geometry is valid and not empty, and a CHECK that it lies inside China's
longitude/latitude range (:data:`gis_grid.crs.CHINA_BOUNDS`). These constraints hold for every
writer (loader, web service, a planner's SQL), not just for the loader's own checks.

Grids are versioned (compare mysociety/mapit "generations"): a row is one version of a grid,
valid over ``[valid_from, valid_to)``; ``valid_to IS NULL`` marks the current version. A partial
unique index allows one current grid per code, and an exclusion constraint keeps the validity
intervals of one code from overlapping, so history can be queried "as of" any instant. Other
tables refer to a grid by its stable ``code`` (not an FK: the code is unique only per instant).

The schema is created by the Alembic migrations in :mod:`gis_grid.db.migrations`; a test
checks that these models and the migrated schema agree.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from geoalchemy2 import Geometry, WKBElement
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from gis_grid.crs import CHINA_BOUNDS

__all__ = [
    "SRID",
    "ApprovalState",
    "AuditEntry",
    "Base",
    "District",
    "Gender",
    "Grid",
    "Hazard",
    "Household",
    "Incident",
    "IncidentStatus",
    "Member",
    "MemberStatus",
    "NaturalLine",
    "NaturalLineKind",
    "PollutionPoint",
    "Resident",
    "TaskType",
    "Town",
    "User",
    "UserSession",
    "Village",
    "VillageKind",
]

#: SRID of every geometry column: CGCS2000 geographic.
SRID = 4490

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class VillageKind(StrEnum):
    """Kind of village-level unit: rural village (村) or urban community (社区)."""

    VILLAGE = "village"
    COMMUNITY = "community"


class Gender(StrEnum):
    """Gender as recorded in the registries."""

    MALE = "male"
    FEMALE = "female"


class MemberStatus(StrEnum):
    """Selection workflow of a grid member (article 7), plus dismissal (article 11)."""

    APPLIED = "applied"
    RECOMMENDED = "recommended"
    EXAMINED = "examined"
    PUBLICISED = "publicised"
    APPOINTED = "appointed"
    DISMISSED = "dismissed"


class ApprovalState(StrEnum):
    """Admission (准入) of a new kind of grid work (article 10)."""

    PROPOSED = "proposed"
    APPLIED = "applied"
    REVIEWED = "reviewed"
    APPROVED = "approved"
    REJECTED = "rejected"


class IncidentStatus(StrEnum):
    """The seven steps of the digital urban management incident workflow."""

    REPORTED = "reported"
    ACCEPTED = "accepted"
    DISPATCHED = "dispatched"
    HANDLED = "handled"
    FEEDBACK = "feedback"
    CLOSED = "closed"
    EVALUATED = "evaluated"


class NaturalLineKind(StrEnum):
    """Kind of natural line: the barriers grid boundaries follow (rivers, ridges, roads)."""

    RIVER = "river"
    STREAM = "stream"
    RIDGE = "ridge"
    ROAD = "road"


def _enum(enum: type[StrEnum], name: str) -> sa.Enum:
    # Store the values ("applied"), not the member names ("APPLIED").
    return sa.Enum(enum, name=name, values_callable=lambda e: [m.value for m in e])


class Base(DeclarativeBase):
    """Declarative base with deterministic constraint names."""

    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


def _geometry(geometry_type: str) -> Geometry:
    # spatial_index=False: the GiST index is declared explicitly in _geometry_args so that
    # the migration and the models name it the same way.
    return Geometry(geometry_type=geometry_type, srid=SRID, spatial_index=False)


def _geometry_args(table: str, column: str = "geom") -> tuple[Any, ...]:
    """GiST index and CHECKs (valid, non-empty, inside China) of one geometry column."""
    minx, miny, maxx, maxy = CHINA_BOUNDS
    return (
        sa.Index(f"ix_{table}_{column}", column, postgresql_using="gist"),
        sa.CheckConstraint(
            f"ST_IsValid({column}) AND NOT ST_IsEmpty({column})", name=f"{column}_valid"
        ),
        sa.CheckConstraint(
            f"ST_XMin({column}) >= {minx} AND ST_XMax({column}) <= {maxx} "
            f"AND ST_YMin({column}) >= {miny} AND ST_YMax({column}) <= {maxy}",
            name=f"{column}_in_china",
        ),
    )


class _Provenance:
    """Columns that say where a row came from: every sample row is labelled synthetic or not."""

    synthetic: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false())
    source: Mapped[str | None] = mapped_column(sa.Text)


class District(_Provenance, Base):
    """A county-level district (区/县), e.g. Dachuan 511703."""

    __tablename__ = "districts"
    __table_args__ = (
        sa.CheckConstraint("code ~ '^[0-9]{6}$'", name="code_format"),
        *_geometry_args("districts"),
    )

    code: Mapped[str] = mapped_column(sa.CHAR(6), primary_key=True)
    name: Mapped[str] = mapped_column(sa.Text)
    geom: Mapped[WKBElement | None] = mapped_column(_geometry("MULTIPOLYGON"))


class Town(_Provenance, Base):
    """A town or street (乡镇/街道), 9-digit NBS code, e.g. Zhaojia 511703109."""

    __tablename__ = "towns"
    __table_args__ = (
        sa.CheckConstraint("code ~ '^[0-9]{9}$'", name="code_format"),
        sa.CheckConstraint("left(code, 6) = district_code", name="code_in_district"),
        *_geometry_args("towns"),
    )

    code: Mapped[str] = mapped_column(sa.CHAR(9), primary_key=True)
    name: Mapped[str] = mapped_column(sa.Text)
    district_code: Mapped[str] = mapped_column(sa.ForeignKey("districts.code"), index=True)
    geom: Mapped[WKBElement] = mapped_column(_geometry("MULTIPOLYGON"))


class Village(_Provenance, Base):
    """A village or community (村/社区), 12-digit NBS code."""

    __tablename__ = "villages"
    __table_args__ = (
        sa.CheckConstraint("code ~ '^[0-9]{12}$'", name="code_format"),
        sa.CheckConstraint("left(code, 9) = town_code", name="code_in_town"),
        sa.CheckConstraint("ur_code ~ '^[0-9]{3}$'", name="ur_code_format"),
        *_geometry_args("villages"),
    )

    code: Mapped[str] = mapped_column(sa.CHAR(12), primary_key=True)
    name: Mapped[str] = mapped_column(sa.Text)
    town_code: Mapped[str] = mapped_column(sa.ForeignKey("towns.code"), index=True)
    kind: Mapped[VillageKind] = mapped_column(_enum(VillageKind, "village_kind"))
    #: NBS urban-rural classification code (111 main urban area ... 220 village).
    ur_code: Mapped[str | None] = mapped_column(sa.CHAR(3))
    geom: Mapped[WKBElement] = mapped_column(_geometry("MULTIPOLYGON"))


class Grid(_Provenance, Base):
    """One version of a grid: 15-digit code = 12-digit village code + 3-digit sequence."""

    __tablename__ = "grids"
    __table_args__ = (
        sa.CheckConstraint("code ~ '^[0-9]{15}$'", name="code_format"),
        sa.CheckConstraint("left(code, 12) = village_code", name="code_in_village"),
        sa.CheckConstraint("seq BETWEEN 1 AND 999 AND right(code, 3)::int = seq", name="seq"),
        sa.CheckConstraint("version >= 1", name="version_positive"),
        sa.CheckConstraint("valid_to IS NULL OR valid_to > valid_from", name="validity"),
        sa.UniqueConstraint("code", "version"),
        # One current version per code ...
        sa.Index(
            "uq_grids_current_code",
            "code",
            unique=True,
            postgresql_where=sa.text("valid_to IS NULL"),
        ),
        # ... and versions of one code never overlap in time (needs btree_gist for "=").
        postgresql.ExcludeConstraint(
            (sa.column("code"), "="),
            (sa.literal_column("tstzrange(valid_from, valid_to)"), "&&"),
            using="gist",
            name="ex_grids_code_validity",
        ),
        *_geometry_args("grids"),
    )

    id: Mapped[int] = mapped_column(sa.Integer, sa.Identity(), primary_key=True)
    code: Mapped[str] = mapped_column(sa.CHAR(15))
    village_code: Mapped[str] = mapped_column(sa.ForeignKey("villages.code"), index=True)
    seq: Mapped[int] = mapped_column(sa.SmallInteger)
    name: Mapped[str | None] = mapped_column(sa.Text)
    version: Mapped[int] = mapped_column(sa.Integer, server_default=sa.text("1"))
    valid_from: Mapped[dt.datetime] = mapped_column(
        sa.DateTime(timezone=True), server_default=sa.func.now()
    )
    valid_to: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))
    geom: Mapped[WKBElement] = mapped_column(_geometry("MULTIPOLYGON"))


class Member(_Provenance, Base):
    """A grid member (网格员) or candidate, with the article-7 selection status."""

    __tablename__ = "members"
    __table_args__ = (
        sa.CheckConstraint("grid_code ~ '^[0-9]{15}$'", name="grid_code_format"),
        *_geometry_args("members", "home"),
        # 一格一员 (article 5): at most one appointed member per grid.
        sa.Index(
            "uq_members_appointed_grid",
            "grid_code",
            unique=True,
            postgresql_where=sa.text("status = 'appointed'"),
        ),
    )

    id: Mapped[int] = mapped_column(sa.Integer, sa.Identity(), primary_key=True)
    #: External identifier (the sample's ``member_id``).
    code: Mapped[str] = mapped_column(sa.Text, unique=True)
    name: Mapped[str] = mapped_column(sa.Text)
    gender: Mapped[Gender | None] = mapped_column(_enum(Gender, "gender"))
    birth_date: Mapped[dt.date | None] = mapped_column(sa.Date)
    education: Mapped[str | None] = mapped_column(sa.Text)
    party_member: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false())
    #: Personal data: masked by the service, never exported.
    phone: Mapped[str | None] = mapped_column(sa.Text)
    status: Mapped[MemberStatus] = mapped_column(
        _enum(MemberStatus, "member_status"), server_default="applied"
    )
    #: Code of the grid the member serves or applies for (stable across grid versions).
    grid_code: Mapped[str | None] = mapped_column(sa.CHAR(15), index=True)
    home: Mapped[WKBElement | None] = mapped_column(_geometry("POINT"))
    #: Village that recommends the candidate (article 7).
    village_code: Mapped[str | None] = mapped_column(sa.ForeignKey("villages.code"), index=True)
    #: Preferences of article 6 (优先): veterans and unemployed graduates.
    veteran: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false())
    unemployed_graduate: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false())
    #: Exclusions of article 6, as found by vetting; NULL = not yet vetted.
    criminal_record: Mapped[bool | None] = mapped_column(sa.Boolean)
    relative_criminal_record: Mapped[bool | None] = mapped_column(sa.Boolean)
    organised_petitions: Mapped[bool | None] = mapped_column(sa.Boolean)
    cult_member: Mapped[bool | None] = mapped_column(sa.Boolean)
    applied_on: Mapped[dt.date | None] = mapped_column(sa.Date)
    appointed_on: Mapped[dt.date | None] = mapped_column(sa.Date)
    dismissed_on: Mapped[dt.date | None] = mapped_column(sa.Date)


class MemberStatusChange(Base):
    """One step of a member's selection workflow (article 7) or dismissal (article 11)."""

    __tablename__ = "member_status_changes"

    id: Mapped[int] = mapped_column(sa.Integer, sa.Identity(), primary_key=True)
    member_id: Mapped[int] = mapped_column(
        sa.ForeignKey("members.id", ondelete="CASCADE"), index=True
    )
    from_status: Mapped[MemberStatus | None] = mapped_column(_enum(MemberStatus, "member_status"))
    to_status: Mapped[MemberStatus] = mapped_column(_enum(MemberStatus, "member_status"))
    changed_at: Mapped[dt.datetime] = mapped_column(
        sa.DateTime(timezone=True), server_default=sa.func.now()
    )
    actor: Mapped[str | None] = mapped_column(sa.Text)
    note: Mapped[str | None] = mapped_column(sa.Text)


class ABPost(Base):
    """Who backs up whom (AB岗, article 11).

    Grid ``grid_code`` is covered by the member of ``cover_grid_code`` when its own member is
    absent. A pair is two rows, a ring one per grid. Rows are versioned like grids: the
    current pairing has ``valid_to IS NULL``.
    """

    __tablename__ = "ab_posts"
    __table_args__ = (
        sa.CheckConstraint("grid_code <> cover_grid_code", name="not_self"),
        sa.CheckConstraint("valid_to IS NULL OR valid_to > valid_from", name="valid_interval"),
        sa.Index(
            "uq_ab_posts_current_grid",
            "grid_code",
            unique=True,
            postgresql_where=sa.text("valid_to IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(sa.Integer, sa.Identity(), primary_key=True)
    town_code: Mapped[str] = mapped_column(sa.ForeignKey("towns.code"), index=True)
    grid_code: Mapped[str] = mapped_column(sa.CHAR(15))
    cover_grid_code: Mapped[str] = mapped_column(sa.CHAR(15), index=True)
    #: How the cover reaches the grid: "adjacent", "second_ring" or "nearest".
    link: Mapped[str] = mapped_column(sa.Text, server_default="adjacent")
    #: Grids of the same pair or ring share a group number.
    group_no: Mapped[int] = mapped_column(sa.Integer)
    valid_from: Mapped[dt.datetime] = mapped_column(
        sa.DateTime(timezone=True), server_default=sa.func.now()
    )
    valid_to: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))
    source: Mapped[str | None] = mapped_column(sa.Text)


class Absence(Base):
    """A member's absence (illness, leave, training): their grid needs cover (article 11)."""

    __tablename__ = "absences"
    __table_args__ = (sa.CheckConstraint("ends_on >= starts_on", name="dates_ordered"),)

    id: Mapped[int] = mapped_column(sa.Integer, sa.Identity(), primary_key=True)
    member_id: Mapped[int] = mapped_column(
        sa.ForeignKey("members.id", ondelete="CASCADE"), index=True
    )
    starts_on: Mapped[dt.date] = mapped_column(sa.Date)
    ends_on: Mapped[dt.date] = mapped_column(sa.Date)
    reason: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[dt.datetime] = mapped_column(
        sa.DateTime(timezone=True), server_default=sa.func.now()
    )
    actor: Mapped[str | None] = mapped_column(sa.Text)


class Household(_Provenance, Base):
    """A household (户) at a point; ``grid_code`` is NULL until assigned spatially."""

    __tablename__ = "households"
    __table_args__ = (
        sa.CheckConstraint("people >= 0", name="people_non_negative"),
        # Covering (migration 0006): a grid's households and people from the index alone.
        sa.Index("ix_households_grid_code", "grid_code", postgresql_include=["people"]),
        *_geometry_args("households"),
    )

    id: Mapped[int] = mapped_column(sa.Integer, sa.Identity(), primary_key=True)
    code: Mapped[str] = mapped_column(sa.Text, unique=True)
    village_code: Mapped[str] = mapped_column(sa.ForeignKey("villages.code"), index=True)
    grid_code: Mapped[str | None] = mapped_column(sa.CHAR(15))
    people: Mapped[int] = mapped_column(sa.Integer, server_default=sa.text("0"))
    address: Mapped[str | None] = mapped_column(sa.Text)
    geom: Mapped[WKBElement] = mapped_column(_geometry("POINT"))


class Resident(_Provenance, Base):
    """A person registered in a household. Name, ID number and phone are personal data."""

    __tablename__ = "residents"
    __table_args__ = (
        # ID numbers and phones are encrypted at rest (gis_grid.security.crypto): the
        # database sees ciphertext, a keyed lookup hash and the masked form. The GB 11643
        # check of the clear value is the writers' (loader, registry), before sealing.
        sa.CheckConstraint(
            "num_nulls(id_number_enc, id_number_hash, id_number_masked) IN (0, 3)",
            name="id_number_sealed",
        ),
        sa.CheckConstraint(
            "num_nulls(phone_enc, phone_hash, phone_masked) IN (0, 3)", name="phone_sealed"
        ),
        sa.CheckConstraint("id_number_hash ~ '^[0-9a-f]{64}$'", name="id_number_hash_format"),
        sa.CheckConstraint("phone_hash ~ '^[0-9a-f]{64}$'", name="phone_hash_format"),
        sa.CheckConstraint(
            "id_number_masked ~ '^[0-9]{3}[*]{11}[0-9]{3}[0-9X]$'", name="id_number_masked_format"
        ),
        sa.CheckConstraint(
            "phone_masked ~ '^([0-9+]{3}[*]{4,13}[0-9]{4}|[*]{5,20})$'", name="phone_masked_format"
        ),
        sa.CheckConstraint(
            "categories <@ ARRAY['incoming', 'returnee', 'in_need']::text[]",
            name="categories_known",
        ),
    )

    id: Mapped[int] = mapped_column(sa.Integer, sa.Identity(), primary_key=True)
    household_id: Mapped[int] = mapped_column(
        sa.ForeignKey("households.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(sa.Text)
    #: AES-GCM ciphertext, keyed lookup hash and masked form of the ID number.
    id_number_enc: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    id_number_hash: Mapped[str | None] = mapped_column(sa.CHAR(64), unique=True)
    id_number_masked: Mapped[str | None] = mapped_column(sa.CHAR(18))
    #: The same for the phone number.
    phone_enc: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    phone_hash: Mapped[str | None] = mapped_column(sa.CHAR(64), index=True)
    phone_masked: Mapped[str | None] = mapped_column(sa.Text)
    gender: Mapped[Gender | None] = mapped_column(_enum(Gender, "gender"))
    birth_date: Mapped[dt.date | None] = mapped_column(sa.Date)
    relation: Mapped[str | None] = mapped_column(sa.Text)
    #: Where the person is (在家, 外出务工, 在校 ...): article 8, "人人去向明".
    whereabouts: Mapped[str | None] = mapped_column(sa.Text)
    #: Categories the rules name (article 8): ``incoming`` (外来人员), ``returnee``
    #: (returnee from a key area, 重点地区返乡), ``in_need`` (困难群众).
    categories: Mapped[list[str]] = mapped_column(
        postgresql.ARRAY(sa.Text), server_default=sa.text("'{}'::text[]")
    )


class PollutionPoint(_Provenance, Base):
    """A pollution discharge point (排污点) patrolled by the grid member (article 8.7)."""

    __tablename__ = "pollution_points"
    __table_args__ = _geometry_args("pollution_points")

    id: Mapped[int] = mapped_column(sa.Integer, sa.Identity(), primary_key=True)
    code: Mapped[str] = mapped_column(sa.Text, unique=True)
    name: Mapped[str] = mapped_column(sa.Text)
    kind: Mapped[str | None] = mapped_column(sa.Text)
    village_code: Mapped[str | None] = mapped_column(sa.ForeignKey("villages.code"), index=True)
    grid_code: Mapped[str | None] = mapped_column(sa.CHAR(15), index=True)
    geom: Mapped[WKBElement] = mapped_column(_geometry("POINT"))


class Hazard(_Provenance, Base):
    """An environmental or safety hazard (环境安全隐患) located on the map (article 8.7)."""

    __tablename__ = "hazards"
    __table_args__ = (
        sa.CheckConstraint("level BETWEEN 1 AND 4", name="level_range"),
        *_geometry_args("hazards"),
    )

    id: Mapped[int] = mapped_column(sa.Integer, sa.Identity(), primary_key=True)
    code: Mapped[str] = mapped_column(sa.Text, unique=True)
    name: Mapped[str] = mapped_column(sa.Text)
    kind: Mapped[str | None] = mapped_column(sa.Text)
    #: Severity, 1 (minor) to 4 (major).
    level: Mapped[int | None] = mapped_column(sa.SmallInteger)
    village_code: Mapped[str | None] = mapped_column(sa.ForeignKey("villages.code"), index=True)
    grid_code: Mapped[str | None] = mapped_column(sa.CHAR(15), index=True)
    geom: Mapped[WKBElement] = mapped_column(_geometry("POINT"))


class TaskType(_Provenance, Base):
    """A kind of grid work and its admission (准入) state (article 10).

    The town centre applies (``applied_on``), the district centre reviews (``reviewed_on``)
    and the district government approves, or the review rejects (``decided_on``,
    ``decided_by``). ``sla_days`` is the handling time limit an incident of this type gets
    once dispatched.
    """

    __tablename__ = "task_types"
    __table_args__ = (
        sa.CheckConstraint(
            "approval_state NOT IN ('approved', 'rejected') OR decided_on IS NOT NULL",
            name="decision_dated",
        ),
        sa.CheckConstraint("sla_days >= 0", name="sla_days_non_negative"),
    )

    code: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    name: Mapped[str] = mapped_column(sa.Text)
    approval_state: Mapped[ApprovalState] = mapped_column(
        _enum(ApprovalState, "approval_state"), server_default="proposed"
    )
    applied_on: Mapped[dt.date | None] = mapped_column(sa.Date)
    reviewed_on: Mapped[dt.date | None] = mapped_column(sa.Date)
    decided_on: Mapped[dt.date | None] = mapped_column(sa.Date)
    decided_by: Mapped[str | None] = mapped_column(sa.Text)
    sla_days: Mapped[int | None] = mapped_column(sa.Integer)


class Incident(_Provenance, Base):
    """An incident (事件) going through the seven-step workflow, located and assigned."""

    __tablename__ = "incidents"
    __table_args__ = (
        sa.CheckConstraint("deadline IS NULL OR deadline >= reported_at", name="deadline"),
        sa.CheckConstraint(
            "dispatched_at IS NULL OR dispatched_at >= reported_at", name="dispatched_after_report"
        ),
        *_geometry_args("incidents"),
        sa.CheckConstraint("evaluation BETWEEN 1 AND 5", name="evaluation_range"),
    )

    id: Mapped[int] = mapped_column(sa.Integer, sa.Identity(), primary_key=True)
    #: External identifier (the sample's ``inc_id``); NULL for incidents created in the app.
    code: Mapped[str | None] = mapped_column(sa.Text, unique=True)
    task_type_code: Mapped[str] = mapped_column(sa.ForeignKey("task_types.code"), index=True)
    title: Mapped[str] = mapped_column(sa.Text)
    status: Mapped[IncidentStatus] = mapped_column(
        _enum(IncidentStatus, "incident_status"), server_default="reported", index=True
    )
    reported_at: Mapped[dt.datetime] = mapped_column(
        sa.DateTime(timezone=True), server_default=sa.func.now()
    )
    #: When the incident was dispatched: the deadline clock starts here.
    dispatched_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))
    deadline: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))
    village_code: Mapped[str | None] = mapped_column(sa.ForeignKey("villages.code"), index=True)
    grid_code: Mapped[str | None] = mapped_column(sa.CHAR(15), index=True)
    geom: Mapped[WKBElement] = mapped_column(_geometry("POINT"))
    description: Mapped[str | None] = mapped_column(sa.Text)
    #: Who reported it (a member's code or the centre); set by the service.
    reported_by: Mapped[str | None] = mapped_column(sa.Text)
    #: The member responsible: the grid's appointed member, or the AB cover on the day.
    member_id: Mapped[int | None] = mapped_column(sa.ForeignKey("members.id"), index=True)
    closed_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))
    #: Evaluation (评价) after closing, 1 (poor) to 5 (excellent).
    evaluation: Mapped[int | None] = mapped_column(sa.SmallInteger)


class TaskTypeChange(Base):
    """One step of a task type's admission (article 10): who recorded it, when, why."""

    __tablename__ = "task_type_changes"

    id: Mapped[int] = mapped_column(sa.Integer, sa.Identity(), primary_key=True)
    task_type_code: Mapped[str] = mapped_column(
        sa.ForeignKey("task_types.code", ondelete="CASCADE"), index=True
    )
    from_state: Mapped[ApprovalState | None] = mapped_column(_enum(ApprovalState, "approval_state"))
    to_state: Mapped[ApprovalState] = mapped_column(_enum(ApprovalState, "approval_state"))
    #: The day the step took effect (the date column it stamps).
    effective_on: Mapped[dt.date] = mapped_column(sa.Date)
    changed_at: Mapped[dt.datetime] = mapped_column(
        sa.DateTime(timezone=True), server_default=sa.func.now()
    )
    actor: Mapped[str | None] = mapped_column(sa.Text)
    decided_by: Mapped[str | None] = mapped_column(sa.Text)
    note: Mapped[str | None] = mapped_column(sa.Text)


class IncidentEvent(Base):
    """One recorded transition of an incident's workflow: who, when, why."""

    __tablename__ = "incident_events"

    id: Mapped[int] = mapped_column(sa.Integer, sa.Identity(), primary_key=True)
    incident_id: Mapped[int] = mapped_column(
        sa.ForeignKey("incidents.id", ondelete="CASCADE"), index=True
    )
    from_status: Mapped[IncidentStatus | None] = mapped_column(
        _enum(IncidentStatus, "incident_status")
    )
    to_status: Mapped[IncidentStatus] = mapped_column(_enum(IncidentStatus, "incident_status"))
    at: Mapped[dt.datetime] = mapped_column(
        sa.DateTime(timezone=True), server_default=sa.func.now()
    )
    actor: Mapped[str | None] = mapped_column(sa.Text)
    note: Mapped[str | None] = mapped_column(sa.Text)


class Attachment(Base):
    """A photo or document attached to an incident event, stored in the database."""

    __tablename__ = "attachments"
    __table_args__ = (
        sa.CheckConstraint("size = octet_length(data)", name="size_matches"),
        sa.CheckConstraint("sha256 ~ '^[0-9a-f]{64}$'", name="sha256_format"),
    )

    id: Mapped[int] = mapped_column(sa.Integer, sa.Identity(), primary_key=True)
    incident_id: Mapped[int] = mapped_column(
        sa.ForeignKey("incidents.id", ondelete="CASCADE"), index=True
    )
    event_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("incident_events.id", ondelete="CASCADE"), index=True
    )
    filename: Mapped[str] = mapped_column(sa.Text)
    content_type: Mapped[str] = mapped_column(sa.Text)
    size: Mapped[int] = mapped_column(sa.Integer)
    sha256: Mapped[str] = mapped_column(sa.CHAR(64))
    data: Mapped[bytes] = mapped_column(sa.LargeBinary)
    uploaded_by: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[dt.datetime] = mapped_column(
        sa.DateTime(timezone=True), server_default=sa.func.now()
    )


class PatrolLog(Base):
    """One patrol (巡查) of a pollution point or hazard by a member (article 8)."""

    __tablename__ = "patrol_logs"
    __table_args__ = (
        sa.CheckConstraint("num_nonnulls(pollution_point_id, hazard_id) = 1", name="one_target"),
    )

    id: Mapped[int] = mapped_column(sa.Integer, sa.Identity(), primary_key=True)
    pollution_point_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("pollution_points.id", ondelete="CASCADE"), index=True
    )
    hazard_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("hazards.id", ondelete="CASCADE"), index=True
    )
    member_id: Mapped[int | None] = mapped_column(sa.ForeignKey("members.id"), index=True)
    #: Grid of the target at the time of the patrol (for row-level access by grid).
    grid_code: Mapped[str | None] = mapped_column(sa.CHAR(15), index=True)
    patrolled_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True))
    finding: Mapped[str] = mapped_column(sa.Text)
    #: A serious finding is reported upwards as an incident (article 8).
    serious: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false())
    incident_id: Mapped[int | None] = mapped_column(sa.ForeignKey("incidents.id"))
    created_at: Mapped[dt.datetime] = mapped_column(
        sa.DateTime(timezone=True), server_default=sa.func.now()
    )


class NaturalLine(_Provenance, Base):
    """A river, stream, ridgeline or road: a line grid boundaries follow and adjacency weighs.

    ``rank`` orders the lines of one kind, 1 being the most important (a GSHHG river level,
    a stream or road class: :data:`gis_grid.lines.LINE_CLASSES`). ``town_code`` is the town
    the line was digitised for, NULL for lines outside every loaded town; lines may cross
    towns, so "a town's lines" also takes those intersecting its polygon.
    """

    __tablename__ = "natural_lines"
    __table_args__ = (
        sa.CheckConstraint("rank BETWEEN 1 AND 12", name="rank_range"),
        # The source's identifier, unique per kind: reloading a file never duplicates a line.
        sa.UniqueConstraint("kind", "code"),
        *_geometry_args("natural_lines"),
    )

    id: Mapped[int] = mapped_column(sa.Integer, sa.Identity(), primary_key=True)
    kind: Mapped[NaturalLineKind] = mapped_column(
        _enum(NaturalLineKind, "natural_line_kind"), index=True
    )
    #: External identifier (the sample's ``river_id``, ``strm_id``, ``road_id``).
    code: Mapped[str | None] = mapped_column(sa.Text)
    name: Mapped[str | None] = mapped_column(sa.Text)
    rank: Mapped[int | None] = mapped_column(sa.SmallInteger)
    town_code: Mapped[str | None] = mapped_column(sa.ForeignKey("towns.code"), index=True)
    geom: Mapped[WKBElement] = mapped_column(_geometry("MULTILINESTRING"))


class User(Base):
    """An account of the platform: a role, an argon2 password hash, lockout state.

    A ``member`` account is one grid member (``member_code``: the member's stable code, not a
    foreign key, so that reloading the members keeps the accounts); row-level security then
    limits it to that member's grid (and the grids they cover on the day).
    """

    __tablename__ = "users"
    __table_args__ = (
        sa.CheckConstraint("username ~ '^[a-z0-9][a-z0-9_.@-]{2,63}$'", name="username_format"),
        sa.CheckConstraint(
            "role IN ('admin', 'planner', 'member', 'analyst', 'reader')", name="role_known"
        ),
        sa.CheckConstraint("(role = 'member') = (member_code IS NOT NULL)", name="member_role"),
        sa.CheckConstraint("failed_logins >= 0", name="failed_logins"),
    )

    id: Mapped[int] = mapped_column(sa.Integer, sa.Identity(), primary_key=True)
    username: Mapped[str] = mapped_column(sa.Text, unique=True)
    display_name: Mapped[str | None] = mapped_column(sa.Text)
    role: Mapped[str] = mapped_column(sa.Text)
    member_code: Mapped[str | None] = mapped_column(sa.Text, index=True)
    password_hash: Mapped[str] = mapped_column(sa.Text)
    disabled: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false())
    #: Failed logins in a row; at the limit the account is locked until ``locked_until``.
    failed_logins: Mapped[int] = mapped_column(sa.Integer, server_default=sa.text("0"))
    locked_until: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = mapped_column(
        sa.DateTime(timezone=True), server_default=sa.func.now()
    )
    password_changed_at: Mapped[dt.datetime] = mapped_column(
        sa.DateTime(timezone=True), server_default=sa.func.now()
    )


class UserSession(Base):
    """One login token (by its ``jti``): logout or disabling the account revokes it."""

    __tablename__ = "sessions"
    __table_args__ = (sa.CheckConstraint("jti ~ '^[0-9a-f]{32}$'", name="jti_format"),)

    jti: Mapped[str] = mapped_column(sa.CHAR(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    issued_at: Mapped[dt.datetime] = mapped_column(
        sa.DateTime(timezone=True), server_default=sa.func.now()
    )
    expires_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))


class AuditEntry(Base):
    """One access to personal data (an unmasking, granted or refused). Append-only.

    The application role may only insert and read; a trigger refuses UPDATE, DELETE and
    TRUNCATE for everybody.
    """

    __tablename__ = "audit_log"
    __table_args__ = (
        sa.CheckConstraint(
            "outcome IN ('granted', 'denied', 'rate_limited')", name="outcome_known"
        ),
        sa.Index("ix_audit_log_username_at", "username", "at"),
    )

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(
        sa.DateTime(timezone=True), server_default=sa.func.now()
    )
    username: Mapped[str] = mapped_column(sa.Text)
    role: Mapped[str] = mapped_column(sa.Text)
    action: Mapped[str] = mapped_column(sa.Text)
    #: The resident concerned (no foreign key: the log outlives the record).
    resident_id: Mapped[int | None] = mapped_column(sa.Integer, index=True)
    fields: Mapped[list[str]] = mapped_column(
        postgresql.ARRAY(sa.Text), server_default=sa.text("'{}'::text[]")
    )
    reason: Mapped[str | None] = mapped_column(sa.Text)
    outcome: Mapped[str] = mapped_column(sa.Text)
    detail: Mapped[str | None] = mapped_column(sa.Text)
