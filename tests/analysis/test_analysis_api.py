"""The analysis package has one public face: ``capture.analysis`` and its ``__all__``; the rest is private."""

from __future__ import annotations

import ast
import types
from pathlib import Path

import capture.analysis as analysis

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "capture" / "analysis"


def test_all_lists_exactly_the_public_names() -> None:
    public = {
        name
        for name, value in vars(analysis).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType) and name != "annotations"
    }
    assert sorted(analysis.__all__) == sorted(public)
    assert len(set(analysis.__all__)) == len(analysis.__all__)
    # the package's modules are private by name; their public names are for each other
    assert all(p.name.startswith("_") for p in PACKAGE.glob("*.py"))


def _imports(path: Path) -> list[tuple[str, str]]:
    """(module, name) for every ``from X import name`` in a file, relative modules resolved in the package."""
    out: list[tuple[str, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level and PACKAGE in path.parents:
                module = "capture.analysis." + module if module else "capture.analysis"
            elif node.level:
                module = "." + module  # a relative import outside the package cannot reach it
            out.extend((module, alias.name) for alias in node.names)
        elif isinstance(node, ast.Import):
            out.extend((alias.name, "") for alias in node.names)
    return out


def test_no_private_name_crosses_a_module() -> None:
    crossing = [
        (path.name, module, name)
        for path in PACKAGE.glob("*.py")
        for module, name in _imports(path)
        if module.startswith("capture.analysis") and name.startswith("_")
    ]
    assert crossing == []


def test_callers_use_only_the_public_face() -> None:
    reaching_in = [
        (str(path.relative_to(REPO)), module, name)
        for top in ("capture", "tests", "bench", "devhost", "emulator", "function_app.py")
        for path in ([REPO / top] if top.endswith(".py") else (REPO / top).rglob("*.py"))
        if PACKAGE not in path.parents
        for module, name in _imports(path)
        if module.startswith("capture.analysis.") or (module == "capture.analysis" and name.startswith("_"))
    ]
    assert reaching_in == []
