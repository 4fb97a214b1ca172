"""Entra ID-shaped access tokens (RS256 JWTs) issued by the emulated managed identity, and their checks.

Tokens look like the v1.0 tokens App Service managed identities get: ``aud`` is the requested resource
exactly as sent (``https://management.azure.com``, ``https://storage.azure.com``), ``iss`` is
``https://sts.windows.net/<tenant>/``, plus ``oid``/``sub`` (principal id), ``appid`` (client id), ``tid``,
``iat``/``nbf``/``exp`` and ``idtyp: app``. They are signed with an RSA key generated once per process, so
only tokens an emulator of this process issued verify (and ``iss`` must name this world's tenant).
Expiry is real wall-clock time (the SDK refreshes on wall time).
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from .tls import process_rsa_key

ARM_AUDIENCES = frozenset(
    {
        "https://management.azure.com",
        "https://management.azure.com/",
        "https://management.core.windows.net",
        "https://management.core.windows.net/",
    }
)


class TokenError(Exception):
    """A bearer token was refused; ``code`` and ``message`` are the ARM error to answer with (401)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class TokenClaims:
    audience: str
    expires_on: int
    object_id: str
    tenant_id: str
    client_id: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenIssuer:
    """Issues and verifies the emulator's JWTs. Thread-safe; verified tokens are cached."""

    def __init__(self, tenant_id: str) -> None:
        self.tenant_id = tenant_id
        self.issuer = f"https://sts.windows.net/{tenant_id}/"
        self._key: rsa.RSAPrivateKey = process_rsa_key("jwt")
        self._public = self._key.public_key()
        self._kid = _b64(uuid.uuid4().bytes)
        self._cache: dict[str, TokenClaims] = {}
        self._lock = threading.Lock()

    def issue(
        self,
        resource: str,
        *,
        object_id: str,
        client_id: str,
        lifetime: float = 86400,
        mi_resource_id: str | None = None,
    ) -> tuple[str, int]:
        """Return ``(jwt, expires_on_epoch_seconds)``; a negative ``lifetime`` gives an expired token."""
        now = int(time.time())
        exp = now + int(lifetime)
        header = {"typ": "JWT", "alg": "RS256", "x5t": self._kid, "kid": self._kid}
        claims: dict[str, Any] = {
            "aud": resource,
            "iss": self.issuer,
            "iat": now - 5,
            "nbf": min(now - 5, exp),
            "exp": exp,
            "aio": _b64(uuid.uuid4().bytes),
            "appid": client_id,
            "appidacr": "2",
            "idp": self.issuer,
            "idtyp": "app",
            "oid": object_id,
            "rh": _b64(uuid.uuid4().bytes),
            "sub": object_id,
            "tid": self.tenant_id,
            "uti": _b64(uuid.uuid4().bytes),
            "ver": "1.0",
        }
        if mi_resource_id:
            claims["xms_mirid"] = mi_resource_id
        signing_input = (
            _b64(json.dumps(header, separators=(",", ":")).encode())
            + "."
            + _b64(json.dumps(claims, separators=(",", ":")).encode())
        )
        signature = self._key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64(signature)}", exp

    def verify(self, token: str) -> TokenClaims:
        """Check signature, issuer and expiry; raise :class:`TokenError` with the ARM code otherwise."""
        with self._lock:
            cached = self._cache.get(token)
        if cached is None:
            cached = self._decode(token)
            with self._lock:
                if len(self._cache) > 10_000:
                    self._cache.clear()
                self._cache[token] = cached
        now = time.time()
        if cached.expires_on <= now:
            # ARM wording (ExpiredAuthenticationToken).
            raise TokenError(
                "ExpiredAuthenticationToken",
                f"The access token expiry UTC time '{_fmt(cached.expires_on)}' is earlier than current UTC "
                f"time '{_fmt(now)}'.",
            )
        return cached

    def _decode(self, token: str) -> TokenClaims:
        invalid = TokenError("InvalidAuthenticationToken", "The access token is invalid.")
        parts = token.split(".")
        if len(parts) != 3:
            raise invalid
        try:
            header = json.loads(_unb64(parts[0]))
            claims = json.loads(_unb64(parts[1]))
            signature = _unb64(parts[2])
        except (ValueError, UnicodeDecodeError) as exc:
            raise invalid from exc
        if not isinstance(header, dict) or not isinstance(claims, dict) or header.get("alg") != "RS256":
            raise invalid
        try:
            self._public.verify(
                signature, f"{parts[0]}.{parts[1]}".encode("ascii"), padding.PKCS1v15(), hashes.SHA256()
            )
        except (InvalidSignature, UnicodeEncodeError) as exc:
            raise TokenError(
                "InvalidAuthenticationToken",
                "The access token is invalid: its signature is not from this emulator's identity endpoint.",
            ) from exc
        if claims.get("iss") != self.issuer:
            raise TokenError(
                "InvalidAuthenticationTokenTenant",
                f"The access token is from the wrong issuer '{claims.get('iss')}'. It must match the tenant "
                f"'{self.issuer}' associated with this subscription. Please use the authority (URL) "
                f"'https://login.windows.net/{self.tenant_id}' to get the token.",
            )
        try:
            return TokenClaims(
                audience=str(claims["aud"]),
                expires_on=int(claims["exp"]),
                object_id=str(claims.get("oid", "")),
                tenant_id=str(claims.get("tid", "")),
                client_id=str(claims.get("appid", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise invalid from exc


def _fmt(epoch: float) -> str:
    return time.strftime("%m/%d/%Y %H:%M:%S", time.gmtime(epoch))
