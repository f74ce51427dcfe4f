"""Households (户) written through the service: register, change, move, remove.

Article 8 asks members to register every household and person (家家有登记、户户情况清). A household
is a point with a code, its number of people and an address; its village and grid follow from
the point (:mod:`gis_grid.registry.location`: the database trigger assigns the grid; a point in
a gap of the grid plan is stored and reported with the nearest grid; a point outside every
village is refused).

**people and residents.** ``people`` is the household's size as declared; residents are the
people registered with their personal data (:mod:`gis_grid.registry.residents`). The sample
loader sets ``people`` to the number of registered residents (equal in all 14,114 sample
households), and the writes keep the rule ``people >= residents``: registering a resident
raises ``people`` when everybody declared is already registered, removing one lowers it by one,
and ``people`` cannot be set below the residents registered. ``unregistered`` (people not yet
registered) is reported with every household written.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis_grid.crs import Datum
from gis_grid.errors import ConflictError, DuplicateCodeError, NotFoundError
from gis_grid.privacy import mask_address
from gis_grid.registry._common import (
    changed,
    check_code,
    fail,
    refusing_duplicates,
    source_of,
)
from gis_grid.registry.location import Placement, place_point, point_sql, to_cgcs2000

__all__ = [
    "HOUSEHOLD_FIELDS",
    "MAX_PEOPLE",
    "HouseholdCount",
    "HouseholdDeleted",
    "HouseholdSaved",
    "create_household",
    "delete_household",
    "household_count",
    "update_household",
]

#: Largest household size accepted (a typo guard; the sample's largest is 7).
MAX_PEOPLE = 99
#: Fields a PATCH may change (``location`` = ``lon``/``lat``/``datum`` together).
HOUSEHOLD_FIELDS = ("people", "address", "location")


@dataclass(frozen=True)
class HouseholdCount:
    """A household's declared size and its registered residents."""

    code: str
    people: int
    residents: int

    @property
    def unregistered(self) -> int:
        """People declared but not registered as residents."""
        return self.people - self.residents


@dataclass(frozen=True)
class HouseholdSaved:
    """A household as written: place, size and residents; the address masked.

    ``placement`` says where the point lies (grid, or nearest grid and distance in a gap);
    ``previous_grid_code`` is the grid before a move (``None`` when created or not moved).
    """

    code: str
    people: int
    residents: int
    address: str | None
    placement: Placement
    previous_grid_code: str | None = None
    moved: bool = False

    @property
    def unregistered(self) -> int:
        """People declared but not registered as residents."""
        return self.people - self.residents


@dataclass(frozen=True)
class HouseholdDeleted:
    """What removing a household removed."""

    code: str
    residents_deleted: int


def _check_people(people: Any) -> int:
    if isinstance(people, bool) or not isinstance(people, int) or not 0 <= people <= MAX_PEOPLE:
        msg = f"people must be a whole number 0-{MAX_PEOPLE}, got {people!r}"
        raise fail(msg, "people", "people_range", value=str(people))
    return people


def _check_address(address: Any) -> str | None:
    if address is None:
        return None
    if not isinstance(address, str) or not address.strip() or len(address) > 200:
        raise fail("address must be 1-200 characters of text, or null", "address", "address")
    return address.strip()


def _locked(conn: Connection, code: str) -> Any:
    row = (
        conn.execute(
            sa.text(
                "SELECT h.id, h.code, h.people, h.address, h.grid_code, "
                "ST_X(h.geom) AS lon, ST_Y(h.geom) AS lat, "
                "(SELECT count(*) FROM residents r WHERE r.household_id = h.id) AS residents "
                "FROM households h WHERE h.code = :code FOR UPDATE"
            ),
            {"code": code},
        )
        .mappings()
        .first()
    )
    if row is None:
        msg = f"household {code!r} not found; GET /api/v1/households lists the households"
        raise NotFoundError(msg)
    return row


def household_count(conn: Connection, code: str) -> HouseholdCount:
    """Return a household's declared size and registered residents (404 if unknown)."""
    row = _locked(conn, code)
    return HouseholdCount(code=code, people=int(row["people"]), residents=int(row["residents"]))


def _duplicate(code: str) -> DuplicateCodeError:
    msg = f"household {code!r} already exists; PATCH /api/v1/households/{code} changes it"
    return DuplicateCodeError(msg, [{"field": "code", "rule": "unique", "code": code}])


