"""Test helpers for personal data encrypted at rest: the clear values, decrypted here.

The tables hold ciphertext (``id_number_enc``, ``phone_enc``); tests that check no response
leaks a real ID number or phone compare against the decrypted values.
"""

from __future__ import annotations

import contextlib
from typing import Any

import sqlalchemy as sa

from gis_grid.security.crypto import decrypt, default_keys, lookup_hash

__all__ = ["clear_residents", "clear_values", "id_number_hash"]


def clear_residents(conn: Any, where: str = "true", **params: Any) -> list[dict[str, Any]]:
    """Residents (``id``, ``name``, clear ``id_number`` and ``phone``) matching ``where``.

    ``where`` may refer to ``r`` (residents) and ``h`` (households); ordered by ``r.id``.
    """
    keys = default_keys()
    rows = conn.execute(
        sa.text(
            "SELECT r.id, r.name, r.id_number_enc, r.phone_enc FROM residents r "
            f"JOIN households h ON h.id = r.household_id WHERE {where} ORDER BY r.id"
        ),
        params,
    ).mappings()
    return [
        {
            "id": row["id"],
            "name": row["name"],
            "id_number": None
            if row["id_number_enc"] is None
            else decrypt(row["id_number_enc"], keys, "id_number"),
            "phone": None if row["phone_enc"] is None else decrypt(row["phone_enc"], keys, "phone"),
        }
        for row in rows
    ]


def clear_values(conn: Any) -> set[str]:
    """Every resident's clear ID number and phone."""
    out: set[str] = set()
    for row in clear_residents(conn):
        out.update(v for v in (row["id_number"], row["phone"]) if v)
    return out


def id_number_hash(number: str) -> str:
    """The lookup hash stored for an ID number (``residents.id_number_hash``)."""
    return lookup_hash(number, default_keys(), "id_number")


#: Password of the test accounts created in the test databases (tests/conftest.py).
TEST_PASSWORD = "test password 123"

#: User name of the test account of each role.
TEST_USERS = {
    "admin": "test.admin",
    "planner": "test.planner",
    "member": "test.member",
    "analyst": "test.analyst",
    "reader": "test.reader",
}


def create_test_users(conn: Any) -> None:
    """Create one account per role (the member: the first appointed grid's member).

    Also lets the application role log in (``scripts/setup.sh`` does so on a real install;
    a role the owner cannot alter keeps what setup.sh gave it).
    """
    from gis_grid.security import accounts

    with contextlib.suppress(sa.exc.DBAPIError), conn.begin_nested():
        conn.exec_driver_sql("ALTER ROLE gis_grid_app LOGIN PASSWORD 'gis_grid_app'")
    member = conn.scalar(
        sa.text("SELECT code FROM members WHERE status = 'appointed' ORDER BY grid_code LIMIT 1")
    )
    for role, name in TEST_USERS.items():
        accounts.create_user(
            conn, name, TEST_PASSWORD, role, member_code=member if role == "member" else None
        )
