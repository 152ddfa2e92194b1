"""The web UI's certificate: made for this box at first start, or the admin's own files."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

VALID_DAYS = 3650  # a box on a LAN lives for years; browsers ask the admin once anyway


def _addresses(hostname: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    found: set[str] = {"127.0.0.1", "::1"}
    try:
        for info in socket.getaddrinfo(hostname, None):
            found.add(str(info[4][0]).split("%")[0])
    except OSError:
        pass
    return sorted((ipaddress.ip_address(a) for a in found), key=lambda a: (a.version, str(a)))


def make_certificate(cert_path: Path, key_path: Path, hostname: str | None = None) -> None:
    """Write a new self-signed certificate and key (0600) for this box's names."""
    hostname = hostname or socket.gethostname() or "pbx"
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname[:64]),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Office PBX")])
    now = dt.datetime.now(dt.UTC)
    dns = sorted({hostname, f"{hostname}.local", "localhost"})
    san = x509.SubjectAlternativeName(
        [x509.DNSName(d) for d in dns] + [x509.IPAddress(a) for a in _addresses(hostname)])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
        .add_extension(san, critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    key_path.parent.mkdir(parents=True, exist_ok=True)
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key.private_bytes(serialization.Encoding.PEM,
                                   serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def ensure_certificate(data_dir: Path, hostname: str | None = None) -> tuple[Path, Path]:
    """The box's own certificate and key under <data_dir>/tls, made if missing."""
    cert, key = data_dir / "tls" / "web.crt", data_dir / "tls" / "web.key"
    if not (cert.exists() and key.exists()):
        make_certificate(cert, key, hostname)
    return cert, key


def fingerprint(cert_path: Path) -> str:
    """SHA-256 fingerprint, as browsers show it, so the admin can check the box's certificate."""
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    return ":".join(f"{b:02X}" for b in cert.fingerprint(hashes.SHA256()))
