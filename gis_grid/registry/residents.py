"""Residents (人) registered in a household: personal data checked, stored, returned masked.

Article 8: 人人去向明 (everybody's whereabouts known), and the categories the rules name:
``incoming`` (流入人员, incoming people), ``returnee`` (重点地区返乡人员, returnees from key
areas), ``in_need`` (生活困难人员, people in need). Article 9: what is stored is never echoed:
every answer masks the name, ID number and phone (:mod:`gis_grid.privacy`), and so do the error
messages (a duplicate ID number is named masked).

**ID numbers** (GB 11643): 18 characters, the ISO 7064 MOD 11-2 check character, and the
embedded birth date a real date between 1880 and today (:func:`gis_grid.codes.id_number_problems`).
A lower-case ``x`` is read as ``X``. A birth date or gender given with the number must agree
with it (the 17th character is odd for men); when left out they are taken from the number.

**Household size.** Registering a resident keeps ``people >= residents`` (see
:mod:`gis_grid.registry.households`): ``people`` grows only when everybody declared was
already registered; removing a resident lowers ``people`` by one.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis_grid.codes import id_number_problems
from gis_grid.errors import ConflictError, DuplicateCodeError, NotFoundError, RuleError
from gis_grid.privacy import mask_id_number, mask_name, mask_phone
from gis_grid.registry._common import changed, refusing_duplicates, source_of
from gis_grid.registry.households import HouseholdCount
from gis_grid.security.crypto import FIELDS, decrypt, default_keys, lookup_hash, seal

__all__ = [
    "CATEGORIES",
    "GENDERS",
    "HEAD",
    "PHONE_PATTERN",
    "RELATIONS",
    "RESIDENT_FIELDS",
    "ResidentDeleted",
    "ResidentSaved",
    "ResidentView",
    "add_resident",
    "delete_resident",
    "id_number_facts",
    "resident_problems",
    "update_resident",
]

#: The categories article 8 names: incoming people, returnees from key areas, people in need.
CATEGORIES = ("incoming", "returnee", "in_need")
GENDERS = ("male", "female")
#: Relation to the head of the household (户主), as registered (GB/T 4761 groups).
RELATIONS = ("户主", "配偶", "子女", "父母", "孙子女", "祖父母", "兄弟姐妹", "其他亲属", "非亲属")
#: The head of the household: one per household.
HEAD = "户主"
#: Mainland mobile (optionally +86) or landline with area code.
PHONE_PATTERN = r"^(?:(?:\+86[- ]?)?1[3-9][0-9]{9}|0[0-9]{2,3}-?[0-9]{7,8})$"
_PHONE_RE = re.compile(PHONE_PATTERN)
#: Fields a resident has (all may be changed by a PATCH).
RESIDENT_FIELDS = (
    "name", "id_number", "phone", "gender", "birth_date", "relation", "whereabouts", "categories",
)  # fmt: skip
_MAX_TEXT = {"name": 50, "whereabouts": 100}


@dataclass(frozen=True)
class ResidentView:
    """A resident as answered: name, ID number and phone masked; age, not the birth date."""

    id: int
    household_code: str
    village_code: str
    grid_code: str | None
    name: str
    id_number: str | None
    phone: str | None
    gender: str | None
    age: int | None
    relation: str | None
    whereabouts: str | None
    categories: list[str]


@dataclass(frozen=True)
class ResidentSaved:
    """A resident written, and the household's size and registered residents after it."""

    resident: ResidentView
    household: HouseholdCount


@dataclass(frozen=True)
class ResidentDeleted:
    """A resident removed (id) and the household's counts after it."""

    id: int
    household: HouseholdCount


def id_number_facts(id_number: str) -> tuple[dt.date, str]:
    """Birth date and gender in a (valid) 18-character ID number.

    Examples
    --------
    >>> id_number_facts("11010519491231002X")
    (datetime.date(1949, 12, 31), 'female')
    """
    born = dt.date(int(id_number[6:10]), int(id_number[10:12]), int(id_number[12:14]))
    return born, "male" if int(id_number[16]) % 2 else "female"


def _problem(field: str, rule: str, message: str, **details: object) -> dict[str, object]:
    return {"field": field, "rule": rule, "message": message, **details}


def _text_problems(values: Mapping[str, Any]) -> list[dict[str, object]]:
    problems = []
    for field, limit in _MAX_TEXT.items():
        value = values.get(field)
        if value is None and field == "whereabouts":
            continue
        if not isinstance(value, str) or not value.strip() or len(value) > limit:
            problems.append(
                _problem(field, "text", f"{field} must be 1-{limit} characters of text")
            )
    return problems


