"""Request and response models of the member workflow, AB posts, absences and cover.

Requests (``MemberCreate``, ``MemberUpdate``, ``TransitionCreate``, ``ABPostUpdate``,
``AbsenceCreate``) forbid unknown fields, so a misspelt field is a 422 naming it rather than
silently ignored. Responses mask personal data as the rest of the API does: phones masked,
an age instead of the birth date, members' names shown (members are publicised, 公示).
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from api.schemas import MemberRefPublic
from gis_grid.crs import Datum
from gis_grid.db.models import Gender, MemberStatus

__all__ = [
    "ABPostPublic",
    "ABPostUpdate",
    "ABPostsPublic",
    "AbsenceCreate",
    "AbsencePublic",
    "AbsencesPublic",
    "CandidatePublic",
    "CandidatesPublic",
    "CoverAssignmentPublic",
    "CoverPublic",
    "HomeIn",
    "MemberCreate",
    "MemberDetailPublic",
    "MemberUpdate",
    "ProblemPublic",
    "StatusChangePublic",
    "StatusChangesPublic",
    "TransitionCreate",
    "TransitionPublic",
    "UncoveredGridPublic",
    "UncoveredPublic",
]

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]
LongText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
MemberCode = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
VillageCodeIn = Annotated[str, StringConstraints(pattern=r"^[0-9]{12}$")]
GridCodeIn = Annotated[str, StringConstraints(pattern=r"^[0-9]{15}$")]
Phone = Annotated[str, StringConstraints(strip_whitespace=True, min_length=5, max_length=20)]


def _finite_or_text(value: Any) -> Any:
    """Replace NaN/Infinity (which JSON cannot carry back) by their text, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite_or_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite_or_text(v) for v in value]
    return value


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_nan(cls, data: Any) -> Any:
        # Python's JSON parser accepts NaN/Infinity; a 422 echoing them as floats could not be
        # serialised (a 500). As text they are refused like any other non-number.
        return _finite_or_text(data)


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True, frozen=True)


class HomeIn(_In):
    """A member's home as longitude/latitude in a datum (converted to CGCS2000)."""

    lon: float = Field(allow_inf_nan=False, examples=[107.405], description="Longitude, degrees")
    lat: float = Field(allow_inf_nan=False, examples=[30.964], description="Latitude, degrees")
    datum: Datum = Field(
        Datum.CGCS2000, description="cgcs2000, wgs84 (GPS), gcj02 (AMap, Tencent), bd09 (Baidu)"
    )


class _MemberFields(_In):
    gender: Gender | None = None
    phone: Phone | None = Field(None, examples=["13812345678"], description="Stored, shown masked")
    home: HomeIn | None = Field(None, description="Where the member lives (就地就近)")
    party_member: bool = Field(False, description="Preference: party member (党团员)")
    veteran: bool = Field(False, description="Preference: veteran (退伍军人)")
    unemployed_graduate: bool = Field(
        False, description="Preference: unemployed graduate (毕业未就业大学生)"
    )
    criminal_record: bool | None = Field(
        None, description="Vetting: criminal punishment of the person; null = not yet vetted"
    )
    relative_criminal_record: bool | None = Field(
        None, description="Vetting: of a direct relative; null = not yet vetted"
    )
    organised_petitions: bool | None = Field(
        None, description="Vetting: mass/illegal petitions; null = not yet vetted"
    )
    cult_member: bool | None = Field(
        None, description="Vetting: cult or underground religion; null = not yet vetted"
    )


class MemberCreate(_MemberFields):
    """A candidate's application (article 7: 个人申请), recommended by a village."""

    code: MemberCode = Field(examples=["C511703109001001"], description="External identifier")
    name: Text = Field(examples=["张三"])
    birth_date: dt.date = Field(examples=["1990-05-01"])
    education: Text = Field(
        examples=["高中"],
        description="小学, 初中, 高中, 中专, 大专, 本科, 研究生/硕士, 博士 or English names",
    )
    village_code: VillageCodeIn = Field(examples=["511703109001"], description="Recommending")
    grid_code: GridCodeIn = Field(examples=["511703109001001"], description="Grid applied for")
    applied_on: dt.date | None = Field(None, description="Default today (China time)")


class MemberUpdate(_MemberFields):
    """Fields to change (only those given); ``null`` empties an optional field."""

    name: Text | None = None
    birth_date: dt.date | None = None
    education: Text | None = None
    village_code: VillageCodeIn | None = None
    grid_code: GridCodeIn | None = None
    applied_on: dt.date | None = None


class ProblemPublic(_Out):
    """An unmet condition of article 6."""

    rule: str = Field(examples=["age"])
    field: str = Field(examples=["birth_date"])
    severity: Literal["failure", "warning"]
    reason: str
    reason_zh: str
    article: str = Field(examples=["6"])


