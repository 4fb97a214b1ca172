"""The app as the Functions worker sees it, and every webhook branch decided before any Azure call."""

from __future__ import annotations

import inspect
import json
import typing
from pathlib import Path

import azure.functions as func
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import function_app
from tests.conftest import SUB, VM_WEB_1, payload, request


def test_one_function_app_with_the_documented_functions(functions):
    registers = [v for v in vars(function_app).values() if isinstance(v, func.FunctionRegister)]
    assert len(registers) == 1
    assert set(functions) == {
        "alert_webhook",
        "list_captures",
        "get_capture",
        "capture_monitor",
        "capture_report",
        "capture_report_poison",
    }
    webhook = functions["alert_webhook"].get_trigger()
    assert (webhook.route, webhook.methods, webhook.auth_level) == (
        "alerts",
        [func.HttpMethod.POST],
        func.AuthLevel.FUNCTION,
    )
    assert functions["list_captures"].get_trigger().route == "captures"
    assert functions["get_capture"].get_trigger().route == "captures/{name}"
    for name in ("list_captures", "get_capture"):
        trigger = functions[name].get_trigger()
        assert (trigger.methods, trigger.auth_level) == ([func.HttpMethod.GET], func.AuthLevel.FUNCTION)
    assert functions["capture_monitor"].get_trigger().schedule == "0 * * * * *"
    report, poison = (functions[n].get_trigger() for n in ("capture_report", "capture_report_poison"))
    assert (report.queue_name, report.connection) == ("capture-reports", "CaptureQueue")
    assert (poison.queue_name, poison.connection) == ("capture-reports-poison", "CaptureQueue")


def test_host_json_queue_settings_match_what_the_app_assumes():
    """The poison report names host.json's maxDequeueCount; the timeout covers the largest capture."""
    from capture.http import MAX_DEQUEUE_COUNT

    host = json.loads((Path(function_app.__file__).parent / "host.json").read_text())
    queues = host["extensions"]["queues"]
    assert queues["maxDequeueCount"] == MAX_DEQUEUE_COUNT
    assert queues["messageEncoding"] == "base64"  # the app sends base64, as the host expects by default
    assert host["functionTimeout"] == "00:10:00"


def test_bindings_match_parameters_as_the_worker_checks(functions):
    for function in functions.values():
        user = function.get_user_function()
        params = set(inspect.signature(user).parameters) - {"context"}
        bindings = {json.loads(raw)["name"] for raw in function.get_raw_bindings()} - {"$return"}
        assert params == bindings, function.get_function_name()
        hints = typing.get_type_hints(user)
        trigger = function.get_trigger()
        if function.is_http_function():
            assert issubclass(hints[trigger.name], func.HttpRequest)
            assert issubclass(hints["return"], func.HttpResponse)
        elif trigger.get_binding_name() == "queueTrigger":
            assert issubclass(hints[trigger.name], func.QueueMessage)
        else:
            assert issubclass(hints[trigger.name], func.TimerRequest)


def test_resolved_alert_is_ignored_with_the_reason(call, app_env):
    status, body, _ = call("alert_webhook", request(body=payload("ms-common-metric-static-resolved-vm.json")))
    assert status == 200
    assert body["status"] == "ignored"
    assert body["results"] and all(r["outcome"] == "ignored" for r in body["results"])
    assert "Resolved" in body["results"][0]["reason"]


@pytest.mark.parametrize(
    "name", ["ms-testaction-common-budget.json", "ms-testaction-common-servicehealth.json"]
)
def test_alerts_that_never_target_a_vm_are_ignored(call, app_env, name):
    status, body, _ = call("alert_webhook", request(body=payload(name)))
    assert (status, body["status"]) == (200, "ignored")
    assert body["results"][0]["target"] is None


