"""Real HTTP requests against a LocalHost (port 0) serving the sample app."""

from __future__ import annotations

import logging
import re
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from devhost import LocalHost
from tests.devhost.devhost_support import SAMPLE_APP, Reply, call, connect

KEY = "test-key-5f8a2c"


@pytest.fixture(scope="module")
def host() -> Iterator[LocalHost]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SAMPLE_TICK_SCHEDULE", "0 0 0 1 1 *")
        with LocalHost(SAMPLE_APP, key=KEY, load_settings=False) as running:
            yield running


def get(host: LocalHost, path: str, method: str = "GET", **kwargs: Any) -> Reply:
    return call(host.url, path, method, **kwargs)


# -- routing ---------------------------------------------------------------------------------------


def test_route_prefix_comes_from_host_json(host: LocalHost) -> None:
    assert host.route_prefix == "sample"
    assert get(host, "/sample/health").status == 200
    assert get(host, "/api/health").status == 404


def test_route_params_are_percent_decoded_and_a_trailing_slash_is_allowed(host: LocalHost) -> None:
    assert get(host, f"/sample/echo/7?code={KEY}").json()["route"] == {"id": "7"}
    assert get(host, f"/sample/echo/7/?code={KEY}").json()["route"] == {"id": "7"}
    assert get(host, f"/sample/echo/7/a%20b?code={KEY}").json()["route"] == {"id": "7", "name": "a b"}
    assert get(host, f"/sample/echo/7/a/b?code={KEY}").status == 404


def test_literal_route_beats_a_parameter(host: LocalHost) -> None:
    assert get(host, f"/sample/items/special?code={KEY}").json() == {"function": "item_special"}
    assert get(host, f"/sample/items/42?code={KEY}").json()["route"] == {"id": "42"}


def test_default_route_is_the_function_name(host: LocalHost) -> None:
    assert get(host, f"/sample/renamed?code={KEY}").body == b"renamed"


def test_unknown_path_is_404_with_empty_body(host: LocalHost) -> None:
    reply = get(host, "/sample/no/such/thing")
    assert (reply.status, reply.body) == (404, b"")
    assert get(host, "/").status == 404


def test_wrong_method_is_405_with_allow(host: LocalHost) -> None:
    reply = get(host, f"/sample/alerts?code={KEY}")
    assert (reply.status, reply.body, reply.headers["Allow"]) == (405, b"", "POST")
    put = get(host, f"/sample/things/1?code={KEY}", "PUT", body=b"")
    assert (put.status, put.headers["Allow"]) == (405, "DELETE, GET, HEAD")


def test_same_route_different_methods_pick_the_right_function(host: LocalHost) -> None:
    assert get(host, f"/sample/things/1?code={KEY}").json() == {"function": "thing_get"}
    assert get(host, f"/sample/things/1?code={KEY}", "DELETE").json() == {"function": "thing_delete"}


def test_route_without_methods_answers_every_method(host: LocalHost) -> None:
    assert get(host, f"/sample/anymethod?code={KEY}", "PATCH", body=b"x").body == b"PATCH"
    head = get(host, f"/sample/anymethod?code={KEY}", "HEAD")
    assert (head.status, head.body, head.headers["Content-Length"]) == (200, b"", "4")


def test_method_is_checked_before_the_key(host: LocalHost) -> None:
    assert get(host, "/sample/alerts").status == 405


# -- keys ------------------------------------------------------------------------------------------


def test_missing_or_wrong_key_is_401_with_empty_body(host: LocalHost) -> None:
    for path in ("/sample/echo/1", "/sample/echo/1?code=wrong", "/sample/echo/1?code="):
        reply = get(host, path)
        assert (reply.status, reply.body) == (401, b""), path
    assert get(host, "/sample/echo/1", headers={"x-functions-key": "wrong"}).status == 401


def test_key_in_code_param_or_header(host: LocalHost) -> None:
    assert get(host, f"/sample/echo/1?code={KEY}").status == 200
    assert get(host, "/sample/echo/1", headers={"x-functions-key": KEY}).status == 200
    assert get(host, "/sample/echo/1", headers={"X-Functions-Key": KEY}).status == 200


def test_header_key_wins_over_code_param(host: LocalHost) -> None:
    assert get(host, f"/sample/echo/1?code={KEY}", headers={"x-functions-key": "wrong"}).status == 401


def test_admin_level_needs_the_key(host: LocalHost) -> None:
    assert get(host, "/sample/admin-only").status == 401
    assert get(host, f"/sample/admin-only?code={KEY}").body == b"admin"


def test_anonymous_routes_are_open(host: LocalHost) -> None:
    reply = get(host, "/sample/health")
    assert (reply.status, reply.body) == (200, b"ok")


def test_code_param_stays_in_params_like_on_azure(host: LocalHost) -> None:
    assert get(host, f"/sample/echo/1?code={KEY}").json()["params"] == {"code": KEY}


