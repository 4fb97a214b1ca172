"""Reading the Bicep template (infra/) with pycep-parser, and what the app reads, for the infra tests.

pycep-parser is a syntax parser: it gives each file's parameters, variables, resources, modules and outputs
as nested dicts (expressions as {"function": ...} / {"operator": ...} trees, references as bare names).
No type or api-version checking happens here; `azd up` compiles the template with the real Bicep.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from pycep import BicepParser

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
ROLES_FILE = INFRA / "app" / "roles.json"


def bicep_files() -> list[Path]:
    return sorted(INFRA.rglob("*.bicep"))


@functools.cache
def parse(path: Path) -> dict[str, Any]:
    """The pycep tree of one file (raises lark's UnexpectedInput with line and column on a syntax error)."""
    tree: Any = BicepParser().parse(file_path=path)  # a TypedDict; the tests walk it as plain dicts
    assert isinstance(tree, dict)
    return tree


def main() -> dict[str, Any]:
    return parse(INFRA / "main.bicep")


def module_file(name: str) -> dict[str, Any]:
    return parse(INFRA / "app" / f"{name}.bicep")


def roles() -> dict[str, Any]:
    """infra/app/roles.json: the custom roles, keyed by the kind of scope each is assigned at."""
    data: dict[str, Any] = json.loads(ROLES_FILE.read_text())
    return {key: value for key, value in data.items() if not key.startswith("$")}


def object_keys(expression: Any, variables: dict[str, Any], params: dict[str, Any] | None = None) -> set[str]:
    """Keys of the objects an expression can produce: object literals, the variables (and, through
    `params`, the module parameters) it references, and both branches of `?:` and every `union()` argument."""
    params = params or {}
    if isinstance(expression, str):
        if expression in variables:
            return object_keys(variables[expression]["value"], variables, params)
        if expression in params:
            return object_keys(params[expression], variables, params)
        return set()
    if isinstance(expression, list):
        return set()
    if isinstance(expression, dict):
        if "function" in expression:
            function = expression["function"]
            keys: set[str] = set()
            for argument in (function.get("parameters") or {}).values():
                keys |= object_keys(argument, variables, params)
            return keys
        if "operator" in expression:
            operator = expression["operator"]
            if operator["type"] != "conditional":
                return set()
            operands = operator["operands"]
            return object_keys(operands["true_value"], variables, params) | object_keys(
                operands["false_value"], variables, params
            )
        return set(expression)
    return set()


def app_setting_names() -> frozenset[str]:
    """Every app setting the app reads: the ONE place the infra tests learn it from the code."""
    from capture.settings import setting_names

    return frozenset(setting_names())


def module_body(module: dict[str, Any]) -> dict[str, Any]:
    """A module's {name, scope, params}, whether plain, conditional (`if`) or a loop (`for`)."""
    config: dict[str, Any] = module["config"]
    while "params" not in config and isinstance(config.get("config"), dict):
        config = config["config"]
    return config


def reference(expression: Any) -> str | None:
    """'name.id' for a `name.id` property access (pycep nests accessors), else None."""
    if isinstance(expression, dict) and "operator" in expression:
        operator = expression["operator"]
        if operator["type"] == "property_accessor":
            first = operator["operands"]["operand_1"]
            rest = reference(operator["operands"]["operand_2"])
            if isinstance(first, str) and rest:
                return f"{first}.{rest}"
    if isinstance(expression, str):
        return expression
    return None
