"""ASP.NET-style route templates, as the Functions host uses for HTTP triggers.

Supported syntax (a subset of ASP.NET Core routing, the one Functions apps use):

* literal segments, matched case-insensitively: ``captures``;
* parameters: ``{name}``, optional ``{name?}``, with a default ``{name=value}``;
* constraints, several allowed: ``{id:int}``, ``{id:int:min(1)}``, ``{code:regex(^[a-z]{{2}}$)}``
  (``{{``/``}}`` escape braces, as in ASP.NET);
* catch-all as the last segment: ``{*path}`` (also ``{**path}``);
* complex segments: ``{name}.{ext}``, ``{name}.{ext?}``.

A request path matches when every required segment matches; trailing optional segments (optional,
defaulted or catch-all parameters) may be left out, and a trailing ``/`` is allowed. Route values
are percent-decoded. Parameters that did not match and have no default are left out of the route
values, as on Azure.
"""

from __future__ import annotations

import decimal
import itertools
import math
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import unquote

__all__ = ["RouteTemplate", "RouteTemplateError"]

_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)
_INT_RE = re.compile(r"^\s*[+-]?\d+\s*$")
_ALPHA_RE = re.compile(r"^[A-Za-z]+$")
_NAME_RE = re.compile(r"^[^{}/\\:=?*.]+$")


class RouteTemplateError(ValueError):
    """A route template the host would refuse at start-up."""


def _as_int(value: str, bounds: tuple[int, int]) -> int | None:
    if not _INT_RE.match(value):
        return None
    number = int(value)
    return number if bounds[0] <= number <= bounds[1] else None


def _is_float(value: str) -> bool:
    try:
        return math.isfinite(float(value))
    except ValueError:
        return False


def _is_decimal(value: str) -> bool:
    try:
        return decimal.Decimal(value.strip()).is_finite()
    except decimal.InvalidOperation:
        return False


def _is_guid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _is_datetime(value: str) -> bool:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _int_args(name: str, args: str | None, count: tuple[int, ...]) -> list[int]:
    parts = [] if args is None else [p.strip() for p in args.split(",")]
    if len(parts) not in count:
        raise RouteTemplateError(
            f"route constraint '{name}' takes {' or '.join(map(str, count))} argument(s)"
        )
    try:
        return [int(p) for p in parts]
    except ValueError as exc:
        raise RouteTemplateError(f"route constraint '{name}' needs integer arguments, got {args!r}") from exc


def _make_constraint(name: str, args: str | None) -> Callable[[str], bool]:
    """A predicate for one ASP.NET inline route constraint (unknown ones fail like on the host)."""
    key = name.lower()
    simple: dict[str, Callable[[str], bool]] = {
        "int": lambda v: _as_int(v, _INT32) is not None,
        "long": lambda v: _as_int(v, _INT64) is not None,
        "bool": lambda v: v.strip().lower() in ("true", "false"),
        "alpha": lambda v: bool(_ALPHA_RE.match(v)),
        "guid": _is_guid,
        "double": _is_float,
        "float": _is_float,
        "decimal": _is_decimal,
        "datetime": _is_datetime,
        "required": lambda v: v != "",
    }
    if key in simple:
        if args is not None:
            raise RouteTemplateError(f"route constraint '{name}' takes no arguments")
        return simple[key]
    if key == "min":
        (low,) = _int_args(name, args, (1,))
        return lambda v: (n := _as_int(v, _INT64)) is not None and n >= low
    if key == "max":
        (high,) = _int_args(name, args, (1,))
        return lambda v: (n := _as_int(v, _INT64)) is not None and n <= high
    if key == "range":
        low, high = _int_args(name, args, (2,))
        return lambda v: (n := _as_int(v, _INT64)) is not None and low <= n <= high
    if key == "minlength":
        (low,) = _int_args(name, args, (1,))
        return lambda v: len(v) >= low
    if key == "maxlength":
        (high,) = _int_args(name, args, (1,))
        return lambda v: len(v) <= high
    if key == "length":
        bounds = _int_args(name, args, (1, 2))
        low, high = (bounds[0], bounds[0]) if len(bounds) == 1 else (bounds[0], bounds[1])
        return lambda v: low <= len(v) <= high
    if key == "regex":
        if not args:
            raise RouteTemplateError("route constraint 'regex' needs a pattern")
        try:
            pattern = re.compile(args, re.IGNORECASE)
        except re.error as exc:
            raise RouteTemplateError(f"invalid regex route constraint {args!r}: {exc}") from exc
        # ASP.NET's RegexRouteConstraint uses Regex.IsMatch: unanchored unless the pattern anchors.
        return lambda v: pattern.search(v) is not None
    raise RouteTemplateError(f"the route constraint '{name}' could not be resolved")


