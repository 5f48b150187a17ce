"""Ending sessions for good: one device, every device, after a password change.

Each sweep first bumps the user's revocation generation (see
:mod:`sessionware.auth.generation`), so a login or restore still under way when the
sweep lists the user's sessions undoes itself. See docs/security.md, "Ending
sessions for good".

Each flow is one :mod:`operation <sessionware._ops>` (``_revoke``,
``_revoke_series_sessions``, ``_logout_everywhere``, ``_password_changed``); the
coroutines here await it on the store's async face, the twins in
:mod:`sessionware.auth.sync` run it with plain calls on ``store.sync``. Given a request,
both run on the request's session core; given a bare store, on that store.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from sessionware import events as _events
from sessionware._ops import Op
from sessionware.auth import generation as _generation
from sessionware.auth import index
from sessionware.auth import series as _series
from sessionware.auth._run import arunner, on_store
from sessionware.auth._view import (
    RequestLike,
    as_view,
    async_session,
    base_session,
    client_ip,
    clock,
)
from sessionware.auth.current import current_user_id
from sessionware.auth.devices import StoreOrRequest, current_key, split
from sessionware.auth.fields import HANDLE, IP, SERIES
from sessionware.auth.login import _logout, _reauthenticate
from sessionware.request import RequestView
from sessionware.stores.base import Store
from sessionware.tokens import is_valid_handle

__all__ = ["logout_everywhere", "password_changed", "revoke", "revoke_series_sessions"]

security_log = logging.getLogger("sessionware.security")


def _end(
    request: RequestView | None,
    user_id: str,
    key: str,
    fields: Mapping[str, str],
    *,
    series_too: bool = True,
    reason: str = "revoked",
) -> Op[None]:
    """End one session: through the request when it is the current one (cookies cleared).

    Its remember-me series goes first, so no restore can follow the session's end.
    """
    events = _events.of(base_session(request)) if request is not None else None
    _events.emit(
        events,
        "session_revoked",
        user_id=user_id,
        handle=fields.get(HANDLE),
        client=fields.get(IP),
        reason=reason,
    )
    if request is not None and key == current_key(request):
        series = fields.get(SERIES)
        if series and series_too:
            yield from _series.revoke_series(series, user_id)
        yield from _logout(request)
        return
    yield from index.end(user_id, key, fields, series_too=series_too)


def _revoke(target: StoreOrRequest, user_id: str, handle: str) -> Op[bool]:
    """:func:`revoke`, as an operation."""
    if not is_valid_handle(handle):
        return False
    _, request = split(target)
    for key, fields in (yield from index.records(user_id)):
        if index.same(fields.get(HANDLE, ""), handle):
            yield from _end(request, user_id, key, fields)
            series = fields.get(SERIES)
            if series:  # a restore that was under way when the series went
                yield from _revoke_series_sessions(user_id, series)
            return True
    for key, fields in (yield from _series.series_of(user_id)):
        if index.same(fields.get("h", ""), handle):
            yield from _series.revoke_series(key, user_id)
            yield from _revoke_series_sessions(user_id, key)
            _events.emit(
                _events.of(base_session(request)) if request is not None else None,
                "session_revoked",
                user_id=user_id,
                reason="remembered device revoked",
            )
            return True
    return False


async def revoke(target: StoreOrRequest, user_id: str, handle: str) -> bool:
    """End the session of ``user_id`` shown with ``handle`` (and its remember-me series).

    Returns whether one was found. Ask for the password before offering this (ASVS 5.0
    7.5.2). A handle of the wrong shape (any non-ASCII text, say) is simply not found.
    """
    return await arunner(target, "sessionware.auth.sync.revoke").arun(
        _revoke(target, user_id, handle)
    )


def _revoke_series_sessions(user_id: str, series: str) -> Op[int]:
    """:func:`revoke_series_sessions`, as an operation."""
    n = 0
    for key, fields in (yield from index.records(user_id)):
        if index.same(fields.get(SERIES, ""), series):
            yield from index.end(user_id, key, fields, series_too=False)
            n += 1
    return n


async def revoke_series_sessions(store: Store, user_id: str, series: str) -> int:
    """End every session of ``user_id`` spawned from remember-me ``series``; return how many.

    Call it after the series is gone: a restore racing it either is listed here or
    finds the series missing and ends its own session.
    """
    return await on_store(store).arun(_revoke_series_sessions(user_id, series))


def _logout_everywhere(
    target: StoreOrRequest,
    user_id: str,
    keep: RequestLike | None,
    reason: str = "logout_everywhere",
) -> Op[int]:
    """:func:`logout_everywhere`, as an operation."""
    _, request = split(target)
    kept = as_view(keep) if keep is not None else None
    kept_key = current_key(kept)
    kept_series = base_session(kept).get_meta(SERIES) if kept is not None and kept_key else None
    # First a new generation: any login or restore still under way undoes itself
    # (sessionware.auth.generation), so what this sweep does not find cannot survive it.
    generation = yield from _generation.bump(user_id)
    if kept_series and kept is not None:
        now = clock(base_session(kept))()
        if not (yield from _series.adopt(kept_series, generation, now)):
            kept_series = None
    yield from _series.revoke_user(user_id, keep=kept_series)
    n = 0
    for key, fields in (yield from index.records(user_id)):
        if kept_key is not None and index.same(key, kept_key):
            continue
        # Their series went just above: no second delete per session.
        ending = kept if kept is not None else request
        yield from _end(ending, user_id, key, fields, series_too=False, reason=reason)
        n += 1
    security_log.info("logout everywhere user=%s ended=%d", user_id, n)
    return n


async def logout_everywhere(
    target: StoreOrRequest, user_id: str, *, keep: RequestLike | None = None
) -> int:
    """Sign ``user_id`` out of every device but ``keep``'s: sessions and remember-me series.

    Returns how many sessions ended. Without ``keep`` every session ends, the current
    one included (its cookies cleared) when ``target`` is a request.
    """
    return await arunner(target, "sessionware.auth.sync.logout_everywhere", keep).arun(
        _logout_everywhere(target, user_id, keep)
    )


def _password_changed(request: RequestLike, user_id: str) -> Op[int]:
    """:func:`password_changed`, as an operation."""
    v = as_view(request)
    session = base_session(v)
    try:
        yield from _series.forget(v, session)
    finally:
        _series.send_cookie(v, session)
    session.set_meta(SERIES, None)
    keep = v if current_user_id(v) == user_id else None
    ended = yield from _logout_everywhere(session.store, user_id, keep, "password_changed")
    if keep is not None:
        yield from _reauthenticate(v)
    _events.emit(
        _events.of(session),
        "password_changed",
        user_id=user_id,
        handle=session.get_meta(HANDLE),
        client=client_ip(v, session.config.trust_proxy),
        reason=f"{ended} other session(s) ended",
    )
    return ended


async def password_changed(request: RequestLike, user_id: str) -> int:
    """After a password change: end every other session and every remember-me series,
    and give the current session a new id (ASVS 3.3.3 / 7.4.3; docs/security.md,
    "Ending sessions for good").

    Returns how many other sessions ended (for "3 other devices were signed out").
    """
    return await async_session(request, "sessionware.auth.sync.password_changed").core.arun(
        _password_changed(request, user_id)
    )
