"""Who this request's user is: the readers of a login, and the guards that require one.

Plain functions (no store call), so they serve sync and async apps alike.
"""

from __future__ import annotations

from sessionware.auth._view import RequestLike, as_view, base_session, clock
from sessionware.auth.fields import AUTH_TIME, FRESH, HANDLE, REMEMBERED, USER
from sessionware.exceptions import LoginRequiredError, ReauthenticationRequiredError

__all__ = [
    "LoginRequiredError",
    "ReauthenticationRequiredError",
    "authenticated_at",
    "current_handle",
    "current_user_id",
    "is_recent_login",
    "is_remembered",
    "require_user",
    "requires_recent_login",
]


def current_user_id(request: RequestLike) -> str | None:
    """The logged-in user's id, or None."""
    return base_session(as_view(request)).get_meta(USER)


def current_handle(request: RequestLike) -> str | None:
    """The public handle of this request's session ("this device" in a device list)."""
    return base_session(as_view(request)).get_meta(HANDLE)


def is_remembered(request: RequestLike) -> bool:
    """Whether this session was restored from a remember-me cookie (never *fresh*)."""
    return base_session(as_view(request)).get_meta(REMEMBERED) == "1"


def require_user(request: RequestLike) -> str:
    """The logged-in user's id; raises :class:`LoginRequiredError` (401) if nobody is."""
    user = current_user_id(request)
    if user is None:
        raise LoginRequiredError()
    return user


def authenticated_at(request: RequestLike) -> float | None:
    """When the user last typed their password (or was restored), in epoch seconds."""
    at = base_session(as_view(request)).get_meta(AUTH_TIME)
    return float(at) if at is not None else None


def is_recent_login(request: RequestLike, max_age: float) -> bool:
    """Whether the user proved their password within ``max_age`` seconds.

    A session restored from remember-me is never recent (Flask-Login's "fresh").
    """
    session = base_session(as_view(request))
    at = session.get_meta(AUTH_TIME)
    if session.get_meta(USER) is None or session.get_meta(FRESH) != "1" or at is None:
        return False
    return clock(session)() - float(at) <= max_age


def requires_recent_login(request: RequestLike, max_age: float) -> None:
    """Guard a sensitive action: raise :class:`ReauthenticationRequiredError` unless recent.

    ASVS 4.0.3 3.7.1 / 5.0 7.5.1: the app then asks for the password and calls
    :func:`~sessionware.auth.reauthenticate`.
    """
    require_user(request)
    if not is_recent_login(request, max_age):
        raise ReauthenticationRequiredError()
