"""Eligibility of a grid member (article 6 of the Zhaojia measures) and ranking of candidates.

Article 6 sets the conditions (选用条件) and the exclusions (不得做为网格员选配候选人):

- 年轻化: age "in principle" at most 45 — checked on the appointment date;
- 知识化: education of high school (高中) or above; a secondary vocational school (中专, 职高,
  技校) is the same level;
- 法制化 / exclusions: no criminal punishment of the person (本人) or of a direct relative
  (直系亲属), no participation in organised mass petitions (集体上访), no cult membership or
  underground religious activity (邪教).

The exclusions are found by the town's vetting (审查, article 7): until then the flags are
NULL, "not yet vetted". That is a *warning* for a candidate and a *failure* for an
appointment. :func:`check_eligibility` returns every problem at once, each naming its rule,
the member field it reads and the reason in English and Chinese, so that a refusal can list
them all. The preferences of article 6 (优先: party members, veterans, unemployed graduates)
give :func:`preference_score`, which :func:`rank_candidates` uses to order the candidates of a
grid.

Examples
--------
>>> import datetime as dt
>>> member = {"birth_date": dt.date(1990, 5, 1), "education": "高中", "criminal_record": False,
...           "relative_criminal_record": False, "organised_petitions": False,
...           "cult_member": False}
>>> check_eligibility(member, on=dt.date(2025, 1, 1))
[]
>>> [p.rule for p in check_eligibility({**member, "education": "初中"}, on=dt.date(2025, 1, 1))]
['education']
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from enum import IntEnum
from typing import Any, Literal

__all__ = [
    "CHINA_TIME",
    "EXCLUSION_FLAGS",
    "MAX_AGE",
    "PREFERENCE_WEIGHTS",
    "Education",
    "Problem",
    "RankedCandidate",
    "age_on",
    "check_eligibility",
    "parse_education",
    "preference_score",
    "rank_candidates",
    "today_in_china",
]

#: China Standard Time: "today" for the measures is the town's day, not the server's.
CHINA_TIME = dt.timezone(dt.timedelta(hours=8), "CST")

#: Article 6: age "in principle not above 45" (年龄原则上不超过45岁), at appointment.
MAX_AGE = 45

Stage = Literal["candidate", "appointment"]


class Education(IntEnum):
    """Levels of schooling, ordered; :attr:`HIGH_SCHOOL` is article 6's minimum."""

    PRIMARY = 1
    JUNIOR_HIGH = 2
    HIGH_SCHOOL = 3
    COLLEGE = 4
    BACHELOR = 5
    MASTER = 6
    DOCTOR = 7


_EDUCATION_NAMES: dict[Education, tuple[str, ...]] = {
    Education.PRIMARY: ("小学", "primary", "primary school", "elementary"),
    Education.JUNIOR_HIGH: (
        "初中", "初级中学", "junior high", "junior high school", "middle school",
        "junior middle school", "lower secondary",
    ),
    Education.HIGH_SCHOOL: (
        "高中", "普通高中", "中专", "中等专业学校", "职高", "职业高中", "技校", "技工学校", "中技",
        "high school", "senior high", "senior high school", "upper secondary",
        "secondary vocational", "vocational school", "technical school",
    ),
    Education.COLLEGE: (
        "大专", "专科", "高职", "college", "junior college", "associate", "associate degree",
        "vocational college",
    ),
    Education.BACHELOR: (
        "本科", "大学本科", "大学", "学士", "bachelor", "bachelors", "bachelor's",
        "undergraduate", "university",
    ),
    Education.MASTER: (
        "研究生", "硕士", "硕士研究生", "master", "masters", "master's", "postgraduate",
        "graduate",
    ),
    Education.DOCTOR: ("博士", "博士研究生", "doctor", "doctorate", "phd", "ph.d."),
}  # fmt: skip

_EDUCATION: dict[str, Education] = {
    " ".join(name.lower().replace("_", " ").replace("-", " ").split()): level
    for level, names in _EDUCATION_NAMES.items()
    for name in names
}

#: The exclusion flags of article 6 (NULL = not yet vetted) and what each one means.
EXCLUSION_FLAGS: dict[str, tuple[str, str, str]] = {
    # field: (rule, English, Chinese)
    "criminal_record": (
        "no_criminal_record",
        "has a criminal record",
        "本人受过刑事处罚",
    ),
    "relative_criminal_record": (
        "no_relative_criminal_record",
        "a direct relative has a criminal record",
        "直系亲属受过刑事处罚",
    ),
    "organised_petitions": (
        "no_organised_petitions",
        "took part in, organised or incited mass or illegal petitions",
        "参与、组织或煽动群众集体上访或非法上访",
    ),
    "cult_member": (
        "no_cult_membership",
        "believes in a cult or takes part in underground religious activity",
        "信奉邪教或参与地下宗教活动",
    ),
}

