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

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = [
    "APP_ROLE",
    "DEFAULT_DATABASE_URL",
    "DEFAULT_SAMPLE_DATA_DIR",
    "DEFAULT_SECRET_KEY_FILE",
    "Settings",
    "get_settings",
]

#: The database that ``scripts/setup.sh`` creates in its private cluster.
DEFAULT_DATABASE_URL = "postgresql+psycopg://gis_grid:gis_grid@127.0.0.1:55432/gis_grid"

#: The PostgreSQL role the web service connects as: not the owner of the tables, without
#: BYPASSRLS, so row-level security applies to every query it runs.
APP_ROLE = "gis_grid_app"

#: Where the master secret is kept when ``GIS_GRID_SECRET_KEY`` is not set (created on first
#: use, readable by its owner only). Never inside the repository.
DEFAULT_SECRET_KEY_FILE = Path.home() / ".config" / "gis-grid" / "secret.key"

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
    app_database_url
        URL the web service connects with: the application role (:data:`APP_ROLE`), under
        row-level security. ``None``: ``database_url`` with the user and password replaced by
        ``app_role``/``app_password`` (see :meth:`service_database_url`).
    app_role, app_password
        The application role and its password (``scripts/setup.sh`` creates it).
    secret_key
        Master secret (at least 32 characters) from which the keys that encrypt personal data,
        hash it for lookup and sign login tokens are derived. ``None``: read from
        ``secret_key_file``, which is created with a random secret on first use.
    token_minutes
        Lifetime of a login token.
    lockout_attempts, lockout_minutes
        After this many failed logins in a row, an account is locked for that many minutes.
    unmask_per_hour
        How many records one user may unmask per hour.
    max_body_bytes
        Largest request body the service reads (413 above it), uploads included.
    cors_origins
        Browser origins allowed to call the API from other sites (CORS); none by default:
        the platform's own pages are same-origin.
    """

    model_config = SettingsConfigDict(env_prefix="GIS_GRID_", extra="ignore")

    # repr=False: the URL carries the password and settings end up in logs.
    database_url: str = Field(default=DEFAULT_DATABASE_URL, repr=False)
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    sample_data_dir: Path = DEFAULT_SAMPLE_DATA_DIR
    app_database_url: str | None = Field(default=None, repr=False)
    app_role: str = APP_ROLE
    app_password: SecretStr = SecretStr(APP_ROLE)
    secret_key: SecretStr | None = None
    secret_key_file: Path = DEFAULT_SECRET_KEY_FILE
    token_minutes: int = Field(default=30, ge=1, le=24 * 60)
    lockout_attempts: int = Field(default=5, ge=1, le=100)
    lockout_minutes: int = Field(default=15, ge=1, le=24 * 60)
    unmask_per_hour: int = Field(default=20, ge=1, le=10_000)
    max_body_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)
    cors_origins: list[str] = Field(default_factory=list)

    def service_database_url(self) -> str:
        """Return the URL the web service connects with (the application role).

        Examples
        --------
        >>> Settings(database_url="postgresql+psycopg://owner:pw@db:5432/g").service_database_url()
        'postgresql+psycopg://gis_grid_app:gis_grid_app@db:5432/g'
        """
        if self.app_database_url:
            return self.app_database_url
        from sqlalchemy.engine import make_url

        url = make_url(self.database_url).set(
            username=self.app_role, password=self.app_password.get_secret_value()
        )
        return url.render_as_string(hide_password=False)


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
