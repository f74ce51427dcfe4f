"""The registries: grid members, households and residents, with personal data masked.

Article 8 asks members to register every household and person (家家有登记、户户情况清、人人去向明)
and article 9 forbids leaking them: every name, ID number, phone and address read here goes
through :mod:`gis_grid.privacy` before it is returned, whoever the caller. Dates of birth are
not returned (the ID number's middle hides them too); ages are.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis_grid.errors import NotFoundError
from gis_grid.privacy import mask_address, mask_id_number, mask_name, mask_phone
from gis_grid.queries._sql import (
    BBox,
    FeaturePage,
    FeatureSource,
    Page,
    Where,
    feature_page,
    features,
    one_record,
    record_page,
)

__all__ = [
    "HOUSEHOLDS",
    "MemberRecord",
    "ResidentRecord",
    "get_household",
    "get_member",
    "household_page",
    "member_page",
    "require_household",
    "resident_page",
]

_AGE = "date_part('year', age(current_date, {col}))::int"


# --- members --------------------------------------------------------------------------------


@dataclass(frozen=True)
class MemberRecord:
    """A grid member (网格员) or candidate; the phone is masked.

    ``lives_in_grid`` says whether the member's home lies in the current version of the
    grid (article 5, 就地就近); the home itself is not returned.
    """

    code: str
    name: str
    gender: str | None
    age: int | None
    education: str | None
    party_member: bool
    phone: str | None
    status: str
    grid_code: str | None
    grid: str | None
    village_code: str | None
    village: str | None
    lives_in_grid: bool | None


_MEMBERS_FROM = """
FROM members t
LEFT JOIN grids g ON g.code = t.grid_code AND g.valid_to IS NULL
LEFT JOIN villages v ON v.code = left(t.grid_code, 12)
"""

_MEMBERS_SQL = f"""
SELECT t.code, t.name, t.gender::text AS gender, {_AGE.format(col="t.birth_date")} AS age,
       t.education, t.party_member, t.phone, t.status::text AS status,
       t.grid_code, g.name AS grid, v.code AS village_code, v.name AS village,
       CASE WHEN t.home IS NULL OR g.geom IS NULL THEN NULL
            ELSE ST_Covers(g.geom, t.home) END AS lives_in_grid
{_MEMBERS_FROM}
WHERE {{where}}
ORDER BY t.code
LIMIT :limit OFFSET :offset
"""


def _member(row: Any) -> MemberRecord:
    return MemberRecord(
        code=row["code"],
        name=row["name"],
        gender=row["gender"],
        age=row["age"],
        education=row["education"],
        party_member=bool(row["party_member"]),
        phone=mask_phone(row["phone"]),
        status=row["status"],
        grid_code=row["grid_code"],
        grid=row["grid"],
        village_code=row["village_code"],
        village=row["village"],
        lives_in_grid=row["lives_in_grid"],
    )


def member_page(
    conn: Connection,
    *,
    town: str | None = None,
    village: str | None = None,
    grid: str | None = None,
    status: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> Page[MemberRecord]:
    """One page of grid members (and candidates), by member code; phones masked.

    Parameters
    ----------
    conn
        Connection to the platform database.
    town, village, grid
        Only members of grids in this town / village, or of this grid.
    status
        Only members at this step of the selection workflow (``"appointed"`` ...).
    limit, offset
        Paging.

    Returns
    -------
    Page of MemberRecord
    """
    # Members carry only a grid code; its first 12 (9) digits are the village (town) code.
    where = (
        Where()
        .given("left(t.grid_code, 9) = :town", town=town)
        .given("left(t.grid_code, 12) = :village", village=village)
        .given("t.grid_code = :grid", grid=grid)
        .given("t.status::text = :status", status=status)
    )
    return record_page(
        conn, _MEMBERS_SQL, _MEMBERS_FROM, where, _member, limit=limit, offset=offset
    )


def get_member(conn: Connection, code: str) -> MemberRecord:
    """One member by code; phone masked.

    Raises
    ------
    NotFoundError
        If there is no such member; the message names the code.
    """
    return one_record(
        conn,
        _MEMBERS_SQL,
        _member,
        code=code,
        missing=f"member {code!r} not found; GET /api/v1/members lists the members",
    )


# --- households -------------------------------------------------------------------------------

#: Households as map points: code, place and size only (no address, no residents).
HOUSEHOLDS = FeatureSource(
    name="households",
    from_sql="households t JOIN villages v ON v.code = t.village_code",
    properties=(
        ("code", "t.code"),
        ("village_code", "t.village_code"),
        ("village", "v.name"),
        ("grid_code", "t.grid_code"),
        ("people", "t.people"),
        ("synthetic", "t.synthetic"),
    ),
    id_sql="t.code",
    order_sql="t.code",
)


def household_page(
    conn: Connection,
    *,
    town: str | None = None,
    village: str | None = None,
    grid: str | None = None,
    bbox: BBox | None = None,
    limit: int = 100,
    offset: int = 0,
) -> FeaturePage:
    """One page of households (GeoJSON points, no personal data), by household code.

    Parameters
    ----------
    conn
        Connection to the platform database.
    town, village, grid
        Only households of this town, village or grid.
    bbox
        Only households inside this box.
    limit, offset
        Paging.

    Returns
    -------
    FeaturePage
    """
    where = Where().places(town=town, village=village, grid=grid).bbox(bbox)
    return feature_page(conn, HOUSEHOLDS, where, limit=limit, offset=offset)


def require_household(conn: Connection, code: str) -> str:
    """Return ``code`` if the household exists, else raise naming it."""
    if conn.scalar(sa.text("SELECT 1 FROM households WHERE code = :code"), {"code": code}):
        return code
    msg = f"household {code!r} not found; GET /api/v1/households lists the households"
    raise NotFoundError(msg)


def get_household(conn: Connection, code: str) -> dict[str, Any]:
    """One household as a GeoJSON feature with its masked address and residents.

    Returns
    -------
    dict
        A feature whose properties add ``address`` (door number hidden) and ``residents``
        (the :class:`ResidentRecord` fields, masked).

    Raises
    ------
    NotFoundError
        If there is no such household; the message names the code.
    """
    source = HOUSEHOLDS.with_properties(("address", "t.address"))
    found = features(conn, source, Where().add("t.code = :code", code=code))
    if not found:
        require_household(conn, code)  # raises the 404 naming the code
        msg = f"household {code!r} not found"
        raise NotFoundError(msg)
    feature = found[0]
    props = feature["properties"]
    props["address"] = mask_address(props["address"])
    residents = resident_page(conn, household=code, limit=10_000).items
    props["residents"] = [asdict(r) for r in residents]
    return feature


# --- residents --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResidentRecord:
    """A registered person; name, ID number and phone masked, age instead of birth date."""

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


_RESIDENTS_FROM = "FROM residents r JOIN households t ON t.id = r.household_id"

_RESIDENTS_SQL = f"""
SELECT r.id, t.code AS household_code, t.village_code, t.grid_code, r.name,
       r.id_number_masked AS id_number, r.phone_masked AS phone, r.gender::text AS gender,
       {_AGE.format(col="r.birth_date")} AS age,
       r.relation, r.whereabouts
{_RESIDENTS_FROM}
WHERE {{where}}
ORDER BY r.id
LIMIT :limit OFFSET :offset
"""


def _resident(row: Any) -> ResidentRecord:
    return ResidentRecord(
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
    )


def resident_page(
    conn: Connection,
    *,
    town: str | None = None,
    village: str | None = None,
    grid: str | None = None,
    household: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> Page[ResidentRecord]:
    """One page of residents, by resident id; names, ID numbers and phones masked.

    Parameters
    ----------
    conn
        Connection to the platform database.
    town, village, grid
        Only residents of households in this town, village or grid.
    household
        Only the residents of this household (its code).
    limit, offset
        Paging.

    Returns
    -------
    Page of ResidentRecord
    """
    where = Where().places(town=town, village=village, grid=grid)
    where.given("t.code = :household", household=household)
    return record_page(
        conn, _RESIDENTS_SQL, _RESIDENTS_FROM, where, _resident, limit=limit, offset=offset
    )
