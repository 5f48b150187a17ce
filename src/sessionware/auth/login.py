"""Logging in and out: the one login path, with the new session id first.

Auth state is session *metadata* (see :mod:`sessionware.auth.fields`): the user id,
a public handle, when the user authenticated, whether that was a real login (fresh)
or a remember-me restore, and the device (user agent, client IP). Every privilege
change goes through :func:`begin`, which regenerates the id first: the library does
it so apps cannot forget (Passport CVE-2022-25896, flask-session #173).

Each flow is written once, as an :mod:`operation <sessionware._ops>` (``_login``,
``_reauthenticate``, ``_logout``, ``_begin``) that yields store calls and runs the
session's verbs as operations too (``yield from session._regenerate()``). The public
coroutines here only dispatch: ``await session.core.arun(op)``; their sync twins in
:mod:`sessionware.auth.sync` run the same operation with ``session.core.run(op)``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta

from sessionware import events as _events
from sessionware._ops import Op
from sessionware.auth import generation as _generation
from sessionware.auth import index
from sessionware.auth import series as _series
from sessionware.auth._view import (
    RequestLike,
    as_view,
    async_session,
    base_session,
    check_async,
    client_ip,
    clock,
    user_agent,
)
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
from sessionware.exceptions import ConfigurationError, SessionLimitError
from sessionware.request import RequestView
from sessionware.session import CSRF_FIELD, ON_END, BaseSession, Fields, Session
from sessionware.stores.base import Call
from sessionware.tokens import log_id, new_handle

__all__ = ["begin", "end_record", "login", "logout", "reauthenticate"]

security_log = logging.getLogger("sessionware.security")

_UA_MAX = 256
_USER_ID_MAX = 256
#: Sessions restored from one series this close together are a browser's parallel tabs.
_SIBLING_WINDOW = 5.0
#: How many times a login ranked within the cap looks again under the "refuse" policy.
_ADMIT_TRIES = 8


def _check_user_id(user_id: object) -> str:
    if not isinstance(user_id, str) or not user_id:
        raise TypeError("user_id must be a non-empty str")
    if len(user_id) > _USER_ID_MAX or not user_id.isprintable():
        raise ValueError(
            f"user_id must be printable text of at most {_USER_ID_MAX} characters "
            "(use the account's primary key, not free text)"
        )
    return user_id


def _rotate(session: BaseSession) -> Op[tuple[str | None, str | None]]:
    """Regenerate the id and return ``(user, old store key)`` so the index can follow."""
    user = session.get_meta(USER)
    old = None if session.is_new else session.key
    yield from session._regenerate()
    return user, old


def _relink(
    session: BaseSession,
    user_id: str,
    old_user: str | None,
    old: str | None,
    generation: int,
    series: str | None = None,
) -> Op[bool]:
    """Store the session, index it under ``user_id``, then check nothing revoked it meanwhile.

    The check comes *after* the index entry (see :mod:`sessionware.auth.generation`):
    a sweep either lists this session or this call sees the sweep's new generation, or
    the series deleted, and ends the session itself. Returns whether it stands.
    """
    yield from session._save()  # the record exists before the index points at it
    if old is not None and old_user is not None:
        yield Call("unlink", (old_user, old))
    key = session.key
    yield Call("link", (user_id, key))
    revoked = (yield from _generation.current(user_id)) != generation
    if not revoked and series is not None:
        revoked = (yield Call("load", (series,))) is None
    if revoked:
        yield from session._destroy()
        yield Call("unlink", (user_id, key))
        security_log.info("login undone: the user was signed out meanwhile user=%s", user_id)
    return not revoked


def _limit(session: BaseSession, user_id: str, series: str | None) -> Op[bool]:
    """One session per remembered device, and at most ``max_sessions_per_user`` in all.

    A restore replaces the sessions its series made before (a client that drops the
    session cookie would otherwise mint one per request), except those made in the
    last few seconds: a browser's parallel tabs restore together, and ending each
    other's sessions would leave the browser with none. Past the cap, the policy
    decides: ``"oldest"`` ends sessions of the same device first, then the least
    recently seen; ``"refuse"`` returns False (see :func:`_admitted`).

    Race-free because every login lists the index only *after* its own entry is in
    it: of all logins running together, the last to list sees every other one, so
    it alone already brings the user down to the cap.
    """
    current = session.key
    now = clock(session)()
    listed = yield from index.records(user_id)
    others = [(k, f) for k, f in listed if not index.same(k, current)]
    siblings = [
        kf for kf in others if series is not None and index.same(kf[1].get(SERIES, ""), series)
    ]
    for key, fields in siblings:
        if now - index.num_or_zero(fields.get(AUTH_TIME)) > _SIBLING_WINDOW:
            yield from index.end(user_id, key, fields, series_too=False)
            others.remove((key, fields))
    cap = session.config.max_sessions_per_user
    if cap is None or len(others) < cap:
        return True
    if session.config.max_sessions_policy == "refuse":
        return (yield from _admitted(session, user_id, others, cap))
    same = {k for k, _ in siblings}
    # Ties (parallel logins in one second) broken by key, so every login ranks alike.
    others.sort(key=lambda kf: (kf[0] not in same, _seen(kf[1]), _since(kf[1]), kf[0]))
    events = _events.of(session)
    for key, fields in others[: len(others) - cap + 1]:
        yield from index.end(user_id, key, fields, series_too=key not in same)
        _events.emit(
            events,
            "session_revoked",
            user_id=user_id,
            handle=fields.get(HANDLE),
            client=fields.get(IP),
            reason="session_cap",
        )
    return True


def _seen(fields: Mapping[str, str]) -> float:
    return index.num_or_zero(fields.get("a"))


def _since(fields: Mapping[str, str]) -> float:
    return index.num_or_zero(fields.get(AUTH_TIME))


def _admitted(
    session: BaseSession, user_id: str, others: list[tuple[str, Mapping[str, str]]], cap: int
) -> Op[bool]:
    """Whether this login may stay under ``max_sessions_policy="refuse"``.

    A login stays only when a listing read after its own index entry shows fewer than
    ``cap`` other sessions: that is the whole safety argument (see :func:`_limit`).
    Logins ranked among the first ``cap`` (oldest sign-in, then key) look again a few
    times while later parallel logins are still withdrawing, so a burst from nothing
    admits close to ``cap`` of them instead of refusing everyone.
    """
    mine = (index.num_or_zero(session.get_meta(AUTH_TIME)), session.key)
    for _ in range(_ADMIT_TRIES):
        ahead = sum(1 for k, f in others if (_since(f), k) < mine)
        if ahead >= cap:
            return False
        listed = yield from index.records(user_id)
        others = [(k, f) for k, f in listed if not index.same(k, session.key)]
        if len(others) < cap:
            return True
    return False


def _begin(
    session: BaseSession,
    view: RequestView,
    user_id: str,
    *,
    fresh: bool,
    series: str | None,
    generation: int | None = None,
) -> Op[bool]:
    """The login path shared by :func:`login` and the remember-me restore (see :func:`begin`)."""
    _check_user_id(user_id)
    if generation is None:
        generation = yield from _generation.current(user_id)
    previous = session.get_meta(USER)
    if previous is not None and previous != user_id:
        session.clear()  # another user's data never carries over (Django's flush)
    old_user, old = yield from _rotate(session)
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
    if not (yield from _relink(session, user_id, old_user, old, generation, series)):
        return False
    if not (yield from _limit(session, user_id, series)):
        yield from _refuse(session, view, user_id, series)
    return True


def _refuse(session: BaseSession, view: RequestView, user_id: str, series: str | None) -> Op[None]:
    """Undo a login over the cap (its session, index entry and remember-me series) and
    raise :class:`SessionLimitError`."""
    key = session.key
    yield from session._destroy()
    yield Call("unlink", (user_id, key))
    if series:
        yield from _series.revoke_series(series, user_id)
        _series.queue_cookie(view, "", 0)
    cap = session.config.max_sessions_per_user or 0
    _events.emit(
        _events.of(session),
        "login_failed",
        user_id=user_id,
        client=client_ip(view, session.config.trust_proxy),
        reason="session_cap",
    )
    raise SessionLimitError(cap)


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
    signed out everywhere while this login was under way; raises
    :class:`~sessionware.exceptions.SessionLimitError` when the ``"refuse"`` cap policy
    turned it away.
    """
    return await check_async(session, "sessionware.auth.sync.begin").core.arun(
        _begin(session, view, user_id, fresh=fresh, series=series, generation=generation)
    )


