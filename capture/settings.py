"""App settings and per-capture options.

Settings are read once from the environment (Function App application settings) by pydantic-settings
and validated at start, so that a misconfigured app says what is wrong, naming the variable, instead of
failing on the first alert. Per-alert overrides are one model validated at intake against the Network
Watcher limits and the configured maxima: an alert rule author cannot ask for more than the operator
allowed.
"""

from __future__ import annotations

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

from capture.errors import InputError, describe, input_error, join_location
from capture.resource_ids import InvalidResourceId, Scope, parse_resource_id, parse_scope

__all__ = [
    "DEFAULT_MONITOR_SCHEDULE",
    "CaptureFilter",
    "CaptureOptions",
    "CaptureOverrides",
    "OverrideLimits",
    "Settings",
    "SettingsError",
    "load_settings",
    "setting_names",
    "validate_local_path",
]

# Network Watcher limits (PacketCaptureParameters in the 2026-03-01 swagger).
MAX_TIME_LIMIT_SECONDS = 18000
MAX_UINT32 = 4294967295
DEFAULT_BYTES_PER_SESSION = 1073741824
DEFAULT_MONITOR_SCHEDULE = "0 * * * * *"
MAX_FILTERS = 10
# Flight recorder: the tag that opts a VM in, and the shortest session worth replacing before it ends
# (the scheduler replaces a ring in its last 5 minutes, so a shorter session would never settle).
DEFAULT_RECORDER_TAG = "capture-recorder"
MIN_RECORDER_SESSION_SECONDS = 900
_TAG_NAME = re.compile(r"^[^<>%&\\?/'*]{1,512}$")
_NAME_PREFIX = re.compile(r"^[a-z0-9][a-z0-9-]{0,23}$")
_PORTS = re.compile(r"^\d{1,5}(-\d{1,5})?$|^(\d{1,5};)+\d{0,5};?$|^\d{1,5}$")
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
        names = {(f.alias or n).casefold(): f.alias or n for n, f in cls.model_fields.items()}
        return {names.get(k.casefold(), k) if isinstance(k, str) else k: v for k, v in data.items()}

    @field_validator("protocol", mode="before")
    @classmethod
    def _protocol(cls, value: Any) -> Any:
        if isinstance(value, str):
            canonical = {"tcp": "TCP", "udp": "UDP", "any": "Any"}.get(value.casefold())
            return canonical or value
        return value

    @field_validator("local_ip_address", "remote_ip_address")
    @classmethod
    def _addresses(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        parts = (
            value.rstrip(";").split(";") if ";" in value else value.split("-") if "-" in value else [value]
        )
        if ";" not in value and "-" in value and len(parts) != 2:
            raise ValueError("an IP range is written 'first-last'")
        for part in parts:
            try:
                ipaddress.ip_address(part.strip())
            except ValueError:
                raise ValueError(f"{part!r} is not an IP address") from None
        return value

    @field_validator("local_port", "remote_port", mode="before")
    @classmethod
    def _ports(cls, value: Any) -> Any:
        if value is None or value == "":
            return None
        text = str(value)
        if not _PORTS.match(text):
            raise ValueError("ports are written '80', '80-85' or '80;443;'")
        for number in re.split(r"[-;]", text):
            if number and not 0 <= int(number) <= 65535:
                raise ValueError(f"port {number} is out of range 0..65535")
        return text

    def to_arm(self) -> dict[str, str]:
        """The filter as the PacketCapture PUT body carries it."""
        return self.model_dump(by_alias=True, exclude_none=True)


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
        return value.casefold() if isinstance(value, str) else value

    @field_validator("storage_account_id")
    @classmethod
    def _storage(cls, value: str | None) -> str | None:
        if not value:
            return None
        try:
            rid = parse_resource_id(value)
        except InvalidResourceId as exc:
            raise ValueError(str(exc)) from None
        if rid.provider.casefold() != "microsoft.storage" or rid.types[0].casefold() != "storageaccounts":
            raise ValueError(
                "must be a storage account ID (…/providers/Microsoft.Storage/storageAccounts/NAME)"
            )
        return value

    @field_validator("local_path")
    @classmethod
    def _local_path(cls, value: str | None) -> str | None:
        if not value:
            return None
        return validate_local_path(value)

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
    def override_limits(self) -> OverrideLimits:
        """The most an alert's overrides may ask for."""
        return OverrideLimits(self.max_time_limit_seconds, self.bytes_per_session)

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
                    f"capture option {canonical!r} is given twice (as {origin[canonical]!r} and {key!r})",
                    f"{where}.{key}",
                )
            folded[canonical] = value
            origin[canonical] = key
        try:
            return cls.model_validate(folded, context=limits or OverrideLimits())
        except ValidationError as exc:
            raise input_error(exc, prefix="capture", known=_OVERRIDE_SPELLINGS) from None

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
        if isinstance(value, str) and re.fullmatch(r"\s*\d{1,12}\s*", value):
            value = int(value)
        if not isinstance(value, int):
            raise ValueError(f"must be an integer between {low} and {high}")
        if not low <= value <= high:
            raise ValueError(f"is {value}; allowed range is {low}..{high}")
        return value

    @field_validator("local_path", mode="before")
    @classmethod
    def _local_path(cls, value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError("must be a string")
        return validate_local_path(value)

    def to_json(self) -> dict[str, Any]:
        """The options given, under their canonical names (filters as Network Watcher writes them)."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True, exclude_none=True)


def _canonical(key: str) -> str:
    folded = re.sub(r"[\s_.\-]", "", key.casefold())
    return _CANONICAL.get(folded) or _CANONICAL.get(folded.removeprefix("capture")) or key


def validate_local_path(value: str) -> str:
    """A folder on the VM; Network Watcher requires Linux paths under /var/captures."""
    if value.startswith("/") and not (value == "/var/captures" or value.startswith("/var/captures/")):
        raise ValueError("on Linux VMs the local path must be under /var/captures")
    if ".." in value or any(ch in value for ch in "\0\n\r"):
        raise ValueError("the local path must not contain '..' or control characters")
    return value.rstrip("/\\") or value
