"""The real function_app.py served by devhost, over HTTP (settings from the test, no Azure call)."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator

import pytest

import capture
from devhost import LocalHost
from tests.devhost.devhost_support import REPO_ROOT, call

KEY = "real-app-key-3e9d"
STORAGE_ID = (
    "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-capture"
    "/providers/Microsoft.Storage/storageAccounts/stcaptures"
)


@pytest.fixture(scope="module")
def host() -> Iterator[LocalHost]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CAPTURE_STORAGE_ACCOUNT_ID", STORAGE_ID)
        mp.setenv("ARM_ENDPOINT", "https://127.0.0.1:9")  # nothing listens: no request may reach Azure
        capture.reset()
        try:
            # local.settings.json is a developer's file: tests must not depend on it.
            with LocalHost(REPO_ROOT, key=KEY, load_settings=False) as running:
                yield running
        finally:
            capture.reset()


def test_the_documented_functions_are_served(host: LocalHost) -> None:
    info = {f.name: f for f in host.functions}
    assert set(info) == {
        "alert_webhook",
        "list_captures",
        "get_capture",
        "capture_monitor",
        "capture_report",
        "capture_report_poison",
    }
    assert (info["alert_webhook"].route, info["alert_webhook"].methods) == ("/api/alerts", ("POST",))
    assert info["list_captures"].route == "/api/captures"
    assert info["get_capture"].route == "/api/captures/{name}"
    assert {info[n].auth_level for n in ("alert_webhook", "list_captures", "get_capture")} == {"function"}
    assert info["capture_monitor"].trigger == "timerTrigger"
    assert info["capture_monitor"].problem is None
    assert info["capture_report"].trigger == "queueTrigger"


def test_unknown_path_is_404(host: LocalHost) -> None:
    assert call(host.url, f"/api/nothing-here?code={KEY}").status == 404
    assert call(host.url, "/alerts").status == 404


def test_wrong_method_is_405(host: LocalHost) -> None:
    assert call(host.url, f"/api/alerts?code={KEY}").status == 405
    assert call(host.url, f"/api/captures?code={KEY}", "POST", body=b"{}").status == 405


def test_missing_or_wrong_key_is_401(host: LocalHost) -> None:
    assert call(host.url, "/api/alerts", "POST", body=b"{}").status == 401
    assert call(host.url, "/api/alerts?code=nope", "POST", body=b"{}").status == 401
    assert call(host.url, "/api/captures").status == 401
    assert call(host.url, "/api/captures/some-capture", headers={"x-functions-key": "nope"}).status == 401


@pytest.mark.parametrize("how", ["code", "header"])
def test_non_json_alert_is_a_400_json_answer(host: LocalHost, how: str) -> None:
    path, headers = (
        ("/api/alerts", {"x-functions-key": KEY}) if how == "header" else (f"/api/alerts?code={KEY}", {})
    )
    headers["Content-Type"] = "application/json"
    reply = call(host.url, path, "POST", body=b"this is not json", headers=headers)
    assert reply.status == 400
    assert reply.content_type == "application/json"
    answer = reply.json()
    assert answer["status"] == "rejected"
    assert answer["error"]["message"]
    assert KEY not in reply.body.decode()


def test_bad_capture_name_is_a_400_json_answer(host: LocalHost) -> None:
    reply = call(host.url, f"/api/captures/{'x' * 81}?code={KEY}")
    assert (reply.status, reply.content_type, reply.json()["status"]) == (400, "application/json", "rejected")


def test_access_line_and_rejection_line_share_the_request_id(
    host: LocalHost, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    headers = {"x-functions-key": KEY, "Content-Type": "application/json"}
    reply = call(
        host.url,
        "/api/alerts",
        "POST",
        body=b'{"targets": ["vm-1"], "reason": "SECRETBODY"}',
        headers=headers,
    )
    assert reply.status == 400
    [access] = [r.getMessage() for r in caplog.records if r.name == "devhost.http"]
    found = re.search(r"POST /api/alerts -> 400 \[alert_webhook id=([0-9a-f-]{36})\]", access)
    assert found, access
    [decision] = [json.loads(r.getMessage()) for r in caplog.records if r.name == "capture.decisions"]
    assert (decision["event"], decision["requestId"]) == ("request_rejected", found.group(1))
    assert (decision["location"], decision["status"]) == ("targets[0]", 400)
    assert "SECRETBODY" not in caplog.text
    assert KEY not in caplog.text
