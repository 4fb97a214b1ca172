"""Self-signed TLS certificate for the local emulators (ARM here, Azurite later).

One RSA-2048 certificate, valid for ``IP:127.0.0.1``, ``IP:::1`` and ``DNS:localhost``. It is its own
trust anchor: clients trust it through ``REQUESTS_CA_BUNDLE=<cert_path>`` or
``connection_verify=<cert_path>``.
It carries ``basicConstraints CA:TRUE`` + ``keyCertSign`` so OpenSSL (and Node) accept it as a root, and
``serverAuth`` + the SAN so hostname checks pass for both ``127.0.0.1`` and ``localhost``.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import threading
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CERT_FILE = "emulator-cert.pem"
KEY_FILE = "emulator-key.pem"
_VALIDITY = dt.timedelta(days=30)
_MIN_REMAINING = dt.timedelta(days=1)
_SAN_IPS = (ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1"))
_SAN_DNS = ("localhost",)
_KEY_LOCK = threading.Lock()
_KEYS: dict[str, rsa.RSAPrivateKey] = {}


def process_rsa_key(purpose: str) -> rsa.RSAPrivateKey:
    """An RSA-2048 key generated once per process and purpose (key generation costs 50-300 ms; sharing it
    keeps emulator start-up in the milliseconds when tests start many emulators)."""
    with _KEY_LOCK:
        key = _KEYS.get(purpose)
        if key is None:
            key = _KEYS[purpose] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return key


def ensure_certificate(directory: str | os.PathLike[str], *, reuse: bool = True) -> tuple[Path, Path]:
    """Return ``(cert_path, key_path)`` (PEM) in ``directory``, creating the directory and the pair if needed.

    With ``reuse`` (default) an existing pair is kept when it parses, covers 127.0.0.1/localhost and is valid
    for at least another day, so several emulators (ARM, Azurite) started on the same directory share one
    certificate. ``reuse=False`` always writes a fresh pair. The key file is written with mode 0600.
    """
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / CERT_FILE, folder / KEY_FILE
    if reuse and _usable(cert_path, key_path):
        return cert_path, key_path
    cert_pem, key_pem = generate_certificate()
    _write_atomic(key_path, key_pem, mode=0o600)
    _write_atomic(cert_path, cert_pem, mode=0o644)
    return cert_path, key_path


def generate_certificate(common_name: str = "localhost") -> tuple[bytes, bytes]:
    """Return a fresh ``(cert_pem, key_pem)`` pair (unencrypted PKCS#8 key)."""
    key = process_rsa_key("tls")
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "alert-packet-capture local emulator"),
        ]
    )
    now = dt.datetime.now(dt.UTC)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    san: list[x509.GeneralName] = [x509.DNSName(d) for d in _SAN_DNS]
    san += [x509.IPAddress(ip) for ip in _SAN_IPS]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def _usable(cert_path: Path, key_path: Path) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, TypeError, x509.ExtensionNotFound):
        return False
    if not isinstance(key, rsa.RSAPrivateKey) or key.public_key() != cert.public_key():
        return False
    ips = set(san.get_values_for_type(x509.IPAddress))
    if not set(_SAN_IPS) <= ips or "localhost" not in san.get_values_for_type(x509.DNSName):
        return False
    now = dt.datetime.now(dt.UTC)
    return cert.not_valid_before_utc <= now and cert.not_valid_after_utc - now > _MIN_REMAINING


def _write_atomic(path: Path, data: bytes, *, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.replace(tmp, path)
