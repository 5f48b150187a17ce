"""``CSRFMiddleware``: the ASGI glue around :class:`~sessionware.csrf.check.CSRFCheck`.

What only ASGI can do lives here: buffering a form body from ``receive`` (capped)
and replaying it to the app byte for byte, finding a ``@csrf_exempt`` endpoint
through Starlette's router before the router runs, closing a refused WebSocket
handshake, and answering a refusal. Every decision is the check's.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Unpack

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sessionware._http import header
from sessionware._plain import send_plain
from sessionware.asgi import AsgiView
from sessionware.csrf.check import SAFE_METHODS, CSRFCheck, CSRFOptions, NeedsToken, Refusal
from sessionware.csrf.exempt import is_exempt
from sessionware.csrf.form import form_field, is_form
from sessionware.request import VIEW_KEY, RequestView

__all__ = ["CSRFMiddleware"]

log = logging.getLogger("sessionware")

_NO_SESSION = (
    "CSRFMiddleware needs a sessionware session: call app.add_middleware(CSRFMiddleware) "
    "first, then app.add_middleware(SessionMiddleware, ...), so sessions wrap it"
)
_MAX_DEPTH = 8


class _BodyTooLargeError(Exception):
    """The body grew past the cap while it was read; the rest is left unread."""


class CSRFMiddleware:
    """Refuse cross-site unsafe requests with a 403; place it inside ``SessionMiddleware``.

    Takes the options of :class:`~sessionware.csrf.check.CSRFCheck`, by keyword; they
    are checked here, so a mistake fails at start-up.
    """

    def __init__(self, app: ASGIApp, **options: Unpack[CSRFOptions]) -> None:
        self.app = app
        self.check = CSRFCheck(**options)
        self._started = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        check = self.check
        if not self._started:
            self._started = True
            paths = check.exempt_paths.listed()
            routes = sorted(_marked_routes(_routes_of(scope.get("app")), ""))
            log.debug("CSRF checks skipped for paths %s and routes %s", paths, routes)
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            await self.app(scope, receive, send)
            return
        # Without SessionMiddleware the Host and handshake checks still run, trusting no proxy.
        view: RequestView = AsgiView(scope)
        path: str = scope.get("path", "")
        refusal = check.host_refusal(view, path=path, handshake=kind == "websocket")
        if refusal is not None:
            if kind == "http":
                await _answer(send, refusal)
            else:
                await send({"type": "websocket.close", "code": 1008})
            return
        if kind == "websocket":
            if not _exempt(check, scope):
                refusal = check.handshake(view, path=path, server=scope.get("server"))
                if refusal is not None:
                    # Closing before accepting makes the server answer the handshake 403.
                    await send({"type": "websocket.close", "code": 1008})
                    return
            await self.app(scope, receive, send)
            return
        if scope.get(VIEW_KEY) is None:  # no SessionMiddleware outside this one
            raise RuntimeError(_NO_SESSION)
        check.attach(view)
        send = _seeding(check, view, send)
        if view.method.upper() in SAFE_METHODS or _exempt(check, scope):
            await self.app(scope, receive, send)
            return
        refusal, receive = await self._check(scope, receive, view, path)
        if refusal is _GONE:
            return
        if refusal is not None:
            await _answer(send, refusal)
            return
        await self.app(scope, receive, send)

    async def _check(
        self, scope: Scope, receive: Receive, view: RequestView, path: str
    ) -> tuple[Refusal | None, Receive]:
        """The refusal (or None), and the ``receive`` the app must use."""
        check = self.check
        outcome = check.before_body(view, path=path, server=scope.get("server"))
        if isinstance(outcome, Refusal):
            return outcome, receive  # refused unread
        content_type = header(scope["headers"], b"content-type")
        length = header(scope["headers"], b"content-length")
        body: bytes | None = None
        if content_type is not None and is_form(content_type):
            # Every form that may reach the app is capped here, anonymous ones too.
            read, receive = await self._read_form(view, path, receive, length)
            if isinstance(read, Refusal):
                return read, receive
            body = read
        if not isinstance(outcome, NeedsToken):
            return None, receive
        token = outcome.header
        if outcome.field is not None and body is not None and content_type is not None:
            token = form_field(body, content_type, outcome.field)
        return check.verify(view, token, path=path), receive

    async def _read_form(
        self, view: RequestView, path: str, receive: Receive, length: str | None
    ) -> tuple[Refusal | bytes, Receive]:
        """The whole form body (then replayed to the app), or why it was not read.

        A ``Content-Length`` over the cap is refused before reading; a stream that
        passes the cap is refused as soon as it does (RFC 9110 §15.5.14, 413).
        """
        check = self.check
        if length is not None:
            if not length.isdigit():
                return Refusal.of(400, "malformed Content-Length"), receive
            if int(length) > check.max_body_size:
                return check.body_too_large(view, f"Content-Length {length}", path=path), receive
        try:
            body = await _buffer_body(receive, check.max_body_size)
        except _BodyTooLargeError:
            return check.body_too_large(view, "streamed", path=path), receive
        if body is None:
            return _GONE, receive
        return body, _replay(body, receive)


#: The client went away while its body was read: nothing to answer, nobody to call.
_GONE = Refusal(0, "client disconnected")


def _seeding(check: CSRFCheck, view: RequestView, send: Send) -> Send:
    """``send``, seeding a new session's CSRF secret as the response starts."""

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            check.seed(view)
        await send(message)

    return wrapped


