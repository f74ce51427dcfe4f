"""Drawing over HTTP: propose a new grid plan for a village or town, and apply it as a version."""

from __future__ import annotations

from fastapi import APIRouter

__all__ = ["router"]

router = APIRouter()
