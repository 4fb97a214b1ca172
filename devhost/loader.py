"""Loading a v2-model app the way the Functions host and the Python worker do.

* ``host.json`` (``extensions.http.routePrefix``, default ``api``);
* ``local.settings.json`` ``Values`` copied into the environment without overriding variables that
  are already set, like ``func start``;
* the script (``function_app.py`` or the ``PYTHON_SCRIPT_FILE_NAME`` setting) imported with the app
  folder on ``sys.path``; exactly one top-level :class:`azure.functions.FunctionRegister`, as the
  worker's indexer requires; ``get_functions()`` called once (it is not idempotent).
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from collections.abc import Callable, Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import azure.functions as func
from azure.functions.decorators.function_app import Function

__all__ = [
    "AppLoadError",
    "LoadedApp",
    "load_app",
    "load_host_json",
    "load_local_settings",
    "local_http_port",
    "route_prefix",
]

DEFAULT_ROUTE_PREFIX = "api"
DEFAULT_SCRIPT = "function_app.py"


class AppLoadError(RuntimeError):
    """The app cannot be indexed (the host would refuse to start it)."""


@dataclass
class LoadedApp:
    """What indexing produced: the functions (from the single ``get_functions()`` call) and config."""

    app_dir: Path
    script: Path
    module: ModuleType
    app: func.FunctionRegister
    functions: list[Function]
    host_json: dict[str, Any] = field(default_factory=dict)


def load_host_json(app_dir: Path) -> dict[str, Any]:
    """The parsed ``host.json`` (``{}`` when the file does not exist)."""
    path = app_dir / "host.json"
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError) as exc:
        raise AppLoadError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise AppLoadError(f"{path} must hold a JSON object")
    return data


def route_prefix(host_json: dict[str, Any]) -> str:
    """``extensions.http.routePrefix`` (``""`` allowed), default ``api``; without slashes."""
    http = (host_json.get("extensions") or {}).get("http") or {}
    prefix = http.get("routePrefix", DEFAULT_ROUTE_PREFIX) if isinstance(http, dict) else DEFAULT_ROUTE_PREFIX
    if not isinstance(prefix, str):
        raise AppLoadError("host.json extensions.http.routePrefix must be a string")
    return prefix.strip().strip("/")


def _setting_text(name: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise AppLoadError(f"local.settings.json Values.{name} must be a string, got {type(value).__name__}")


def load_local_settings(app_dir: Path, environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Copy ``local.settings.json`` ``Values`` into ``environ`` (default ``os.environ``).

    Variables already set win, as with ``func start``. Returns the settings actually applied.
    """
    env = os.environ if environ is None else environ
    path = app_dir / "local.settings.json"
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError) as exc:
        raise AppLoadError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise AppLoadError(f"{path} must hold a JSON object")
    if data.get("IsEncrypted"):
        raise AppLoadError(f"{path} is encrypted (IsEncrypted: true); decrypt it with Core Tools first")
    values = data.get("Values") or {}
    if not isinstance(values, dict):
        raise AppLoadError(f"{path}: Values must be an object")
    applied: dict[str, str] = {}
    for name, value in values.items():
        if value is None or name in env:
            continue
        env[name] = applied[name] = _setting_text(name, value)
    return applied


def local_http_port(app_dir: Path) -> int | None:
    """``Host.LocalHttpPort`` from ``local.settings.json`` (the port ``func start`` would use)."""
    path = app_dir / "local.settings.json"
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError) as exc:
        raise AppLoadError(f"cannot read {path}: {exc}") from exc
    port = (data.get("Host") or {}).get("LocalHttpPort") if isinstance(data, dict) else None
    if port is None:
        return None
    try:
        return int(port)
    except (TypeError, ValueError) as exc:
        raise AppLoadError(f"{path}: Host.LocalHttpPort must be a port number") from exc


@contextmanager
def _module_registered(name: str, module: ModuleType) -> Iterator[None]:
    """Register ``module`` under ``name`` while it executes, then restore what was there.

    Each load executes a fresh module object, so an app that a test suite already imported (and
    called ``get_functions()`` on) is not touched, and no ``function_app`` leaks to later imports.
    """
    missing = object()
    previous = sys.modules.get(name, missing)
    sys.modules[name] = module
    try:
        yield
    finally:
        if previous is missing:
            sys.modules.pop(name, None)
        else:
            sys.modules[name] = previous  # type: ignore[assignment]


def _import_script(script: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(script.stem, script)
    if spec is None or spec.loader is None:
        raise AppLoadError(f"cannot import {script}")
    module = importlib.util.module_from_spec(spec)
    with _module_registered(script.stem, module):
        spec.loader.exec_module(module)
    return module


def _find_app(module: ModuleType, script: Path) -> func.FunctionRegister:
    # Mirrors the worker's index_function_app: every top-level name counts, aliases included.
    found: func.FunctionRegister | None = None
    for attr in dir(module):
        value = getattr(module, attr, None)
        if isinstance(value, func.FunctionRegister):
            if found is not None:
                raise AppLoadError(
                    f"More than one {type(found).__name__} or other top level function app instances "
                    f"are defined in {script.name}."
                )
            found = value
    if found is None:
        raise AppLoadError(f"Could not find top level function app instances in {script.name}.")
    return found


def load_app(app_dir: Path, *, script_name: str | None = None) -> LoadedApp:
    """Import the app's script and index it: ``get_functions()`` is called exactly once here.

    The app folder must already be on ``sys.path`` (the caller manages it).
    """
    name = script_name or os.environ.get("PYTHON_SCRIPT_FILE_NAME") or DEFAULT_SCRIPT
    script = app_dir / name
    if not script.is_file():
        raise AppLoadError(f"{script} not found: is {app_dir} a Functions app folder?")
    host_json = load_host_json(app_dir)
    module = _import_script(script)
    app = _find_app(module, script)
    get_functions: Callable[[], list[Function]] = app.get_functions
    functions = get_functions()
    return LoadedApp(
        app_dir=app_dir, script=script, module=module, app=app, functions=functions, host_json=host_json
    )
