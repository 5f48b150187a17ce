"""The sync twins of auth's coroutines: the same names and signatures, plain calls.

For sync code, whose requests carry a :class:`~sessionware.session.SyncSession` (a
WSGI adapter's, or ``core.run(core.begin(cookie, SyncSession))`` by hand)::

    from sessionware.auth.sync import login, logout, sessions_of

    login(request, user.id, remember=True)

Nothing here is written twice. Each flow is one :mod:`operation <sessionware._ops>`
in the module that documents it (``login._login``, ``revocation._revoke``...) that
yields store calls and runs the session's verbs as operations; the coroutine awaits
it (``session.core.arun(op)``), the twin below runs it with plain calls on the
store's sync face (``session.core.run(op)``, or a bare store's ``store.sync``). Each
twin is one line, and a test keeps it so.

A twin given a request whose session is the async :class:`~sessionware.session.Session`
raises :class:`~sessionware.exceptions.ConfigurationError` naming the coroutine to
await instead, and the coroutines do the same for a ``SyncSession``. The login
throttle's sync calls are its ``throttle.sync`` face (:mod:`sessionware.auth.throttle`);
the remember-me restore's is :func:`sessionware.remember.on_request_sync`.
"""

from __future__ import annotations

from datetime import timedelta

from sessionware.auth._run import on_store, runner
from sessionware.auth._view import RequestLike, check_sync, sync_session
from sessionware.auth.devices import DeviceSession, StoreOrRequest, _sessions_of
from sessionware.auth.login import _begin, _login, _logout, _reauthenticate
from sessionware.auth.revocation import (
    _logout_everywhere,
    _password_changed,
    _revoke,
    _revoke_series_sessions,
)
from sessionware.request import RequestView
from sessionware.session import SyncSession
from sessionware.stores.base import Store

__all__ = [
    "begin",
    "login",
    "logout",
    "logout_everywhere",
    "password_changed",
    "reauthenticate",
    "revoke",
    "revoke_series_sessions",
    "sessions_of",
]


def begin(
    session: SyncSession,
    view: RequestView,
    user_id: str,
    *,
    fresh: bool,
    series: str | None,
    generation: int | None = None,
) -> bool:
    """The login path shared by login and the remember-me restore (see ``auth.begin``)."""
    return check_sync(session, "sessionware.auth.begin").core.run(
        _begin(session, view, user_id, fresh=fresh, series=series, generation=generation)
    )


def login(
    request: RequestLike,
    user_id: str,
    *,
    remember: bool = False,
    idle_timeout: float | timedelta | None = None,
    absolute_timeout: float | timedelta | None = None,
    cookie_max_age: float | timedelta | None = None,
) -> None:
    """Log ``user_id`` in: new session id, device details, index entry; maybe remember-me."""
    return sync_session(request, "sessionware.auth.login").core.run(
        _login(request, user_id, remember, (idle_timeout, absolute_timeout, cookie_max_age))
    )


def reauthenticate(request: RequestLike) -> None:
    """Count a password confirmed again as a fresh login, and rotate the session id."""
    return sync_session(request, "sessionware.auth.reauthenticate").core.run(
        _reauthenticate(request)
    )


def logout(request: RequestLike) -> None:
    """Delete the session (its cookie is cleared), and revoke and clear remember-me too."""
    return sync_session(request, "sessionware.auth.logout").core.run(_logout(request))


def sessions_of(target: StoreOrRequest, user_id: str) -> list[DeviceSession]:
    """The user's devices, most recently seen first, each with a revocation handle."""
    return runner(target, "sessionware.auth.sessions_of").run(_sessions_of(target, user_id))


def revoke(target: StoreOrRequest, user_id: str, handle: str) -> bool:
    """End the session of ``user_id`` shown with ``handle`` (and its remember-me series)."""
    return runner(target, "sessionware.auth.revoke").run(_revoke(target, user_id, handle))


def revoke_series_sessions(store: Store, user_id: str, series: str) -> int:
    """End every session of ``user_id`` spawned from remember-me ``series``; return how many."""
    return on_store(store).run(_revoke_series_sessions(user_id, series))


def logout_everywhere(
    target: StoreOrRequest, user_id: str, *, keep: RequestLike | None = None
) -> int:
    """Sign ``user_id`` out of every device but ``keep``'s: sessions and remember-me series."""
    return runner(target, "sessionware.auth.logout_everywhere", keep).run(
        _logout_everywhere(target, user_id, keep)
    )


def password_changed(request: RequestLike, user_id: str) -> int:
    """After a password change: end every other session and every remember-me series,
    and give the current session a new id; return how many other sessions ended."""
    return sync_session(request, "sessionware.auth.password_changed").core.run(
        _password_changed(request, user_id)
    )
