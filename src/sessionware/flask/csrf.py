"""``CSRFProtect``: CSRF protection for Flask, driving the one CSRF check.

Named as Flask-WTF names it (``CSRFProtect(app)``, ``@csrf.exempt``,
``{{ csrf_token() }}``, the ``X-CSRFToken`` header and the ``csrf_token`` form field
besides sessionware's own), so Flask users read it as they
expect; every decision is :class:`~sessionware.csrf.check.CSRFCheck`'s, so a Flask app
refuses the same requests, with the same words, as the ASGI middleware. What only
Flask can do lives here: :func:`protect`, which Sessionware's first ``before_request``
hook calls (Flask opens the session before it), the endpoint's view found through
``app.view_functions``, the form body read by Flask's own parser under the check's
cap, and a refusal answered as a Flask response.

Options are :class:`~sessionware.csrf.check.CSRFCheck`'s, by keyword or from
``app.config`` as ``SESSIONWARE_CSRF_<OPTION>`` (``SESSIONWARE_CSRF_TRUSTED_ORIGINS``,
``SESSIONWARE_CSRF_MAX_BODY_SIZE``...), each in one place only.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any, TypeVar, Unpack

from flask import Flask, Request, Response, current_app, request
from markupsafe import Markup
from werkzeug.exceptions import RequestEntityTooLarge

from sessionware._http import header
from sessionware.csrf.check import (
    SAFE_METHODS,
    STATE_KEY,
    CSRFCheck,
    CSRFOptions,
    NeedsToken,
    Refusal,
    Server,
)
from sessionware.csrf.exempt import csrf_exempt, is_exempt
from sessionware.csrf.form import is_form
from sessionware.exceptions import ConfigurationError
from sessionware.request import RequestView, view_of
from sessionware.wsgi import STATE, WsgiView

__all__ = ["CONFIG_PREFIX", "CSRFProtect", "csrf_input", "csrf_token"]

log = logging.getLogger("sessionware")

#: ``app.config`` keys ``SESSIONWARE_CSRF_<OPTION>`` set the check's options.
CONFIG_PREFIX = "SESSIONWARE_CSRF_"
#: Where ``init_app`` leaves the app's check, in ``app.extensions``.
EXTENSION_KEY = "sessionware.csrf"
#: Flask-WTF's header name, accepted too, so its users' JavaScript keeps working.
_FLASK_WTF_HEADER = b"x-csrftoken"
#: Flask-WTF's form field name, accepted too: its users' templates write
#: ``<input type="hidden" name="csrf_token" value="{{ csrf_token() }}">``.
_FLASK_WTF_FIELD = "csrf_token"

_OPTIONS = frozenset(CSRFOptions.__optional_keys__)
_NO_SESSIONWARE = (
    "CSRFProtect needs sessionware's sessions on this app: call Sessionware(app) "
    "before CSRFProtect(app)"
)
_UNCHECKED = "csrf_token() needs CSRFProtect on this app: a token nobody checks protects nothing"

V = TypeVar("V")


class CSRFProtect:
    """Refuse cross-site unsafe requests to a Flask app: ``CSRFProtect(app)`` after
    ``Sessionware(app)``, or ``csrf = CSRFProtect()`` then ``csrf.init_app(app)``.

    Takes :class:`~sessionware.csrf.check.CSRFCheck`'s options by keyword; they are
    checked in ``init_app``, so a mistake fails at start-up. Installing again on the
    same app replaces its check (the hooks stay installed once).
    """

    def __init__(self, app: Flask | None = None, **options: Unpack[CSRFOptions]) -> None:
        unknown = set(options) - _OPTIONS
        if unknown:
            raise ConfigurationError(
                f"unknown CSRFProtect option {sorted(unknown)[0]!r}: use one of "
                + ", ".join(sorted(_OPTIONS))
            )
        self.options: Mapping[str, Any] = dict(options)
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Check every request of ``app``; add ``csrf_token()`` and ``csrf_input()`` to its
        templates. ``Sessionware(app)`` must be installed first."""
        if app.extensions.get("sessionware") is None:
            raise ConfigurationError(_NO_SESSIONWARE)
        check = CSRFCheck(**options_from(app, self.options))
        installed = EXTENSION_KEY in app.extensions
        app.extensions[EXTENSION_KEY] = check
        log.debug("CSRF checks skipped for paths %s", check.exempt_paths.listed())
        if installed:
            return
        # No hook of its own: Sessionware's first before_request hook calls protect() for
        # every app holding a check, so no other hook acts on a request before it is
        # judged (one hook, not two, on every request). A new session's CSRF secret is
        # seeded by the session interface (seed()) as the response is finished.
        app.add_template_global(csrf_token)
        app.add_template_global(csrf_input)

    def exempt(self, view: V) -> V:
        """Skip the check for a view function, a view class or a Blueprint: for webhooks only."""
        if isinstance(view, str):
            raise TypeError(
                "csrf.exempt takes the view function, view class or Blueprint itself, "
                "not its name"
            )
        return csrf_exempt(view)


