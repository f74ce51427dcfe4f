"""Member registry writes: eligibility (art. 6), selection (art. 7), AB posts, absences, cover."""

from __future__ import annotations

from fastapi import APIRouter

__all__ = ["router"]

router = APIRouter()
