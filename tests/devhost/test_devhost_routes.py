"""Route templates: ASP.NET syntax as the Functions host applies it."""

from __future__ import annotations

import pytest

from devhost.routes import RouteTemplate, RouteTemplateError


@pytest.mark.parametrize(
    ("route", "path", "expected"),
    [
        ("alerts", "/api/alerts", {}),
        ("alerts", "/API/Alerts/", {}),
        ("alerts", "/api/alerts/x", None),
        ("alerts", "/alerts", None),
        ("captures/{name}", "/api/captures/cap-1", {"name": "cap-1"}),
        ("captures/{name}", "/api/captures/a%20b", {"name": "a b"}),
        ("captures/{name}", "/api/captures", None),
        ("captures/{name}", "/api/captures/a/b", None),
        ("echo/{id}/{name?}", "/api/echo/1", {"id": "1"}),
        ("echo/{id}/{name?}", "/api/echo/1/", {"id": "1"}),
        ("echo/{id}/{name?}", "/api/echo/1/bob", {"id": "1", "name": "bob"}),
        ("echo/{id}/{name?}", "/api/echo/1/bob/x", None),
        ("page/{n=1}", "/api/page", {"n": "1"}),
        ("page/{n=1}", "/api/page/7", {"n": "7"}),
        ("files/{*path}", "/api/files/a/b/c.txt", {"path": "a/b/c.txt"}),
        ("files/{*path}", "/api/files", {}),
        ("files/{**path}", "/api/files/x", {"path": "x"}),
        ("items/{id:int}", "/api/items/42", {"id": "42"}),
        ("items/{id:int}", "/api/items/-3", {"id": "-3"}),
        ("items/{id:int}", "/api/items/abc", None),
        ("items/{id:int}", "/api/items/99999999999", None),
        ("items/{id:long}", "/api/items/99999999999", {"id": "99999999999"}),
        ("items/{id:int:min(10)}", "/api/items/5", None),
        ("items/{id:int:range(1,9)}", "/api/items/5", {"id": "5"}),
        ("items/{id:alpha}", "/api/items/abc", {"id": "abc"}),
        ("items/{id:alpha}", "/api/items/ab1", None),
        (
            "items/{id:guid}",
            "/api/items/6f1e0a36-3f0e-4b7a-9e65-1b2f3c4d5e6f",
            {"id": "6f1e0a36-3f0e-4b7a-9e65-1b2f3c4d5e6f"},
        ),
        ("items/{id:guid}", "/api/items/nope", None),
        ("items/{id:bool}", "/api/items/TRUE", {"id": "TRUE"}),
        ("items/{id:length(2)}", "/api/items/abc", None),
        ("items/{id:maxlength(3)}", "/api/items/abc", {"id": "abc"}),
        ("codes/{c:regex(^[a-z]{{2}}$)}", "/api/codes/ab", {"c": "ab"}),
        ("codes/{c:regex(^[a-z]{{2}}$)}", "/api/codes/abc", None),
        ("items/{id:int?}", "/api/items", {}),
        ("items/{id:int?}", "/api/items/x", None),
        ("docs/{name}.{ext}", "/api/docs/report.pdf", {"name": "report", "ext": "pdf"}),
        ("docs/{name}.{ext?}", "/api/docs/report", {"name": "report"}),
        ("", "/api", {}),
        ("/", "/api/", {}),
    ],
)
def test_matching(route: str, path: str, expected: dict[str, str] | None) -> None:
    assert RouteTemplate(route, "api").match(path) == expected


def test_prefix_is_optional_and_may_have_several_segments() -> None:
    assert RouteTemplate("health", "").match("/health") == {}
    assert RouteTemplate("health", "").template == "/health"
    assert RouteTemplate("health", "/v1/api/").match("/v1/api/health") == {}
    assert RouteTemplate("health", "v1/api").template == "/v1/api/health"


@pytest.mark.parametrize(
    "route",
    [
        "items/{id",
        "items/id}",
        "items/{}",
        "items/{id:nosuchconstraint}",
        "items/{id:min(x)}",
        "items/{id:regex(()}",
        "files/{*path}/more",
        "a/{x}/{X}",
        "a/{x}{y}",
        "a//b",
        "a/{*x?}",
    ],
)
def test_bad_templates_are_refused_like_at_host_start(route: str) -> None:
    with pytest.raises(RouteTemplateError):
        RouteTemplate(route, "api")


def test_precedence_literal_then_constrained_then_parameter_then_catch_all() -> None:
    routes = [
        RouteTemplate(r, "api") for r in ("items/{*rest}", "items/{id}", "items/special", "items/{id:int}")
    ]
    ordered = sorted(routes, key=lambda r: r.precedence)
    assert [r.route for r in ordered] == ["items/special", "items/{id:int}", "items/{id}", "items/{*rest}"]


def test_expand_keeps_unfilled_parameters_as_written() -> None:
    route = RouteTemplate("captures/{name}/{part:int?}", "api")
    assert route.expand() == "/api/captures/{name}/{part:int?}"
    assert route.expand({"name": "c1"}) == "/api/captures/c1/{part:int?}"
    assert route.parameter_names == ["name", "part"]