def options_from(app: Flask, given: Mapping[str, Any]) -> dict[str, Any]:
    """``given`` plus the ``SESSIONWARE_CSRF_*`` settings of ``app.config``.

    An unknown setting, or an option given both ways, is refused: a silent winner
    would leave one of the two places lying about what the app does.
    """
    options = dict(given)
    for name, value in app.config.items():
        if not name.startswith(CONFIG_PREFIX):
            continue
        option = name[len(CONFIG_PREFIX) :].lower()
        if option not in _OPTIONS:
            known = ", ".join(sorted(CONFIG_PREFIX + o.upper() for o in _OPTIONS))
            raise ConfigurationError(f"unknown setting {name}: use one of {known}")
        if option in given:
            raise ConfigurationError(
                f"{option} is given both to CSRFProtect and as {name}: give it in one place"
            )
        options[option] = value
    return options


# -- tokens for templates and views ---------------------------------------------------


def csrf_token(request_: Any = None) -> str:
    """A fresh token for this request's forms or API client (the current request by default).

    With a session it is bound to the session's secret; without one it is an
    anonymous token, and no session or cookie is created.
    """
    view, check = _checked(request_)
    return check.token(view)


def csrf_input(request_: Any = None) -> Markup:
    """A hidden ``<input>`` carrying :func:`csrf_token`, safe to place in a template as is."""
    view, check = _checked(request_)
    return Markup(check.hidden_input(view))  # noqa: S704 - hidden_input escapes both values


def _checked(request_: Any) -> tuple[RequestView, CSRFCheck]:
    """The request's view and the check attached to it, or RuntimeError."""
    view = WsgiView(request.environ) if request_ is None else view_of(request_)
    check = view.state.get(STATE_KEY)
    if not isinstance(check, CSRFCheck):
        raise RuntimeError(_UNCHECKED)
    return view, check


# -- the hooks ------------------------------------------------------------------------


def protect(app: Flask, req: Request) -> Response | None:
    """Judge the request before any view (or other hook) acts on it, when ``app`` has a
    check: the check's steps in the ASGI middleware's order, host first. Called by
    Sessionware's first before_request hook, once the session opened."""
    check: CSRFCheck | None = app.extensions.get(EXTENSION_KEY)
    if check is None:
        return None
    environ = req.environ
    if check.allowed_hosts is None and environ.get("REQUEST_METHOD") in SAFE_METHODS:
        # Most requests: no Host to judge and nothing to check, only attached so that
        # csrf_token() works (what the steps below do for them, without the view).
        state = environ.get(STATE)
        if state is None:
            state = environ[STATE] = {}
        state[STATE_KEY] = check
        return None
    view = WsgiView(environ)
    path = req.path
    refusal = check.host_refusal(view, path=path)
    if refusal is None:
        check.attach(view)
        if view.method in SAFE_METHODS or _exempt(check, path):
            return None
        refusal = _judge(check, view, path)
    return None if refusal is None else _answer(refusal)


