"""The WSGI adapter: the same core as the ASGI one, run with plain calls.

:class:`SessionMiddleware` serves any WSGI app; the Flask extension
(:mod:`sessionware.flask`) uses the same pieces from Flask's session interface. Per
request: :func:`open_session` runs ``core.begin`` on the store's sync face and leaves
the session and the view factory in the environ; :func:`session_headers` runs
``core.finish`` and says which response headers to add. No event loop anywhere:
stores are used through ``store.sync``, safe from many threads.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, TypeVar, Unpack

from sessionware.config import SessionConfig, SessionOptions
from sessionware.core import OutageLog, Outgoing, SessionCore
from sessionware.exceptions import HTTPError, StoreUnavailableError
from sessionware.request import VIEW_KEY
from sessionware.session import SyncSession
from sessionware.stores.base import inline_loader

if TYPE_CHECKING:
    from sessionware.stores.base import Fields, Store

__all__ = [
    "EXTRA_COOKIES",
    "SESSION_KEY",
    "STATE",
    "UNAVAILABLE",
    "SessionMiddleware",
    "WsgiView",
    "get_session",
    "open_session",
    "session_headers",
    "sync_loader",
]

log = logging.getLogger("sessionware")

#: Where the request's session sits in the environ.
SESSION_KEY = "sessionware.session"
#: Where other layers leave ``Set-Cookie`` values for the response.
EXTRA_COOKIES = "sessionware.cookies"
#: Set in the environ when the session could not be opened (the store is down).
UNAVAILABLE = "sessionware.unavailable"
#: Where a request's per-request state dict sits in the environ (``WsgiView.state``).
STATE = "sessionware.state"
_HEADERS = "sessionware.headers"

S = TypeVar("S", bound=SyncSession)
StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

_UNAVAILABLE = (
    b"Service temporarily unavailable: the session store cannot be reached. "
    b"Try again shortly.\n"
)
_PLAIN = [
    ("Content-Type", "text/plain; charset=utf-8"),
    ("Cache-Control", "no-store"),
]


class WsgiView:
    """The :class:`~sessionware.request.RequestView` of one WSGI request, read from its environ."""

    __slots__ = ("environ",)

    def __init__(self, environ: dict[str, Any]) -> None:
        self.environ = environ

    @property
    def method(self) -> str:
        """The request method."""
        return str(self.environ.get("REQUEST_METHOD", "GET")).upper()

    @property
    def headers(self) -> list[tuple[bytes, bytes]]:
        """The header lines as ``(lower-case name, value)`` bytes, rebuilt from the environ
        once per request (the server has already joined repeated lines)."""
        lines: list[tuple[bytes, bytes]] | None = self.environ.get(_HEADERS)
        if lines is None:
            lines = []
            for name, value in self.environ.items():
                if name.startswith("HTTP_"):
                    key = name[5:]
                elif name in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
                    key = name
                else:
                    continue
                header = key.lower().replace("_", "-").encode("latin-1")
                lines.append((header, str(value).encode("latin-1")))
            self.environ[_HEADERS] = lines
        return lines

    @property
    def scheme(self) -> str:
        """The connection's scheme."""
        return str(self.environ.get("wsgi.url_scheme", "http"))

    @property
    def client(self) -> str | None:
        """The socket peer's address."""
        return self.environ.get("REMOTE_ADDR") or None

    @property
    def session(self) -> SyncSession:
        """The request's session."""
        return get_session(self.environ)

    @property
    def state(self) -> dict[str, Any]:
        """A dict living as long as the request."""
        state: dict[str, Any] = self.environ.setdefault(STATE, {})
        return state

    def add_cookie(self, set_cookie: str) -> None:
        """Queue a ``Set-Cookie`` value for the response."""
        self.environ.setdefault(EXTRA_COOKIES, []).append(set_cookie)


def get_session(environ: dict[str, Any]) -> SyncSession:
    """The session of a WSGI environ."""
    session = environ.get(SESSION_KEY)
    if not isinstance(session, SyncSession):
        raise RuntimeError("no sessionware session here: add the session middleware to the app")
    return session


def sync_loader(core: SessionCore) -> Callable[[str], Fields | None]:
    """The plainest call that reads one record for ``core``'s sync face.

    ``load_inline`` when the store has one and no subclass changed how it loads (a
    read on this thread's connection, no operation driven), else ``store.sync.load``.
    """
    face = core.sync_store  # a store without a sync face fails here, at start
    return inline_loader(core.store) or face.load


def open_session(
    core: SessionCore,
    environ: dict[str, Any],
    cls: type[S] = SyncSession,  # type: ignore[assignment]
    load: Callable[[str], Fields | None] | None = None,
) -> S:
    """Open the request's session and leave it, and the view factory, in the environ.

    ``core.begin``'s steps with the one load called directly (``load``, from
    :func:`sync_loader`: it is on every request). Raises StoreUnavailableError in an
    outage.
    """
    # The server has joined repeated lines into HTTP_COOKIE: no need to rebuild them all.
    cookie = environ.get("HTTP_COOKIE") or None
    found = core.read_cookie(cookie)
    fields = None if found is None else (load or core.sync_store.load)(found[1])
    session, after = core.opened(cookie, found, fields, cls)
    if after is not None:
        core.run(after)
    environ[SESSION_KEY] = session
    environ[VIEW_KEY] = WsgiView
    return session


def session_headers(
    core: SessionCore, environ: dict[str, Any], status: int
) -> Outgoing | None:
    """Finish the request's session (``core.finish``); the headers the response needs.

    Raises StoreUnavailableError in an outage; None when the response goes out as is.
    """
    session = get_session(environ)
    cookies: list[str] = []
    if not core.untouched(session):
        view = WsgiView(environ)
        cookies = core.run(core.finish(session, status, view.headers, view.scheme))
    return core.outgoing(session, cookies, environ.get(EXTRA_COOKIES))


