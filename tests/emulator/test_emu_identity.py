"""Managed identity endpoint (App Service protocol) and ARM authentication."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import CredentialUnavailableError, DefaultAzureCredential, ManagedIdentityCredential
from azure.mgmt.network import NetworkManagementClient

from emulator import Emulator
from emulator.testing import (
    SAMPLE_SUBSCRIPTION,
    SAMPLE_WATCHER_EASTUS,
    error_code,
)

NW_RG, NW = SAMPLE_WATCHER_EASTUS


def claims(token: str) -> dict[str, Any]:
    header, payload, signature = token.split(".")
    assert signature
    assert json.loads(base64.urlsafe_b64decode(header + "==="))["alg"] == "RS256"
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "==="))
    return decoded


def test_managed_identity_credential_gets_a_well_formed_jwt(emu: Emulator) -> None:
    token = ManagedIdentityCredential().get_token("https://management.azure.com/.default")
    c = claims(token.token)
    assert c["aud"] == "https://management.azure.com"
    assert c["iss"] == f"https://sts.windows.net/{emu.tenant_id}/"
    assert c["tid"] == emu.tenant_id
    assert c["oid"] == emu.world.identity.principal_id
    assert c["exp"] > time.time() + 3600
    assert token.expires_on == c["exp"]
    (rec,) = emu.identity_log
    assert rec.path == "/msi/token"
    assert rec.status == 200
    assert rec.query["api-version"] == "2019-08-01"
    assert rec.query["resource"] == "https://management.azure.com"
    assert emu.request_log == []  # identity calls never count as ARM calls


def test_default_azure_credential_uses_the_emulated_managed_identity(emu: Emulator) -> None:
    with DefaultAzureCredential() as cred:
        token = cred.get_token("https://storage.azure.com/.default")
    c = claims(token.token)
    assert c["aud"] == "https://storage.azure.com"  # what Azurite's --oauth basic checks
    assert c["iss"].startswith("https://sts.windows.net/")


def test_identity_endpoint_refuses_a_missing_or_wrong_header(emu: Emulator) -> None:
    params = {"api-version": "2019-08-01", "resource": "https://management.azure.com"}
    missing = requests.get(emu.identity_endpoint, params=params, timeout=5)
    wrong = requests.get(
        emu.identity_endpoint, params=params, headers={"X-IDENTITY-HEADER": "nope"}, timeout=5
    )
    assert missing.status_code == wrong.status_code == 401
    assert wrong.json()["statusCode"] == 401
    assert "access_token" not in wrong.json()
    bad_version = requests.get(
        emu.identity_endpoint,
        params={**params, "api-version": "2017-09-01"},
        headers={"X-IDENTITY-HEADER": emu.identity_header},
        timeout=5,
    )
    assert bad_version.status_code == 400
    ok = requests.get(
        emu.identity_endpoint, params=params, headers={"X-IDENTITY-HEADER": emu.identity_header}, timeout=5
    )
    body = ok.json()
    assert ok.status_code == 200
    assert set(body) == {"access_token", "expires_on", "resource", "token_type", "client_id"}
    assert body["token_type"] == "Bearer"
    assert body["expires_on"].isdigit()


def test_sdk_credential_with_a_wrong_identity_header_fails(
    emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IDENTITY_HEADER", "not-the-secret")
    with pytest.raises((CredentialUnavailableError, ClientAuthenticationError)):
        ManagedIdentityCredential().get_token("https://management.azure.com/.default")


def test_user_assigned_identity_by_client_id(emu: Emulator) -> None:
    known = ManagedIdentityCredential(client_id=emu.world.identity.client_id).get_token(
        "https://management.azure.com/.default"
    )
    assert claims(known.token)["appid"] == emu.world.identity.client_id
    with pytest.raises((CredentialUnavailableError, ClientAuthenticationError)):
        ManagedIdentityCredential(client_id="11111111-2222-3333-4444-555555555555").get_token(
            "https://management.azure.com/.default"
        )


def test_arm_answers_401_without_a_token(emu: Emulator) -> None:
    url = (
        f"{emu.arm_endpoint}/subscriptions/{SAMPLE_SUBSCRIPTION}/providers/Microsoft.Network/networkWatchers"
    )
    url += "?api-version=2026-03-01"
    r = requests.get(url, timeout=5)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "AuthenticationFailed"
    challenge = r.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer authorization_uri=")
    assert 'error="invalid_token"' in challenge


class _Static:
    def __init__(self, token: str) -> None:
        self.token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self.token, int(time.time()) + 3600)


@pytest.mark.parametrize(
    ("make_token", "code"),
    [
        (lambda emu: "not-a-jwt", "InvalidAuthenticationToken"),
        (lambda emu: "eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJ4In0.c2ln", "InvalidAuthenticationToken"),
        (lambda emu: emu.issue_token(lifetime=-60), "ExpiredAuthenticationToken"),
        (lambda emu: emu.issue_token("https://storage.azure.com"), "InvalidAuthenticationTokenAudience"),
    ],
    ids=["garbage", "forged", "expired", "wrong-audience"],
)
def test_sdk_surfaces_401_as_client_authentication_error_without_looping(
    emu: Emulator, make_token: Callable[[Emulator], str], code: str
) -> None:
    client = NetworkManagementClient(
        _Static(make_token(emu)),
        SAMPLE_SUBSCRIPTION,
        base_url=emu.arm_endpoint,
        connection_verify=emu.ca_cert_path,
    )
    with client, pytest.raises(ClientAuthenticationError) as info:
        client.network_watchers.get(NW_RG, NW)
    assert error_code(info.value) == code
    assert len(emu.request_log) == 1  # error="invalid_token" is not a claims challenge: no retry


def test_tls_needs_the_emulator_ca(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    from azure.core.exceptions import ServiceRequestError

    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    with (
        NetworkManagementClient(
            emu.credential(), SAMPLE_SUBSCRIPTION, base_url=emu.arm_endpoint, retry_total=0
        ) as untrusted,
        pytest.raises(ServiceRequestError, match="CERTIFICATE_VERIFY_FAILED"),
    ):
        untrusted.network_watchers.get(NW_RG, NW)
    localhost = emu.arm_endpoint.replace("127.0.0.1", "localhost")  # SAN DNS:localhost
    with NetworkManagementClient(
        emu.credential(), SAMPLE_SUBSCRIPTION, base_url=localhost, connection_verify=emu.ca_cert_path
    ) as trusted:
        assert trusted.network_watchers.get(NW_RG, NW).location == "eastus"
