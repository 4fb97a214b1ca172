"""A TokenCredential that takes tokens straight from an emulator (no HTTP): for tests that don't exercise
the managed-identity endpoint itself. ``emu.credential()`` returns one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from azure.core.credentials import AccessToken, AccessTokenInfo, TokenRequestOptions


def scope_to_resource(scope: str) -> str:
    return scope[: -len("/.default")] if scope.endswith("/.default") else scope


class EmulatorCredential:
    def __init__(self, issue: Callable[[str], tuple[str, int]]) -> None:
        self._issue = issue

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        token, exp = self._issue(scope_to_resource(scopes[0]))
        return AccessToken(token, exp)

    def get_token_info(self, *scopes: str, options: TokenRequestOptions | None = None) -> AccessTokenInfo:
        token, exp = self._issue(scope_to_resource(scopes[0]))
        return AccessTokenInfo(token, exp)

    def close(self) -> None:
        pass

    def __enter__(self) -> EmulatorCredential:
        return self

    def __exit__(self, *args: object) -> None:
        pass
