"""Every Bicep file parses (syntax only: pycep-parser; `azd up` compiles it with the real Bicep)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.infra.bicep import INFRA, bicep_files, main, module_body, parse


def test_the_template_has_its_files():
    names = {path.relative_to(INFRA).as_posix() for path in bicep_files()}
    assert {"main.bicep", "app/function.bicep", "app/alerting.bicep", "app/capture-storage.bicep"} <= names


@pytest.mark.parametrize("path", bicep_files(), ids=lambda p: p.relative_to(INFRA).as_posix())
def test_bicep_file_parses(path: Path):
    tree = parse(path)
    assert tree.get("resources") or tree.get("modules"), f"{path.name} declares nothing"


def test_every_module_path_exists():
    for parent in bicep_files():
        for name, module in parse(parent).get("modules", {}).items():
            target = parent.parent / module["detail"]["path"]
            assert target.is_file(), f"{parent.name}: module {name} points at missing {target}"
            assert module_body(module)["name"], f"{parent.name}: module {name} has no deployment name"


def test_main_is_subscription_scoped_like_the_azd_quickstarts():
    assert main()["globals"]["scope"]["value"] == "subscription"


def test_azd_parameter_file_names_only_parameters_of_main():
    import json

    mapped = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    declared = main()["parameters"]
    unknown = set(mapped) - set(declared)
    assert not unknown, f"main.parameters.json sets parameters main.bicep does not declare: {sorted(unknown)}"
    required = {name for name, param in declared.items() if param.get("default") is None}
    assert required <= set(mapped), f"azd cannot fill required parameters: {sorted(required - set(mapped))}"


def test_azure_yaml_deploys_this_folder_as_a_python_function():
    text = (INFRA.parent / "azure.yaml").read_text()
    for line in ("project: .", "language: python", "host: function"):
        assert line in text
