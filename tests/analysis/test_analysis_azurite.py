"""Blob round trip through Azurite with the real azure-storage-blob client: the emulator uploads a capture
with the development key, the app reads it with a bearer token (as its managed identity does) and streams
it into the analysis."""

from __future__ import annotations

from pathlib import Path
from typing import Any, BinaryIO, cast

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.storage.blob import BlobClient, BlobServiceClient

from capture.analysis import analyze
from emulator.azurite import (
    ACCOUNT,
    Azurite,
    AzuriteNotInstalled,
    azurite_blob_url,
    dev_credential,
    split_storage_path,
    upload_capture,
)
from emulator.tokens import TokenIssuer

from .conftest import CaptureFactory
from .test_analysis_scenarios import assert_matches_truth

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
STORAGE_PATH = (
    "https://stcaptures.blob.core.windows.net/network-watcher-logs/resourceId=/SUBSCRIPTIONS/"
    "00000000-0000-0000-0000-000000000001/RESOURCEGROUPS/RG-APP/PROVIDERS/MICROSOFT.COMPUTE/"
    "VIRTUALMACHINES/VM-APP-01/2024/05/14/capture-abc123.cap"
)


class ManagedIdentity:
    """A TokenCredential handing out the emulator's Entra-shaped JWTs (RS256, aud storage, iss sts)."""

    def __init__(self, lifetime: float = 3600) -> None:
        self.issuer = TokenIssuer(TENANT)
        self.lifetime = lifetime
        self.scopes: list[str] = []

    def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        self.scopes.extend(scopes)
        resource = scopes[0].removesuffix("/.default")
        token, expires_on = self.issuer.issue(
            resource,
            object_id="11111111-2222-3333-4444-555555555555",
            client_id="app",
            lifetime=self.lifetime,
        )
        return AccessToken(token, expires_on)


def test_capture_round_trip_with_bearer_token(
    azurite: Azurite, tls_files: tuple[Path, Path], capture: CaptureFactory
) -> None:
    cert = str(tls_files[0])
    gen = capture("retransmissions")
    url = upload_capture(
        azurite.blob_endpoint, dev_credential(), STORAGE_PATH, gen.data, connection_verify=cert
    )
    assert url == azurite_blob_url(azurite.blob_endpoint, STORAGE_PATH)
    assert url.startswith(f"https://127.0.0.1:{azurite.port}/{ACCOUNT}/network-watcher-logs/resourceId")

    identity = ManagedIdentity()
    service = BlobServiceClient(azurite.blob_endpoint, credential=identity, connection_verify=cert)
    blob = service.get_blob_client("network-watcher-logs", split_storage_path(STORAGE_PATH)[2])
    props = blob.get_blob_properties()
    assert props.size == len(gen.data)
    assert props.content_settings.content_type == "application/vnd.tcpdump.pcap"
    assert identity.scopes
    assert identity.scopes[0] == "https://storage.azure.com/.default"

    downloader = blob.download_blob(max_concurrency=1)
    findings = analyze(cast(BinaryIO, downloader))  # the SDK's downloader reads by size, as the app does
    assert_matches_truth(findings, gen.truth)

    # uploading again overwrites; the container already exists
    upload_capture(azurite.blob_endpoint, dev_credential(), STORAGE_PATH, b"replaced", connection_verify=cert)
    again = BlobClient.from_blob_url(url, credential=identity, connection_verify=cert)
    assert again.download_blob().readall() == b"replaced"


def test_expired_and_missing_tokens_are_refused(azurite: Azurite, tls_files: tuple[Path, Path]) -> None:
    cert = str(tls_files[0])
    path = STORAGE_PATH.replace("capture-abc123", "capture-private")
    url = upload_capture(azurite.blob_endpoint, dev_credential(), path, b"secret", connection_verify=cert)
    expired = BlobClient.from_blob_url(url, credential=ManagedIdentity(lifetime=-120), connection_verify=cert)
    with pytest.raises((ClientAuthenticationError, HttpResponseError)) as refused:
        expired.download_blob().readall()
    assert refused.value.status_code in (401, 403)
    anonymous = BlobClient.from_blob_url(url, connection_verify=cert)
    with pytest.raises(HttpResponseError):
        anonymous.download_blob().readall()


def test_storage_path_mapping() -> None:
    assert split_storage_path(STORAGE_PATH)[:2] == ("stcaptures", "network-watcher-logs")
    assert split_storage_path(STORAGE_PATH)[2].endswith("VM-APP-01/2024/05/14/capture-abc123.cap")
    assert split_storage_path("https://127.0.0.1:10000/devstoreaccount1/c/a/b.cap") == (
        "devstoreaccount1",
        "c",
        "a/b.cap",
    )
    assert azurite_blob_url(
        "https://127.0.0.1:1/devstoreaccount1/", "https://x.blob.core.windows.net/c/a b.cap"
    ) == ("https://127.0.0.1:1/devstoreaccount1/c/a%20b.cap")
    with pytest.raises(ValueError, match="container/blob"):
        split_storage_path("https://x.blob.core.windows.net/only-container")
    with pytest.raises(ValueError, match="not a blob URL"):
        split_storage_path("/local/file.cap")


def test_missing_install_is_a_clear_error(tmp_path: Path, tls_files: tuple[Path, Path]) -> None:
    with pytest.raises(AzuriteNotInstalled, match="npm ci"):
        Azurite(*tls_files, root=tmp_path).start()