@dataclass
class _Param:
    name: str
    group: str
    text: str = ""
    optional: bool = False
    catch_all: bool = False
    default: str | None = None
    constraints: list[tuple[str, Callable[[str], bool]]] = field(default_factory=list)

    @property
    def omittable(self) -> bool:
        return self.optional or self.catch_all or self.default is not None


_Part = str | _Param


def _split_constraint_tail(text: str) -> tuple[list[tuple[str, str | None]], str]:
    """Parse ``:c1:c2(args)...`` constraints; returns them and what follows (``?`` or ``=default``)."""
    constraints: list[tuple[str, str | None]] = []
    pos = 0
    while pos < len(text) and text[pos] == ":":
        match = re.match(r"[A-Za-z][A-Za-z0-9_]*", text[pos + 1 :])
        if not match:
            raise RouteTemplateError(f"invalid route constraint in {text!r}")
        name = match.group(0)
        pos += 1 + len(name)
        args: str | None = None
        if pos < len(text) and text[pos] == "(":
            # ASP.NET: the arguments run up to a ')' that ends the text or precedes ':', '=' or '?'.
            end = -1
            for i in range(pos + 1, len(text)):
                if text[i] == ")" and (i + 1 == len(text) or text[i + 1] in ":=?"):
                    end = i
                    break
            if end < 0:
                raise RouteTemplateError(f"unterminated route constraint arguments in {text!r}")
            args = text[pos + 1 : end]
            pos = end + 1
        constraints.append((name, args))
    return constraints, text[pos:]


