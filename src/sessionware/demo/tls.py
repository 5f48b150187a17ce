"""A self-signed certificate for ``sessionware demo --tls``.

The point of ``--tls`` is to see the production cookie set-up (``Secure``,
``__Host-`` names) working on a laptop, so the certificate only has to name
127.0.0.1 and localhost. It is made with ``cryptography`` when installed (the demo
extra), else with the ``openssl`` command, and kept next to the demo's secret,
both files owner-only.
"""

from __future__ import annotations

import datetime
import os
import shutil
import subprocess
from pathlib import Path

from sessionware.demo.files import private_dir, tighten, write_private
from sessionware.exceptions import ConfigurationError

__all__ = ["ensure_certificate"]

_DAYS = 30


def ensure_certificate(folder: Path) -> tuple[Path, Path, bool]:
    """Return ``(cert, key, made)``, making a new pair when missing or about to expire."""
    private_dir(folder)
    cert, key = folder / "demo-cert.pem", folder / "demo-key.pem"
    if cert.exists() and key.exists() and not _expiring(cert):
        tighten(key)
        tighten(cert)
        return cert, key, False
    try:
        _make_with_cryptography(cert, key)
    except ImportError:
        _make_with_openssl(cert, key)
    os.chmod(key, 0o600)
    os.chmod(cert, 0o600)
    return cert, key, True


def _expiring(cert: Path) -> bool:
    """Whether the certificate ends within a day (or cannot be read)."""
    try:
        from cryptography import x509
    except ImportError:
        # Without cryptography, trust the file's age instead of parsing it.
        age = datetime.datetime.now().timestamp() - cert.stat().st_mtime
        return age > (_DAYS - 1) * 86400
    try:
        parsed = x509.load_pem_x509_certificate(cert.read_bytes())
    except ValueError:
        return True
    left = parsed.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
    return left < datetime.timedelta(days=1)


def _make_with_cryptography(cert: Path, key: Path) -> None:
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sessionware demo (127.0.0.1)")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=_DAYS))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(private, hashes.SHA256())
    )
    write_private(
        key,
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    write_private(cert, certificate.public_bytes(serialization.Encoding.PEM))


def _make_with_openssl(cert: Path, key: Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise ConfigurationError(
            "--tls needs a certificate: install the demo extra (pip install 'sessionware[demo]', "
            "which brings cryptography) or the openssl command"
        )
    # openssl truncates and rewrites these, keeping the owner-only mode they start with.
    write_private(key, b"")
    write_private(cert, b"")
    subprocess.run(  # noqa: S603 - fixed arguments, no shell
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            str(_DAYS),
            "-subj",
            "/CN=sessionware demo (127.0.0.1)",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )
