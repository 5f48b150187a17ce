"""Two small ASGI wrappers of the demo: caching and security headers, friendly errors.

Over https every response also carries ``Strict-Transport-Security`` (RFC 6797), so
a browser that has seen the demo once never tries it over plain http again, where a
network attacker could strip TLS; it is never sent over http (§7.2: ignored there,
and it would pin a plain-http development host).

The library's middlewares answer a refused CSRF check (403) and an unreachable store
(503) with short plain text, which is right for an API. A person in a browser should
see a page that says what happened and what to do, so :class:`FriendlyErrors`
re-renders those plain-text answers as HTML for clients that accept HTML, keeping
the status and ``Retry-After``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.requests import Request

from sessionware._http import header
from sessionware.demo.pages import (
    HSTS,
    MESSAGES,
    SECURITY_HEADERS,
    refused,
    reload_target,
    stale_redirect,
    tied_to_session,
)
from sessionware.demo.render import Renderer
from sessionware.demo.state import who
from sessionware.session import Session

__all__ = ["FriendlyErrors", "NoStoreForUsers", "security_headers"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_SECURITY_HEADERS = [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS]
_HSTS = (HSTS[0].encode(), HSTS[1].encode())
_MESSAGES = MESSAGES


def security_headers(scope: Scope) -> list[tuple[bytes, bytes]]:
    """The headers every demo response carries; HSTS only on https."""
    if scope.get("scheme") == "https":
        return [*_SECURITY_HEADERS, _HSTS]
    return _SECURITY_HEADERS


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    """One header of a *response* the app is sending (requests are read through _http)."""
    for k, v in headers:
        if k.lower() == name:
            return v
    return None


class NoStoreForUsers:
    """``Cache-Control: no-store`` and ``Vary: Cookie`` on every response tied to a session.

    A page that shows who is signed in must never be kept by a shared cache or the
    back-forward cache of a shared computer (OWASP Session Management, CVE-2023-30861).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start" and tied_to_session(scope.get("session")):
                headers = [
                    (k, v) for k, v in message.get("headers", ()) if k.lower() != b"cache-control"
                ]
                headers.append((b"cache-control", b"no-store"))
                vary = _header(headers, b"vary")
                if vary is None:
                    headers.append((b"vary", b"Cookie"))
                elif b"cookie" not in vary.lower():
                    headers = [(k, v) for k, v in headers if k.lower() != b"vary"]
                    headers.append((b"vary", vary + b", Cookie"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, wrapped)


class FriendlyErrors:
    """Security headers on every response; plain-text 403/503 become HTML pages."""

    def __init__(self, app: ASGIApp, *, renderer: Renderer) -> None:
        self.app = app
        self.renderer = renderer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        wants_html = "text/html" in (header(scope["headers"], b"accept") or "")
        held: list[tuple[bytes, bytes]] | None = None
        status = 0
        body = b""

        async def wrapped(message: Message) -> None:
            nonlocal held, status, body
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                status = message["status"]
                kind = _header(headers, b"content-type") or b""
                if wants_html and status in _MESSAGES and kind.startswith(b"text/plain"):
                    held = headers  # the page is sent once the short plain body is read
                    return
                have = {k.lower() for k, _ in headers}
                headers.extend(h for h in security_headers(scope) if h[0] not in have)
                message["headers"] = headers
            elif held is not None:
                if message["type"] == "http.response.body":
                    body += message.get("body", b"")[:4096]
                    if not message.get("more_body", False):
                        await self._page(scope, status, held, body.decode("utf-8", "replace"), send)
                return
            await send(message)

        await self.app(scope, receive, wrapped)

    async def _page(
        self,
        scope: Scope,
        status: int,
        original: list[tuple[bytes, bytes]],
        text_body: str,
        send: Send,
    ) -> None:
        title, text, stale = refused(status, text_body)
        retry = _header(original, b"retry-after")
        retry_after = int(retry) if retry and retry.isdigit() else None
        request = Request(scope)
        user = None
        if isinstance(scope.get("session"), Session) and "app" in scope:
            user = who(request)  # show who is signed in, as on every other page
        # The page replaces the body, not what the layers below said about the session
        # and the refusal: their Vary and Set-Cookie go out with it.
        kept = [(k, v) for k, v in original if k.lower() in (b"vary", b"set-cookie")]
        go = stale_redirect(
            scope.get("path", ""), text_body.strip(), user is not None, _next(scope)
        )
        if go is not None:
            # Signed in already (in another tab): the stale sign-in form has nothing to do.
            headers = [(b"location", go.encode()), (b"content-length", b"0"), *kept]
            headers += [(b"cache-control", b"no-store"), *security_headers(scope)]
            await send({"type": "http.response.start", "status": 303, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        links = None
        if stale:
            back = reload_target(header(scope["headers"], b"referer"))
            links = [(back, "Reload the page"), ("/", "Start page")]
        response = self.renderer.error(
            request, status, title, text, retry_after=retry_after, links=links
        )
        response.headers["cache-control"] = "no-store"
        for name, value in security_headers(scope):
            response.headers[name.decode()] = value.decode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [*response.raw_headers, *kept],
            }
        )
        await send({"type": "http.response.body", "body": response.body})


def _next(scope: Scope) -> str | None:
    """The ``next`` of the sign-in form's address (``/login?next=...``)."""
    from urllib.parse import parse_qs

    query = scope.get("query_string", b"").decode("latin-1")
    found = parse_qs(query).get("next")
    return found[-1] if found else None
