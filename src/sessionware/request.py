"""``RequestView``: the little of a request that sessionware's layers need.

Auth, remember-me, the login throttle and the CSRF check work on this view, never
on a framework's request object, so one implementation serves every framework. An
adapter builds one view per request (the ASGI adapter from the scope, a WSGI
adapter from the environ) and leaves it where :func:`view_of` finds it, so
functions such as ``auth.login(request, ...)`` accept the framework's own request
object as well as the view.

What an adapter provides:

``method``
    The request method, upper-case.
``headers``
    The header lines as received: ``(lower-case name, value)`` byte pairs, in order.
    Read them through :mod:`sessionware._http`, which has the one rule for
    repeated lines and for ``X-Forwarded-*``.
``scheme`` / ``client``
    The connection's scheme (``http``, ``https``, ``ws``, ``wss``) and the socket
    peer's address (or None), before any proxy header is believed.
``session``
    The request's session (raises ``RuntimeError`` without the session middleware).
``state``
    A dict that lives as long as the request, for per-request bookkeeping.
``add_cookie(set_cookie)``
    Queue a ``Set-Cookie`` value for the response, sent even when the session has
    nothing to write.
"""

from __future__ import annotations

from collections.abc import MutableMapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from sessionware.session import BaseSession

__all__ = ["VIEW_KEY", "RequestView", "view_in", "view_of"]

#: Where an adapter leaves its view factory: in the ASGI scope, or in the WSGI environ.
VIEW_KEY = "sessionware.view"


class RequestView(Protocol):
    """What sessionware reads from, and adds to, one request (see the module docstring)."""

    @property
    def method(self) -> str: ...

    @property
    def headers(self) -> Sequence[tuple[bytes, bytes]]: ...

    @property
    def scheme(self) -> str: ...

    @property
    def client(self) -> str | None: ...

    @property
    def session(self) -> BaseSession: ...

    @property
    def state(self) -> MutableMapping[str, Any]: ...

    def add_cookie(self, set_cookie: str) -> None: ...


def view_in(carrier: MutableMapping[str, Any]) -> RequestView | None:
    """The view of the request an ASGI scope or WSGI environ describes, if an adapter
    left its view factory there (``carrier[VIEW_KEY]``, called with the carrier).

    A factory rather than the view itself: a view stored in the scope it reads would
    be a reference cycle per request, work for the garbage collector.
    """
    make = carrier.get(VIEW_KEY)
    return None if make is None else make(carrier)


def view_of(request: Any) -> RequestView:
    """The view of ``request``: a view itself, or a framework request whose adapter left
    a view factory in ``request.scope`` (Starlette) or ``request.environ`` (WSGI).

    Duck-typed, so nothing here imports a framework.
    """
    if hasattr(request, "add_cookie") and hasattr(request, "state"):
        return request  # type: ignore[no-any-return]
    for place in ("scope", "environ"):
        carrier = getattr(request, place, None)
        if isinstance(carrier, MutableMapping):
            view = view_in(carrier)
            if view is not None:
                return view
    raise RuntimeError("no sessionware session here: add the session middleware to the app")
