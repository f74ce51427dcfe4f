"""Spatial-engine results over HTTP: load balance and grid adjacency for a town or village."""

from __future__ import annotations

from fastapi import APIRouter

__all__ = ["router"]

router = APIRouter()
