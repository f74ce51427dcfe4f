"""Settings of the platform, read from the environment (prefix ``GIS_GRID_``).

The core library, the command line and the web service share these settings; this module
imports nothing from the web layer.

Examples
--------
>>> import os
>>> os.environ["GIS_GRID_PORT"] = "8080"
>>> Settings().port
8080
>>> del os.environ["GIS_GRID_PORT"]
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["DEFAULT_DATABASE_URL", "DEFAULT_SAMPLE_DATA_DIR", "Settings", "get_settings"]

#: The database that ``scripts/setup.sh`` creates in its private cluster.
DEFAULT_DATABASE_URL = "postgresql+psycopg://gis_grid:gis_grid@127.0.0.1:55432/gis_grid"

#: Sample data shipped with a checkout of the repository.
DEFAULT_SAMPLE_DATA_DIR = Path(__file__).resolve().parents[1] / "data" / "shapefiles"


class Settings(BaseSettings):
    """Settings of the platform.

    Every field can be set with an environment variable ``GIS_GRID_<FIELD>`` (e.g.
    ``GIS_GRID_DATABASE_URL``, ``GIS_GRID_PORT``).

    Attributes
    ----------
    database_url
        SQLAlchemy URL of the PostGIS database (driver ``postgresql+psycopg``).
    host, port
        Where the web service listens.
    sample_data_dir
        Directory of the sample layers loaded by ``gis-grid load``.
    """

    model_config = SettingsConfigDict(env_prefix="GIS_GRID_", extra="ignore")

    # repr=False: the URL carries the password and settings end up in logs.
    database_url: str = Field(default=DEFAULT_DATABASE_URL, repr=False)
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    sample_data_dir: Path = DEFAULT_SAMPLE_DATA_DIR


def get_settings() -> Settings:
    """Read the settings from the environment now.

    Not cached on purpose: the command line and the tests change the environment between
    calls, and reading a few variables costs microseconds.

    Returns
    -------
    Settings
        Fresh settings.
    """
    return Settings()
