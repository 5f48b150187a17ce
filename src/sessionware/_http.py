"""The request headers sessionware reads, with one rule for repeated lines.

A header sent on several lines means the same as one line with the values joined by
commas (RFC 9110 §5.3); the Cookie header is the exception, joined by ``"; "``
(RFC 6265 §5.4). ``X-Forwarded-*`` values are believed only as far as ``trust_proxy``
says: the entry that many hops from the right, which our own proxies appended. So a
client that sends its own ``X-Forwarded-Proto: https`` line ahead of the proxy's
cannot make one cookie Secure and another not: every reader gets the same answer.
"""

from __future__ import annotations

from collections.abc import Iterable

from sessionware._proxy import trusted_hop

__all__ = [
    "add_vary_cookie",
    "client_ip",
    "cookie_header",
    "forwarded",
    "header",
    "is_https",
    "no_store",
    "vary_with_cookie",
    "with_vary_cookie",
]

Headers = Iterable[tuple[bytes, bytes]]


def header(headers: Headers, name: bytes) -> str | None:
    """Every line of header ``name`` (lower-case bytes) joined with ``", "``, or None."""
    values = [v.decode("latin-1") for k, v in headers if k == name]
    if not values:
        return None
    return values[0] if len(values) == 1 else ", ".join(values)


def cookie_header(headers: Headers) -> str | None:
    """The Cookie header, several lines joined with ``"; "`` as HTTP/2 splits them."""
    value = None
    for k, v in headers:  # a plain loop: on every request, and cheaper than a list
        if k == b"cookie":
            value = v.decode("latin-1") if value is None else f"{value}; {v.decode('latin-1')}"
    return value


def forwarded(headers: Headers, name: bytes, trust_proxy: int) -> str | None:
    """The trusted hop of an ``X-Forwarded-*`` header, or None when none is believed."""
    if trust_proxy <= 0:
        return None
    return trusted_hop(header(headers, name), trust_proxy)


def is_https(headers: Headers, scheme: str, trust_proxy: int) -> bool:
    """Whether the client reached us over TLS: the trusted ``X-Forwarded-Proto``, or the
    connection's ``scheme``."""
    proto = forwarded(headers, b"x-forwarded-proto", trust_proxy)
    if proto is not None:
        return proto.lower() == "https"
    return scheme in ("https", "wss")


def client_ip(headers: Headers, peer: str | None, trust_proxy: int) -> str | None:
    """The client address: the trusted ``X-Forwarded-For`` hop, else the socket's ``peer``."""
    hop = forwarded(headers, b"x-forwarded-for", trust_proxy)
    if hop is not None:
        return hop[:64]
    return peer


# -- response headers (ASGI's byte pairs; a WSGI adapter encodes its own to use them) --


def vary_with_cookie(value: str | None) -> str | None:
    """The Vary value that also names ``Cookie``, or None when ``value`` already covers it.

    So no cache serves one user's page to another (CVE-2023-30861).
    """
    if not value:
        return "Cookie"
    parts = [p.strip().lower() for p in value.split(",")]
    if "cookie" in parts or "*" in parts:
        return None
    return value + ", Cookie"


_VARY_COOKIE = (b"vary", b"Cookie")


def add_vary_cookie(headers: list[tuple[bytes, bytes]]) -> None:
    """Add ``Cookie`` to the Vary line of ASGI header pairs (see :func:`vary_with_cookie`)."""
    for i, (name, value) in enumerate(headers):
        if name.lower() == b"vary":
            changed = vary_with_cookie(value.decode("latin-1"))
            if changed is not None:
                headers[i] = (name, changed.encode("latin-1"))
            return
    headers.append((b"vary", b"Cookie"))


def with_vary_cookie(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """A copy of ASGI header pairs whose Vary line names ``Cookie`` (the app's list is
    left alone: a response object may be sent more than once)."""
    for name, _ in headers:
        if name.lower() == b"vary":
            copy = list(headers)
            add_vary_cookie(copy)
            return copy
    return [*headers, _VARY_COOKIE]


def no_store(headers: list[tuple[bytes, bytes]]) -> None:
    """A response that hands out a session id must never be cached (OWASP)."""
    headers[:] = [(n, v) for n, v in headers if n.lower() != b"cache-control"]
    headers.append((b"cache-control", b"no-store"))
