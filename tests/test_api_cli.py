"""``gis-grid serve``: the installed command starts the platform with uvicorn."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from api.cli import app
from tests.conftest import login_headers

pytestmark = pytest.mark.postgis

ROOT = Path(__file__).resolve().parents[1]


def test_cli_has_serve_and_the_library_commands():
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0, result.output
    for command in ("serve", "load", "export"):
        assert command in result.output
    result = CliRunner().invoke(app, ["serve", "--help"])
    assert result.exit_code == 0
    for option in ("--host", "--port", "--reload"):
        assert option in result.output


def test_serve_answers_health_and_stops_cleanly(loaded_database_url, unused_tcp_port):
    exe = Path(sys.executable).with_name("gis-grid")
    assert exe.exists(), "the project script gis-grid is installed with the project"
    env = {
        **os.environ,
        "GIS_GRID_DATABASE_URL": loaded_database_url.render_as_string(hide_password=False),
    }
    proc = subprocess.Popen(
        [str(exe), "serve", "--host", "127.0.0.1", "--port", str(unused_tcp_port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{unused_tcp_port}/health", timeout=5)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"gis-grid serve did not start:\n{proc.communicate()[0]}")
                time.sleep(0.2)
        assert r.status_code == 200
        assert r.json()["database"] == "ok"
        base = f"http://127.0.0.1:{unused_tcp_port}"
        assert httpx.get(f"{base}/api/v1/towns", timeout=30).status_code == 401
        towns = httpx.get(f"{base}/api/v1/towns", timeout=30, headers=login_headers(base))
        assert towns.json()["count"] == 2
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    # uvicorn shuts down gracefully, then re-raises the signal it caught (exit -SIGTERM).
    assert proc.returncode in (0, -signal.SIGTERM), out
    assert "Finished server process" in out
    assert "Traceback" not in out
