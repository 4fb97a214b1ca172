"""The template's app settings against the app: nothing it sets goes unread, nothing the app reads is
missing, the defaults pass the app's own validation, and each parameter's bounds are ones the app accepts."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any
from unittest import mock

import pytest

from capture.naming import CONTAINER
from capture.settings import Settings, SettingsError, load_settings
from tests.conftest import STORAGE_ID, SUB
from tests.infra.bicep import (
    INFRA,
    app_setting_names,
    bicep_files,
    main,
    module_body,
    module_file,
    object_keys,
    parse,
)

# Settings the template sets that the app's settings module does not read, each with its reader.
PLATFORM_SETTINGS = {
    # the Functions host: identity-based AzureWebJobsStorage (shared keys are off)
    "AzureWebJobsStorage__credential",
    "AzureWebJobsStorage__blobServiceUri",
    "AzureWebJobsStorage__queueServiceUri",
    "AzureWebJobsStorage__clientId",  # user-assigned identity only
    # the Functions host: telemetry to Application Insights with Entra ID (local auth off)
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
    # the Functions host: identity-based connection `CaptureQueue` of the queue-triggered follow-through
    "CaptureQueue__credential",
    "CaptureQueue__queueServiceUri",
    "CaptureQueue__clientId",  # user-assigned identity only
    # azure-identity's DefaultAzureCredential: which user-assigned identity to use
    "AZURE_CLIENT_ID",
}
PLATFORM_PREFIXES = ("FUNCTIONS_", "AzureWebJobsStorage__", "APPLICATIONINSIGHTS_", "CaptureQueue__")

# Values that only exist after deployment, as the deployed app would see them.
DEPLOYED_VALUES = {
    "CAPTURE_STORAGE_ACCOUNT_ID": STORAGE_ID,
    "CAPTURE_BLOB_ENDPOINT": "https://stcaptures.blob.core.windows.net/",
    "ARM_ENDPOINT": "https://management.azure.com/",
    "CAPTURE_ALLOWED_SCOPES": f"/subscriptions/{SUB}",
    "CAPTURE_QUEUE_NAME": "capture-reports",  # captureQueueNames[0]
}


def capture_settings_expression() -> Any:
    """main.bicep's expression passed as the function module's `appSettings`."""
    return module_body(main()["modules"]["functionApp"])["params"]["appSettings"]


def template_settings() -> dict[str, set[str]]:
    """Every app setting name the template can set: {"app": main.bicep's, "platform": function.bicep's}."""
    function = module_file("function")
    properties = function["resources"]["settings"]["config"]["properties"]
    assert properties["function"]["type"] == "union", "appsettings must be a union of named objects"
    arguments = list(properties["function"]["parameters"].values())
    assert "appSettings" in arguments, "function.bicep must pass the app's settings through"
    platform: set[str] = set()
    for argument in arguments:
        if argument != "appSettings":
            platform |= object_keys(argument, function["variables"])
    app = object_keys(capture_settings_expression(), main()["variables"])
    return {"app": app, "platform": platform}


def settings_expressions() -> dict[str, Any]:
    expression = capture_settings_expression()
    assert isinstance(expression, str)
    value: dict[str, Any] = main()["variables"][expression]["value"]
    return value


def parameter_of(expression: Any) -> str | None:
    """The main.bicep parameter a setting's value comes from: `p`, `string(p)` or `p ? 'true' : 'false'`."""
    params = main()["parameters"]
    if isinstance(expression, str) and expression in params:
        return expression
    if isinstance(expression, dict) and "function" in expression:
        args = list((expression["function"].get("parameters") or {}).values())
        if expression["function"]["type"] == "string" and len(args) == 1 and args[0] in params:
            return str(args[0])
    if isinstance(expression, dict) and "operator" in expression:
        operands = expression["operator"]["operands"]
        if expression["operator"]["type"] == "conditional" and operands.get("condition") in params:
            return str(operands["condition"])
    return None


def default_env() -> dict[str, str]:
    """The app settings a deployment with every parameter at its default produces."""
    params = main()["parameters"]
    env = {}
    for name, expression in settings_expressions().items():
        param = parameter_of(expression)
        if param is None:
            assert name in DEPLOYED_VALUES, f"{name}: set from {expression!r}; add its deployed value"
            env[name] = DEPLOYED_VALUES[name]
            continue
        default = params[param]["default"]
        if isinstance(default, bool):
            env[name] = "true" if default else "false"
        elif isinstance(default, list):
            env[name] = "[]" if not default else repr(default)
        else:
            env[name] = str(default)
    return env


