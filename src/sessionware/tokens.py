"""Random ids, their at-rest hashes, and split tokens.

A session id is 32 random bytes from :mod:`secrets` (256 bits), base64url without
padding. Stores only ever see :func:`store_key` of it, so a dump of Redis or the
database hands nobody a live session (Rack CVE-2019-16782; docs/security.md, "Session ids").
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

__all__ = [
    "ID_PATTERN",
    "is_valid_handle",
    "is_valid_id",
    "log_id",
    "new_handle",
    "new_session_id",
    "new_split_token",
    "parse_split_token",
    "sha256_hex",
    "store_key",
    "validator_matches",
]

#: Shape every incoming id must have before any store lookup (OWASP: treat as untrusted).
ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{32,128}")

_SELECTOR_BYTES = 16
_VALIDATOR_BYTES = 32


def new_session_id() -> str:
    """Return a fresh 256-bit session id (43 url-safe characters)."""
    return secrets.token_urlsafe(32)


#: Shape of a public handle: hex from :func:`new_handle`, or the url-safe handles of
#: earlier versions. Checked before any comparison, so odd input is simply "not found".
HANDLE_PATTERN = re.compile(r"[A-Za-z0-9_-]{8,64}")


def new_handle() -> str:
    """Return a public handle: shown to users, usable to revoke, useless as a cookie.

    Hex (80 bits), so it never starts with ``-`` and reads as an option on a command line.
    """
    return secrets.token_hex(10)


def is_valid_handle(value: object) -> bool:
    """Say whether ``value`` has the shape of a handle (ASCII only, bounded length)."""
    return isinstance(value, str) and HANDLE_PATTERN.fullmatch(value) is not None


def is_valid_id(value: str) -> bool:
    """Say whether ``value`` has the shape of a session id (not whether it exists)."""
    return ID_PATTERN.fullmatch(value) is not None


def sha256_hex(value: str) -> str:
    """SHA-256 of the UTF-8 text, as 64 hex characters."""
    return hashlib.sha256(value.encode()).hexdigest()


def store_key(session_id: str) -> str:
    """The only form of a session id that is kept at rest: its SHA-256, in hex."""
    return hashlib.sha256(session_id.encode()).hexdigest()


def log_id(session_id: str) -> str:
    """A short, non-reversible tag for log lines (8 hex characters of the store key)."""
    return store_key(session_id)[:8]


def new_split_token() -> tuple[str, str]:
    """Return ``(selector, validator)``: the selector is looked up, the validator hashed.

    Looking rows up by a public selector and comparing only a hash of the secret part
    keeps the secret out of any ``WHERE`` clause (Paragon Initiative's split tokens).
    """
    return secrets.token_urlsafe(_SELECTOR_BYTES), secrets.token_urlsafe(_VALIDATOR_BYTES)


_SPLIT_PART = re.compile(r"[A-Za-z0-9_-]{16,64}")


def parse_split_token(value: str) -> tuple[str, str] | None:
    """Split ``selector.validator`` (or ``selector:validator``); ``None`` if malformed."""
    if len(value) > 160:
        return None
    for sep in (".", ":"):
        if sep in value:
            selector, _, validator = value.partition(sep)
            break
    else:
        return None
    if _SPLIT_PART.fullmatch(selector) and _SPLIT_PART.fullmatch(validator):
        return selector, validator
    return None


def validator_matches(validator: str, stored_hash: str) -> bool:
    """Compare SHA-256(validator) with a stored hex hash in constant time."""
    return hmac.compare_digest(sha256_hex(validator), stored_hash)
