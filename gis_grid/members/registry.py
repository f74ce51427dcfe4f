"""The member registry (articles 6 and 7): candidates registered and corrected, checked.

:func:`create_member` registers a candidate (status ``applied``) and :func:`update_member`
corrects the registry fields. Both check what they store — phone format, a plausible birth
date, a village that exists, a *current* grid of that village, a home in or near the town
(就地就近, article 5), datum-converted to CGCS2000 — and raise an error naming the field.
Eligibility (article 6) is *reported*, not enforced, here: an ineligible candidate may be
registered (:attr:`MemberDetail.problems` says why they could not be appointed); the
appointment (:mod:`gis_grid.members.selection`) refuses them.

Personal data leaves masked: the phone (``138****1234``), an age instead of the birth date,
only whether a home is known. Every function works in the caller's transaction.

Examples
--------
>>> with engine.begin() as conn:  # doctest: +SKIP
...     detail = create_member(conn, {"code": "C1", "name": "张三", "birth_date": date(1990, 1, 1),
...         "education": "高中", "village_code": "511703109001",
...         "grid_code": "511703109001001"}, actor="centre")
...     [p.rule for p in detail.problems]  # not yet vetted: warnings
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis_grid.crs import CHINA_BOUNDS, Datum, convert_lonlat, parse_datum
from gis_grid.db.models import Gender, MemberStatus
from gis_grid.errors import (
    ConflictError,
    CoordinateError,
    DuplicateCodeError,
    NotFoundError,
    RuleError,
)
from gis_grid.members import _sql
from gis_grid.members.eligibility import (
    EXCLUSION_FLAGS,
    Problem,
    age_on,
    check_eligibility,
    preference_score,
    today_in_china,
)
from gis_grid.privacy import mask_phone

__all__ = [
    "EDITABLE_FIELDS",
    "HOME_REACH_M",
    "MemberDetail",
    "check_current_grid",
    "create_member",
    "detail_from_row",
    "get_member_detail",
    "member_row",
    "require_member_id",
    "rule_error",
    "update_member",
]

EDITABLE_FIELDS = (
    "name", "gender", "birth_date", "education", "phone", "village_code", "grid_code", "home",
    "party_member", "veteran", "unemployed_graduate", *EXCLUSION_FLAGS, "applied_on",
)  # fmt: skip

#: Fields that may not be emptied once set.
_REQUIRED = ("name", "birth_date", "education", "village_code", "grid_code")

#: How far from the village's town a member's home may lie (就地就近, article 5), metres.
HOME_REACH_M = 5_000.0

#: Mainland mobile (11 digits) or landline with area code (0818-2345678, 08182345678).
_PHONE = re.compile(r"^(1[3-9][0-9]{9}|0[0-9]{2,3}-?[0-9]{7,8})$")
_CODE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_MIN_AGE, _MAX_PLAUSIBLE_AGE = 16, 100


@dataclass(frozen=True)
class MemberDetail:
    """A member or candidate as the registry shows it: phone masked, age for birth date.

    ``problems`` are the article-6 problems at the candidate stage (unvetted flags are
    warnings); ``score`` the preference score.
    """

    code: str
    name: str
    gender: str | None
    age: int | None
    education: str | None
    phone: str | None
    status: str
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
    score: int
    eligible: bool
    problems: tuple[Problem, ...]


def detail_from_row(row: Mapping[Any, Any], *, on: dt.date) -> MemberDetail:
    """Build the registry view of a member row (phone masked, problems as of ``on``)."""
    problems = tuple(check_eligibility(row, on=on, stage="candidate"))
    birth = row["birth_date"]
    return MemberDetail(
        code=row["code"],
        name=row["name"],
        gender=row["gender"],
        age=age_on(birth, on) if birth is not None else None,
        education=row["education"],
        phone=mask_phone(row["phone"]),
        status=row["status"],
        grid_code=row["grid_code"],
        grid=row["grid"],
        village_code=row["village_code"],
        village=row["village"],
        party_member=bool(row["party_member"]),
        veteran=bool(row["veteran"]),
        unemployed_graduate=bool(row["unemployed_graduate"]),
        criminal_record=row["criminal_record"],
        relative_criminal_record=row["relative_criminal_record"],
        organised_petitions=row["organised_petitions"],
        cult_member=row["cult_member"],
        applied_on=row["applied_on"],
        appointed_on=row["appointed_on"],
        dismissed_on=row["dismissed_on"],
        has_home=bool(row["has_home"]),
        lives_in_grid=row["lives_in_grid"],
        score=preference_score(row),
        eligible=not any(p.severity == "failure" for p in problems),
        problems=problems,
    )


def member_row(conn: Connection, code: str) -> sa.RowMapping:
    """Return the member's row (every column, unmasked: for the library only); 404 if none."""
    row = (
        conn.execute(sa.text(_sql.MEMBER.format(where="m.code = :code")), {"code": code})
        .mappings()
        .first()
    )
    if row is None:
        msg = f"member {code!r} not found; GET /api/v1/members lists the members"
        raise NotFoundError(msg, problems=[{"field": "code", "value": code}])
    return row