def test_every_setting_the_app_reads_is_set_from_the_template():
    settings = template_settings()
    # AZURE_CLIENT_ID is read by azure-identity and set beside the platform's identity settings.
    missing = app_setting_names() - settings["app"] - settings["platform"]
    assert not missing, (
        f"the app reads these settings but infra/main.bicep does not set them: {sorted(missing)}"
    )


def test_every_setting_the_template_sets_is_read_by_the_app_or_the_platform():
    settings = template_settings()
    unread = settings["app"] - app_setting_names()
    assert not unread, f"infra/main.bicep sets settings the app never reads: {sorted(unread)}"
    for name in settings["platform"]:
        assert name in PLATFORM_SETTINGS, f"function.bicep sets {name}, not in the commented allow-list"
        assert name.startswith(PLATFORM_PREFIXES) or name == "AZURE_CLIENT_ID"


def settings_from_env(env: Mapping[str, str]) -> Settings:
    """The app's own settings loader, reading exactly `env` (what the template would set)."""
    with mock.patch.dict(os.environ, env, clear=True):
        return load_settings()


def test_the_allow_list_is_not_a_blanket():
    assert template_settings()["platform"] == PLATFORM_SETTINGS, (
        "allow-list entries the template no longer sets"
    )


def test_defaults_pass_the_apps_own_validation():
    settings = settings_from_env(default_env())
    assert settings.storage_account_id == STORAGE_ID
    assert settings.allowed_scopes and settings.arm_endpoint == "https://management.azure.com"


def test_without_the_capture_account_the_app_refuses_to_start():
    env = {**default_env(), "CAPTURE_STORAGE_ACCOUNT_ID": ""}
    with pytest.raises(SettingsError, match="CAPTURE_STORAGE_ACCOUNT_ID"):
        settings_from_env(env)


def bounded_settings() -> list[tuple[str, str, int | None, int | None]]:
    bounds = []
    params = main()["parameters"]
    for name, expression in settings_expressions().items():
        param = parameter_of(expression)
        if param is None or params[param]["type"] != "int":
            continue
        decorators = {d["type"]: d["argument"] for d in params[param]["decorators"]}
        bounds.append((name, param, decorators.get("min_value"), decorators.get("max_value")))
    return bounds


def test_every_numeric_setting_has_bounds():
    bounds = bounded_settings()
    assert len(bounds) >= 7  # time limit, its maximum, sessions, bytes per packet and session, budget, grace
    for name, param, low, high in bounds:
        assert low is not None and high is not None, f"{param} ({name}) needs @minValue and @maxValue"


@pytest.mark.parametrize(("name", "param", "low", "high"), bounded_settings(), ids=lambda v: str(v))
def test_parameter_bounds_are_accepted_by_the_app(name, param, low, high):
    base = {**default_env(), "CAPTURE_TIME_LIMIT_SECONDS": "1"}  # CAPTURE_MAX_TIME_LIMIT must be >= it
    for value in (low, high):
        try:
            settings_from_env({**base, name: str(value)})
        except SettingsError as exc:
            pytest.fail(f"@{param} allows {value}, which the app rejects: {exc}")


def test_choices_and_lengths_match_the_app():
    params = main()["parameters"]
    notify = {d["type"]: d["argument"] for d in params["captureNotifyFormat"]["decorators"]}
    for choice in notify["allowed"]:
        settings_from_env({**default_env(), "CAPTURE_NOTIFY_FORMAT": choice})
    prefix = {d["type"]: d["argument"] for d in params["captureNamePrefix"]["decorators"]}
    settings_from_env({**default_env(), "CAPTURE_NAME_PREFIX": "a" * prefix["max_length"]})
    with pytest.raises(SettingsError):
        settings_from_env({**default_env(), "CAPTURE_NAME_PREFIX": "a" * (prefix["max_length"] + 1)})


def test_notify_url_is_a_secure_parameter_and_no_output_carries_a_secret():
    decorators = [d["type"] for d in main()["parameters"]["captureNotifyUrl"]["decorators"]]
    assert "secure" in decorators
    for path in bicep_files():
        for name, output in parse(path).get("outputs", {}).items():
            text = json.dumps(output)
            for secret in (
                "captureNotifyUrl",
                "listKeys",
                "webhookKey",
                "connectionString",
                "ConnectionString",
            ):
                assert secret not in text, f"{path.name}: output {name} exposes {secret}"


def test_capture_container_and_lifecycle_rule_use_the_apps_container():
    capture = module_file("capture-storage")
    assert capture["variables"]["containerName"]["value"] == CONTAINER
    text = (INFRA / "app" / "capture-storage.bicep").read_text()
    assert "prefixMatch: ['${containerName}/']" in text
    assert "daysAfterModificationGreaterThan: retentionDays" in text
