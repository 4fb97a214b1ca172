"""Strict Azure resource ID parsing: VMs, scale-set instances and the scopes that may be captured.

IDs reach us from alert payloads and manual requests and end up in ARM request URLs, so anything that
could change a URL's meaning (``..``, ``?``, ``#``, ``%``, ``\\``, whitespace, control characters) is
rejected rather than cleaned. ARM treats IDs case-insensitively and senders vary the case of both the
keywords and the names, so IDs are kept exactly as sent (``raw``, for logs and ARM calls) and compared
through ``key`` (the text folded by ``fold``: ASCII letters only, as ARM compares; ``str.casefold``
would turn ``ſ`` (U+017F) into ``s`` and the Kelvin sign into ``k``, matching IDs ARM keeps apart).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

from capture.errors import quote

__all__ = [
    "InvalidResourceId",
    "ResourceId",
    "ResourceKind",
    "Scope",
    "fold",
    "parse_resource_id",
    "parse_scope",
    "region_name",
]

MAX_RESOURCE_ID_LENGTH = 1024

ResourceKind = Literal["vm", "vmss_instance"]

_FORBIDDEN_CHARS = {
    "?": "a query string ('?')",
    "#": "a fragment ('#')",
    "%": "percent-encoding ('%')",
    "\\": "a backslash",
}
_EXAMPLE = "/subscriptions/{subscription}/resourceGroups/{group}/providers/{namespace}/{type}/{name}"
_SCOPE_EXAMPLE = "/subscriptions/{subscription} or /subscriptions/{subscription}/resourceGroups/{group}"


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def fold(text: str) -> str:
    """Case-fold ASCII letters only: the app's one way to compare IDs, names and keys, as ARM does."""
    return text.translate(_ASCII_LOWER)


_REGION = re.compile(r"[a-z][a-z0-9]{1,39}")


def region_name(text: str) -> str | None:
    """An Azure region's name ("eastus"; "East US" folds to it), or None when the text is not one.

    Region names reach ARM URLs and the suggested `az` command, so only short ASCII names pass.
    """
    name = fold(text.replace(" ", ""))
    return name if _REGION.fullmatch(name) else None


class InvalidResourceId(ValueError):
    """The text is not a well-formed Azure resource ID (or scope); the message says why."""


@dataclass(frozen=True, eq=False)
class ResourceId:
    """A parsed resource ID; equality and hashing ignore case, like ARM does."""

    raw: str
    subscription: str
    resource_group: str
    provider: str
    types: tuple[str, ...]
    names: tuple[str, ...]

    @property
    def key(self) -> str:
        """The casefolded ID, for comparisons, dictionary keys and de-duplication."""
        return fold(self.raw)

    @property
    def name(self) -> str:
        """The last name segment (the resource's own name)."""
        return self.names[-1]

    @property
    def resource_type(self) -> str:
        """E.g. ``Microsoft.Compute/virtualMachines`` (case as sent)."""
        return "/".join((self.provider, *self.types))

    @property
    def kind(self) -> ResourceKind | None:
        """``vm`` or ``vmss_instance``: the two kinds of resource a packet capture can run on."""
        if fold(self.provider) != "microsoft.compute":
            return None
        types = tuple(fold(t) for t in self.types)
        if types == ("virtualmachines",):
            return "vm"
        if types == ("virtualmachinescalesets", "virtualmachines"):
            return "vmss_instance"
        return None

    @property
    def vm_name(self) -> str | None:
        """The VM's name, for a standalone VM."""
        return self.names[0] if self.kind == "vm" else None

    @property
    def scale_set_id(self) -> str | None:
        """The scale set's own ID (as sent) for a scale-set instance: captures target the scale set."""
        if self.kind != "vmss_instance":
            return None
        # Cut the raw text (not a rebuilt string) so the scale set keeps the sender's case.
        return self.raw.rsplit("/", 2)[0]

    @property
    def instance_id(self) -> str | None:
        """The instance ID inside the scale set (``"1"`` in ``…/virtualMachines/1``)."""
        return self.names[1] if self.kind == "vmss_instance" else None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ResourceId):
            return NotImplemented
        return self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __str__(self) -> str:
        return self.raw


@dataclass(frozen=True, eq=False)
class Scope:
    """A subscription or resource group that captures are allowed in."""

    raw: str
    subscription: str
    resource_group: str | None = None

    @property
    def key(self) -> str:
        return fold(self.raw)

    def contains(self, resource_id: ResourceId | str) -> bool:
        """Whether the resource lives in this scope (whole-segment, case-insensitive comparison).

        A string is parsed first and raises InvalidResourceId when malformed.
        """
        rid = resource_id if isinstance(resource_id, ResourceId) else parse_resource_id(resource_id)
        if fold(rid.subscription) != fold(self.subscription):
            return False
        return self.resource_group is None or fold(rid.resource_group) == fold(self.resource_group)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Scope):
            return NotImplemented
        return (fold(self.subscription), fold(self.resource_group or "")) == (
            fold(other.subscription),
            fold(other.resource_group or ""),
        )

    def __hash__(self) -> int:
        return hash((fold(self.subscription), fold(self.resource_group or "")))

    def __str__(self) -> str:
        return self.raw


