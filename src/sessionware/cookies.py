"""Reading a Cookie header defensively and writing Set-Cookie safely.

We do not use :mod:`http.cookies`: ``SimpleCookie`` has had quadratic parsing
(CVE-2024-7592) and its unquoting changes names. This parser is linear, bounded,
never raises, and matches names byte for byte: no Unicode stripping, no quoted
names, no nameless cookies (the "Cookie Chaos" and Werkzeug prefix bypasses; see
docs/security.md, "Cookie parsing").
"""

from __future__ import annotations

import re
from typing import Literal

__all__ = ["MAX_HEADER", "cookie_values", "format_set_cookie", "is_prefixed", "valid_name"]

#: A Cookie header longer than this is ignored as a whole (no session), not parsed.
MAX_HEADER = 16384

# RFC 6265 §4.1.1 token characters for a cookie name.
_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Attribute values we write must not be able to inject attributes (CVE-2024-47764).
_ATTR = re.compile(r"[\x21-\x3a\x3c-\x7e]+")  # visible ASCII except ';'
_VALUE = re.compile(r"[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*")  # RFC 6265 cookie-octet


def valid_name(name: str) -> bool:
    """Say whether ``name`` is a legal cookie name (an RFC 6265 token)."""
    return _NAME.fullmatch(name) is not None


def is_prefixed(name: str) -> Literal["__Host-", "__Secure-", ""]:
    """Return the security prefix of ``name``, matched case-insensitively as browsers do."""
    low = name.lower()
    if low.startswith("__host-"):
        return "__Host-"
    if low.startswith("__secure-"):
        return "__Secure-"
    return ""


def cookie_values(header: str | None, name: str) -> list[str]:
    """Return every value the header carries for ``name``, in the order sent.

    Never raises. A header over :data:`MAX_HEADER` characters yields nothing. Only
    ASCII space and tab around a pair are trimmed (RFC 6265 §5.2 whitespace), and a
    value wrapped in double quotes loses them; the name must match exactly.
    """
    if not header or len(header) > MAX_HEADER:
        return []
    found: list[str] = []
    needle = name + "="
    if needle not in header:
        return found
    for part in header.split(";") if ";" in header else (header,):
        part = part.strip(" \t")
        if not part.startswith(needle):
            continue
        value = part[len(needle):].strip(" \t")
        if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
            value = value[1:-1]
        found.append(value)
    return found


def format_set_cookie(
    name: str,
    value: str,
    *,
    path: str = "/",
    domain: str | None = None,
    max_age: int | None = None,
    secure: bool = False,
    http_only: bool = True,
    same_site: str | None = "lax",
    partitioned: bool = False,
) -> str:
    """Build one Set-Cookie header value, refusing anything that could inject attributes.

    ``max_age=0`` deletes the cookie; it also gets an ``Expires`` in the past for old
    user agents. Attribute names are spelled as Starlette's SessionMiddleware spells
    them (``path=``, ``domain=``, ``secure``, ``httponly``, ``samesite=lax``), so tests
    written against Starlette's header pass unchanged; browsers match attribute names
    case-insensitively (RFC 6265 §5.2), so the spelling changes nothing for them.
    """
    if not valid_name(name):
        raise ValueError(f"invalid cookie name {name!r}")
    if not _VALUE.fullmatch(value):
        raise ValueError("cookie value has characters a cookie cannot carry")
    parts = [f"{name}={value}", f"path={_attr('path', path)}"]
    if domain:
        parts.append(f"domain={_attr('domain', domain)}")
    if max_age is not None:
        if max_age <= 0:
            parts.append("Max-Age=0")
            parts.append("Expires=Thu, 01 Jan 1970 00:00:00 GMT")
        else:
            parts.append(f"Max-Age={int(max_age)}")
    if secure:
        parts.append("secure")
    if http_only:
        parts.append("httponly")
    if same_site:
        parts.append(f"samesite={_attr('same_site', same_site.lower())}")
    if partitioned:
        parts.append("Partitioned")
    return "; ".join(parts)


def _attr(what: str, value: str) -> str:
    if len(value) > 1024 or not _ATTR.fullmatch(value):
        raise ValueError(f"invalid cookie {what} {value!r}")
    return value