#: Points each preference of article 6 (优先选择) adds to a candidate's score.
PREFERENCE_WEIGHTS: dict[str, int] = {
    "party_member": 3,  # 党团员
    "veteran": 2,  # 退伍军人
    "unemployed_graduate": 2,  # 毕业未就业大学生
}


@dataclass(frozen=True)
class Problem:
    """One unmet condition of article 6.

    Attributes
    ----------
    rule
        ``"age"``, ``"education"``, or the exclusion rule (``"no_criminal_record"``, ...).
    field
        The member field the rule reads (``"birth_date"``, ``"education"``, a flag).
    severity
        ``"failure"`` (refuses an appointment) or ``"warning"`` (a candidate not yet vetted).
    reason, reason_zh
        What is wrong, in English and in Chinese.
    article
        The article of the measures (``"6"``).
    """

    rule: str
    field: str
    severity: Literal["failure", "warning"]
    reason: str
    reason_zh: str
    article: str = "6"

    def as_dict(self) -> dict[str, object]:
        """Return the problem as a plain mapping (for ``GridError(problems=...)``)."""
        return asdict(self)


def today_in_china() -> dt.date:
    """Return today's date in China Standard Time (UTC+08:00)."""
    return dt.datetime.now(CHINA_TIME).date()


def age_on(birth_date: dt.date, on: dt.date) -> int:
    """Age in whole years on a day (a birthday counts from the day itself).

    Examples
    --------
    >>> age_on(dt.date(1980, 3, 10), dt.date(2025, 3, 10)), age_on(dt.date(1980, 3, 10),
    ...     dt.date(2025, 3, 9))
    (45, 44)
    """
    before_birthday = (on.month, on.day) < (birth_date.month, birth_date.day)
    return on.year - birth_date.year - int(before_birthday)


def parse_education(value: str | None) -> Education | None:
    """Return the level of an education name (Chinese or English), ``None`` if unknown.

    Examples
    --------
    >>> parse_education("中专"), parse_education("High School"), parse_education("幼儿园")
    (<Education.HIGH_SCHOOL: 3>, <Education.HIGH_SCHOOL: 3>, None)
    """
    if value is None:
        return None
    key = " ".join(str(value).strip().lower().replace("_", " ").replace("-", " ").split())
    return _EDUCATION.get(key)


def _get(member: Mapping[str, Any] | object, field: str) -> Any:
    if isinstance(member, Mapping):
        return member.get(field)
    return getattr(member, field, None)


def _age_problem(birth: object, on: dt.date) -> Problem | None:
    if not isinstance(birth, dt.date):
        return Problem(
            "age",
            "birth_date",
            "failure",
            f"birth date unknown: the age on {on.isoformat()} (at most {MAX_AGE}) cannot be "
            "checked",
            "出生日期未登记，无法核实年龄",
        )
    age = age_on(birth, on)
    if age > MAX_AGE:
        return Problem(
            "age",
            "birth_date",
            "failure",
            f"aged {age} on {on.isoformat()} (born {birth.isoformat()}): article 6 allows "
            f"at most {MAX_AGE}",
            f"{on.isoformat()}时年龄{age}岁，超过{MAX_AGE}岁",
        )
    return None


def _education_problem(value: object) -> Problem | None:
    if value is None or not str(value).strip():
        return Problem(
            "education",
            "education",
            "failure",
            "education not recorded: high school (高中) or above is required",
            "学历未登记，须达到高中及以上",
        )
    level = parse_education(str(value))
    if level is None:
        return Problem(
            "education",
            "education",
            "failure",
            f"unknown education {value!r}: use 小学, 初中, 高中, 中专, 大专, 本科, 研究生/硕士, "
            "博士 (or primary, junior high, high school, college, bachelor, master, doctor)",
            f"学历“{value}”无法识别",
        )
    if level < Education.HIGH_SCHOOL:
        return Problem(
            "education",
            "education",
            "failure",
            f"education {value!r} is below high school (高中): article 6 requires high school "
            "or above",
            f"学历“{value}”低于高中",
        )
    return None


def _flag_problems(member: Mapping[str, Any] | object, stage: Stage) -> list[Problem]:
    out = []
    for field, (rule, reason, reason_zh) in EXCLUSION_FLAGS.items():
        value = _get(member, field)
        if value is None:
            out.append(
                Problem(
                    rule,
                    field,
                    "failure" if stage == "appointment" else "warning",
                    f"{field} not yet vetted (审查): the town must record it before the "
                    "examination step",
                    f"尚未审查（{reason_zh}）",
                )
            )
        elif value:
            out.append(Problem(rule, field, "failure", reason, reason_zh))
    return out


