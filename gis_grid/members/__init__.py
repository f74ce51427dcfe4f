"""Grid members: eligibility (article 6), selection (article 7, 11), AB posts and cover.

- :mod:`~gis_grid.members.eligibility`: the rules of article 6 and ranking of candidates;
- :mod:`~gis_grid.members.registry`: candidates registered and corrected, fields checked;
- :mod:`~gis_grid.members.selection`: the workflow applied → recommended → examined →
  publicised → appointed → dismissed, recorded step by step;
- :mod:`~gis_grid.members.absences`: members' absences;
- :mod:`~gis_grid.members.cover`: the stored AB-post pairing and the day's cover.

Examples
--------
>>> import datetime as dt
>>> from gis_grid.members import check_eligibility
>>> [p.rule for p in check_eligibility({"birth_date": dt.date(1970, 1, 1), "education": "本科",
...     "criminal_record": False, "relative_criminal_record": False,
...     "organised_petitions": False, "cult_member": False}, on=dt.date(2025, 1, 1))]
['age']
"""

from gis_grid.members.absences import AbsenceRecord, add_absence, delete_absence, list_absences
from gis_grid.members.cover import (
    ABPostRecord,
    CoverAssignment,
    DayCover,
    MemberRef,
    StoredPairing,
    UncoveredGrid,
    compute_ab_posts,
    cover_on,
    grids_covered_by,
    read_ab_posts,
    set_ab_post,
    store_ab_posts,
)
from gis_grid.members.eligibility import (
    EXCLUSION_FLAGS,
    MAX_AGE,
    PREFERENCE_WEIGHTS,
    Education,
    Problem,
    RankedCandidate,
    age_on,
    check_eligibility,
    parse_education,
    preference_score,
    rank_candidates,
    today_in_china,
)
from gis_grid.members.registry import (
    MemberDetail,
    create_member,
    get_member_detail,
    update_member,
)
from gis_grid.members.selection import (
    TRANSITIONS,
    StatusChange,
    TransitionResult,
    grid_candidates,
    member_history,
    transition_member,
)

__all__ = [
    "EXCLUSION_FLAGS",
    "MAX_AGE",
    "PREFERENCE_WEIGHTS",
    "TRANSITIONS",
    "ABPostRecord",
    "AbsenceRecord",
    "CoverAssignment",
    "DayCover",
    "Education",
    "MemberDetail",
    "MemberRef",
    "Problem",
    "RankedCandidate",
    "StatusChange",
    "StoredPairing",
    "TransitionResult",
    "UncoveredGrid",
    "add_absence",
    "age_on",
    "check_eligibility",
    "compute_ab_posts",
    "cover_on",
    "create_member",
    "delete_absence",
    "get_member_detail",
    "grid_candidates",
    "grids_covered_by",
    "list_absences",
    "member_history",
    "parse_education",
    "preference_score",
    "rank_candidates",
    "read_ab_posts",
    "set_ab_post",
    "store_ab_posts",
    "today_in_china",
    "transition_member",
    "update_member",
]
