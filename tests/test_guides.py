"""The quickstart, the planner's guide and the centre staff guide, run as a newcomer would.

The convention (the only thing parsed here; keep the guides to it):

- Every fenced block whose info string is exactly ``bash`` is **run**, in the order of the page,
  by one ``bash`` with ``set -euo pipefail``: so every command in it must succeed, and shell
  variables set in one block (``API``, ``ETAG``, ``ID``) are there in the next. Blocks that are
  only shown (``bash scripts/serve.sh``, a DEM the repository lacks) are fenced ``shell``.
- Every ``curl`` in a ``bash`` block is followed, on its line (or the last line of its
  backslash continuation), by a comment ``# → NNN``: the HTTP status the guide says it answers.
  The test counts the ``curl``s of each block and checks that each answered, in order, the
  status written next to it. ``curl`` is wrapped by a shell function that reports each status
  on stderr (``-w '%{stderr}…'``), so the guides must not use ``-w`` themselves.
- ``http://127.0.0.1:8000`` (what ``bash scripts/serve.sh`` serves) is replaced by the test
  server, a real uvicorn over a fresh writable copy of the loaded sample (one per page, as after
  ``bash scripts/serve.sh``). Commands run in a scratch directory holding links to the
  repository's ``.venv`` and ``data``, with ``GIS_GRID_DATABASE_URL`` pointing at the same
  copy, so the guides' ``.venv/bin/gis-grid`` commands run too.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from tests.conftest import ServerThread

pytestmark = [pytest.mark.postgis, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

#: The pages run, each on a fresh copy of the sample.
GUIDES = ("quickstart.md", "planners-guide.md", "centre-guide.md")

SERVED = "http://127.0.0.1:8000"
FENCE = re.compile(r"^```(?P<info>[^\n`]*)\n(?P<body>.*?)^```\s*$", re.MULTILINE | re.DOTALL)
EXPECT = re.compile(r"#\s*→\s*(?P<status>[1-5][0-9]{2})\b")
CURL = re.compile(r"(?<![\w./-])curl\s")
STATUS = re.compile(r"^@@(?P<kind>block|status) (?P<value>\S+)$", re.MULTILINE)

#: Put in front of the page's blocks: strict shell, and curl reporting each status on stderr.
PREAMBLE = """\
set -euo pipefail
curl() { command curl -w '%{stderr}@@status %{http_code}\\n' "$@"; }
"""


@dataclass(frozen=True)
class Block:
    """A ``bash`` block of a page: its position, its text, the statuses its curls should get."""

    number: int
    line: int
    text: str
    expected: tuple[int, ...]


def _code(line: str) -> str:
    """Return a shell line without its trailing comment (enough for the guides' lines)."""
    return re.split(r"(?:^|\s)#", line, maxsplit=1)[0]


def bash_blocks(page: str) -> list[Block]:
    """Return the page's ``bash`` blocks with the statuses their ``# → NNN`` comments state."""
    blocks: list[Block] = []
    for match in FENCE.finditer(page):
        if match["info"].strip() != "bash":
            continue
        body = match["body"]
        curls = sum(len(CURL.findall(_code(line))) for line in body.splitlines())
        expected = tuple(int(m["status"]) for m in EXPECT.finditer(body))
        line = page.count("\n", 0, match.start()) + 1
        assert curls == len(expected), (
            f"line {line}: {curls} curl(s) but {len(expected)} '# → NNN' comment(s):\n{body}"
        )
        blocks.append(Block(len(blocks), line, body, expected))
    return blocks


def run_page(name: str, base_url: str, database_url: str, workdir: Path) -> None:
    """Run every ``bash`` block of ``docs/<name>`` against ``base_url``; fail on any mismatch."""
    blocks = bash_blocks((DOCS / name).read_text(encoding="utf-8"))
    assert blocks, f"{name} has no bash block"
    script = PREAMBLE + "".join(
        f"echo '@@block {b.number}' >&2\n{b.text.replace(SERVED, base_url)}\n" for b in blocks
    )
    for link in (".venv", "data"):
        if not (workdir / link).exists():
            (workdir / link).symlink_to(ROOT / link)
    env = {**os.environ, "GIS_GRID_DATABASE_URL": database_url, "NO_COLOR": "1"}
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    got: dict[int, list[int]] = {b.number: [] for b in blocks}
    current = -1
    for found in STATUS.finditer(done.stderr):
        if found["kind"] == "block":
            current = int(found["value"])
        else:
            got[current].append(int(found["value"]))
    output = f"--- stdout (end)\n{done.stdout[-3000:]}\n--- stderr (end)\n{done.stderr[-3000:]}"
    for block in blocks:
        where = f"{name}, block {block.number} (line {block.line}):\n{block.text}"
        assert got[block.number] == list(block.expected), (
            f"{where}\nexpected statuses {list(block.expected)}, got {got[block.number]}\n{output}"
        )
    assert done.returncode == 0, f"{name}: a command failed (exit {done.returncode})\n{output}"


@pytest.fixture
def served_copy(fresh_database_url: URL) -> Iterator[tuple[str, str]]:
    """A server over a fresh copy of the sample, as after ``bash scripts/serve.sh``."""
    with ServerThread(fresh_database_url) as server:
        yield server.url, fresh_database_url.render_as_string(hide_password=False)


@pytest.mark.parametrize("name", GUIDES)
def test_guide_runs_as_written(name: str, served_copy: tuple[str, str], tmp_path: Path) -> None:
    base_url, database_url = served_copy
    run_page(name, base_url, database_url, tmp_path)


def test_the_convention_is_checked() -> None:
    """A block whose curls and stated statuses disagree is refused before anything runs."""
    page = "```bash\ncurl -s http://127.0.0.1:8000/health  # → 200\ncurl -s x\n```\n"
    with pytest.raises(AssertionError, match="2 curl"):
        bash_blocks(page)
    shown = "```shell\nbash scripts/serve.sh\n```\n```bash\ncurl -s \\\n  y  # → 404\n```\n"
    assert [b.expected for b in bash_blocks(shown)] == [(404,)]


def test_guides_point_at_the_served_address() -> None:
    """The commands a newcomer pastes name what ``bash scripts/serve.sh`` serves."""
    serve = (ROOT / "scripts" / "serve.sh").read_text(encoding="utf-8")
    assert "${GIS_GRID_HOST:-127.0.0.1}" in serve and "${GIS_GRID_PORT:-8000}" in serve
    for name in GUIDES:
        text = (DOCS / name).read_text(encoding="utf-8")
        assert SERVED in text, name
        assert "being built" not in text.lower(), name
