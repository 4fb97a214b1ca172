"""Azurite (the Azure Storage emulator: blob or queue service) for tests and ``make run`` — dev only.

``Azurite(cert, key)`` starts ``node_modules/.bin/azurite-blob`` (``service="queue"``: ``azurite-queue``;
installed by ``npm ci`` from the repo's ``package.json``, where the version is pinned) on 127.0.0.1 over
HTTPS, on a port the OS picks (``--blobPort 0``: Azurite prints the port it bound, we read it from its
output and then probe it), with
``--oauth basic`` so bearer tokens are accepted the way the app's managed identity sends them. Azurite's
basic OAuth decodes the JWT and checks ``iat``/``nbf``/``exp`` (lifetime), ``iss`` (must start with
``https://sts.windows.net/`` or another Entra prefix) and ``aud`` (``https://storage.azure.com`` or an
account's service endpoint); it does not verify the signature and requires HTTPS.
With OAuth on, the blob service also hands out user delegation keys (derived from the token's ``oid`` and
``tid``) and checks user-delegation SAS URLs signed with them (signature, expiry, permission), so the
reports' download links work locally as the app makes them in Azure, and ``make run`` prints links that
download.

The emulator writes capture files with the well-known development account key (``dev_credential()``);
``upload_capture`` maps a real-Azure storage path onto the Azurite endpoint.
"""

from __future__ import annotations

import collections
import contextlib
import os
import re
import select
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlsplit

if TYPE_CHECKING:
    from azure.core.credentials import AzureNamedKeyCredential, TokenCredential

__all__ = [
    "ACCOUNT",
    "ACCOUNT_KEY",
    "Azurite",
    "AzuriteError",
    "AzuriteNotInstalled",
    "azurite_blob_url",
    "dev_credential",
    "split_storage_path",
    "upload_capture",
]

ACCOUNT = "devstoreaccount1"
# Azurite's published, well-known development key (the same for every Azurite install); dev only.
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
REPO_ROOT = Path(__file__).resolve().parents[1]
_LISTENING = re.compile(rb"successfully listens on https?://[^\s:]+:(\d+)")


class AzuriteError(RuntimeError):
    """Azurite could not be started (the message carries its output)."""


class AzuriteNotInstalled(AzuriteError):
    """``node_modules/.bin/azurite-blob`` is missing: run ``npm ci`` in the repository root."""


def dev_credential() -> AzureNamedKeyCredential:
    """The shared-key credential of Azurite's development account."""
    from azure.core.credentials import AzureNamedKeyCredential

    return AzureNamedKeyCredential(ACCOUNT, ACCOUNT_KEY)


