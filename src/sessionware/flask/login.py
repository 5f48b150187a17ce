"""Login for Flask, in Flask-Login's words, on sessionware's auth layer.

``login_user``, ``logout_user``, ``current_user``, ``@login_required``,
``@fresh_login_required``, ``confirm_login``, ``UserMixin``: the names Flask users
know, so moving from Flask-Login is mostly an import change. Underneath, each is one
call of the sync twins (:mod:`sessionware.auth.sync`) or a plain reader of
:mod:`sessionware.auth` over the current request's view: the new session id at
login (session fixation), the device index, remember-me series with theft
detection and the revocation sweeps are the same code the ASGI side runs. Nothing
here awaits; nothing here repeats auth's logic.

The settings (``login_view``, ``remember``, the user loader...) live on the
:class:`~sessionware.flask.Sessionware` extension; this module reads them from the
app's extensions, so it does not import the extension module (which imports it, to
put ``current_user`` in templates).

Where it differs from Flask-Login, on purpose:

- "fresh" has an age: a password login is fresh for ``max_age`` seconds
  (``fresh_max_age``, 10 minutes by default), a remember-me restore never is;
- ``next`` is a path on this site, checked by :func:`safe_next` both when the
  redirect is built and in the app's login view;
- an API request (JSON preferred, a JSON body, or no ``login_view`` set) gets a 401
  (sessionware's ``HTTPError``) instead of a redirect;
- ``login_user`` refuses ``duration`` and ``fresh=False``, saying why: the remember-me
  lifetime is ``RememberConfig.ttl``, and every password login is fresh.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import timedelta
from typing import Any, ParamSpec, Protocol, TypeVar, cast, overload
from urllib.parse import quote, urlsplit

from flask import current_app, g, has_app_context, has_request_context, redirect, request, url_for
from werkzeug.local import LocalProxy
from werkzeug.wrappers import Response

from sessionware import auth
from sessionware.auth import sync as auth_sync
from sessionware.auth.devices import DeviceSession
from sessionware.config import seconds
from sessionware.exceptions import (
    ConfigurationError,
    LoginRequiredError,
    ReauthenticationRequiredError,
)
from sessionware.remember import RememberConfig
from sessionware.request import RequestView
from sessionware.wsgi import WsgiView

__all__ = [
    "AnonymousUser",
    "AnonymousUserMixin",
    "DeviceSession",
    "UserMixin",
    "confirm_login",
    "current_user",
    "fresh_login_required",
    "login_fresh",
    "login_required",
    "login_user",
    "logout_everywhere",
    "logout_user",
    "password_changed",
    "revoke",
    "safe_next",
    "sessions_of",
]

P = ParamSpec("P")
R = TypeVar("R")

#: Where the request's user is cached in ``flask.g``: ``(user id, user object)``.
_CACHE = "_sessionware_user"
#: How long a password login counts as fresh unless the app says otherwise.
FRESH_MAX_AGE = 600.0


class UserMixin:
    """Flask-Login's ``UserMixin``: a user is active, authenticated while active, and
    identified by ``str(self.id)``; two users are equal when their ids are."""

    __hash__ = object.__hash__  # defining __eq__ would otherwise make users unhashable

    @property
    def is_active(self) -> bool:
        """Override to refuse logins (``login_user`` returns False) for disabled accounts."""
        return True

    @property
    def is_authenticated(self) -> bool:
        """A loaded user counts as logged in only while active (a disabled account is not)."""
        return self.is_active

    @property
    def is_anonymous(self) -> bool:
        """Never: this is a real user."""
        return False

    def get_id(self) -> str:
        """The id ``login_user`` stores and the user loader receives, as text."""
        try:
            return str(getattr(self, "id"))  # noqa: B009 - the subclass defines it
        except AttributeError:
            raise NotImplementedError("no `id` attribute: override get_id()") from None

    def __eq__(self, other: object) -> bool:
        if isinstance(other, UserMixin):
            return self.get_id() == other.get_id()
        return NotImplemented


class AnonymousUser:
    """What ``current_user`` is when nobody is logged in (Flask-Login's
    ``AnonymousUserMixin``), so templates can ask ``current_user.is_authenticated``."""

    @property
    def is_authenticated(self) -> bool:
        """Never logged in."""
        return False

    @property
    def is_active(self) -> bool:
        """Not an active account."""
        return False

    @property
    def is_anonymous(self) -> bool:
        """Always."""
        return True

    def get_id(self) -> None:
        """No id."""
        return None


#: Flask-Login's name for it.
AnonymousUserMixin = AnonymousUser


class LoginSettings(Protocol):
    """What this module reads from the installed extension (``Sessionware`` has it)."""

    @property
    def login_view(self) -> str | None: ...

    @property
    def refresh_view(self) -> str | None: ...

    @property
    def fresh_max_age(self) -> float: ...

    @property
    def remember(self) -> RememberConfig | None: ...

    @property
    def anonymous_user(self) -> Callable[[], Any]: ...

    def load_user(self, user_id: str) -> Any: ...


def _installed() -> LoginSettings | None:
    """The extension on the current app, if any. (Checked by attribute: a runtime
    ``isinstance`` against a Protocol costs about 10 µs, on every ``current_user``.)"""
    found = current_app.extensions.get("sessionware")
    return cast(LoginSettings, found) if hasattr(found, "load_user") else None


def _settings() -> LoginSettings:
    found = _installed()
    if found is None:
        raise RuntimeError("sessionware is not set up on this app: Sessionware(app)")
    return found


def _view() -> RequestView:
    return WsgiView(request.environ)


def _anonymous() -> Any:
    found = _installed() if has_app_context() else None
    return found.anonymous_user() if found is not None else AnonymousUser()


def _current_user() -> Any:
    """The logged-in user (loaded once per request, through the user loader) or the
    anonymous user. Keyed by the session's user id, so a login, logout or revocation
    during the request is seen at once, whichever call made it."""
    if not has_request_context():
        return _anonymous()
    user_id = auth.current_user_id(_view())
    cached: tuple[str | None, Any] | None = g.get(_CACHE)
    if cached is not None and cached[0] == user_id:
        return cached[1]
    user = None if user_id is None else _settings().load_user(user_id)
    if user is None:  # nobody, or an account the loader no longer finds
        user = _anonymous()
    setattr(g, _CACHE, (user_id, user))
    return user


#: The request's user: the loader's object, or :class:`AnonymousUser`.
current_user: Any = LocalProxy(_current_user)


def _is_authenticated(user: Any) -> bool:
    return bool(getattr(user, "is_authenticated", getattr(user, "is_active", True)))


def _id_of(user: Any) -> str:
    get_id = getattr(user, "get_id", None)
    user_id = get_id() if callable(get_id) else getattr(user, "id", None)
    if user_id is None:
        raise TypeError("login_user needs a user with get_id() or an `id` attribute")
    return str(user_id)


def login_user(
    user: Any,
    remember: bool = False,
    *,
    force: bool = False,
    idle_timeout: float | timedelta | None = None,
    absolute_timeout: float | timedelta | None = None,
    cookie_max_age: float | timedelta | None = None,
    duration: timedelta | None = None,
    fresh: bool = True,
) -> bool:
    """Log ``user`` in after their password checked out; False for an inactive user.

    The session gets a new id first (the one the browser had, possibly planted, is
    deleted), the device is indexed, and with ``remember=True`` a remember-me series
    is issued (remember-me must be on: ``Sessionware(app, remember=True)``). ``force``
    logs in an inactive user all the same. Flask-Login's ``duration`` and
    ``fresh=False`` are refused with what to use instead (a call that passes them
    means something sessionware does another way).
    """
    if duration is not None:
        raise TypeError(
            "login_user(duration=...) is Flask-Login's: the remember-me lifetime here is "
            "one setting for every login, SESSIONWARE_REMEMBER = {'ttl': ...} (seconds or "
            "a timedelta); drop duration="
        )
    if not fresh:
        raise TypeError(
            "login_user(fresh=False) is Flask-Login's: here every password login is fresh "
            "(for fresh_max_age) and a remember-me restore never is; drop fresh="
        )
    if not force and not getattr(user, "is_active", True):
        return False
    user_id = _id_of(user)
    if remember and _settings().remember is None:
        raise ConfigurationError(
            "login_user(remember=True) needs remember-me turned on: "
            "Sessionware(app, remember=True) or SESSIONWARE_REMEMBER = True"
        )
    auth_sync.login(
        _view(),
        user_id,
        remember=remember,
        idle_timeout=idle_timeout,
        absolute_timeout=absolute_timeout,
        cookie_max_age=cookie_max_age,
    )
    setattr(g, _CACHE, (user_id, user))
    return True


def logout_user() -> bool:
    """Log out: the session is deleted, its cookie cleared, remember-me revoked and cleared."""
    auth_sync.logout(_view())
    setattr(g, _CACHE, (None, _anonymous()))
    return True


def confirm_login() -> None:
    """After the user typed their password again: the login is fresh, with a new id."""
    auth_sync.reauthenticate(_view())


def login_fresh(max_age: float | timedelta | None = None) -> bool:
    """Whether the user typed their password within ``max_age`` seconds (default
    ``fresh_max_age``); a remember-me restore is never fresh."""
    age = _settings().fresh_max_age if max_age is None else seconds(max_age, "max_age")
    assert age is not None
    return auth.is_recent_login(_view(), age)


# -- next, and where an unauthorised request goes --------------------------------------


@overload
def safe_next(target: str | None, default: str) -> str: ...
@overload
def safe_next(target: str | None, default: None = None) -> str | None: ...
def safe_next(target: str | None, default: str | None = None) -> str | None:
    """``target`` if it is a path on this site, else ``default``: an open-redirect guard.

    Only an absolute path is kept (``/orders?page=2``). Refused: absolute and
    scheme-relative URLs (``https://evil.example``, ``//evil.example``), backslashes
    (browsers read ``/\\evil`` as ``//evil``), whitespace and control characters
    (browsers drop tabs and newlines, so ``/\\t/evil`` would become ``//evil``). In a
    login view: ``redirect(safe_next(request.args.get("next"), url_for("index")))``.
    """
    if not isinstance(target, str) or not target.startswith("/") or target.startswith("//"):
        return default
    if "\\" in target or not target.isprintable() or any(c.isspace() for c in target):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target


def _here() -> str:
    """This request's path and query, as a ``next`` value (re-encoded, this site only)."""
    path = quote(request.script_root + request.path, safe="/:@!$&'()*+,;=~")
    query = request.query_string.decode("latin-1")
    return f"{path}?{query}" if query else path


def _wants_api() -> bool:
    """A request a redirect to an HTML login page would not help: JSON preferred, or sent."""
    accept = request.accept_mimetypes
    return request.is_json or accept["application/json"] > accept["text/html"]


def _refuse(view_name: str | None, error: Exception) -> Response:
    """Redirect to ``view_name`` with this request as ``next``, or raise ``error`` (a 401)."""
    if view_name is None or _wants_api():
        raise error
    here = safe_next(_here())
    target = url_for(view_name, next=here) if here else url_for(view_name)
    return redirect(target)


def login_required(view: Callable[P, R]) -> Callable[P, R | Response]:
    """Run the view for a logged-in user only: others are redirected to ``login_view``
    with ``next``, or get a 401 (API requests, or no ``login_view``)."""

    @functools.wraps(view)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> R | Response:
        if not _is_authenticated(current_user):
            return _refuse(_settings().login_view, LoginRequiredError())
        return view(*args, **kwargs)

    return guarded


@overload
def fresh_login_required(view: Callable[P, R], /) -> Callable[P, R | Response]: ...
@overload
def fresh_login_required(
    *, max_age: float | timedelta | None = None
) -> Callable[[Callable[P, R]], Callable[P, R | Response]]: ...
def fresh_login_required(
    view: Callable[P, R] | None = None, /, *, max_age: float | timedelta | None = None
) -> Callable[P, R | Response] | Callable[[Callable[P, R]], Callable[P, R | Response]]:
    """Like :func:`login_required`, and the password must have been typed within
    ``max_age`` seconds (default ``fresh_max_age``): guard changing the email or the
    password, deleting the account. A stale or remembered login goes to
    ``refresh_view`` (else ``login_view``) with ``next``, where the app asks for the
    password and calls :func:`confirm_login`; an API request gets a 401.

    Bare (``@fresh_login_required``) or with an age (``@fresh_login_required(max_age=60)``).
    """
    age = seconds(max_age, "max_age")

    def decorate(inner: Callable[P, R]) -> Callable[P, R | Response]:
        @functools.wraps(inner)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> R | Response:
            settings = _settings()
            if not _is_authenticated(current_user):
                return _refuse(settings.login_view, LoginRequiredError())
            if not auth.is_recent_login(_view(), settings.fresh_max_age if age is None else age):
                return _refuse(
                    settings.refresh_view or settings.login_view, ReauthenticationRequiredError()
                )
            return inner(*args, **kwargs)

        return guarded

    return decorate if view is None else decorate(view)


# -- the device list and the sweeps, on the current request ----------------------------


def _user_or_current(user_id: str | None) -> str:
    return user_id if user_id is not None else auth.require_user(_view())


def sessions_of(user_id: str | None = None) -> list[DeviceSession]:
    """The devices of ``user_id`` (default: the current user), most recent first, this
    one marked ``current``."""
    return auth_sync.sessions_of(_view(), _user_or_current(user_id))


def revoke(handle: str, user_id: str | None = None) -> bool:
    """End the session shown with ``handle`` in :func:`sessions_of` (and its remember-me
    series); whether it was found. Ask for the password before offering this."""
    return auth_sync.revoke(_view(), _user_or_current(user_id), handle)


def logout_everywhere(user_id: str | None = None, *, keep_current: bool = True) -> int:
    """Sign the user (default: the current one) out of every other device; with
    ``keep_current=False`` this browser too (its cookies cleared). How many ended."""
    view = _view()
    return auth_sync.logout_everywhere(
        view, _user_or_current(user_id), keep=view if keep_current else None
    )


def password_changed(user_id: str | None = None) -> int:
    """Call after saving a new password: every other session and every remember-me
    series of the user ends, this session gets a new id; how many others ended."""
    return auth_sync.password_changed(_view(), _user_or_current(user_id))
