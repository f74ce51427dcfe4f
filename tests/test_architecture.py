"""The dependency direction api → gis_grid ← maps (and api → maps) holds."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

FORBIDDEN = {
    "gis_grid": {"api", "maps", "fastapi", "folium", "uvicorn", "starlette", "branca"},
    "maps": {"api", "fastapi", "starlette", "uvicorn"},
}


def _imports(path: Path) -> set[str]:
    """Top-level module names imported by a file (absolute imports, any nesting level)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_forbidden_imports_by_ast(package):
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"no Python files in {package}/"
    bad = {
        f"{path.relative_to(ROOT)} imports {name}"
        for path in files
        for name in _imports(path) & FORBIDDEN[package]
    }
    assert not bad, sorted(bad)


def _importlinter_ini(tmp_path: Path) -> Path:
    """pyproject's [tool.importlinter] as an INI file, with external packages included.

    import-linter needs ``include_external_packages`` for contracts that forbid third-party
    modules (fastapi, folium ...); set here so the contracts are checked either way.
    """
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    linter = config["tool"]["importlinter"]
    lines = ["[importlinter]", "root_packages ="]
    lines += [f"    {name}" for name in linter["root_packages"]]
    lines.append("include_external_packages = True")
    for i, contract in enumerate(linter["contracts"]):
        lines.append(f"[importlinter:contract:{i}]")
        for key, value in contract.items():
            if isinstance(value, list):
                lines.append(f"{key} =")
                lines += [f"    {v}" for v in value]
            else:
                lines.append(f"{key} = {value}")
    path = tmp_path / ".importlinter"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_import_linter_contracts(tmp_path):
    exe = Path(sys.executable).with_name("lint-imports")
    lint = str(exe) if exe.exists() else shutil.which("lint-imports")
    assert lint, "import-linter is a dev dependency: uv sync --extra dev"
    result = subprocess.run(
        [lint, str(_importlinter_ini(tmp_path)), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 2 kept, 0 broken." in result.stdout


def test_importing_the_core_loads_no_web_stack():
    code = (
        "import sys, gis_grid, gis_grid.crs, gis_grid.errors, gis_grid.config, gis_grid.measure;"
        "import gis_grid.db.engine;"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'fastapi', 'starlette', 'folium', 'uvicorn', 'api', 'maps'});"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_maps_loads_no_web_framework():
    code = (
        "import sys, maps.overview, maps.vendor;"
        "bad = sorted(m for m in sys.modules "
        "if m.split('.')[0] in {'fastapi', 'starlette', 'api'});"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
