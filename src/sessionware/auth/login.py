"""Logging in and out: the one login path, with the new session id first.

Auth state is session *metadata* (see :mod:`sessionware.auth.fields`): the user id,
a public handle, when the user authenticated, whether that was a real login (fresh)
or a remember-me restore, and the device (user agent, client IP). Every privilege
change goes through :func:`begin`, which regenerates the id first: the library does
it so apps cannot forget (Passport CVE-2022-25896, flask-session #173).
"""

from __future__ import annotations

import logging

from sessionware.auth import generation as _generation
from sessionware.auth import index
from sessionware.auth import series as _series
from sessionware.auth._view import RequestLike, as_view, client_ip, clock, session_of, user_agent
from sessionware.auth.current import LoginRequiredError, require_user
from sessionware.auth.fields import (
    AUTH_TIME,
    FRESH,
    HANDLE,
    IP,
    REMEMBERED,
    SERIES,
    USER,
    USER_AGENT,
)
from sessionware.csrf.token import new_secret
from sessionware.exceptions import ConfigurationError
from sessionware.request import RequestView
from sessionware.session import CSRF_FIELD, Session
from sessionware.tokens import log_id, new_handle

__all__ = ["begin", "login", "logout", "reauthenticate"]

security_log = logging.getLogger("sessionware.security")

_UA_MAX = 256
_USER_ID_MAX = 256
#: Sessions restored from one series this close together are a browser's parallel tabs.
_SIBLING_WINDOW = 5.0


def _check_user_id(user_id: object) -> str:
    if not isinstance(user_id, str) or not user_id:
        raise TypeError("user_id must be a non-empty str")
    if len(user_id) > _USER_ID_MAX or not user_id.isprintable():
        raise ValueError(
            f"user_id must be printable text of at most {_USER_ID_MAX} characters "
            "(use the account's primary key, not free text)"
        )
    return user_id


async def _rotate(session: Session) -> tuple[str | None, str | None]:
    """Regenerate the id and return ``(user, old store key)`` so the index can follow."""
    user = session.get_meta(USER)
    old = None if session.is_new else session.key
    await session.regenerate()
    return user, old


async def _relink(
    session: Session,
    user_id: str,
    old_user: str | None,
    old: str | None,
    generation: int,
    series: str | None = None,
) -> bool:
    """Store the session, index it under ``user_id``, then check nothing revoked it meanwhile.

    The check comes *after* the index entry (see :mod:`sessionware.auth.generation`):
    a sweep either lists this session or this call sees the sweep's new generation, or
    the series deleted, and ends the session itself. Returns whether it stands.
    """
    store = session.store
    await session.save()  # the record exists before the index points at it
    if old is not None and old_user is not None:
        await store.unlink(old_user, old)
    key = session.key
    await store.link(user_id, key)
    revoked = await _generation.current(store, user_id) != generation
    if not revoked and series is not None:
        revoked = await store.load(series) is None
    if revoked:
        await session.destroy()
        await store.unlink(user_id, key)
        security_log.info("login undone: the user was signed out meanwhile user=%s", user_id)
    return not revoked


async def _limit(session: Session, user_id: str, series: str | None) -> None:
    """One session per remembered device, and at most ``max_sessions_per_user`` in all.

    A restore replaces the sessions its series made before (a client that drops the
    session cookie would otherwise mint one per request), except those made in the
    last few seconds: a browser's parallel tabs restore together, and ending each
    other's sessions would leave the browser with none. Past the cap, sessions of the
    same device go first, then the least recently seen.
    """
    store, current = session.store, session.key
    now = clock(session)()
    others = [(k, f) for k, f in await index.records(store, user_id) if not index.same(k, current)]
    siblings = [
        kf for kf in others if series is not None and index.same(kf[1].get(SERIES, ""), series)
    ]
    for key, fields in siblings:
        if now - index.num_or_zero(fields.get(AUTH_TIME)) > _SIBLING_WINDOW:
            await index.end(store, user_id, key, fields, series_too=False)
            others.remove((key, fields))
    cap = session.config.max_sessions_per_user
    if cap is not None and len(others) >= cap:
        same = {k for k, _ in siblings}
        others.sort(key=lambda kf: (kf[0] not in same, index.num_or_zero(kf[1].get("a"))))
        for key, fields in others[: len(others) - cap + 1]:
            await index.end(store, user_id, key, fields, series_too=key not in same)
        security_log.info("session cap reached user=%s: oldest sessions ended", user_id)