class RouteTemplate:
    """One compiled route template (``routePrefix`` + the function's ``route``)."""

    def __init__(self, route: str, prefix: str = "") -> None:
        self.route = route
        self.prefix = prefix.strip("/")
        text = route.strip()
        if text.startswith("~"):
            text = text[1:]
        text = text.strip("/")
        self._params: list[_Param] = []
        prefix_segments: list[list[_Part]] = [[s] for s in self.prefix.split("/")] if self.prefix else []
        route_segments = [self._parse_segment(s) for s in text.split("/")] if text else []
        self._segments = prefix_segments + route_segments
        self.template = "/" + "/".join(s for s in (self.prefix, text) if s)
        self._validate()
        self._regex = re.compile(self._build_regex(), re.IGNORECASE | re.DOTALL)
        self.precedence = tuple(self._segment_precedence(s) for s in self._segments)

    # -- parsing -------------------------------------------------------------------------------

    def _parse_segment(self, segment: str) -> list[_Part]:
        if segment == "":
            raise RouteTemplateError(f"route {self.route!r} has an empty segment")
        parts: list[_Part] = []
        literal: list[str] = []
        i = 0
        while i < len(segment):
            char = segment[i]
            if char == "{" and segment.startswith("{{", i):
                literal.append("{")
                i += 2
            elif char == "}" and segment.startswith("}}", i):
                literal.append("}")
                i += 2
            elif char == "{":
                inner: list[str] = []
                i += 1
                while True:
                    if i >= len(segment):
                        raise RouteTemplateError(f"unterminated parameter in route {self.route!r}")
                    if segment.startswith("}}", i) or segment.startswith("{{", i):
                        inner.append(segment[i])
                        i += 2
                    elif segment[i] == "}":
                        i += 1
                        break
                    else:
                        inner.append(segment[i])
                        i += 1
                if literal:
                    parts.append("".join(literal))
                    literal = []
                parts.append(self._parse_param("".join(inner)))
            elif char == "}":
                raise RouteTemplateError(f"unbalanced '}}' in route {self.route!r}")
            else:
                literal.append(char)
                i += 1
        if literal:
            parts.append("".join(literal))
        for left, right in itertools.pairwise(parts):
            if isinstance(left, _Param) and isinstance(right, _Param):
                raise RouteTemplateError(
                    f"route {self.route!r}: parameters must be separated by a literal in one segment"
                )
        return parts

    def _parse_param(self, text: str) -> _Param:
        raw = text
        catch_all = False
        if text.startswith("**"):
            catch_all, text = True, text[2:]
        elif text.startswith("*"):
            catch_all, text = True, text[1:]
        match = re.match(r"[^:=?]+", text)
        if not match:
            raise RouteTemplateError(f"route {self.route!r} has a parameter without a name")
        name = match.group(0).strip()
        if not _NAME_RE.match(name):
            raise RouteTemplateError(f"route {self.route!r}: invalid parameter name {name!r}")
        constraints, tail = _split_constraint_tail(text[match.end() :])
        optional = False
        default: str | None = None
        if tail == "?":
            optional = True
        elif tail.startswith("="):
            default = tail[1:]
        elif tail:
            raise RouteTemplateError(f"route {self.route!r}: cannot parse parameter {{{text}}}")
        if catch_all and optional:
            raise RouteTemplateError(f"route {self.route!r}: a catch-all parameter cannot be optional")
        lowered = name.lower()
        if any(p.name.lower() == lowered for p in self._params):
            raise RouteTemplateError(f"route {self.route!r} uses the parameter name {name!r} twice")
        param = _Param(
            name=name,
            group=f"p{len(self._params)}",
            text="{" + raw.replace("{", "{{").replace("}", "}}") + "}",
            optional=optional,
            catch_all=catch_all,
            default=default,
            constraints=[(c, _make_constraint(c, a)) for c, a in constraints],
        )
        self._params.append(param)
        return param

    def _validate(self) -> None:
        for index, segment in enumerate(self._segments):
            params = [p for p in segment if isinstance(p, _Param)]
            last = index == len(self._segments) - 1
            for param in params:
                if param.catch_all and not (last and len(segment) == 1):
                    raise RouteTemplateError(
                        f"route {self.route!r}: a catch-all parameter must be the whole last segment"
                    )
            if len(segment) > 1:
                for pos, part in enumerate(segment):
                    if isinstance(part, _Param) and part.optional and pos != len(segment) - 1:
                        raise RouteTemplateError(
                            f"route {self.route!r}: an optional parameter must end its segment"
                        )

    # -- regex ---------------------------------------------------------------------------------

    @staticmethod
    def _is_omittable(segment: list[_Part]) -> bool:
        return len(segment) == 1 and isinstance(segment[0], _Param) and segment[0].omittable

    @staticmethod
    def _segment_regex(segment: list[_Part]) -> str:
        if len(segment) == 1:
            part = segment[0]
            if isinstance(part, str):
                return re.escape(part)
            if part.catch_all:
                return f"(?P<{part.group}>.*)"
            return f"(?P<{part.group}>[^/]+)"
        pieces: list[str] = []
        for pos, part in enumerate(segment):
            if isinstance(part, str):
                pieces.append(re.escape(part))
                continue
            body = f"(?P<{part.group}>[^/]+?)"
            if part.optional and pos > 0 and isinstance(segment[pos - 1], str):
                # "{name}.{ext?}": the separator before an optional trailing parameter is optional too.
                pieces[-1] = f"(?:{pieces[-1]}{body})?"
            elif part.optional:
                pieces.append(f"{body}?")
            else:
                pieces.append(body)
        return "".join(pieces)

    def _build_regex(self) -> str:
        first_omittable = len(self._segments)
        while first_omittable > 0 and self._is_omittable(self._segments[first_omittable - 1]):
            first_omittable -= 1
        required = "".join("/" + self._segment_regex(s) for s in self._segments[:first_omittable])
        optional = ""
        for segment in reversed(self._segments[first_omittable:]):
            optional = f"(?:/{self._segment_regex(segment)}{optional})?"
        return f"^{required}{optional}/?$" if required or optional else "^/?$"

    @staticmethod
    def _segment_precedence(segment: list[_Part]) -> int:
        # ASP.NET RoutePrecedence (inbound): literal 1, complex 2, constrained 3, parameter 4, catch-all 5.
        if len(segment) > 1:
            return 2
        part = segment[0]
        if isinstance(part, str):
            return 1
        if part.catch_all:
            return 5
        return 3 if part.constraints else 4

    # -- matching ------------------------------------------------------------------------------

    @property
    def parameter_names(self) -> list[str]:
        return [p.name for p in self._params]

    def match(self, path: str) -> dict[str, str] | None:
        """Route values for a raw (percent-encoded) request path, or None when it does not match."""
        found = self._regex.match(path)
        if found is None:
            return None
        values: dict[str, str] = {}
        for param in self._params:
            raw = found.group(param.group)
            if raw is None or (raw == "" and param.catch_all):
                if param.default is not None:
                    values[param.name] = param.default
                continue
            value = unquote(raw)
            for _name, check in param.constraints:
                if not check(value):
                    return None
            values[param.name] = value
        return values

    def expand(self, values: Mapping[str, str] | None = None) -> str:
        """The template with parameters replaced from ``values`` (the others kept as written)."""
        values = values or {}
        out: list[str] = []
        for segment in self._segments:
            text = [part if isinstance(part, str) else values.get(part.name, part.text) for part in segment]
            out.append("".join(text))
        return "/" + "/".join(out)

    def __repr__(self) -> str:
        return f"RouteTemplate({self.template!r})"
