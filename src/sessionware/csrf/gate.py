"""The Fetch-Metadata / Origin gate: where did an unsafe request come from?

The algorithm follows Go 1.25's ``net/http.CrossOriginProtection`` (docs/security.md, "CSRF")
with two differences: an ``Origin`` header is checked even when ``Sec-Fetch-Site``
is present (layered, as the OWASP CSRF Cheat Sheet asks), and a request with
neither header is not waved through: the caller then demands a token.
Pure functions only; the adapter does the I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from sessionware.csrf.host import addressed

__all__ = ["Verdict", "gate", "normalize_origin", "own_origin"]

_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*")
_HOST = re.compile(r"[a-z0-9._~\-]+|\[[0-9a-f:.]+\]")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalize_origin(text: str) -> str | None:
    """``scheme://host[:port]`` in lower case without a default port, or None if malformed.

    A serialized origin has no path, query, fragment or user info (RFC 6454 §6.1).
    """
    if not text or len(text) > 300 or text != text.strip():
        return None
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if not _SCHEME.fullmatch(scheme) or parts.path or parts.query or parts.fragment:
        return None
    if "#" in text or "?" in text:
        return None
    netloc = parts.netloc.lower()
    if "@" in netloc:
        return None
    host = netloc.rsplit(":", 1)[0] if port is not None or netloc.endswith(":") else netloc
    if not _HOST.fullmatch(host):
        return None
    if port is None or port == _DEFAULT_PORTS.get(scheme):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def own_origin(
    scheme: str,
    headers: Iterable[tuple[bytes, bytes]],
    server: tuple[str, int | None] | None,
    trust_proxy: int,
) -> str | None:
    """The origin this request was addressed to: scheme, host and port.

    The host is read by :func:`~sessionware.csrf.host.addressed` (``X-Forwarded-*``
    only under ``trust_proxy``), the one reader the allowed-hosts check uses too.
    """
    fwd_scheme, host = addressed(headers, trust_proxy)
    scheme = fwd_scheme or scheme
    if not host and server is not None:
        host = server[0] if server[1] is None else f"{server[0]}:{server[1]}"
    if not host:
        return None
    return normalize_origin(f"{scheme.lower()}://{host}")


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the gate decided: a refusal reason, or whether a browser header vouched."""

    refused: str | None
    vouched: bool
    #: For the security log only (never the response): what was compared.
    detail: str = ""


def gate(
    *,
    fetch_site: str | None,
    origin: str | None,
    own: str | None,
    trusted: frozenset[str],
    allow_same_site: bool,
) -> Verdict:
    """Judge an unsafe request by ``Sec-Fetch-Site`` and ``Origin``.

    ``vouched`` is True when a browser header positively placed the request on this
    origin (or a trusted one); False when neither header was sent, so only a token
    can vouch for it.
    """
    norm = normalize_origin(origin) if origin is not None and origin != "null" else None
    trusted_origin = norm is not None and norm in trusted
    site = fetch_site.strip().lower() if fetch_site is not None else None
    if site is not None:
        # "none" is a user-initiated navigation (W3C Fetch Metadata §2.1): allowed, as in Go.
        if site == "same-site":
            if not (allow_same_site or trusted_origin):
                return Verdict("same-site request refused (Sec-Fetch-Site)", False)
        elif site == "cross-site":
            if not trusted_origin:
                return Verdict("cross-site request refused (Sec-Fetch-Site)", False)
        elif site not in ("same-origin", "none"):
            return Verdict("unrecognised Sec-Fetch-Site value refused", False)
    if origin is not None:
        # Sandboxed frames, data: URLs and some redirects send "null" (RFC 6454 §7.3).
        if origin == "null":
            return Verdict("request with Origin: null refused", False)
        if norm is None:
            return Verdict("malformed Origin header refused", False)
        sibling = allow_same_site and site == "same-site"
        if not (norm == own or trusted_origin or sibling):
            return Verdict(
                "request from another origin refused (Origin)",
                False,
                f"Origin {origin!r} is neither this app's origin {own!r} nor trusted (behind a "
                "proxy? set trust_proxy, or list the public origin in trusted_origins)",
            )
    return Verdict(None, site is not None or origin is not None)