async def _answer(send: Send, refusal: Refusal) -> None:
    headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in refusal.headers]
    await send_plain(send, refusal.status, refusal.text.encode(), *headers)


# -- the form body ---------------------------------------------------------------------


async def _buffer_body(receive: Receive, limit: int) -> bytes | None:
    """Read the whole request body, or None if the client disconnected first.

    Raises :class:`_BodyTooLargeError` as soon as more than ``limit`` bytes arrived,
    whatever ``Content-Length`` said.
    """
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _BodyTooLargeError("request body over the cap")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands out the whole ``body`` once, then defers to the real one."""
    sent = False

    async def wrapped() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return wrapped


# -- @csrf_exempt endpoints, found through Starlette's router --------------------------


def _exempt(check: CSRFCheck, scope: Scope) -> bool:
    """Whether ``exempt_paths`` or a marked endpoint covers this request.

    The middleware runs before the router has chosen an endpoint, so the endpoint is
    found by asking the app's routes the same question the router will
    (``route.matches(scope)``, first full match, into mounts).
    """
    if check.exempt(_route_path(scope)):
        return True
    endpoint = scope.get("endpoint")
    if endpoint is None:
        endpoint = _match(_routes_of(scope.get("app")), scope)
    return is_exempt(endpoint)


def _route_path(scope: Scope) -> str:
    """The path the app's routes see (``root_path`` removed, as Starlette's router does)."""
    path: str = scope.get("path", "")
    root: str = scope.get("root_path", "")
    if root and path.startswith(root) and path[len(root) : len(root) + 1] in ("", "/"):
        return path[len(root) :] or "/"
    return path


def _routes_of(app: Any) -> Sequence[Any]:
    router = getattr(app, "router", app)
    routes = getattr(router, "routes", None)
    return routes if isinstance(routes, Sequence) else ()


def _match(routes: Sequence[Any], scope: Scope, depth: int = 0) -> Any:
    """The endpoint Starlette's router would pick for this request (first full match)."""
    # Here, not at the top: starlette.routing pulls in the form parser, an optional extra.
    from starlette.routing import Match

    for route in routes:
        try:
            match, child = route.matches(scope)
        except Exception:  # a route that cannot judge this request grants no exemption
            return None
        if match is not Match.FULL:
            continue
        endpoint = child.get("endpoint")
        if is_exempt(endpoint):
            return endpoint
        sub = getattr(route, "routes", None)
        if sub and depth < _MAX_DEPTH:
            return _match(sub, {**scope, **child}, depth + 1)
        return endpoint
    return None


def _marked_routes(routes: Sequence[Any], prefix: str, depth: int = 0) -> list[str]:
    """The paths of marked endpoints (a marked mounted app as ``path/*``), for the log."""
    found = []
    for route in routes:
        path = prefix + str(getattr(route, "path", ""))
        if is_exempt(getattr(route, "endpoint", None)):
            found.append(path)
        elif is_exempt(getattr(route, "app", None)):
            found.append(path + "/*")
        else:
            sub = getattr(route, "routes", None)
            if sub and depth < _MAX_DEPTH:
                found.extend(_marked_routes(sub, path, depth + 1))
    return found
