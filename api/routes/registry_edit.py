"""Registry writes: households, residents, pollution points, hazards and their patrol logs."""

from __future__ import annotations

from fastapi import APIRouter

__all__ = ["router"]

router = APIRouter()
