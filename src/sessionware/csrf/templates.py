"""``csrf_token``, ``csrf_input`` and ``install_jinja``: tokens for pages and API clients.

They take the framework's own request (or a RequestView, or an ASGI scope), find the
:class:`~sessionware.csrf.check.CSRFCheck` the adapter attached to it, and refuse to
render a token on an app that does not check them.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any

from sessionware.csrf.check import STATE_KEY, CSRFCheck
from sessionware.request import RequestView, view_in, view_of

if TYPE_CHECKING:
    from jinja2 import Environment

__all__ = ["csrf_input", "csrf_token", "install_jinja"]

_UNCHECKED = "csrf_token() needs CSRFMiddleware on this app: a token nobody checks protects nothing"


def csrf_token(request: Any) -> str:
    """A fresh token for this request's forms or API client.

    With a session it is bound to the session's secret (made now if missing); without
    one it is an anonymous token, and no session or cookie is created.
    """
    view, check = _checked(request)
    return check.token(view)


def csrf_input(request: Any) -> str:
    """A hidden ``<input>`` carrying :func:`csrf_token`, for a form (HTML text)."""
    view, check = _checked(request)
    return check.hidden_input(view)


def install_jinja(env: Environment) -> None:
    """Add ``csrf_token(request)`` and ``csrf_input(request)`` as Jinja2 globals."""
    from markupsafe import Markup

    env.globals["csrf_token"] = csrf_token
    env.globals["csrf_input"] = lambda request: Markup(csrf_input(request))  # noqa: S704


def _checked(request: Any) -> tuple[RequestView, CSRFCheck]:
    """The request's view and the check attached to it, or RuntimeError."""
    if isinstance(request, MutableMapping):  # a raw ASGI scope
        view = view_in(request)
        if view is None:
            raise RuntimeError(_UNCHECKED)
    else:
        view = view_of(request)
    check = view.state.get(STATE_KEY)
    if not isinstance(check, CSRFCheck):
        raise RuntimeError(_UNCHECKED)
    return view, check