class MemberDetailPublic(_Out):
    """A member or candidate with eligibility; phone masked, age instead of birth date."""

    code: str
    name: str
    gender: str | None
    age: int | None
    education: str | None
    phone: str | None = Field(examples=["138****1234"])
    status: str = Field(examples=["applied"])
    grid_code: str | None
    grid: str | None
    village_code: str | None
    village: str | None
    party_member: bool
    veteran: bool
    unemployed_graduate: bool
    criminal_record: bool | None
    relative_criminal_record: bool | None
    organised_petitions: bool | None
    cult_member: bool | None
    applied_on: dt.date | None
    appointed_on: dt.date | None
    dismissed_on: dt.date | None
    has_home: bool
    lives_in_grid: bool | None
    score: int = Field(description="Preference score (party 3, veteran 2, graduate 2)")
    eligible: bool = Field(description="No failure today (warnings: vetting still to come)")
    problems: list[ProblemPublic]


class TransitionCreate(_In):
    """One step of the selection workflow."""

    to: MemberStatus = Field(description="The next status")
    note: LongText | None = Field(None, description="Why, or the decision's reference")
    reason: LongText | None = Field(None, description="Required to dismiss (article 11)")
    replacement: MemberCode | None = Field(
        None, description="Dismissal: a publicised candidate appointed in the same step"
    )
    replaces: MemberCode | None = Field(
        None, description="Appointment: the member in office this one replaces"
    )
    on: dt.date | None = Field(None, description="Date of the step; default today (China)")


class StatusChangePublic(_Out):
    """A recorded step."""

    from_status: str | None
    to_status: str
    changed_at: dt.datetime
    actor: str | None
    note: str | None


class StatusChangesPublic(_Out):
    """A member's workflow history, oldest first."""

    code: str
    data: list[StatusChangePublic]
    count: int


class TransitionPublic(_Out):
    """The member after the step (and the member replaced, if any) with its history."""

    member: MemberDetailPublic
    replaced: MemberDetailPublic | None
    history: list[StatusChangePublic]


class CandidatePublic(_Out):
    """A candidate for a grid with its rank."""

    rank: int = Field(ge=1)
    score: int
    eligible: bool
    member: MemberDetailPublic


class CandidatesPublic(_Out):
    """The candidates of a grid, best first."""

    grid_code: str
    on: dt.date
    data: list[CandidatePublic]
    count: int


# --- AB posts -------------------------------------------------------------------------------


class ABPostPublic(_Out):
    """Who covers a grid: the member of ``cover_grid_code`` when the grid's is absent."""

    grid_code: str
    grid: str | None
    member: MemberRefPublic | None
    cover_grid_code: str
    cover_grid: str | None
    cover_member: MemberRefPublic | None
    link: str = Field(examples=["adjacent"], description="adjacent, second_ring, nearest, manual")
    group: int = Field(description="Grids of one pair or ring share a group number")
    valid_from: dt.datetime | None = Field(description="null in a preview")
    source: str | None
    stale: bool = Field(description="A grid of the pair is no longer current")


class UncoveredGridPublic(_Out):
    """A grid nobody can back up, and why."""

    grid_code: str
    reason: str


class ABPostsPublic(_Out):
    """A town's AB-post pairing."""

    town_code: str
    stored: bool = Field(description="false for a preview (dry_run) or when nothing is stored")
    closed: int = Field(ge=0, description="Rows of the previous pairing closed by this store")
    data: list[ABPostPublic]
    count: int
    uncovered: list[UncoveredGridPublic]


class ABPostUpdate(_In):
    """Set one grid's cover by hand."""

    cover_grid_code: GridCodeIn = Field(examples=["511703109001002"])
    reason: LongText | None = Field(
        None, description="Required when the grids are not adjacent: why this cover anyway"
    )


# --- absences and cover -----------------------------------------------------------------------


class AbsenceCreate(_In):
    """An absence of an appointed member (both days included)."""

    starts_on: dt.date = Field(examples=["2025-03-01"])
    ends_on: dt.date = Field(examples=["2025-03-05"])
    reason: LongText = Field(examples=["病假 sick leave"])


class AbsencePublic(_Out):
    """A recorded absence."""

    id: int
    member_code: str
    starts_on: dt.date
    ends_on: dt.date
    reason: str
    created_at: dt.datetime
    actor: str | None


class AbsencesPublic(_Out):
    """A member's absences, earliest first."""

    data: list[AbsencePublic]
    count: int


class CoverAssignmentPublic(_Out):
    """A grid whose member is absent and who covers it."""

    grid_code: str
    grid: str | None
    absent: MemberRefPublic
    absence_id: int
    absence_reason: str
    cover_member: MemberRefPublic
    cover_grid_code: str
    rule: str = Field(examples=["ab_post"], description="ab_post, group, neighbour, second_ring")
    hops: int


class UncoveredPublic(_Out):
    """A grid whose member is absent and whom nobody can cover."""

    grid_code: str
    grid: str | None
    absent: MemberRefPublic
    absence_id: int
    reason: str


class CoverPublic(_Out):
    """Who covers whom in a town on a day."""

    town_code: str
    day: dt.date
    pairing: str = Field(description="stored, computed (nothing stored) or none (no absence)")
    data: list[CoverAssignmentPublic]
    count: int
    uncovered: list[UncoveredPublic]