def seed(environ: dict[str, Any]) -> None:
    """Give a session about to be created its CSRF secret in the same write (the
    session interface calls it as the response is finished, for a new session only)."""
    state = environ.get(STATE)
    check = state.get(STATE_KEY) if state is not None else None
    if isinstance(check, CSRFCheck):  # attached: the request was judged, with a session
        check.seed(WsgiView(environ))


def _judge(check: CSRFCheck, view: RequestView, path: str) -> Refusal | None:
    """The refusal for an unsafe, non-exempt request, or None."""
    outcome = check.before_body(view, path=path, server=_server(request.environ))
    if isinstance(outcome, Refusal):
        return outcome  # refused unread
    content_type = header(view.headers, b"content-type")
    if content_type is not None and is_form(content_type):
        # Every form that may reach the view is capped here, anonymous ones too.
        refusal = _read_form(check, view, path)
        if refusal is not None:
            return refusal
    if not isinstance(outcome, NeedsToken):
        return None
    token = outcome.header
    if token is None:
        token = header(view.headers, _FLASK_WTF_HEADER)
    if token is None and outcome.field is not None:
        form = request.form
        token = form.get(outcome.field)
        if token is None:
            token = form.get(_FLASK_WTF_FIELD)
    return check.verify(view, token, path=path)


def _read_form(check: CSRFCheck, view: RequestView, path: str) -> Refusal | None:
    """Read the form body under the cap (Flask then parses ``request.form`` from it).

    A ``Content-Length`` over the check's cap is refused unread; a stream is read to
    one byte past the cap, since werkzeug stops a capped stream at the cap without a
    word, so a longer body shows itself by that byte. An app whose own
    ``MAX_CONTENT_LENGTH`` is lower keeps Flask's own 413 for it.
    """
    length = header(view.headers, b"content-length")
    if length is not None:
        if not length.isdigit():
            return Refusal.of(400, "malformed Content-Length")
        if int(length) > check.max_body_size:
            return check.body_too_large(view, f"Content-Length {length}", path=path)
    own = request.max_content_length
    limit = check.max_body_size if own is None else min(own, check.max_body_size)
    request.max_content_length = limit + 1
    try:
        body = request.get_data(cache=True)
    finally:
        request.max_content_length = own
    if len(body) <= limit:
        return None
    if limit < check.max_body_size:
        raise RequestEntityTooLarge()
    return check.body_too_large(view, "streamed", path=path)


def _exempt(check: CSRFCheck, path: str) -> bool:
    """Whether ``exempt_paths``, or a mark on the endpoint's view (function or class) or
    on one of its blueprints, covers this request. No endpoint (a 404) is not exempt."""
    if check.exempt(path):
        return True
    endpoint = request.endpoint
    if endpoint is None:
        return False
    app = current_app
    view = app.view_functions.get(endpoint)
    if is_exempt(view) or is_exempt(getattr(view, "view_class", None)):
        return True
    return any(is_exempt(app.blueprints.get(name)) for name in request.blueprints)


def _server(environ: Mapping[str, Any]) -> Server | None:
    """The server's own address, the app's origin when a request sent no Host."""
    name = environ.get("SERVER_NAME")
    if not name:
        return None
    port = str(environ.get("SERVER_PORT", ""))
    return str(name), int(port) if port.isdigit() else None


def _answer(refusal: Refusal) -> Response:
    """The refusal as plain text, or ``{"detail": ...}`` for a JSON client (the rule
    Sessionware answers its HTTPError by)."""
    headers = [*refusal.headers, ("Cache-Control", "no-store")]
    if request.accept_mimetypes.best == "application/json" or request.is_json:
        body, kind = json.dumps({"detail": refusal.reason}), "application/json"
    else:
        body, kind = refusal.text, "text/plain; charset=utf-8"
    return Response(body, status=refusal.status, headers=headers, content_type=kind)
