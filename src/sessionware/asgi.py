"""``SessionMiddleware``: the pure ASGI adapter.

It loads the session before the app runs and finishes it when the response starts,
so the store write is done before any header leaves (no ``BaseHTTPMiddleware``, no
patched ``end``). The session sits at ``scope["session"]``, which is where
Starlette's ``request.session`` looks.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence
from typing import Any, Unpack

# Re-exported for sessionware's other adapters (sessionware.testing imports them here).
from starlette.types import ASGIApp as ASGIApp
from starlette.types import Message as Message
from starlette.types import Receive as Receive
from starlette.types import Scope as Scope
from starlette.types import Send as Send

from sessionware._http import cookie_header, no_store, with_vary_cookie
from sessionware._plain import send_plain
from sessionware._websocket import serve_websocket
from sessionware.config import SessionConfig, SessionOptions
from sessionware.core import OutageLog, SessionCore
from sessionware.exceptions import HTTPError, StoreUnavailableError
from sessionware.request import VIEW_KEY
from sessionware.session import Session
from sessionware.stores.base import Store, inline_loader, never_waits

__all__ = ["EXTRA_COOKIES", "AsgiView", "SessionMiddleware", "add_cookie", "get_session"]

#: Where other layers leave ``Set-Cookie`` values for the response (see :func:`add_cookie`).
EXTRA_COOKIES = "sessionware.cookies"

log = logging.getLogger("sessionware")

# Set when a 503 replaced an error page the app made for a store outage.
_ANSWERED = "sessionware.answered"

_UNAVAILABLE = (
    b"Service temporarily unavailable: the session store cannot be reached. "
    b"Try again shortly.\n"
)


class AsgiView:
    """The :class:`~sessionware.request.RequestView` of one ASGI request, read from its scope."""

    __slots__ = ("scope",)

    def __init__(self, scope: Scope) -> None:
        self.scope = scope

    @property
    def method(self) -> str:
        """The request method (``GET`` for a websocket handshake)."""
        return str(self.scope.get("method", "GET"))

    @property
    def headers(self) -> list[tuple[bytes, bytes]]:
        """The header lines as the server received them."""
        return self.scope["headers"]  # type: ignore[no-any-return]

    @property
    def scheme(self) -> str:
        """The connection's scheme."""
        return str(self.scope.get("scheme", "http"))

    @property
    def client(self) -> str | None:
        """The socket peer's address."""
        client = self.scope.get("client")
        return str(client[0]) if client else None

    @property
    def session(self) -> Session:
        """The request's session."""
        return get_session(self.scope)

    @property
    def state(self) -> dict[str, Any]:
        """A dict living as long as the request."""
        state: dict[str, Any] = self.scope.setdefault("sessionware.state", {})
        return state

    def add_cookie(self, set_cookie: str) -> None:
        """Queue a ``Set-Cookie`` value for the response (see :func:`add_cookie`)."""
        add_cookie(self.scope, set_cookie)


