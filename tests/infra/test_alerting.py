"""The action group calls the webhook function as the app defines it: route, route prefix, auth level."""

from __future__ import annotations

import json
from typing import Any

from tests.infra.bicep import ROOT, main, module_body, module_file, reference

WEBHOOK = "alert_webhook"


def http_trigger(functions: dict[str, Any], name: str) -> dict[str, Any]:
    for raw in functions[name].get_raw_bindings():
        binding: dict[str, Any] = json.loads(raw)
        if binding["type"] == "httpTrigger":
            return binding
    raise AssertionError(f"{name} has no HTTP trigger")


def route_prefix() -> str:
    host = json.loads((ROOT / "host.json").read_text())
    return str(host.get("extensions", {}).get("http", {}).get("routePrefix", "api"))


def receiver() -> dict[str, Any]:
    alerting = module_file("alerting")
    [webhook] = alerting["resources"]["actionGroup"]["config"]["properties"]["webhookReceivers"]
    assert isinstance(webhook, dict)
    return webhook


def test_action_group_route_is_the_webhook_functions(functions):
    binding = http_trigger(functions, WEBHOOK)
    assert "POST" in binding["methods"]
    variables = module_file("function")["variables"]
    assert variables["routePrefix"]["value"] == route_prefix()
    assert variables["webhookRoute"]["value"] == binding["route"]
    outputs = module_file("function")["outputs"]
    assert outputs["webhookRoute"]["value"] == "${routePrefix}/${webhookRoute}"
    assert outputs["webhookUrl"]["value"].endswith("/${routePrefix}/${webhookRoute}")
    # main.bicep hands that route to the action group, which calls exactly it
    params = module_body(main()["modules"]["alerting"])["params"]
    assert reference(params["webhookRoute"]) == "functionApp.outputs.webhookRoute"
    assert receiver()["serviceUri"].startswith("https://${site.properties.defaultHostName}/${webhookRoute}")


def test_action_group_authenticates_as_the_function_requires(functions):
    auth = http_trigger(functions, WEBHOOK)["authLevel"].upper()
    uri = receiver()["serviceUri"]
    key = module_file("alerting")["variables"]["webhookKey"]["value"]
    if auth == "ANONYMOUS":
        assert "?code=" not in uri, "an anonymous function needs no key in the action group"
        return
    # FUNCTION (or ADMIN): the call carries a key the host accepts for it
    assert uri.endswith("?code=${webhookKey}")
    listing = key["operator"]["operands"]["operand_1"]["function"]["parameters"]
    assert listing["func_name"] == "listKeys"
    assert listing["resource_identifier"] == "${site.id}/host/default"
    assert reference(key["operator"]["operands"]["operand_2"]) == (
        "functionKeys.default" if auth == "FUNCTION" else "masterKey"
    )


def test_action_group_uses_the_common_alert_schema_and_optional_secure_webhook():
    webhook = receiver()
    assert webhook["useCommonAlertSchema"] is True
    assert webhook["useAadAuth"] == "secureWebhook"
    assert webhook["identifierUri"]["operator"]["operands"]["true_value"] == "webhookAppIdentifierUri"
    auth = module_file("function")["modules"]["authentication"]
    assert auth["config"]["condition"] == "secureWebhook"
    easy_auth = module_file("easy-auth")["resources"]["authentication"]["config"]
    assert easy_auth["name"] == "authsettingsV2"
    aad = easy_auth["properties"]["identityProviders"]["azureActiveDirectory"]
    assert aad["validation"]["defaultAuthorizationPolicy"]["allowedApplications"] == "allowedApplications"
    assert easy_auth["properties"]["globalValidation"]["requireAuthentication"] is True
    # the Azure Monitor webhook application comes first in the allowed applications
    allowed = module_body(main()["modules"]["functionApp"])["params"]["allowedApplications"]
    assert allowed["function"]["parameters"]["arg_1"] == ["azureMonitorWebhookAppId"]
    assert main()["variables"]["azureMonitorWebhookAppId"]["value"] == "461e8683-5575-4561-ac7f-899cc907d62a"