def check_eligibility(
    member: Mapping[str, Any] | object, *, on: dt.date | None = None, stage: Stage = "appointment"
) -> list[Problem]:
    """Check a member or candidate against article 6; return every problem found.

    Parameters
    ----------
    member
        A mapping (or object with attributes) with ``birth_date``, ``education`` and the
        exclusion flags (:data:`EXCLUSION_FLAGS`; ``None`` = not yet vetted).
    on
        The day the age is checked on (the appointment date); default today in China.
    stage
        ``"appointment"``: an unvetted flag is a failure; ``"candidate"``: only a warning.

    Returns
    -------
    list of Problem
        Empty when eligible; in the order age, education, the four exclusions.

    Examples
    --------
    >>> p = check_eligibility({"birth_date": dt.date(1970, 1, 1), "education": "本科",
    ...     "criminal_record": False, "relative_criminal_record": True,
    ...     "organised_petitions": None, "cult_member": False}, on=dt.date(2025, 1, 1))
    >>> [(x.rule, x.severity) for x in p]  # doctest: +NORMALIZE_WHITESPACE
    [('age', 'failure'), ('no_relative_criminal_record', 'failure'),
     ('no_organised_petitions', 'failure')]
    """
    day = on if on is not None else today_in_china()
    found = [
        _age_problem(_get(member, "birth_date"), day),
        _education_problem(_get(member, "education")),
    ]
    return [p for p in found if p is not None] + _flag_problems(member, stage)


def preference_score(member: Mapping[str, Any] | object) -> int:
    """Points for the preferences of article 6 (:data:`PREFERENCE_WEIGHTS`).

    Examples
    --------
    >>> preference_score({"party_member": True, "veteran": True})
    5
    """
    return sum(w for field, w in PREFERENCE_WEIGHTS.items() if _get(member, field))


@dataclass(frozen=True)
class RankedCandidate:
    """A candidate with its rank for a grid.

    Attributes
    ----------
    rank
        1 for the best candidate.
    member
        The candidate as given.
    score
        :func:`preference_score`.
    eligible
        No failure (warnings allowed: vetting is still to come).
    problems
        :func:`check_eligibility` at the ``"candidate"`` stage.
    """

    rank: int
    member: Any
    score: int
    eligible: bool
    problems: tuple[Problem, ...]


#: How far a candidate has come in the selection (article 7): further first when tied.
_PROGRESS = {"publicised": 3, "examined": 2, "recommended": 1, "applied": 0}


def rank_candidates(
    candidates: Iterable[Mapping[str, Any] | object], *, on: dt.date | None = None
) -> list[RankedCandidate]:
    """Order the candidates of a grid: eligible first, then by preference score.

    Ties are broken by progress in the selection (publicised before applied), then by
    education level (higher first), then by age (younger first, article 6's 年轻化), then by
    code, so the order is stable.

    Parameters
    ----------
    candidates
        Mappings (or objects) with the eligibility fields, the preference flags and ``code``
        (optionally ``status``).
    on
        The day ages are checked on (default today in China).

    Returns
    -------
    list of RankedCandidate

    Examples
    --------
    >>> base = {"birth_date": dt.date(1990, 1, 1), "education": "高中"}
    >>> ranked = rank_candidates([{**base, "code": "A"}, {**base, "code": "B", "veteran": True}],
    ...                          on=dt.date(2025, 1, 1))
    >>> [(r.rank, r.member["code"], r.score) for r in ranked]
    [(1, 'B', 2), (2, 'A', 0)]
    """
    day = on if on is not None else today_in_china()

    def key(item: tuple[Any, int, list[Problem]]) -> tuple[Any, ...]:
        member, score, problems = item
        failures = sum(p.severity == "failure" for p in problems)
        level = parse_education(_get(member, "education")) or 0
        birth = _get(member, "birth_date")
        # Younger = later birth date first: sort on the negated ordinal.
        age_key = -birth.toordinal() if isinstance(birth, dt.date) else 0
        progress = _PROGRESS.get(str(_get(member, "status") or ""), 0)
        return (failures > 0, failures, -score, -progress, -int(level), age_key,
                str(_get(member, "code")))  # fmt: skip

    scored = [
        (m, preference_score(m), check_eligibility(m, on=day, stage="candidate"))
        for m in candidates
    ]
    scored.sort(key=key)
    return [
        RankedCandidate(
            rank=i,
            member=m,
            score=score,
            eligible=not any(p.severity == "failure" for p in problems),
            problems=tuple(problems),
        )
        for i, (m, score, problems) in enumerate(scored, start=1)
    ]
