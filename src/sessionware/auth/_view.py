"""From the request a caller passes to what auth works on: the request's
:class:`~sessionware.request.RequestView`, its session, the clock, and what auth
records of the client (address, user agent).

Every public function of auth takes a view or a framework request whose adapter left
one (:func:`~sessionware.request.view_of`), so ``login(request, ...)`` reads the same
in Starlette, FastAPI or a WSGI app, and nothing here imports a framework.

The coroutines of auth want the async :class:`~sessionware.session.Session` an ASGI
adapter gives, their sync twins (:mod:`sessionware.auth.sync`) the
:class:`~sessionware.session.SyncSession` a WSGI adapter gives: :func:`async_session`
and :func:`sync_session` check that before any store call, and name the other one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeAlias

from sessionware import _http
from sessionware.exceptions import ConfigurationError
from sessionware.request import RequestView, view_of
from sessionware.session import BaseSession, Session, SyncSession

__all__ = [
    "RequestLike",
    "as_view",
    "async_session",
    "base_session",
    "check_async",
    "check_sync",
    "client_ip",
    "clock",
    "sync_session",
    "user_agent",
]

#: A :class:`~sessionware.request.RequestView`, or a framework request whose adapter
#: left one (Starlette's ``Request``, a WSGI request).
RequestLike: TypeAlias = object

_NO_SESSION = "no sessionware session here: add the session middleware to the app"


def as_view(request: RequestLike) -> RequestView:
    """The view of ``request``; a :class:`ConfigurationError` naming the fix if it has none."""
    try:
        return view_of(request)
    except RuntimeError:
        raise ConfigurationError(_NO_SESSION) from None


def base_session(view: RequestView) -> BaseSession:
    """The request's session, sync or async: enough to read and set metadata."""
    try:
        return view.session
    except RuntimeError:
        raise ConfigurationError(_NO_SESSION) from None


def check_async(session: BaseSession, use: str) -> Session:
    """``session`` if it is async; else a ConfigurationError naming ``use``, the sync twin."""
    if not isinstance(session, Session):
        raise ConfigurationError(
            f"this request's session is a {type(session).__name__} (a sync, WSGI request): "
            f"call the sync twin, {use}(...), instead of awaiting this coroutine"
        )
    return session


def check_sync(session: BaseSession, use: str) -> SyncSession:
    """``session`` if it is sync; else a ConfigurationError naming ``use``, the async one."""
    if not isinstance(session, SyncSession):
        raise ConfigurationError(
            f"this request's session is a {type(session).__name__} (an async, ASGI request): "
            f"use await {use}(...) instead of this sync twin"
        )
    return session


def async_session(request: RequestLike, use: str) -> Session:
    """The request's async session, which the coroutines of auth run their operations on."""
    return check_async(base_session(as_view(request)), use)


def sync_session(request: RequestLike, use: str) -> SyncSession:
    """The request's sync session, which the sync twins run their operations on."""
    return check_sync(base_session(as_view(request)), use)


def clock(session: BaseSession) -> Callable[[], float]:
    """The session core's clock (the configured one, else its steady wall clock)."""
    return session.core.clock


def client_ip(request: RequestLike, trust_proxy: int | None = None) -> str | None:
    """The client's address: the ``X-Forwarded-For`` hop ``trust_proxy`` proxies vouch for,
    else the socket peer.

    ``trust_proxy`` defaults to the session configuration's, so an app logs the same
    address that login records for the device list.
    """
    v = as_view(request)
    if trust_proxy is None:
        trust_proxy = base_session(v).config.trust_proxy
    return _http.client_ip(v.headers, v.client, trust_proxy)


def user_agent(view: RequestView) -> str | None:
    """The request's ``User-Agent`` (several lines joined), or None."""
    return _http.header(view.headers, b"user-agent")
