"""Logging users in and out on top of sessions, the list of a user's devices, revocation,
remember-me records and the login throttle.

Every function that takes a request takes a :class:`~sessionware.request.RequestView`
or a framework request carrying one, so one implementation serves every framework.

The functions here are coroutines, for async (ASGI) code; :mod:`sessionware.auth.sync`
holds their sync twins, same names and signatures, for sync code whose requests carry
a :class:`~sessionware.session.SyncSession`. Each flow is written once, as an
:mod:`operation <sessionware._ops>` yielding store calls; a coroutine awaits it and its
twin runs it with plain calls (see :mod:`sessionware.auth._run`).

The modules, each built only on those above it::

    series        remember-me records: settings, store keys, format, and the
                  remember-me cookie a request sends (a leaf)
    generation    the per-user revocation generation (a leaf)
    _view         from the caller's request to its view, session, client address
    _run          what runs the operations: the request's core, or a bare store
    fields        the session metadata a login writes
    index         a user's sessions at store level: list them, end one
    current       who is logged in: readers and guards (401s)
    login         the one login path, login / reauthenticate / logout
    devices       "your devices": DeviceSession, sessions_of
    revocation    revoke, logout_everywhere, password_changed
    throttle      login and registration attempt budgets (sessionware.throttle),
                  over _budget (counting in the store) and _device_cookie; its sync
                  face is ``throttle.sync``
    sync          the sync twins of the coroutines above

Everything public is importable from ``sessionware.auth`` itself; so are, as before
the split, the metadata field names (``USER``...), ``begin``,
``revoke_series_sessions`` and ``StoreOrRequest``, which ``__all__`` leaves out.
"""

from __future__ import annotations

from sessionware.auth._view import client_ip
from sessionware.auth.current import (
    LoginRequiredError,
    ReauthenticationRequiredError,
    authenticated_at,
    current_handle,
    current_user_id,
    is_recent_login,
    is_remembered,
    require_user,
    requires_recent_login,
)
from sessionware.auth.devices import DeviceSession, sessions_of
from sessionware.auth.devices import StoreOrRequest as StoreOrRequest
from sessionware.auth.fields import AUTH_TIME as AUTH_TIME
from sessionware.auth.fields import FRESH as FRESH
from sessionware.auth.fields import HANDLE as HANDLE
from sessionware.auth.fields import IP as IP
from sessionware.auth.fields import REMEMBERED as REMEMBERED
from sessionware.auth.fields import SERIES as SERIES
from sessionware.auth.fields import USER as USER
from sessionware.auth.fields import USER_AGENT as USER_AGENT
from sessionware.auth.login import begin as begin
from sessionware.auth.login import login, logout, reauthenticate
from sessionware.auth.revocation import logout_everywhere, password_changed, revoke
from sessionware.auth.revocation import revoke_series_sessions as revoke_series_sessions

__all__ = [
    "DeviceSession",
    "LoginRequiredError",
    "ReauthenticationRequiredError",
    "authenticated_at",
    "client_ip",
    "current_handle",
    "current_user_id",
    "is_recent_login",
    "is_remembered",
    "login",
    "logout",
    "logout_everywhere",
    "password_changed",
    "reauthenticate",
    "require_user",
    "requires_recent_login",
    "revoke",
    "sessions_of",
]
