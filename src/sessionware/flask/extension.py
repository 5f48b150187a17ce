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

Login (:mod:`sessionware.flask.login`) is configured here too, each option as a
constructor argument or, when the argument is not given, from ``app.config``:
``login_view`` (``SESSIONWARE_LOGIN_VIEW``, the endpoint unauthenticated browsers are
sent to), ``refresh_view`` (``SESSIONWARE_REFRESH_VIEW``, for logins that are not
fresh; default ``login_view``), ``fresh_max_age`` (``SESSIONWARE_FRESH_MAX_AGE``,
seconds, default 600) and ``remember`` (``SESSIONWARE_REMEMBER``: True for the
defaults, a :class:`~sessionware.remember.RememberConfig` or a dict of its options;
off by default). The user loader is ``@sw.user_loader``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from flask import Flask, Request, Response, current_app, request
from flask.sessions import SessionInterface, SessionMixin

from sessionware import remember as _remember
from sessionware._http import vary_with_cookie
from sessionware.config import MIN_SECRET_LENGTH, SessionConfig, seconds
from sessionware.core import OutageLog, SessionCore
from sessionware.exceptions import ConfigurationError, HTTPError, StoreUnavailableError
from sessionware.flask.csrf import CSRFProtect, protect, seed
from sessionware.flask.login import FRESH_MAX_AGE, AnonymousUser, current_user
from sessionware.remember import RememberConfig
from sessionware.session import SyncSession
from sessionware.wsgi import (
    EXTRA_COOKIES,
    UNAVAILABLE,
    WsgiView,
    open_session,
    session_headers,
    sync_loader,
)

if TYPE_CHECKING:
    from sessionware.request import RequestView
    from sessionware.stores.base import Store

__all__ = ["FlaskSession", "Sessionware", "current_view", "extension"]

log = logging.getLogger("sessionware")

PREFIX = "SESSIONWARE_"
DEFAULT_STORE = "sqlite:///sessions.sqlite3"
_OPTIONS = {f.name for f in dataclasses.fields(SessionConfig)} - {"secrets", "clock", "genid"}
#: The login options, also read from app.config (not SessionConfig's).
_LOGIN_OPTIONS = {"login_view", "refresh_view", "fresh_max_age", "remember"}

L = TypeVar("L", bound=Callable[[str], Any])


class FlaskSession(SyncSession, SessionMixin):
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
    if any(len(s) < MIN_SECRET_LENGTH for s in secrets):
        raise ConfigurationError(
            f"SECRET_KEY and every SECRET_KEY_FALLBACKS entry must be at least "
            f"{MIN_SECRET_LENGTH} characters (it signs the session cookie): make one with "
            "`sessionware secret` and set it from the environment, e.g. "
            "app.config['SECRET_KEY'] = os.environ['SECRET_KEY']"
        )
    options: dict[str, Any] = {}
    for name, value in app.config.items():
        if not name.startswith(PREFIX) or name in (PREFIX + "STORE", PREFIX + "CSRF"):
            continue
        if name.startswith(PREFIX + "CSRF_"):
            continue  # CSRFProtect's own settings, checked there
        option = name[len(PREFIX):].lower()
        if option in _LOGIN_OPTIONS:
            continue
        if option not in _OPTIONS:
            known = ", ".join(sorted(PREFIX + o.upper() for o in _OPTIONS | _LOGIN_OPTIONS))
            raise ConfigurationError(f"unknown setting {name}: use one of {known}")
        options[option] = value
    store_url = str(app.config.get(PREFIX + "STORE") or options.pop("store_url", None) or "")
    try:
        return SessionConfig(secrets=secrets, **options), store_url or DEFAULT_STORE
    except ConfigurationError as exc:
        raise ConfigurationError(flask_names(str(exc))) from None


#: An option's name where a message names it: before "=" (``secure=True``) or "must".
_OPTION_WORD = re.compile(
    r"\b(" + "|".join(sorted(_OPTIONS, key=len, reverse=True)) + r")\b(=|(?=\s+must\b))"
)


def flask_names(message: str) -> str:
    """A configuration message in the names a Flask app sets: ``secure=True`` reads
    ``SESSIONWARE_SECURE = True`` (the option is an ``app.config`` key there)."""
    return _OPTION_WORD.sub(
        lambda m: PREFIX + m.group(1).upper() + (" = " if m.group(2) else ""), message
    )


