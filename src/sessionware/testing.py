"""Test helpers for apps built on sessionware: ``login_as(client, user_id)``, and
``StoreContract``, the test suite every store must pass (for stores written elsewhere).

It logs a test client in through the app's own store, configuration and
middleware: it finds the app's ``SessionMiddleware`` (and ``RememberMeMiddleware``),
runs one request through a copy of that middleware around a tiny endpoint that
calls the real :func:`sessionware.auth.login`, and hands the resulting cookies to
the client. Nothing fakes a cookie, so a test logged in this way exercises the same
code as a user who typed a password.

    await login_as(async_client, "alice")   # httpx.AsyncClient(transport=ASGITransport(app))
    login_as(test_client, "alice")          # starlette.testclient.TestClient(app)
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar, overload

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse

from sessionware.asgi import ASGIApp, Receive, Scope, Send, SessionMiddleware
from sessionware.auth import login
from sessionware.remember import RememberMeMiddleware

if TYPE_CHECKING:
    from sessionware._store_contract import (
        ManualClock,
        StoreContract,
        SyncFaceInThreads,
        new_key,
    )

__all__ = [
    "ManualClock",
    "StoreContract",
    "SyncFaceInThreads",
    "find_middleware",
    "login_as",
    "new_key",
]

_CONTRACT = frozenset({"ManualClock", "StoreContract", "SyncFaceInThreads", "new_key"})


def __getattr__(name: str) -> Any:
    # Loaded on first use: login_as needs no pytest, the store contract does.
    if name in _CONTRACT:
        from sessionware import _store_contract

        return getattr(_store_contract, name)
    raise AttributeError(f"module 'sessionware.testing' has no attribute {name!r}")

M = TypeVar("M")


def find_middleware(app: Any, kind: type[M]) -> M | None:
    """The first ``kind`` middleware in ``app``'s stack (Starlette, FastAPI or raw ASGI)."""
    node = app
    for _ in range(64):
        if isinstance(node, kind):
            return node
        if isinstance(node, Starlette):
            # Starlette builds its stack at the first request; build a copy if it has
            # not started, with the same options (so the same store object).
            node = node.middleware_stack or node.build_middleware_stack()
            continue
        node = getattr(node, "app", None)
        if node is None:
            return None
    return None


def _login_app(app: Any, user_id: str, remember: bool) -> ASGIApp:
    sessions = find_middleware(app, SessionMiddleware)
    if sessions is None:
        raise LookupError("login_as: the app has no sessionware SessionMiddleware")
    rm = find_middleware(sessions.app, RememberMeMiddleware)

    async def endpoint(scope: Scope, receive: Receive, send: Send) -> None:
        await login(Request(scope, receive), user_id, remember=remember)
        await PlainTextResponse("logged in")(scope, receive, send)

    inner: ASGIApp = endpoint
    if rm is not None:
        inner = RememberMeMiddleware(endpoint, config=rm.config)
    elif remember:
        raise LookupError("login_as(remember=True): the app has no RememberMeMiddleware")
    return SessionMiddleware(inner, store=sessions.core.store, config=sessions.core.config)


async def _login_async(client: httpx.AsyncClient, app: Any, user_id: str, remember: bool) -> None:
    tiny = _login_app(app, user_id, remember)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=tiny), base_url=client.base_url, cookies=client.cookies
    ) as helper:
        response = await helper.post("/")
        response.raise_for_status()
        client.cookies = helper.cookies


def _login_sync(client: Any, app: Any, user_id: str, remember: bool) -> None:
    # Imported here: a user with a TestClient has imported it already (whichever of
    # httpx / httpx2 it runs on), and nobody else pays for it.
    from starlette.testclient import TestClient

    tiny = _login_app(app, user_id, remember)
    helper = TestClient(tiny, base_url=str(client.base_url), cookies=client.cookies)
    try:
        helper.post("/").raise_for_status()
        client.cookies = helper.cookies
    finally:
        helper.close()


@overload
def login_as(
    client: httpx.AsyncClient, user_id: str, *, remember: bool = ..., app: Any = ...
) -> Coroutine[Any, Any, None]: ...


@overload
def login_as(client: Any, user_id: str, *, remember: bool = ..., app: Any = ...) -> None: ...


def login_as(
    client: Any,
    user_id: str,
    *,
    remember: bool = False,
    app: Any = None,
) -> Coroutine[Any, Any, None] | None:
    """Log ``client`` in as ``user_id`` through the app's real middleware and store.

    Await it for an ``httpx.AsyncClient`` over ``ASGITransport``; call it plainly for
    a Starlette ``TestClient`` (sync). Pass ``app=`` when the client does not expose it.
    """
    if isinstance(client, httpx.AsyncClient):
        target = app if app is not None else getattr(client._transport, "app", None)
        if target is None:
            raise TypeError("login_as: pass app=... (the client has no ASGITransport app)")
        return _login_async(client, target, user_id, remember)
    target = app if app is not None else getattr(client, "app", None)
    if target is None:
        raise TypeError("login_as: pass app=... (the client has no app attribute)")
    _login_sync(client, target, user_id, remember)
    return None