def require_member_id(conn: Connection, code: str, *, lock: bool = False) -> int:
    """Return the database id of the member ``code`` (locked ``FOR UPDATE`` with ``lock``).

    Raises
    ------
    NotFoundError
        No such member; the message names the code.
    """
    sql = _sql.LOCK_MEMBER if lock else "SELECT id FROM members WHERE code = :code"
    found = conn.execute(sa.text(sql), {"code": code}).scalar()
    if found is None:
        member_row(conn, code)  # raises, naming the code
    return int(found or 0)


def get_member_detail(conn: Connection, code: str, *, on: dt.date | None = None) -> MemberDetail:
    """Return a member or candidate with eligibility problems (as of ``on``, default today).

    Raises
    ------
    NotFoundError
        No such member.
    """
    return detail_from_row(member_row(conn, code), on=on or today_in_china())


# --- field checks -----------------------------------------------------------------------------


def rule_error(field: str, msg: str, value: object = None) -> RuleError:
    """Return a :class:`RuleError` whose problem names ``field`` (and the value, if given)."""
    shown = value.isoformat() if isinstance(value, dt.date) else value
    return RuleError(msg, problems=[{"field": field, "reason": msg, "value": shown}])


def _check_text(field: str, value: object, *, max_len: int) -> str:
    if not isinstance(value, str) or not value.strip() or len(value.strip()) > max_len:
        msg = f"{field} must be a non-empty text of at most {max_len} characters, got {value!r}"
        raise rule_error(field, msg, value if isinstance(value, str) else None)
    return value.strip()


def _check_date(field: str, value: object) -> dt.date:
    if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
        msg = f"{field} must be a date (YYYY-MM-DD), got {value!r}"
        raise rule_error(field, msg)
    return value


def _check_birth_date(value: object, today: dt.date) -> dt.date:
    birth = _check_date("birth_date", value)
    age = age_on(birth, today) if birth <= today else -1
    if not _MIN_AGE <= age <= _MAX_PLAUSIBLE_AGE:
        msg = (
            f"birth_date {birth.isoformat()} is not plausible for a grid member: the age on "
            f"{today.isoformat()} would be {age if age >= 0 else 'negative'}; it must be "
            f"{_MIN_AGE}-{_MAX_PLAUSIBLE_AGE}"
        )
        raise rule_error("birth_date", msg, birth)
    return birth