class SessionMiddleware:
    """Server-side sessions for Starlette, FastAPI and any ASGI app.

    ``app.add_middleware(SessionMiddleware, store=SQLiteStore("s.db"), secrets=[...])``;
    any other :class:`SessionConfig` option may be given by keyword, or pass
    ``config=SessionConfig(...)``.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        store: Store | None = None,
        secrets: Sequence[str] | None = None,
        config: SessionConfig | None = None,
        **options: Unpack[SessionOptions],
    ) -> None:
        self.app = app
        self.core = SessionCore.build(store, secrets, config, options, adapter="SessionMiddleware")
        self._outage = OutageLog()
        self._load_inline = inline_loader(self.core.store)
        self._inline = never_waits(self.core.store)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            await self.app(scope, receive, send)
            return
        core = self.core
        try:
            # core.begin's steps, with the one load awaited directly (every request).
            cookie = cookie_header(scope["headers"])
            found = core.read_cookie(cookie)
            if found is None:
                fields = None
            elif self._load_inline is not None:
                fields = self._load_inline(found[1])
            else:
                fields = await core.store.load(found[1])
            session, after = core.opened(cookie, found, fields, Session)
            if after is not None:
                await core.arun(after)
        except StoreUnavailableError as exc:
            self._outage(exc)
            await self._unavailable(scope, send)
            return
        scope["session"] = session
        # The factory, not a view: a view kept in the scope it reads would be a
        # reference cycle per request (work for the garbage collector).
        scope[VIEW_KEY] = AsgiView
        if kind == "websocket":
            await serve_websocket(self.app, core, self._outage, scope, session, receive, send)
            return
        started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal started
            if started:
                await send(message)
                return
            if message["type"] != "http.response.start":
                return  # only after a 503 replaced the response: drop the app's body
            if message["status"] == 500:
                # An error page made while the handler's own store call failed (an
                # inner ServerErrorMiddleware answering our StoreUnavailableError):
                # the outage's 503 instead.
                failure = sys.exc_info()[1]
                if isinstance(failure, StoreUnavailableError):
                    self._outage(failure)
                    await self._unavailable(scope, send)
                    scope[_ANSWERED] = True
                    return
            started = True
            extra = scope.get(EXTRA_COOKIES)
            if extra is None and core.untouched(session):
                # The common read: nothing to write, no cookie; only Vary if it was used.
                if session.accessed or session.had_cookie:
                    message["headers"] = with_vary_cookie(message.get("headers", ()))
                await send(message)
                return
            try:
                finish = core.finish(session, message["status"], scope["headers"], scope["scheme"])
                cookies = core.run(finish) if self._inline else await core.arun(finish)
            except StoreUnavailableError as exc:
                self._outage(exc)
                await self._unavailable(scope, send)
                started = False
                return
            out = core.outgoing(session, cookies, extra)
            if out is not None:
                headers = with_vary_cookie(message.get("headers", ()))
                for value in out.cookies:
                    headers.append((b"set-cookie", value.encode("latin-1")))
                if out.no_store:
                    no_store(headers)
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except HTTPError as exc:
            if started:
                raise
            await _answer(scope, exc, send_wrapper)
        except StoreUnavailableError as exc:
            # The handler's own store call (a login, a logout, an increment) met the
            # outage: a 503 with the log line, as the session's own load would get.
            if scope.get(_ANSWERED):
                return
            if started:
                raise
            self._outage(exc)
            await self._unavailable(scope, send)

    async def _unavailable(self, scope: Scope, send: Send) -> None:
        if scope["type"] != "http":
            await send({"type": "websocket.close", "code": 1011})
            return
        await send_plain(send, 503, _UNAVAILABLE, (b"retry-after", b"5"))


async def _answer(scope: Scope, exc: HTTPError, send: Send) -> None:
    """Answer an ``HTTPError`` the app let through, as the framework answers its own.

    Starlette answers its ``HTTPException`` in plain text and FastAPI as
    ``{"detail": ...}``; an app that wants another form registers an exception handler
    for :class:`~sessionware.exceptions.HTTPError`, which then catches it first.
    """
    app = scope.get("app")
    fastapi = any(c.__module__.startswith("fastapi") for c in type(app).__mro__)
    if fastapi:
        body, kind = json.dumps({"detail": exc.detail}).encode(), b"application/json"
    else:
        body, kind = exc.detail.encode(), b"text/plain; charset=utf-8"
    headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in exc.headers.items()]
    headers += [(b"content-type", kind), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": exc.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def add_cookie(scope: Scope, set_cookie: str) -> None:
    """Queue a ``Set-Cookie`` value that SessionMiddleware adds when the response starts.

    For companion cookies of other layers (the login throttle's device cookie); they go
    out even when the session itself has nothing to write.
    """
    scope.setdefault(EXTRA_COOKIES, []).append(set_cookie)


def get_session(scope: Scope) -> Session:
    """The session of a raw ASGI scope (``request.session`` in Starlette)."""
    session = scope.get("session")
    if not isinstance(session, Session):
        raise RuntimeError("no sessionware session here: add SessionMiddleware to the app")
    return session
