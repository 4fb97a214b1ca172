"""App settings and per-capture options.

Settings are read once from the environment (Function App application settings) by pydantic-settings
and validated at start, so that a misconfigured app says what is wrong, naming the variable, instead of
failing on the first alert. Per-alert overrides are one model validated at intake against the Network
Watcher limits and the configured maxima: an alert rule author cannot ask for more than the operator
allowed.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from capture.errors import InputError, describe, join_location, quote
from capture.resource_ids import InvalidResourceId, Scope, fold, parse_resource_id, parse_scope

__all__ = [
    "DEFAULT_MONITOR_SCHEDULE",
    "DEFAULT_QUEUE_NAME",
    "CaptureFilter",
    "CaptureOptions",
    "CaptureOverrides",
    "LocalRoots",
    "OverrideLimits",
    "Settings",
    "SettingsError",
    "load_settings",
    "local_path_os",
    "setting_names",
    "validate_local_path",
]

# Network Watcher limits (PacketCaptureParameters in the 2026-03-01 swagger).
MAX_TIME_LIMIT_SECONDS = 18000
MAX_UINT32 = 4294967295
DEFAULT_BYTES_PER_SESSION = 1073741824
DEFAULT_MONITOR_SCHEDULE = "0 * * * * *"
DEFAULT_QUEUE_NAME = "capture-reports"
# Queue names: 3-63 lower-case letters, digits and single hyphens; "-poison" is appended to ours.
_QUEUE_NAME = re.compile(r"^[a-z0-9](?!.*--)[a-z0-9-]{1,54}[a-z0-9]$")
# Where capture files may go on a VM; Network Watcher itself requires /var/captures on Linux.
DEFAULT_LINUX_ROOT = "/var/captures"
DEFAULT_WINDOWS_ROOT = "C:\\Captures"
MAX_LOCAL_PATH = 200  # the file name (capture name + .cap) is appended; Windows paths stop at 260
MAX_FILTERS = 10
# Flight recorder: the tag that opts a VM in, and the shortest session worth replacing before it ends
# (the scheduler replaces a ring in its last 5 minutes, so a shorter session would never settle).
DEFAULT_RECORDER_TAG = "capture-recorder"
MIN_RECORDER_SESSION_SECONDS = 900
_TAG_NAME = re.compile(r"^[^<>%&\\?/'*]{1,512}$")
_NAME_PREFIX = re.compile(r"^[a-z0-9][a-z0-9-]{0,23}$")
_PORT = re.compile(r"[0-9]{1,5}")
_NUMBER = re.compile(r"[0-9]{1,12}")
_SPEC_FORM = "written as one value, a 'first-last' range, or a ';'-separated list ('a;b' or 'a;b;')"
_ENV_PREFIX = "CAPTURE_"


class SettingsError(ValueError):
    """The app settings are invalid; the message names the setting and what is expected."""


class CaptureFilter(BaseModel):
    """One 5-tuple filter, in Network Watcher's notation (single value, a-b range, or a;b list)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    protocol: Literal["TCP", "UDP", "Any"] = "Any"
    local_ip_address: str | None = Field(default=None, alias="localIPAddress")
    remote_ip_address: str | None = Field(default=None, alias="remoteIPAddress")
    local_port: str | None = Field(default=None, alias="localPort")
    remote_port: str | None = Field(default=None, alias="remotePort")

    @model_validator(mode="before")
    @classmethod
    def _fold_keys(cls, data: Any) -> Any:
        """Keys match case-insensitively, like every other key of an alert."""
        if not isinstance(data, dict):
            return data
        names = {fold(f.alias or n): f.alias or n for n, f in cls.model_fields.items()}
        return {names.get(fold(k), k) if isinstance(k, str) else k: v for k, v in data.items()}

    @field_validator("protocol", mode="before")
    @classmethod
    def _protocol(cls, value: Any) -> Any:
        if isinstance(value, str):
            canonical = {"tcp": "TCP", "udp": "UDP", "any": "Any"}.get(fold(value))
            return canonical or value
        return value

    @field_validator("local_ip_address", "remote_ip_address", mode="before")
    @classmethod
    def _addresses(cls, value: Any) -> str | None:
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise ValueError(
                "IP addresses are written as a string: '10.0.0.1', '10.0.0.1-10.0.0.9' or 'a;b;'"
            )
        return _address_spec(value)

    @field_validator("local_port", "remote_port", mode="before")
    @classmethod
    def _ports(cls, value: Any) -> Any:
        if value is None or value == "":
            return None
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ValueError("ports are written '80', '80-85' or '80;443;'")
        return _port_spec(str(value))

    def to_arm(self) -> dict[str, str]:
        """The filter as the PacketCapture PUT body carries it."""
        return self.model_dump(by_alias=True, exclude_none=True)


