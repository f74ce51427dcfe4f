"""A throwaway PostgreSQL cluster of its own, for tests that stop and start the database.

The shared test server (``GIS_GRID_DATABASE_URL``) must never be restarted: other tests and
processes use it. :class:`ScratchCluster` runs ``initdb``/``pg_ctl`` from the installed server
binaries (``scripts/setup.sh`` installs them, on CI too) in a temporary directory, on a free
loopback port, as the ``postgres`` user when we are root (PostgreSQL refuses to run as root),
and sets it up as ``scripts/setup.sh`` sets up the real one: the owner role ``gis_grid``
(BYPASSRLS), the application role ``gis_grid_app`` (LOGIN, NOBYPASSRLS, a statement timeout),
PostGIS, the migrated schema, the sample data and one test account per role.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

from tests.conftest import SAMPLE_DATA, free_port
from tests.security_support import create_test_users

__all__ = ["ScratchCluster", "server_bindir"]

PG_ROOT = Path("/usr/lib/postgresql")


def server_bindir() -> Path:
    """Directory of the newest installed PostgreSQL server binaries (fails the test if none)."""
    versions = sorted(
        (p for p in PG_ROOT.glob("*") if (p / "bin" / "initdb").exists()),
        key=lambda p: int(p.name),
    )
    if not versions:
        pytest.fail("no PostgreSQL server binaries in /usr/lib/postgresql (run scripts/setup.sh)")
    return versions[-1] / "bin"


def _as_postgres(args: list[str]) -> subprocess.CompletedProcess[str]:
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    return subprocess.run(
        [*prefix, *args], capture_output=True, text=True, timeout=120, check=False
    )


class ScratchCluster:
    """A PostgreSQL cluster in a temporary directory, on a free loopback port.

    Use as a context manager: ``initdb`` and start on entry, stop and remove on exit.
    :meth:`stop` and :meth:`start` stop and start the same cluster on the same port (an
    outage as a client sees it).
    """

    def __init__(self) -> None:
        self.bindir = server_bindir()
        self.root = Path(tempfile.mkdtemp(prefix="gis-grid-scratch-pg-"))
        self.pgdata = self.root / "data"
        self.log = self.root / "server.log"
        self.port = free_port()

    # --- lifecycle ------------------------------------------------------------------------

    def __enter__(self) -> ScratchCluster:
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self.root.chmod(0o700)
        self._run(
            "initdb",
            "-D",
            str(self.pgdata),
            "-U",
            "postgres",
            "-A",
            "trust",  # a loopback-only cluster that lives for one test module
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        )
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self.running():
                self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def _run(self, tool: str, *args: str) -> str:
        done = _as_postgres([str(self.bindir / tool), *args])
        if done.returncode != 0:
            log = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
            pytest.fail(f"{tool} {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}\n{log}")
        return done.stdout

    def start(self) -> None:
        """Start the cluster and wait until it accepts connections."""
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c full_page_writes=off"  # throwaway data: speed over durability
        )
        self._run(
            "pg_ctl", "-D", str(self.pgdata), "-l", str(self.log), "-w", "-t", "60",
            "-o", options, "start",
        )  # fmt: skip

    def stop(self) -> None:
        """Stop the cluster as an operator would for a restart: ``-m fast``.

        Open sessions are terminated and their transactions rolled back.
        """
        self._run("pg_ctl", "-D", str(self.pgdata), "-m", "fast", "-w", "-t", "60", "stop")

    def running(self) -> bool:
        """Whether the server is running."""
        status = _as_postgres([str(self.bindir / "pg_ctl"), "-D", str(self.pgdata), "status"])
        return status.returncode == 0

    # --- URLs and set-up ------------------------------------------------------------------

    def url(self, user: str = "postgres", password: str | None = None, db: str = "postgres") -> URL:
        """URL of a database of the cluster (psycopg, over TCP on the loopback)."""
        return make_url("postgresql+psycopg://127.0.0.1").set(
            username=user, password=password, port=self.port, database=db
        )

    def create_platform(self, name: str = "gis_grid") -> URL:
        """Set up the platform's database as ``scripts/setup.sh`` and the test template do.

        Returns
        -------
        sqlalchemy.engine.URL
            The owner's URL (``gis_grid``); the service derives the application role's.
        """
        from gis_grid.db.migrate import upgrade
        from gis_grid.load import load_sample

        admin = sa.create_engine(self.url(), isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
        with admin.connect() as conn:
            for sql in (
                "CREATE ROLE gis_grid LOGIN CREATEDB CREATEROLE BYPASSRLS PASSWORD 'gis_grid'",
                "CREATE ROLE gis_grid_app LOGIN NOSUPERUSER NOBYPASSRLS PASSWORD 'gis_grid_app'",
                "ALTER ROLE gis_grid_app SET statement_timeout = '60s'",
                f'CREATE DATABASE "{name}" OWNER gis_grid',
            ):
                conn.exec_driver_sql(sql)
        admin.dispose()
        superuser = sa.create_engine(self.url(db=name), poolclass=sa.NullPool)
        with superuser.begin() as conn:
            conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS postgis")
            conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS btree_gist")
        superuser.dispose()

        owner = self.url("gis_grid", "gis_grid", name)
        upgrade(owner)
        eng = sa.create_engine(owner, poolclass=sa.NullPool)
        load_sample(SAMPLE_DATA, eng, replace=True)
        with eng.begin() as conn:
            create_test_users(conn)
        eng.dispose()
        return owner
