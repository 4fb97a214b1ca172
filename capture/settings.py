"""App settings and per-capture options.

Settings are read once from the environment (Function App application settings) and validated at
start, so that a misconfigured app says what is wrong instead of failing on the first alert.
Per-alert overrides are validated against the Network Watcher limits and never exceed the
configured maxima: an alert rule author cannot ask for more than the operator allowed.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import os
import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from capture.resource_ids import InvalidResourceId, Scope, parse_resource_id, parse_scope

# Network Watcher limits (PacketCaptureParameters in the 2026-03-01 swagger).
MAX_TIME_LIMIT_SECONDS = 18000
MAX_UINT32 = 4294967295
DEFAULT_BYTES_PER_SESSION = 1073741824
_NAME_PREFIX = re.compile(r"^[a-z0-9][a-z0-9-]{0,23}$")
_PORTS = re.compile(r"^\d{1,5}(-\d{1,5})?$|^(\d{1,5};)+\d{0,5};?$|^\d{1,5}$")


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


def _parse_filters(raw: Any, where: str) -> list[CaptureFilter]:
    if isinstance(raw, str):
        try:
            raw = json.loads(raw) if raw.strip() else []
        except json.JSONDecodeError as exc:
            raise ValueError(f"{where} must be a JSON list of filters: {exc.msg}") from None
    if not isinstance(raw, list):
        raise ValueError(f"{where} must be a list of filter objects")
    if len(raw) > 10:
        raise ValueError(f"{where} has {len(raw)} filters; at most 10 are accepted")
    filters = []
    for index, item in enumerate(raw):
        try:
            filters.append(CaptureFilter.model_validate(item))
        except ValidationError as exc:
            raise ValueError(f"{where}[{index}]: {_first_error(exc)}") from None
    return filters


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    location = ".".join(str(part) for part in error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{location}: {message}" if location else message


class CaptureOptions(BaseModel):
    """What one capture is created with: settings, narrowed by validated alert overrides."""

    model_config = ConfigDict(frozen=True)

    time_limit_seconds: int
    bytes_per_packet: int
    bytes_per_session: int
    filters: tuple[CaptureFilter, ...] = ()
    local_path: str | None = None


class OverrideError(ValueError):
    """An alert asked for capture options that are invalid or above the configured maxima."""

    def __init__(self, message: str, location: str) -> None:
        super().__init__(message)
        self.message = message
        self.location = location


class Settings(BaseModel):
    """Every app setting the app reads, typed and validated once."""

    model_config = ConfigDict(frozen=True)

    storage_account_id: str | None = None
    local_path: str | None = None
    time_limit_seconds: int = Field(default=60, ge=1, le=MAX_TIME_LIMIT_SECONDS)
    max_time_limit_seconds: int = Field(default=MAX_TIME_LIMIT_SECONDS, ge=1, le=MAX_TIME_LIMIT_SECONDS)
    max_sessions: int = Field(default=10, ge=1, le=10000)
    bytes_per_packet: int = Field(default=0, ge=0, le=MAX_UINT32)
    bytes_per_session: int = Field(default=DEFAULT_BYTES_PER_SESSION, ge=1, le=MAX_UINT32)
    filters: tuple[CaptureFilter, ...] = ()
    name_prefix: str = "alertcap"
    allowed_scopes: tuple[Scope, ...] = ()
    arm_endpoint: str = "https://management.azure.com"
    compute_api_version: str = "2024-07-01"
    webhook_budget_seconds: float = Field(default=8.0, gt=0, le=60)
    monitor_schedule: str = "0 * * * * *"
    start_grace_seconds: int = Field(default=300, ge=10)
    notify_urls: tuple[str, ...] = ()
    notify_format: Literal["json", "teams", "slack"] = "json"
    blob_endpoint: str | None = None
    analyze: bool = True

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

    def default_options(self) -> CaptureOptions:
        return CaptureOptions(
            time_limit_seconds=self.time_limit_seconds,
            bytes_per_packet=self.bytes_per_packet,
            bytes_per_session=self.bytes_per_session,
            filters=self.filters,
            local_path=self.local_path,
        )

    def capture_options(self, overrides: Mapping[str, Any]) -> CaptureOptions:
        """Apply an alert's overrides; raises OverrideError naming the field and the allowed range."""
        options = self.default_options()
        changes: dict[str, Any] = {}
        for key, value in overrides.items():
            where = f"capture.{key}"
            if key == "timeLimitSeconds":
                changes["time_limit_seconds"] = _bounded_int(value, where, 1, self.max_time_limit_seconds)
            elif key == "bytesPerPacket":
                changes["bytes_per_packet"] = _bounded_int(value, where, 0, MAX_UINT32)
            elif key == "bytesPerSession":
                changes["bytes_per_session"] = _bounded_int(value, where, 1, self.bytes_per_session)
            elif key == "filters":
                try:
                    changes["filters"] = tuple(_parse_filters(value, where))
                except ValueError as exc:
                    raise OverrideError(str(exc), where) from None
            elif key == "localPath":
                if not isinstance(value, str):
                    raise OverrideError(f"{where} must be a string", where)
                try:
                    changes["local_path"] = validate_local_path(value)
                except ValueError as exc:
                    raise OverrideError(f"{where}: {exc}", where) from None
            else:
                known = "timeLimitSeconds, bytesPerPacket, bytesPerSession, filters, localPath"
                raise OverrideError(f"unknown capture option {key!r}; known options: {known}", where)
        return options.model_copy(update=changes)


