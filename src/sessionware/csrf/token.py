"""The CSRF token wire formats: masked session tokens and signed anonymous tokens.

**Session token** (a synchronizer token, OWASP CSRF Cheat Sheet): the session keeps a
32-byte secret (metadata field ``k``, base64url). Each render sends
``base64url(mask || mask XOR secret)`` with a fresh random mask, 86 characters, so
no two pages carry the same bytes and BREACH-style compression oracles learn nothing
stable (the mask idea is Django's and Rails'). Verification unmasks and compares
with :func:`hmac.compare_digest`.

**Anonymous token**: a visitor with no session has no secret to bind to, and must not
get a cookie. Their form carries ``<issued>.<nonce>.<signature>``: seconds since the
epoch, 16 random characters, and an HMAC under the ``csrf-anon`` salt, so it proves
only that this app rendered the form recently. It is accepted only on a request that
has no session at all and is refused once one exists (see :mod:`sessionware.csrf`).

Both functions here are pure: randomness and time are passed in, so the test vectors
(``tests/vectors/csrf_tokens.json``) pin the formats.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import secrets

from sessionware.exceptions import InvalidSignatureError
from sessionware.signing import Signer

__all__ = [
    "ANON_SALT",
    "SECRET_BYTES",
    "decode_secret",
    "issue_anonymous",
    "mask",
    "matches",
    "new_secret",
    "unmask",
    "verify_anonymous",
]

SECRET_BYTES = 32
ANON_SALT = "csrf-anon"
#: An anonymous token dated this far in the future is refused (clock skew between workers).
MAX_SKEW = 60

_MASKED_LEN = 86  # 64 bytes in unpadded base64url
_MASKED = re.compile(r"[A-Za-z0-9_-]{86}")
_SECRET = re.compile(r"[A-Za-z0-9_-]{43}")
_ANON = re.compile(r"([0-9]{1,12})\.([A-Za-z0-9_-]{16})")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes | None:
    """Decode unpadded base64url, refusing any non-canonical spelling."""
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    # Spare bits in the last character make several spellings decode alike; accept one.
    return data if _b64(data) == text else None


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def new_secret() -> str:
    """A fresh per-session CSRF secret, as kept in the session (43 characters)."""
    return _b64(secrets.token_bytes(SECRET_BYTES))


def decode_secret(stored: str | None) -> bytes | None:
    """The secret bytes kept in a session, or None when absent or malformed."""
    if stored is None or not _SECRET.fullmatch(stored):
        return None
    return _unb64(stored)


def mask(secret: bytes, pad: bytes | None = None) -> str:
    """Render ``secret`` as a token under a one-time ``pad`` (random unless given)."""
    if len(secret) != SECRET_BYTES:
        raise ValueError("a CSRF secret is 32 bytes")
    pad = secrets.token_bytes(SECRET_BYTES) if pad is None else pad
    if len(pad) != SECRET_BYTES:
        raise ValueError("a CSRF mask is 32 bytes")
    return _b64(pad + _xor(pad, secret))


def unmask(token: str) -> bytes | None:
    """The secret a session token carries, or None if it is not a well-formed token."""
    if len(token) != _MASKED_LEN or not _MASKED.fullmatch(token):
        return None
    raw = _unb64(token)
    if raw is None:
        return None
    return _xor(raw[:SECRET_BYTES], raw[SECRET_BYTES:])


def matches(token: str, secret: bytes | None) -> bool:
    """Whether a session token was rendered from ``secret`` (constant time in the secret)."""
    if secret is None:
        return False
    carried = unmask(token)
    return carried is not None and hmac.compare_digest(carried, secret)


def issue_anonymous(signer: Signer, now: float, nonce: str | None = None) -> str:
    """A signed, time-stamped token for a form shown to a visitor with no session."""
    nonce = secrets.token_urlsafe(12) if nonce is None else nonce
    payload = f"{int(now)}.{nonce}"
    if not _ANON.fullmatch(payload):
        raise ValueError("an anonymous token nonce is 16 url-safe characters")
    return signer.sign(payload)


def verify_anonymous(signer: Signer, token: str, now: float, max_age: float) -> bool:
    """Whether ``token`` is an anonymous token this app signed within ``max_age`` seconds."""
    if len(token) > 100:
        return False
    try:
        payload = signer.unsign(token)
    except InvalidSignatureError:
        return False
    m = _ANON.fullmatch(payload)
    if m is None:
        return False
    age = now - int(m.group(1))
    return -MAX_SKEW <= age <= max_age