def _spec_parts(text: str, what: str) -> tuple[list[str], bool]:
    """A filter value split into its items: (items, is_range); every item is non-empty ASCII."""
    if not text.isascii() or not text.isprintable() or any(ch.isspace() for ch in text):
        raise ValueError(f"{what} {quote(text)} must be ASCII without spaces or line breaks")
    if ";" in text:
        items = text.removesuffix(";").split(";")
        if any(not item for item in items):
            raise ValueError(f"{what} {quote(text)} has an empty item; {what}s are {_SPEC_FORM}")
        return items, False
    items = text.split("-") if "-" in text else [text]
    if len(items) > 2 or any(not item for item in items):
        raise ValueError(f"{what} {quote(text)} is not well formed; {what}s are {_SPEC_FORM}")
    return items, len(items) == 2


def _port_spec(text: str) -> str:
    """Network Watcher's port notation, ASCII digits only, ranges low to high."""
    items, is_range = _spec_parts(text, "port")
    numbers = []
    for item in items:
        if not _PORT.fullmatch(item):
            raise ValueError(f"port {quote(item)} is not a number; ports are {_SPEC_FORM}")
        number = int(item)
        if number > 65535:
            raise ValueError(f"port {number} is out of range 0..65535")
        numbers.append(number)
    if is_range and numbers[0] > numbers[1]:
        raise ValueError(f"port range {quote(text)} is reversed; write it low-high")
    return text


def _address_spec(text: str) -> str:
    """Network Watcher's IP notation: plain IPv4/IPv6 addresses (no zone), ranges of one family, low-high."""
    items, is_range = _spec_parts(text, "IP address")
    addresses: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    for item in items:
        try:
            if "%" in item:
                raise ValueError
            addresses.append(ipaddress.ip_address(item))
        except ValueError:
            raise ValueError(f"{quote(item)} is not an IP address") from None
    if is_range:
        first, last = addresses
        if first.version != last.version:
            raise ValueError(f"IP range {quote(text)} mixes IPv4 and IPv6")
        if int(first) > int(last):
            raise ValueError(f"IP range {quote(text)} is reversed; write it first-last")
    return text