def test_non_vm_target_is_ignored_and_says_what_it_is(call, app_env):
    target = f"/subscriptions/{SUB}/resourceGroups/rg-app/providers/Microsoft.Storage/storageAccounts/st1"
    status, body, _ = call("alert_webhook", request(body={"targets": [target], "reason": "test"}))
    assert (status, body["status"]) == (200, "ignored")
    assert "Microsoft.Storage/storageAccounts" in body["results"][0]["reason"]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"not json", "JSON"),
        (b"\xff\xfe\x00", ""),
        (b"[1, 2]", ""),
        (b'{"hello": "world"}', ""),
        (b" " * (1024 * 1024 + 1), "MiB"),
        (
            json.dumps(
                {
                    "targets": [
                        "/subscriptions/x/resourceGroups/../providers/Microsoft.Compute/virtualMachines/v"
                    ]
                }
            ).encode(),
            "..",
        ),
        (
            json.dumps({"targets": [VM_WEB_1], "capture": {"timeLimitSeconds": 999999}}).encode(),
            "timeLimitSeconds",
        ),
        (json.dumps({"targets": [VM_WEB_1], "capture": {"speed": "fast"}}).encode(), "speed"),
    ],
)
def test_bad_input_is_rejected_with_400_and_says_why(call, app_env, body, fragment):
    status, answer, _ = call("alert_webhook", request(body=body))
    assert status == 400
    assert answer["status"] == "rejected"
    assert answer["error"]["message"]
    assert fragment in json.dumps(answer["error"])
    assert "location" in answer["error"]


def test_target_outside_allowed_scopes_is_forbidden_without_azure(call, app_env):
    app_env(
        CAPTURE_ALLOWED_SCOPES="/subscriptions/11111111-1111-1111-1111-111111111111",
        ARM_ENDPOINT="https://127.0.0.1:9",
    )  # nothing listens: any ARM call would fail
    status, body, _ = call("alert_webhook", request(body={"targets": [VM_WEB_1], "reason": "manual"}))
    assert (status, body["status"]) == (403, "forbidden")
    assert body["results"][0]["outcome"] == "forbidden"


def test_invalid_settings_answer_json_without_internals(call, app_env):
    app_env(CAPTURE_TIME_LIMIT_SECONDS="forever")
    status, body, _ = call("alert_webhook", request(body={"targets": [VM_WEB_1]}))
    assert status == 500
    assert body["status"] == "misconfigured"
    assert "CAPTURE_TIME_LIMIT_SECONDS" in body["error"]["message"]


def test_function_key_never_appears_in_logs_or_answers(call, app_env, caplog):
    caplog.set_level("DEBUG")
    _, body, _ = call("alert_webhook", request(body=b"{", params={"code": "s3cr3t-key-value"}))
    assert "s3cr3t" not in json.dumps(body)
    assert "s3cr3t" not in caplog.text


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.one_of(
        st.binary(max_size=300),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
            lambda children: (
                st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
            ),
            max_leaves=20,
        ).map(lambda v: json.dumps(v).encode()),
    )
)
def test_no_input_produces_a_500(call, app_env, body):
    app_env(ARM_ENDPOINT="https://127.0.0.1:9", CAPTURE_WEBHOOK_BUDGET_SECONDS="0.5")
    status, answer, _ = call("alert_webhook", request(body=body))
    assert status in {200, 202, 400, 403, 502, 503}
    assert answer["status"] in {"ignored", "rejected", "forbidden", "failed", "unavailable", "duplicate"}


def test_invalid_settings_are_reported_when_the_app_loads():
    import os
    import subprocess
    import sys

    env = {
        **os.environ,
        "CAPTURE_STORAGE_ACCOUNT_ID": "",
        "CAPTURE_LOCAL_PATH": "",
        "CAPTURE_MAX_SESSIONS": "lots",
    }
    loaded = subprocess.run(
        [sys.executable, "-c", "import logging; logging.basicConfig(); import function_app"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "app settings are invalid" in loaded.stderr
    assert "CAPTURE_MAX_SESSIONS" in loaded.stderr
