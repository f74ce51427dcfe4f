"""Response models of the probes: ``/health/live`` and ``/health/ready``."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["LivePublic", "ReadyPublic"]


class LivePublic(BaseModel):
    """The process answers (liveness): nothing else is checked, the database least of all."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["ok"]
    version: str = Field(description="Version of the gis-grid platform")


class ReadyPublic(BaseModel):
    """Whether the service can serve requests now (readiness): database reachable and migrated."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["ready", "unavailable"]
    database: Literal["ok", "unreachable", "not migrated"] = Field(
        description=(
            "ok: reachable and at the migrations' head; unreachable: no connection; "
            "not migrated: reachable, but its schema is not the one this version needs"
        )
    )
    schema_revision: str | None = Field(
        None, description="Migration the database is at (null when unknown or never migrated)"
    )
    head_revision: str = Field(description="Migration this version of the service needs")
    detail: str | None = Field(None, description="What is wrong and what to do")
    version: str = Field(description="Version of the gis-grid platform")
