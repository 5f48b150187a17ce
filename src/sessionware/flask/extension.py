"""``Sessionware``: the Flask extension, installed as Flask's session interface.

``from flask import session`` then *is* a sessionware session (a
:class:`FlaskSession`: server-side, hashed id at rest, per-key change sets), so
``flask.flash`` and everything else that uses ``flask.session`` works unchanged. It
is the WSGI adapter (:mod:`sessionware.wsgi`) run from Flask's hooks: the session is
opened with plain calls on the store's sync face, no event loop.

Configuration comes from ``app.config``: the secrets are ``SECRET_KEY`` (signs) and
``SECRET_KEY_FALLBACKS`` (verify only, newest first: Flask lists them oldest first,
as itsdangerous wants), and every :class:`~sessionware.config.SessionConfig` option
under the ``SESSIONWARE_`` prefix: ``SESSIONWARE_STORE`` (a store URL, default
``sqlite:///sessions.sqlite3``), ``SESSIONWARE_COOKIE_NAME``, ``SESSIONWARE_SECURE``,
``SESSIONWARE_IDLE_TIMEOUT``...
"""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import TYPE_CHECKING, Any

from flask import Flask, Request, Response, request
from flask.sessions import SessionInterface, SessionMixin

from sessionware.config import SessionConfig
from sessionware.core import OutageLog, SessionCore
from sessionware.exceptions import ConfigurationError, HTTPError, StoreUnavailableError
from sessionware.session import SyncSession
from sessionware.wsgi import WsgiView, open_session, session_headers

if TYPE_CHECKING:
    from sessionware.request import RequestView
    from sessionware.stores.base import Store

__all__ = ["FlaskSession", "Sessionware", "current_view", "extension"]

log = logging.getLogger("sessionware")

PREFIX = "SESSIONWARE_"
DEFAULT_STORE = "sqlite:///sessions.sqlite3"
_UNAVAILABLE = "sessionware.unavailable"
_OPTIONS = {f.name for f in dataclasses.fields(SessionConfig)} - {"secrets", "clock", "genid"}


class FlaskSession(SyncSession, SessionMixin):  # type: ignore[override]
    """A sessionware session that Flask accepts as ``flask.session`` (a SessionMixin).

    ``session.permanent`` is kept for Flask's API; lifetime is sessionware's idle and
    absolute timeouts either way.
    """

    @property
    def new(self) -> bool:  # type: ignore[override]
        """Whether this request created the session (Flask's name for ``is_new``)."""
        return self.is_new


def current_view() -> RequestView:
    """The view of the Flask request being served."""
    return WsgiView(request.environ)


def extension(app: Flask | None = None) -> Sessionware:
    """The :class:`Sessionware` installed on ``app`` (the current app by default)."""
    from flask import current_app

    found = (app or current_app).extensions.get("sessionware")
    if not isinstance(found, Sessionware):
        raise RuntimeError("sessionware is not set up on this app: Sessionware(app)")
    return found


def config_from(app: Flask) -> tuple[SessionConfig, str]:
    """The SessionConfig ``app.config`` describes, and its store URL."""
    secret = app.config.get("SECRET_KEY")
    if not secret:
        raise ConfigurationError(
            "Flask's SECRET_KEY is not set: set it from the environment, e.g. "
            "app.config['SECRET_KEY'] = os.environ['SECRET_KEY'] "
            "(make one with: sessionware secret)"
        )
    fallbacks = list(app.config.get("SECRET_KEY_FALLBACKS") or [])
    secrets = [_text(secret), *(_text(k) for k in reversed(fallbacks))]
    options: dict[str, Any] = {}
    for name, value in app.config.items():
        if not name.startswith(PREFIX) or name == PREFIX + "STORE":
            continue
        option = name[len(PREFIX):].lower()
        if option not in _OPTIONS:
            known = ", ".join(sorted(PREFIX + o.upper() for o in _OPTIONS))
            raise ConfigurationError(f"unknown setting {name}: use one of {known}")
        options[option] = value
    store_url = str(app.config.get(PREFIX + "STORE") or options.pop("store_url", None) or "")
    return SessionConfig(secrets=secrets, **options), store_url or DEFAULT_STORE


