"""Deterministic capture names and storage paths.

The name is a pure function of (prefix, target, alert instance), so every retried or fanned-out
delivery of one alert, on any scaled-out instance, maps to the same ARM resource: ARM itself then
de-duplicates. The storage path carries what a later report needs (VM, date, rule, severity, alert), because
the capture resource is the only state this app keeps.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import unquote, urlsplit

from capture.resource_ids import ResourceId, fold

__all__ = [
    "CONTAINER",
    "PathInfo",
    "blob_location",
    "capture_name",
    "is_ours",
    "names_capture",
    "parse_storage_path",
    "storage_path",
    "target_label",
    "vm_segment",
]

MAX_NAME_LENGTH = 80
CONTAINER = "network-watcher-logs"
_UNSAFE = re.compile(r"[^a-z0-9-]+")
_SEGMENT_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _segment(text: str) -> str:
    """A blob-path segment that keeps the text readable (case included) and never splits."""
    return _SEGMENT_UNSAFE.sub("-", text).strip("-.")[:120] or "-"


def _slug(text: str, limit: int) -> str:
    slug = _UNSAFE.sub("-", fold(text)).strip("-")
    return slug[:limit].strip("-") or "x"


def target_label(target: ResourceId) -> str:
    """The VM name, or `{scale set}-{instance}` for a scale-set instance."""
    return "-".join(target.names) if target.kind == "vmss_instance" else target.name


def capture_name(prefix: str, target: ResourceId, instance_key: str) -> str:
    """`{prefix}-{vm}-{hash}`: readable in the portal, unique per (VM, alert instance), ≤ 80 chars."""
    digest = hashlib.sha256(f"{target.key}|{fold(instance_key)}".encode()).hexdigest()[:16]
    vm = _slug(target_label(target), MAX_NAME_LENGTH - len(prefix) - len(digest) - 2)
    return f"{prefix}-{vm}-{digest}"


def is_ours(name: str, prefix: str) -> bool:
    """Captures this app started carry the configured prefix and a 16-hex-digit hash."""
    return re.fullmatch(rf"{re.escape(prefix)}-[a-z0-9-]+-[0-9a-f]{{16}}", name) is not None


def vm_segment(target: ResourceId) -> str:
    """The storage path's VM folder for a target."""
    return _slug(target_label(target), 64)


def names_capture(path: str, account: str, name: str, target: ResourceId) -> bool:
    """The storage path is one this app would choose for capture `name` of `target` in `account`.

    Part of the ownership rule: a capture someone else named like ours still has to write to our
    account, in our layout, into a file named after itself, in the folder of the VM it captures.
    """
    info = parse_storage_path(path)
    if info is None or fold(urlsplit(path).netloc) != fold(f"{account}.blob.core.windows.net"):
        return False
    return path.endswith(f"/{name}.cap") and info.vm == vm_segment(target)


@dataclass(frozen=True)
class PathInfo:
    """What a storage path written by this app tells about its alert."""

    vm: str
    started: datetime
    rule: str | None
    alert: str | None
    severity: str | None = None


def storage_path(
    account: str,
    name: str,
    target: ResourceId,
    started: datetime,
    rule: str | None,
    alert_id: str,
    severity: str | None = None,
) -> str:
    """`https://{account}.blob.core.windows.net/network-watcher-logs/alert-captures/{vm}/{y}/{m}/{d}/{hms}/…`.

    The rule name, severity (when the alert has one) and alert instance are path segments (unsafe
    characters become '-'), so the report can say which alert a capture answered without any database.
    """
    segments = [_segment(rule or "-")]
    if severity:
        segments.append(_segment(severity))
    segments.append(_segment(alert_id.rstrip("/").rsplit("/", 1)[-1]))
    vm = vm_segment(target)
    return (
        f"https://{account}.blob.core.windows.net/{CONTAINER}/alert-captures/"
        f"{vm}/{started:%Y/%m/%d/%H%M%S}/{'/'.join(segments)}/{name}.cap"
    )


def parse_storage_path(path: str | None) -> PathInfo | None:
    """Read back what `storage_path` wrote; None for paths this app did not choose."""
    if not path:
        return None
    parts = urlsplit(path).path.split("/")
    # ['', container, 'alert-captures', vm, y, m, d, hms, rule, (severity,) alert, file]
    if len(parts) not in (11, 12) or parts[2] != "alert-captures":
        return None
    try:
        started = datetime.strptime("".join(parts[4:8]), "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return None
    rule, severity = parts[8], parts[9] if len(parts) == 12 else None
    return PathInfo(
        vm=parts[3],
        started=started,
        rule=None if rule == "-" else rule,
        alert=parts[-2] or None,
        severity=severity or None,
    )


def blob_location(path: str) -> tuple[str, str]:
    """(container, blob name) of a blob URL, whatever account or endpoint it names."""
    parts = urlsplit(path).path.lstrip("/").split("/", 1)
    if len(parts) != 2 or not parts[1]:
        raise ValueError(f"not a blob URL: {path[:120]}")
    return parts[0], unquote(parts[1])