def _check_phone(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip().replace(" ", "")
    if not _PHONE.match(text):
        msg = (
            f"phone {value!r} is not a mainland mobile number (11 digits, 1[3-9]...) or a "
            "landline with area code (0818-2345678)"
        )
        raise rule_error("phone", msg)  # the value itself is personal data: not echoed
    return text


def _check_village(conn: Connection, code: object) -> sa.RowMapping:
    row = conn.execute(sa.text(_sql.VILLAGE), {"code": code}).mappings().first()
    if row is None:
        msg = f"village_code {code!r} not found; GET /api/v1/towns/{{code}}/villages lists them"
        raise NotFoundError(msg, problems=[{"field": "village_code", "value": code}])
    return row


def check_current_grid(conn: Connection, code: object) -> sa.RowMapping:
    """Return the current version of grid ``code``; 404 naming ``grid_code`` (or retired)."""
    row = conn.execute(sa.text(_sql.CURRENT_GRID), {"code": code}).mappings().first()
    if row is None:
        retired = conn.execute(sa.text(_sql.ANY_GRID_VERSION), {"code": code}).scalar()
        why = f"was retired on {retired.date().isoformat()}" if retired is not None else "not found"
        msg = f"grid_code {code!r} {why}: give a current grid (GET /api/v1/grids)"
        raise NotFoundError(msg, problems=[{"field": "grid_code", "value": code}])
    return row


def _check_home(conn: Connection, home: object, village: str) -> tuple[float, float]:
    if not isinstance(home, Mapping) or "lon" not in home or "lat" not in home:
        msg = "home must be {lon, lat, datum}"
        raise rule_error("home", msg)
    lon, lat = float(home["lon"]), float(home["lat"])
    datum = parse_datum(home.get("datum") or Datum.CGCS2000)
    minx, miny, maxx, maxy = CHINA_BOUNDS
    if not (math.isfinite(lon) and math.isfinite(lat)):
        msg = f"home lon/lat must be finite numbers, got ({lon}, {lat})"
        raise CoordinateError(msg, problems=[{"field": "home", "reason": msg}])
    if not (minx <= lon <= maxx and miny <= lat <= maxy):
        swapped = minx <= lat <= maxx and miny <= lon <= maxy
        hint = " Longitude and latitude look swapped." if swapped else ""
        msg = f"home ({lon}, {lat}) is outside China ({minx}-{maxx} E, {miny}-{maxy} N).{hint}"
        raise CoordinateError(msg, problems=[{"field": "home", "lon": lon, "lat": lat}])
    xs, ys = convert_lonlat([lon], [lat], source=datum)
    x, y = float(xs[0]), float(ys[0])
    params = {"lon": x, "lat": y, "village": village, "reach": HOME_REACH_M}
    near = conn.execute(sa.text(_sql.HOME_NEAR_TOWN), params).mappings().first()
    if near is not None and not near["near"]:
        msg = (
            f"home lon={x:.6f}, lat={y:.6f} (CGCS2000) is more than {HOME_REACH_M / 1000:g} km "
            f"from town {near['code']} ({near['name']}) of village {village}: a member lives in "
            "or near their grid (就地就近); check the coordinates and their datum"
        )
        raise CoordinateError(msg, problems=[{"field": "home", "lon": x, "lat": y}])
    return x, y


def _checked(
    conn: Connection, fields: Mapping[str, Any], current: Mapping[str, Any], today: dt.date
) -> dict[str, Any]:
    """Check the given fields (merged over ``current``) and return the column values to set."""
    unknown = sorted(set(fields) - set(EDITABLE_FIELDS) - {"code"})
    if unknown:
        msg = f"unknown field(s) {unknown}; the fields are {', '.join(EDITABLE_FIELDS)}"
        raise rule_error(unknown[0], msg)
    for field in _REQUIRED:
        if field in fields and fields[field] is None:
            raise rule_error(field, f"{field} is required and cannot be emptied")
    merged = {**current, **fields}
    if merged.get("village_code") is None and merged.get("grid_code"):
        # Members loaded before the recommending village was recorded (the sample): the
        # village is the one of their grid (grid code = village code + 3 digits).
        merged["village_code"] = str(merged["grid_code"])[:12]
    for field in _REQUIRED:
        if merged.get(field) is None and (field in fields or not current):
            raise rule_error(field, f"{field} is required")
    out = _checked_values(fields, today)
    village = merged["village_code"]
    if {"village_code", "grid_code"} & set(fields):
        _check_village(conn, village)
        grid = check_current_grid(conn, merged["grid_code"])
        if grid["village_code"] != village:
            msg = (
                f"grid_code {grid['code']} belongs to village {grid['village_code']}, not to "
                f"village_code {village}: a candidate is recommended by the village of the "
                "grid they apply for"
            )
            raise rule_error("grid_code", msg, grid["code"])
        out["village_code"], out["grid_code"] = village, grid["code"]
    if "home" in fields:
        out["home"] = None if fields["home"] is None else _check_home(conn, fields["home"], village)
    return out


def _checked_values(fields: Mapping[str, Any], today: dt.date) -> dict[str, Any]:
    """Check the fields that need no database: texts, dates, phone, flags."""
    out: dict[str, Any] = {}
    if "name" in fields:
        out["name"] = _check_text("name", fields["name"], max_len=50)
    if "education" in fields:
        # An unknown education is stored and reported as a problem, not refused.
        out["education"] = _check_text("education", fields["education"], max_len=30)
    if "gender" in fields:
        gender = fields["gender"]
        if gender is not None and str(gender) not in {g.value for g in Gender}:
            raise rule_error("gender", f"gender {gender!r} unknown; use male or female")
        out["gender"] = None if gender is None else str(gender)
    if "birth_date" in fields:
        out["birth_date"] = _check_birth_date(fields["birth_date"], today)
    if "applied_on" in fields and fields["applied_on"] is not None:
        applied = _check_date("applied_on", fields["applied_on"])
        if applied > today:
            raise rule_error("applied_on", f"applied_on {applied} is in the future", applied)
        out["applied_on"] = applied
    if "phone" in fields:
        out["phone"] = _check_phone(fields["phone"])
    return out | _checked_flags(fields)


def _checked_flags(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Check the preference flags (true/false) and exclusion flags (true/false/null)."""
    out: dict[str, Any] = {}
    for flag in ("party_member", "veteran", "unemployed_graduate", *EXCLUSION_FLAGS):
        if flag in fields:
            value = fields[flag]
            required = flag not in EXCLUSION_FLAGS
            if not isinstance(value, bool) and (required or value is not None):
                allowed = "true or false" + ("" if required else " (null: not yet vetted)")
                raise rule_error(flag, f"{flag} must be {allowed}, got {value!r}")
            out[flag] = value
    return out


def _assignments(values: Mapping[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """Return SQL ``column = value`` pieces (geometry and enum cast) and their parameters."""
    pieces, params = [], {}
    for column, value in values.items():
        if column == "home":
            if value is None:
                pieces.append("home = NULL")
            else:
                pieces.append("home = ST_SetSRID(ST_MakePoint(:home_lon, :home_lat), 4490)")
                params["home_lon"], params["home_lat"] = value
        elif column == "gender":
            pieces.append("gender = CAST(:gender AS gender)")
            params["gender"] = value
        else:
            pieces.append(f"{column} = :{column}")
            params[column] = value
    return pieces, params


def create_member(
    conn: Connection, fields: Mapping[str, Any], *, actor: str, today: dt.date | None = None
) -> MemberDetail:
    """Register a candidate (status ``applied``) and record the application in its history.

    Parameters
    ----------
    conn
        A connection in a read-write transaction.
    fields
        ``code``, ``name``, ``birth_date`` (date), ``education``, ``village_code``,
        ``grid_code`` (a current grid of that village) are required; optional ``gender``,
        ``phone``, ``home`` (``{"lon", "lat", "datum"}``), the preference flags, the
        exclusion flags (``None`` = not yet vetted) and ``applied_on`` (default today).
    actor
        Who registers the candidate (recorded in the history).
    today
        The day of the registration (default today in China).

    Returns
    -------
    MemberDetail
        With the article-6 ``problems``: an ineligible candidate may be registered, not
        appointed.

    Raises
    ------
    DuplicateCodeError
        The code is taken.
    NotFoundError
        Unknown village, or a grid that does not exist or is retired.
    RuleError, CoordinateError
        A field that is malformed or implausible; ``problems`` names it.
    """
    day = today or today_in_china()
    code = fields.get("code")
    if not isinstance(code, str) or not _CODE.match(code):
        msg = f"code must be 1-64 letters, digits, '-' or '_', got {code!r}"
        raise rule_error("code", msg)
    taken = conn.execute(sa.text("SELECT status::text FROM members WHERE code = :c"), {"c": code})
    status = taken.scalar()
    if status is not None:
        msg = f"member code {code!r} is taken (a member with status {status}); choose another"
        raise DuplicateCodeError(msg, problems=[{"field": "code", "value": code}])
    values = _checked(conn, {k: v for k, v in fields.items() if k != "code"}, {}, day)
    values.setdefault("applied_on", day)
    pieces, params = _assignments(values)
    columns = [piece.split(" = ", 1)[0] for piece in pieces]
    exprs = [piece.split(" = ", 1)[1] for piece in pieces]
    sql = (
        f"INSERT INTO members (code, status, {', '.join(columns)}) "
        f"VALUES (:code, 'applied', {', '.join(exprs)}) RETURNING id"
    )
    member_id = conn.execute(sa.text(sql), {**params, "code": code}).scalar_one()
    conn.execute(
        sa.text(_sql.RECORD_CHANGE),
        {"member_id": member_id, "from_status": None, "to_status": "applied", "actor": actor,
         "note": "application registered (个人申请)"},
    )  # fmt: skip
    return get_member_detail(conn, code, on=day)


def update_member(
    conn: Connection, code: str, changes: Mapping[str, Any], *, today: dt.date | None = None
) -> MemberDetail:
    """Change a member's registry fields (not the status: see :func:`transition_member`).

    Parameters
    ----------
    conn
        A connection in a read-write transaction.
    code
        The member.
    changes
        Fields to set (as :func:`create_member`); ``None`` empties an optional field (an
        exclusion flag back to "not yet vetted").
    today
        Default today in China.

    Returns
    -------
    MemberDetail

    Raises
    ------
    NotFoundError, RuleError, CoordinateError
        As :func:`create_member`.
    ConflictError
        Moving an appointed member to another grid (dismiss and appoint instead).
    """
    day = today or today_in_china()
    require_member_id(conn, code, lock=True)
    current = member_row(conn, code)
    if "code" in changes and changes["code"] != code:
        raise rule_error("code", f"a member's code cannot change ({code!r})", changes["code"])
    fields = {k: v for k, v in changes.items() if k != "code"}
    moved = "grid_code" in fields and fields["grid_code"] != current["grid_code"]
    if moved and current["status"] == MemberStatus.APPOINTED:
        msg = (
            f"member {code} is appointed to grid {current['grid_code']}: to serve another grid, "
            "dismiss them (POST .../transitions) and register the new appointment"
        )
        raise ConflictError(msg, problems=[{"field": "grid_code", "status": current["status"]}])
    values = _checked(conn, fields, dict(current), day)
    if values:
        pieces, params = _assignments(values)
        sql = f"UPDATE members SET {', '.join(pieces)} WHERE code = :code"
        conn.execute(sa.text(sql), {**params, "code": code})
    return get_member_detail(conn, code, on=day)
