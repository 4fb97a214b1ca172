"""Helpers for the devhost tests: real HTTP calls (http.client) and throw-away apps."""

from __future__ import annotations

import http.client
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

SAMPLE_APP = Path(__file__).parent / "sample_app"
REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def content_type(self) -> str | None:
        return self.headers.get("Content-Type")

    def json(self) -> Any:
        return json.loads(self.body)


def connect(base_url: str, timeout: float = 30) -> http.client.HTTPConnection:
    """A keep-alive connection to the host."""
    parts = urlsplit(base_url)
    assert parts.hostname is not None
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)


def call(
    base_url: str,
    path: str,
    method: str = "GET",
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30,
) -> Reply:
    """One request on a fresh connection."""
    conn = connect(base_url, timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return Reply(response.status, response.headers, response.read())
    finally:
        conn.close()


def write_app(
    folder: Path,
    source: str,
    *,
    host_json: dict[str, Any] | None = None,
    local_settings: dict[str, Any] | None = None,
    script: str = "function_app.py",
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / script).write_text(source, encoding="utf-8")
    if host_json is not None:
        (folder / "host.json").write_text(json.dumps(host_json), encoding="utf-8")
    if local_settings is not None:
        (folder / "local.settings.json").write_text(json.dumps(local_settings), encoding="utf-8")
    return folder


def forget_env_after_test(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    """Make the test's end remove (or restore) these variables, whoever sets them meanwhile."""
    for name in names:
        monkeypatch.setenv(name, os.environ.get(name, "placeholder"))
        monkeypatch.delenv(name)


MINIMAL_APP = """
import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="health")
def health(req: func.HttpRequest) -> str:
    return "ok"
"""
