"""``SessionMiddleware``: the pure ASGI adapter.

It loads the session before the app runs and finishes it when the response starts,
so the store write is done before any header leaves (no ``BaseHTTPMiddleware``, no
patched ``end``). The session sits at ``scope["session"]``, which is where
Starlette's ``request.session`` looks.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Unpack

# Re-exported for sessionware's other adapters (sessionware.testing imports them here).
from starlette.types import ASGIApp as ASGIApp
from starlette.types import Message as Message
from starlette.types import Receive as Receive
from starlette.types import Scope as Scope
from starlette.types import Send as Send

from sessionware._http import cookie_header
from sessionware._plain import send_plain
from sessionware.config import SessionConfig, SessionOptions
from sessionware.cookies import cookie_values
from sessionware.core import SessionCore
from sessionware.exceptions import ConfigurationError, StoreUnavailableError
from sessionware.session import Session
from sessionware.stores.base import Store

__all__ = ["EXTRA_COOKIES", "SessionMiddleware", "add_cookie", "get_session"]

#: Where other layers leave ``Set-Cookie`` values for the response (see :func:`add_cookie`).
EXTRA_COOKIES = "sessionware.cookies"

log = logging.getLogger("sessionware")

_UNAVAILABLE = (
    b"Service temporarily unavailable: the session store cannot be reached. "
    b"Try again shortly.\n"
)


class _RateLimitedLog:
    """Log a store outage at most once per ``every`` seconds, with the count suppressed."""

    def __init__(self, every: float = 10.0) -> None:
        self.every = every
        self._last = -1e18
        self._suppressed = 0

    def __call__(self, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self._last < self.every:
            self._suppressed += 1
            return
        extra = f" ({self._suppressed} more since the last report)" if self._suppressed else ""
        self._last, self._suppressed = now, 0
        # The exception text comes from our stores, which never include session ids.
        log.error("session store unavailable, answering 503: %s%s", exc, extra)


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
        if config is None:
            config = SessionConfig(secrets=secrets or [], **options)
        elif secrets is not None or options:
            raise ConfigurationError("pass either config=SessionConfig(...) or options, not both")
        if store is None and config.store_url:
            from sessionware.stores import from_url

            store = from_url(config.store_url)
        if store is None:
            raise ConfigurationError(
                "SessionMiddleware needs a store: store=SQLiteStore('sessions.db') for one "
                "machine, RedisStore.from_url(...) for many, or stores.from_url(SESSION_STORE)"
            )
        self.app = app
        self.core = SessionCore(config, store)
        self._outage = _RateLimitedLog()
        settings = ", ".join(f"{k}={v}" for k, v in config.describe().items())
        kind = getattr(store, "kind", type(store).__name__)
        log.info("effective session settings: store=%s, %s", kind, settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            await self.app(scope, receive, send)
            return
        core = self.core
        cookie = cookie_header(scope["headers"])
        found = core.read_cookie(cookie) if cookie else None
        sid = key = fields = None
        try:
            if found is not None:
                sid, key = found
                fields = await core.store.load(key)
            session, expired = core.open(sid, fields, core.clock(), key)
            if expired and key is not None:
                await core.store.delete(key)
            elif fields is None and key is not None:
                session.superseded = await core.superseded(key)
        except StoreUnavailableError as exc:
            self._outage(exc)
            await self._unavailable(scope, send)
            return
        if sid is None and cookie_values(cookie, core.config.cookie_name):
            # A bad or stale cookie of exactly our name: clear it if we answer. A mere
            # substring test would also match "x__Host-sid=" and clear a stranger's.
            session.had_cookie = True
        scope["session"] = session
        if kind == "websocket":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal started
            if started:
                await send(message)
                return
            if message["type"] != "http.response.start":
                return  # only after a 503 replaced the response: drop the app's body
            started = True
            try:
                cookies: list[str]
                if core.untouched(session):
                    cookies = []  # the common read: skip the coroutine
                else:
                    cookies = await core.finish(session, message["status"], scope)
            except StoreUnavailableError as exc:
                self._outage(exc)
                await self._unavailable(scope, send)
                started = False
                return
            extra: list[str] = scope.get(EXTRA_COOKIES) or []
            if cookies or extra or session.accessed or session.had_cookie:
                headers = list(message.get("headers", ()))
                _add_vary(headers)
                for value in (*cookies, *extra):
                    headers.append((b"set-cookie", value.encode("latin-1")))
                if (cookies and not session.is_new) or extra:
                    _no_store(headers)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_wrapper)

    async def _unavailable(self, scope: Scope, send: Send) -> None:
        if scope["type"] != "http":
            await send({"type": "websocket.close", "code": 1011})
            return
        await send_plain(send, 503, _UNAVAILABLE, (b"retry-after", b"5"))


def _add_vary(headers: list[tuple[bytes, bytes]]) -> None:
    """Add ``Cookie`` to Vary so no cache serves one user's page to another (CVE-2023-30861)."""
    for i, (name, value) in enumerate(headers):
        if name.lower() == b"vary":
            parts = [p.strip().lower() for p in value.split(b",")]
            if b"cookie" not in parts and b"*" not in parts:
                headers[i] = (name, value + b", Cookie")
            return
    headers.append((b"vary", b"Cookie"))


def _no_store(headers: list[tuple[bytes, bytes]]) -> None:
    """A response that hands out a session id must never be cached (OWASP)."""
    headers[:] = [(n, v) for n, v in headers if n.lower() != b"cache-control"]
    headers.append((b"cache-control", b"no-store"))


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