def _text(key: str | bytes) -> str:
    return key.decode() if isinstance(key, bytes) else str(key)


class Sessionware:
    """Server-side sessions, login and CSRF for a Flask app: ``Sessionware(app)`` or
    ``sw = Sessionware()`` then ``sw.init_app(app)`` in an app factory.

    ``store=`` overrides ``SESSIONWARE_STORE`` with a store object.
    """

    def __init__(self, app: Flask | None = None, *, store: Store | None = None) -> None:
        self._store = store
        self.core: SessionCore | None = None
        self._outage = OutageLog()
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Install on ``app``: its session interface, the error answers, the hooks."""
        config, url = config_from(app)
        store = self._store
        if store is None:
            from sessionware.stores import from_url

            store = from_url(url)
        self.core = SessionCore.build(store, None, config, {}, adapter="Sessionware")
        self.core.sync_store  # noqa: B018 - a store without a sync face fails here, at start
        app.extensions["sessionware"] = self
        app.session_interface = _Interface(self)
        app.before_request(self._unavailable_first)
        app.register_error_handler(HTTPError, _answer)

    def _core(self) -> SessionCore:
        if self.core is None:
            raise RuntimeError("Sessionware.init_app(app) was not called")
        return self.core

    def _unavailable_first(self) -> Response | None:
        """Answer 503 for a request whose session could not be opened."""
        if request.environ.get(_UNAVAILABLE):
            return _plain_503()
        return None


class _Interface(SessionInterface):
    """Flask's session interface, served by the WSGI adapter's two steps."""

    def __init__(self, ext: Sessionware) -> None:
        self.ext = ext

    def open_session(self, app: Flask, request: Request) -> SessionMixin | None:
        try:
            return open_session(self.ext._core(), request.environ, FlaskSession)
        except StoreUnavailableError as exc:
            self.ext._outage(exc)
            request.environ[_UNAVAILABLE] = True
            return None  # Flask makes a null session; the first before_request answers 503

    def is_null_session(self, obj: object) -> bool:
        return not isinstance(obj, FlaskSession)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        if not isinstance(session, FlaskSession):
            return
        try:
            out = session_headers(self.ext._core(), request.environ, response.status_code)
        except StoreUnavailableError as exc:
            self.ext._outage(exc)
            _become_503(response)
            return
        if out is None:
            return
        response.vary.add("Cookie")
        for value in out.cookies:
            response.headers.add("Set-Cookie", value)
        if out.no_store:
            response.headers["Cache-Control"] = "no-store"


def _answer(exc: HTTPError) -> Response:
    """sessionware's HTTPError as Flask answers its own: JSON for API requests."""
    if request.accept_mimetypes.best == "application/json" or request.is_json:
        body, kind = json.dumps({"detail": exc.detail}), "application/json"
    else:
        body, kind = exc.detail, "text/plain; charset=utf-8"
    return Response(body, status=exc.status_code, headers=exc.headers, content_type=kind)


_503_TEXT = (
    "Service temporarily unavailable: the session store cannot be reached. Try again shortly.\n"
)


def _plain_503() -> Response:
    return Response(
        _503_TEXT,
        status=503,
        content_type="text/plain; charset=utf-8",
        headers={"Retry-After": "5", "Cache-Control": "no-store"},
    )


def _become_503(response: Response) -> None:
    """Turn the app's response into the outage answer (finishing the session failed)."""
    response.status_code = 503
    response.set_data(_503_TEXT)
    response.content_type = "text/plain; charset=utf-8"
    response.headers["Retry-After"] = "5"
    response.headers["Cache-Control"] = "no-store"
    response.headers.pop("Set-Cookie", None)