def _id_problems(values: Mapping[str, Any]) -> list[dict[str, object]]:
    number = values.get("id_number")
    if number is None:
        # The schema's CHECK refuses a missing number (article 8: everybody registered).
        return [_problem("id_number", "required", "id_number is required")]
    masked = mask_id_number(str(number))
    why = id_number_problems([number])[0] if isinstance(number, str) else "not text"
    if why is not None:
        return [
            _problem(
                "id_number",
                "gb11643",
                f"ID number {masked} is not a valid GB 11643 number: {why}",
                value=masked,
            )
        ]
    born, gender = id_number_facts(number)
    problems = []
    if values.get("birth_date") is not None and values["birth_date"] != born:
        problems.append(
            _problem(
                "birth_date",
                "matches_id_number",
                f"birth_date {values['birth_date']} differs from the birth date in the ID "
                f"number ({born})",
            )
        )
    if values.get("gender") is not None and values["gender"] != gender:
        problems.append(
            _problem(
                "gender",
                "matches_id_number",
                f"gender {values['gender']!r} differs from the ID number's 17th digit "
                f"({'odd: male' if gender == 'male' else 'even: female'})",
            )
        )
    return problems


def resident_problems(values: Mapping[str, Any]) -> list[dict[str, object]]:
    """Every problem of a resident's fields (empty when they are all right).

    Parameters
    ----------
    values
        ``name``, ``id_number`` (both required), ``phone``, ``gender``, ``birth_date`` (a date),
        ``relation``, ``whereabouts``, ``categories`` (missing = ``None``).

    Returns
    -------
    list of dict
        One ``{"field", "rule", "message"}`` per problem; personal values appear masked.

    Examples
    --------
    >>> [p["field"] for p in resident_problems({"name": "张三", "id_number": "11010519491231002X",
    ...     "gender": "male", "categories": ["vip"]})]
    ['gender', 'categories']
    """
    problems = _text_problems(values) + _id_problems(values)
    phone = values.get("phone")
    if phone is not None and (not isinstance(phone, str) or not _PHONE_RE.fullmatch(phone)):
        problems.append(
            _problem(
                "phone",
                "phone_format",
                f"phone {mask_phone(str(phone))} is neither a mobile number (11 digits from "
                "13-19, optionally +86) nor a landline with area code (0xx-xxxxxxxx)",
            )
        )
    if values.get("gender") is not None and values["gender"] not in GENDERS:
        problems.append(_problem("gender", "enum", f"gender must be one of {', '.join(GENDERS)}"))
    born = values.get("birth_date")
    if born is not None and (
        not isinstance(born, dt.date) or born > dt.date.today() or born.year < 1880
    ):
        problems.append(
            _problem("birth_date", "real_date", f"birth_date {born} is not between 1880 and today")
        )
    relation = values.get("relation")
    if relation is not None and relation not in RELATIONS:
        problems.append(
            _problem("relation", "enum", f"relation must be one of {', '.join(RELATIONS)}")
        )
    categories = values.get("categories") or []
    unknown = [c for c in categories if c not in CATEGORIES]
    if unknown:
        problems.append(
            _problem(
                "categories",
                "enum",
                f"unknown categories {unknown}; allowed: {', '.join(CATEGORIES)}",
            )
        )
    return problems


def _refuse(problems: list[dict[str, object]]) -> None:
    if problems:
        fields = ", ".join(dict.fromkeys(str(p["field"]) for p in problems))
        detail = "; ".join(str(p["message"]) for p in problems)
        msg = f"resident refused ({fields}): {detail}. Nothing was stored."
        raise RuleError(msg, problems)


def _complete(values: dict[str, Any]) -> dict[str, Any]:
    """Fill birth date and gender from a valid ID number; sort and de-duplicate categories."""
    number = values.get("id_number")
    if isinstance(number, str):
        born, gender = id_number_facts(number)
        values.setdefault("birth_date", born)
        values["birth_date"] = values["birth_date"] or born
        values["gender"] = values.get("gender") or gender
    values["categories"] = sorted(set(values.get("categories") or []), key=CATEGORIES.index)
    return values


