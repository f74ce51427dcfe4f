"""The analysts' notebooks and the documentation's examples.

The notebooks themselves are executed by ``pytest --nbmake notebooks/`` (``scripts/test.sh``);
here: they are committed clean (no outputs, no personal columns on maps), and the ``>>>``
examples of the analyst's guide run against the sample database and print what the page says.
"""

from __future__ import annotations

import doctest
import json
import re
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
DOCS = ROOT / "docs"

#: Pages whose ``>>>`` examples are executed (with ``engine`` on the loaded sample database).
DOCTESTED_PAGES = ("analysts-guide.md",)

#: Columns that must never reach a map tooltip or popup (names, ID numbers, phones, addresses).
PERSONAL = re.compile(r"""["'](name|id_number|phone|address|birth_date|gender)["']""")
TOOLTIP = re.compile(r"tooltip\s*=\s*\[([^\]]*)\]")


def _cells(path: Path) -> list[dict[str, object]]:
    return list(json.loads(path.read_text(encoding="utf-8"))["cells"])


def test_the_four_notebooks_are_there() -> None:
    names = [p.name for p in NOTEBOOKS]
    assert [n[:2] for n in names] == ["01", "02", "03", "04"], names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_without_outputs(path: Path) -> None:
    dirty = [
        i
        for i, cell in enumerate(_cells(path))
        if cell["cell_type"] == "code" and (cell.get("outputs") or cell.get("execution_count"))
    ]
    assert not dirty, f"{path.name}: clear the outputs of cells {dirty} before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_maps_show_no_personal_columns(path: Path) -> None:
    code = "\n".join(
        "".join(cell["source"]) if isinstance(cell["source"], list) else str(cell["source"])
        for cell in _cells(path)
        if cell["cell_type"] == "code"
    )
    for call in re.finditer(r"\.explore\(", code):
        # Every map lists its tooltip columns and turns the popup (all columns) off.
        window = code[call.end() : call.end() + 600].split("\n)\n", 1)[0]
        assert "popup=False" in window, f"{path.name}: explore() without popup=False"
        tooltip = TOOLTIP.search(window)
        assert tooltip, f"{path.name}: explore() without an explicit tooltip list"
        assert not PERSONAL.search(tooltip.group(1)), f"{path.name}: {tooltip.group(0)}"


@pytest.mark.postgis
@pytest.mark.parametrize("page", DOCTESTED_PAGES)
def test_documentation_examples_run(page: str, loaded_engine: Engine) -> None:
    text = (DOCS / page).read_text(encoding="utf-8")
    test = doctest.DocTestParser().get_doctest(text, {"engine": loaded_engine}, page, page, 0)
    assert len(test.examples) >= 20, "the examples were not found: fenced >>> blocks expected"
    report: list[str] = []
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    result = runner.run(test, out=report.append)
    assert result.failed == 0, "".join(report)