def _login(
    request: RequestLike,
    user_id: str,
    remember: bool,
    lifetime: tuple[float | timedelta | None, ...] = (None, None, None),
) -> Op[None]:
    """:func:`login`, as an operation (``lifetime``: idle, absolute, cookie Max-Age)."""
    v = as_view(request)
    session = base_session(v)
    session.set_lifetime(idle=lifetime[0], absolute=lifetime[1], cookie_max_age=lifetime[2])
    cfg = _series.config_of(v)
    if remember and cfg is None:
        raise ConfigurationError(
            "login(remember=True) needs RememberMeMiddleware inside SessionMiddleware "
            "(add it to the app before SessionMiddleware)"
        )
    _check_user_id(user_id)
    # Read first: a sweep from here on makes this login undo itself.
    generation = yield from _generation.current(user_id)
    try:
        yield from _series.forget(v, session)
        series = None
        if remember and cfg is not None:
            series = yield from _series.issue(v, session, user_id, cfg, generation)
        began = yield from _begin(
            session, v, user_id, fresh=True, series=series, generation=generation
        )
    finally:
        # One remember-me cookie for the whole login (cleared, or the new series),
        # sent with whatever the app answers, a 401 included.
        _series.send_cookie(v, session)
    if not began:
        raise LoginRequiredError()
    _events.emit(
        _events.of(session),
        "login",
        user_id=user_id,
        handle=session.get_meta(HANDLE),
        client=session.get_meta(IP),
        reason="remember" if remember else "password",
    )


