"""ARM-style errors: ``{"error": {"code", "message", "target"?}}`` with an HTTP status."""

from __future__ import annotations

from typing import Any

RESOURCE_NOT_FOUND_FIX = "For more details please go to https://aka.ms/ARMResourceNotFoundFix"


class ArmError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        target: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.target = target
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        err: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.target is not None:
            err["target"] = self.target
        return {"error": err}


def bad_request(code: str, message: str, target: str | None = None) -> ArmError:
    return ArmError(400, code, message, target)


def resource_not_found(full_type: str, name: str, resource_group: str) -> ArmError:
    # ARM wording as users report it (docs/EMULATOR.md).
    return ArmError(
        404,
        "ResourceNotFound",
        f"The Resource '{full_type}/{name}' under resource group '{resource_group}' was not found. "
        + RESOURCE_NOT_FOUND_FIX,
    )


def resource_group_not_found(resource_group: str) -> ArmError:
    # ARM wording as users report it (docs/EMULATOR.md, read a VM).
    return ArmError(404, "ResourceGroupNotFound", f"Resource group '{resource_group}' could not be found.")