# -- request mapping -------------------------------------------------------------------------------


def test_query_params_reach_the_function(host: LocalHost) -> None:
    params = get(host, f"/sample/echo/1?code={KEY}&a=1&blank=&b=x%20y&a=2").json()["params"]
    assert params == {"code": KEY, "a": "1,2", "blank": "", "b": "x y"}


def test_headers_reach_the_function(host: LocalHost) -> None:
    headers = get(host, f"/sample/echo/1?code={KEY}", headers={"X-Test": "hello", "X-Other": "2"}).json()[
        "headers"
    ]
    assert headers["x-test"] == "hello"
    assert headers["x-other"] == "2"
    assert headers["host"] == urlsplit(host.url).netloc


def test_body_method_and_url_reach_the_function(host: LocalHost) -> None:
    seen = get(host, f"/sample/echo/9?code={KEY}&z=1", "POST", body="héllo".encode()).json()
    assert seen["method"] == "POST"
    assert seen["body"] == "héllo"
    assert seen["url"] == f"{host.url}/sample/echo/9?code={KEY}&z=1"


def test_chunked_request_body(host: LocalHost) -> None:
    conn = connect(host.url)
    try:
        conn.request("POST", f"/sample/echo/1?code={KEY}", body=iter([b"ab", b"cd"]), encode_chunked=True)
        assert conn.getresponse().read().count(b'"body": "abcd"') == 1
    finally:
        conn.close()


def test_json_body_and_non_json_body(host: LocalHost) -> None:
    ok = get(host, f"/sample/alerts?code={KEY}", "POST", body=b'{"x": 1}')
    assert (ok.status, ok.json()) == (202, {"status": "accepted", "received": {"x": 1}})
    bad = get(host, f"/sample/alerts?code={KEY}", "POST", body=b"not json")
    assert (bad.status, bad.content_type, bad.json()["status"]) == (400, "application/json", "rejected")


# -- response mapping ------------------------------------------------------------------------------


def test_http_response_json_mimetype_status_and_headers(host: LocalHost) -> None:
    reply = get(host, "/sample/respond/json")
    assert (reply.status, reply.content_type, reply.body) == (201, "application/json", b'{"a": 1}')
    assert reply.headers["X-Extra"] == "1"


def test_http_response_default_text_plain_utf8(host: LocalHost) -> None:
    reply = get(host, "/sample/respond/text")
    assert (reply.content_type, reply.body) == ("text/plain; charset=utf-8", "héllo".encode())


def test_text_mimetype_gets_the_charset(host: LocalHost) -> None:
    reply = get(host, "/sample/respond/latin1")
    assert (reply.content_type, reply.body) == ("text/html; charset=iso-8859-1", "héllo".encode("latin-1"))


def test_explicit_content_type_header_wins_over_mimetype(host: LocalHost) -> None:
    assert get(host, "/sample/respond/explicit-type").content_type == "application/problem+json"


def test_str_return_is_200_text_plain(host: LocalHost) -> None:
    reply = get(host, "/sample/respond/str")
    assert (reply.status, reply.content_type, reply.body) == (
        200,
        "text/plain; charset=utf-8",
        "plain ✓".encode(),
    )


def test_204_has_no_body(host: LocalHost) -> None:
    reply = get(host, "/sample/respond/empty")
    assert (reply.status, reply.body) == (204, b"")


def test_cookies_become_set_cookie_headers(host: LocalHost) -> None:
    reply = get(host, "/sample/respond/cookies")
    assert sorted(reply.headers.get_all("Set-Cookie") or []) == ["a=1; Path=/", "b=2; HttpOnly"]


def test_unhandled_exception_is_500_with_empty_body_and_a_local_traceback(
    host: LocalHost, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="devhost")
    reply = get(host, f"/sample/boom?code={KEY}")
    assert (reply.status, reply.body) == (500, b"")
    assert "RuntimeError: secret internal detail" in caplog.text
    assert KEY not in caplog.text  # masked even inside the exception message
    assert "GET /sample/boom -> 500" in caplog.text


@pytest.mark.parametrize("path", ["/sample/respond/dict", "/sample/respond/bad-header"])
def test_results_the_worker_or_kestrel_refuse_are_500(host: LocalHost, path: str) -> None:
    reply = get(host, path)
    assert (reply.status, reply.body) == (500, b"")


def test_async_handlers_share_one_event_loop(host: LocalHost) -> None:
    first, second = get(host, "/sample/async/a").json(), get(host, "/sample/async/b").json()
    assert (first["value"], second["value"]) == ("a", "b")
    assert first["loop"] == second["loop"]


def test_context_parameter_and_out_binding(host: LocalHost) -> None:
    assert get(host, "/sample/context").body == b"with_context 36"
    reply = get(host, "/sample/out-binding")
    assert (reply.status, reply.body) == (202, b"via Out")


# -- logging, robustness, concurrency --------------------------------------------------------------