def _normalise(values: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(values)
    for field in ("name", "whereabouts", "phone"):
        if isinstance(out.get(field), str):
            out[field] = out[field].strip()
    if isinstance(out.get("id_number"), str):
        out["id_number"] = out["id_number"].strip().upper()
    return out


def _duplicate(number: str, constraint: str | None = None) -> DuplicateCodeError:
    del constraint
    masked = mask_id_number(number)
    msg = (
        f"id_number: a resident with ID number {masked} is already registered; a person is "
        "registered once (move or correct the existing record)"
    )
    return DuplicateCodeError(msg, [{"field": "id_number", "rule": "unique", "value": masked}])


def _check_unique(conn: Connection, number: str | None, resident_id: int | None) -> None:
    if number is None:
        return
    found = conn.scalar(
        sa.text("SELECT id FROM residents WHERE id_number_hash = :n AND id IS DISTINCT FROM :rid"),
        {"n": lookup_hash(number, default_keys(), "id_number"), "rid": resident_id},
    )
    if found is not None:
        raise _duplicate(number)


def _check_head(
    conn: Connection, household_id: int, relation: str | None, resident_id: int | None
) -> None:
    if relation != HEAD:
        return
    found = conn.scalar(
        sa.text(
            "SELECT id FROM residents WHERE household_id = :h AND relation = :head "
            "AND id IS DISTINCT FROM :rid"
        ),
        {"h": household_id, "head": HEAD, "rid": resident_id},
    )
    if found is not None:
        msg = (
            f"relation: the household already has a head (户主, resident {found}); change "
            "that resident's relation first"
        )
        raise ConflictError(msg, [{"field": "relation", "rule": "one_head", "resident": found}])


def _household(conn: Connection, code: str) -> Any:
    row = (
        conn.execute(
            sa.text("SELECT id, code, people FROM households WHERE code = :code FOR UPDATE"),
            {"code": code},
        )
        .mappings()
        .first()
    )
    if row is None:
        msg = f"household {code!r} not found; GET /api/v1/households lists the households"
        raise NotFoundError(msg)
    return row


def _resident(conn: Connection, resident_id: int) -> Any:
    row = (
        conn.execute(
            sa.text(
                "SELECT r.*, r.gender::text AS gender_text, h.code AS household_code "
                "FROM residents r JOIN households h ON h.id = r.household_id "
                "WHERE r.id = :id FOR UPDATE OF r, h"
            ),
            {"id": resident_id},
        )
        .mappings()
        .first()
    )
    if row is None:
        msg = f"resident {resident_id} not found; GET /api/v1/residents lists the residents"
        raise NotFoundError(msg)
    keys = default_keys()
    out = dict(row)
    for field in FIELDS:
        blob = out.pop(f"{field}_enc")
        out[field] = None if blob is None else decrypt(blob, keys, field)
    return out


def _settle_people(conn: Connection, household_id: int, *, removed: bool) -> HouseholdCount:
    """Keep ``people >= residents`` after a resident was added or removed."""
    change = "people - 1" if removed else "people"
    row = conn.execute(
        sa.text(
            "WITH n AS (SELECT count(*)::int AS residents FROM residents WHERE household_id = :h) "
            f"UPDATE households SET people = greatest({change}, n.residents) FROM n "
            "WHERE id = :h RETURNING code, people, n.residents"
        ),
        {"h": household_id},
    ).one()
    return HouseholdCount(code=row.code, people=int(row.people), residents=int(row.residents))


_VIEW_SQL = """
SELECT r.id, h.code AS household_code, h.village_code, h.grid_code, r.name,
       r.id_number_masked AS id_number, r.phone_masked AS phone, r.gender::text AS gender,
       date_part('year', age(current_date, r.birth_date))::int AS age,
       r.relation, r.whereabouts, r.categories
FROM residents r JOIN households h ON h.id = r.household_id
WHERE r.id = :id
"""


def _view(conn: Connection, resident_id: int) -> ResidentView:
    row = conn.execute(sa.text(_VIEW_SQL), {"id": resident_id}).mappings().one()
    return ResidentView(
        id=int(row["id"]),
        household_code=row["household_code"],
        village_code=row["village_code"],
        grid_code=row["grid_code"],
        name=mask_name(row["name"]),
        id_number=mask_id_number(row["id_number"]),
        phone=mask_phone(row["phone"]),
        gender=row["gender"],
        age=row["age"],
        relation=row["relation"],
        whereabouts=row["whereabouts"],
        categories=list(row["categories"] or []),
    )


_COLUMNS = (
    "name", "id_number_enc", "id_number_hash", "id_number_masked", "phone_enc", "phone_hash",
    "phone_masked", "gender", "birth_date", "relation", "whereabouts", "categories",
)  # fmt: skip


def _sealed(data: Mapping[str, Any]) -> dict[str, Any]:
    """Return the row to store: ID number and phone encrypted, hashed and masked."""
    out = {k: v for k, v in data.items() if k not in FIELDS}
    keys = default_keys()
    for field in FIELDS:
        sealed = seal(data.get(field), keys, field)
        out[f"{field}_enc"] = None if sealed is None else sealed.enc
        out[f"{field}_hash"] = None if sealed is None else sealed.hash
        out[f"{field}_masked"] = None if sealed is None else sealed.masked
    return out


def add_resident(
    conn: Connection, household_code: str, values: Mapping[str, Any], *, actor: str
) -> ResidentSaved:
    """Register a person in a household.

    Parameters
    ----------
    conn
        Connection in the caller's read-write transaction.
    household_code
        The household.
    values
        ``name`` and ``id_number`` (required), ``phone``, ``gender``, ``birth_date``,
        ``relation``, ``whereabouts``, ``categories``.
    actor
        Who registers the person (stored as the row's ``source``).

    Returns
    -------
    ResidentSaved
        The resident, masked, and the household's counts.

    Raises
    ------
    NotFoundError
        No such household.
    RuleError
        Every field problem at once (``problems`` names each field).
    DuplicateCodeError
        The ID number is registered already (named masked).
    ConflictError
        A second head of household (户主).
    """
    changed(values, RESIDENT_FIELDS, "resident")
    data = _normalise({field: values.get(field) for field in RESIDENT_FIELDS})
    _refuse(resident_problems(data))
    data = _complete(data)
    household = _household(conn, household_code)
    _check_unique(conn, data["id_number"], None)
    _check_head(conn, household["id"], data["relation"], None)
    columns = ", ".join(_COLUMNS)
    params = ", ".join(f":{c}" for c in _COLUMNS)
    with refusing_duplicates(conn, lambda c: _duplicate(str(data["id_number"]), c)):
        new_id = conn.scalar(
            sa.text(
                f"INSERT INTO residents (household_id, {columns}, synthetic, source) "
                f"VALUES (:household_id, {params}, false, :source) RETURNING id"
            ),
            {**_sealed(data), "household_id": household["id"], "source": source_of(actor)},
        )
    counts = _settle_people(conn, household["id"], removed=False)
    return ResidentSaved(resident=_view(conn, int(new_id)), household=counts)


def update_resident(
    conn: Connection, resident_id: int, changes: Mapping[str, Any], *, actor: str
) -> ResidentSaved:
    """Change a resident's fields; the whole record is checked again.

    A new ID number brings its birth date and gender unless they are changed too.

    Raises
    ------
    NotFoundError, RuleError, DuplicateCodeError, ConflictError
        As :func:`add_resident`.
    """
    del actor
    changed(changes, RESIDENT_FIELDS, "resident")
    row = _resident(conn, resident_id)
    current = {field: row[field] for field in RESIDENT_FIELDS if field != "gender"}
    current["gender"] = row["gender_text"]
    updates = _normalise(changes)
    if "id_number" in updates and updates["id_number"] != current["id_number"]:
        # The birth date and gender stored came with the old number.
        for field in ("birth_date", "gender"):
            if field not in updates:
                current[field] = None
    data = {**current, **updates}
    _refuse(resident_problems(data))
    data = _complete(data)
    _check_unique(conn, data["id_number"], resident_id)
    _check_head(conn, row["household_id"], data["relation"], resident_id)
    assignments = ", ".join(f"{c} = :{c}" for c in _COLUMNS)
    with refusing_duplicates(conn, lambda c: _duplicate(str(data["id_number"]), c)):
        conn.execute(
            sa.text(f"UPDATE residents SET {assignments} WHERE id = :id"),
            {**_sealed(data), "id": resident_id},
        )
    counts = _settle_people(conn, row["household_id"], removed=False)
    return ResidentSaved(resident=_view(conn, resident_id), household=counts)


def delete_resident(conn: Connection, resident_id: int, *, actor: str) -> ResidentDeleted:
    """Remove a resident; the household's ``people`` goes down by one.

    Raises
    ------
    NotFoundError
        No such resident.
    """
    del actor
    row = _resident(conn, resident_id)
    conn.execute(sa.text("DELETE FROM residents WHERE id = :id"), {"id": resident_id})
    counts = _settle_people(conn, row["household_id"], removed=True)
    return ResidentDeleted(id=resident_id, household=counts)