def validate_local_path(value: str) -> str:
    """A folder on the VM; Network Watcher requires Linux paths under /var/captures."""
    if value.startswith("/") and not (value == "/var/captures" or value.startswith("/var/captures/")):
        raise ValueError("on Linux VMs the local path must be under /var/captures")
    if ".." in value or any(ch in value for ch in "\0\n\r"):
        raise ValueError("the local path must not contain '..' or control characters")
    return value.rstrip("/\\") or value


def _bounded_int(value: Any, where: str, low: int, high: int) -> int:
    if isinstance(value, bool):
        raise OverrideError(f"{where} must be an integer, not a boolean", where)
    if isinstance(value, str) and re.fullmatch(r"\s*\d{1,12}\s*", value):
        value = int(value)
    if not isinstance(value, int):
        raise OverrideError(f"{where} must be an integer between {low} and {high}", where)
    if not low <= value <= high:
        raise OverrideError(f"{where} is {value}; allowed range is {low}..{high}", where)
    return value


_ENV = {
    "storage_account_id": "CAPTURE_STORAGE_ACCOUNT_ID",
    "local_path": "CAPTURE_LOCAL_PATH",
    "time_limit_seconds": "CAPTURE_TIME_LIMIT_SECONDS",
    "max_time_limit_seconds": "CAPTURE_MAX_TIME_LIMIT_SECONDS",
    "max_sessions": "CAPTURE_MAX_SESSIONS",
    "bytes_per_packet": "CAPTURE_BYTES_PER_PACKET",
    "bytes_per_session": "CAPTURE_BYTES_PER_SESSION",
    "filters": "CAPTURE_FILTERS",
    "name_prefix": "CAPTURE_NAME_PREFIX",
    "allowed_scopes": "CAPTURE_ALLOWED_SCOPES",
    "arm_endpoint": "ARM_ENDPOINT",
    "compute_api_version": "CAPTURE_COMPUTE_API_VERSION",
    "webhook_budget_seconds": "CAPTURE_WEBHOOK_BUDGET_SECONDS",
    "monitor_schedule": "CAPTURE_MONITOR_SCHEDULE",
    "start_grace_seconds": "CAPTURE_START_GRACE_SECONDS",
    "notify_urls": "CAPTURE_NOTIFY_URL",
    "notify_format": "CAPTURE_NOTIFY_FORMAT",
    "blob_endpoint": "CAPTURE_BLOB_ENDPOINT",
    "analyze": "CAPTURE_ANALYZE",
}


def settings_from_env(environ: Mapping[str, str]) -> Settings:
    """Build Settings from app settings; raises SettingsError that names the offending setting."""
    raw: dict[str, Any] = {}
    for field, name in _ENV.items():
        value = environ.get(name, "").strip()
        if not value:
            continue
        try:
            if field == "filters":
                raw[field] = tuple(_parse_filters(value, name))
            elif field == "allowed_scopes":
                raw[field] = tuple(parse_scope(part.strip()) for part in value.split(",") if part.strip())
            elif field == "notify_urls":
                raw[field] = tuple(_notify_url(part.strip()) for part in value.split(",") if part.strip())
            elif field == "notify_format":
                raw[field] = value.casefold()
            else:
                raw[field] = value
        except (ValueError, InvalidResourceId) as exc:
            raise SettingsError(f"{name}: {exc}") from None
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else ""
        message = str(error["msg"]).removeprefix("Value error, ")
        setting = _ENV.get(field)
        raise SettingsError(f"{setting}: {message}" if setting else message) from None


def _notify_url(value: str) -> str:
    if not value.startswith(("https://", "http://")):
        raise ValueError(f"{value[:40]!r} is not an http(s) URL")
    return value


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings, read on first use (tests clear the cache after changing env)."""
    return settings_from_env(os.environ)
