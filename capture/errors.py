"""The app's one input error, and the one way a pydantic error becomes its message and location.

Every part of a request the app refuses (the body, an alert field, a capture override, a route
parameter) is an `InputError`: a message that says what is wrong and what is expected, and a location
that says where (`data.essentials.alertTargetIDs[0]`, `capture.timeLimitSeconds`). The HTTP side
turns it into 400 `rejected`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

__all__ = ["InputError", "bounded", "describe", "input_error", "join_location", "kind_of", "quote"]

# Echoed input is cut to this many characters: enough to recognise a value, never a 4,000-digit echo.
ECHO_CHARS = 64
# A whole message (and a location) never grows past this, whatever it quotes.
MESSAGE_CHARS = 600


def quote(value: object) -> str:
    """Caller input, quoted for a message: repr() of at most ECHO_CHARS characters, then an ellipsis."""
    text = value if isinstance(value, str) else str(value)
    if len(text) > ECHO_CHARS:
        return repr(text[:ECHO_CHARS]) + "…"
    return repr(text)


def bounded(text: str, limit: int = MESSAGE_CHARS) -> str:
    """Any message text, cut to `limit` characters with an ellipsis (the one cap every message passes)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


class InputError(ValueError):
    """Input the app will not act on; `location` points at the offending part.

    Message and location are bounded here, so no path through the app can echo a huge value.
    """

    def __init__(self, message: str, location: str = "body") -> None:
        message, location = bounded(message), bounded(location, 200)
        super().__init__(message, location)
        self.message = message
        self.location = location

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


def input_error(
    exc: ValidationError,
    *,
    prefix: str = "",
    hints: Mapping[str, str] | None = None,
    known: Iterable[str] = (),
) -> InputError:
    """The first error of a validation, as an InputError (pydantic's own locations, joined)."""
    error = exc.errors()[0]
    location = join_location(prefix, error["loc"])
    return InputError(describe(error, hints or {}, tuple(known)), location or "body")


def describe(error: Any, hints: Mapping[str, str], known: tuple[str, ...] = ()) -> str:
    """One pydantic error in words: what was expected (a hint per field name) and what came."""
    kind = error["type"]
    loc = error["loc"]
    field = next((p for p in reversed(loc) if isinstance(p, str)), "")
    element = bool(loc) and isinstance(loc[-1], int)
    hint = None if element else hints.get(field)
    got = kind_of(error.get("input"))
    if kind == "missing":
        return "required field is missing" + (f"; expected {hint}" if hint else "")
    if kind == "string_type":
        return f"expected {hint or 'a string'}, got {got}"
    if kind == "list_type":
        return f"expected {hint or 'a list'}, got {got}"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"expected {hint or 'a JSON object'}, got {got}"
    if kind == "too_short":
        return f"expected {hint or 'a non-empty list'}, got an empty list"
    if kind == "string_too_short":
        return f"expected {hint or 'a non-empty string'}, got an empty string"
    if kind == "extra_forbidden":
        top_level = len(loc) == 1
        return f"unknown field; expected only: {', '.join(known)}" if known and top_level else "unknown field"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return f"expected {hint or 'an integer'}, got {got}"
    # Our own validators' words (ValueError messages); pydantic's other messages never quote input.
    return bounded(str(error["msg"]).removeprefix("Value error, "))


def join_location(prefix: str, loc: Iterable[Any]) -> str:
    """`data.essentials` + ('alertTargetIDs', 0) -> `data.essentials.alertTargetIDs[0]`."""
    text = prefix
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text = f"{text}.{part}" if text else str(part)
    return text


def kind_of(value: Any) -> str:
    """What a JSON value is, in words ("a string", "null"), for 'expected X, got Y' messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
