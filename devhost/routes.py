"""HTTP trigger routes as werkzeug rules.

The Functions host reads ASP.NET route templates. This app uses literal segments and ``{name}``
parameters only, which map one-to-one onto werkzeug rules (``captures/{name}`` becomes
``/api/captures/<name>``), so devhost supports exactly those and lets werkzeug match them. Any other
template syntax (optional, default, catch-all, constrained parameters) is refused at load rather than
served differently from Azure.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from urllib.parse import quote

from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.routing import Map, MapAdapter, Rule

__all__ = ["RouteTable", "RouteTemplateError", "expand", "full_template"]

_PARAM = re.compile(r"^\{([A-Za-z_][A-Za-z0-9_]*)\}$")
_LITERAL = re.compile(r"^[^{}<>]+$")


class RouteTemplateError(ValueError):
    """A route template devhost cannot serve as the host would (refused at load)."""


def full_template(route: str, prefix: str) -> str:
    """``/{prefix}/{route}``, e.g. ``/api/captures/{name}``, after checking the syntax is supported."""
    segments = [s for s in (prefix.strip("/"), route.strip("/")) if s]
    template = "/" + "/".join(segments)
    for segment in template.strip("/").split("/") if template != "/" else []:
        if not (_PARAM.match(segment) or _LITERAL.match(segment)):
            raise RouteTemplateError(
                f"route {route!r}: devhost serves literal segments and {{name}} parameters only "
                f"(segment {segment!r})"
            )
    return template


def _rule_path(template: str) -> str:
    return "/".join(f"<{m.group(1)}>" if (m := _PARAM.match(s)) else s for s in template.split("/")) or "/"


def expand(template: str, values: Mapping[str, str]) -> str:
    """The template with the given parameters filled in (percent-encoded); the others kept as written."""

    def _fill(segment: str) -> str:
        match = _PARAM.match(segment)
        if match and match.group(1) in values:
            return quote(values[match.group(1)], safe="")
        return segment

    return "/".join(_fill(s) for s in template.split("/"))


class RouteTable:
    """Templates -> endpoints, matched by werkzeug: a trailing ``/`` is allowed, methods are checked."""

    def __init__(self, routes: Iterable[tuple[str, frozenset[str] | None, int]]) -> None:
        rules = [Rule(_rule_path(t), endpoint=e, methods=m) for t, m, e in routes]
        self._adapter: MapAdapter = Map(rules, strict_slashes=False, merge_slashes=False).bind("devhost")

    def match(self, path: str, method: str) -> tuple[int, dict[str, str]] | frozenset[str] | None:
        """``(endpoint, route values)``; the allowed methods when only the method is wrong; else None."""
        try:
            endpoint, values = self._adapter.match(path, method=method)
        except MethodNotAllowed as exc:
            return frozenset(exc.valid_methods or ())
        except HTTPException:  # NotFound (and redirects, which these map settings never produce)
            return None
        return int(endpoint), {k: str(v) for k, v in values.items()}