def with_session_headers(
    headers: Sequence[tuple[str, str]], out: Outgoing
) -> list[tuple[str, str]]:
    """``headers`` with ``Vary: Cookie``, the Set-Cookie values and, when asked,
    ``Cache-Control: no-store`` (the ASGI adapter's rules, on WSGI's text pairs; the
    app's own header names keep their spelling)."""
    result = list(headers)
    for i, (name, value) in enumerate(result):
        if name.lower() == "vary":
            parts = [p.strip().lower() for p in value.split(",")]
            if "cookie" not in parts and "*" not in parts:
                result[i] = (name, value + ", Cookie")
            break
    else:
        result.append(("Vary", "Cookie"))
    if out.no_store:
        result = [(n, v) for n, v in result if n.lower() != "cache-control"]
        result.append(("Cache-Control", "no-store"))
    result += [("Set-Cookie", value) for value in out.cookies]
    return result


class SessionMiddleware:
    """Server-side sessions for any WSGI app: ``app.wsgi_app = SessionMiddleware(app.wsgi_app,
    store=SQLiteStore("s.db"), secrets=[...])``; the session is ``environ["sessionware.session"]``
    (a :class:`~sessionware.session.SyncSession`). Flask apps use :mod:`sessionware.flask`.
    """

    def __init__(
        self,
        app: WSGIApp,
        *,
        store: Store | None = None,
        secrets: Sequence[str] | None = None,
        config: SessionConfig | None = None,
        **options: Unpack[SessionOptions],
    ) -> None:
        self.app = app
        self.core = SessionCore.build(store, secrets, config, options, adapter="SessionMiddleware")
        self._load = sync_loader(self.core)  # a store without a sync face fails here
        self._outage = OutageLog()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        try:
            open_session(self.core, environ, SyncSession, self._load)
        except StoreUnavailableError as exc:
            self._outage(exc)
            return _unavailable(start_response)
        response = _Response(self, environ, start_response)
        try:
            body = self.app(environ, response.start)
        except HTTPError as exc:
            return response.answer(exc)
        if response.replaced:
            _close(body)
            return [_UNAVAILABLE]
        if response.started:
            return body  # the common case, handed on as is (len(), wsgi.file_wrapper kept)
        return _Body(body, response)  # a generator app starts its response when iterated


class _Response:
    """One request's response as it passes the middleware: the ``start_response`` the
    app is given finishes the session (once) and adds its headers."""

    __slots__ = ("environ", "middleware", "out", "replaced", "start_response", "started")

    def __init__(
        self, middleware: SessionMiddleware, environ: dict[str, Any], start_response: StartResponse
    ) -> None:
        self.middleware = middleware
        self.environ = environ
        self.start_response = start_response
        self.started = False
        #: Finishing the session failed (store outage): the answer is the 503 instead.
        self.replaced = False
        self.out: Outgoing | None = None

    def start(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        """The app's ``start_response``. The session is finished on the first call; a
        later one (an error page, with ``exc_info``) gets the same session headers."""
        if self.replaced:
            return _discard  # the 503 went out instead: the app's response is dropped
        if not self.started:
            self.started = True
            try:
                self.out = session_headers(
                    self.middleware.core, self.environ, int(status.split(" ", 1)[0])
                )
            except StoreUnavailableError as exc:
                self.middleware._outage(exc)
                self.replaced = True
                self.start_response("503 Service Unavailable", _unavailable_headers(), exc_info)
                return _discard
        if self.out is not None:
            headers = with_session_headers(headers, self.out)
        return self.start_response(status, headers, exc_info)

    def answer(self, exc: HTTPError) -> list[bytes]:
        """Answer the HTTPError the app raised (before its body began) with its status."""
        detail = exc.detail.encode()
        headers = [*_PLAIN[:1], *exc.headers.items(), ("Content-Length", str(len(detail)))]
        # After a start_response of the app's own, the server must be told this replaces it.
        exc_info = sys.exc_info() if self.started else None
        self.start(f"{exc.status_code} {_reason(exc.status_code)}", headers, exc_info)
        return [_UNAVAILABLE] if self.replaced else [detail]


class _Body:
    """The body of an app that calls ``start_response`` only when first iterated (a
    generator): an HTTPError raised then is answered, and the 503 replaces the body if
    finishing the session failed."""

    def __init__(self, body: Iterable[bytes], response: _Response) -> None:
        self.body = body
        self.response = response

    def __iter__(self) -> Iterator[bytes]:
        response = self.response
        chunks = iter(self.body)
        try:
            first = next(chunks, None)
        except HTTPError as exc:
            if response.started:
                raise  # the answer is already under way: the server's to handle
            yield from response.answer(exc)
            return
        if response.replaced:
            yield _UNAVAILABLE
            return
        if first is None:
            return
        yield first
        yield from chunks

    def close(self) -> None:
        _close(self.body)


def _discard(data: bytes) -> None:
    """The ``write`` callable of a response the 503 replaced."""


def _close(body: Iterable[bytes]) -> None:
    close = getattr(body, "close", None)
    if close is not None:
        close()


def _unavailable_headers() -> list[tuple[str, str]]:
    return [*_PLAIN, ("Retry-After", "5"), ("Content-Length", str(len(_UNAVAILABLE)))]


def _unavailable(start_response: StartResponse) -> list[bytes]:
    start_response("503 Service Unavailable", _unavailable_headers())
    return [_UNAVAILABLE]


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
