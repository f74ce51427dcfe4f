"""The ``gis-grid`` command: the library's commands plus ``serve``.

``gis_grid.cli.app`` holds the commands that need no web stack (db, load, export, info); this
module registers ``serve`` on that same Typer app, so the core library never imports uvicorn or
FastAPI while the installed ``gis-grid`` script (``api.cli:app``) has every command.
"""

from __future__ import annotations

from typing import Annotated

import typer

from gis_grid.cli import app
from gis_grid.config import get_settings

__all__ = ["app", "serve"]


@app.command()
def serve(
    host: Annotated[
        str | None,
        typer.Option(help="Interface to listen on [default: GIS_GRID_HOST or 127.0.0.1]"),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(min=1, max=65535, help="Port [default: GIS_GRID_PORT or 8000]"),
    ] = None,
    reload: Annotated[bool, typer.Option(help="Restart on code changes (development)")] = False,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes")] = 1,
) -> None:
    """Serve the platform (API, /docs, /map) with uvicorn."""
    import uvicorn

    settings = get_settings()
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        reload=reload,
        workers=None if reload else workers,
        proxy_headers=False,
    )


if __name__ == "__main__":
    app()
