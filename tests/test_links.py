"""Download links in reports: user-delegation SAS URLs that open without keys, against the real Azurite.

The app's identity (an Entra-shaped token, as the managed identity sends) asks Azurite for a delegation key;
the links must download exactly the stored bytes, only read, and stop working once they expire.
"""

from __future__ import annotations

import ssl
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from capture import CaptureView, SettingsError, load_settings
from capture.blobs import Blobs
from capture.settings import Settings
from capture.views import AlertRef, Analysis
from emulator.azurite import Azurite, dev_credential, upload_capture
from tests.analysis.test_analysis_azurite import ManagedIdentity
from tests.conftest import STORAGE_ID

BASE = (
    "https://stcaptures.blob.core.windows.net/network-watcher-logs/alert-captures/vm-web-1/2026/11/25/"
    "020304/vm-web-cpu/abc-123/alertcap-vm-web-1-0123456789abcdef"
)
FILES = {
    "file": (f"{BASE}.cap", b"\xd4\xc3\xb2\xa1 pretend pcap bytes \x00\x01\x02"),
    "summary": (f"{BASE}.summary.json", b'{"headline": "SYN flood"}'),
    "chart": (f"{BASE}.png", b"\x89PNG\r\n\x1a\n pretend chart"),
}


@pytest.fixture
def stored(azurite: Azurite, tls_files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> CaptureView:
    """A finished capture's three files in Azurite, and its report."""
    monkeypatch.setenv(
        "REQUESTS_CA_BUNDLE", str(tls_files[0])
    )  # the app trusts Azurite as it does in make run
    for path, data in FILES.values():
        upload_capture(
            azurite.blob_endpoint, dev_credential(), path, data, connection_verify=str(tls_files[0])
        )
    return CaptureView(
        name="alertcap-vm-web-1-0123456789abcdef",
        vm="vm-web-1",
        outcome="completed",
        storage_path=FILES["file"][0],
        alert=AlertRef(rule="vm-web-cpu", instance="abc-123"),
        analysis=Analysis(summary_path=FILES["summary"][0], chart_path=FILES["chart"][0]),
    )


def blobs(azurite: Azurite, clock: datetime | None = None, hours: int = 24) -> Blobs:
    identity = ManagedIdentity()
    values = Settings(
        storage_account_id=STORAGE_ID, blob_endpoint=azurite.blob_endpoint, link_lifetime_hours=hours
    )
    return Blobs(values, lambda: identity, clock=(lambda: clock) if clock else None)


def fetch(
    url: str, tls_files: tuple[Path, Path], method: str = "GET", data: bytes | None = None
) -> tuple[int, bytes, dict[str, str]]:
    context = ssl.create_default_context(cafile=str(tls_files[0]))
    request = urllib.request.Request(url, method=method, data=data, headers={"x-ms-blob-type": "BlockBlob"})
    try:
        with urllib.request.urlopen(request, context=context, timeout=30) as response:
            return response.status, response.read(), {k.lower(): v for k, v in response.headers.items()}
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), {k.lower(): v for k, v in exc.headers.items()}


def test_links_download_the_exact_bytes_without_any_key(azurite, tls_files, stored):
    links = blobs(azurite).links(stored)
    assert links is not None
    for field, (_, data) in FILES.items():
        url = getattr(links, field)
        status, body, headers = fetch(url, tls_files)
        assert (status, body) == (200, data), field
        query = parse_qs(urlsplit(url).query)
        assert query["sp"] == ["r"]  # read only
        assert "skoid" in query  # signed with a user delegation key, not an account key
        assert urlsplit(url).path.endswith(urlsplit(FILES[field][0]).path.split("/", 2)[2])
    assert links.file is not None
    _, _, headers = fetch(links.file, tls_files)
    assert headers["content-disposition"] == 'attachment; filename="alertcap-vm-web-1-0123456789abcdef.cap"'
    # the lifetime is the setting's: a day by default
    assert links.expires is not None
    assert timedelta(hours=23, minutes=59) < links.expires - datetime.now(UTC) <= timedelta(hours=24)


def test_links_only_read(azurite, tls_files, stored):
    links = blobs(azurite).links(stored)
    assert links is not None and links.file
    status, _, _ = fetch(links.file, tls_files, method="PUT", data=b"overwritten")
    assert status == 403
    assert fetch(links.file, tls_files)[1] == FILES["file"][1]


def test_links_stop_working_after_expiry(azurite, tls_files, stored):
    made_two_days_ago = blobs(azurite, clock=datetime.now(UTC) - timedelta(days=2)).links(stored)
    assert made_two_days_ago is not None and made_two_days_ago.expires is not None
    assert made_two_days_ago.expires < datetime.now(UTC)
    for field in FILES:
        status, _, _ = fetch(getattr(made_two_days_ago, field), tls_files)
        assert status == 403, field


def test_a_tampered_link_is_refused(azurite, tls_files, stored):
    links = blobs(azurite).links(stored)
    assert links is not None and links.summary
    other = links.summary.replace(".summary.json?", ".cap?")  # the summary's signature on the capture file
    assert fetch(other, tls_files)[0] == 403


def test_lifetime_comes_from_the_setting(azurite, stored):
    links = blobs(azurite, hours=2).links(stored)
    assert links is not None and links.expires is not None
    assert timedelta(hours=1, minutes=59) < links.expires - datetime.now(UTC) <= timedelta(hours=2)
    week = blobs(azurite, hours=168).links(stored)
    assert week is not None and week.expires is not None
    assert week.expires - datetime.now(UTC) <= timedelta(days=7)


def test_only_files_a_capture_has_get_links(azurite, stored):
    source = blobs(azurite)
    running = stored.model_copy(update={"outcome": None, "analysis": None})
    assert source.links(running) is None
    failed = stored.model_copy(update={"outcome": "failed", "analysis": Analysis()})
    assert source.links(failed) is None
    no_chart = stored.model_copy(update={"analysis": Analysis(summary_path=FILES["summary"][0])})
    links = source.links(no_chart)
    assert links is not None
    assert (bool(links.file), bool(links.summary), links.chart) == (True, True, None)


def test_storage_refusing_the_key_leaves_no_links_and_logs_no_signature(azurite, stored, caplog):
    refused = Blobs(
        Settings(storage_account_id=STORAGE_ID, blob_endpoint=azurite.blob_endpoint),
        lambda: ManagedIdentity(lifetime=-120),  # an expired token: storage refuses the delegation key
    )
    refused.add_links(stored)
    assert stored.links is None
    assert "could not be made" in caplog.text
    assert "sig=" not in caplog.text


@pytest.mark.parametrize("value", ["0", "169", "a week"])
def test_link_lifetime_is_validated_at_start_naming_the_setting(value, monkeypatch):
    monkeypatch.setenv("CAPTURE_STORAGE_ACCOUNT_ID", STORAGE_ID)
    monkeypatch.setenv("CAPTURE_LINK_LIFETIME_HOURS", value)
    with pytest.raises(SettingsError, match="CAPTURE_LINK_LIFETIME_HOURS"):
        load_settings()