def _filters(raw: Any) -> Any:
    """CAPTURE_FILTERS and the `filters` override: a JSON list (or its text) of at most 10 filters."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw) if raw.strip() else []
        except json.JSONDecodeError as exc:
            raise ValueError(f"must be a JSON list of filters: {exc.msg}") from None
    if not isinstance(raw, list | tuple):
        raise ValueError("must be a list of filter objects")
    if len(raw) > MAX_FILTERS:
        raise ValueError(f"has {len(raw)} filters; at most {MAX_FILTERS} are accepted")
    return raw


# CAPTURE_FILTERS and the `filters` override: the same JSON list (or its text), validated the same way.
Filters = Annotated[tuple[CaptureFilter, ...], BeforeValidator(_filters)]


MAX_LINK_LIFETIME_HOURS = 7 * 24


class CaptureOptions(BaseModel):
    """What one capture is created with: settings, narrowed by validated alert overrides."""

    model_config = ConfigDict(frozen=True)

    time_limit_seconds: int
    bytes_per_packet: int
    bytes_per_session: int
    filters: tuple[CaptureFilter, ...] = ()
    local_path: str | None = None


class Settings(BaseSettings):
    """Every app setting the app reads, typed and validated once (`CAPTURE_` + the field name)."""

    model_config = SettingsConfigDict(env_prefix=_ENV_PREFIX, frozen=True, extra="ignore")

    storage_account_id: str | None = None
    # The roots come before local_path: its validator reads them.
    local_root_linux: str = DEFAULT_LINUX_ROOT
    local_root_windows: str = DEFAULT_WINDOWS_ROOT
    local_path: str | None = None
    time_limit_seconds: int = Field(default=60, ge=1, le=MAX_TIME_LIMIT_SECONDS)
    max_time_limit_seconds: int = Field(default=MAX_TIME_LIMIT_SECONDS, ge=1, le=MAX_TIME_LIMIT_SECONDS)
    max_sessions: int = Field(default=10, ge=1, le=10000)
    bytes_per_packet: int = Field(default=0, ge=0, le=MAX_UINT32)
    bytes_per_session: int = Field(default=DEFAULT_BYTES_PER_SESSION, ge=1, le=MAX_UINT32)
    filters: Annotated[Filters, NoDecode] = ()
    name_prefix: str = "alertcap"
    allowed_scopes: Annotated[tuple[Scope, ...], NoDecode] = ()
    arm_endpoint: str = Field(default="https://management.azure.com", validation_alias="ARM_ENDPOINT")
    compute_api_version: str = "2024-07-01"
    webhook_budget_seconds: float = Field(default=8.0, gt=0, le=60)
    monitor_schedule: str = DEFAULT_MONITOR_SCHEDULE
    start_grace_seconds: int = Field(default=300, ge=10)
    notify_urls: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(), validation_alias="CAPTURE_NOTIFY_URL"
    )
    notify_format: Literal["json", "teams", "slack"] = "json"
    blob_endpoint: str | None = None
    analyze: bool = True
    # The flight recorder (capture/recorder.py): continuous-capture rings on VMs tagged `<tag>: on`.
    recorder_tag: str = DEFAULT_RECORDER_TAG
    recorder_max: int = Field(default=2, ge=0, le=10000)
    recorder_file_count: int = Field(default=10, ge=1, le=10000)
    recorder_file_size_bytes: int = Field(default=400 * 1024 * 1024, ge=102400, le=MAX_UINT32)
    recorder_session_seconds: int = Field(default=86400, ge=MIN_RECORDER_SESSION_SECONDS, le=604800)
    # The follow-through queue: its name (the queue trigger's, read when the app is indexed) and the
    # queue service of the `CaptureQueue` connection the Functions host uses too (identity-based).
    queue_name: str = DEFAULT_QUEUE_NAME
    queue_service_uri: str | None = Field(default=None, validation_alias="CaptureQueue__queueServiceUri")
    # The longest a capture's status goes unchecked before its expected end (early stops are found
    # within this), and after it (a capture that outlives its time limit).
    check_max_interval_seconds: int = Field(default=600, ge=60, le=3600)
    # A capture queued this long ago that still exists is queued again (its message was lost).
    requeue_after_seconds: int = Field(default=3600, ge=300, le=86400)
    # Download links are user-delegation SAS URLs; storage caps a delegation key (so a link) at 7 days.
    link_lifetime_hours: int = Field(default=24, ge=1, le=MAX_LINK_LIFETIME_HOURS)

    @model_validator(mode="before")
    @classmethod
    def _blank_is_unset(cls, data: Any) -> Any:
        """A blank app setting means 'use the default', as it did before it was set."""
        if not isinstance(data, dict):
            return data
        return {k: v.strip() if isinstance(v, str) else v for k, v in data.items() if not _blank(v)}

    @field_validator("allowed_scopes", mode="before")
    @classmethod
    def _parse_scopes(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return tuple(parse_scope(part.strip()) for part in value.split(",") if part.strip())
        except InvalidResourceId as exc:
            raise ValueError(str(exc)) from None

    @field_validator("notify_urls", mode="before")
    @classmethod
    def _parse_urls(cls, value: Any) -> Any:
        parts = [p.strip() for p in value.split(",") if p.strip()] if isinstance(value, str) else value
        for part in parts:
            if not str(part).startswith(("https://", "http://")):
                raise ValueError(f"{str(part)[:40]!r} is not an http(s) URL")
        return parts

    @field_validator("notify_format", mode="before")
    @classmethod
    def _format(cls, value: Any) -> Any:
        return fold(value) if isinstance(value, str) else value

    @field_validator("storage_account_id")
    @classmethod
    def _storage(cls, value: str | None) -> str | None:
        if not value:
            return None
        try:
            rid = parse_resource_id(value)
        except InvalidResourceId as exc:
            raise ValueError(str(exc)) from None
        if fold(rid.provider) != "microsoft.storage" or fold(rid.types[0]) != "storageaccounts":
            raise ValueError(
                "must be a storage account ID (…/providers/Microsoft.Storage/storageAccounts/NAME)"
            )
        return value

    @field_validator("local_path")
    @classmethod
    def _local_path(cls, value: str | None, info: ValidationInfo) -> str | None:
        """The same rule as an alert's localPath override, under the configured roots."""
        if not value:
            return None
        linux = info.data.get("local_root_linux", DEFAULT_LINUX_ROOT)
        windows = info.data.get("local_root_windows", DEFAULT_WINDOWS_ROOT)
        return validate_local_path(value, LocalRoots(linux, windows))

    @field_validator("local_root_linux")
    @classmethod
    def _linux_root(cls, value: str) -> str:
        return validate_local_path(value, LocalRoots(linux=DEFAULT_LINUX_ROOT))

    @field_validator("local_root_windows")
    @classmethod
    def _windows_root(cls, value: str) -> str:
        if not _WINDOWS_ABSOLUTE.match(value):
            raise ValueError("must be an absolute Windows folder such as C:\\Captures")
        return validate_local_path(value, LocalRoots(windows=value))

    @field_validator("recorder_tag")
    @classmethod
    def _tag(cls, value: str) -> str:
        if not _TAG_NAME.match(value):
            raise ValueError("a tag name has 1-512 characters, none of < > % & \\ ? / ' *")
        return value

    @field_validator("name_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not _NAME_PREFIX.match(value):
            raise ValueError("use 1-24 lower-case letters, digits or '-', starting with a letter or digit")
        return value

    @field_validator("queue_name")
    @classmethod
    def _queue_name(cls, value: str) -> str:
        if not _QUEUE_NAME.match(value):
            raise ValueError(
                "use 3-56 lower-case letters, digits or single '-', starting and ending with a letter or "
                "digit (the poison queue adds '-poison')"
            )
        return value

    @field_validator("queue_service_uri")
    @classmethod
    def _queue_uri(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("https://"):
            raise ValueError("must be an https:// URL (bearer tokens are only sent over TLS)")
        return value.rstrip("/") if value else None

    @field_validator("arm_endpoint", "blob_endpoint")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith("https://"):
            raise ValueError("must be an https:// URL (bearer tokens are only sent over TLS)")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _coherent(self) -> Settings:
        if not self.storage_account_id and not self.local_path:
            raise ValueError(
                "set CAPTURE_STORAGE_ACCOUNT_ID (a storage account ID) or CAPTURE_LOCAL_PATH (a folder "
                "on the VM, /var/captures on Linux), or both: a capture needs somewhere to go"
            )
        if self.max_time_limit_seconds < self.time_limit_seconds:
            raise ValueError("CAPTURE_MAX_TIME_LIMIT_SECONDS must be at least CAPTURE_TIME_LIMIT_SECONDS")
        return self

    @property
    def storage_account_name(self) -> str | None:
        """The account name, the host part of the blob URLs the captures are written to."""
        return self.storage_account_id.rstrip("/").rsplit("/", 1)[-1] if self.storage_account_id else None

    @property
    def recorder_limit(self) -> int:
        """Rings per watcher: CAPTURE_RECORDER_MAX, always leaving alerts one slot of CAPTURE_MAX_SESSIONS."""
        return max(0, min(self.recorder_max, self.max_sessions - 1)) if self.storage_account_id else 0

    @property
    def local_roots(self) -> LocalRoots:
        return LocalRoots(self.local_root_linux, self.local_root_windows)

    @property
    def override_limits(self) -> OverrideLimits:
        """The most an alert's overrides may ask for, and where their local paths may point."""
        return OverrideLimits(self.max_time_limit_seconds, self.bytes_per_session, self.local_roots)

    def default_options(self) -> CaptureOptions:
        return CaptureOptions(
            time_limit_seconds=self.time_limit_seconds,
            bytes_per_packet=self.bytes_per_packet,
            bytes_per_session=self.bytes_per_session,
            filters=self.filters,
            local_path=self.local_path,
        )

    def capture_options(self, overrides: CaptureOverrides) -> CaptureOptions:
        """The settings' options, narrowed by an alert's (already validated) overrides."""
        changes = {name: getattr(overrides, name) for name in overrides.model_fields_set}
        return self.default_options().model_copy(update=changes)


def _blank(value: Any) -> bool:
    return isinstance(value, str) and not value.strip()


# Read by azure-identity's DefaultAzureCredential, not by Settings: the app's identity is not a setting
# it validates, but it is one an operator sets.
IDENTITY_SETTINGS = ("AZURE_CLIENT_ID",)


def _variables() -> dict[str, str]:
    """Settings field -> the environment variable it is read from."""
    names = {}
    for field, info in Settings.model_fields.items():
        alias = info.validation_alias
        names[field] = alias if isinstance(alias, str) else f"{_ENV_PREFIX}{field.upper()}"
    return names


def setting_names() -> tuple[str, ...]:
    """Every application setting the app reads (for the README table and deployment template checks)."""
    return (*_variables().values(), *IDENTITY_SETTINGS)


def load_settings() -> Settings:
    """Read and validate the settings; raises SettingsError that names the offending variable."""
    try:
        return Settings()
    except ValidationError as exc:
        error = exc.errors()[0]
        names = _variables()
        loc = list(error["loc"])
        head = str(loc.pop(0)) if loc else ""
        variable = names.get(head, head if head in names.values() else "")
        where = join_location(variable, loc) if variable else ""
        message = describe(error, {})
        raise SettingsError(f"{where}: {message}" if where else message) from None


@dataclass(frozen=True)
class OverrideLimits:
    """The configured maxima an alert's overrides are validated against (Network Watcher's by default)."""

    max_time_limit_seconds: int = MAX_TIME_LIMIT_SECONDS
    max_bytes_per_session: int = MAX_UINT32
    local_roots: LocalRoots = dataclasses.field(default_factory=lambda: LocalRoots())


# Spellings of each override, folded (case, '_', '-', '.', spaces ignored; an optional `capture`
# prefix): ours first, then the Network Watcher API's own name.
_OVERRIDE_SPELLINGS = {
    "timeLimitSeconds": ("timelimitseconds", "timelimitinseconds"),
    "bytesPerPacket": ("bytesperpacket", "bytestocaptureperpacket"),
    "bytesPerSession": ("bytespersession", "totalbytespersession"),
    "filters": ("filters",),
    "localPath": ("localpath",),
}
_CANONICAL = {folded: key for key, spellings in _OVERRIDE_SPELLINGS.items() for folded in spellings}


class CaptureOverrides(BaseModel):
    """An alert's capture options (manual `capture`, or `capture*` custom properties), validated once.

    Validate with `CaptureOverrides.parse(values, where, limits)`: it folds the spellings and turns
    errors into an InputError at `capture.<option>`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    time_limit_seconds: int | None = Field(default=None, alias="timeLimitSeconds")
    bytes_per_packet: int | None = Field(default=None, alias="bytesPerPacket")
    bytes_per_session: int | None = Field(default=None, alias="bytesPerSession")
    filters: Filters | None = None
    local_path: str | None = Field(default=None, alias="localPath")

    @classmethod
    def parse(
        cls, values: Mapping[str, Any], where: str, limits: OverrideLimits | None = None
    ) -> CaptureOverrides:
        """Fold the spellings of `values` and validate them; raises InputError."""
        folded: dict[str, Any] = {}
        origin: dict[str, str] = {}
        for key, value in values.items():
            canonical = _canonical(key)
            if canonical in folded:
                raise InputError(
                    f"capture option {canonical!r} is given twice "
                    f"(as {quote(origin[canonical])} and {quote(key)})",
                    f"{where}.{key}",
                )
            folded[canonical] = value
            origin[canonical] = key
        try:
            return cls.model_validate(folded, context=limits or OverrideLimits())
        except ValidationError as exc:
            # The location names the option as the caller spelled it, where the caller put it.
            error = exc.errors()[0]
            head, *rest = error["loc"] or ("",)
            spelled = origin.get(str(head), str(head))
            message = describe(
                error, {}, tuple(_OVERRIDE_SPELLINGS) if error["type"] == "extra_forbidden" else ()
            )
            raise InputError(message, join_location(f"{where}.{spelled}", rest)) from None

    @field_validator("time_limit_seconds", "bytes_per_packet", "bytes_per_session", mode="before")
    @classmethod
    def _bounded(cls, value: Any, info: ValidationInfo) -> int:
        limits = info.context if isinstance(info.context, OverrideLimits) else OverrideLimits()
        low, high = {
            "time_limit_seconds": (1, limits.max_time_limit_seconds),
            "bytes_per_packet": (0, MAX_UINT32),
            "bytes_per_session": (1, limits.max_bytes_per_session),
        }[str(info.field_name)]
        if isinstance(value, bool):
            raise ValueError("must be an integer, not a boolean")
        if isinstance(value, str) and _NUMBER.fullmatch(value):
            value = int(value)  # ASCII digits only: int() would also read "٣" or "３"
        if not isinstance(value, int):
            raise ValueError(f"must be an integer between {low} and {high}")
        if not low <= value <= high:
            raise ValueError(f"is {quote(value)}; allowed range is {low}..{high}")
        return value

    @field_validator("local_path", mode="before")
    @classmethod
    def _local_path(cls, value: Any, info: ValidationInfo) -> str:
        if not isinstance(value, str):
            raise ValueError("must be a string")
        limits = info.context if isinstance(info.context, OverrideLimits) else OverrideLimits()
        return validate_local_path(value, limits.local_roots)

    def to_json(self) -> dict[str, Any]:
        """The options given, under their canonical names (filters as Network Watcher writes them)."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True, exclude_none=True)


def _canonical(key: str) -> str:
    folded = re.sub(r"[\s_.\-]", "", fold(key))
    return _CANONICAL.get(folded) or _CANONICAL.get(folded.removeprefix("capture")) or key


@dataclass(frozen=True)
class LocalRoots:
    """The folders a capture file may be written under on the VM, per OS (settings, validated)."""

    linux: str = DEFAULT_LINUX_ROOT
    windows: str = DEFAULT_WINDOWS_ROOT


_WINDOWS_ABSOLUTE = re.compile(r"[A-Za-z]:\\")
_WINDOWS_DEVICES = re.compile(r"(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?", re.IGNORECASE)
_WINDOWS_FORBIDDEN = set('<>:"/|?*')


def local_path_os(value: str) -> Literal["Linux", "Windows"]:
    """Which OS a (validated) local path is written for: its own form decides."""
    return "Windows" if _WINDOWS_ABSOLUTE.match(value) else "Linux"


def validate_local_path(value: str, roots: LocalRoots | None = None) -> str:
    """A folder on the VM, under the allowed root of the OS its form names; returns it without a
    trailing separator.

    The path's form picks the rule: `/...` is a Linux path (Network Watcher requires it under
    /var/captures), `X:\\...` a Windows path. Anything else (relative, `~user`, UNC `\\\\host\\share`,
    device `\\\\.\\` or `\\\\?\\` paths) is refused, as are `..`, control characters and long paths.
    """
    roots = roots or LocalRoots()
    if len(value) > MAX_LOCAL_PATH:
        raise ValueError(
            f"the local path is {len(value)} characters long; at most {MAX_LOCAL_PATH} are accepted"
        )
    if not value.isprintable():
        raise ValueError("the local path must not contain control characters")
    if value.startswith("/"):
        return _under_root(value, "/", roots.linux, "Linux", case_sensitive=True)
    if _WINDOWS_ABSOLUTE.match(value):
        rest = value[3:].split("\\")
        if any(ch in _WINDOWS_FORBIDDEN for ch in value[2:]):
            raise ValueError('a Windows local path cannot contain any of < > : " / | ? * after the drive')
        if any(_WINDOWS_DEVICES.fullmatch(part.rstrip(" .")) for part in rest):
            raise ValueError("a Windows local path cannot name a device (CON, NUL, COM1, LPT1, ...)")
        return _under_root(value, "\\", roots.windows, "Windows", case_sensitive=False)
    raise ValueError(
        f"the local path must be absolute: under {roots.linux} on Linux VMs or {roots.windows} on Windows "
        "VMs (no relative, '~', network share or device paths)"
    )


def _under_root(value: str, sep: str, root: str, os_name: str, *, case_sensitive: bool) -> str:
    parts = value.rstrip(sep).split(sep)
    if any(part in ("..", ".") for part in parts) or sep * 2 in value:
        raise ValueError(f"the local path must not contain '..', '.' or empty segments ({os_name} path)")
    path = value.rstrip(sep) or value
    same = (lambda a, b: a == b) if case_sensitive else (lambda a, b: fold(a) == fold(b))
    base = root.rstrip(sep)
    if not (same(path, base) or same(path[: len(base) + 1], base + sep)):
        raise ValueError(f"on {os_name} VMs the local path must be under {root}")
    return path