class Azurite:
    """A running ``azurite-blob`` (or ``azurite-queue``): ``endpoint`` is ``https://127.0.0.1:PORT/devstoreaccount1``.

    Use as a context manager, or ``start()`` / ``stop()``. ``cert``/``key`` are PEM files (``emulator.tls``);
    clients trust the certificate through ``connection_verify=str(cert)`` or ``REQUESTS_CA_BUNDLE``.
    """

    def __init__(
        self,
        cert: str | os.PathLike[str],
        key: str | os.PathLike[str],
        *,
        root: str | os.PathLike[str] = REPO_ROOT,
        host: str = "127.0.0.1",
        startup_timeout: float = 60.0,
        memory_limit_mb: int = 1024,
        oauth: bool = True,
        service: str = "blob",
    ) -> None:
        if service not in ("blob", "queue"):
            raise ValueError(f"unknown Azurite service {service!r}")
        self.service = service
        self.cert = Path(cert)
        self.key = Path(key)
        self.root = Path(root)
        self.host = host
        self.startup_timeout = startup_timeout
        self.memory_limit_mb = memory_limit_mb
        self.oauth = oauth
        self.port: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._workdir: str | None = None
        self._output: collections.deque[bytes] = collections.deque(maxlen=200)
        self._drain: threading.Thread | None = None

    @property
    def binary(self) -> Path:
        return self.root / "node_modules" / ".bin" / f"azurite-{self.service}"

    @property
    def endpoint(self) -> str:
        """The service endpoint, ``https://127.0.0.1:PORT/devstoreaccount1``."""
        if self.port is None:
            raise AzuriteError("Azurite is not running")
        return f"https://{self.host}:{self.port}/{ACCOUNT}"

    @property
    def blob_endpoint(self) -> str:
        if self.service != "blob":
            raise AzuriteError(f"this Azurite runs the {self.service} service")
        return self.endpoint

    @property
    def queue_endpoint(self) -> str:
        if self.service != "queue":
            raise AzuriteError(f"this Azurite runs the {self.service} service")
        return self.endpoint

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=https;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
            f"{self.service.capitalize()}Endpoint={self.endpoint};"
        )

    @property
    def output(self) -> str:
        """Azurite's recent console output (for diagnostics)."""
        return b"".join(self._output).decode("utf-8", "replace")

    def command(self) -> list[str]:
        cmd = [
            str(self.binary),
            f"--{self.service}Host", self.host,
            f"--{self.service}Port", "0",
            "--cert", str(self.cert),
            "--key", str(self.key),
            "--skipApiVersionCheck",
            "--disableTelemetry",
            "--inMemoryPersistence",
            "--extentMemoryLimit", str(self.memory_limit_mb),
            "--loose",
            "--silent",
        ]  # fmt: skip
        if self.oauth:
            cmd += ["--oauth", "basic"]
        return cmd

    def start(self) -> Azurite:
        if self._proc is not None:
            return self
        if not self.binary.exists():
            raise AzuriteNotInstalled(
                f"Azurite is not installed: {self.binary} is missing. Run `npm ci` in {self.root} "
                "(package.json pins the azurite version)."
            )
        if shutil.which("node") is None:
            raise AzuriteNotInstalled("Azurite needs Node.js: `node` is not on PATH")
        for path in (self.cert, self.key):
            if not path.is_file():
                raise AzuriteError(f"TLS file not found: {path}")
        # with --inMemoryPersistence Azurite refuses --location; its working directory is a scratch folder
        self._workdir = tempfile.mkdtemp(prefix="azurite-")
        self._proc = subprocess.Popen(  # noqa: S603 - our own argv: the pinned node_modules binary
            self.command(),
            cwd=self._workdir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            # custom AZURITE_ACCOUNTS would replace devstoreaccount1, which everything here relies on
            env={k: v for k, v in os.environ.items() if k != "AZURITE_ACCOUNTS"},
        )
        try:
            self.port = self._wait_listening()
            self._wait_accepting()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_listening(self) -> int:
        """Read Azurite's output until it says which port it listens on (or it exits, or time runs out)."""
        proc = self._proc
        assert proc is not None
        assert proc.stdout is not None
        stream: IO[bytes] = proc.stdout
        fd = stream.fileno()
        deadline = time.monotonic() + self.startup_timeout
        seen = b""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AzuriteError(
                    f"Azurite did not start within {self.startup_timeout:.0f} s:\n{self.output}"
                )
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                code = proc.wait(timeout=10)
                raise AzuriteError(f"Azurite exited with code {code} during start-up:\n{self.output}")
            self._output.append(chunk)
            seen += chunk
            match = _LISTENING.search(seen)
            if match:
                self._drain = threading.Thread(target=self._drain_output, args=(fd,), daemon=True)
                self._drain.start()
                return int(match.group(1))

    def _drain_output(self, fd: int) -> None:
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                return
            if not chunk:
                return
            self._output.append(chunk)

    def _wait_accepting(self) -> None:
        """Probe the port until a TCP connection succeeds (normally at once: it already said it listens)."""
        assert self.port is not None
        assert self._proc is not None
        deadline = time.monotonic() + self.startup_timeout
        delay = 0.01
        while True:
            try:
                with socket.create_connection((self.host, self.port), timeout=2):
                    return
            except OSError as exc:
                if self._proc.poll() is not None:
                    raise AzuriteError(
                        f"Azurite exited with code {self._proc.returncode}:\n{self.output}"
                    ) from exc
                if time.monotonic() > deadline:
                    raise AzuriteError(f"Azurite does not accept connections on port {self.port}") from exc
                # back off between probes; this is a poll with a deadline, not a synchronisation sleep
                threading.Event().wait(delay)
                delay = min(delay * 2, 0.2)

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)
            if proc.stdout is not None:
                proc.stdout.close()
        if self._drain is not None:
            self._drain.join(timeout=5)
            self._drain = None
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
        self.port = None

    def __enter__(self) -> Azurite:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def split_storage_path(storage_path: str) -> tuple[str, str, str]:
    """``https://{account}.blob.core.windows.net/{container}/{blob}`` -> ``(account, container, blob)``.

    Also accepts path-style URLs (``https://127.0.0.1:10000/{account}/{container}/{blob}``). The blob name
    is returned unquoted.
    """
    parts = urlsplit(storage_path)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise ValueError(f"not a blob URL: {storage_path!r}")
    segments = [unquote(s) for s in parts.path.split("/") if s != ""]
    host = parts.hostname or ""
    if re.fullmatch(r"[\d.]+|\[?[0-9a-fA-F:]+\]?|localhost", host):
        if len(segments) < 3:
            raise ValueError(f"no account/container/blob in {storage_path!r}")
        account, segments = segments[0], segments[1:]
    else:
        account = host.split(".", 1)[0]
    if len(segments) < 2:
        raise ValueError(f"no container/blob in {storage_path!r}")
    return account, segments[0], "/".join(segments[1:])


def azurite_blob_url(blob_endpoint: str, storage_path: str) -> str:
    """Where a real-Azure storage path lives on Azurite: container and blob name stay, the account doesn't."""
    _, container, blob = split_storage_path(storage_path)
    return f"{blob_endpoint.rstrip('/')}/{quote(container)}/{quote(blob)}"


def upload_capture(
    blob_endpoint: str,
    credential: AzureNamedKeyCredential | TokenCredential | str | dict[str, str] | None,
    storage_path: str,
    data: bytes | IO[bytes],
    *,
    connection_verify: bool | str = True,
    **client_kwargs: Any,
) -> str:
    """Store a capture file at ``storage_path``'s container/blob on ``blob_endpoint``; returns its URL there.

    The container is created when missing. ``connection_verify`` is the CA bundle (Azurite's certificate)
    or a bool, as for azure-storage-blob.
    """
    from azure.core.exceptions import ResourceExistsError
    from azure.storage.blob import BlobServiceClient, ContentSettings

    _, container, blob = split_storage_path(storage_path)
    service = BlobServiceClient(
        blob_endpoint, credential=credential, connection_verify=connection_verify, **client_kwargs
    )
    with contextlib.suppress(ResourceExistsError):
        service.create_container(container)
    service.get_blob_client(container, blob).upload_blob(
        data,
        overwrite=True,
        content_settings=ContentSettings(content_type="application/vnd.tcpdump.pcap"),
    )
    return azurite_blob_url(blob_endpoint, storage_path)
