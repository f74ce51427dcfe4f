"""Grid editing: boundary updates under If-Match, split, merge, drawn plans as new versions."""

from __future__ import annotations

from fastapi import APIRouter

__all__ = ["router"]

router = APIRouter()
