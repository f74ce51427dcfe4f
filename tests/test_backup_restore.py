"""scripts/backup.sh and scripts/restore.sh on a scratch PostgreSQL cluster of their own.

A cluster with WAL archiving gets rows, a base backup, more rows, then is stopped (the
"disaster"); the backup is restored into a new data directory and started: it must hold every
row, including those written after the base backup, which only the WAL archive has.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PG_ROOT = Path("/usr/lib/postgresql")

pytestmark = [pytest.mark.postgis, pytest.mark.slow]


def _bindir() -> Path:
    versions = sorted(
        (p for p in PG_ROOT.glob("*") if (p / "bin" / "initdb").exists()), key=lambda p: int(p.name)
    )
    if not versions:
        pytest.fail("no PostgreSQL server binaries in /usr/lib/postgresql (scripts/setup.sh)")
    return versions[-1] / "bin"


def _as_owner(
    args: list[str], env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run as the postgres user when we are root (PostgreSQL refuses to run as root)."""
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    return subprocess.run(
        [*prefix, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def _run_script(
    name: str, args: list[str], env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``scripts/<name>`` as the postgres user, handing it the script on stdin.

    The checkout may sit where the postgres user cannot read (``mktemp -d`` makes a directory
    only its owner can enter); the scripts do not depend on where they are.
    """
    script = (ROOT / "scripts" / name).read_text()
    return _as_owner(["bash", "-s", "--", *args], env=env, stdin=script)


def _ok(args: list[str], env: dict[str, str] | None = None) -> str:
    done = _as_owner(args, env)
    assert done.returncode == 0, f"{' '.join(args)}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Cluster:
    def __init__(self, bindir: Path, pgdata: Path, socket_dir: Path) -> None:
        self.bindir, self.pgdata, self.socket_dir = bindir, pgdata, socket_dir
        self.port = _free_port()

    def start(self) -> None:
        options = f"-p {self.port} -k {self.socket_dir} -c listen_addresses=''"
        _ok(
            [
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.pgdata),
                "-w",
                "-t",
                "60",
                "-l",
                str(self.pgdata.parent / f"{self.pgdata.name}.log"),
                "-o",
                options,
                "start",
            ]
        )

    def stop(self) -> None:
        _as_owner([str(self.bindir / "pg_ctl"), "-D", str(self.pgdata), "-m", "fast", "-w", "stop"])

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "PGHOST": str(self.socket_dir),
            "PGPORT": str(self.port),
            "PGUSER": "postgres",
            "PG_BINDIR": str(self.bindir),
        }

    def sql(self, query: str) -> str:
        psql = [
            str(self.bindir / "psql"),
            "-h",
            str(self.socket_dir),
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-qAt",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            query,
        ]
        return _ok(psql).strip()


@pytest.fixture
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    # Under /tmp, owned by postgres: the cluster, the archive and the backups live here.
    path = Path(tmp_path_factory.mktemp("pitr"))
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")
        path.chmod(0o755)
        for parent in path.parents:  # the server must reach its data directory
            if str(parent).startswith(str(tmp_path_factory.getbasetemp().parent)):
                parent.chmod(parent.stat().st_mode | 0o011)
    yield path


def test_base_backup_and_wal_archive_restore_every_row(workdir: Path) -> None:
    bindir = _bindir()
    wal, backups = workdir / "wal", workdir / "base"
    _ok(["mkdir", "-p", str(wal), str(backups)])
    source = Cluster(bindir, workdir / "data", workdir)
    _ok(
        [
            str(bindir / "initdb"),
            "-D",
            str(source.pgdata),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        ]
    )
    with (source.pgdata / "postgresql.conf").open("a") as conf:
        conf.write(
            "\nwal_level = replica\narchive_mode = on\n"
            f"archive_command = 'test ! -f {wal}/%f && cp %p {wal}/%f'\n"
        )
    source.start()
    restored: Cluster | None = None
    try:
        source.sql("CREATE TABLE work (id int PRIMARY KEY, what text)")
        source.sql("INSERT INTO work SELECT g, 'before' FROM generate_series(1, 100) g")
        done = _run_script("backup.sh", [str(backups)], env=source.env())
        assert done.returncode == 0, done.stderr
        backup = Path(done.stdout.strip().splitlines()[-1])
        assert (backup / "backup_label").is_file()
        assert (backup / "backup_label.wal").read_text().strip()

        # Work done after the base backup exists only in the WAL archive.
        source.sql("INSERT INTO work SELECT g, 'after' FROM generate_series(101, 150) g")
        segment = source.sql("SELECT pg_walfile_name(pg_current_wal_lsn())")
        source.sql("SELECT pg_switch_wal()")
        deadline = time.monotonic() + 60
        while not (wal / segment).exists():
            assert time.monotonic() < deadline, f"{segment} was never archived"
            time.sleep(0.2)
        source.stop()  # the disaster: the server is gone

        target = workdir / "restored"
        done = _run_script("restore.sh", [str(backup), str(wal), str(target)])
        assert done.returncode == 0, done.stderr
        assert (target / "recovery.signal").exists()
        # Restoring over a non-empty directory is refused.
        again = _run_script("restore.sh", [str(backup), str(wal), str(target)])
        assert again.returncode != 0
        assert "not empty" in again.stderr

        restored = Cluster(bindir, target, workdir)
        restored.start()
        deadline = time.monotonic() + 60
        while restored.sql("SELECT pg_is_in_recovery()") != "f":
            assert time.monotonic() < deadline, "the restored cluster never left recovery"
            time.sleep(0.2)
        assert not (target / "recovery.signal").exists()
        counts = restored.sql("SELECT what || '=' || count(*) FROM work GROUP BY what ORDER BY 1")
        assert counts.splitlines() == ["after=50", "before=100"]
        restored.sql("INSERT INTO work VALUES (151, 'writable again')")
    finally:
        source.stop()
        if restored is not None:
            restored.stop()
