"""Checking password hashes made by other frameworks, so a site moves without resets.

:class:`~sessionware.passwords.PasswordHasher` hands any hash that is not Argon2 here.
Every format is parsed strictly and its cost parameters are bounded before any work:
a stored hash is data, and a tampered row with ``iterations=10**12`` must not pin a
core. Comparisons are constant-time. Each function returns ``None`` for a hash that is
not its format and a bool otherwise; malformed hashes of a known format are False.

Formats (what each framework writes today):

- Django ``pbkdf2_sha256$<iterations>$<salt>$<base64>`` (and ``pbkdf2_sha1``),
  ``scrypt$<n>$<salt>$<r>$<p>$<base64>``, ``bcrypt_sha256$<bcrypt>``, ``bcrypt$<bcrypt>``
  and ``argon2$<argon2 hash without its leading $>``;
- Werkzeug ``pbkdf2:<digest>:<iterations>$<salt>$<hex>`` and ``scrypt:<n>:<r>:<p>$<salt>$<hex>``;
- bcrypt ``$2a$``, ``$2b$``, ``$2y$`` (needs the ``bcrypt`` package: the ``bcrypt`` extra).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Callable

from sessionware._extras import requires

__all__ = ["ARGON2_PREFIX", "check", "scheme"]

#: Above these a stored hash is refused unchecked (each is far past what any framework
#: writes: Django 5 uses 1.2M PBKDF2 rounds, Werkzeug 3 1M, scrypt n=2**15).
MAX_PBKDF2_ITERATIONS = 5_000_000
MAX_SCRYPT_N = 2**20
MAX_SCRYPT_R = 32
MAX_SCRYPT_P = 16
MAX_SCRYPT_MEMORY = 256 * 1024 * 1024  # 128 * n * r bytes
MAX_BCRYPT_COST = 16
#: bcrypt only ever read the first 72 bytes; hashes made by it were made of those.
BCRYPT_MAX_BYTES = 72

ARGON2_PREFIX = "$argon2"

_PBKDF2_DIGESTS = {"sha1", "sha256", "sha512"}
_BCRYPT = re.compile(r"\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}")
_B64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")
_HEX = re.compile(r"[0-9a-f]+")
_SALT = re.compile(r"[^$\x00-\x1f]{1,128}")


def _int(text: str, low: int, high: int) -> int | None:
    if not text.isascii() or not text.isdigit() or len(text) > 12:
        return None
    value = int(text)
    return value if low <= value <= high else None


def _b64(text: str) -> bytes | None:
    if not _B64.fullmatch(text):
        return None
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def _hex(text: str) -> bytes | None:
    return bytes.fromhex(text) if _HEX.fullmatch(text) and len(text) % 2 == 0 else None


def _scrypt(password: bytes, salt: bytes, n: int, r: int, p: int, length: int) -> bytes | None:
    if n < 2 or n & (n - 1) or 128 * n * r > MAX_SCRYPT_MEMORY:
        return None
    return hashlib.scrypt(
        password, salt=salt, n=n, r=r, p=p, maxmem=132 * n * r * p + 2**20, dklen=length
    )


def _same(made: bytes | None, stored: bytes) -> bool:
    return made is not None and hmac.compare_digest(made, stored)


def _django_pbkdf2(hash: str, password: str) -> bool | None:
    algorithm, _, rest = hash.partition("$")
    digest = {"pbkdf2_sha256": "sha256", "pbkdf2_sha1": "sha1"}.get(algorithm)
    if digest is None:
        return None
    parts = rest.split("$")
    if len(parts) != 3 or not _SALT.fullmatch(parts[1]):
        return False
    rounds = _int(parts[0], 1, MAX_PBKDF2_ITERATIONS)
    stored = _b64(parts[2])
    if rounds is None or not stored:
        return False
    made = hashlib.pbkdf2_hmac(digest, password.encode(), parts[1].encode(), rounds, len(stored))
    return _same(made, stored)


def _django_scrypt(hash: str, password: str) -> bool | None:
    if not hash.startswith("scrypt$"):
        return None
    parts = hash.split("$")
    if len(parts) != 6 or not _SALT.fullmatch(parts[2]):
        return False
    n = _int(parts[1], 2, MAX_SCRYPT_N)
    r = _int(parts[3], 1, MAX_SCRYPT_R)
    p = _int(parts[4], 1, MAX_SCRYPT_P)
    stored = _b64(parts[5])
    if n is None or r is None or p is None or not stored:
        return False
    return _same(_scrypt(password.encode(), parts[2].encode(), n, r, p, len(stored)), stored)


def _werkzeug(hash: str, password: str) -> bool | None:
    method, sep, rest = hash.partition("$")
    kind = method.split(":")
    if not sep or kind[0] not in ("pbkdf2", "scrypt") or len(kind) < 2:
        return None
    salt, sep, hexed = rest.partition("$")
    stored = _hex(hexed) if sep else None
    if not stored or not _SALT.fullmatch(salt):
        return False
    if kind[0] == "pbkdf2":
        if len(kind) != 3 or kind[1] not in _PBKDF2_DIGESTS:
            return False
        rounds = _int(kind[2], 1, MAX_PBKDF2_ITERATIONS)
        if rounds is None:
            return False
        made = hashlib.pbkdf2_hmac(kind[1], password.encode(), salt.encode(), rounds, len(stored))
        return _same(made, stored)
    if len(kind) != 4:
        return False
    n = _int(kind[1], 2, MAX_SCRYPT_N)
    r = _int(kind[2], 1, MAX_SCRYPT_R)
    p = _int(kind[3], 1, MAX_SCRYPT_P)
    if n is None or r is None or p is None:
        return False
    return _same(_scrypt(password.encode(), salt.encode(), n, r, p, len(stored)), stored)


def _bcrypt_check(stored: str, secret: bytes) -> bool:
    found = _BCRYPT.fullmatch(stored)
    if found is None or not 4 <= int(found.group(1)) <= MAX_BCRYPT_COST:
        return False
    with requires("bcrypt"):
        import bcrypt
    return bool(bcrypt.checkpw(secret[:BCRYPT_MAX_BYTES], stored.encode()))


def _bcrypt(hash: str, password: str) -> bool | None:
    if hash.startswith("$2"):
        return _bcrypt_check(hash, password.encode())
    if hash.startswith("bcrypt$"):
        return _bcrypt_check(hash[len("bcrypt$") :], password.encode())
    if hash.startswith("bcrypt_sha256$"):
        # Django pre-hashes to get past bcrypt's 72 bytes: hex of SHA-256.
        digest = hashlib.sha256(password.encode()).hexdigest().encode()
        return _bcrypt_check(hash[len("bcrypt_sha256$") :], digest)
    return None


_CHECKS: tuple[Callable[[str, str], bool | None], ...] = (
    _django_pbkdf2,
    _django_scrypt,
    _werkzeug,
    _bcrypt,
)


def check(hash: str, password: str) -> bool | None:
    """Whether ``password`` matches a foreign ``hash``; None when no format here knows it."""
    for format_check in _CHECKS:
        found = format_check(hash, password)
        if found is not None:
            return found
    return None


def scheme(hash: str) -> str | None:
    """The name of a foreign hash's format (for logs and migration counts), or None."""
    if hash.startswith(("pbkdf2_sha256$", "pbkdf2_sha1$", "scrypt$", "bcrypt_sha256$", "bcrypt$")):
        return "django-" + hash.partition("$")[0]
    if hash.startswith("argon2$argon2"):
        return "django-argon2"
    if hash.startswith(("pbkdf2:", "scrypt:")):
        return "werkzeug-" + hash.partition(":")[0]
    if _BCRYPT.fullmatch(hash):
        return "bcrypt"
    return None
