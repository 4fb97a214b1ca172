"""The package's public face (the httpx way): `capture.__all__` is what others may use, every module says
what it exports, and no module reaches into another's private names."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import capture

PACKAGE = Path(capture.__file__).parent


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py" or p.parent != PACKAGE)


def test_the_package_exports_exactly_its_public_names():
    public = {name for name in vars(capture) if not name.startswith("_")}
    modules = {name for name, value in vars(capture).items() if type(value) is type(capture)}
    assert public - modules == set(capture.__all__)
    for name in capture.__all__:
        assert getattr(capture, name).__module__.startswith("capture.")


def test_a_new_process_state_is_one_reset_away(monkeypatch):
    monkeypatch.setenv("CAPTURE_STORAGE_ACCOUNT_ID", "")
    monkeypatch.setenv("CAPTURE_LOCAL_PATH", "/var/captures")
    capture.reset()
    first = capture.app_context()
    assert capture.app_context() is first
    assert first.orchestrator.reservations is first.reservations
    assert first.monitor.arm is first.orchestrator.arm is first.arm
    monkeypatch.setenv("CAPTURE_TIME_LIMIT_SECONDS", "120")
    capture.reset()
    assert capture.app_context() is not first
    assert capture.app_context().settings.time_limit_seconds == 120
    capture.reset()


def test_modules_import_only_public_names_that_their_source_exports():
    problems = []
    # capture/analysis's modules import each other's internals until issue 11 item 5 gives it an internal API.
    for path in (p for p in _modules() if p.parent == PACKAGE):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom) or not (node.module or "").startswith("capture"):
                continue
            source = importlib.import_module(str(node.module))
            # capture.analysis is getting its own public face (issue 11, item 5): until then only its
            # private names are checked.
            exported = set(getattr(source, "__all__", ()))
            lenient = node.module == "capture.analysis"
            for alias in node.names:
                if alias.name.startswith("_") or (alias.name not in exported and not lenient):
                    problems.append(f"{path.relative_to(PACKAGE.parent)}: {alias.name} from {node.module}")
    assert problems == []


def test_every_module_declares_its_exports():
    for path in _modules():
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
        module = importlib.import_module(name)
        if path.parent != PACKAGE:
            continue  # capture.analysis has one public face, its __init__
        assert hasattr(module, "__all__"), name
        assert all(hasattr(module, item) for item in module.__all__), name
