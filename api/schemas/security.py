"""Request and response models of logins and unmasking."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "LoginRequest",
    "TokenPublic",
    "UnmaskRequest",
    "UnmaskedPublic",
    "UserPublic",
]

UnmaskField = Literal["name", "id_number", "phone"]


class LoginRequest(BaseModel):
    """A user name and password."""

    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=64, examples=["wang.admin"])
    password: str = Field(min_length=1, max_length=1024, examples=["correct horse battery"])


class UserPublic(BaseModel):
    """The logged-in account."""

    username: str = Field(examples=["m511703109001001"])
    display_name: str | None = None
    role: Literal["admin", "planner", "member", "analyst", "reader"]
    member_code: str | None = Field(
        default=None, description="For role member: the grid member the account is"
    )
    grids: list[str] = Field(
        default_factory=list,
        description="For role member: the grids whose rows are visible today (own + AB cover)",
    )


class TokenPublic(BaseModel):
    """A login token: send it as ``Authorization: Bearer <access_token>``."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 (the scheme's name)
    expires_at: dt.datetime
    expires_in: int = Field(description="Seconds until the token expires")
    user: UserPublic


class UnmaskRequest(BaseModel):
    """Which personal fields of one resident to see in clear, and why (audited)."""

    model_config = ConfigDict(extra="forbid")

    fields: list[UnmaskField] = Field(min_length=1, max_length=3, examples=[["id_number", "phone"]])
    reason: str = Field(
        min_length=5,
        max_length=500,
        description="Why the clear values are needed (kept in the audit log)",
        examples=["核实低保申请人身份 (verifying an applicant for subsistence allowance)"],
    )


class UnmaskedPublic(BaseModel):
    """The clear values asked for; the access is in the audit log as ``audit_id``."""

    id: int
    household_code: str
    grid_code: str | None
    name: str | None = None
    id_number: str | None = None
    phone: str | None = None
    fields: list[UnmaskField]
    audit_id: int
