"""Incident reporting and the seven-step workflow; admission of task types (article 10)."""

from __future__ import annotations

from fastapi import APIRouter

__all__ = ["router"]

router = APIRouter()