async def login(
    request: RequestLike,
    user_id: str,
    *,
    remember: bool = False,
    idle_timeout: float | timedelta | None = None,
    absolute_timeout: float | timedelta | None = None,
    cookie_max_age: float | timedelta | None = None,
) -> None:
    """Log ``user_id`` in: new session id, device details, index entry; maybe remember-me.

    Call it after the password checked out. Any remember-me cookie the browser already
    had is revoked; with ``remember=True`` a new series is issued (this needs
    :class:`~sessionware.remember.RememberMeMiddleware` inside ``SessionMiddleware``).
    ``idle_timeout``/``absolute_timeout``/``cookie_max_age`` give this login its own
    lifetimes (``session.set_lifetime``).
    Over ``max_sessions_per_user`` with ``max_sessions_policy="refuse"`` it raises
    :class:`~sessionware.exceptions.SessionLimitError` (a 409 the app can show).
    """
    return await async_session(request, "sessionware.auth.sync.login").core.arun(
        _login(request, user_id, remember, (idle_timeout, absolute_timeout, cookie_max_age))
    )


def _reauthenticate(request: RequestLike) -> Op[None]:
    """:func:`reauthenticate`, as an operation."""
    session = base_session(as_view(request))
    user = require_user(request)
    generation = yield from _generation.current(user)
    old_user, old = yield from _rotate(session)
    session.set_meta(AUTH_TIME, str(int(clock(session)())))
    session.set_meta(FRESH, "1")
    session.set_meta(REMEMBERED, None)
    session.set_meta(CSRF_FIELD, new_secret())
    if not (yield from _relink(session, user, old_user, old, generation)):
        raise LoginRequiredError()
    security_log.info("reauthenticated user=%s session=%s", user, log_id(session.id))


async def reauthenticate(request: RequestLike) -> None:
    """Count a password confirmed again as a fresh login, and rotate the session id (ASVS 7.2.4)."""
    return await async_session(request, "sessionware.auth.sync.reauthenticate").core.arun(
        _reauthenticate(request)
    )


def _logout(request: RequestLike) -> Op[None]:
    """:func:`logout`, as an operation."""
    v = as_view(request)
    session = base_session(v)
    user = session.get_meta(USER)
    handle, ip = session.get_meta(HANDLE), session.get_meta(IP)
    key = None if session.is_new else session.key
    try:
        yield from _series.forget(v, session)
    finally:
        _series.send_cookie(v, session)
    yield from session._destroy()
    if user is not None and key is not None:
        yield Call("unlink", (user, key))
        _events.emit(
            _events.of(session), "logout", user_id=user, handle=handle, client=ip, reason="logout"
        )


async def logout(request: RequestLike) -> None:
    """Delete the session (its cookie is cleared), and revoke and clear remember-me too."""
    return await async_session(request, "sessionware.auth.sync.logout").core.arun(_logout(request))


def end_record(key: str, fields: Fields) -> Op[None]:
    """End what a login keeps outside its record, once ``session.clear()`` deleted it:
    the user's index entry and the remember-me series (the browser's remember-me
    cookie then finds no series and is cleared on its next request)."""
    user = fields.get(USER)
    if user is not None:
        yield Call("unlink", (user, key))
        _events.emit(
            None,  # no request here: logged only
            "logout",
            user_id=user,
            handle=fields.get(HANDLE),
            client=fields.get(IP),
            reason="session_cleared",
        )
    series = fields.get(SERIES)
    if series:
        yield from _series.revoke_series(series)


def _who(session: BaseSession) -> tuple[str | None, str | None, str | None]:
    return session.get_meta(USER), session.get_meta(HANDLE), session.get_meta(IP)


ON_END.append(end_record)
_events.WHO.append(_who)