def _text(key: str | bytes) -> str:
    return key.decode() if isinstance(key, bytes) else str(key)


class Sessionware:
    """Server-side sessions, login and CSRF for a Flask app: ``Sessionware(app)`` or
    ``sw = Sessionware()`` then ``sw.init_app(app)`` in an app factory.

    ``store=`` overrides ``SESSIONWARE_STORE`` with a store object. The login options
    (see the module docstring) are plain attributes too, as in Flask-Login:
    ``sw.login_view = "auth.login"``.
    """

    def __init__(
        self,
        app: Flask | None = None,
        *,
        store: Store | None = None,
        login_view: str | None = None,
        refresh_view: str | None = None,
        fresh_max_age: float | timedelta | None = None,
        remember: RememberConfig | Mapping[str, Any] | bool | None = None,
        anonymous_user: Callable[[], Any] = AnonymousUser,
        csrf: bool | None = None,
    ) -> None:
        self._store = store
        #: CSRF protection on by default (``csrf=False`` or ``SESSIONWARE_CSRF = False``
        #: to bring your own); the installed :class:`~sessionware.flask.csrf.CSRFProtect`
        #: is ``sw.csrf`` once ``init_app`` ran (``@sw.csrf.exempt``).
        self._csrf_wanted = csrf
        self.csrf: Any = None
        self.core: SessionCore | None = None
        self._outage = OutageLog()
        self.login_view = login_view
        self.refresh_view = refresh_view
        self._fresh: float | None = None
        self.fresh_max_age = fresh_max_age
        self._remember: RememberConfig | None = None
        self._remember_given = False
        self.remember = remember
        #: Makes ``current_user`` when nobody is logged in (Flask-Login's anonymous_user).
        self.anonymous_user = anonymous_user
        self._user_loader: Callable[[str], Any] | None = None
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Install on ``app``: its session interface, the error answers, the hooks."""
        config, url = config_from(app)
        self._login_options(app)
        store = self._store
        if store is None:
            from sessionware.stores import from_url

            store = from_url(url)
        self.core = SessionCore.build(store, None, config, {}, adapter="Sessionware")
        app.extensions["sessionware"] = self
        app.session_interface = _Interface(self)
        # First of all before_request hooks, the app's own included (see _before).
        app.before_request_funcs.setdefault(None, []).insert(0, self._before)
        app.register_error_handler(HTTPError, _answer)
        app.register_error_handler(StoreUnavailableError, self._store_down)
        app.context_processor(_template_user)
        from sessionware.flask.flashing import get_flashed_messages

        # Each message its own session field: parallel requests' flashes all land.
        app.jinja_env.globals["get_flashed_messages"] = get_flashed_messages
        wanted = self._csrf_wanted
        if wanted is None:
            wanted = bool(app.config.get(PREFIX + "CSRF", True))
        if wanted:
            self.csrf = CSRFProtect(app)

    def _login_options(self, app: Flask) -> None:
        """Fill the login options the constructor was not given from app.config."""
        if self.login_view is None:
            self.login_view = app.config.get(PREFIX + "LOGIN_VIEW")
        if self.refresh_view is None:
            self.refresh_view = app.config.get(PREFIX + "REFRESH_VIEW")
        for name in ("login_view", "refresh_view"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, str) and value):
                raise ConfigurationError(f"{name} must be an endpoint name such as 'auth.login'")
        if self._fresh is None:
            self._fresh = seconds(app.config.get(PREFIX + "FRESH_MAX_AGE"), "fresh_max_age")
        if not self._remember_given:
            self.remember = app.config.get(PREFIX + "REMEMBER")

    @property
    def fresh_max_age(self) -> float:
        """Seconds a password login counts as fresh (``@fresh_login_required``)."""
        return FRESH_MAX_AGE if self._fresh is None else self._fresh

    @fresh_max_age.setter
    def fresh_max_age(self, value: float | timedelta | None) -> None:
        self._fresh = seconds(value, "fresh_max_age")  # None: the default, or app.config's

    @property
    def remember(self) -> RememberConfig | None:
        """The remember-me settings, or None when remember-me is off."""
        return self._remember

    @remember.setter
    def remember(self, value: RememberConfig | Mapping[str, Any] | bool | None) -> None:
        self._remember_given = value is not None  # None: undecided, app.config may say
        if value is None or value is False:
            self._remember = None
        elif value is True:
            self._remember = RememberConfig()
        elif isinstance(value, RememberConfig):
            self._remember = value
        elif isinstance(value, Mapping):
            self._remember = RememberConfig(**value)
        else:
            raise ConfigurationError(
                "remember must be True, False, a RememberConfig or a dict of its options"
            )

    def user_loader(self, load: L) -> L:
        """Register ``load(user_id: str) -> user | None``, which ``current_user`` calls
        once per request (the id is what ``login_user`` stored: ``user.get_id()``)."""
        self._user_loader = load
        return load

    def load_user(self, user_id: str) -> Any:
        """The user with ``user_id``, through the registered loader (None: not found)."""
        if self._user_loader is None:
            raise ConfigurationError(
                "no user loader: register one with @sw.user_loader "
                "(def load_user(user_id: str) -> User | None)"
            )
        return self._user_loader(user_id)

    def _core(self) -> SessionCore:
        if self.core is None:
            raise RuntimeError("Sessionware.init_app(app) was not called")
        return self.core

    def _before(self) -> Response | None:
        """The first before_request hook, in this order: answer 503 for a request whose
        session could not be opened (before anything reads it); judge CSRF (when the app
        has CSRFProtect); log a browser back in from its remember-me cookie (when
        remember-me is on), so hooks the app registered earlier already see that login.

        One hook rather than three: Flask's dispatch of each costs more than their
        work on a plain read.
        """
        req: Request = request._get_current_object()  # type: ignore[attr-defined]
        environ = req.environ
        if environ.get(UNAVAILABLE):
            return _plain_503()
        refusal = protect(current_app, req)
        if refusal is not None:
            return refusal
        cfg = self._remember
        if cfg is not None:
            # Also records the settings that login_user(remember=True) and logout need.
            _remember.on_request_sync(WsgiView(environ), cfg)
        return None

    def _store_down(self, exc: StoreUnavailableError) -> Response:
        """A store outage in a hook or a view (a login, a restore): 503, never anonymous."""
        self._outage(exc)
        return _plain_503()


def _template_user() -> dict[str, Any]:
    """``current_user`` in templates, as Flask-Login provides it."""
    return {"current_user": current_user}


class _Interface(SessionInterface):
    """Flask's session interface, served by the WSGI adapter's two steps."""

    def __init__(self, ext: Sessionware) -> None:
        self.ext = ext
        self._core = ext._core()
        self._load = sync_loader(self._core)  # a store without a sync face fails here

    def core(self) -> SessionCore:
        """The extension's core (which a test may replace), and its loader kept in step."""
        core = self.ext._core()
        if core is not self._core:
            self._core, self._load = core, sync_loader(core)
        return core

    def open_session(self, app: Flask, request: Request) -> SessionMixin | None:
        try:
            return open_session(self.core(), request.environ, FlaskSession, self._load)
        except StoreUnavailableError as exc:
            self.ext._outage(exc)
            request.environ[UNAVAILABLE] = True
            return None  # Flask makes a null session; the first before_request answers 503

    def is_null_session(self, obj: object) -> bool:
        return not isinstance(obj, FlaskSession)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        if not isinstance(session, FlaskSession):
            return
        environ = request.environ
        core = self.core()
        if EXTRA_COOKIES not in environ and core.untouched(session):
            # The common read: nothing to write, no cookie; only Vary if it was used.
            if session.accessed or session.had_cookie:
                _vary(response)
            return
        if session.is_new:
            seed(environ)  # a session about to be created gets its CSRF secret now
        try:
            out = session_headers(core, environ, response.status_code)
        except StoreUnavailableError as exc:
            self.ext._outage(exc)
            _become_503(response)
            return
        if out is None:
            return
        _vary(response)
        for value in out.cookies:
            response.headers.add("Set-Cookie", value)
        if out.no_store:
            response.headers["Cache-Control"] = "no-store"


def _vary(response: Response) -> None:
    """Add ``Cookie`` to the response's Vary header (the header itself, not
    ``response.vary``: werkzeug parses and rebuilds a HeaderSet)."""
    headers = response.headers
    # getlist, not get: werkzeug's get raises and catches a KeyError when the header is
    # missing, the common case. Several Vary lines are read as one list.
    current = headers.getlist("Vary")
    if not current:
        headers.add("Vary", "Cookie")  # no existing line to replace: a plain append
        return
    vary = vary_with_cookie(", ".join(current))
    if vary is not None:
        headers["Vary"] = vary


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