async def begin(
    session: Session,
    view: RequestView,
    user_id: str,
    *,
    fresh: bool,
    series: str | None,
    generation: int | None = None,
) -> bool:
    """The login path shared by :func:`login` and the remember-me restore.

    ``generation`` is the user's revocation generation the caller's proof of identity
    belongs to (read before the password check, or recorded in the remember-me
    series). Returns False, with the new session already destroyed, when the user was
    signed out everywhere while this login was under way.
    """
    _check_user_id(user_id)
    if generation is None:
        generation = await _generation.current(session.store, user_id)
    previous = session.get_meta(USER)
    if previous is not None and previous != user_id:
        session.clear()  # another user's data never carries over (Django's flush)
    old_user, old = await _rotate(session)
    now = int(clock(session)())
    ua = user_agent(view)
    session.set_meta(USER, user_id)
    session.set_meta(HANDLE, new_handle())  # a new handle per login (flask-login #449)
    session.set_meta(AUTH_TIME, str(now))
    session.set_meta(FRESH, "1" if fresh else "0")
    session.set_meta(USER_AGENT, ua[:_UA_MAX] if ua else None)
    session.set_meta(IP, client_ip(view, session.config.trust_proxy))
    session.set_meta(SERIES, series)
    session.set_meta(REMEMBERED, None if fresh else "1")
    # The CSRF secret is part of the login's own write: pages opened in parallel right
    # after it all read this one instead of each racing to create their own.
    session.set_meta(CSRF_FIELD, new_secret())
    if not await _relink(session, user_id, old_user, old, generation, series):
        return False
    await _limit(session, user_id, series)
    return True


async def login(request: RequestLike, user_id: str, *, remember: bool = False) -> None:
    """Log ``user_id`` in: new session id, device details, index entry; maybe remember-me.

    Call it after the password checked out. Any remember-me cookie the browser already
    had is revoked; with ``remember=True`` a new series is issued (this needs
    :class:`~sessionware.remember.RememberMeMiddleware` inside ``SessionMiddleware``).
    """
    v = as_view(request)
    session = session_of(v)
    cfg = _series.config_of(v)
    if remember and cfg is None:
        raise ConfigurationError(
            "login(remember=True) needs RememberMeMiddleware inside SessionMiddleware "
            "(add it to the app before SessionMiddleware)"
        )
    _check_user_id(user_id)
    generation = await _generation.current(session.store, user_id)
    try:
        await _series.forget(v, session)
        series = None
        if remember and cfg is not None:
            series = await _series.issue(v, session, user_id, cfg, generation)
        began = await begin(session, v, user_id, fresh=True, series=series, generation=generation)
    finally:
        # One remember-me cookie for the whole login (cleared, or the new series),
        # sent with whatever the app answers, a 401 included.
        _series.send_cookie(v, session)
    if not began:
        raise LoginRequiredError()
    security_log.info("login user=%s session=%s", user_id, log_id(session.id))


async def reauthenticate(request: RequestLike) -> None:
    """Count a password confirmed again as a fresh login, and rotate the session id (ASVS 7.2.4)."""
    session = session_of(as_view(request))
    user = require_user(request)
    generation = await _generation.current(session.store, user)
    old_user, old = await _rotate(session)
    session.set_meta(AUTH_TIME, str(int(clock(session)())))
    session.set_meta(FRESH, "1")
    session.set_meta(REMEMBERED, None)
    session.set_meta(CSRF_FIELD, new_secret())
    if not await _relink(session, user, old_user, old, generation):
        raise LoginRequiredError()
    security_log.info("reauthenticated user=%s session=%s", user, log_id(session.id))


async def logout(request: RequestLike) -> None:
    """Delete the session (its cookie is cleared), and revoke and clear remember-me too."""
    v = as_view(request)
    session = session_of(v)
    user = session.get_meta(USER)
    key = None if session.is_new else session.key
    try:
        await _series.forget(v, session)
    finally:
        _series.send_cookie(v, session)
    await session.destroy()
    if user is not None and key is not None:
        await session.store.unlink(user, key)
        security_log.info("logout user=%s", user)