def parse_resource_id(text: str) -> ResourceId:
    """Parse ``/subscriptions/{s}/resourceGroups/{g}/providers/{ns}/{type}/{name}[/{type}/{name}…]``.

    Raises InvalidResourceId with a message that names the problem.
    """
    segments = _segments(text, _EXAMPLE)
    if len(segments) < 4 or fold(segments[2]) != "resourcegroups":
        if len(segments) >= 3 and fold(segments[2]) == "providers":
            raise InvalidResourceId(
                f"{quote(text)} is a subscription-level resource; only resources in a resource group are "
                f"supported (expected {_EXAMPLE})"
            )
        raise InvalidResourceId(f"{quote(text)} has no resource group: expected {_EXAMPLE}")
    if len(segments) < 6 or fold(segments[4]) != "providers":
        raise InvalidResourceId(
            f"{quote(text)} is a scope, not a resource: expected "
            f"'/providers/{{namespace}}/{{type}}/{{name}}' after the resource group ({_EXAMPLE})"
        )
    provider = segments[5]
    rest = segments[6:]
    if not rest:
        raise InvalidResourceId(f"{quote(text)} names a provider namespace but no resource type and name")
    if len(rest) % 2:
        raise InvalidResourceId(
            f"{quote(text)} has a resource type without a name ({quote(rest[-1])}): "
            "types and names must alternate"
        )
    types = tuple(rest[0::2])
    names = tuple(rest[1::2])
    for keyword in ("providers", "subscriptions", "resourcegroups"):
        if any(fold(t) == keyword for t in types):
            raise InvalidResourceId(
                f"{quote(text)} has a nested '{keyword}' segment (an extension resource or a malformed ID); "
                f"expected {_EXAMPLE}"
            )
    return ResourceId(
        raw=text,
        subscription=segments[1],
        resource_group=segments[3],
        provider=provider,
        types=types,
        names=names,
    )


def parse_scope(text: str) -> Scope:
    """Parse an allowed scope: ``/subscriptions/{s}`` or ``/subscriptions/{s}/resourceGroups/{g}``.

    One trailing ``/`` is tolerated because scopes come from hand-written settings.
    """
    body = text[:-1] if isinstance(text, str) and len(text) > 1 and text.endswith("/") else text
    segments = _segments(body, _SCOPE_EXAMPLE)
    if len(segments) == 2:
        return Scope(raw=text, subscription=segments[1])
    if len(segments) == 4 and fold(segments[2]) == "resourcegroups":
        return Scope(raw=text, subscription=segments[1], resource_group=segments[3])
    raise InvalidResourceId(f"{quote(text)} is not a scope: expected {_SCOPE_EXAMPLE}")


def _segments(text: object, expected: str) -> list[str]:
    """Checks shared by IDs and scopes; returns the segments after the leading '/'."""
    if not isinstance(text, str):
        raise InvalidResourceId(f"a resource ID must be a string, not {type(text).__name__}")
    if not text:
        raise InvalidResourceId(f"the resource ID is empty: expected {expected}")
    if len(text) > MAX_RESOURCE_ID_LENGTH:
        raise InvalidResourceId(
            f"the resource ID is {len(text)} characters long; at most {MAX_RESOURCE_ID_LENGTH} are accepted"
        )
    for char in text:
        if char in _FORBIDDEN_CHARS:
            raise InvalidResourceId(
                f"{quote(text)} contains {_FORBIDDEN_CHARS[char]}, which a resource ID cannot"
            )
        if char.isspace() or unicodedata.category(char) in ("Cc", "Cf", "Cs", "Zl", "Zp", "Zs"):
            raise InvalidResourceId(
                f"{quote(text)} contains whitespace or a control character (U+{ord(char):04X})"
            )
    if ".." in text:
        raise InvalidResourceId(f"{quote(text)} contains '..', which a resource ID cannot")
    if not text.startswith("/"):
        raise InvalidResourceId(f"{quote(text)} does not start with '/subscriptions/': expected {expected}")
    segments = text[1:].split("/")
    if any(segment == "" for segment in segments):
        raise InvalidResourceId(f"{quote(text)} has an empty segment ('//' or a trailing '/')")
    if any(segment == "." for segment in segments):
        raise InvalidResourceId(f"{quote(text)} has a '.' segment, which a resource ID cannot")
    if fold(segments[0]) != "subscriptions" or len(segments) < 2:
        raise InvalidResourceId(f"{quote(text)} does not start with '/subscriptions/': expected {expected}")
    return segments