def test_access_log_has_method_and_path_but_never_the_key(
    host: LocalHost, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="devhost")
    get(host, f"/sample/echo/1?code={KEY}&other=1")
    get(host, "/sample/echo/1", headers={"x-functions-key": KEY})
    assert re.search(r"GET /sample/echo/1 -> 200 \[echo id=[0-9a-f-]{36}\]", caplog.text)
    assert KEY not in caplog.text
    assert "code=" not in caplog.text
    assert "other=1" not in caplog.text


def test_malformed_request_is_refused_without_logging_it(
    host: LocalHost, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="devhost")
    parts = urlsplit(host.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(f"GET /sample/health?code={KEY} HTTP/1.1 extra\r\n\r\n".encode())
        answer = sock.makefile("rb").readline()
    assert answer.startswith(b"HTTP/1.1 400")
    assert KEY not in caplog.text


def test_concurrent_requests_are_served_in_parallel(host: LocalHost) -> None:
    callers = 20
    vars(host.loaded.module)["RENDEZVOUS"] = threading.Barrier(
        callers
    )  # each call returns once all 20 are in
    results: list[tuple[int, bytes]] = []
    lock = threading.Lock()

    def one() -> None:
        reply = get(host, "/sample/rendezvous")
        with lock:
            results.append((reply.status, reply.body))

    threads = [threading.Thread(target=one) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert results == [(200, b"met")] * callers


def test_keep_alive_calls_do_not_stall(host: LocalHost) -> None:
    # A header write followed by a body write would wait ~40 ms per call (Nagle + delayed ACK).
    conn = connect(host.url)
    try:
        started = time.perf_counter()
        for _ in range(50):
            conn.request("POST", f"/sample/echo/1?code={KEY}", body=b"{}")
            response = conn.getresponse()
            assert response.status == 200
            response.read()
        elapsed = time.perf_counter() - started
    finally:
        conn.close()
    assert elapsed < 1.0, f"50 keep-alive calls took {elapsed:.2f} s"


def test_function_urls_and_info(host: LocalHost) -> None:
    assert host.function_url("health") == f"{host.url}/sample/health"
    assert host.function_url("echo_named", id="7") == f"{host.url}/sample/echo/7/{{name}}?code={KEY}"
    assert host.function_url("item_by_id", with_key=False, id="a b") == f"{host.url}/sample/items/a%20b"
    info = {f.name: f for f in host.functions}
    assert (info["alerts"].methods, info["alerts"].auth_level) == (("POST",), "function")
    assert info["health"].auth_level == "anonymous"
    assert info["admin_only"].auth_level == "admin"
    assert info["tick"].schedule == "0 0 0 1 1 *"
    banner = host.banner()
    assert f"{host.url}/sample/alerts?code={KEY}" in banner
    assert f"{host.url}/sample/health\n" in banner


def raw_exchange(host: LocalHost, data: bytes, timeout: float = 5) -> bytes:
    """Send raw bytes and read the status line; the connection stays open, so a server waiting for
    more input makes this time out instead of answering."""
    parts = urlsplit(host.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as sock:
        sock.sendall(data)
        return sock.makefile("rb").readline()


def test_negative_chunk_size_is_refused_at_once(host: LocalHost) -> None:
    # int("-1", 16) is -1, and read(-1) waits for the client to close (and buffers without limit).
    head = f"POST /sample/echo/1?code={KEY} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    assert raw_exchange(host, head.encode() + b"-1\r\nabc").startswith(b"HTTP/1.1 400")
    assert raw_exchange(host, head.encode() + b"+5\r\nabcde\r\n0\r\n\r\n").startswith(b"HTTP/1.1 400")


def test_chunks_adding_up_past_the_cap_are_413_before_the_data_is_read(host: LocalHost) -> None:
    head = f"POST /sample/echo/1?code={KEY} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    assert raw_exchange(host, head.encode() + b"7000000\r\nabc").startswith(b"HTTP/1.1 413")


@pytest.mark.parametrize(
    "path",
    [
        f"/sample/alerts&code={KEY}",
        f"/sample/alerts;code={KEY}/x",
        f"/sample/CODE%3D{KEY}",
        f"/sample/{KEY}",
        f"/sample/x&code={KEY}?code={KEY}",
    ],
)
def test_access_lines_of_mistyped_urls_never_contain_the_key(
    host: LocalHost, caplog: pytest.LogCaptureFixture, path: str
) -> None:
    caplog.set_level(logging.DEBUG, logger="devhost")
    assert get(host, path, "POST", body=b"{}").status in (404, 405)
    assert " -> 40" in caplog.text
    assert KEY not in caplog.text


def test_logged_path_is_bounded(host: LocalHost, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="devhost.http")
    assert get(host, "/sample/" + "a" * 5085).status == 404
    (line,) = [r.getMessage() for r in caplog.records if r.name == "devhost.http"]
    assert len(line) < 300
    assert "(+4893 chars)" in line