def create_household(
    conn: Connection,
    *,
    code: str,
    people: int,
    lon: float,
    lat: float,
    datum: Datum | str = Datum.CGCS2000,
    address: str | None = None,
    actor: str,
) -> HouseholdSaved:
    """Register a household at a point; the database assigns its grid.

    Parameters
    ----------
    conn
        Connection in the caller's read-write transaction.
    code
        New household code (1-64 letters, digits, ``-``, ``_``).
    people
        Declared size, 0-:data:`MAX_PEOPLE`.
    lon, lat, datum
        The point and its datum (converted to CGCS2000).
    address
        Street address (stored as given, returned masked).
    actor
        Who registers it (stored as the row's ``source``).

    Returns
    -------
    HouseholdSaved

    Raises
    ------
    RuleError, CoordinateError
        Bad code, size, address or coordinates (named in ``problems``); a point in no village.
    DuplicateCodeError
        The code exists.
    """
    check_code(code, "household")
    people = _check_people(people)
    address = _check_address(address)
    x, y = to_cgcs2000(lon, lat, datum)
    if conn.scalar(sa.text("SELECT 1 FROM households WHERE code = :code"), {"code": code}):
        raise _duplicate(code)
    placement = place_point(conn, x, y)
    with refusing_duplicates(conn, lambda _constraint: _duplicate(code)):
        stored = conn.scalar(
            sa.text(
                "INSERT INTO households (code, village_code, people, address, geom, synthetic, "
                f"source) VALUES (:code, :village, :people, :address, {point_sql()}, false, "
                ":source) RETURNING grid_code"
            ),
            {
                "code": code,
                "village": placement.village_code,
                "people": people,
                "address": address,
                "lon": x,
                "lat": y,
                "source": source_of(actor),
            },
        )
    return HouseholdSaved(
        code=code,
        people=people,
        residents=0,
        address=mask_address(address),
        placement=_with_grid(placement, stored),
    )


def _with_grid(placement: Placement, stored: str | None) -> Placement:
    """Return the placement with the grid the trigger stored (they agree: same function)."""
    if stored == placement.grid_code:
        return placement
    return Placement(**{**placement.__dict__, "grid_code": stored})


def update_household(
    conn: Connection, code: str, changes: Mapping[str, Any], *, actor: str
) -> HouseholdSaved:
    """Change a household's size, address or location (a moved point is re-assigned).

    Parameters
    ----------
    conn
        Connection in the caller's read-write transaction.
    code
        The household.
    changes
        Any of ``people``, ``address`` (``None`` clears it) and ``location``, a mapping with
        ``lon``, ``lat`` and ``datum``.
    actor
        Who changes it (the security layer's audit trail records it).

    Returns
    -------
    HouseholdSaved
        With ``previous_grid_code`` and ``moved`` when the location changed.

    Raises
    ------
    NotFoundError
        No such household.
    RuleError, CoordinateError
        A bad value (named), ``people`` below the residents registered, a point in no village.
    """
    del actor  # no history table for households yet (see the module notes)
    changed(changes, HOUSEHOLD_FIELDS, "household")
    row = _locked(conn, code)
    residents = int(row["residents"])
    people = int(row["people"])
    address = row["address"]
    sets: dict[str, Any] = {}
    if "people" in changes:
        people = _check_people(changes["people"])
        if people < residents:
            msg = (
                f"people={people} is below the {residents} residents registered in household "
                f"{code}; remove residents first (DELETE /api/v1/residents/{{id}})"
            )
            raise fail(msg, "people", "people_below_residents", residents=residents)
        sets["people"] = people
    if "address" in changes:
        address = _check_address(changes["address"])
        sets["address"] = address
    placement = None
    if "location" in changes:
        location = changes["location"]
        x, y = to_cgcs2000(location["lon"], location["lat"], location.get("datum", "cgcs2000"))
        placement = place_point(conn, x, y)
        sets |= {"lon": x, "lat": y, "village": placement.village_code}
    assignments = [f"{name} = :{name}" for name in ("people", "address") if name in sets]
    if placement is not None:
        # The trigger re-assigns the grid; the village must be set here (the trigger only
        # fills a missing one).
        assignments += [f"geom = {point_sql()}", "village_code = :village"]
    stored = row["grid_code"]
    if assignments:
        stored = conn.scalar(
            sa.text(
                f"UPDATE households SET {', '.join(assignments)} WHERE id = :id RETURNING grid_code"
            ),
            {**sets, "id": row["id"]},
        )
    if placement is None:
        placement = place_point(conn, float(row["lon"]), float(row["lat"]), refuse=False)
    return HouseholdSaved(
        code=code,
        people=people,
        residents=residents,
        address=mask_address(address),
        placement=_with_grid(placement, stored),
        previous_grid_code=row["grid_code"],
        moved="location" in changes,
    )


def delete_household(
    conn: Connection, code: str, *, cascade: bool = False, actor: str
) -> HouseholdDeleted:
    """Remove a household; its residents only with ``cascade``.

    Raises
    ------
    NotFoundError
        No such household.
    ConflictError
        It has residents and ``cascade`` is false (the message says how many).
    """
    del actor
    row = _locked(conn, code)
    residents = int(row["residents"])
    if residents and not cascade:
        msg = (
            f"household {code} has {residents} registered resident(s): remove them first, or "
            "delete with ?cascade=true to remove them with the household"
        )
        raise ConflictError(
            msg, [{"field": "cascade", "rule": "has_residents", "residents": residents}]
        )
    # residents.household_id is ON DELETE CASCADE.
    conn.execute(sa.text("DELETE FROM households WHERE id = :id"), {"id": row["id"]})
    return HouseholdDeleted(code=code, residents_deleted=residents)
