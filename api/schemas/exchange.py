"""Response model of a file import (and its dry run)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

__all__ = ["ImportPublic"]


class ImportPublic(BaseModel):
    """What an import changed, or for a dry run what it would change (nothing is stored)."""

    layer: str = Field(examples=["hazards"])
    file: str = Field(examples=["hazards.zip"])
    dry_run: bool
    features: int = Field(ge=0, description="Features read from the file")
    counts: dict[str, int] = Field(
        description="added, changed, unchanged, skipped, removed (exact counts)",
        examples=[{"added": 2, "changed": 1, "unchanged": 40, "skipped": 0, "removed": 0}],
    )
    added: list[str] = Field(description="Codes added (at most 200 listed)")
    changed: dict[str, list[str]] = Field(
        description="Code -> fields that differ ('geometry' included)",
        examples=[{"HZ-0001": ["name", "geometry"]}],
    )
    unchanged: list[str]
    skipped: dict[str, str] = Field(description="Code -> why it was not written (incidents)")
    removed: list[str] = Field(description="Grids: current codes the file drops")
    grid_versions: dict[str, Any] | None = Field(
        default=None, description="Grids: the new versions written (closed, added, points moved)"
    )
